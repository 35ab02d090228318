"""`train-detector --corrections`: the exported YOLO set of educator corrections merged into the training data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from models.datasets.voc import DatasetError
from models.taxonomy import load_taxonomy
from models.train_detector import merge_corrections


def _yolo_set(root: Path, names: list[str], labels: dict[str, str], splits=("train", "val")) -> Path:
    """A tiny YOLO dataset: one 64x64 image per label file in each split, a data.yaml with `names`."""
    import cv2

    rng = np.random.default_rng(0)
    for split in splits:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for stem, text in labels.items():
            cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
            (root / "labels" / split / f"{stem}.txt").write_text(text)
    spec = {"path": str(root), "names": dict(enumerate(names)), **{s: f"images/{s}" for s in splits}}
    (root / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root / "data.yaml"


def _corrections(root: Path, labels: dict[str, str]) -> Path:
    """A set shaped like `surglens library export-corrections` writes it: yolo/images, yolo/labels, data.yaml."""
    import cv2

    yolo = root / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    for stem, text in labels.items():
        cv2.imwrite(str(yolo / "images" / f"{stem}.jpg"), np.full((48, 64, 3), 90, np.uint8))
        (yolo / "labels" / f"{stem}.txt").write_text(text)
    names = load_taxonomy().tool_names
    (yolo / "data.yaml").write_text(yaml.safe_dump({"path": str(yolo), "train": "images", "val": "images",
                                                    "names": dict(enumerate(names))}))
    return root


def test_corrections_join_the_training_split_with_the_datasets_class_ids(tmp_path):
    # The dataset names its classes in another order and spelling (aliases of the taxonomy's tools).
    data = _yolo_set(tmp_path / "base", ["hook", "grasper", "specimen_bag"], {"a": "0 0.5 0.5 0.2 0.2\n"})
    tools = load_taxonomy().tool_names
    corrections = _corrections(tmp_path / "export", {
        "video1001_000030": f"{tools.index('Grasper')} 0.5 0.5 0.1 0.1\n{tools.index('Hook')} 0.2 0.2 0.1 0.1\n",
        "video1001_000050": ""})
    merged = merge_corrections(data, corrections, tmp_path / "work")  # the export folder or its yolo/ both do
    spec = yaml.safe_load(merged.read_text())
    assert spec["train"] == [str((tmp_path / "base" / "images" / "train").resolve()),
                             str((tmp_path / "work" / "corrections" / "images").resolve())]
    assert spec["val"] == str((tmp_path / "base" / "images" / "val").resolve())
    assert spec["names"] == {0: "hook", 1: "grasper", 2: "specimen_bag"}
    labels = tmp_path / "work" / "corrections" / "labels"
    assert (labels / "video1001_000030.txt").read_text() == "1 0.5 0.5 0.1 0.1\n0 0.2 0.2 0.1 0.1\n"
    assert (labels / "video1001_000050.txt").read_text() == ""  # a frame without instruments: a negative
    assert (tmp_path / "work" / "corrections" / "images" / "video1001_000030.jpg").resolve() == \
        (corrections / "yolo" / "images" / "video1001_000030.jpg").resolve()
    assert merge_corrections(data, corrections / "yolo", tmp_path / "work") == merged  # again: the same files


@pytest.mark.parametrize(("labels", "folder", "match"), [
    ({"f": "4 0.5 0.5 0.1 0.1\n"}, "export", r"class 4 \('Clipper'\), which the dataset does not have"),
    ({}, "export", "has no images"),
    ({"f": ""}, "nowhere", "must be an exported YOLO set"),
])
def test_bad_corrections_sets(tmp_path, labels, folder, match):
    data = _yolo_set(tmp_path / "base", ["Grasper", "Hook"], {"a": ""})
    _corrections(tmp_path / "export", labels)
    with pytest.raises(DatasetError, match=match):
        merge_corrections(data, tmp_path / folder, tmp_path / "work")


def test_train_detector_takes_the_corrections(tmp_path, capsys, monkeypatch):
    """One tiny epoch (imgsz 64, 3 images in one batch, CPU; ~5 s) of `surglens train-detector --corrections`."""
    pytest.importorskip("ultralytics")
    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path / "data"))  # ultralytics' settings land there
    from app.cli import main

    tools = load_taxonomy().tool_names
    data = _yolo_set(tmp_path / "base", tools, {"a": "0 0.5 0.5 0.4 0.4\n", "b": "2 0.3 0.3 0.2 0.2\n"})
    corrections = _corrections(tmp_path / "export", {"video1001_000030": "3 0.5 0.5 0.3 0.3\n"})
    out = tmp_path / "runs"
    assert main(["train-detector", "--data", str(data), "--corrections", str(corrections / "yolo"), "--out", str(out),
                 "--epochs", "1", "--imgsz", "64", "--batch", "3", "--device", "cpu"]) == 0
    assert (out / "train" / "weights" / "last.pt").exists()
    args = yaml.safe_load((out / "train" / "args.yaml").read_text())
    assert Path(args["data"]) == out / "datasets" / "train" / "with-corrections.yaml"
    cache = out / "datasets" / "train" / "corrections" / "labels.cache"
    assert cache.exists() or "trained:" in capsys.readouterr().out
