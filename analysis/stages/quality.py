"""Image-quality stage: blur, smoke/haze, exposure and out-of-body score for the analysed frames.

At most `max_fps` frames per second of video are measured (the first analysed frame of each
1/max_fps slot): image quality changes over seconds, and measuring every frame of an every-frame
analysis would cost about as much as detecting instruments in it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from analysis.pipeline import Stage, StageContext
from analysis.results import QUALITY
from video import Frame
from video.quality import QualityThresholds, measure_quality, quality_findings


class QualityStage(Stage):
    """Measures each frame; the summary gives the share of frames flagged per finding."""

    name = "quality"
    version = "1"

    def __init__(self, thresholds: QualityThresholds | None = None, max_fps: float | None = 5.0):
        if max_fps is not None and (isinstance(max_fps, bool) or not isinstance(max_fps, (int, float)) or not max_fps > 0):
            raise ValueError(f"max_fps must be a positive number or None (every analysed frame), got {max_fps!r}")
        self.thresholds = thresholds or QualityThresholds()
        self.max_fps = max_fps
        self._rows: list[dict[str, Any]] = []
        self._last_slot: int | None = None

    def reset(self) -> None:
        self._rows, self._last_slot = [], None

    def __call__(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            if self.max_fps is not None:
                slot = math.floor(frame.timestamp_s * self.max_fps + 1e-6)
                if slot == self._last_slot:
                    continue
                self._last_slot = slot
            q = measure_quality(frame.rgb)
            flags = {f"flag_{f.name}": f.flagged for f in quality_findings(q, self.thresholds)}
            self._rows.append({"frame_index": frame.index, "timestamp_s": frame.timestamp_s, **q.to_dict(), **flags})

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        table = pd.DataFrame(self._rows)
        ctx.case.write_table(QUALITY, table)
        if table.empty:
            return {"frames": 0}
        flags = [c for c in table.columns if c.startswith("flag_")]
        return {
            "frames": len(table),
            "flagged_fraction": {c.removeprefix("flag_"): round(float(table[c].mean()), 4) for c in flags},
            "thresholds": self.thresholds.__dict__,
            "max_fps": self.max_fps,
        }
