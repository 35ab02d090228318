"""Annotated clips of any segment of a case, and a representative frame for drawing trajectories on.

A clip is cut from the original video at its own frame rate and every frame gets the case's
detections drawn on it (`models.annotators.InstrumentAnnotator`). The detector ran on sampled frames only (e.g.
1 fps), so `TimedDetections` looks detections up at any time: a tracked box moves linearly between
two consecutive samples of its track, other boxes are held for one sampling interval. Clips are
cached in the case folder's `clips/` and written atomically (`video.cut_clip` through VideoWriter).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from analysis.moments import clock, phase_segments
from analysis.results import CaseResult
from models.annotators import InstrumentAnnotator, trace_length_for
from models.detections import Detections
from models.taxonomy import display_name, label_of
from video import Frame, FrameReader
from video.clip import cut_clip
from video.mask import apply_mask, parse_regions

MAX_CLIP_S = 600.0  # longer excerpts take minutes to render; cut them in parts
UNKNOWN_COLOUR = "#7f7f7f"
MAX_GAP_INTERVALS = 1.5  # a track's samples further apart than this many intervals are not bridged (out of view)


class TimedDetections:
    """The case's detections at any time `t` of the video (boxes in analysed-frame pixels).

    `interval_s` is the sampling interval; a track's samples further apart than 1.5 intervals are
    not bridged (the tool was out of view between them).
    """

    def __init__(self, table: pd.DataFrame, interval_s: float):
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._tracks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = []
        self._loose = table.iloc[0:0]
        if table.empty:
            return
        table = table.sort_values("timestamp_s")
        for tid, df in table[table["tracker_id"] >= 0].groupby("tracker_id"):
            self._tracks.append((df["timestamp_s"].to_numpy(float), df[["x1", "y1", "x2", "y2"]].to_numpy(np.float32),
                                 df["confidence"].to_numpy(np.float32), df["class_id"].to_numpy(np.int64), int(tid)))
        self._loose = table[table["tracker_id"] < 0]

    def __call__(self, t: float) -> Detections:
        boxes, conf, cls, tids = [], [], [], []
        eps = 1e-6
        for times, xyxy, confidence, class_id, tid in self._tracks:
            i = int(np.searchsorted(times, t + eps, side="right")) - 1
            if i < 0:
                continue
            t0 = times[i]
            if i + 1 < len(times) and times[i + 1] - t0 <= MAX_GAP_INTERVALS * self.interval_s + eps:
                a = (t - t0) / (times[i + 1] - t0)
                box = xyxy[i] * (1 - a) + xyxy[i + 1] * a
            elif t - t0 < self.interval_s - eps:
                box = xyxy[i]
            else:
                continue
            boxes.append(box)
            conf.append(confidence[i])
            cls.append(class_id[i])
            tids.append(tid)
        if not self._loose.empty:
            ts = self._loose["timestamp_s"].to_numpy(float)
            held = self._loose[(ts <= t + eps) & (t - ts < self.interval_s - eps)]
            boxes.extend(held[["x1", "y1", "x2", "y2"]].to_numpy(np.float32))
            conf.extend(held["confidence"].to_numpy(np.float32))
            cls.extend(held["class_id"].to_numpy(np.int64))
            tids.extend([-1] * len(held))
        if not boxes:
            return Detections.empty()
        return Detections(np.stack(boxes), conf, cls, tids)


def class_names_of(table: pd.DataFrame) -> list[str]:
    """Class names indexed by class_id: from the table's class_name column, else the taxonomy's tools."""
    from models.taxonomy import load_taxonomy

    names = list(load_taxonomy().tool_names)
    if not table.empty and "class_name" in table:
        for cid, name in table[["class_id", "class_name"]].drop_duplicates().itertuples(index=False):
            cid = int(cid)
            names.extend(f"class {i}" for i in range(len(names), cid + 1))
            names[cid] = str(name)
    elif not table.empty:
        top = int(table["class_id"].max())
        names.extend(f"class {i}" for i in range(len(names), top + 1))
    return names


class ClipAnnotator:
    """The per-frame transform of an annotated clip: detections, trails, the time and the phase.

    `mask`: rectangles (frame fractions) blacked out first (burned-in text; video/mask.py).
    """

    def __init__(self, result: CaseResult, trail_s: float = 4.0, mask=None):
        self.mask = parse_regions(mask)
        table = result.detections()
        self.analysed_size = result.sampling.frame_size
        self.detections = TimedDetections(table, result.sampling.frame_interval_s)
        names = class_names_of(table)
        colours = [(label.colour if (label := label_of(n, "tool")) else UNKNOWN_COLOUR) for n in names]
        self.annotator = InstrumentAnnotator([display_name(n, "tool") for n in names], colours,
                                             trace_length_for(trail_s, result.video.fps))
        self.segments = phase_segments(result)

    def reset(self) -> None:
        self.annotator.reset()

    def phase_at(self, t: float) -> str | None:
        for seg in self.segments:
            if seg["start_s"] <= t < seg["end_s"]:
                return display_name(seg["label"], "phase")
        return None

    def __call__(self, frame: Frame) -> np.ndarray:
        h, w = frame.rgb.shape[:2]
        det = self.detections(frame.timestamp_s)
        aw, ah = self.analysed_size
        if len(det) and aw and ah and (aw, ah) != (w, h):
            det.xyxy = det.xyxy * np.array([w / aw, h / ah, w / aw, h / ah], dtype=np.float32)
        out = self.annotator.annotate(apply_mask(frame.rgb, self.mask), det)
        caption = clock(frame.timestamp_s) + (f"  {phase}" if (phase := self.phase_at(frame.timestamp_s)) else "")
        scale = max(h / 480, 0.5)
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, 1)
        cv2.rectangle(out, (0, h - th - base - 8), (tw + 12, h), (0, 0, 0), -1)
        cv2.putText(out, caption, (6, h - base - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, (255, 255, 255), 1, cv2.LINE_AA)
        return out


def annotated_clip(case_dir: str | Path, video_path: str | Path, start_s: float, end_s: float,
                   overwrite: bool = False, mask=None) -> Path:
    """The annotated H.264 clip of [start_s, end_s) of the case's video, cut once and cached.

    `mask`: the case's mask regions, blacked out on every frame (a new mask deletes the cached clips:
    Library.set_mask_regions).
    """
    start_s, end_s = float(start_s), float(end_s)
    if end_s <= start_s:
        raise ValueError(f"clip start ({start_s:g} s) must be before its end ({end_s:g} s)")
    if end_s - start_s > MAX_CLIP_S:
        raise ValueError(f"clip of {end_s - start_s:g} s is longer than {MAX_CLIP_S:g} s; choose a shorter segment")
    result = CaseResult.load(case_dir)
    dst = result.clip_file(start_s, end_s)
    if dst.exists() and not overwrite:
        return dst
    return cut_clip(video_path, dst, start_s, end_s, reencode=True, transform=ClipAnnotator(result, mask=mask))


def representative_time(result: CaseResult) -> float:
    """The analysed time showing the most instruments (the earliest such), else the middle of the video."""
    table = result.detections(["timestamp_s"])
    if table.empty:
        return result.duration_s / 2
    counts = table.groupby("timestamp_s").size()
    return float(counts.idxmax())


def representative_frame(video_path: str | Path, time_s: float, mask=None) -> np.ndarray:
    """The upright RGB frame shown at `time_s` seconds (the first frame at or after it), `mask` blacked out."""
    reader = FrameReader(video_path, sample_fps="all", start_s=max(float(time_s), 0.0))
    for frame in reader:
        return apply_mask(frame.rgb, parse_regions(mask))
    raise ValueError(f"no frame at {time_s:g} s in {str(video_path)!r}")
