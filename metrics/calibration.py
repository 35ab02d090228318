"""Calibration of predicted probabilities: expected calibration error and the reliability curve."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def reliability_curve(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-width confidence bin: count, mean confidence, accuracy (empty bins left out)."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if conf.shape != ok.shape or conf.ndim != 1:
        raise ValueError(f"confidence and correct must be 1-D of equal length, got {conf.shape} and {ok.shape}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins!r}")
    if len(conf) and (conf.min() < 0 or conf.max() > 1):
        raise ValueError(f"confidences must lie in [0, 1], got {conf.min()}..{conf.max()}")
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        rows = index == b
        if rows.any():
            out.append({"bin": [b / bins, (b + 1) / bins], "count": int(rows.sum()),
                        "confidence": round(float(conf[rows].mean()), 4), "accuracy": round(float(ok[rows].mean()), 4)})
    return out


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    curve = reliability_curve(confidence, correct, bins)
    total = sum(b["count"] for b in curve)
    if total == 0:
        raise ValueError("no predictions to calibrate")
    return round(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in curve) / total, 4)
