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
