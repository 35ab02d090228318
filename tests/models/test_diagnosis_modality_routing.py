"""Deciding the kind of image (DICOM header first, then the modality classifier) and the analyses that fit it."""
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from models.diagnosis import diagnose as core
from models.diagnosis.image import read_image


class FakeRouter:
    name = "fake-router"
    classes = ["chest-xray", "colonoscopy", "ct", "dermoscopy", "laparoscopy"]

    def __init__(self, scores):
        self.scores = np.asarray(scores, np.float32)

    def preprocess(self, rgb):
        return rgb

    def predict_batch(self, x):
        return self.scores[None]


def dicom_bytes(tmp_path, modality, body_part=None):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Modality = modality
    if body_part:
        ds.BodyPartExamined = body_part
    path = tmp_path / "x.dcm"
    ds.save_as(path)
    return read_image(path)


@pytest.mark.parametrize("modality, part, kind", [("CT", None, "ct"), ("CR", "CHEST", "chest-xray"), ("DX", None, "chest-xray"),
                                                  ("DX", "HAND", "other-xray"), ("MR", None, "other")])
def test_dicom_header_decides(tmp_path, modality, part, kind):
    decision = core.decide_modality(dicom_bytes(tmp_path, modality, part), FakeRouter([0, 0, 0, 0, 1]))
    assert decision.modality == kind and decision.confident and f"Modality={modality}" in decision.source


def test_photographs_and_unknown_dicom_go_to_the_router(tmp_path):
    png = read_image(_png(), name="a.png")
    d = core.decide_modality(png, FakeRouter([0.05, 0.05, 0.05, 0.8, 0.05]))
    assert d.modality == "dermoscopy" and d.confident and d.scores["dermoscopy"] == pytest.approx(0.8)
    d = core.decide_modality(dicom_bytes(tmp_path, "ES"), FakeRouter([0.3, 0.4, 0.1, 0.1, 0.1]))
    assert d.modality == "colonoscopy" and not d.confident
    assert not core.decide_modality(png, None).confident


def _png():
    import cv2

    return cv2.imencode(".png", np.full((16, 16, 3), 100, np.uint8))[1].tobytes()


def test_only_fitting_analyses_are_offered():
    assert list(core.modality_choices("laparoscopy").values()) == [core.STILL]
    assert core.modality_choices("ct") == {} and "no diagnostic model for CT" in core.no_model_text("ct")
    for kind in ("chest-xray", "dermoscopy", "colonoscopy"):
        assert core.STILL not in core.modality_choices(kind).values()
    assert all(Path(ref).name != core.ROUTER for ref in core.analysis_choices().values())


def test_cli_diagnose_auto_routes_like_the_page(capsys):
    import json

    from app.cli import main

    assert main(["diagnose", get_testdata_file("CT_small.dcm")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind_of_image"] == "ct" and out["analysis"] is None
    assert "no diagnostic model for CT slices" in out["statement"] and "Modality=CT" in out["decided_by"]
