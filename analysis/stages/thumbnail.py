"""Thumbnail stage: the Library's small JPEG of the case, from the analysed frame at 10% of the video."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from analysis.pipeline import Stage, StageContext
from analysis.results import THUMBNAIL
from analysis.thumbnail import thumbnail_time, write_thumbnail
from video import Frame


class ThumbnailStage(Stage):
    """Keeps the first analysed frame at or after `thumbnail_time` (the last one in a shorter video);
    `mask`: the case's rectangles, black in the thumbnail."""

    name = "thumbnail"
    version = "1"

    def __init__(self, mask=None):
        self.mask = mask
        self.reset()

    def reset(self) -> None:
        self._at_s = 0.0
        self._frame: np.ndarray | None = None
        self._time_s: float | None = None
        self._found = False

    def start(self, ctx: StageContext) -> None:
        self._at_s = thumbnail_time(ctx.info.duration_s)

    def __call__(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            if self._found:
                return
            self._frame, self._time_s = frame.rgb, float(frame.timestamp_s)  # the reader makes a new array a frame
            self._found = frame.timestamp_s >= self._at_s

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        if self._frame is None:
            return {"thumbnail": None}
        write_thumbnail(self._frame.copy(), ctx.case.file(THUMBNAIL), self.mask)
        return {"thumbnail": THUMBNAIL, "time_s": self._time_s}
