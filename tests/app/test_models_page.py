"""The Models page in AppTest: shipped models' metadata and cards, and evaluation plots."""
import json
from pathlib import Path

import numpy as np
import pytest

from analysis.metrics.classification import classification_report
from app import resources
from models import registry
from tests.app.conftest import figures, open_page, texts


@pytest.fixture
def model_dir(tmp_path, monkeypatch) -> Path:
    """One model folder with weights, metadata, card and its own evaluation; runs/ with another model's."""
    root = tmp_path / "models"
    folder = root / "modality"
    folder.mkdir(parents=True)
    (folder / "weights.pt").write_bytes(b"\0" * 1024)
    registry.write_metadata(folder, {"name": "image-modality", "kind": "image-classifier", "version": 2,
                                     "classes": ["ct", "xray"], "input_size": 128,
                                     "training": {"data": "public stills, 40 per class"},
                                     "metrics": {"accuracy": 0.9}})
    (folder / "MODEL_CARD.md").write_text("# Image modality\n\nIntended use: routing stills to the right model.\n")
    report = classification_report([0, 1, 1], np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), ["ct", "xray"]).to_dict()
    (folder / "eval.json").write_text(json.dumps({"model": "image-modality", **report}))
    runs = tmp_path / "runs" / "detector"
    runs.mkdir(parents=True)
    (runs / "test-eval.json").write_text(json.dumps({"task": "detection", "model": {"name": "candidate-detector"},
                                                     "metrics": {"mAP50": 0.41, "per_class": {"Hook": {"AP50": 0.5}}}}))
    (runs / "broken-eval.json").write_text("{not json")
    shipped = registry.list_models
    monkeypatch.setattr(registry, "list_models", lambda: shipped(root))
    monkeypatch.setattr(resources, "EVAL_ROOTS", (tmp_path / "runs",))
    return folder


def test_shipped_models_are_listed():
    at = open_page("models")
    shown = texts(at)
    assert at.title[0].value == "Models"
    for entry in registry.list_models():
        assert entry.metadata.get("name", entry.name) in shown


def test_model_metadata_card_and_evaluations(library, model_dir):
    at = open_page("models")
    shown = texts(at)
    assert "image-modality" in shown and "Input size 128 px" in shown and "Classes 2" in shown
    assert "**Training data:** public stills, 40 per class" in shown
    assert "Intended use: routing stills" in shown  # the model card, rendered
    charts = [fig.layout.title.text for fig in figures(at).values()]
    assert "ROC curves (one class against the rest)" in charts and "Confusion matrix" in charts
    assert "Average precision per class" in charts  # the runs/ evaluation of a model that is not shipped
    assert "Other evaluations" in shown
    assert "accuracy 0.667" in shown and "mAP@0.5 0.410" in shown
