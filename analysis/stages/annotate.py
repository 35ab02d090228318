"""Annotated video stage: every analysed frame with boxes, names, track ids and fading trails (H.264)."""
from __future__ import annotations

from typing import Any, Sequence

from analysis.pipeline import Stage, StageContext
from analysis.results import ANNOTATED
from analysis.stages.detection import DetectionStage
from models.taxonomy import load_taxonomy
from video import Frame
from video.writer import VideoWriter
from video.overlay import Annotator


class AnnotateStage(Stage):
    """Draws the detection stage's latest results on the same frames and encodes them."""

    name = "annotate"
    version = "1"

    def __init__(self, detection: DetectionStage, trail_s: float = 4.0):
        self.detection = detection
        self.trail_s = trail_s
        self._writer: VideoWriter | None = None
        self._annotator: Annotator | None = None
        self._frames = 0

    def reset(self) -> None:
        self._close()
        self._frames = 0
        if self._annotator is not None:
            self._annotator.reset()

    def start(self, ctx: StageContext) -> None:
        names = self.detection.detector.class_names
        tax = load_taxonomy()
        colours = [tax.tools[tax.tool_id(n)].colour for n in names]
        self._annotator = Annotator(names, colours, trail_s=self.trail_s)
        # At 1 fps a trail of a few seconds would be a few points: keep at least 4 analysed frames.
        self._annotator.trail_s = max(self.trail_s, 4 * ctx.frame_interval_s)
        self._writer = VideoWriter(ctx.out_dir / ANNOTATED, fps=ctx.analysed_fps, size=ctx.frame_size)
        self._writer.__enter__()

    def __call__(self, frames: Sequence[Frame]) -> None:
        assert self._writer is not None and self._annotator is not None
        for frame in frames:
            det = self.detection.latest.get(frame.index)
            if det is None:
                raise RuntimeError(f"no detections for frame {frame.index}: the detection stage must run before annotate")
            self._writer.write(self._annotator(frame.rgb, det, frame.timestamp_s))
            self._frames += 1

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        self._close()
        return {"file": ANNOTATED, "frames": self._frames, "fps": ctx.analysed_fps}

    def _close(self, exc: BaseException | None = None) -> None:
        if self._writer is not None:
            self._writer.__exit__(type(exc) if exc else None, exc, None)
            self._writer = None
