"""The Diagnosis page in Streamlit's AppTest: a surgical still, the chest DICOM, bad files, no detector."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from streamlit.testing.v1 import AppTest

from models.detections import Detections
from models.diagnosis import diagnose as core
from models.diagnosis import still
from models.diagnosis.classifier import ClassificationResult, ImageClassifier
from models.diagnosis.still import StillAnalyzer, StillReport
from tests.app.conftest import run_page, texts, upload_to
from tests.conftest import REPO, shared_path
from video.quality import measure_quality, quality_findings


class FakeStill(StillAnalyzer):
    """Two boxes and a centred heatmap, without loading weights."""

    def __init__(self):
        self.explain = True

    @property
    def class_names(self):
        return ["Grasper", "Hook"]

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        dets = Detections([[10, 10, 60, 60], [100, 50, 200, 150]], [0.9, 0.4], [0, 1])
        yy, xx = np.mgrid[0:h, 0:w]
        heat = np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * (h / 4) ** 2)).astype(np.float32)
        quality = quality_findings(measure_quality(rgb))
        return StillReport(["Grasper", "Hook"], dets, np.array([0.9, 0.4], np.float32), heat, quality, detector="fake")


class FakeClassifier(ImageClassifier):
    def __init__(self):
        self.classes = ["chest-xray", "ct"]

    def __call__(self, rgb):
        return ClassificationResult(self.classes, np.array([0.8, 0.2], np.float32), np.zeros(rgb.shape[:2], np.float32))


@pytest.fixture
def fake_models(monkeypatch, fresh_caches):
    """Fast stand-ins for every analysis the page offers."""
    monkeypatch.setattr(core, "load_analyzer", lambda ref: FakeStill() if ref == core.STILL else FakeClassifier())
    # The kind of image: the DICOM header where it says, else "a surgical still" without running the router.
    monkeypatch.setattr(core, "decide_modality", lambda image, router=None, frame=0: core.dicom_modality(image)
                        or core.ModalityDecision("laparoscopy", 0.99, "fake router"))
    monkeypatch.setattr(core, "model_card", lambda analyzer: "# fake model card")


def frame_png(clip: Path, index: int = 400) -> bytes:
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return cv2.imencode(".png", bgr)[1].tobytes()


def upload(name: str, data: bytes, mime: str) -> AppTest:
    return upload_to("diagnosis", (name, data, mime))


def test_page_waits_for_an_upload():
    at = run_page("diagnosis")
    assert not at.error
    assert "Upload an image" in at.info[0].value
    assert "not for clinical use" in at.warning[0].value


def test_surgical_still_from_cholec_clip(fake_models, cholec_clips):
    at = upload("still.png", frame_png(cholec_clips[2]), "image/png")
    assert not at.error
    assert at.selectbox(key="diagnosis_analysis").value.startswith("Surgical still")
    assert "Instruments seen: Grasper (0.90), Hook (0.40)" in at.subheader[0].value
    assert [img.captions[0] for img in at.get("image")] == ["image (as displayed)", "detections", "explanation"]
    tools, quality = at.dataframe[0].value, at.dataframe[1].value
    assert list(tools["tool"]) == ["Grasper", "Hook"] and tools["present"].all()
    assert list(quality.columns) == ["measure", "value", "threshold", "flagged"]
    assert {"blur", "haze", "out_of_body"} <= set(quality["measure"])
    assert "not proof" in texts(at)
    assert "0 item(s) removed" in at.expander[0].label


def test_chest_dicom_shows_window_presets_and_removed_phi(fake_models):
    path = next(shared_path("medical-images", "chest-xray").glob("*.dcm"))
    at = upload(path.name, path.read_bytes(), "application/dicom")
    assert not at.error
    assert at.selectbox[0].value == "chest-xray" and "Modality=CR" in texts(at)
    assert "diagnosis_analysis" not in [s.key for s in at.selectbox] or not at.selectbox(key="diagnosis_analysis").value.startswith("Surgical still")
    window = at.selectbox(key="diagnosis_window")
    assert window.label == "Window" and "full range" in window.options
    removed = at.expander[0]
    assert "removed on import" in removed.label
    assert {"PatientName (emptied)", "PatientID (emptied)"} <= set(at.dataframe[-1].value["removed"])


def test_ct_window_preset_changes_display(fake_models):
    at = upload("ct.dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes(), "application/dicom")
    window = at.selectbox(key="diagnosis_window")
    assert {"lung", "bone", "soft tissue", "brain"} <= set(window.options)
    window.set_value("lung").run()
    assert not at.exception and not at.error


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.png", b"not an image at all", "is not a readable image"),
        ("plan.dcm", Path(get_testdata_file("rtplan.dcm")).read_bytes(), "without pixel data"),
        ("broken.dcm", b"\x00" * 128 + b"DICM" + b"\xff" * 32, "not a readable DICOM"),
    ],
)
def test_bad_files_show_an_error_not_a_traceback(fake_models, name, data, message):
    at = upload(name, data, "application/octet-stream")
    assert len(at.error) == 1 and message in at.error[0].value


def test_cmyk_jpeg_is_shown_with_a_conversion_note(fake_models):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("CMYK", (64, 48), (0, 50, 100, 0)).save(buf, "JPEG")
    at = upload("print.jpg", buf.getvalue(), "image/jpeg")
    assert not at.error
    assert any("converted from CMYK to RGB" in e.value for e in at.info), [e.value for e in at.info]


def test_missing_detector_weights_are_explained(monkeypatch, fresh_caches, cholec_clips):
    monkeypatch.setattr(still, "DETECTOR_CANDIDATES", ("no-such-model",))
    at = upload("still.png", frame_png(cholec_clips[0]), "image/png")
    assert len(at.error) == 1 and "no instrument-detector weights" in at.error[0].value


def test_real_models_on_chest_dicom_and_surgical_still(fresh_caches, cholec_clips):
    """No fakes: the shipped classifier on the chest DICOM, the detector (if any) on a Cholec80 still."""
    if len(core.analysis_choices()) > 1:
        path = next(shared_path("medical-images", "chest-xray").glob("*.dcm"))
        at = upload(path.name, path.read_bytes(), "application/dicom")
        assert not at.error
        assert at.subheader[0].value.startswith(("Top class:", "Finding:"))
        assert [img.captions[0] for img in at.get("image")][1:] == ["explanation"]
    try:
        still.find_detector_weights()
    except still.NoDetectorError:
        return
    at = upload("still.png", frame_png(cholec_clips[2]), "image/png")
    assert not at.error and at.subheader[0].value.startswith("Instruments seen:")
    anatomy = ["anatomy"] if (REPO / "assets" / "models" / "anatomy" / "weights.pt").is_file() else []
    assert [img.captions[0] for img in at.get("image")][1:] == ["detections", "explanation", *anatomy]
