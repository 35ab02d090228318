"""What Case review's player draws over the original video at its own rate: boxes and a phase strip.

The detector ran on analysed frames only (e.g. 1 fps). `overlay_payload` turns the case's detections
table into compact JSON for the browser (app/player_overlay.py draws it on a canvas over the <video>
at every displayed frame); `boxes_at` is the same lookup in Python, the reference the browser's code
mirrors and the tests check. The rule is `analysis.clips.TimedDetections`' (what annotated clips
draw): a track's box moves linearly between two of its analysed frames at most
MAX_GAP_INTERVALS sampling intervals apart, is held for one interval after its last frame otherwise;
untracked boxes are held for one interval. As in every drawing of the boxes (models.annotators'
InstrumentAnnotator), boxes of any class overlapping a more confident one by more than SUPPRESS_IOU are one
instrument read as two classes (Hook and Scissors) and are drawn once, as the more confident.

Coordinates are fractions of the analysed frame, quantised to 1/SCALE (an int each), so the browser
only scales them to the video's displayed size.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.clips import MAX_GAP_INTERVALS, UNKNOWN_COLOUR, class_names_of
from models.annotators import DUPLICATE_IOU, distinct_boxes
from models.taxonomy import display_name, label_of

SCALE = 10_000  # box coordinates are ints in 0..SCALE (fractions of the frame)
EPS_S = 1e-6
SUPPRESS_IOU = DUPLICATE_IOU
PAYLOAD_VERSION = 1


def _quantised(xyxy: np.ndarray, frame_size: tuple[int, int]) -> list[int]:
    w, h = frame_size
    scaled = xyxy / np.array([w, h, w, h], dtype=np.float64) * SCALE
    return np.clip(np.rint(scaled), 0, SCALE).astype(np.int64).ravel().tolist()


def overlay_payload(table: pd.DataFrame, interval_s: float, frame_size: tuple[int, int],
                    segments: Sequence[dict[str, Any]] = (), duration_s: float = 0.0) -> dict[str, Any]:
    """The overlay's JSON: tracks and untracked boxes of `table` (a detections table: timestamp_s,
    x1..y2 in pixels of `frame_size` frames, class_id, tracker_id), names and colours per class,
    and the phase `segments` ({start_s, end_s, label}) for the strip under the player."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s!r}")
    w, h = (int(v) for v in frame_size)
    if w <= 0 or h <= 0:
        raise ValueError(f"frame_size must be two positive numbers of pixels, got {frame_size!r}")
    names = class_names_of(table)
    tracks: list[dict[str, Any]] = []
    loose: dict[str, list] = {"t": [], "c": [], "p": [], "b": []}
    if not table.empty:
        table = table.sort_values("timestamp_s", kind="stable")
        tracked = table["tracker_id"] >= 0
        for tid, df in table[tracked].groupby("tracker_id", sort=True):
            classes = df["class_id"].astype(int).tolist()
            tracks.append({"id": int(tid), "t": [round(float(t), 3) for t in df["timestamp_s"]],
                           "c": classes[0] if len(set(classes)) == 1 else classes,
                           "p": _confidences(df),
                           "b": _quantised(df[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), (w, h))})
        rest = table[~tracked]
        loose = {"t": [round(float(t), 3) for t in rest["timestamp_s"]], "c": rest["class_id"].astype(int).tolist(),
                 "p": _confidences(rest), "b": _quantised(rest[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), (w, h))}
    phases = []
    for seg in segments:
        label = label_of(str(seg["label"]), "phase")
        phases.append({"s": round(float(seg["start_s"]), 3), "e": round(float(seg["end_s"]), 3),
                       "name": display_name(str(seg["label"]), "phase"),
                       "colour": label.colour if label else UNKNOWN_COLOUR})
    return {
        "version": PAYLOAD_VERSION,
        "scale": SCALE,
        "interval_s": float(interval_s),
        "max_gap_s": MAX_GAP_INTERVALS * float(interval_s),
        "suppress_iou": SUPPRESS_IOU,
        "duration_s": float(duration_s),
        "names": [display_name(n, "tool") for n in names],
        "colours": [(label.colour if (label := label_of(n, "tool")) else UNKNOWN_COLOUR) for n in names],
        "tracks": tracks,
        "loose": loose,
        "phases": phases,
    }


def _confidences(df: pd.DataFrame) -> list[float]:
    values = df["confidence"] if "confidence" in df else pd.Series(1.0, index=df.index)
    return [round(float(v), 3) for v in values]


def boxes_at(payload: dict[str, Any], t: float, suppress: bool = True) -> list[tuple[float, float, float, float, int, int]]:
    """The boxes the overlay draws at `t` seconds: (x1, y1, x2, y2 as frame fractions, class id, track id or -1);
    `suppress=False` keeps duplicates of one instrument (what the table holds)."""
    scale = float(payload["scale"])
    interval, max_gap = float(payload["interval_s"]), float(payload["max_gap_s"])
    out = []
    for track in payload["tracks"]:
        times = track["t"]
        i = int(np.searchsorted(times, t + EPS_S, side="right")) - 1
        if i < 0:
            continue
        b = track["b"]
        box = np.array(b[4 * i:4 * i + 4], dtype=np.float64)
        t0 = times[i]
        if i + 1 < len(times) and times[i + 1] - t0 <= max_gap + EPS_S:
            a = (t - t0) / (times[i + 1] - t0)
            box = box * (1 - a) + np.array(b[4 * i + 4:4 * i + 8], dtype=np.float64) * a
        elif t - t0 >= interval - EPS_S:
            continue
        cls = track["c"][i] if isinstance(track["c"], list) else track["c"]
        out.append((*(box / scale).tolist(), int(cls), int(track["id"]), float(track["p"][i])))
    loose = payload["loose"]
    for j, ts in enumerate(loose["t"]):
        if ts <= t + EPS_S and t - ts < interval - EPS_S:
            out.append((*(np.array(loose["b"][4 * j:4 * j + 4], dtype=np.float64) / scale).tolist(),
                        int(loose["c"][j]), -1, float(loose["p"][j])))
    if suppress and len(out) > 1:
        keep = distinct_boxes(np.array([o[:4] for o in out]), np.array([o[-1] for o in out]),
                              float(payload["suppress_iou"]))
        out = [o for o, k in zip(out, keep) if k]
    return [b[:6] for b in out]
