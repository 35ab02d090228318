"""The Models page in AppTest: shipped models' metadata and cards, and evaluation plots."""
import json
from pathlib import Path

import numpy as np
import pytest

from metrics.classification import classification_report
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


def card(at, model: str):
    """The card-numbers table of the model named `model` (tables follow the models' order on the page)."""
    names = [m.metadata.get("name", m.name) for m in registry.list_models()]
    tables = [t.value for t in at.dataframe if "measure" in t.value.columns]
    return tables[names.index(model)]


def test_shipped_cards_show_their_evaluation_numbers():
    at = open_page("models")
    entries = {m.metadata.get("name", m.name): m for m in registry.list_models()}
    detector = next(n for n, m in entries.items() if m.kind == "detector")
    rows = card(at, detector)
    evaluation = entries[detector].metadata["evaluation"]
    value = dict(zip(rows["measure"], rows["value"]))
    assert value["mAP@0.5"] == f"{evaluation['m2cai16_test_boxes']['mAP50']:.3f}"
    assert value["mAP@0.5:0.95"] == f"{evaluation['m2cai16_test_boxes']['mAP50_95']:.3f}"
    assert value["mAP"] == f"{evaluation['cholect50_presence']['mAP']:.3f}"
    phase = next(n for n, m in entries.items() if m.kind.startswith("phase"))
    assert any("accuracy, strict" in m for m in card(at, phase)["measure"])
    assert " 0.0 MB" not in texts(at)  # the phase model's small weights are shown in KB


@pytest.mark.parametrize("evaluation, measure, value", [
    ({"real_frames_folds": {"offline": {"strict": {"mean": 0.8, "std": 0.05}, "relaxed": {"mean": 0.85, "std": 0.04}}},
      "clips": {"auto": {"strict": {"mean": 0.7, "std": 0.1}, "relaxed": {"mean": 0.75, "std": 0.1}}}},
     "offline: accuracy, strict / relaxed (10 s)", "80.0 ± 5.0 % / 85.0 ± 4.0 %"),
    ({"mean_over_videos": {"offline_full": {"strict": {"accuracy": {"mean": 0.89, "std": 0.09}},
                                            "relaxed": {"accuracy": {"mean": 0.93, "std": 0.06}}}}},
     "offline_full: accuracy, strict / relaxed (10 s)", "89.0 ± 9.0 % / 93.0 ± 6.0 %"),
    ({"held": {"deep": {"oddity": 0.25, "count": 3, "per_class": {"x": 1.0}}, "curve": [0.1, 0.2]}}, "oddity", "0.250"),
])
def test_card_numbers_of_each_metadata_shape(library, model_dir, evaluation, measure, value):
    meta = registry.resolve_model(model_dir).metadata
    registry.write_metadata(model_dir, {**{k: v for k, v in meta.items() if k != "metrics"}, "evaluation": evaluation})
    rows = card(open_page("models"), "image-modality")
    assert dict(zip(rows["measure"], rows["value"]))[measure] == value
    assert len(rows) <= 8
    assert "x" not in set(rows["measure"])  # per-class blocks are not headlines


def test_generic_cards_are_capped():
    from models.headline import MAX_GENERIC_ROWS, card_headlines

    rows = card_headlines({"evaluation": {"block": {f"m{i}": i for i in range(20)}}})
    assert len(rows) == MAX_GENERIC_ROWS and rows[0].data == "block" and rows[0].value == "0"
