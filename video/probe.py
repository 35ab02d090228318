"""`probe(path)`: what a video file is, read from the file itself, with typed errors for bad input.

The fps is the stream's own average rate (never assumed), and the frame count is exact: the
container's sample count when it has one that matches its index, otherwise a count of the demuxed
video packets. No container or stream tags are kept: creation time, device and GPS metadata stay
out of `VideoInfo` on purpose.

User files are opened with `open_input`: the `file` protocol only and a fixed list of video
containers (`VIDEO_DEMUXERS`), so a playlist or list file (HLS, DASH, ffconcat, SDP...) renamed to
.mp4 is refused before its demuxer runs and cannot make FFmpeg read other files or URLs. The check
is on content (the demuxer FFmpeg recognises), never on the file name, so any real recording in one
of these containers is accepted whatever its extension.
"""
from __future__ import annotations

import errno
import hashlib
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from video import errors

_HASH_CHUNK = 1 << 20
# Demuxers of self-contained video files; each reads only the file it is given. Left out on purpose:
# hls, dash, concat, image2 (file patterns), sdp/rtp/rtsp, lavfi, tee, segment, and every device grabber.
VIDEO_DEMUXERS = (
    "mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo", "m4v", "h264", "hevc", "ivf", "flv",
    "asf", "mxf", "ogg", "dv", "nut", "wtv", "gxf", "yuv4mpegpipe",
)
INPUT_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(VIDEO_DEMUXERS)}
# What a file refused by the demuxer list is, from its first bytes, for a useful message.
_TEXT_MANIFESTS = ((b"#EXTM3U", "an HLS playlist"), (b"ffconcat", "an FFmpeg concat list"), (b"<MPD", "a DASH manifest"),
                   (b"<?xml", "an XML document"), (b"v=0", "an SDP session description"))
_IMAGE_MAGIC = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
                (b"MM\x00*", "TIFF"))
# Top-level ISO-BMFF (mp4/mov) box types that can open a file; used to tell "truncated mp4" from "not a video".
_BMFF_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}


@dataclass(frozen=True)
class VideoInfo:
    """A probed video: geometry, timing, codec and content hash (no capture metadata).

    `rotation` is the clockwise turn in degrees (0, 90, 180, 270) that shows the frames upright;
    `FrameReader` applies it, and `width`/`height` are the upright size. `sha256` is None when probed with `content_hash=False`.
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int
    has_audio: bool
    bitrate: int | None
    file_size: int
    sha256: str | None
    is_vfr: bool
    pix_fmt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field."""
        return asdict(self)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (flat memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def probe(path: str | Path, *, content_hash: bool = True) -> VideoInfo:
    """Open `path`, check it is a decodable video and describe it; raises a `VideoError` subclass."""
    path = Path(path)
    file_size = check_file(path)
    container = _open(path)
    with container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise errors.NotAVideoError(path, f"not a video: {str(path)!r} is a still image ({container.format.name})")
        if not container.streams.video:
            audio = len(container.streams.audio)
            what = f"{audio} audio stream(s) only" if audio else "no streams"
            raise errors.NoVideoStreamError(path, f"no video stream in {str(path)!r} ({what})")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:
            raise errors.UnsupportedCodecError(path, f"unsupported video codec in {str(path)!r}: this FFmpeg build has no decoder for it")
        rotation = _first_frame_rotation(path, container, stream)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration_s = _duration_s(container, stream)
        format_name = _container_name(container.format.name, path)
        codec, width, height, pix_fmt = ctx.name, ctx.width, ctx.height, ctx.pix_fmt
        has_audio = bool(container.streams.audio)
        bitrate = container.bit_rate or None
    frame_count, is_vfr = _frame_count_and_vfr(path)
    if fps <= 0 and duration_s > 0:
        fps = frame_count / duration_s
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        path=str(path),
        container=format_name,
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration_s=duration_s,
        rotation=rotation,
        has_audio=has_audio,
        bitrate=bitrate,
        file_size=file_size,
        sha256=file_sha256(path) if content_hash else None,
        is_vfr=is_vfr,
        pix_fmt=pix_fmt,
    )


def check_file(path: Path) -> int:
    """Size of `path` in bytes; raises for a missing path, a folder or an empty file."""
    if not path.is_file():
        raise errors.VideoNotFoundError(path, f"video file not found: {str(path)!r}")
    size = path.stat().st_size
    if size == 0:
        raise errors.EmptyFileError(path, f"video file is empty (0 bytes): {str(path)!r}")
    return size


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a user's video file with PyAV, restricted to the `file` protocol and `VIDEO_DEMUXERS`.

    Raises `av.error.FFmpegError` like `av.open` (EINVAL when the content is not one of the listed containers).
    """
    # "file:" keeps FFmpeg from reading a protocol out of the name (a file called "concat:a|b", "data:...").
    return av.open("file:" + str(Path(path).resolve()), container_options=dict(INPUT_OPTIONS))


def _open(path: Path) -> av.container.InputContainer:
    try:
        return open_input(path)
    except av.error.FFmpegError as exc:
        head = _head(path)
        kind = next((what for magic, what in _TEXT_MANIFESTS if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(magic)), None)
        if kind is not None:
            raise errors.NotAVideoError(
                path, f"not a video: {str(path)!r} is {kind}, a text file that points to other files or URLs; "
                "SurgLens reads only self-contained video files"
            ) from exc
        image = next((fmt for magic, fmt in _IMAGE_MAGIC if head.startswith(magic)), None)
        if image is not None:
            raise errors.NotAVideoError(path, f"not a video: {str(path)!r} is a still image ({image})") from exc
        boxes = _top_level_boxes(path)
        if boxes and boxes[0][0] in _BMFF_FIRST_BOXES:
            if not any(kind == b"moov" and complete for kind, _, _, complete in boxes):
                raise errors.TruncatedVideoError(
                    path, f"truncated video: {str(path)!r} has no complete moov atom (recording not finalised or file cut short)"
                ) from exc
            raise errors.CorruptVideoError(path, f"corrupt video: {str(path)!r} cannot be parsed ({exc.strerror})", None) from exc
        if exc.errno == errno.EINVAL:  # FFmpeg knows the format, but it is not a video container on our list
            raise errors.NotAVideoError(
                path, f"not a video: {str(path)!r} is not in any accepted video container (accepted: {', '.join(VIDEO_DEMUXERS)})"
            ) from exc
        raise errors.NotAVideoError(path, f"not a video: {str(path)!r} is not in any known container format ({exc.strerror})") from exc


def _head(path: Path, size: int = 64) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _top_level_boxes(path: Path) -> list[tuple[bytes, int, int, bool]]:
    """ISO-BMFF top-level boxes as (type, offset, size, complete); stops at the first implausible header."""
    boxes = []
    file_size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= file_size:
            fh.seek(offset)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1:
                (size,) = struct.unpack(">Q", fh.read(8))
            elif size == 0:
                size = file_size - offset
            if size < 8 or not kind.isalnum():
                break
            boxes.append((kind, offset, size, offset + size <= file_size))
            offset += size
    return boxes


def _first_frame_rotation(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Decode the first frame (proves the stream decodes) and return its clockwise display rotation."""
    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError as exc:
        raise errors.CorruptVideoError(path, f"corrupt video: no frame of {str(path)!r} can be decoded ({exc.strerror})", None) from exc
    if frame is None:
        raise errors.CorruptVideoError(path, f"corrupt video: {str(path)!r} contains no decodable frame", None)
    # PyAV reports the counter-clockwise angle of the display matrix; we store the clockwise turn.
    return int(round(-frame.rotation / 90.0)) % 4 * 90


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _frame_count_and_vfr(path: Path) -> tuple[int, bool]:
    """Exact frame count and whether frame intervals vary (variable frame rate)."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        entries = stream.index_entries
        if stream.frames > 0 and len(entries) == stream.frames:
            stamps = np.fromiter((e.timestamp for e in entries), dtype=np.int64, count=len(entries))
            return stream.frames, is_variable_rate(stamps)
        stamps = packet_timestamps(container, stream)
        return len(stamps), is_variable_rate(stamps)


def packet_timestamps(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> np.ndarray:
    """Sorted timestamps (stream ticks) of every video packet, by demuxing without decoding."""
    stamps = [
        packet.pts if packet.pts is not None else packet.dts
        for packet in container.demux(stream)
        if packet.size > 0 and (packet.pts is not None or packet.dts is not None)
    ]
    return np.sort(np.asarray(stamps, dtype=np.int64))


def is_variable_rate(stamps: np.ndarray) -> bool:
    """True when the gaps between sorted timestamps differ by more than 10% of the typical gap."""
    deltas = np.diff(np.sort(stamps))
    if deltas.size < 2:
        return False
    typical = float(np.median(deltas))
    # One tick of slack: CFR video in a coarse time base alternates e.g. 33/34 ms.
    return bool(np.any(np.abs(deltas - typical) > max(0.1 * typical, 1.0)))


def _container_name(format_name: str, path: Path) -> str:
    """FFmpeg lists aliases ("mov,mp4,m4a,..."); keep the one matching the file's suffix."""
    names = format_name.split(",")
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in names else names[0]
