"""Tracking metrics: CLEAR-MOT (MOTA, ID switches) and IDF1, from per-frame ids and boxes.

Input is one (ids, xyxy) pair per frame for the ground truth and for the tracker. A ground-truth
box and a tracked box correspond when their IoU is at least `iou_threshold`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from analysis.metrics.detection import box_iou


@dataclass(frozen=True)
class FrameTracks:
    """Ids and xyxy boxes of one frame."""

    ids: np.ndarray
    xyxy: np.ndarray


@dataclass
class TrackingReport:
    frames: int
    gt_objects: int
    matches: int
    false_positives: int
    misses: int
    id_switches: int
    mota: float
    motp_iou: float
    idtp: int
    idfp: int
    idfn: int
    idf1: float
    gt_tracks: int
    predicted_tracks: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def evaluate_tracking(
    ground_truth: Sequence[FrameTracks], predicted: Sequence[FrameTracks], iou_threshold: float = 0.5
) -> TrackingReport:
    """CLEAR-MOT and identity metrics over aligned frame sequences."""
    if len(ground_truth) != len(predicted):
        raise ValueError(f"{len(ground_truth)} ground-truth frames but {len(predicted)} predicted frames")
    last_match: dict[int, int] = {}  # gt id -> predicted id it was last matched to
    matches = fp = fn = switches = 0
    iou_sum = 0.0
    gt_ids_all: list[int] = []
    pr_ids_all: list[int] = []
    pair_counts: dict[tuple[int, int], int] = {}
    gt_counts: dict[int, int] = {}
    pr_counts: dict[int, int] = {}
    for gt, pr in zip(ground_truth, predicted):
        g_ids, p_ids = np.asarray(gt.ids, int), np.asarray(pr.ids, int)
        for g in g_ids:
            gt_counts[int(g)] = gt_counts.get(int(g), 0) + 1
        for p in p_ids:
            pr_counts[int(p)] = pr_counts.get(int(p), 0) + 1
        gt_ids_all += g_ids.tolist()
        pr_ids_all += p_ids.tolist()
        ious = box_iou(gt.xyxy, pr.xyxy) if len(g_ids) and len(p_ids) else np.zeros((len(g_ids), len(p_ids)))
        # CLEAR-MOT: keep last frame's correspondences when still valid, then assign the rest.
        cost = 1.0 - ious
        for gi, g in enumerate(g_ids):
            prev = last_match.get(int(g))
            if prev is not None and prev in p_ids:
                pj = int(np.where(p_ids == prev)[0][0])
                if ious[gi, pj] >= iou_threshold:
                    cost[gi, pj] = -1.0  # strongly prefer the continued match
        pairs: list[tuple[int, int]] = []
        if ious.size:
            rows, cols = linear_sum_assignment(cost)
            pairs = [(r, c) for r, c in zip(rows, cols) if ious[r, c] >= iou_threshold]
        for r, c in pairs:
            g, p = int(g_ids[r]), int(p_ids[c])
            if g in last_match and last_match[g] != p:
                switches += 1
            last_match[g] = p
            iou_sum += ious[r, c]
        # Identity measures count every frame a gt and a predicted box overlap enough (Ristani et al. 2016).
        for r, c in zip(*np.nonzero(ious >= iou_threshold)):
            key = (int(g_ids[r]), int(p_ids[c]))
            pair_counts[key] = pair_counts.get(key, 0) + 1
        matches += len(pairs)
        fp += len(p_ids) - len(pairs)
        fn += len(g_ids) - len(pairs)
    n_gt = len(gt_ids_all)
    mota = 1.0 - (fn + fp + switches) / n_gt if n_gt else 0.0

    # IDF1: one-to-one assignment of whole trajectories maximising frames matched (IDTP).
    gts, prs = sorted(gt_counts), sorted(pr_counts)
    idtp = 0
    if gts and prs:
        weight = np.zeros((len(gts), len(prs)))
        for (g, p), n in pair_counts.items():
            weight[gts.index(g), prs.index(p)] = n
        rows, cols = linear_sum_assignment(-weight)
        idtp = int(weight[rows, cols].sum())
    idfn = n_gt - idtp
    idfp = len(pr_ids_all) - idtp
    idf1 = 2 * idtp / (2 * idtp + idfp + idfn) if (idtp + idfp + idfn) else 0.0
    return TrackingReport(
        frames=len(ground_truth),
        gt_objects=n_gt,
        matches=matches,
        false_positives=fp,
        misses=fn,
        id_switches=switches,
        mota=mota,
        motp_iou=iou_sum / matches if matches else 0.0,
        idtp=idtp,
        idfp=idfp,
        idfn=idfn,
        idf1=idf1,
        gt_tracks=len(gts),
        predicted_tracks=len(prs),
    )
