"""Training the detector end to end on a few real m2cai16 frames, exporting it, and loading it back."""
import json

import pytest

from models.datasets.voc import VOCDataset
from tests.conftest import shared_path


@pytest.mark.slow
def test_train_export_and_load_a_tiny_detector(tmp_path):
    from app.cli import main
    from models.detector import Detector

    src = VOCDataset(shared_path("m2cai16-tool-locations"))
    voc = tmp_path / "voc"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    (voc / "JPEGImages").mkdir()
    ids = src.split_ids("trainval")[:8]
    for i in ids:
        (voc / "Annotations" / f"{i}.xml").symlink_to((src.root / "Annotations" / f"{i}.xml").resolve())
        (voc / "JPEGImages" / f"{i}.jpg").symlink_to((src.root / "JPEGImages" / f"{i}.jpg").resolve())
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(ids[:6]))
    (voc / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids[6:]))
    (voc / "class_list.txt").write_text((src.root / "class_list.txt").read_text())

    runs = tmp_path / "runs"
    args = ["train-detector", "--data", str(voc), "--out", str(runs), "--epochs", "1", "--imgsz", "64", "--batch", "4", "--device", "cpu"]
    assert main(args) == 0
    assert main(args) == 0  # a finished run is not trained again
    assert main(["export-detector", str(runs / "train"), "--dest", str(tmp_path / "model"), "--version", "0.0-test"]) == 0
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert meta["classes"] == src.class_names() and meta["input_size"] == 64
    assert meta["training"]["epochs_completed"] == 1 and meta["version"] == "0.0-test"
    detector = Detector(tmp_path / "model")
    assert detector.class_names == meta["classes"]
