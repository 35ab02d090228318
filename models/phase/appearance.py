"""Anatomy in view as phase evidence: Calot triangle dissection vs gallbladder dissection.

In a short clip both phases show grasper + hook, so tool evidence cannot separate them; the anatomy
can (cystic duct and artery and the hepatocystic triangle before clipping; gallbladder and cystic
plate, the liver bed, after). `CalotEvidence` is a logistic regression on the anatomy segmenter's
per-frame class areas, fitted on real frames labelled with either phase (CholecT50), and `fuse`
moves probability mass between the two phases by its likelihood ratio, leaving the others alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

CALOT, GB_DISSECTION = "CalotTriangleDissection", "GallbladderDissection"


def area_features(areas: Sequence[dict[str, float]], classes: Sequence[str]) -> np.ndarray:
    """(N, K) log area fractions of the anatomy classes of N frames (a floor keeps absent classes finite)."""
    return np.log(np.asarray([[a.get(c, 0.0) for c in classes] for a in areas], dtype=np.float64) + 1e-3)


@dataclass
class CalotEvidence:
    """P(Calot triangle dissection | anatomy areas, frame in one of the two dissection phases)."""

    classes: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    frames: int = 0

    @classmethod
    def fit(cls, features: np.ndarray, is_calot: np.ndarray, classes: Sequence[str], C: float = 1.0) -> "CalotEvidence":
        """Class-balanced L2 logistic regression on standardised features (balanced: the prior stays the
        temporal model's, this only supplies a likelihood ratio)."""
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(is_calot, dtype=bool)
        if len(np.unique(y)) < 2:
            raise ValueError(f"need frames of both phases to fit, got {int(y.sum())} Calot of {len(y)}")
        mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
        reg = LogisticRegression(C=C, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, y)
        return cls(tuple(classes), mean, scale, reg.coef_[0].astype(np.float64), float(reg.intercept_[0]), len(y))

    def log_ratio(self, features: np.ndarray) -> np.ndarray:
        """(N,) log P(anatomy | Calot) / P(anatomy | gallbladder dissection), from the balanced fit."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def to_state(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "frames": self.frames}

    @classmethod
    def from_state(cls, raw: dict[str, Any]) -> "CalotEvidence":
        return cls(tuple(raw["classes"]), np.asarray(raw["mean"]), np.asarray(raw["scale"]), np.asarray(raw["coef"]),
                   float(raw["intercept"]), int(raw.get("frames", 0)))


def smooth(values: np.ndarray, window_s: int) -> np.ndarray:
    """Centred moving mean over `window_s` seconds (edges use what exists)."""
    values = np.asarray(values, dtype=np.float64)
    if window_s <= 1 or len(values) == 0:
        return values
    kernel = np.ones(window_s)
    num = np.convolve(values, kernel, mode="same")
    den = np.convolve(np.ones(len(values)), kernel, mode="same")
    return num / den


def fuse(probs: np.ndarray, log_ratio: np.ndarray, phase_names: Sequence[str], weight: float = 1.0) -> np.ndarray:
    """Re-split each second's Calot + gallbladder-dissection mass by the anatomy likelihood ratio."""
    probs = np.asarray(probs, dtype=np.float64).copy()
    c, g = phase_names.index(CALOT), phase_names.index(GB_DISSECTION)
    mass = probs[:, c] + probs[:, g]
    inner = np.log(np.maximum(probs[:, c], 1e-9)) - np.log(np.maximum(probs[:, g], 1e-9)) + weight * log_ratio
    share = 1.0 / (1.0 + np.exp(-inner))
    probs[:, c], probs[:, g] = mass * share, mass * (1 - share)
    return probs
