"""Detection + tracking stage: boxes for every analysed frame, tracked across frames.

Rows are streamed into detections.parquet in bounded chunks (analysis.stream.ParquetStream) and
tool presence per second is accumulated as it goes, so memory does not grow with video length.
With `detect_every=k` the detector runs on every k-th analysed frame only; the tracker runs on
those, and the frames between get each track's box moved on at its velocity (models.tracker
.BoxPredictor), keeping its id.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.pipeline import Stage, StageContext
from analysis.results import DETECTIONS, TOOL_PRESENCE
from analysis.stream import DEFAULT_ROWS_PER_GROUP, ParquetStream
from models.annotators import DUPLICATE_IOU, distinct_boxes
from models.detections import Detections
from models.detector import Detector
from models.tracker import BoxPredictor, Tracker
from video import Frame


def detections_template(class_names: Sequence[str]) -> pd.DataFrame:
    """An empty detections table with its final columns and dtypes."""
    columns = {**Detections.empty().to_columns(), "timestamp_s": np.zeros(0)}
    table = pd.DataFrame(columns)
    table["class_name"] = pd.Categorical([], categories=list(class_names))
    return table


class DetectionStage(Stage):
    """Runs the detector (and a tracker) on each analysed frame, or on every `detect_every`-th one.

    `backend`: the detector's inference backend (None: OpenVINO when installed, else torch).
    `suppress_iou`: a box overlapping a more confident one of any class by more than this IoU is one
    instrument read as two classes (a hook boxed as Hook and Scissors) and is dropped before tracking, so
    tracks, presence, motion and key moments count the instrument once (None keeps every box). The phase
    stage still reads the detector's own output.

    `latest` maps the frame indices of the last batch to their (tracked) detections, for stages
    that draw them in the same pass.
    """

    name = "detection"
    version = "3"

    def __init__(
        self,
        weights: str | None = None,
        track: bool = True,
        tracker: str = "bytetrack",
        conf: float = 0.25,
        detector: Detector | None = None,
        detect_every: int = 1,
        rows_per_group: int = DEFAULT_ROWS_PER_GROUP,
        backend: str | None = None,
        suppress_iou: float | None = DUPLICATE_IOU,
    ):
        if suppress_iou is not None and not 0 < suppress_iou <= 1:
            raise ValueError(f"suppress_iou must be in (0, 1] or None, got {suppress_iou!r}")
        self.suppress_iou = suppress_iou
        self._suppressed = 0
        if isinstance(detect_every, bool) or not isinstance(detect_every, int) or detect_every < 1:
            raise ValueError(f"detect_every must be a positive integer, got {detect_every!r}")
        if detect_every > 1 and not track:
            raise ValueError(f"detect_every={detect_every} needs tracking (boxes between detected frames follow the tracks)")
        self.weights, self.track, self.tracker_name, self.conf = weights, track, tracker, conf
        self.detect_every, self.rows_per_group, self.backend = detect_every, rows_per_group, backend
        self._detector = detector
        self._tracker: Tracker | None = None
        self._predictor: BoxPredictor | None = None
        self._writer: ParquetStream | None = None
        self._presence = np.zeros((0, 0), dtype=np.float32)
        self._counts = np.zeros(0, dtype=np.int64)
        self._track_ids: set[int] = set()
        self._seen = 0  # analysed frames so far (which ones are detected)
        self._detected = 0
        self._detector_s = self._tracker_s = 0.0
        self._last_raw = Detections.empty()
        self.latest: dict[int, Detections] = {}

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = Detector(self.weights, conf=self.conf, backend=self.backend)
        return self._detector

    def reset(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        self._writer, self.latest, self._track_ids = None, {}, set()
        self._seen = self._detected = self._suppressed = 0
        self._detector_s = self._tracker_s = 0.0
        self._last_raw = Detections.empty()
        if self._tracker is not None:
            self._tracker.reset()
        if self._predictor is not None:
            self._predictor.reset()

    def start(self, ctx: StageContext) -> None:
        names = self.detector.class_names
        if self.track:
            self._tracker = Tracker(self.tracker_name, frame_rate=ctx.analysed_fps / self.detect_every)
        # A track's velocity comes from its last two sightings, if at most 2.5 detection intervals apart.
        self._predictor = BoxPredictor(ctx.frame_size, max_gap_s=2.5 * self.detect_every * ctx.frame_interval_s)
        self._writer = ctx.case.stream_table(DETECTIONS, detections_template(names), self.rows_per_group)
        seconds = int(np.ceil(ctx.info.duration_s)) if ctx.info.duration_s and ctx.info.duration_s > 0 else 0
        self._presence = np.zeros((seconds, len(names)), dtype=np.float32)
        self._counts = np.zeros(len(names), dtype=np.int64)

    def __call__(self, frames: Sequence[Frame]) -> None:
        assert self._writer is not None and self._predictor is not None
        keyed = [(self._seen + i) % self.detect_every == 0 for i in range(len(frames))]
        self._seen += len(frames)
        picked = [f for f, k in zip(frames, keyed) if k]
        t0 = time.perf_counter()
        raw = iter(self.detector([f.rgb for f in picked], [f.index for f in picked]) if picked else [])
        t1 = time.perf_counter()
        self._detector_s += t1 - t0
        self._detected += len(picked)
        self.latest = {}
        shared: list[Detections] = []  # what a stage sharing the detector gets for every frame of the batch
        for frame, key in zip(frames, keyed):
            if key:
                det = self._last_raw = next(raw)
                if self.suppress_iou is not None and len(det) > 1:
                    keep = distinct_boxes(det.xyxy, det.confidence, self.suppress_iou)
                    self._suppressed += int((~keep).sum())
                    det = det[keep]
                if self._tracker is not None:
                    # Only BoT-SORT looks at the image (camera-motion compensation): skip the BGR copy otherwise.
                    bgr = np.ascontiguousarray(frame.rgb[..., ::-1]) if self._tracker.uses_image else None
                    det = self._tracker(det, bgr)
                    self._predictor.observe(det, frame.timestamp_s)
            else:
                det = self._predictor.predict(frame.timestamp_s, frame.index)
            shared.append(self._last_raw)
            self.latest[frame.index] = det
            self._append(det, frame.timestamp_s)
        if self.detect_every > 1:
            # The phase stage asks the shared detector for the whole batch: serve it the detected
            # frames' boxes (held over the skipped frames) instead of a second, full pass.
            self.detector.remember([f.rgb for f in frames], shared)
        self._tracker_s += time.perf_counter() - t1  # tracking, box prediction and table rows

    def _append(self, det: Detections, timestamp_s: float) -> None:
        if not len(det):
            return
        assert self._writer is not None
        columns = det.to_columns()
        self._writer.write({**columns, "timestamp_s": np.full(len(det), timestamp_s), "class_name": det.class_id})
        np.add.at(self._counts, det.class_id, 1)
        self._track_ids.update(int(t) for t in det.tracker_id if t >= 0)
        if len(self._presence):
            second = min(max(int(timestamp_s), 0), len(self._presence) - 1)
            np.maximum.at(self._presence[second], det.class_id, det.confidence)

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        assert self._writer is not None
        names = self.detector.class_names
        self._writer.close()
        boxes, self._writer = self._writer.rows, None
        presence = pd.DataFrame({"second": np.arange(len(self._presence)), **{n: self._presence[:, c] for c, n in enumerate(names)}})
        ctx.case.write_table(TOOL_PRESENCE, presence)
        ctx.outputs[self.name] = DetectionOutput(tuple(names))
        return {
            "detector": {"weights": str(self.detector.entry.weights.name), "model": self.detector.entry.name,
                         "version": self.detector.metadata.get("version"), "conf": self.conf,
                         "backend": self.detector.backend, "precision": getattr(self.detector, "precision", "f32"),
                         **({"backend_note": self.detector.backend_note} if self.detector.backend_note else {})},
            "tracker": self.tracker_name if self.track else None,
            "detect_every": self.detect_every,
            "frames_detected": self._detected,
            "duplicates_suppressed": self._suppressed, "suppress_iou": self.suppress_iou,
            "boxes": int(boxes),
            "tracks": len(self._track_ids),
            "boxes_per_tool": {n: int(self._counts[c]) for c, n in enumerate(names)},
            "tools_present": [n for c, n in enumerate(names) if (self._presence[:, c] > 0).any()],
            "timings": {"detector_s": round(self._detector_s, 3), "tracker_s": round(self._tracker_s, 3)},
        }


@dataclass(frozen=True)
class DetectionOutput:
    """What the detection stage leaves for later stages: the detector's class names (its boxes are in the
    case's detections table, read back with `ctx.case.read_table(DETECTIONS)`)."""

    class_names: tuple[str, ...]
