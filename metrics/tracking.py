"""Tracking metrics: CLEAR-MOT (MOTA, ID switches), IDF1 and HOTA, computed by TrackEval.

Input is one (ids, xyxy) pair per frame for the ground truth and for the tracker. A ground-truth
box and a tracked box correspond when their IoU is at least `iou_threshold` (HOTA averages over its
own IoU thresholds 0.05..0.95). This module is a thin adapter: it builds TrackEval's per-sequence
data (ids relabelled 0..n-1, IoU matrices) and applies the MOTChallenge ground-truth flags first.

Ignored ground-truth boxes (`FrameTracks.ignore`, a MOT `gt.txt` row whose flag column is 0)
are handled as TrackEval handles MOTChallenge distractors: a tracked box matched to one (Hungarian
on IoU >= 0.5) is removed, and the ignored box itself is neither a miss nor a match.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from metrics.detection import box_iou

# TrackEval's own threshold for matching tracked boxes to distractors (mot_challenge_2d_box.py).
_DISTRACTOR_IOU = 0.5


@dataclass(frozen=True)
class FrameTracks:
    """Ids and xyxy boxes of one frame; `ignore` (ground truth only) marks boxes not to be scored."""

    ids: np.ndarray
    xyxy: np.ndarray
    ignore: np.ndarray | None = None


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
    hota: float = 0.0
    deta: float = 0.0
    assa: float = 0.0
    ignored_gt: int = 0
    removed_predictions: int = 0  # tracked boxes dropped because they matched an ignored ground-truth box

    def to_dict(self) -> dict:
        return {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in asdict(self).items()}


def _sequence_data(
    ground_truth: Sequence[FrameTracks], predicted: Sequence[FrameTracks]
) -> tuple[dict[str, Any], int, int]:
    """TrackEval's preprocessed sequence dict, plus the counts of ignored gt and removed predictions."""
    from scipy.optimize import linear_sum_assignment

    gt_ids, pr_ids, sims = [], [], []
    ignored = removed = 0
    for f, (gt, pr) in enumerate(zip(ground_truth, predicted)):
        g_ids, p_ids = np.asarray(gt.ids, int).reshape(-1), np.asarray(pr.ids, int).reshape(-1)
        g_box, p_box = np.asarray(gt.xyxy, float).reshape(-1, 4), np.asarray(pr.xyxy, float).reshape(-1, 4)
        for name, ids, boxes in (("ground truth", g_ids, g_box), ("predicted", p_ids, p_box)):
            if len(ids) != len(boxes):
                raise ValueError(f"frame {f}: {len(ids)} {name} ids but {len(boxes)} boxes")
            if len(np.unique(ids)) != len(ids):
                raise ValueError(f"frame {f}: {name} ids repeat within the frame: {ids.tolist()}")
        ignore = np.zeros(len(g_ids), bool) if gt.ignore is None else np.asarray(gt.ignore, bool).reshape(-1)
        if len(ignore) != len(g_ids):
            raise ValueError(f"frame {f}: {len(ignore)} ignore flags for {len(g_ids)} ground-truth boxes")
        sim = box_iou(g_box, p_box)
        if ignore.any() and len(p_ids):
            score = np.where(sim >= _DISTRACTOR_IOU - np.finfo(float).eps, sim, 0.0)
            rows, cols = linear_sum_assignment(-score)
            hit = score[rows, cols] > np.finfo(float).eps
            drop = cols[hit & ignore[rows]]
            removed += len(drop)
            p_ids, sim = np.delete(p_ids, drop), np.delete(sim, drop, axis=1)
        ignored += int(ignore.sum())
        gt_ids.append(g_ids[~ignore])
        pr_ids.append(p_ids)
        sims.append(sim[~ignore])

    def relabel(per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        unique = np.unique(np.concatenate(per_frame)) if per_frame else np.zeros(0, int)
        return [np.searchsorted(unique, ids).astype(int) for ids in per_frame], len(unique)

    gt_rel, n_gt_ids = relabel(gt_ids)
    pr_rel, n_pr_ids = relabel(pr_ids)
    data = {
        "num_timesteps": len(ground_truth),
        "num_gt_ids": n_gt_ids,
        "num_tracker_ids": n_pr_ids,
        "num_gt_dets": int(sum(len(i) for i in gt_rel)),
        "num_tracker_dets": int(sum(len(i) for i in pr_rel)),
        "gt_ids": gt_rel,
        "tracker_ids": pr_rel,
        "similarity_scores": sims,
    }
    return data, ignored, removed


def evaluate_tracking(
    ground_truth: Sequence[FrameTracks], predicted: Sequence[FrameTracks], iou_threshold: float = 0.5
) -> TrackingReport:
    """CLEAR-MOT, identity (IDF1) and HOTA metrics over aligned frame sequences (TrackEval)."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    if len(ground_truth) != len(predicted):
        raise ValueError(f"{len(ground_truth)} ground-truth frames but {len(predicted)} predicted frames")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
    data, ignored, removed = _sequence_data(ground_truth, predicted)
    config = {"THRESHOLD": iou_threshold, "PRINT_CONFIG": False}
    clear = CLEAR(config).eval_sequence(data)
    ident = Identity(config).eval_sequence(data)
    hota = HOTA().eval_sequence(data)
    n_gt = data["num_gt_dets"]
    tp = int(clear["CLR_TP"])
    return TrackingReport(
        frames=len(ground_truth),
        gt_objects=n_gt,
        matches=tp,
        false_positives=int(clear["CLR_FP"]),
        misses=int(clear["CLR_FN"]),
        id_switches=int(clear["IDSW"]),
        mota=float(clear["MOTA"]) if n_gt else 0.0,
        motp_iou=float(clear["MOTP_sum"]) / tp if tp else 0.0,
        idtp=int(ident["IDTP"]),
        idfp=int(ident["IDFP"]),
        idfn=int(ident["IDFN"]),
        idf1=float(ident["IDF1"]),
        gt_tracks=data["num_gt_ids"],
        predicted_tracks=data["num_tracker_ids"],
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        ignored_gt=ignored,
        removed_predictions=removed,
    )
