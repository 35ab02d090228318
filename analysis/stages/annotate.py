"""Annotated video stage: every analysed frame with boxes, names, track ids and fading trails (H.264).

The video has the analysed rate (1 fps analyses give a 1 fps video, not a re-encode of every
source frame). The x264 preset is "veryfast" for sparse rates and "ultrafast" from `FAST_FPS`
analysed frames per second on, where encoding would otherwise cost as much as detection. With
`min_fps` set (the pipeline's default: `ANNOTATE_MIN_FPS`), nothing is encoded below that analysed
rate: a 1 fps video plays as a slideshow nobody watches, while Case review draws the stored boxes
over the original at its own rate and annotated clips are cut on demand (analysis.clips).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from analysis.pipeline import Stage, StageContext
from analysis.results import ANNOTATED
from analysis.stages.detection import DetectionStage
from models.annotators import DUPLICATE_IOU, InstrumentAnnotator, MaskAnnotator, trace_length_for
from models.taxonomy import load_taxonomy
from video import Frame
from video.mask import apply_mask, parse_regions
from video.writer import VideoWriter

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
FAST_FPS = 5.0  # analysed fps from which the "auto" preset is ultrafast
ANNOTATE_MIN_FPS = 5.0  # the default pipeline writes the annotated video only from this analysed rate on


class AnnotateStage(Stage):
    """Draws the detection stage's latest results on the same frames and encodes them.

    `preset`: an x264 preset, or "auto" (veryfast below `FAST_FPS` analysed fps, else ultrafast).
    `mask`: rectangles (frame fractions) blacked out in every written frame (burned-in text).
    `anatomy`: an AnatomyStage (run before this one) whose label maps are drawn under the boxes; a
    map is kept for the frames after it until the next one, at most the stage's interval.
    `min_fps`: below this analysed rate the stage writes nothing (None: always writes).
    """

    name = "annotate"
    version = "1"

    def __init__(self, detection: DetectionStage, trail_s: float = 4.0, preset: str = "auto", crf: int = 23,
                 mask=None, anatomy: Any = None, min_fps: float | None = None):
        if min_fps is not None and not min_fps > 0:
            raise ValueError(f"min_fps must be positive or None, got {min_fps!r}")
        self.min_fps = min_fps
        self._active = True
        if preset not in ("auto", *PRESETS):
            raise ValueError(f"preset must be 'auto' or one of {PRESETS}, got {preset!r}")
        self.mask = parse_regions(mask)
        self.detection = detection
        self.trail_s = trail_s
        self.preset, self.crf = preset, crf
        self._writer: VideoWriter | None = None
        self._annotator: InstrumentAnnotator | None = None
        self._frames = 0
        self._draw_s = self._encode_s = 0.0
        self._used_preset = preset
        self.anatomy = anatomy
        self._mask_annotator: MaskAnnotator | None = None
        self._labels: tuple[float, Any] | None = None  # (timestamp_s, label map) last drawn

    def reset(self) -> None:
        self._close()
        self._frames = 0
        self._labels = None
        if self._annotator is not None:
            self._annotator.reset()

    def start(self, ctx: StageContext) -> None:
        self._active = self.min_fps is None or ctx.analysed_fps >= self.min_fps - 1e-9
        if not self._active:
            return
        names = self.detection.detector.class_names
        tax = load_taxonomy()
        colours = [tax.tools[tax.tool_id(n)].colour for n in names]
        # At 1 fps a trail of a few seconds would be a few points: at least 4 analysed frames.
        # The detection stage stored one box per instrument already (its suppress_iou): no second suppression here.
        self._annotator = InstrumentAnnotator(names, colours, trace_length_for(self.trail_s, ctx.analysed_fps),
                                              suppress_iou=None if self.detection.suppress_iou else DUPLICATE_IOU)
        self._used_preset = self.preset if self.preset != "auto" else ("ultrafast" if ctx.analysed_fps >= FAST_FPS else "veryfast")
        self._draw_s = self._encode_s = 0.0
        self._mask_annotator = None
        if self.anatomy is not None and self.anatomy.missing is None:
            self._mask_annotator = MaskAnnotator(self.anatomy.model.classes, note="anatomy: research model, not for clinical use")
        self._writer = VideoWriter(ctx.case.file(ANNOTATED), fps=ctx.analysed_fps, size=ctx.frame_size,
                                   crf=self.crf, preset=self._used_preset)
        self._writer.__enter__()

    def __call__(self, frames: Sequence[Frame]) -> None:
        if not self._active:
            return
        assert self._writer is not None and self._annotator is not None
        for frame in frames:
            det = self.detection.latest.get(frame.index)
            if det is None:
                raise RuntimeError(f"no detections for frame {frame.index}: the detection stage must run before annotate")
            t0 = time.perf_counter()
            drawn = self._annotator.annotate(apply_mask(self._with_anatomy(frame.rgb, frame), self.mask), det)
            t1 = time.perf_counter()
            self._writer.write(drawn)
            self._draw_s += t1 - t0
            self._encode_s += time.perf_counter() - t1
            self._frames += 1

    def _with_anatomy(self, rgb, frame: Frame):
        """The frame with the anatomy stage's latest label map drawn, when one is recent enough."""
        if self._mask_annotator is None:
            return rgb
        labels = self.anatomy.latest.get(frame.index)
        if labels is not None:
            self._labels = (frame.timestamp_s, labels)
        if self._labels is None or frame.timestamp_s - self._labels[0] >= self.anatomy.every_s + 1e-6:
            return rgb
        labels = self._labels[1]
        if labels.shape != rgb.shape[:2]:
            return rgb
        return self._mask_annotator.annotate(rgb, labels)

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        if not self._active:
            return {"skipped": f"analysed at {ctx.analysed_fps:g} fps, below {self.min_fps:g}: no annotated video "
                               "(Case review draws the boxes on the original; clips are cut on demand)"}
        t0 = time.perf_counter()
        self._close()
        self._encode_s += time.perf_counter() - t0
        return {"file": ANNOTATED, "frames": self._frames, "fps": ctx.analysed_fps, "preset": self._used_preset,
                "mask_regions": [list(r) for r in self.mask], "anatomy_overlay": self._mask_annotator is not None,
                "timings": {"draw_s": round(self._draw_s, 3), "encode_s": round(self._encode_s, 3)}}

    def _close(self, exc: BaseException | None = None) -> None:
        if self._writer is not None:
            self._writer.__exit__(type(exc) if exc else None, exc, None)
            self._writer = None
