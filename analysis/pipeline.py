"""One streaming pass per video: frames are decoded once and fed to every enabled stage.

Decoding runs in a thread that fills a bounded queue of frame batches, so decoding overlaps
inference and memory stays flat whatever the video length. Results are written into a temporary
folder that replaces the output folder only when every stage has finished, so a failed run never
leaves a half-written case. Only a folder SurgLens wrote is ever replaced or removed: the output
folder must be absent, empty or a previous case (its case.json), and the temporary folder carries a
marker file (`analysis.results.check_output_folder`, which `CaseWriter` applies).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from analysis.results import CaseResult, CaseWriter, Sampling, StageRecord, check_output_folder
from video import Frame, FrameReader, VideoInfo, probe


@dataclass
class Progress:
    """What a long analysis reports: the stage, frames done out of the expected total, and ETA."""

    stage: str
    done: int
    total: int
    eta_s: float | None


ProgressCallback = Callable[[Progress], None]


@dataclass
class StageContext:
    """What a stage sees at `finish`: the video, the case being written, and earlier stages' outputs."""

    info: VideoInfo
    case: CaseWriter
    sample_fps: float | None
    resize: tuple[int, int] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    # The run's progress callback: a long `finish` (a proxy encode) reports through it, which is
    # where a stopping worker interrupts it (the callback raises).
    progress: ProgressCallback | None = None

    @property
    def sampling(self) -> Sampling:
        """The analysed rate and frame size (`frames_analysed` is only known when the case is published)."""
        return Sampling.of(self.info, self.sample_fps, 0, self.resize)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the analysed frames, which detections' pixels refer to."""
        return self.sampling.frame_size

    @property
    def analysed_fps(self) -> float:
        """Frames per second actually analysed (never more than the video has)."""
        return self.sampling.analysed_fps

    @property
    def frame_interval_s(self) -> float:
        """Seconds between analysed frames."""
        return self.sampling.frame_interval_s


class Stage:
    """A pipeline stage: settings in `__init__`, `__call__` per frame batch, `finish` at the end.

    `finish` writes the stage's files through `ctx.case`, puts its typed output that later stages
    need into `ctx.outputs[self.name]`, and returns a JSON-able summary for case.json.
    """

    name: str = "stage"
    version: str = "1"

    def reset(self) -> None:
        """Forget everything seen so far (called before each video)."""

    def start(self, ctx: StageContext) -> None:
        """Called once per video after `reset`, before the first batch: read the video's info here."""

    def __call__(self, frames: Sequence[Frame]) -> None:
        """Consume one batch of decoded frames."""

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        return {}


class AnalysisError(RuntimeError):
    """An analysis that could not complete; the message names the stage and the cause."""


_END = object()


def _decode_into(
    reader: FrameReader, q: "queue.Queue[Any]", batch_size: int, stop: threading.Event, busy: list[float]
) -> None:
    """Decode into `q` in batches; `busy[0]` accumulates the seconds spent decoding (not waiting on the queue)."""
    batch: list[Frame] = []
    frames = iter(reader)
    try:
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            busy[0] += time.perf_counter() - t0
            if frame is None:
                break
            if stop.is_set():
                return
            batch.append(frame)
            if len(batch) == batch_size:
                q.put(batch)
                batch = []
        if batch:
            q.put(batch)
        q.put(_END)
    except BaseException as exc:  # forwarded to the consumer, which re-raises it
        q.put(exc)


def run_pipeline(
    video_path: str | Path,
    out_dir: str | Path,
    stages: Sequence[Stage],
    sample_fps: float | None = 1.0,
    resize: tuple[int, int] | None = None,
    batch_size: int = 8,
    queue_batches: int = 4,
    progress: ProgressCallback | None = None,
    sha256: str | None = None,
) -> CaseResult:
    """Decode `video_path` once, feed every stage, publish the case in `out_dir`; returns it.

    `sha256` is the file's content hash when the caller knows it (the library hashed it at ingest):
    the file is then not read again to hash it. case.json never holds the video's path.
    """
    video_path, out_dir = Path(video_path), Path(out_dir)
    check_output_folder(out_dir)
    t_probe = time.perf_counter()
    info = probe(video_path, content_hash=sha256 is None)  # else hashes the whole file (the case's identity)
    if sha256 is not None:
        info = replace(info, sha256=sha256)
    probe_s = time.perf_counter() - t_probe
    reader = FrameReader(video_path, sample_fps=sample_fps, resize=resize)
    total = reader.expected_count()
    open_s = time.perf_counter() - t_probe - probe_s
    writer = CaseWriter(out_dir)
    timings: dict[str, float] = {s.name: 0.0 for s in stages}
    interrupts: list[BaseException] = []  # what the progress callback raised (a stop, a lost job): not a stage failure

    def stage_progress(p: Progress) -> None:
        try:
            progress(p)
        except BaseException as exc:
            interrupts.append(exc)
            raise

    ctx = StageContext(info=info, case=writer, sample_fps=sample_fps, resize=resize,
                       progress=stage_progress if progress else None)
    t_start = time.perf_counter()
    for stage in stages:
        stage.reset()
        stage.start(ctx)
    start_s = time.perf_counter() - t_start

    q: "queue.Queue[Any]" = queue.Queue(maxsize=queue_batches)
    stop = threading.Event()
    busy = [0.0]
    decoder = threading.Thread(target=_decode_into, args=(reader, q, batch_size, stop, busy), daemon=True)
    started = time.perf_counter()
    decoder.start()
    done, waited = 0, 0.0
    try:
        while True:
            t0 = time.perf_counter()
            item = q.get()
            waited += time.perf_counter() - t0
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            for stage in stages:
                t0 = time.perf_counter()
                stage(item)
                timings[stage.name] += time.perf_counter() - t0
            done += len(item)
            if progress:
                elapsed = time.perf_counter() - started
                eta = elapsed / done * max(total - done, 0) if done else None
                progress(Progress("frames", done, total, eta))
        summaries: dict[str, Any] = {}
        for stage in stages:
            if progress:
                progress(Progress(stage.name, done, total, None))
            t0 = time.perf_counter()
            try:
                summaries[stage.name] = stage.finish(ctx)
            except Exception as exc:
                if any(exc is interrupt for interrupt in interrupts):
                    raise
                raise AnalysisError(f"stage {stage.name!r} failed: {exc}") from exc
            timings[stage.name] += time.perf_counter() - t0
    except BaseException:
        stop.set()
        for stage in stages:  # release what stages hold open (writers) before the folder goes
            try:
                stage.reset()
            except Exception:
                pass
        writer.discard()
        raise
    finally:
        stop.set()
        while decoder.is_alive():  # unblock a decoder waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                decoder.join(timeout=0.05)

    result = CaseResult(
        path=writer.path,
        video=replace(info, path=""),  # no path: it names the patient
        sampling=Sampling.of(info, sample_fps, done, resize),
        decode={"backend": reader.backend, "warnings": _without_path(reader.warnings, video_path)},
        stages={s.name: StageRecord(s.version, round(timings[s.name], 3), summaries[s.name]) for s in stages},
        wall_seconds=round(time.perf_counter() - started, 3),
        # Where the time went: probe (with the file's SHA-256), opening the reader, loading models
        # (stage start), decoding in its thread (colour conversion/resizing included, and also apart),
        # and the stages' own time waiting for decoded frames (decode-bound when large).
        profile={
            "probe_hash_s": round(probe_s, 3), "open_reader_s": round(open_s, 3), "stage_start_s": round(start_s, 3),
            "decode_s": round(busy[0], 3),
            "convert_resize_s": None if reader.convert_seconds is None else round(reader.convert_seconds, 3),
            "wait_for_frames_s": round(waited, 3),
        },
        versions=_versions(),
    )
    return writer.publish(result)


def _without_path(warnings: Sequence[str], video_path: Path) -> list[str]:
    """Decoder warnings with the video's path (and folder) replaced: they may quote it."""
    paths = sorted({str(video_path), str(video_path.resolve()), str(video_path.resolve().parent),
                    str(video_path.parent)}, key=len, reverse=True)
    out = []
    for warning in warnings:
        text = str(warning)
        for path in paths:
            if len(path) > 1 and path != ".":  # never "/" (a file at the root) or "."
                text = text.replace(path, "<video>" if path.endswith(video_path.name) else "<folder>")
        out.append(text)
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("surglens", "torch", "ultralytics", "openvino", "decord", "av"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out
