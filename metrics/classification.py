"""Image-classification metrics: confusion matrix, sensitivity/specificity, ROC curves and AUC.

Multi-class results are reported one-vs-rest per class. A value that is undefined for the data
(no positives for sensitivity, no negatives for specificity, a single class for AUC) is NaN, never
a made-up 0 or 1; `to_dict()` writes NaN as null.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} labels, y_pred has {len(p)}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if len(arr) and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"{name} holds labels outside 0..{n_classes - 1}: {sorted(set(arr.tolist()))}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def sensitivity_specificity(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class one-vs-rest sensitivity TP/(TP+FN) and specificity TN/(TN+FP); NaN where undefined."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = cm.sum() - tp - fn - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
    return sens, spec


@dataclass
class RocCurve:
    """False/true positive rates at each distinct score threshold (highest threshold first)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    @property
    def auc(self) -> float:
        return auc(self.fpr, self.tpr)


def roc_curve(y_true: Sequence[bool], scores: Sequence[float]) -> RocCurve:
    """ROC of binary labels against scores (scikit-learn, one point per distinct score: tied scores form
    one point). NaN rates when a class is absent."""
    from sklearn.metrics import roc_curve as sk_roc_curve

    y = np.asarray(y_true, dtype=bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} labels, scores has {len(s)}")
    if not len(y):
        return RocCurve(fpr=np.full(1, np.nan), tpr=np.full(1, np.nan), thresholds=np.r_[np.inf])
    if y.all() or not y.any():
        # scikit-learn warns and leaves the absent class's rate NaN: do the same without the warning.
        distinct = np.unique(s)[::-1]
        rate = np.r_[0.0, np.searchsorted(np.sort(-s), -distinct, side="right") / len(s)]
        nan = np.full(len(rate), np.nan)
        return RocCurve(fpr=nan if y.all() else rate, tpr=rate if y.all() else nan, thresholds=np.r_[np.inf, distinct])
    fpr, tpr, thresholds = sk_roc_curve(y, s, drop_intermediate=False)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thresholds)


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoidal area under a curve given by points sorted along x; NaN if any point is NaN."""
    from sklearn.metrics import auc as sk_auc

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    return float(sk_auc(x, y))


@dataclass
class ClassificationReport:
    """Everything `eval-classifier` reports for one model on one labelled set."""

    classes: list[str]
    confusion: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    auc: np.ndarray
    roc: list[RocCurve] = field(repr=False)
    support: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.support is None:
            self.support = self.confusion.sum(axis=1)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.n) if self.n else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN -> None)."""
        return {
            "n": self.n,
            "accuracy": _num(self.accuracy),
            "classes": list(self.classes),
            "confusion_matrix": self.confusion.astype(int).tolist(),
            "per_class": {
                name: {
                    "support": int(self.support[i]),
                    "sensitivity": _num(self.sensitivity[i]),
                    "specificity": _num(self.specificity[i]),
                    "auc": _num(self.auc[i]),
                    "roc": {
                        "fpr": [_num(v) for v in self.roc[i].fpr],
                        "tpr": [_num(v) for v in self.roc[i].tpr],
                    },
                }
                for i, name in enumerate(self.classes)
            },
        }


def classification_report(y_true: Sequence[int], probabilities: np.ndarray, classes: Sequence[str]) -> ClassificationReport:
    """Report for true labels and (N, K) class probabilities; the prediction is the arg-max."""
    probs = np.asarray(probabilities, dtype=np.float64)
    k = len(classes)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise ValueError(f"probabilities must be (N, {k}) for {k} classes, got shape {probs.shape}")
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    cm = confusion_matrix(y, probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64), k)
    sens, spec = sensitivity_specificity(cm)
    rocs = [roc_curve(y == c, probs[:, c]) for c in range(k)]
    return ClassificationReport(
        classes=list(classes), confusion=cm, sensitivity=sens, specificity=spec,
        auc=np.array([r.auc for r in rocs]), roc=rocs,
    )


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def balanced_accuracy(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """Mean per-class sensitivity (recall) over the classes present in `y_true`."""
    sens, _ = sensitivity_specificity(confusion_matrix(y_true, y_pred, n_classes))
    present = sens[~np.isnan(sens)]
    return float(present.mean()) if len(present) else math.nan


def macro_auc(y_true: Sequence[int], probabilities: np.ndarray) -> float:
    """ROC AUC: of class 1 for two classes, else the mean one-vs-rest AUC over classes with both outcomes."""
    probs = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError(f"probabilities must be (N, K) with N = {len(y)}, got shape {probs.shape}")
    if probs.shape[1] == 2:
        return roc_curve(y == 1, probs[:, 1]).auc
    aucs = [roc_curve(y == c, probs[:, c]).auc for c in range(probs.shape[1])]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else math.nan


def bootstrap_interval(
    statistic, *arrays: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(*arrays)` resampling rows with replacement.

    Resamples where the statistic is undefined (NaN, e.g. one class only) are dropped.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    n = len(arrays[0])
    if n == 0 or any(len(a) != n for a in arrays):
        raise ValueError(f"arrays must be non-empty and of equal length, got {[len(a) for a in arrays]}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = statistic(*(np.asarray(a)[idx] for a in arrays))
        if not math.isnan(v):
            values.append(v)
    if not values:
        return math.nan, math.nan
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def auc_interval(is_positive: Sequence[bool], scores: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the ROC AUC."""
    return bootstrap_interval(lambda y, s: roc_curve(y, s).auc, np.asarray(is_positive, bool),
                              np.asarray(scores, np.float64), n_boot=n_boot, seed=seed)
