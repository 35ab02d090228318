"""Live analysis: detection, tracking and the causal phase model on a video as it plays.

`LiveSession(source, ...)` reads a SOURCE -- a video file played at its own frame rate (read from the
file), a capture device index, or a stream URL the user typed (rtsp/http(s)) -- in a reader thread
that records every frame to an H.264 mp4 and keeps only the newest one for analysis. Each `step()`
takes that newest frame, runs the detector and the tracker on it and returns a `LiveUpdate`; frames
that arrived while the previous one was being analysed are skipped, so the analysis never falls
behind the video (`LiveStats` reports the processed rate and the skipped share). The causal phase
model gets one second of tool evidence per second of video time. `finish()` stops, closes the
recording and returns a `LiveResult`; the recording is then kept as a case (library.live, or
`analyse_recording` for a plain case folder).

    session = LiveSession("clip.mp4", max_seconds=10)
    for update in session:           # start(), then step() until the source ends or stop()
        print(update.timestamp_s, update.phase and update.phase.phase, update.tools)
    result = session.finish()        # result.recording: the mp4 of what was shown
"""
from __future__ import annotations

import math
import re
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from models.detections import Detections
from video.reader import Frame

if TYPE_CHECKING:
    from analysis.results import CaseResult

PRESENCE_CONF = 0.25  # tool evidence below this counts as absent (the phase model's training threshold)
LIVE_IMGSZ = 320  # the shipped detector's input size
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
# Only for a URL the user typed: the network protocols a camera or encoder stream needs (never `file`),
# and the demuxers such streams use besides the plain video containers.
STREAM_PROTOCOLS = "rtsp,rtsps,rtmp,rtmps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto"
STREAM_DEMUXERS = ("rtsp", "hls", "mjpeg", "mpjpeg", "flv", "mpegts", "matroska", "mp4", "mov", "h264", "hevc")
STREAM_TIMEOUT_US = 10_000_000  # give up on a silent stream after 10 s
RATE_WINDOW_S = 2.0  # the processed rate is measured over this much recent wall time


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceInfo:
    """What a live source is: `kind` file | device | stream, a `label` safe to show, its frame rate and size."""

    kind: str
    label: str
    fps: float
    size: tuple[int, int]
    duration_s: float | None = None


def parse_source(source: str | int | Path) -> tuple[str, Any]:
    """("device", index) for an integer or all-digit text, ("stream", url) for an rtsp/http(s) URL, else ("file", Path).

    A URL is taken only as given here: a file's content never leads to one.
    """
    if isinstance(source, bool):
        raise ValueError(f"a live source is a file, a device index or a stream URL, got {source!r}")
    if isinstance(source, int):
        if source < 0:
            raise ValueError(f"a capture device index is 0 or more, got {source!r}")
        return "device", source
    text = str(source).strip()
    if not text:
        raise ValueError(f"a live source is a file, a device index or a stream URL, got {source!r}")
    if text.isdigit():
        return "device", int(text)
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
    if scheme:
        if scheme.group(1).lower() not in STREAM_SCHEMES:
            raise ValueError(f"stream URLs must use one of {STREAM_SCHEMES}, got {redact_url(text)!r}")
        return "stream", text
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"no such video file (nor a device index or rtsp/http URL): {text!r}")
    return "file", path


def redact_url(url: str) -> str:
    """The URL without its user name and password (for labels and messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<url>"
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _valid_fps(value: Any) -> float | None:
    try:
        fps = float(value)
    except (TypeError, ValueError):
        return None
    return fps if math.isfinite(fps) and 0 < fps <= 1000 else None


class _Source:
    """Frames of one source in order; `info` is known after `open()`."""

    info: SourceInfo
    paced = False  # True: frames must be slowed to their timestamps (a file); else they come at their own rate

    def open(self) -> SourceInfo:
        raise NotImplementedError

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _BufferedSource(_Source):
    """A source whose first frames are read at `open()` (to measure its rate), then read on demand."""

    _buffer: list[tuple[float, np.ndarray]]

    def _read(self) -> tuple[float, np.ndarray] | None:
        raise NotImplementedError

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            item = self._buffer.pop(0) if self._buffer else self._read()
            if item is None:
                return
            yield Frame(index, item[0], item[1])
            index += 1


class _FileSource(_Source):
    paced = True

    def __init__(self, path: Path):
        self.path = path

    def open(self) -> SourceInfo:
        from video.reader import FrameReader

        # FrameReader probes the file first (file protocol, video containers only: video/probe.py).
        self.reader = FrameReader(self.path, sample_fps=None)
        info = self.reader.info
        self.info = SourceInfo("file", self.path.name, float(info.fps), (info.width, info.height), float(info.duration_s))
        return self.info

    def frames(self) -> Iterator[Frame]:
        yield from self.reader


def _first_frames(read: Callable[[], tuple[float, np.ndarray] | None], want: int = 10) -> list[tuple[float, np.ndarray]]:
    frames = []
    while len(frames) < want:
        item = read()
        if item is None:
            break
        frames.append(item)
    return frames


def _measured_fps(frames: Sequence[tuple[float, np.ndarray]]) -> float | None:
    if len(frames) < 2 or frames[-1][0] <= frames[0][0]:
        return None
    return (len(frames) - 1) / (frames[-1][0] - frames[0][0])


class _DeviceSource(_BufferedSource):
    def __init__(self, index: int):
        self.index = index
        self._cap: Any = None
        self._buffer: list[tuple[float, np.ndarray]] = []
        self._t0: float | None = None

    def _read(self) -> tuple[float, np.ndarray] | None:
        import cv2

        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def open(self) -> SourceInfo:
        import cv2

        self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            raise ValueError(f"capture device {self.index!r} cannot be opened")
        # The driver's rate when it reports one; otherwise measured on the first frames (never assumed).
        self._buffer = _first_frames(self._read, want=1 if _valid_fps(self._cap.get(cv2.CAP_PROP_FPS)) else 10)
        if not self._buffer:
            self.close()
            raise ValueError(f"capture device {self.index!r} gives no frames")
        fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS)) or _measured_fps(self._buffer)
        if fps is None:
            self.close()
            raise ValueError(f"capture device {self.index!r} reports no frame rate and it cannot be measured")
        h, w = self._buffer[0][1].shape[:2]
        self.info = SourceInfo("device", f"camera {self.index}", fps, (w, h))
        return self.info


    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _StreamSource(_BufferedSource):
    def __init__(self, url: str):
        self.url = url
        self._container: Any = None
        self._buffer: list[tuple[float, np.ndarray]] = []

    def open(self) -> SourceInfo:
        import av

        # The one place FFmpeg's protocol restriction (video/probe.py: `file` only) is relaxed: for this
        # URL, which the user typed, to network protocols; `file` stays out.
        options = {"protocol_whitelist": STREAM_PROTOCOLS, "format_whitelist": ",".join(STREAM_DEMUXERS),
                   "rw_timeout": str(STREAM_TIMEOUT_US), "timeout": str(STREAM_TIMEOUT_US)}
        try:
            self._container = av.open(self.url, options=options, timeout=STREAM_TIMEOUT_US / 1e6)
        except av.error.FFmpegError as exc:
            raise ValueError(f"stream {redact_url(self.url)!r} cannot be opened ({exc.strerror})") from exc
        if not self._container.streams.video:
            self.close()
            raise ValueError(f"stream {redact_url(self.url)!r} has no video")
        self._stream = self._container.streams.video[0]
        self._decoded = self._container.decode(self._stream)
        self._t0: float | None = None
        rate = _valid_fps(self._stream.average_rate) or _valid_fps(self._stream.guessed_rate)
        self._buffer = _first_frames(self._read, want=1 if rate else 10)
        if not self._buffer:
            self.close()
            raise ValueError(f"stream {redact_url(self.url)!r} gives no frames")
        fps = rate or _measured_fps(self._buffer)
        if fps is None:
            self.close()
            raise ValueError(f"stream {redact_url(self.url)!r} reports no frame rate and it cannot be measured")
        h, w = self._buffer[0][1].shape[:2]
        self.info = SourceInfo("stream", redact_url(self.url), fps, (w, h))
        return self.info

    def _read(self) -> tuple[float, np.ndarray] | None:
        import av

        try:
            frame = next(self._decoded, None)
        except av.error.FFmpegError:
            return None
        if frame is None:
            return None
        ts = frame.time if frame.time is not None else time.monotonic()
        if self._t0 is None:
            self._t0 = ts
        return ts - self._t0, frame.to_ndarray(format="rgb24")


    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def open_source(source: str | int | Path) -> _Source:
    """The reader for a SOURCE (see `parse_source`); call `.open()` on it."""
    kind, value = parse_source(source)
    return {"file": _FileSource, "device": _DeviceSource, "stream": _StreamSource}[kind](value)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PhaseSecond:
    """The causal phase model's output for one second of video time."""

    second: int
    phase: str
    probability: float
    probabilities: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"second": self.second, "phase": self.phase, "probability": round(self.probability, 4)}


@dataclass(frozen=True)
class LiveStats:
    """How the session keeps up: frames read from the source, analysed, and the rates."""

    elapsed_s: float  # wall time since the first frame
    video_s: float  # video time of the newest frame read
    frames_read: int
    frames_processed: int
    processed_fps: float  # over the last RATE_WINDOW_S of wall time
    mean_processed_fps: float  # over the whole session
    source_fps: float

    @property
    def lag_s(self) -> float:
        """How far reading trails the video's own clock (over a few tenths: the source itself cannot keep up)."""
        return max(self.elapsed_s - self.video_s, 0.0)

    @property
    def skipped(self) -> int:
        return max(self.frames_read - self.frames_processed, 0)

    @property
    def skipped_share(self) -> float:
        return self.skipped / self.frames_read if self.frames_read else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"elapsed_s": round(self.elapsed_s, 3), "video_s": round(self.video_s, 3),
                "frames_read": self.frames_read, "frames_processed": self.frames_processed,
                "frames_skipped": self.skipped, "skipped_share": round(self.skipped_share, 4), "lag_s": round(self.lag_s, 3),
                "processed_fps": round(self.processed_fps, 2), "mean_processed_fps": round(self.mean_processed_fps, 2),
                "source_fps": round(self.source_fps, 3)}


@dataclass(frozen=True)
class LiveUpdate:
    """One analysed frame: its tracked detections, the tools in view and the phase so far."""

    frame: Frame
    detections: Detections
    tools: tuple[str, ...]  # in view now, most confident first
    phase: PhaseSecond | None  # the latest second the phase model has seen
    phase_updated: bool  # True when this frame closed a second (a new phase output)
    timeline: tuple[PhaseSecond, ...]  # the last `timeline_s` seconds
    stats: LiveStats
    class_names: tuple[str, ...]

    @property
    def timestamp_s(self) -> float:
        return self.frame.timestamp_s


@dataclass
class LiveResult:
    """A finished session: the recording (None when nothing was recorded), the phase per second, the stats."""

    source: SourceInfo
    recording: Path | None
    phases: list[PhaseSecond]
    stats: LiveStats
    frames_recorded: int

    def to_dict(self) -> dict[str, Any]:
        return {"source": {"kind": self.source.kind, "label": self.source.label, "fps": self.source.fps,
                           "size": list(self.source.size)},
                "recording": str(self.recording) if self.recording else None, "frames_recorded": self.frames_recorded,
                "seconds_with_phase": len(self.phases), "stats": self.stats.to_dict()}


# ----------------------------------------------------------------------------- models


def load_live_detector(imgsz: int = LIVE_IMGSZ) -> Any:
    """The shipped detector at `imgsz`, on its fastest backend, keeping boxes from PRESENCE_CONF."""
    from models.detector import Detector

    return Detector(conf=PRESENCE_CONF, imgsz=imgsz)


def load_live_phase_model(ref: str | Path | None = None) -> Any:
    """The (shipped) temporal phase model, which has a causal recognizer; the HMM baseline has none for tool evidence."""
    from models.phase import load_phase_model
    from models.phase.temporal import TemporalPhaseModel

    model = load_phase_model(ref)
    if not isinstance(model, TemporalPhaseModel):
        raise ValueError(f"live phase recognition needs a temporal phase model, got {type(model).__name__} from {ref!r}")
    return model


# ----------------------------------------------------------------------------- session


class LiveSession:
    """Analyses a source as it plays (see the module docstring); `for update in session` or `start()` + `step()`.

    `detector`: callable frames -> list[Detections] with `class_names` (None: the shipped one at
    `imgsz`). `tracker`: a shipped tracker name or YAML (None: no tracking). `phase_model`: a
    TemporalPhaseModel, a model reference, "phase" (shipped) or None (no phase). `record`: write every
    frame read to `record_to` (default: a new temporary folder). `max_seconds`: stop after this much
    video time. `timeline_s`: seconds of phase history each update carries. `stop_unwatched_s`: stop
    reading when nobody called `step()` for this long (a page whose viewer left; `unwatched` says so).
    """

    def __init__(
        self,
        source: str | int | Path,
        detector: Any = None,
        tracker: str | Path | None = "bytetrack",
        phase_model: Any = "phase",
        *,
        imgsz: int = LIVE_IMGSZ,
        record: bool = True,
        record_to: str | Path | None = None,
        max_seconds: float | None = None,
        timeline_s: float = 120.0,
        stop_unwatched_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        for name, value in (("max_seconds", max_seconds), ("stop_unwatched_s", stop_unwatched_s)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32:
            raise ValueError(f"imgsz must be a whole number of pixels of at least 32, got {imgsz!r}")
        if not timeline_s > 0:
            raise ValueError(f"timeline_s must be positive, got {timeline_s!r}")
        parse_source(source)  # a bad source fails here, before any model loads
        self.source_ref, self.tracker_name, self.imgsz = source, tracker, int(imgsz)
        self.record, self.max_seconds, self.timeline_s = record, max_seconds, float(timeline_s)
        self.record_to = Path(record_to) if record_to is not None else None
        self.stop_unwatched_s = stop_unwatched_s
        self._clock = clock
        self._detector = detector
        self._phase_ref = phase_model
        self._phase_model: Any = None
        self.source: SourceInfo | None = None
        self._reader: _Source | None = None
        self._thread: threading.Thread | None = None
        self._tracker: Any = None
        self._recognizer: Any = None
        self._writer: Any = None
        self._recording: Path | None = None
        self._finished: LiveResult | None = None
        self.reset()

    # -- models ---------------------------------------------------------------------------
    @property
    def detector(self) -> Any:
        if self._detector is None:
            self._detector = load_live_detector(self.imgsz)
        return self._detector

    @property
    def phase_model(self) -> Any:
        if self._phase_model is None and self._phase_ref is not None:
            ref = self._phase_ref
            self._phase_model = load_live_phase_model(None if ref == "phase" else ref) if isinstance(ref, (str, Path)) else ref
        return self._phase_model

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.detector.class_names)

    # -- lifecycle ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the tracks, the phase history and the counts (a new session on the same settings).

        A session still running is aborted (its recording deleted): `finish()` first to keep it.
        """
        if self._thread is not None and self._finished is None:
            self.abort()
        self._thread = self._reader = self._writer = self._recording = None
        self.source = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._seq = self._taken = 0  # frames read / the read count at the last frame taken
        self._ended = False
        self.unwatched = False
        self._last_step = self._clock()
        self._error: BaseException | None = None
        self._processed = 0
        self._t_first: float | None = None
        self._recent: deque[float] = deque()
        self._video_s = 0.0
        self._second: int | None = None
        self._sum = np.zeros(0, dtype=np.float64)
        self._count = 0
        self._held: np.ndarray | None = None
        self.phases: list[PhaseSecond] = []
        self._finished = None
        if self._tracker is not None:
            self._tracker.reset()
        if self._recognizer is not None:
            self._recognizer.reset()

    def start(self) -> SourceInfo:
        """Load the models, open the source and start reading (and recording) it."""
        if self._thread is not None:
            raise RuntimeError("this live session has already started; reset() it or make a new one")
        names = self.class_names
        model = self.phase_model
        if model is not None:
            missing = [t for t in model.tool_names if t not in names]
            if missing:
                raise ValueError(f"the phase model needs tools {missing} that the detector does not know ({list(names)})")
            self._tool_index = np.array([names.index(t) for t in model.tool_names], dtype=np.int64)
            self._recognizer = model.online()
            self._recognizer.reset()
        self._sum = np.zeros(len(names), dtype=np.float64)
        self._reader = open_source(self.source_ref)
        self.source = self._reader.open()
        try:
            if self.tracker_name is not None:
                from models.tracker import Tracker

                self._tracker = Tracker(self.tracker_name, frame_rate=self.source.fps)
                self._tracker._make()  # imports ultralytics' trackers now, not on the first frame
            w, h = self.source.size
            self.detector([np.zeros((h, w, 3), dtype=np.uint8)])  # warm-up: the first call is the slow one
            if self.record:
                from video.writer import VideoWriter

                folder = self.record_to.parent if self.record_to else Path(tempfile.mkdtemp(prefix="surglens-live-"))
                self._recording = self.record_to or folder / "live.mp4"
                self._writer = VideoWriter(self._recording, fps=self.source.fps, size=self.source.size)
        except BaseException:
            self._reader.close()
            raise
        self._last_step = self._clock()
        self._thread = threading.Thread(target=self._read_loop, name="surglens-live-reader", daemon=True)
        self._thread.start()
        return self.source

    def stop(self) -> None:
        """Ask the session to stop reading (any thread); `step()` then returns None once the newest frame is done."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._finished is None and not (self._ended and self._taken == self._seq)

    def _read_loop(self) -> None:
        assert self._reader is not None
        offset: float | None = None
        try:
            for frame in self._reader.frames():
                if self._stop.is_set() or (self.max_seconds is not None and frame.timestamp_s >= self.max_seconds - 1e-6):
                    break
                if self.stop_unwatched_s is not None and self._clock() - self._last_step > self.stop_unwatched_s:
                    self.unwatched = True
                    break
                if self._reader.paced:  # a file plays at its own timestamps
                    if offset is None:
                        offset = self._clock() - frame.timestamp_s
                    delay = offset + frame.timestamp_s - self._clock()
                    if delay > 0 and self._stop.wait(delay):
                        break
                if self._writer is not None:
                    self._writer.write(frame.rgb)
                with self._cond:
                    if self._t_first is None:
                        self._t_first = self._clock()
                    self._latest, self._video_s = frame, frame.timestamp_s
                    self._seq += 1
                    self._cond.notify_all()
        except BaseException as exc:  # handed to step(), which raises it in the caller's thread
            self._error = exc
        finally:
            self._reader.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def step(self, timeout: float | None = None) -> LiveUpdate | None:
        """Analyse the newest frame not analysed yet (waiting for it); None when the source ended or was stopped.

        With `timeout`, also None when no new frame came in that many seconds (check `running`).
        """
        if self._thread is None:
            self.start()
        self._last_step = self._clock()
        with self._cond:
            fresh = self._cond.wait_for(lambda: self._seq > self._taken or self._ended or self._error is not None,
                                        timeout=timeout)
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if not fresh or self._seq == self._taken:
                return None
            frame, self._taken = self._latest, self._seq
        assert frame is not None
        return self.process(frame)

    def process(self, frame: Frame) -> LiveUpdate:
        """Detect, track and update the phase evidence with one frame (what `step` does with the newest one)."""
        detections = self.detector([frame.rgb])[0]
        if self._tracker is not None:
            detections = self._tracker(detections, np.ascontiguousarray(frame.rgb[..., ::-1]))
        names = self.class_names
        presence = np.zeros(len(names), dtype=np.float32)
        if len(detections):
            np.maximum.at(presence, detections.class_id, detections.confidence)
        presence[presence < PRESENCE_CONF] = 0.0
        updated = self._add_evidence(frame.timestamp_s, presence)
        now = self._clock()
        self._processed += 1
        self._recent.append(now)
        while self._recent and now - self._recent[0] > RATE_WINDOW_S:
            self._recent.popleft()
        tools = tuple(names[c] for c in np.argsort(-presence, kind="stable") if presence[c] > 0)
        return LiveUpdate(frame, detections, tools, self.phases[-1] if self.phases else None, updated,
                          self.timeline(), self.stats(), names)

    def _add_evidence(self, timestamp_s: float, presence: np.ndarray) -> bool:
        second = max(int(math.floor(timestamp_s + 1e-9)), 0)
        updated = False
        if self._second is None:
            self._second = second
        while second > self._second:  # this frame opens a new second: the finished ones go to the phase model
            self._close_second()
            updated = True
        self._sum += presence
        self._count += 1
        return updated and self.phase_model is not None

    def _close_second(self) -> None:
        """Feed the phase model the mean evidence of the open second (a second without frames holds the last)."""
        assert self._second is not None
        if self._count:
            self._held = (self._sum / self._count).astype(np.float32)
        if self._recognizer is not None and self._held is not None:
            probs = np.asarray(self._recognizer(self._held[self._tool_index]), dtype=np.float64)
            best = int(probs.argmax())
            self.phases.append(PhaseSecond(self._second, self.phase_model.phase_names[best], float(probs[best]),
                                           tuple(float(p) for p in probs)))
        self._second += 1
        self._sum[:] = 0.0
        self._count = 0

    def timeline(self) -> tuple[PhaseSecond, ...]:
        """The phase of each of the last `timeline_s` seconds."""
        if not self.phases:
            return ()
        start = self.phases[-1].second - self.timeline_s
        return tuple(p for p in self.phases[-int(self.timeline_s) - 1:] if p.second > start)

    def stats(self) -> LiveStats:
        now = self._clock()
        elapsed = now - self._t_first if self._t_first is not None else 0.0
        window = self._recent
        recent = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 and window[-1] > window[0] else 0.0
        return LiveStats(elapsed, self._video_s, self._seq, self._processed, recent,
                         self._processed / elapsed if elapsed > 0 else 0.0, self.source.fps if self.source else 0.0)

    def __iter__(self) -> Iterator[LiveUpdate]:
        """Updates until the source ends or `stop()` (the caller then calls `finish()`)."""
        while (update := self.step()) is not None:
            yield update

    def finish(self) -> LiveResult:
        """Stop, give the last second to the phase model and close the recording; idempotent."""
        if self._finished is not None:
            return self._finished
        if self._thread is None:
            raise RuntimeError("this live session never started")
        self.stop()
        self._thread.join()
        if self._count and self._second is not None:
            self._close_second()
        frames = 0
        recording = None
        if self._writer is not None:
            frames = self._writer.frames_written
            if frames:
                self._writer.close()
                recording = self._recording
            else:
                self._writer.abort()
            self._writer = None
        assert self.source is not None
        self._finished = LiveResult(self.source, recording, list(self.phases), self.stats(), frames)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._finished

    def abort(self) -> None:
        """Stop and delete the recording (nothing is kept)."""
        self.stop()
        if self._thread is not None:
            self._thread.join()
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


def analyse_recording(recording: str | Path, out_dir: str | Path, config: Any = None) -> "CaseResult":
    """The normal analysis (analysis.analyze) of a kept live recording into the case folder `out_dir`."""
    from analysis.analyze import analyze_video

    return analyze_video(recording, out_dir, config)
