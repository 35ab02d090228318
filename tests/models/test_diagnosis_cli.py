"""`surglens diagnose / train-* / eval-* / build-diagnosis-data` through the real CLI entry point."""
import json

import cv2
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from app.cli import main
from models.diagnosis.deid import PHI_KEYWORDS
from tests.conftest import shared_path

CT = get_testdata_file("CT_small.dcm")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for cls, value in (("dark", 30), ("light", 220)):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / "data" / cls / f"{i}.png"), np.full((24, 24, 3), value + i, np.uint8))
    assert main(["train-classifier", str(root / "data"), "--out", str(root / "model"), "--input-size", "32",
                 "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4"]) == 0
    return root


def test_train_and_eval_classifier_write_json(tiny_classifier, capsys):
    capsys.readouterr()
    out = tiny_classifier / "eval.json"
    assert main(["eval-classifier", str(tiny_classifier / "model"), str(tiny_classifier / "data"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert report["n"] == 6 and set(report["per_class"]) == {"dark", "light"}
    assert {"sensitivity", "specificity", "auc", "roc"} <= set(report["per_class"]["dark"])
    assert np.array(report["confusion_matrix"]).sum() == 6


def test_diagnose_dicom_prints_json_and_writes_deidentified_copy(tiny_classifier, tmp_path, capsys):
    copy = tmp_path / "deid.dcm"
    overlays = tmp_path / "overlays"
    assert main(["diagnose", CT, "--model", str(tiny_classifier / "model"), "--window", "lung",
                 "--deidentified-copy", str(copy), "--overlays", str(overlays)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["analysis"]["kind"] == "image-classifier" and set(result["analysis"]["scores"]) == {"dark", "light"}
    assert result["image"]["window"] == {"center": -600, "width": 1500}
    assert "PatientName (emptied)" in result["image"]["removed_phi"]
    stored = pydicom.dcmread(copy)
    assert all(e.is_empty for e in stored.iterall() if e.keyword in PHI_KEYWORDS)
    assert (overlays / "explanation.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["diagnose", "{tmp}/notes.txt"], "'notes.txt' is not a readable image"),
        (["diagnose", CT, "--window", "lung", "--model", "no-such-model"], "no model at 'no-such-model'"),
        (["diagnose", CT, "--window", "sepia"], "window 'sepia' not available"),
        (["diagnose", CT, "--max-pixels", "100"], "over the limit of 100"),
        (["eval-segmenter", "no-such-model", "{tmp}"], "no model at 'no-such-model'"),
        (["train-segmenter", "{tmp}", "--out", "{tmp}/m"], "must hold images/ and masks/"),
    ],
)
def test_cli_errors_are_one_line(args, message, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_build_diagnosis_data_holds_out_whole_sources(tmp_path, capsys):
    shared = shared_path()
    assert main(["build-diagnosis-data", "--shared", str(shared), "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    sources: dict[tuple[str, str], set] = {}
    for row in manifest["files"]:
        sources.setdefault((row["dataset"], row["split"]), set()).add(row["source"].split("#")[0])
        assert (tmp_path / row["file"]).is_file()
    for dataset in ("modality", "kvasir"):  # no source image, DICOM or video in both splits of a dataset
        assert not sources[(dataset, "train")] & sources[(dataset, "eval")]
    counts = manifest["counts"]
    assert all(counts["train"][c] > 0 and counts["eval"][c] > 0
               for c in ("laparoscopy", "colonoscopy", "dermoscopy", "chest-xray", "ct"))
    assert counts["eval"]["polyp-images"] == 1 and counts["train"]["polyp-images"] == 4
