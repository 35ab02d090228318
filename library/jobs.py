"""The analysis job queue: rows in the library database, claimed atomically by worker processes.

A job moves queued -> running -> done | failed, and its case row mirrors that status in the same
transaction. Every write a worker makes is conditional on it still owning the job (status running
and its worker id), so a worker that was presumed dead and replaced can never overwrite the new
owner's state. Claiming is `UPDATE ... WHERE id = :id AND status = 'queued'` with a rowcount check,
which is atomic on SQLite (one writer at a time) and on PostgreSQL (the second updater re-checks
the WHERE clause after the first commits), so two workers never take the same job. On PostgreSQL
the candidate is also selected `FOR UPDATE SKIP LOCKED`, so concurrent workers take different jobs
instead of queueing behind each other's row lock (tests/library/test_jobs.py races them).
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, Sequence

import psutil
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from library import db
from library.config import Settings
from library.records import JobRecord
from library.summary import CaseSummary


class ProgressLike(Protocol):
    """analysis.pipeline.Progress, without importing the pipeline here."""

    stage: str
    done: int
    total: int
    eta_s: float | None


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker owns: what to analyse and where the results go."""

    job_id: int
    case_id: int
    worker_id: str
    attempt: int
    video_path: Path
    out_dir: Path
    config: dict[str, Any]
    sha256: str | None = None  # the stored file's content hash (analysis need not hash it again)
    duration_s: float | None = None  # the video's, for the job's time limit


def new_worker_id() -> str:
    """`host:pid:token`: the host and pid let a restarted worker see that an owner process is gone."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_process_gone(worker_id: str | None, started_at: datetime | None) -> bool:
    """True when `worker_id` names a process on this host that no longer runs (or whose pid was reused)."""
    if not worker_id:
        return True
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's worker: only its heartbeat can tell
    pid = int(pid_text)
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    # A process that started after the job was claimed cannot be its owner: the pid was reused.
    return started_at is not None and created > started_at.timestamp() + 1.0


_PROGRESS_CLEARED = {"progress_stage": None, "progress_done": 0, "progress_total": 0, "progress_eta_s": None,
                     "progress_at": None}


class JobQueue:
    """Enqueue, claim, heartbeat and close analysis jobs."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings):
        self._sessions = sessions
        self.settings = settings

    def enqueue(self, session: Session, case: db.Case) -> db.Job:
        """Queue an analysis of `case` inside the caller's transaction."""
        job = db.Job(case=case, status=db.Status.QUEUED)
        session.add(job)
        case.status, case.error = db.Status.QUEUED, None
        for key, value in _PROGRESS_CLEARED.items():
            setattr(case, key, value)
        return job

    def claim(self, worker_id: str, case_id: int | None = None) -> ClaimedJob | None:
        """Take the oldest queued job (of `case_id` only, when given) for `worker_id`; None when there is none."""
        with self._sessions() as s:
            queued = select(db.Job.id).where(db.Job.status == db.Status.QUEUED).order_by(db.Job.id)
            if case_id is not None:
                queued = queued.where(db.Job.case_id == case_id)
            if s.get_bind().dialect.name == "postgresql":
                queued = queued.limit(1).with_for_update(skip_locked=True)  # held until our commit
            else:
                queued = queued.limit(20)
            candidates = s.scalars(queued).all()
            for job_id in candidates:
                now = db.utcnow()
                claimed = s.execute(
                    update(db.Job)
                    .where(db.Job.id == job_id, db.Job.status == db.Status.QUEUED)
                    .values(status=db.Status.RUNNING, worker_id=worker_id, attempts=db.Job.attempts + 1, started_at=now,
                            heartbeat_at=now, finished_at=None, error=None)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if claimed != 1:
                    s.rollback()  # another worker was first
                    continue
                job = s.get(db.Job, job_id)
                case = job.case
                case.status, case.error = db.Status.RUNNING, None
                case.progress_stage, case.progress_done, case.progress_total = "starting", 0, 0
                case.progress_eta_s, case.progress_at = None, now
                claimed_job = ClaimedJob(
                    job_id=job.id,
                    case_id=case.id,
                    worker_id=worker_id,
                    attempt=job.attempts,
                    video_path=self.settings.data_dir / case.video_path,
                    out_dir=self.settings.cases_dir / str(case.id),
                    config=dict(case.analysis_config or {}),
                    sha256=case.sha256,
                    duration_s=case.duration_s,
                )
                s.commit()
                return claimed_job
        return None

    def _owned(self, s: Session, job: ClaimedJob, **values: Any) -> bool:
        """Update the job only while `job.worker_id` still owns it; False when it does not."""
        result = s.execute(
            update(db.Job)
            .where(db.Job.id == job.job_id, db.Job.worker_id == job.worker_id, db.Job.status == db.Status.RUNNING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def _update_case(self, s: Session, case_id: int, **values: Any) -> None:
        s.execute(update(db.Case).where(db.Case.id == case_id).values(updated_at=db.utcnow(), **values)
                  .execution_options(synchronize_session=False))

    def heartbeat(self, job: ClaimedJob, progress: ProgressLike | None = None) -> bool:
        """Refresh the job's heartbeat and write `progress` to its case; False when the job was lost."""
        with self._sessions() as s:
            now = db.utcnow()
            if not self._owned(s, job, heartbeat_at=now):
                s.rollback()
                return False
            if progress is not None:
                self._update_case(s, job.case_id, progress_stage=str(progress.stage)[:64],
                                  progress_done=int(progress.done), progress_total=int(progress.total), progress_at=now,
                                  progress_eta_s=None if progress.eta_s is None else float(progress.eta_s))
            s.commit()
            return True

    def finish(self, job: ClaimedJob, summary: CaseSummary, config: dict[str, Any],
               progress: ProgressLike | None = None) -> bool:
        """Mark the job and its case done and record the case summary; False when the job was lost.

        `progress` is the last one reported; the case shows its total as complete.
        """
        with self._sessions() as s:
            now = db.utcnow()
            if not self._owned(s, job, status=db.Status.DONE, finished_at=now, heartbeat_at=now, error=None):
                s.rollback()
                return False
            s.execute(delete(db.CaseFeature).where(db.CaseFeature.case_id == job.case_id))
            rows = [{"case_id": job.case_id, "kind": kind, "name": name, "seconds": seconds}
                    for kind, named in (("phase", summary.phase_seconds), ("tool", summary.tool_seconds))
                    for name, seconds in named.items()]
            if rows:
                s.execute(insert(db.CaseFeature), rows)
            total = int(progress.total) if progress is not None else 0
            values: dict[str, Any] = {
                "status": db.Status.DONE, "error": None, "analysed_at": now, "analysis_config": config,
                "progress_stage": "done", "progress_done": total, "progress_total": total, "progress_eta_s": 0.0,
                "progress_at": now,
            }
            if summary.duration_s is not None:
                values["duration_s"] = summary.duration_s
            self._update_case(s, job.case_id, **values)
            s.commit()
            return True

    def fail(self, job: ClaimedJob, reason: str) -> bool:
        """Mark the job and its case failed with a one-line `reason`; False when the job was lost."""
        with self._sessions() as s:
            now = db.utcnow()
            if not self._owned(s, job, status=db.Status.FAILED, finished_at=now, error=reason):
                s.rollback()
                return False
            self._update_case(s, job.case_id, status=db.Status.FAILED, error=reason, **_PROGRESS_CLEARED)
            s.commit()
            return True

    def release(self, job: ClaimedJob) -> bool:
        """Give a job back to the queue (the worker is stopping); the attempt does not count."""
        with self._sessions() as s:
            if not self._owned(s, job, status=db.Status.QUEUED, worker_id=None, heartbeat_at=None, started_at=None,
                               attempts=db.Job.attempts - 1):
                s.rollback()
                return False
            self._update_case(s, job.case_id, status=db.Status.QUEUED, error=None, **_PROGRESS_CLEARED)
            s.commit()
            return True

    def release_process(self, pid: int, host: str | None = None) -> list[int]:
        """Give back the running jobs of worker process `pid` on `host` (default: this one), uncounted.

        For a supervisor that had to kill a worker it was stopping (`surglens serve`): a shutdown is
        not a failed attempt, so the job is queued again and its attempt is not counted.
        """
        prefix = f"{host or socket.gethostname()}:{int(pid)}:"
        released: list[int] = []
        with self._sessions() as s:
            rows = s.execute(select(db.Job.id, db.Job.case_id, db.Job.worker_id)
                             .where(db.Job.status == db.Status.RUNNING, db.Job.worker_id.startswith(prefix, autoescape=True))).all()
            for row in rows:
                taken = s.execute(
                    update(db.Job)
                    .where(db.Job.id == row.id, db.Job.status == db.Status.RUNNING, db.Job.worker_id == row.worker_id)
                    .values(status=db.Status.QUEUED, worker_id=None, heartbeat_at=None, started_at=None,
                            attempts=db.Job.attempts - 1)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if taken == 1:
                    self._update_case(s, row.case_id, status=db.Status.QUEUED, error=None, **_PROGRESS_CLEARED)
                    released.append(row.id)
            s.commit()
        return released

    def recover_stale(self) -> list[int]:
        """Take back running jobs whose worker is gone or silent; returns their job ids.

        A job is re-queued, or marked failed once it was interrupted `settings.max_attempts` times
        (a video that kills the worker every time must not loop forever).
        """
        recovered: list[int] = []
        cutoff = db.utcnow() - timedelta(seconds=self.settings.stale_after_s)
        with self._sessions() as s:
            running = s.execute(
                select(db.Job.id, db.Job.case_id, db.Job.worker_id, db.Job.heartbeat_at, db.Job.started_at,
                       db.Job.attempts).where(db.Job.status == db.Status.RUNNING)
            ).all()
            for row in running:
                silent = row.heartbeat_at is None or row.heartbeat_at < cutoff
                if not (silent or worker_process_gone(row.worker_id, row.started_at)):
                    continue
                if row.attempts >= self.settings.max_attempts:
                    reason = (f"analysis interrupted {row.attempts} times (the worker stopped during it each time); "
                              "see the worker log")
                    job_values: dict[str, Any] = {"status": db.Status.FAILED, "finished_at": db.utcnow(), "error": reason}
                    case_values: dict[str, Any] = {"status": db.Status.FAILED, "error": reason}
                else:
                    job_values = {"status": db.Status.QUEUED, "worker_id": None, "heartbeat_at": None, "started_at": None}
                    case_values = {"status": db.Status.QUEUED, "error": None}
                taken = s.execute(
                    update(db.Job)
                    .where(db.Job.id == row.id, db.Job.status == db.Status.RUNNING, db.Job.worker_id == row.worker_id)
                    .values(**job_values)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if taken == 1:
                    self._update_case(s, row.case_id, **case_values, **_PROGRESS_CLEARED)
                    recovered.append(row.id)
            s.commit()
        return recovered

    def list_jobs(self, statuses: Sequence[str] = (), case_id: int | None = None) -> list[JobRecord]:
        """Jobs, oldest first, optionally only with these statuses or of one case."""
        query = select(db.Job).order_by(db.Job.id)
        if statuses:
            query = query.where(db.Job.status.in_(list(statuses)))
        if case_id is not None:
            query = query.where(db.Job.case_id == case_id)
        with self._sessions() as s:
            return [JobRecord.from_row(j) for j in s.scalars(query)]
