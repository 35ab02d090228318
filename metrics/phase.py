"""Surgical phase recognition metrics: accuracy, per-phase precision / recall / Jaccard / F1,
macro averages, confusion matrix, and the relaxed-boundary variant of the Cholec80 / M2CAI protocol.

Conventions (stated in every result's `protocol`):
- Frames are the evaluated samples (usually one per second); `times_s` gives their times, so sparse
  ground truth (e.g. CholecT50's labelled frames) is handled in seconds, not in frame counts.
- Per phase: precision = correct frames predicted p / frames predicted p; recall = correct frames
  labelled p / frames labelled p; Jaccard = correct frames in (labelled p or predicted p) / frames in
  that union; F1 = 2PR / (P + R). Under the strict rule "correct" means prediction == label.
- Phases absent from the ground truth get NaN and are left out of the macro averages (the mean over
  the phases present in the ground truth). A phase present but never predicted gets precision 0
  (the MATLAB script gives NaN there and silently drops it, which flatters the mean).
- The confusion matrix (rows = ground truth, columns = prediction) is always strict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

RELAXED_WINDOW_S = 10.0


def ground_truth_segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs of equal labels as (label, first index, last index), in order."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts - 1, [len(labels) - 1]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def relaxed_correct(
    gt: Sequence[int], pred: Sequence[int], times_s: Sequence[float] | None = None, window_s: float = RELAXED_WINDOW_S
) -> np.ndarray:
    """Which frames count as correct under the relaxed-boundary rule.

    Rule: the ground truth is cut into segments (maximal runs of one phase, in time order). A frame
    of segment k is correct if it is predicted as its own phase, or
    - it lies less than `window_s` seconds after the segment's first frame and is predicted as the
      phase of segment k-1 (a late transition), or
    - it lies less than `window_s` seconds before the segment's last frame and is predicted as the
      phase of segment k+1 (an early transition).
    With one frame per second and 10 s this is the first / last 10 frames of each segment (all of
    it when the segment is shorter), as in the Cholec80 / M2CAI16 evaluation. Differences from the
    official MATLAB script, on purpose: the neighbouring phases are those of the actual neighbouring
    segments (the script uses id differences -1/+1, or up to +-2 for the last four phases, which
    wrongly depends on numbering when phases come out of order), and the end window is applied to
    the segment's end (the script's `curDiff(curDiff(end-t+1:end)==1) = 0` masks its start instead).
    """
    gt, pred = np.asarray(gt, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    times = _times(times_s, len(gt))
    correct = pred == gt
    segments = ground_truth_segments(gt)
    for k, (_, first, last) in enumerate(segments):
        span = slice(first, last + 1)
        t = times[span]
        if k > 0:
            late = (t - times[first] < window_s) & (pred[span] == segments[k - 1][0])
            correct[span] |= late
        if k + 1 < len(segments):
            early = (times[last] - t < window_s) & (pred[span] == segments[k + 1][0])
            correct[span] |= early
    return correct


@dataclass(frozen=True)
class PhaseMetrics:
    """Phase recognition metrics of one video (or of pooled frames); per-phase arrays follow `phase_names`."""

    phase_names: tuple[str, ...]
    frames: int
    accuracy: float
    precision: np.ndarray  # (P,) NaN for phases absent from the ground truth
    recall: np.ndarray
    jaccard: np.ndarray
    f1: np.ndarray
    present: np.ndarray  # (P,) bool, phase occurs in the ground truth
    confusion: np.ndarray  # (P, P) int, rows = ground truth, columns = prediction (strict)
    relaxed_window_s: float | None = None

    def macro(self, name: str) -> float:
        """Mean of a per-phase metric over the phases present in the ground truth."""
        values = getattr(self, name)[self.present]
        return float(np.mean(values)) if len(values) else float("nan")

    def to_dict(self) -> dict[str, Any]:
        per_phase = {
            n: {m: _round(getattr(self, m)[i]) for m in ("precision", "recall", "jaccard", "f1")}
            | {"frames": int(self.confusion[i].sum())}
            for i, n in enumerate(self.phase_names)
        }
        return {
            "frames": self.frames,
            "accuracy": _round(self.accuracy),
            "macro": {m: _round(self.macro(m)) for m in ("precision", "recall", "jaccard", "f1")},
            "macro_over": [n for n, p in zip(self.phase_names, self.present) if p],
            "per_phase": per_phase,
            "confusion": {"rows": "ground truth", "columns": "prediction", "labels": list(self.phase_names),
                          "matrix": self.confusion.tolist()},
            "relaxed_boundary_s": self.relaxed_window_s,
        }


def phase_metrics(
    gt: Sequence[int],
    pred: Sequence[int],
    phase_names: Sequence[str],
    times_s: Sequence[float] | None = None,
    relaxed_s: float | None = None,
) -> PhaseMetrics:
    """Metrics of predicted phase ids against ground-truth ids (0..len(phase_names)-1).

    `times_s` are the frames' times (default one frame per second); `relaxed_s` switches on the
    relaxed-boundary rule of `relaxed_correct` with that window (None = strict).
    """
    gt, pred = np.asarray(gt, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    n_phases = len(phase_names)
    if gt.shape != pred.shape or gt.ndim != 1:
        raise ValueError(f"ground truth and prediction must be 1-D of equal length, got {gt.shape} and {pred.shape}")
    if len(gt) == 0:
        raise ValueError("no frames to evaluate")
    for name, ids in (("ground truth", gt), ("prediction", pred)):
        if ids.min() < 0 or ids.max() >= n_phases:
            raise ValueError(f"{name} phase ids must lie in 0..{n_phases - 1}, got {sorted(set(ids.tolist()))}")
    times = _times(times_s, len(gt))
    if np.any(np.diff(times) < 0):
        raise ValueError("times_s must be in increasing order")
    correct = relaxed_correct(gt, pred, times, relaxed_s) if relaxed_s is not None else pred == gt
    confusion = np.zeros((n_phases, n_phases), dtype=np.int64)
    np.add.at(confusion, (gt, pred), 1)
    precision, recall, jaccard, f1 = (np.full(n_phases, np.nan) for _ in range(4))
    present = np.bincount(gt, minlength=n_phases) > 0
    for p in np.flatnonzero(present):
        is_gt, is_pred = gt == p, pred == p
        union = is_gt | is_pred
        precision[p] = correct[is_pred].sum() / is_pred.sum() if is_pred.any() else 0.0
        recall[p] = correct[is_gt].sum() / is_gt.sum()
        jaccard[p] = correct[union].sum() / union.sum()
        pr = precision[p] + recall[p]
        f1[p] = 2 * precision[p] * recall[p] / pr if pr > 0 else 0.0
    return PhaseMetrics(
        phase_names=tuple(phase_names), frames=len(gt), accuracy=float(correct.mean()), precision=precision,
        recall=recall, jaccard=jaccard, f1=f1, present=present, confusion=confusion, relaxed_window_s=relaxed_s,
    )


def mean_over_videos(results: Sequence[PhaseMetrics]) -> dict[str, Any]:
    """The Cholec80 way of reporting several videos: each metric per video, then mean and std over videos.

    Per-phase values are averaged over the videos where the phase occurs; macro values per video
    first (over that video's phases), then over videos.
    """
    if not results:
        raise ValueError("no per-video results to average")
    names = results[0].phase_names
    out: dict[str, Any] = {"videos": len(results)}
    acc = np.array([r.accuracy for r in results])
    out["accuracy"] = {"mean": _round(acc.mean()), "std": _round(acc.std())}
    out["macro"] = {}
    for m in ("precision", "recall", "jaccard", "f1"):
        values = np.array([r.macro(m) for r in results])
        out["macro"][m] = {"mean": _round(np.nanmean(values)), "std": _round(np.nanstd(values))}
    out["per_phase"] = {}
    for i, n in enumerate(names):
        out["per_phase"][n] = {
            m: _round(np.nanmean(v)) if np.isfinite(v).any() else None
            for m in ("precision", "recall", "jaccard", "f1")
            for v in [np.array([getattr(r, m)[i] for r in results])]
        }
    return out


def _times(times_s: Sequence[float] | None, n: int) -> np.ndarray:
    if times_s is None:
        return np.arange(n, dtype=np.float64)
    times = np.asarray(times_s, dtype=np.float64)
    if times.shape != (n,):
        raise ValueError(f"times_s must have one time per frame ({n}), got shape {times.shape}")
    return times


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)
