"""Segmentation metrics: Dice and IoU of binary masks, per image and averaged.

Convention: when both prediction and reference are empty the image scores 1.0 (nothing to find,
nothing found); this is stated in every report because it inflates means on empty images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {t.shape}")
    return p, t


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """2|P∩T| / (|P|+|T|) of two binary masks; 1.0 when both are empty."""
    p, t = _pair(pred, target)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """|P∩T| / |P∪T| of two binary masks; 1.0 when both are empty."""
    p, t = _pair(pred, target)
    union = int((p | t).sum())
    return 1.0 if union == 0 else int((p & t).sum()) / union


@dataclass
class SegmentationReport:
    """Per-image Dice and IoU of one foreground class and their means."""

    names: list[str]
    dice: np.ndarray
    iou: np.ndarray
    label: str = "foreground"

    @property
    def mean_dice(self) -> float:
        return float(self.dice.mean()) if len(self.dice) else math.nan

    @property
    def mean_iou(self) -> float:
        return float(self.iou.mean()) if len(self.iou) else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN -> None)."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else round(float(v), 6)

        return {
            "label": self.label,
            "n": len(self.names),
            "mean_dice": num(self.mean_dice),
            "mean_iou": num(self.mean_iou),
            "empty_pair_convention": "an image with empty prediction and empty reference scores 1.0",
            "per_image": [
                {"name": n, "dice": num(d), "iou": num(i)} for n, d, i in zip(self.names, self.dice, self.iou)
            ],
        }


def segmentation_report(
    preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], names: Sequence[str], label: str = "foreground"
) -> SegmentationReport:
    """Dice and IoU for each (prediction, reference) pair of binary masks."""
    if not (len(preds) == len(targets) == len(names)):
        raise ValueError(f"got {len(preds)} predictions, {len(targets)} references and {len(names)} names")
    return SegmentationReport(
        names=list(names),
        dice=np.array([dice(p, t) for p, t in zip(preds, targets)], dtype=np.float64),
        iou=np.array([iou(p, t) for p, t in zip(preds, targets)], dtype=np.float64),
        label=label,
    )


def class_pixel_counts(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = 255
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: intersection, predicted and reference pixel counts of two label maps.

    Pixels whose reference is `ignore_index` count for nothing (neither prediction nor reference).
    """
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {t.shape}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes!r}")
    keep = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    p, t = p[keep].astype(np.int64), t[keep].astype(np.int64)
    if len(t) and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"reference labels must lie in 0..{num_classes - 1} (or {ignore_index}), got {sorted(set(np.unique(t)))[:10]}")
    if len(p) and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted labels must lie in 0..{num_classes - 1}, got {sorted(set(np.unique(p)))[:10]}")
    inter = np.bincount(t[p == t], minlength=num_classes)
    return inter, np.bincount(p, minlength=num_classes), np.bincount(t, minlength=num_classes)


@dataclass
class MultiClassSegmentationReport:
    """Dataset-level Dice and IoU per class: pixel counts summed over all images, then the ratio.

    A class with no predicted and no reference pixel in the whole set has no score (NaN, null in JSON)
    and is left out of the means. Means run over the foreground classes (every class but the first).
    """

    classes: list[str]
    intersection: np.ndarray
    predicted: np.ndarray
    reference: np.ndarray
    images: int = 0

    @property
    def dice(self) -> np.ndarray:
        total = (self.predicted + self.reference).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, 2.0 * self.intersection / total, np.nan)

    @property
    def iou(self) -> np.ndarray:
        union = (self.predicted + self.reference - self.intersection).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, self.intersection / union, np.nan)

    @property
    def mean_dice(self) -> float:
        fg = self.dice[1:]
        return float(np.nanmean(fg)) if np.isfinite(fg).any() else math.nan

    @property
    def mean_iou(self) -> float:
        fg = self.iou[1:]
        return float(np.nanmean(fg)) if np.isfinite(fg).any() else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `dice` and `iou` keyed by class name, means over the foreground classes."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else round(float(v), 6)

        return {
            "images": self.images,
            "dice": {c: num(v) for c, v in zip(self.classes, self.dice)},
            "iou": {c: num(v) for c, v in zip(self.classes, self.iou)},
            "mean_dice": num(self.mean_dice),
            "mean_iou": num(self.mean_iou),
            "mean_over": list(self.classes[1:]),
            "convention": "pixel counts summed over the dataset, ignore label excluded; a class absent from "
                          "prediction and reference everywhere scores null and is left out of the means",
        }


class MultiClassSegmentationMeter:
    """Accumulates `class_pixel_counts` over images: `meter.update(pred, target)`, then `meter.report()`."""

    def __init__(self, classes: Sequence[str], ignore_index: int | None = 255):
        if len(classes) < 2:
            raise ValueError(f"need background and at least one foreground class, got {list(classes)!r}")
        self.classes = list(classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        n = len(self.classes)
        self.intersection = np.zeros(n, np.int64)
        self.predicted = np.zeros(n, np.int64)
        self.reference = np.zeros(n, np.int64)
        self.images = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        i, p, t = class_pixel_counts(pred, target, len(self.classes), self.ignore_index)
        self.intersection += i
        self.predicted += p
        self.reference += t
        self.images += 1

    def report(self) -> MultiClassSegmentationReport:
        return MultiClassSegmentationReport(
            classes=list(self.classes), intersection=self.intersection.copy(), predicted=self.predicted.copy(),
            reference=self.reference.copy(), images=self.images,
        )


def multiclass_segmentation_report(
    preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], classes: Sequence[str], ignore_index: int | None = 255
) -> MultiClassSegmentationReport:
    """Dataset-level per-class Dice and IoU of label maps (see MultiClassSegmentationReport)."""
    if len(preds) != len(targets):
        raise ValueError(f"got {len(preds)} predictions and {len(targets)} references")
    meter = MultiClassSegmentationMeter(classes, ignore_index)
    for p, t in zip(preds, targets):
        meter.update(p, t)
    return meter.report()
