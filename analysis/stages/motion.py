"""Motion stage: trajectories and motion metrics from the tracks, split per phase when known."""
from __future__ import annotations

from typing import Any

from analysis.motion import motion_report
from analysis.pipeline import Stage, StageContext
from analysis.results import DETECTIONS, MotionReport


class MotionStage(Stage):
    """Finish-only stage: reads the detection stage's table (and the phase segments if any)."""

    name = "motion"
    version = "1"

    def __init__(self, point: str = "centre"):
        self.point = point

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        det = ctx.outputs.get("detection")
        if det is None:
            return {"skipped": "no detection stage"}
        phase = ctx.outputs.get("phase")
        segments = [s.to_dict() for s in phase.segments] if phase is not None else None
        # Read back from the detection stage's file: memory in boxes (a few per frame), not frames.
        tracks = ctx.case.read_table(DETECTIONS, ("x1", "y1", "x2", "y2", "class_id", "tracker_id", "timestamp_s"))
        report = MotionReport.from_dict(
            motion_report(tracks, det.class_names, ctx.frame_size, ctx.frame_interval_s, segments, self.point))
        ctx.case.write_motion(report)
        ctx.outputs[self.name] = report
        return {
            "tracks": len(report.per_track),
            "per_tool": {k: {m: v[m] for m in ("time_on_screen_s", "path_length_norm", "mean_speed_norm_s", "idle_fraction")}
                         for k, v in report.per_tool.items()},
        }
