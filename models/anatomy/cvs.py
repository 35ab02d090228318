"""Critical view of safety from the predicted anatomy: per-frame features of the masks -> C1..C3 probabilities.

The features follow the graph view of CVS: which structures are seen (area, confidence), where they
sit (centroid, extent), and which touch which (shared boundary of duct/artery/triangle/plate with the
gallbladder and with each other). Each criterion is a logistic regression fitted on train frames only;
its standardisation, coefficients and intercept are stored as tensors beside the segmenter's weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from models.anatomy.data import CLASSES, CRITERIA

# Pairs whose shared boundary the criteria talk about (C1: duct and artery into the gallbladder,
# C2: the triangle cleared, C3: gallbladder off the cystic plate), by class index.
PAIRS = ((4, 5), (3, 5), (2, 5), (1, 5), (3, 4), (2, 3), (2, 4), (1, 2), (1, 3), (1, 4), (6, 5), (6, 2))
PRESENCE = 0.002  # a structure "is seen" when it covers at least 0.2 % of the frame


def _feature_names() -> list[str]:
    names = []
    for c in CLASSES[1:]:
        names += [f"{c}_area", f"{c}_soft_area", f"{c}_present", f"{c}_max_prob", f"{c}_conf",
                  f"{c}_cx", f"{c}_cy", f"{c}_spread", f"{c}_components"]
    names += [f"touch_{CLASSES[a]}_{CLASSES[b]}" for a, b in PAIRS]
    names += ["duct_and_artery_present", "duct_artery_distance"]
    return names


MASK_FEATURES = _feature_names()


def mask_features(prob: np.ndarray) -> np.ndarray:
    """Feature vector of one frame from its (C, h, w) softmax probabilities (see MASK_FEATURES)."""
    import cv2

    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim != 3 or prob.shape[0] != len(CLASSES):
        raise ValueError(f"probabilities must be ({len(CLASSES)}, h, w), got shape {prob.shape}")
    _, h, w = prob.shape
    labels = prob.argmax(0)
    n = float(h * w)
    ys, xs = np.mgrid[0:h, 0:w]
    feats: list[float] = []
    centroids: dict[int, tuple[float, float]] = {}
    masks = {}
    for k in range(1, len(CLASSES)):
        m = labels == k
        masks[k] = m
        area = m.sum() / n
        present = float(area >= PRESENCE)
        if m.any():
            cx, cy = xs[m].mean() / w, ys[m].mean() / h
            spread = math.sqrt(((xs[m] / w - cx) ** 2 + (ys[m] / h - cy) ** 2).mean())
            conf = float(prob[k][m].mean())
            components = cv2.connectedComponents(m.astype(np.uint8))[0] - 1
        else:
            cx = cy = 0.5
            spread = conf = 0.0
            components = 0
        centroids[k] = (cx, cy)
        feats += [area, float(prob[k].mean()), present, float(prob[k].max()), conf, cx, cy, spread, min(components, 5) / 5]
    kernel = np.ones((5, 5), np.uint8)
    dilated = {k: cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for k, m in masks.items()}
    for a, b in PAIRS:
        feats.append(float((dilated[a] & masks[b]).sum()) / math.sqrt(n) / 10)
    both = float(masks[3].sum() / n >= PRESENCE and masks[4].sum() / n >= PRESENCE)
    (ax, ay), (dx, dy) = centroids[3], centroids[4]
    feats += [both, math.hypot(ax - dx, ay - dy) if both else 0.0]
    return np.asarray(feats, dtype=np.float32)


@dataclass
class CVSHead:
    """Standardise, then one logistic regression per criterion: probabilities (N, 3)."""

    feature_set: str  # "mask", "encoder" or "mask+encoder"
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (3, D)
    intercept: np.ndarray  # (3,)
    C: float = 1.0
    cv: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef.shape[1]:
            raise ValueError(f"features must be (N, {self.coef.shape[1]}), got shape {x.shape}")
        x = (x - self.mean) / self.scale
        z = x @ self.coef.T + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_state(self) -> dict[str, Any]:
        """Tensors and plain values for torch.save."""
        import torch

        return {"feature_set": self.feature_set, "C": self.C, "cv": self.cv,
                **{k: torch.from_numpy(np.asarray(getattr(self, k), dtype=np.float32))
                   for k in ("mean", "scale", "coef", "intercept")}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "CVSHead":
        arrays = {k: np.asarray(state[k], dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")}
        return cls(feature_set=str(state["feature_set"]), C=float(state.get("C", 1.0)), cv=dict(state.get("cv", {})), **arrays)


def frame_features(prob: np.ndarray, pooled: np.ndarray, feature_set: str) -> np.ndarray:
    """The feature vector a head of `feature_set` reads, from a frame's probabilities and pooled encoder features."""
    if feature_set == "mask":
        return mask_features(prob)
    if feature_set == "encoder":
        return np.asarray(pooled, dtype=np.float32)
    if feature_set == "mask+encoder":
        return np.concatenate([mask_features(prob), np.asarray(pooled, dtype=np.float32)])
    raise ValueError(f"feature_set must be 'mask', 'encoder' or 'mask+encoder', got {feature_set!r}")


def _fit(x: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    coefs, inters = [], []
    for j in range(y.shape[1]):
        if y[:, j].min() == y[:, j].max():  # one class only: a constant prior
            p = float(np.clip(y[:, j].mean(), 1e-3, 1 - 1e-3))
            coefs.append(np.zeros(x.shape[1]))
            inters.append(math.log(p / (1 - p)))
            continue
        # Unweighted: probabilities keep the training prevalence, so ">= 0.5" means "more likely than not".
        lr = LogisticRegression(C=C, max_iter=2000)
        lr.fit(z, y[:, j])
        coefs.append(lr.coef_[0])
        inters.append(float(lr.intercept_[0]))
    return mean, scale, np.stack(coefs), np.asarray(inters)


def fit_cvs_head(
    features: dict[str, np.ndarray],
    truth: np.ndarray,
    groups: Sequence[str],
    Cs: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0),
    folds: int = 5,
) -> CVSHead:
    """Pick feature set and C by cross-validated mAP on folds grouped by video, then fit on all frames given.

    `features` maps a feature-set name to its (N, D) matrix over the same frames; `truth` is (N, 3) bool.
    """
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import GroupKFold

    y = np.asarray(truth).astype(int)
    groups = np.asarray(groups)
    if y.ndim != 2 or y.shape[1] != len(CRITERIA):
        raise ValueError(f"truth must be (N, {len(CRITERIA)}), got shape {y.shape}")
    n_folds = min(folds, len(set(groups)))
    if n_folds < 2:
        raise ValueError(f"need frames from at least 2 videos to cross-validate, got {len(set(groups))}")
    results = []
    for name, x in features.items():
        x = np.asarray(x, dtype=np.float64)
        for C in Cs:
            oof = np.zeros(y.shape, dtype=np.float64)
            for tr, te in GroupKFold(n_splits=n_folds).split(x, y, groups):
                mean, scale, coef, inter = _fit(x[tr], y[tr], C)
                oof[te] = 1 / (1 + np.exp(-(((x[te] - mean) / scale) @ coef.T + inter)))
            aps = [float(average_precision_score(y[:, j], oof[:, j])) if y[:, j].any() else math.nan
                   for j in range(y.shape[1])]
            results.append({"feature_set": name, "C": C, "ap": [round(a, 4) for a in aps],
                            "map": round(float(np.nanmean(aps)), 4)})
    best = max(results, key=lambda r: r["map"])
    x = np.asarray(features[best["feature_set"]], dtype=np.float64)
    mean, scale, coef, inter = _fit(x, y, best["C"])
    cv = {"folds": n_folds, "grouped_by": "video", "selection": "cross-validated mAP on train folds",
          "best": best, "candidates": results}
    return CVSHead(feature_set=best["feature_set"], mean=mean, scale=scale, coef=coef, intercept=inter, C=best["C"], cv=cv)
