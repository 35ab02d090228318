"""Critical-view-of-safety metrics: average precision per criterion, their mean, and balanced accuracy
of "CVS achieved" (all three criteria hold)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

CRITERIA = ("C1", "C2", "C3")


@dataclass
class CVSReport:
    """AP per criterion (NaN where the set has no positive), mAP over the defined ones, balanced accuracy."""

    criteria: list[str]
    ap: np.ndarray
    balanced_accuracy: float
    positives: list[int]
    achieved_positives: int
    frames: int
    threshold: float = 0.5

    @property
    def map(self) -> float:
        return float(np.nanmean(self.ap)) if np.isfinite(self.ap).any() else math.nan

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return None if math.isnan(v) else round(float(v), 6)

        return {
            "ap": {c: num(v) for c, v in zip(self.criteria, self.ap)},
            "map": num(self.map),
            "balanced_accuracy": num(self.balanced_accuracy),
            "frames": self.frames,
            "positives": dict(zip(self.criteria, self.positives)),
            "achieved_positives": self.achieved_positives,
            "decision": f"a criterion holds when its probability >= {self.threshold}; CVS achieved when all three hold",
        }


def cvs_report(truth: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5,
               criteria: Sequence[str] = CRITERIA) -> CVSReport:
    """`truth` (N, K) bool per criterion, `probabilities` (N, K) in 0..1."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(truth).astype(bool)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 2 or y.shape[1] != len(criteria):
        raise ValueError(f"truth {y.shape} and probabilities {p.shape} must both be (N, {len(criteria)})")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError(f"probabilities must lie in 0..1, got range {np.nanmin(p) if p.size else None}..{np.nanmax(p) if p.size else None}")
    ap = np.array([average_precision_score(y[:, j], p[:, j]) if y[:, j].any() else math.nan
                   for j in range(y.shape[1])], dtype=np.float64)
    achieved, predicted = y.all(1), (p >= threshold).all(1)
    rates = [float((predicted[achieved == v] == v).mean()) for v in (True, False) if (achieved == v).any()]
    return CVSReport(
        criteria=list(criteria), ap=ap, balanced_accuracy=float(np.mean(rates)) if rates else math.nan,
        positives=[int(v) for v in y.sum(0)], achieved_positives=int(achieved.sum()), frames=len(y), threshold=threshold,
    )
