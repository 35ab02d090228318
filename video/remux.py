"""`strip_metadata`: a stream-copied remux of a video without its container and stream metadata.

Recording towers and phones write identifying tags into the container: a title holding the
patient's name, the creation time (the operation date), GPS location, device serials, chapter
titles, subtitle/data tracks (e.g. per-frame GPS). The remux copies the video and audio packets
unchanged (no re-encode: same frames, same timestamps, same fps) into a new container of the same
family and writes none of those tags, chapters or extra tracks. Stream side data the picture needs
(the rotation matrix) is part of the codec parameters and is kept.
"""
from __future__ import annotations

from pathlib import Path

import av

from video.probe import open_input
from video.writer import atomic_path

# Demuxer (first name FFmpeg reports) -> (muxer, extension) of the remux; others go to Matroska,
# which holds every codec.
_MUXERS = {
    "mov": ("mp4", "mp4"), "mp4": ("mp4", "mp4"), "matroska": ("matroska", "mkv"), "webm": ("webm", "webm"),
    "mpegts": ("mpegts", "ts"), "avi": ("avi", "avi"), "mpeg": ("mpeg", "mpg"),
}
FALLBACK = ("matroska", "mkv")


def remux_format(container: str) -> tuple[str, str]:
    """(muxer, file extension) the remux of a file in `container` (a probe's container name) uses."""
    name = str(container or "").split(",")[0].lower()
    if name in ("mp4", "m4v", "mov", "3gp"):
        return _MUXERS["mov"]
    return _MUXERS.get(name, FALLBACK)


def strip_metadata(src: str | Path, dst: str | Path, muxer: str | None = None) -> Path:
    """Copy the video and audio streams of `src` into `dst` without any metadata; returns `dst`.

    `muxer` is an FFmpeg muxer name (default: chosen from `src`'s container, see `remux_format`).
    Subtitle, data and attachment streams and chapters are dropped. Written atomically: `dst`
    appears only when the remux completed. Raises ValueError when `src` has no video stream and
    `av.error.FFmpegError` when the packets cannot be muxed (e.g. a codec the muxer refuses).
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise ValueError(f"remux destination must differ from its source: {str(src)!r}")
    with open_input(src) as source:
        if not source.streams.video:
            raise ValueError(f"no video stream in {str(src)!r}")
        muxer = muxer or remux_format(source.format.name)[0]
        kept = [s for s in source.streams if s.type in ("video", "audio")]
        with atomic_path(dst) as tmp:
            with av.open(str(tmp), mode="w", format=muxer, options=_mux_options(muxer)) as output:
                output.metadata.clear()
                mapping = {}
                for stream in kept:
                    out = output.add_stream_from_template(stream)
                    out.metadata.clear()
                    mapping[stream.index] = out
                for packet in source.demux(kept):
                    if packet.dts is None and packet.pts is None:  # the demuxer's final flush packet
                        continue
                    packet.stream = mapping[packet.stream.index]
                    output.mux(packet)
    return dst


def _mux_options(muxer: str) -> dict[str, str]:
    # bitexact: the same upload always gives the same bytes (its hash finds a re-upload), with no
    # muxing date (Matroska's DateUTC), random segment id or encoder tag. mp4: moov first, so
    # browsers start playing at once.
    options = {"fflags": "+bitexact"}
    if muxer == "mp4":
        options["movflags"] = "+faststart"
    return options
