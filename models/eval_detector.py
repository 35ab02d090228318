"""Evaluating the detector on a labelled split (boxes) and on CholecT50 frames (tool presence)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from metrics.detection import ImageBoxes, evaluate_detections, presence_average_precision
from models.datasets.voc import BoxAnnotation, VOCDataset
from models.detector import Detector


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def predict_images(detector: Detector, paths: Sequence[Path], batch: int = 16) -> list[ImageBoxes]:
    """Detector outputs for image files, as ImageBoxes."""
    out: list[ImageBoxes] = []
    for i in range(0, len(paths), batch):
        frames = [_read_rgb(p) for p in paths[i : i + batch]]
        for det in detector(frames):
            out.append(ImageBoxes(det.xyxy, det.class_id, det.confidence))
    return out


def evaluate_detector_voc(
    weights: str | Path | None,
    voc_root: str | Path,
    split: str = "test",
    imgsz: int | None = None,
    conf_report: float = 0.25,
    backend: str | None = None,
) -> dict:
    """Box mAP@0.5 and mAP@0.5:0.95 (overall and per class), precision/recall on a VOC split.

    `backend`: the detector's inference backend ("torch", "openvino"; None = its automatic choice).
    """
    detector = Detector(weights, conf=0.001, iou=0.6, imgsz=imgsz, max_det=100, backend=backend)
    voc = VOCDataset(voc_root)
    anns: list[BoxAnnotation] = voc.read_split(split)
    names = detector.class_names
    unknown = {label for a in anns for label in a.labels} - set(names)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} in {str(voc_root)!r} are not classes of the detector {names}")
    gts = [ImageBoxes(a.xyxy, np.array([names.index(label) for label in a.labels], dtype=int)) for a in anns]
    t0 = time.perf_counter()
    preds = predict_images(detector, [a.image_path for a in anns])
    seconds = time.perf_counter() - t0
    report = evaluate_detections(gts, preds, names, conf_threshold=conf_report)
    return {
        "task": "detection",
        "data": {"format": "voc", "root": Path(voc_root).name, "split": split, "images": len(anns)},
        "model": {"weights": detector.entry.weights.name, "name": detector.entry.name,
                  "version": detector.metadata.get("version"), "imgsz": detector.imgsz, "backend": detector.backend},
        "protocol": "COCO-style 101-point AP, greedy matching by confidence, detections at conf>=0.001 (NMS IoU 0.6, max 100 per image); "
                    f"precision/recall at conf {conf_report} and IoU 0.5",
        "metrics": report.to_dict(),
        "seconds_per_image": round(seconds / max(len(anns), 1), 4),
    }


def evaluate_presence(
    weights: str | Path | None,
    frames: Sequence[tuple[Path, set[str]]],
    imgsz: int | None = None,
    data_name: str = "",
    backend: str | None = None,
) -> dict:
    """Image-level tool-presence AP: each class scored by its highest box confidence in the image.

    `frames` pairs each image with the set of tool names present. Classes that never occur in the
    labels of this data (and classes the labels do not annotate) are left out of the mean.
    """
    detector = Detector(weights, conf=0.001, iou=0.6, imgsz=imgsz, max_det=100, backend=backend)
    names = detector.class_names
    t0 = time.perf_counter()
    preds = predict_images(detector, [p for p, _ in frames])
    seconds = time.perf_counter() - t0
    scores = np.zeros((len(frames), len(names)), dtype=np.float32)
    for i, pr in enumerate(preds):
        np.maximum.at(scores[i], pr.class_id.astype(int), pr.confidence)
    labels = np.array([[n in tools for n in names] for _, tools in frames], dtype=bool)
    per_class = {}
    for c, name in enumerate(names):
        if labels[:, c].any():
            per_class[name] = {"AP": round(presence_average_precision(labels[:, c], scores[:, c]), 4),
                               "positives": int(labels[:, c].sum())}
    mean_ap = float(np.mean([v["AP"] for v in per_class.values()])) if per_class else 0.0
    return {
        "task": "tool-presence",
        "data": {"name": data_name, "frames": len(frames)},
        "model": {"weights": detector.entry.weights.name, "name": detector.entry.name, "imgsz": detector.imgsz,
                  "backend": detector.backend},
        "protocol": "per image and class, score = max box confidence of that class; AP = scikit-learn average precision (tied scores form one threshold); "
                    "mean over classes with at least one positive",
        "metrics": {"mAP": round(mean_ap, 4), "per_class": per_class},
        "seconds_per_image": round(seconds / max(len(frames), 1), 4),
    }
