"""The background analysis worker: a separate process (`surglens worker`) that drains the job queue.

For each claimed job it runs `analyze_video` into `data_dir/cases/<case_id>/` (the pipeline writes
`<case_id>.partial` and renames it when complete), then marks the case done with its summary. A
heartbeat thread writes the job's heartbeat and the latest progress to the case row every
`settings.heartbeat_s`, so the page shows stage and ETA and other workers can tell this one is
alive. A failure marks the case failed with a one-line reason (the traceback goes to the worker log)
and leaves no results folder. Stopping (SIGTERM, Ctrl-C) gives the running job back to the queue,
without counting the attempt; long final steps (the proxy encode) report progress, so a stop
request is honoured there too. A job running past its time limit (`Settings.job_time_limit_s`:
10 min + 3x the video's duration by default) fails with that reason at its next progress report.
The database URL's password never reaches the log (`mask_password` on every record).
"""
from __future__ import annotations

import gc
import inspect
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.exc import SQLAlchemyError

from analysis.results import CaseResult, partial_folder
from library.config import Settings, mask_password
from library.db import Outcome
from library.errors import NotFoundError
from library.jobs import ClaimedJob, JobQueue, ProgressLike, new_worker_id
from library.store import Library
from library.summary import summarise

log = logging.getLogger("surglens.worker")

# analysis.analyze.analyze_video's signature: (video_path, out_dir, config, progress) -> the published case
AnalyzeFn = Callable[[Path, Path, Any, Callable[[ProgressLike], None]], Any]


class JobLost(RuntimeError):
    """This worker no longer owns the job (it was taken back as stale, or the case was deleted)."""


class StopRequested(RuntimeError):
    """The worker was asked to stop; the running job goes back to the queue."""


class JobTimedOut(RuntimeError):
    """The analysis ran past its time limit (Settings.job_time_limit_s)."""


@dataclass(frozen=True)
class JobOutcome:
    """How one job ended for this worker: done, failed, released (stopping) or lost."""

    job_id: int
    case_id: int
    status: Outcome
    error: str | None
    seconds: float


def _default_analyze(video_path: Path, out_dir: Path, config: Any, progress: Callable[[ProgressLike], None],
                     sha256: str | None = None) -> Any:
    from analysis.analyze import analyze_video

    return analyze_video(video_path, out_dir, config, progress, sha256=sha256)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class _MaskPasswords(logging.Filter):
    """Masks URL passwords in every record (a database error may quote the URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_password(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_password(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_password(record.exc_text)
        return True


def analysis_config(config: dict[str, Any]) -> Any:
    """The AnalysisConfig of a case's stored config dict."""
    from analysis.analyze import AnalysisConfig

    return AnalysisConfig(**config)


def one_line(exc: BaseException) -> str:
    """A failure reason for the page: exception type and first message line, no traceback."""
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0].strip()}" if lines else type(exc).__name__
    return reason if len(reason) <= 500 else reason[:497] + "..."


def exit_when_hung(reason: str) -> None:
    """`Worker(on_hang=...)` of the worker process: the job was failed; end the process (serve starts a new one)."""
    import os

    log.error("exiting: %s", reason)
    for handler in log.handlers:
        handler.flush()
    os._exit(3)


def setup_worker_logging(settings: Settings, level: int = logging.INFO) -> Path:
    """Log the worker to stderr and to `data_dir/logs/worker.log` (tracebacks of failed jobs go there)."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    path = settings.logs_dir / "worker.log"
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for old in list(log.handlers):  # calling it again (another library) replaces, never duplicates
        log.removeHandler(old)
        old.close()
    for handler in (logging.FileHandler(path, encoding="utf-8"), logging.StreamHandler()):
        handler.setFormatter(formatter)
        handler.addFilter(_MaskPasswords())
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return path


class _Heartbeat:
    """Writes the heartbeat and the latest progress every `interval_s` from a thread.

    `report` is the pipeline's progress callback: it only records the progress (so analysis never
    waits on the database) and raises when the job was lost or the worker is stopping.
    """

    def __init__(self, jobs: JobQueue, job: ClaimedJob, interval_s: float, stop: threading.Event,
                 limit_s: float | None = None, on_hang: Callable[[str], None] | None = None,
                 hang_grace_s: float = 60.0):
        self.jobs, self.job, self.interval_s, self._stop = jobs, job, interval_s, stop
        self.limit_s = limit_s
        self.on_hang, self.hang_grace_s = on_hang, hang_grace_s
        self._deadline = None if limit_s is None else time.monotonic() + limit_s
        self.lost = threading.Event()
        self._done = threading.Event()
        self._latest: ProgressLike | None = None
        self._written: ProgressLike | None = None
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-job-{job.job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def latest(self) -> ProgressLike | None:
        return self._latest

    def report(self, progress: ProgressLike) -> None:
        self._latest = progress
        if self.lost.is_set():
            raise JobLost(f"job {self.job.job_id} was taken back from this worker")
        if self._stop.is_set():
            raise StopRequested("worker stopping")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise JobTimedOut(self.timeout_reason())

    def timeout_reason(self) -> str:
        return (f"the analysis took longer than its time limit of {self.limit_s / 60:.1f} min "
                "(10 min + 3x the video's duration by default); see the worker log")

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            if (self.on_hang is not None and self._deadline is not None
                    and time.monotonic() > self._deadline + self.hang_grace_s):
                # Past the limit and no progress report since: a stage is stuck where it cannot be
                # interrupted. The job fails with the reason; `on_hang` ends the process (serve restarts it).
                reason = self.timeout_reason()
                log.error("job %d: no progress report since its time limit passed; failing it", self.job.job_id)
                try:
                    self.jobs.fail(self.job, reason)
                    shutil.rmtree(partial_folder(self.job.out_dir), ignore_errors=True)
                finally:
                    self.lost.set()
                    self.on_hang(reason)
                return
            latest = self._latest
            try:
                owned = self.jobs.heartbeat(self.job, latest if latest is not self._written else None)
            except SQLAlchemyError:
                log.warning("job %d: heartbeat failed, retrying", self.job.job_id, exc_info=True)
                continue
            if not owned:
                self.lost.set()
                return
            self._written = latest

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


class Worker:
    """Claims queued jobs from `library` and analyses them one at a time.

    `analyze` replaces analysis.analyze.analyze_video (tests inject a fake one); it receives the
    case's AnalysisConfig and a progress callback.
    """

    def __init__(self, library: Library, analyze: AnalyzeFn | None = None, *, poll_s: float = 2.0,
                 worker_id: str | None = None, on_hang: Callable[[str], None] | None = None,
                 hang_grace_s: float = 60.0):
        self.library = library
        self.analyze = analyze or _default_analyze
        self.poll_s = poll_s
        # Called (from the heartbeat thread) when a job is `hang_grace_s` past its time limit without a
        # progress report; `surglens worker` exits the process there (`exit_when_hung`).
        self.on_hang, self.hang_grace_s = on_hang, hang_grace_s
        self.worker_id = worker_id or new_worker_id()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the worker to stop; a running analysis is interrupted at its next progress report."""
        self._stop.set()

    def run(self, once: bool = False) -> int:
        """Work until stopped (or, with `once`, until the queue is empty); returns the jobs handled.

        Interrupted jobs of dead workers are taken back first and on every idle poll.
        """
        log.info("worker %s started on %s", self.worker_id, self.library.settings.safe_database_url)
        handled = 0
        while not self._stop.is_set():
            try:
                recovered = self.library.jobs.recover_stale()
                if recovered:
                    log.info("took back interrupted job(s) %s", recovered)
                outcome = self.run_once()
            except SQLAlchemyError:
                log.exception("library database error; retrying in %.1f s", self.poll_s)
                self._stop.wait(self.poll_s)
                continue
            if outcome is None:
                if once:
                    break
                self._stop.wait(self.poll_s)
            else:
                handled += 1
        log.info("worker %s stopped after %d job(s)", self.worker_id, handled)
        return handled

    def run_once(self, case_id: int | None = None) -> JobOutcome | None:
        """Claim one queued job (of `case_id` only, when given) and run it; None when there is none."""
        job = self.library.jobs.claim(self.worker_id, case_id)
        return None if job is None else self._run(job)

    def _run(self, job: ClaimedJob) -> JobOutcome:
        jobs = self.library.jobs
        log.info("job %d: analysing case %d (attempt %d)", job.job_id, job.case_id, job.attempt)
        started = time.monotonic()
        settings = self.library.settings
        heartbeat = _Heartbeat(jobs, job, settings.heartbeat_s, self._stop, settings.job_time_limit_s(job.duration_s),
                               self.on_hang, self.hang_grace_s)
        partial = partial_folder(job.out_dir)

        def outcome(status: Outcome, error: str | None = None) -> JobOutcome:
            gc.collect()  # the analysis' frames and tables: measured 250 MiB given back before the next job
            seconds = round(time.monotonic() - started, 3)
            log.info("job %d: %s in %.1f s%s", job.job_id, status, seconds, f" ({error})" if error else "")
            return JobOutcome(job.job_id, job.case_id, status, error, seconds)

        heartbeat.start()
        try:
            config = analysis_config(job.config)
            if _accepts(self.analyze, "sha256"):  # the hash of ingest: the file is not read again to hash it
                self.analyze(job.video_path, job.out_dir, config, heartbeat.report, sha256=job.sha256)
            else:
                self.analyze(job.video_path, job.out_dir, config, heartbeat.report)
            summary = summarise(CaseResult.load(job.out_dir))
        except (StopRequested, KeyboardInterrupt) as exc:
            heartbeat.stop()
            shutil.rmtree(partial, ignore_errors=True)
            jobs.release(job)
            if isinstance(exc, KeyboardInterrupt):
                log.info("job %d: given back to the queue (interrupted)", job.job_id)
                raise
            return outcome(Outcome.RELEASED)
        except JobLost as exc:
            heartbeat.stop()
            self._discard_if_deleted(job)
            return outcome(Outcome.LOST, str(exc))
        except Exception as exc:
            heartbeat.stop()
            reason = one_line(exc)
            log.exception("job %d (case %d) failed: %s", job.job_id, job.case_id, reason)
            shutil.rmtree(partial, ignore_errors=True)
            if jobs.fail(job, reason):
                shutil.rmtree(job.out_dir, ignore_errors=True)  # a failed case has no results folder
            else:
                self._discard_if_deleted(job)
            return outcome(Outcome.FAILED, reason)
        heartbeat.stop()
        if not jobs.finish(job, summary, config.to_dict(), heartbeat.latest):
            self._discard_if_deleted(job)
            return outcome(Outcome.LOST, "the job was taken back or the case deleted before it finished")
        return outcome(Outcome.DONE)

    def _discard_if_deleted(self, job: ClaimedJob) -> None:
        try:
            self.library.get_case(job.case_id)
        except NotFoundError:
            shutil.rmtree(job.out_dir, ignore_errors=True)
            shutil.rmtree(partial_folder(job.out_dir), ignore_errors=True)
