"""YOLO txt datasets: reading labels and writing an ultralytics dataset from other formats."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import yaml

from models.datasets.voc import BoxAnnotation, DatasetError, VOCDataset


def write_yolo_labels(ann: BoxAnnotation, class_names: Sequence[str], path: Path) -> None:
    """Write one image's boxes as normalised `class cx cy w h` lines."""
    lines = []
    for (x1, y1, x2, y2), label in zip(ann.xyxy, ann.labels):
        if label not in class_names:
            raise DatasetError(f"label {label!r} in {str(ann.image_path)!r} is not one of {list(class_names)}")
        cx, cy = (x1 + x2) / 2 / ann.width, (y1 + y2) / 2 / ann.height
        w, h = (x2 - x1) / ann.width, (y2 - y1) / ann.height
        lines.append(f"{class_names.index(label)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def read_yolo_labels(path: str | Path, width: int, height: int, class_names: Sequence[str]) -> BoxAnnotation:
    """Read a YOLO label file back into pixel xyxy boxes."""
    path = Path(path)
    rows = np.loadtxt(path, ndmin=2, dtype=np.float64) if path.exists() and path.stat().st_size else np.zeros((0, 5))
    if rows.shape[1] != 5:
        raise DatasetError(f"{str(path)!r} is not a YOLO box label file (expected 5 columns, got {rows.shape[1]})")
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    labels = tuple(class_names[int(c)] for c in rows[:, 0])
    return BoxAnnotation(image_path=path, width=width, height=height, xyxy=xyxy, labels=labels)


def voc_to_yolo(
    voc_root: str | Path,
    out_dir: str | Path,
    splits: dict[str, Iterable[str]],
    class_names: Sequence[str] | None = None,
) -> Path:
    """Convert a VOC dataset into an ultralytics dataset; returns the path of its data.yaml.

    `splits` maps an ultralytics split name (train/val/test) to VOC split names whose images it
    holds, e.g. {"train": ["trainval"], "val": ["test"]}. Images are symlinked, not copied.
    """
    voc = VOCDataset(voc_root)
    names = list(class_names or voc.class_names())
    out_dir = Path(out_dir)
    for split, voc_splits in splits.items():
        img_dir, lbl_dir = out_dir / "images" / split, out_dir / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        for voc_split in voc_splits:
            for ann in voc.read_split(voc_split):
                link = img_dir / ann.image_path.name
                if not link.exists():
                    os.symlink(ann.image_path.resolve(), link)
                write_yolo_labels(ann, names, lbl_dir / f"{ann.image_path.stem}.txt")
    data_yaml = out_dir / "data.yaml"
    spec = {"path": str(out_dir.resolve()), "names": dict(enumerate(names))}
    spec.update({split: f"images/{split}" for split in splits})
    data_yaml.write_text(yaml.safe_dump(spec, sort_keys=False))
    return data_yaml
