"""Image-quality stage: blur, smoke/haze, exposure and out-of-body score for every analysed frame."""
from __future__ import annotations

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

    def __init__(self, thresholds: QualityThresholds | None = None):
        self.thresholds = thresholds or QualityThresholds()
        self._rows: list[dict[str, Any]] = []

    def reset(self) -> None:
        self._rows = []

    def __call__(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            q = measure_quality(frame.rgb)
            flags = {f"flag_{f.name}": f.flagged for f in quality_findings(q, self.thresholds)}
            self._rows.append({"frame_index": frame.index, "timestamp_s": frame.timestamp_s, **q.to_dict(), **flags})

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        table = pd.DataFrame(self._rows)
        table.to_parquet(ctx.out_dir / QUALITY, index=False)
        ctx.outputs[self.name] = table
        if table.empty:
            return {"frames": 0}
        flags = [c for c in table.columns if c.startswith("flag_")]
        return {
            "frames": len(table),
            "flagged_fraction": {c.removeprefix("flag_"): round(float(table[c].mean()), 4) for c in flags},
            "thresholds": self.thresholds.__dict__,
        }
