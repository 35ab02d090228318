"""Playback stage: a browser-playable H.264 copy of videos that browsers cannot play as uploaded.

Chrome plays H.264 (yuv420p) in mp4; uploads in avi/mkv/webm/mov or with other codecs get
`proxy.mp4`, re-encoded once at the end of the analysis (a second decode, only for those files).
"""
from __future__ import annotations

from typing import Any

from analysis.pipeline import Progress, Stage, StageContext
from analysis.results import PROXY
from video import VideoInfo, cut_clip

PLAYABLE_SUFFIXES = (".mp4", ".m4v")
PLAYABLE_PIX_FMTS = ("yuv420p", "yuvj420p")
REPORT_EVERY = 50  # frames between progress reports of the encode (where a stop request is honoured)


def browser_playable(info: VideoInfo) -> bool:
    """Whether a browser's <video> plays the file as it is."""
    return (
        str(info.path).lower().endswith(PLAYABLE_SUFFIXES)
        and info.codec == "h264"
        and (info.pix_fmt is None or info.pix_fmt in PLAYABLE_PIX_FMTS)
        and info.rotation == 0
    )


class PlaybackStage(Stage):
    """Finish-only: writes PROXY when the source is not browser-playable."""

    name = "playback"
    version = "1"

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        if browser_playable(ctx.info):
            return {"proxy": None}
        total, encoded = int(ctx.info.frame_count), [0]

        def report(frame):  # an encode of a long video takes minutes: report, so a stop request lands
            encoded[0] += 1
            if ctx.progress is not None and encoded[0] % REPORT_EVERY == 0:
                ctx.progress(Progress(self.name, min(encoded[0], total), total, None))
            return frame.rgb

        cut_clip(ctx.info.path, ctx.case.file(PROXY), 0.0, ctx.info.duration_s, reencode=True, transform=report)
        return {"proxy": PROXY, "reason": f"{ctx.info.codec} in {ctx.info.container} does not play in browsers"}
