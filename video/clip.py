"""`cut_clip`: a [start_s, end_s) excerpt of a video as a new H.264 mp4, by packet copy or re-encoding.

Packet copy is lossless and fast but starts at the keyframe at or before `start_s` and may run a
few frames past `end_s` (B-frame reordering); re-encoding is frame-exact, runs every frame through
`transform` when one is given (e.g. drawing detections), and writes constant frame rate at the
source's fps. Clips are video only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from video.probe import VideoInfo, open_input, probe
from video.reader import Frame, FrameReader
from video.writer import VideoWriter, atomic_path, open_mp4_output

FrameTransform = Callable[[Frame], np.ndarray]


def cut_clip(
    src: str | Path,
    dst: str | Path,
    start_s: float,
    end_s: float,
    reencode: bool | None = None,
    transform: FrameTransform | None = None,
) -> Path:
    """Write the excerpt [start_s, end_s) of `src` to `dst` (mp4) and return `dst`.

    `reencode=None` copies packets when the source is H.264 and no `transform` is given, and
    re-encodes otherwise; True/False force a mode (a `transform` needs re-encoding).
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise ValueError(f"clip destination must differ from its source: {str(src)!r}")
    info = probe(src, content_hash=False)
    _check_window(info, start_s, end_s)
    if transform is not None and reencode is False:
        raise ValueError("a transform needs re-encoding; pass reencode=True or None")
    copy = reencode is False or (reencode is None and transform is None and info.codec == "h264")
    if copy:
        _copy_packets(src, dst, start_s, end_s)
    else:
        _reencode(src, dst, info, start_s, end_s, transform)
    return dst


def _check_window(info: VideoInfo, start_s: float, end_s: float) -> None:
    if start_s < 0:
        raise ValueError(f"clip start_s must be >= 0, got {start_s!r}")
    if end_s <= start_s:
        raise ValueError(f"clip start_s ({start_s!r}) must be before end_s ({end_s!r})")
    # half a frame of slack, so an end rounded to the displayed duration is accepted
    if end_s > info.duration_s + 0.5 / info.fps:
        raise ValueError(f"clip end_s ({end_s!r}) is past the end of {info.path!r} ({info.duration_s:.3f} s)")


def _copy_packets(src: Path, dst: Path, start_s: float, end_s: float) -> None:
    with open_input(src) as source, atomic_path(dst) as tmp:
        stream = source.streams.video[0]
        time_base, origin = stream.time_base, stream.start_time or 0
        source.seek(origin + int(start_s / time_base), stream=stream, backward=True, any_frame=False)
        end_ticks = origin + int(end_s / time_base)
        with open_mp4_output(tmp) as output:
            out_stream = output.add_stream_from_template(stream)
            offset = None
            for packet in source.demux(stream):
                if packet.dts is None:  # the demuxer's final flush packet
                    continue
                if offset is None:
                    if not packet.is_keyframe:
                        continue
                    offset = packet.pts
                # Every frame shown before `end_s` and each frame it references has dts < end.
                if packet.dts >= end_ticks:
                    break
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = out_stream
                output.mux(packet)
            if offset is None:
                raise ValueError(f"no keyframe found in {str(src)!r} between {start_s!r} s and {end_s!r} s")


def _reencode(src: Path, dst: Path, info: VideoInfo, start_s: float, end_s: float, transform: FrameTransform | None) -> None:
    reader = FrameReader(src, sample_fps="all", start_s=start_s, end_s=end_s)
    writer: VideoWriter | None = None
    try:
        for frame in reader:
            rgb = transform(frame) if transform is not None else frame.rgb
            if writer is None:  # sized by the first frame, so a transform may change the size
                writer = VideoWriter(dst, fps=info.fps, size=(rgb.shape[1], rgb.shape[0]))
            writer.write(rgb)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise ValueError(f"no frames of {str(src)!r} between {start_s!r} s and {end_s!r} s")
    writer.close()
