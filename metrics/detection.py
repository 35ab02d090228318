"""Detection metrics: IoU, average precision (COCO 101-point), mAP@0.5 and mAP@0.5:0.95, presence AP."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under a precision-recall curve, COCO style: precision made monotone, sampled at 101 recalls."""
    r = np.concatenate([recall, [np.inf]])  # sentinel: recalls never reached get precision 0
    p = np.concatenate([precision, [0.0]])
    p = np.flip(np.maximum.accumulate(np.flip(p)))
    grid = np.linspace(0, 1, 101)
    idx = np.searchsorted(r, grid, side="left")
    return float(np.mean(p[idx]))


def _match(
    pred_xyxy: np.ndarray, pred_conf: np.ndarray, gt_xyxy: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """Greedy matching by confidence (COCO): (P, T) true-positive flags per IoU threshold."""
    tp = np.zeros((len(pred_xyxy), len(thresholds)), dtype=bool)
    if len(pred_xyxy) == 0 or len(gt_xyxy) == 0:
        return tp
    ious = box_iou(pred_xyxy, gt_xyxy)
    order = np.argsort(-pred_conf, kind="stable")
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(gt_xyxy), dtype=bool)
        for i in order:
            cand = np.where(~taken, ious[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= thr:
                taken[j] = True
                tp[i, t] = True
    return tp


@dataclass
class ImageBoxes:
    """Boxes of one image for evaluation: ground truth or predictions (confidence ignored for GT)."""

    xyxy: np.ndarray
    class_id: np.ndarray
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class DetectionReport:
    """mAP and per-class AP, precision and recall at the chosen confidence."""

    class_names: list[str]
    ap50: dict[str, float]
    ap50_95: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    support: dict[str, int]
    conf_threshold: float

    @property
    def map50(self) -> float:
        vals = [v for k, v in self.ap50.items() if self.support[k] > 0]
        return float(np.mean(vals)) if vals else 0.0

    @property
    def map50_95(self) -> float:
        vals = [v for k, v in self.ap50_95.items() if self.support[k] > 0]
        return float(np.mean(vals)) if vals else 0.0

    def to_dict(self) -> dict:
        return {
            "mAP50": round(self.map50, 4),
            "mAP50_95": round(self.map50_95, 4),
            "conf_threshold": self.conf_threshold,
            "per_class": {
                n: {
                    "AP50": round(self.ap50[n], 4),
                    "AP50_95": round(self.ap50_95[n], 4),
                    "precision": round(self.precision[n], 4),
                    "recall": round(self.recall[n], 4),
                    "instances": self.support[n],
                }
                for n in self.class_names
            },
        }


def evaluate_detections(
    ground_truth: Sequence[ImageBoxes],
    predictions: Sequence[ImageBoxes],
    class_names: Sequence[str],
    conf_threshold: float = 0.25,
) -> DetectionReport:
    """COCO-style AP per class over a set of images (mean over classes with ground truth).

    Precision and recall are reported at `conf_threshold` and IoU 0.5.
    """
    if len(ground_truth) != len(predictions):
        raise ValueError(f"{len(ground_truth)} ground-truth images but {len(predictions)} prediction sets")
    names = list(class_names)
    ap50, ap5095, prec, rec, support = {}, {}, {}, {}, {}
    for c, name in enumerate(names):
        confs, tps, n_gt = [], [], 0
        for gt, pr in zip(ground_truth, predictions):
            g = np.asarray(gt.xyxy).reshape(-1, 4)[np.asarray(gt.class_id) == c]
            pm = np.asarray(pr.class_id) == c
            p, pc = np.asarray(pr.xyxy).reshape(-1, 4)[pm], np.asarray(pr.confidence)[pm]
            n_gt += len(g)
            confs.append(pc)
            tps.append(_match(p, pc, g, IOU_THRESHOLDS))
        conf = np.concatenate(confs) if confs else np.zeros(0)
        tp = np.concatenate(tps) if tps else np.zeros((0, len(IOU_THRESHOLDS)), bool)
        support[name] = n_gt
        if n_gt == 0:
            ap50[name] = ap5095[name] = prec[name] = rec[name] = 0.0
            continue
        order = np.argsort(-conf, kind="stable")
        tp, conf = tp[order], conf[order]
        ctp = np.cumsum(tp, axis=0)
        cfp = np.cumsum(~tp, axis=0)
        recall = ctp / n_gt
        precision = ctp / np.maximum(ctp + cfp, 1)
        aps = [average_precision(recall[:, t], precision[:, t]) if len(conf) else 0.0 for t in range(len(IOU_THRESHOLDS))]
        ap50[name], ap5095[name] = aps[0], float(np.mean(aps))
        k = int(np.sum(conf >= conf_threshold))
        prec[name] = float(precision[k - 1, 0]) if k else 0.0
        rec[name] = float(recall[k - 1, 0]) if k else 0.0
    return DetectionReport(names, ap50, ap5095, prec, rec, support, conf_threshold)


def presence_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of binary presence labels ranked by score; NaN without positives.

    scikit-learn's step-wise AP (sum over thresholds of recall gain x precision): tied scores form
    one threshold, so the value does not depend on input order (ties are normal: a missed tool scores 0).
    """
    from sklearn.metrics import average_precision_score

    labels = np.asarray(labels, dtype=bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(labels) != len(scores):
        raise ValueError(f"labels has {len(labels)} entries, scores has {len(scores)}")
    if not labels.any():
        return float("nan")
    return float(average_precision_score(labels, scores))
