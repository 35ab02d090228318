"""Trajectories and motion metrics of tracked instruments.

A trajectory is the sequence of a track's reference points (box centre, or the estimated tip) at
the analysed timestamps. Distances are in pixels of the analysed frame and normalised by the frame
diagonal so videos of different sizes compare; speeds are per second of video time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.spatial import ConvexHull, QhullError

HEATMAP_GRID = (16, 9)  # columns x rows over the frame


@dataclass
class MotionMetrics:
    """Motion of one track, or of every track of one tool."""

    label: str
    samples: int
    time_on_screen_s: float
    appearances: int
    first_seen_s: float | None
    last_seen_s: float | None
    path_length_px: float
    path_length_norm: float  # in frame diagonals
    mean_speed_px_s: float
    peak_speed_px_s: float
    mean_speed_norm_s: float
    peak_speed_norm_s: float
    idle_fraction: float  # share of intervals slower than the idle threshold
    working_area_norm: float  # convex hull of the points as a share of the frame area
    heatmap: list[list[float]] = field(default_factory=list)  # rows x cols, share of samples per cell

    def to_dict(self, with_heatmap: bool = True) -> dict:
        out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        if not with_heatmap:
            out.pop("heatmap")
        return out


def reference_points(xyxy: np.ndarray, frame_size: tuple[int, int], point: str = "centre") -> np.ndarray:
    """(N, 2) points of boxes: their centres, or the tip estimate.

    The tip estimate is the box corner nearest the image centre: laparoscopic instruments enter from
    the border, so their working end points inwards. It is a heuristic for whole-tool boxes.
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if point == "centre":
        return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2], axis=1)
    if point != "tip":
        raise ValueError(f"point must be 'centre' or 'tip', got {point!r}")
    w, h = frame_size
    corners = np.stack(
        [xyxy[:, [0, 1]], xyxy[:, [2, 1]], xyxy[:, [0, 3]], xyxy[:, [2, 3]]], axis=1
    )  # (N, 4, 2)
    dist = np.linalg.norm(corners - np.array([w / 2, h / 2]), axis=2)
    return corners[np.arange(len(xyxy)), dist.argmin(axis=1)]


def _runs(times: np.ndarray, max_gap_s: float) -> list[np.ndarray]:
    """Split sorted sample indices into runs without gaps longer than max_gap_s."""
    if len(times) == 0:
        return []
    breaks = np.where(np.diff(times) > max_gap_s)[0] + 1
    return np.split(np.arange(len(times)), breaks)


def motion_metrics(
    times: np.ndarray,
    points: np.ndarray,
    frame_size: tuple[int, int],
    sample_interval_s: float,
    label: str = "",
    idle_speed_norm_s: float = 0.02,
) -> MotionMetrics:
    """Metrics of one trajectory (times sorted, one point per time; duplicates are averaged)."""
    times = np.asarray(times, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(times) != len(points):
        raise ValueError(f"{len(times)} times but {len(points)} points")
    if sample_interval_s <= 0:
        raise ValueError(f"sample_interval_s must be positive, got {sample_interval_s!r}")
    if len(times):  # one point per timestamp (several boxes of one tool at once are averaged)
        uniq, inv = np.unique(times, return_inverse=True)
        points = np.stack([np.bincount(inv, points[:, k]) / np.bincount(inv) for k in range(2)], axis=1)
        times = uniq
    w, h = frame_size
    diag = float(np.hypot(w, h))
    runs = _runs(times, max_gap_s=1.5 * sample_interval_s)
    steps, dts = [], []
    for run in runs:
        if len(run) > 1:
            steps.append(np.linalg.norm(np.diff(points[run], axis=0), axis=1))
            dts.append(np.diff(times[run]))
    step = np.concatenate(steps) if steps else np.zeros(0)
    dt = np.concatenate(dts) if dts else np.zeros(0)
    speed = step / np.where(dt > 0, dt, np.inf)
    path = float(step.sum())
    area = 0.0
    if len(points) >= 3:
        try:
            area = float(ConvexHull(points).volume) / (w * h)  # in 2-D, "volume" is the area
        except QhullError:  # collinear or repeated points enclose no area
            area = 0.0
    cols, rows = HEATMAP_GRID
    heat = np.zeros((rows, cols))
    if len(points):
        cx = np.clip((points[:, 0] / w * cols).astype(int), 0, cols - 1)
        cy = np.clip((points[:, 1] / h * rows).astype(int), 0, rows - 1)
        np.add.at(heat, (cy, cx), 1)
        heat /= len(points)
    return MotionMetrics(
        label=label,
        samples=int(len(times)),
        time_on_screen_s=float(len(times) * sample_interval_s),
        appearances=len(runs),
        first_seen_s=float(times[0]) if len(times) else None,
        last_seen_s=float(times[-1]) if len(times) else None,
        path_length_px=path,
        path_length_norm=path / diag,
        mean_speed_px_s=float(speed.mean()) if len(speed) else 0.0,
        peak_speed_px_s=float(speed.max()) if len(speed) else 0.0,
        mean_speed_norm_s=float(speed.mean() / diag) if len(speed) else 0.0,
        peak_speed_norm_s=float(speed.max() / diag) if len(speed) else 0.0,
        idle_fraction=float(np.mean(speed / diag < idle_speed_norm_s)) if len(speed) else 0.0,
        working_area_norm=area,
        heatmap=heat.round(4).tolist(),
    )


def motion_report(
    tracks: pd.DataFrame,
    class_names: Sequence[str],
    frame_size: tuple[int, int],
    sample_interval_s: float,
    segments: Sequence[dict] | None = None,
    point: str = "centre",
) -> dict:
    """Motion metrics per track, per tool, and per tool within each phase segment.

    `tracks` has the Detections columns plus `timestamp_s`; rows with tracker_id -1 count for the
    per-tool metrics but not per track.
    """
    out: dict = {"point": point, "sample_interval_s": sample_interval_s, "per_track": [], "per_tool": {}, "per_phase": []}
    if tracks.empty:
        return out
    pts = reference_points(tracks[["x1", "y1", "x2", "y2"]].to_numpy(), frame_size, point)
    tracks = tracks.assign(px=pts[:, 0], py=pts[:, 1]).sort_values("timestamp_s")

    def metrics(df: pd.DataFrame, label: str) -> MotionMetrics:
        return motion_metrics(df["timestamp_s"].to_numpy(), df[["px", "py"]].to_numpy(), frame_size, sample_interval_s, label)

    for tid, df in tracks[tracks["tracker_id"] >= 0].groupby("tracker_id"):
        cls = class_names[int(df["class_id"].mode().iloc[0])]
        m = metrics(df, cls).to_dict(with_heatmap=False)
        out["per_track"].append({"tracker_id": int(tid), **m, "path": df[["timestamp_s", "px", "py"]].round(2).to_numpy().tolist()})
    for cid, df in tracks.groupby("class_id"):
        out["per_tool"][class_names[int(cid)]] = metrics(df, class_names[int(cid)]).to_dict()
    for seg in segments or []:
        in_seg = tracks[(tracks["timestamp_s"] >= seg["start_s"]) & (tracks["timestamp_s"] < seg["end_s"])]
        tools = {class_names[int(c)]: metrics(df, class_names[int(c)]).to_dict(with_heatmap=False) for c, df in in_seg.groupby("class_id")}
        out["per_phase"].append({"phase": seg["label"], "start_s": seg["start_s"], "end_s": seg["end_s"], "tools": tools})
    return out


def tool_presence_per_second(detections: pd.DataFrame, class_names: Sequence[str], duration_s: float) -> pd.DataFrame:
    """Max confidence of each tool in each whole second of video (0 where absent)."""
    seconds = np.arange(int(np.ceil(duration_s)) if duration_s > 0 else 0)
    table = pd.DataFrame({"second": seconds})
    for c, name in enumerate(class_names):
        col = np.zeros(len(seconds), dtype=np.float32)
        if not detections.empty:
            sub = detections[detections["class_id"] == c]
            sec = np.clip(sub["timestamp_s"].to_numpy().astype(int), 0, max(len(seconds) - 1, 0))
            if len(seconds):
                np.maximum.at(col, sec, sub["confidence"].to_numpy(np.float32))
        table[name] = col
    return table
