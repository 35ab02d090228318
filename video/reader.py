"""`FrameReader`: decode a video once as a stream of sampled RGB frames, memory flat whatever its length.

Sampling at F fps takes, for k = 0, 1, ..., the first frame whose timestamp is >= k / F, so it
follows real timestamps and stays correct on variable-frame-rate video. Backends:

- ``decord``: fastest for constant-rate video; sampled frames are fetched with `get_batch` in
  chunks of bounded size. Optional import that fails only when this backend is asked for.
- ``opencv``: sequential `grab`, with `retrieve` only for sampled frames.
- ``pyav``: sequential decode by timestamp; the exact backend for variable frame rate, and the
  error-tolerant one: it skips undecodable packets.

Every backend sees a file only after `probe` accepted it, which opens it restricted to the `file`
protocol and plain video containers (video/probe.py): decord cannot be restricted itself, OpenCV is
given the same restrictions through OPENCV_FFMPEG_CAPTURE_OPTIONS.

Frames come out upright: a rotation in the display matrix is applied (decord cannot, so it is
never used for rotated video).

Sparse sampling (at most a quarter of the video's rate, e.g. 1 fps of 25) decodes only what is needed:
pyav with the decoder's ``skip_frame = NONREF`` skips the frames no other frame refers to (the B-frames of
the shared H.264 clips: 375 of 800) and each target time is served by the first decoded frame at or after
it (``skip_nonref``; at most a few frames late, measured in bench/decode.py). ``auto`` then picks pyav.

Otherwise ``auto`` picks opencv for constant-rate video, and pyav for variable frame rate, when opencv is
not installed, and in strict mode (decord and opencv conceal decoder errors silently; pyav reports
them). decord is used only when asked for: once it has decoded a frame, the first torch operation
in the same process adds 0.9-1.4 GB of resident memory (measured: a 1 fps analysis of a 1-minute
input peaked at 1.94 GB with decord, 1.47 GB with opencv), and it was no faster than opencv or
pyav at 1 fps on the shared clips. Reading every frame, decord's unbounded internal queues also let memory grow with
the video (bench/decode.py: peak RSS 228 MiB on 32 s clips, 370 MiB on a 192 s video). When decord or opencv fail part-way, the
reader hands the rest of the video to pyav, so every readable frame is still yielded. Problems
land in `reader.warnings` with the last good timestamp; with ``strict=True`` they raise
`CorruptVideoError` instead, after every clean frame before the problem was yielded.
"""
from __future__ import annotations

import importlib.util
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import av
import numpy as np

from video.errors import CorruptVideoError
from video.probe import INPUT_OPTIONS, VideoInfo, open_input, packet_timestamps, probe

BACKENDS = ("decord", "opencv", "pyav")
NONREF_MIN_STEP = 4  # sampling every >= this many frames skips non-reference frames: each target still has ones near it
_EPS = 1e-6  # seconds; absorbs float noise in timestamps such as 0.9999999
_CHUNK_BYTES = 8 << 20  # decoded bytes per decord get_batch call (small chunks stay in cache)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: index in the stream, presentation time in seconds, upright RGB (HxWx3 uint8)."""

    index: int
    timestamp_s: float
    rgb: np.ndarray


class _Sampler:
    """Decides, frame by frame in time order, which frames a sampling rate and time window keep."""

    def __init__(self, sample_fps: float | None, start_s: float, end_s: float | None) -> None:
        self.sample_fps, self.start_s, self.end_s = sample_fps, start_s, end_s
        self._last_bucket = math.ceil(start_s * sample_fps - _EPS) - 1 if sample_fps else 0

    def past_end(self, ts: float) -> bool:
        return self.end_s is not None and ts >= self.end_s - _EPS

    def __call__(self, ts: float) -> bool:
        if ts < self.start_s - _EPS or self.past_end(ts):
            return False
        if self.sample_fps is None:
            return True
        bucket = math.floor(ts * self.sample_fps + _EPS)  # how many targets k / F are <= ts, minus one
        if bucket <= self._last_bucket:
            return False
        self._last_bucket = bucket
        return True

    def taken_through(self, ts: float) -> None:
        """Mark every target up to `ts` as served (resuming after a frame already yielded)."""
        if self.sample_fps:
            self._last_bucket = max(self._last_bucket, math.floor(ts * self.sample_fps + _EPS))


class FrameReader:
    """Iterate `Frame`s of `path` sampled at `sample_fps` ("all" or None: every frame).

    `resize=(w, h)` scales frames while decoding; `start_s`/`end_s` restrict the reader to a time
    window [start_s, end_s). `.backend` is the backend actually used, `.warnings` lists problems
    met during the last iteration, `.last_good_timestamp_s` is the last frame decoded cleanly and
    `.expected_count()` the number of frames an iteration yields. `strict=True` raises
    `CorruptVideoError` on damaged data instead of warning. Frame indices are positions in the
    stream (round(t * fps) for constant frame rate, a running count for VFR). `skip_nonref`: decode
    only reference frames (pyav); None decides (sparse sampling of constant-rate video, backend auto).
    """

    def __init__(
        self,
        path: str | Path,
        sample_fps: float | None | str = 1.0,
        resize: tuple[int, int] | None = None,
        backend: str = "auto",
        strict: bool = False,
        *,
        start_s: float = 0.0,
        end_s: float | None = None,
        skip_nonref: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.sample_fps = _parse_sample_fps(sample_fps)
        self.resize = _parse_resize(resize)
        if start_s < 0 or (end_s is not None and end_s <= start_s):
            raise ValueError(f"time window must satisfy 0 <= start_s < end_s, got start_s={start_s!r}, end_s={end_s!r}")
        self.start_s, self.end_s = float(start_s), end_s
        self.strict = strict
        self.info: VideoInfo = probe(self.path, content_hash=False)
        self.warnings: list[str] = []
        self.last_good_timestamp_s: float | None = None
        self._last_decoded_s: float | None = None
        self._setup_warnings: list[str] = []
        self._decord_reader: Any = None
        self._stamps: np.ndarray | None = None
        # Seconds of the last iteration spent converting decoded frames to RGB (and resizing them):
        # colour conversion is timed apart from decoding for profiles; decord cannot split the two (None).
        self.convert_seconds: float | None = None
        sparse = bool(self.sample_fps) and self.info.fps >= NONREF_MIN_STEP * self.sample_fps and not self.info.is_vfr
        self.skip_nonref = (sparse and backend in ("auto", "pyav")) if skip_nonref is None else bool(skip_nonref)
        if self.skip_nonref and self.info.is_vfr:
            raise ValueError(f"skip_nonref needs constant-rate video (frame indices come from timestamps): {str(self.path)!r}")
        if self.skip_nonref and backend not in ("auto", "pyav"):
            raise ValueError(f"skip_nonref needs backend 'pyav', got {backend!r}")
        self.backend = self._select_backend("pyav" if self.skip_nonref else backend)

    # -- public -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        self.warnings = list(self._setup_warnings)
        self.last_good_timestamp_s = self._last_decoded_s = None
        sampler = self._sampler()
        self.convert_seconds = None if self.backend == "decord" else 0.0
        if self.backend == "decord":
            yield from self._iter_decord(sampler)
        elif self.backend == "opencv":
            yield from self._iter_opencv(sampler)
        else:
            yield from self._iter_pyav(sampler, after_s=None)

    def expected_count(self) -> int:
        """How many frames an iteration yields (for progress bars); exact unless the file is damaged."""
        sampler = self._sampler()
        return sum(1 for ts in self._timestamps() if sampler(float(ts)))

    # -- backend choice ---------------------------------------------------------------------
    def _select_backend(self, backend: str) -> str:
        if backend not in (*BACKENDS, "auto"):
            raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {BACKENDS}")
        info = self.info
        if backend == "auto":
            if self.strict:  # only pyav reports frames decoded with concealed errors
                backend = "pyav"
            elif not info.is_vfr and _opencv_available():
                backend = "opencv"
            else:
                backend = "pyav"
        elif info.is_vfr and backend != "pyav":
            self._setup_warnings.append(f"{str(self.path)!r} has a variable frame rate; backend {backend!r} may mistime frames, 'pyav' is exact")
        if backend == "decord":
            if info.rotation:
                raise ValueError(f"backend 'decord' cannot read rotated video ({info.rotation} degrees): {str(self.path)!r}; use 'pyav'")
            decord = _import_decord()
            w, h = self.resize or (-1, -1)
            try:
                self._decord_reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), width=w, height=h)
            except (decord.DECORDError, RuntimeError) as exc:  # typically a damaged file, which pyav reads as far as it can
                self._setup_warnings.append(f"decord cannot open {str(self.path)!r} ({_first_line(exc)}); using pyav")
                return "pyav"
        elif backend == "opencv":
            _import_cv2()
        return backend

    # -- shared helpers ---------------------------------------------------------------------
    def _sampler(self) -> _Sampler:
        return _Sampler(self.sample_fps, self.start_s, self.end_s)

    def _timestamps(self) -> np.ndarray:
        """Presentation time of every frame in the stream, in seconds from its start."""
        if self._stamps is None:
            if self._decord_reader is not None:
                vr = self._decord_reader
                # decord keeps float32 seconds; round away its noise (0.0399999991 -> 0.04)
                self._stamps = np.round(vr.get_frame_timestamp(np.arange(len(vr)))[:, 0].astype(float), 6)
            elif not self.info.is_vfr:
                self._stamps = np.arange(self.info.frame_count) / self.info.fps
            else:
                with open_input(self.path) as container:
                    stream = container.streams.video[0]
                    ticks = packet_timestamps(container, stream) - (stream.start_time or 0)
                    self._stamps = ticks * float(stream.time_base)
        return self._stamps

    def _index(self, ts: float) -> int:
        return int(round(ts * self.info.fps))

    def _problem(self, message: str) -> None:
        if self.strict:
            raise CorruptVideoError(self.path, message, self.last_good_timestamp_s)
        self.warnings.append(message)

    def _last_good_text(self) -> str:
        ts = self.last_good_timestamp_s
        return "no good frame before it" if ts is None else f"last good frame at {ts:.3f} s"

    def _check_reached_end(self) -> None:
        stamps = self._timestamps()
        expected_last = float(stamps[-1]) if len(stamps) else 0.0
        last = self._last_decoded_s
        if last is None or last < expected_last - 0.5 / self.info.fps:
            self._problem(
                f"corrupt video: {str(self.path)!r} ends early: nothing decodable after "
                f"{'its start' if last is None else f'{last:.3f} s'}, expected frames until {expected_last:.3f} s; {self._last_good_text()}"
            )

    def _decode_size(self) -> tuple[int, int] | None:
        """(w, h) to scale decoded frames to, before the rotation turns them upright."""
        if self.resize is None:
            return None
        w, h = self.resize
        return (h, w) if self.info.rotation in (90, 270) else (w, h)

    # -- backends ---------------------------------------------------------------------------
    def _iter_decord(self, sampler: _Sampler) -> Iterator[Frame]:
        decord = _import_decord()
        vr = self._decord_reader
        stamps = self._timestamps()
        indices = [i for i, ts in enumerate(stamps) if sampler(float(ts))]
        w, h = self.resize or (self.info.width, self.info.height)
        chunk = max(1, _CHUNK_BYTES // (w * h * 3))
        for start in range(0, len(indices), chunk):
            batch_indices = indices[start : start + chunk]
            try:
                batch = vr.get_batch(batch_indices).asnumpy()
            except (decord.DECORDError, RuntimeError) as exc:
                self.warnings.append(
                    f"decord failed on {str(self.path)!r} ({_first_line(exc)}); continuing with pyav after the last frame read"
                )
                rest = self._sampler()
                if self.last_good_timestamp_s is not None:
                    rest.taken_through(self.last_good_timestamp_s)
                yield from self._iter_pyav(rest, after_s=self.last_good_timestamp_s)
                return
            for i, rgb in zip(batch_indices, batch):
                ts = float(stamps[i])
                self.last_good_timestamp_s = self._last_decoded_s = ts
                yield Frame(i, ts, rgb)

    def _iter_opencv(self, sampler: _Sampler) -> Iterator[Frame]:
        cv2 = _import_cv2()
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        try:
            if self.start_s > 0:
                cap.set(cv2.CAP_PROP_POS_MSEC, self.start_s * 1000.0)
            while cap.isOpened() and cap.grab():
                ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if sampler.past_end(ts):
                    return
                if sampler(ts):
                    t0 = time.perf_counter()
                    ok, bgr = cap.retrieve()  # grab() decoded the frame; retrieve converts it to BGR
                    if not ok:
                        break
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    if self.resize is not None and (rgb.shape[1], rgb.shape[0]) != self.resize:
                        rgb = cv2.resize(rgb, self.resize, interpolation=cv2.INTER_AREA)
                    self.convert_seconds = (self.convert_seconds or 0.0) + time.perf_counter() - t0
                    self.last_good_timestamp_s = self._last_decoded_s = ts
                    yield Frame(self._index(ts), ts, rgb)
                self.last_good_timestamp_s = self._last_decoded_s = ts
        finally:
            cap.release()
        stamps = self._timestamps()
        last = self.last_good_timestamp_s
        if last is None or (len(stamps) and last < float(stamps[-1]) - 0.5 / self.info.fps):
            self.warnings.append(f"opencv stopped reading {str(self.path)!r} early; continuing with pyav after the last frame read")
            yield from self._iter_pyav(sampler, after_s=last)

    def _iter_pyav(self, sampler: _Sampler, after_s: float | None) -> Iterator[Frame]:
        """Sequential decode; frames at or before `after_s` (already handled) are skipped.

        Undecodable packets are skipped, frames the decoder concealed errors in are yielded, and
        frames a damaged decoder emits out of order are dropped; each damaged stretch becomes one
        warning. Strict mode raises instead, once every clean frame before the damage was yielded.
        """
        vfr = self.info.is_vfr
        damage = _Damage()
        with open_input(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.skip_nonref:
                stream.codec_context.skip_frame = "NONREF"
            time_base, origin = stream.time_base, stream.start_time or 0
            seek_s = after_s if after_s is not None else self.start_s
            # Indices of VFR video are counted from the first frame, so VFR is never seeked.
            if seek_s > 0 and not vfr:
                container.seek(origin + int(seek_s / time_base), stream=stream, backward=True, any_frame=False)
            size = self._decode_size()
            count, previous = 0, None

            def seconds(pts: int | None) -> float:
                return float((pts - origin) * time_base) if pts is not None else count / self.info.fps

            def check(frame: av.VideoFrame, ts: float) -> bool:
                """Damage book-keeping for one decoded frame; False for a frame to drop."""
                nonlocal previous
                late = previous is not None and ts <= previous + _EPS  # emitted out of order after damage
                if late or frame.is_corrupt:
                    damage.add(ts, concealed=True)
                if damage.pending and (late or frame.is_corrupt or ts >= damage.first_s - _EPS):
                    if self.strict:
                        self._problem(damage.report(self.path, self._last_good_text()))
                    if not late and not frame.is_corrupt and ts > damage.last_s:
                        self.warnings.append(damage.report(self.path, self._last_good_text(), f"clean decoding resumed at {ts:.3f} s"))
                        damage.clear()
                        self.last_good_timestamp_s = ts
                elif not frame.is_corrupt:
                    self.last_good_timestamp_s = ts
                if late:
                    return False
                previous = self._last_decoded_s = ts
                return True

            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    self._problem(f"corrupt video: demuxing {str(self.path)!r} failed ({exc.strerror}); {self._last_good_text()}")
                    break
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    damage.add(seconds(packet.pts if packet.pts is not None else packet.dts), concealed=False)
                    continue
                for frame in decoded:
                    ts = seconds(frame.pts)
                    index = count if vfr else self._index(ts)
                    count += 1
                    if not check(frame, ts) or (after_s is not None and ts <= after_s + _EPS):
                        continue
                    if sampler.past_end(ts):
                        return
                    if sampler(ts):
                        t0 = time.perf_counter()
                        rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1]) if size else frame.to_ndarray(format="rgb24")
                        rgb = _upright(rgb, self.info.rotation)
                        self.convert_seconds = (self.convert_seconds or 0.0) + time.perf_counter() - t0
                        yield Frame(index, ts, rgb)
        if damage.pending:
            self._problem(damage.report(self.path, self._last_good_text(), "no clean frame after it"))
        self._check_reached_end()


@dataclass
class _Damage:
    """A stretch of undecodable packets and error-concealed frames, reported as one warning."""

    packets: int = 0
    concealed: int = 0
    first_s: float = math.inf
    last_s: float = -math.inf

    @property
    def pending(self) -> bool:
        return self.packets + self.concealed > 0

    def add(self, ts: float, concealed: bool) -> None:
        if concealed:
            self.concealed += 1
        else:
            self.packets += 1
        self.first_s, self.last_s = min(self.first_s, ts), max(self.last_s, ts)

    def clear(self) -> None:
        self.packets, self.concealed, self.first_s, self.last_s = 0, 0, math.inf, -math.inf

    def report(self, path: Path, last_good: str, after: str | None = None) -> str:
        return (
            f"corrupt video: damaged data in {str(path)!r} from {self.first_s:.3f} s to {self.last_s:.3f} s "
            f"({self.packets} undecodable packet(s), {self.concealed} damaged frame(s)); {last_good}" + (f"; {after}" if after else "")
        )


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))


def _parse_sample_fps(value: float | None | str) -> float | None:
    if value is None or value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"sample_fps must be a positive number, 'all' or None, got {value!r}")
    return float(value)


def _parse_resize(value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(f"resize must be (width, height) with positive integers, got {value!r}")
    return (int(value[0]), int(value[1]))


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _import_decord() -> Any:
    try:
        import decord
    except ImportError as exc:
        raise ImportError("backend 'decord' needs the decord package: pip install 'decord>=0.6,<0.7'") from exc
    return decord


def _import_cv2() -> Any:
    # OpenCV's FFmpeg backend reads its open options from this variable: the same protocol and
    # container restrictions as `open_input` (the probe has already refused anything else).
    os.environ.setdefault(
        "OPENCV_FFMPEG_CAPTURE_OPTIONS", "|".join(f"{key};{value}" for key, value in INPUT_OPTIONS.items())
    )
    try:
        import cv2
    except ImportError as exc:
        raise ImportError("backend 'opencv' needs OpenCV: pip install opencv-python-headless") from exc
    return cv2


def _decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def _opencv_available() -> bool:
    return importlib.util.find_spec("cv2") is not None
