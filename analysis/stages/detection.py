"""Detection + tracking stage: boxes for every analysed frame, tracked across frames."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.motion import tool_presence_per_second
from analysis.pipeline import Stage, StageContext
from analysis.results import DETECTIONS, TOOL_PRESENCE
from models.detections import Detections
from models.detector import Detector
from models.tracker import Tracker
from video import Frame


class DetectionStage(Stage):
    """Runs the detector (and a tracker) on each analysed frame.

    `latest` maps the frame indices of the last batch to their (tracked) detections, for stages
    that draw them in the same pass.
    """

    name = "detection"
    version = "1"

    def __init__(
        self,
        weights: str | None = None,
        track: bool = True,
        tracker: str = "bytetrack",
        conf: float = 0.25,
        detector: Detector | None = None,
    ):
        self.weights, self.track, self.tracker_name, self.conf = weights, track, tracker, conf
        self._detector = detector
        self._tracker: Tracker | None = None
        self._parts: list[pd.DataFrame] = []
        self.latest: dict[int, Detections] = {}

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = Detector(self.weights, conf=self.conf)
        return self._detector

    def reset(self) -> None:
        self._parts, self.latest = [], {}
        if self._tracker is not None:
            self._tracker.reset()

    def start(self, ctx: StageContext) -> None:
        if self.track:
            self._tracker = Tracker(self.tracker_name, frame_rate=ctx.analysed_fps)

    def __call__(self, frames: Sequence[Frame]) -> None:
        detections = self.detector([f.rgb for f in frames], [f.index for f in frames])
        self.latest = {}
        for frame, det in zip(frames, detections):
            if self._tracker is not None:
                det = self._tracker(det, np.ascontiguousarray(frame.rgb[..., ::-1]))
            self.latest[frame.index] = det
            if len(det):
                self._parts.append(pd.DataFrame({**det.to_columns(), "timestamp_s": frame.timestamp_s}))

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        names = self.detector.class_names
        empty = pd.DataFrame({**Detections.empty().to_columns(), "timestamp_s": np.zeros(0)})
        table = pd.concat(self._parts, ignore_index=True) if self._parts else empty
        table["class_name"] = pd.Categorical([names[i] for i in table["class_id"]], categories=names)
        table.to_parquet(ctx.out_dir / DETECTIONS, index=False)
        presence = tool_presence_per_second(table, names, ctx.info.duration_s)
        presence.to_parquet(ctx.out_dir / TOOL_PRESENCE, index=False)
        ctx.outputs[self.name] = {"table": table, "class_names": names}
        per_tool = table.groupby("class_name", observed=False).size()
        return {
            "detector": {"weights": str(self.detector.entry.weights.name), "model": self.detector.entry.name,
                         "version": self.detector.metadata.get("version"), "conf": self.conf},
            "tracker": self.tracker_name if self.track else None,
            "boxes": int(len(table)),
            "tracks": int(table.loc[table["tracker_id"] >= 0, "tracker_id"].nunique()),
            "boxes_per_tool": {k: int(v) for k, v in per_tool.items()},
            "tools_present": [n for n in names if (presence[n] > 0).any()],
        }
