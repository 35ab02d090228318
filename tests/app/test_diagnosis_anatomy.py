"""The Diagnosis page's surgical still with the anatomy model: the mask overlay and the three CVS criteria."""
import numpy as np
import pytest

from models.anatomy.data import CLASSES
from models.anatomy.model import AnatomyResult
from models.detections import Detections
from models.diagnosis import diagnose as core
from models.diagnosis.still import StillAnalyzer, StillReport
from tests.app.conftest import texts
from tests.app.test_diagnosis_page import FakeStill, frame_png, upload


class FakeAnatomyStill(FakeStill):
    """FakeStill plus an anatomy result: gallbladder on the left half, C1 and C3 holding."""

    def __call__(self, rgb):
        report = super().__call__(rgb)
        labels = np.zeros(rgb.shape[:2], np.uint8)
        labels[:, : rgb.shape[1] // 2] = CLASSES.index("gallbladder")
        report.anatomy = AnatomyResult(labels, {c: 0.5 if c == "gallbladder" else 0.0 for c in CLASSES[1:]},
                                       {"C1": 0.7, "C2": 0.3, "C3": 0.9})
        return report


@pytest.fixture
def fake_anatomy(monkeypatch, fresh_caches):
    monkeypatch.setattr(core, "load_analyzer", lambda ref: FakeAnatomyStill())
    monkeypatch.setattr(core, "decide_modality", lambda image, router=None, frame=0: core.ModalityDecision(
        "laparoscopy", 0.99, "fake router"))
    monkeypatch.setattr(core, "model_card", lambda analyzer: None)


def test_still_shows_the_anatomy_mask_and_criteria(fake_anatomy, cholec_clips):
    at = upload("still.png", frame_png(cholec_clips[2]), "image/png")
    assert not at.error
    assert [img.captions[0] for img in at.get("image")] == ["image (as displayed)", "detections", "explanation", "anatomy"]
    assert "CVS criteria holding: C1, C3" in at.subheader[0].value
    cvs = next(d.value for d in at.dataframe if "criterion" in d.value.columns)
    assert cvs["criterion"].tolist() == ["C1", "C2", "C3"] and cvs["holds"].tolist() == [True, False, True]
    assert "laparoscopic cholecystectomy" in texts(at) and "not for clinical use" in texts(at)


def test_report_without_anatomy_says_why():
    report = StillReport(["Hook"], Detections.empty(), np.zeros(1, np.float32),
        anatomy_missing="no anatomy model at 'anatomy' (shipped: assets/models/anatomy)")
    assert "Critical view of safety" not in report.tables() and report.to_dict()["anatomy"] is None
    assert "no anatomy mask" in report.note and "not for clinical use" in report.note


def test_analyzer_without_the_anatomy_model_degrades(tmp_path, monkeypatch):
    class Det:
        def __init__(self, *a, **k):
            pass

    monkeypatch.setattr("models.detector.Detector", Det)
    analyzer = StillAnalyzer(detector_weights="x", anatomy=tmp_path / "absent")
    assert analyzer.anatomy is None and "no anatomy model" in analyzer.anatomy_missing
    assert StillAnalyzer(detector_weights="x", anatomy=None).anatomy_missing == "not requested"
