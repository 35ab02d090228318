"""Many videos at once (`surglens batch`): one task per video on Ray, results into the case library.

Each task runs exactly what `surglens worker` runs for one job (`analyse_case`: claim the case's
queued job, `Worker` runs the pipeline, heartbeats, done/failed in the library), so a batch and the
dashboard's worker can share a library: whichever claims a job first analyses it. A batch is
resumable: videos already in the library are found by content hash, done cases are skipped, and
jobs of a killed batch are taken back (their worker process is gone) and run again.

Ray runs locally by default (`ray.init(num_cpus=...)`, no dashboard, its servers on 127.0.0.1 only,
see `import_ray`) or joins a cluster with `address`; every task asks for `cpus_per_task` CPUs and
`memory_gb` of memory, so Ray never runs more analyses on a node than its reported cores and memory
allow. On a cluster every node must see
the same `data_dir` (a shared mount) and database (PostgreSQL). Ray is optional (`pip install
'surglens[batch]'`): it is imported only when a `RayExecutor` is made. `ThreadExecutor` runs the
same tasks in this process (tests, or a machine without Ray).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from library.config import Settings
from library.db import Outcome, Status
from library.store import Library

DEFAULT_MEMORY_GB = 2.0  # peak RSS of one analysis measured at 1.8-2.0 GB on 10-64 min recordings
RAY_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's one-machine mode, servers on loopback
RAY_MISSING = ("surglens batch needs Ray, which is not installed: pip install 'surglens[batch]' "
               "(or .venv/bin/pip install 'ray>=2.9,<3')")


class Executor(Protocol):
    """Where batch tasks run: Ray, or threads in this process."""

    slots: int  # how many tasks can run at once

    def submit(self, fn: Callable[..., dict], *args: Any) -> Any: ...

    def wait(self, handles: Sequence[Any], timeout_s: float) -> tuple[list[Any], list[Any]]: ...

    def result(self, handle: Any) -> dict: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BatchTask:
    """One video to analyse: `fn(*args)` returns {"status": "done" | "failed" | "skipped", "error": ...}."""

    key: str  # what the progress lines call it: "case 3" or the video's name
    duration_s: float  # video seconds, for the ETA (0 when unknown)
    fn: Callable[..., dict]
    args: tuple
    case_id: int | None = None


@dataclass
class BatchReport:
    """How a batch ended; `skipped` holds the videos that needed nothing (done before) and why."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ------------------------------------------------------------------------ tasks (run on the workers)

def analyse_case(settings: Settings, case_id: int, analyze: Callable | None = None,
                 setup_logging: bool = True) -> dict:
    """Run the queued job of `case_id` as `surglens worker` would; returns the outcome as a dict.

    Jobs of dead workers are taken back first, so a retried task (its process was killed) or a
    resumed batch finds its case queued again. "skipped" means another worker holds the job.
    """
    from library.worker import Worker, setup_worker_logging

    os.environ.setdefault("YOLO_OFFLINE", "True")
    if setup_logging:
        setup_worker_logging(settings)
    with Library(settings) as library:
        library.jobs.recover_stale()
        outcome = Worker(library, analyze).run_once(case_id=case_id)
    if outcome is None:
        return {"case_id": case_id, "status": Outcome.SKIPPED, "error": "another worker has its job", "seconds": 0.0}
    return asdict(outcome)


def analyse_file(video: Path, out_dir: Path, config: dict[str, Any]) -> dict:
    """Analyse one video into `out_dir` without a library (the plain `--out` batch)."""
    from analysis.analyze import AnalysisConfig, analyze_video
    from library.worker import one_line

    os.environ.setdefault("YOLO_OFFLINE", "True")
    started = time.monotonic()
    try:
        analyze_video(video, out_dir, AnalysisConfig(**config))
    except Exception as exc:  # reported per video; the batch goes on
        return {"status": Outcome.FAILED, "error": one_line(exc), "seconds": round(time.monotonic() - started, 3)}
    return {"status": Outcome.DONE, "error": None, "seconds": round(time.monotonic() - started, 3)}


# ------------------------------------------------------------------------ planning (on the driver)

def find_videos(folder: str | Path, extensions: Sequence[str]) -> list[Path]:
    """Video files under `folder` (recursively, by extension), sorted; raises when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"not a folder: {str(folder)!r}")
    exts = {e.lower().lstrip(".") for e in extensions}
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in exts)
    if not videos:
        raise ValueError(f"no video files ({', '.join(sorted(exts))}) in {str(folder)!r}")
    return videos


def library_tasks(library: Library, videos: Sequence[Path] | None = None, *, retry_failed: bool = False,
                  config: dict[str, Any] | None = None, analyze: Callable | None = None,
                  setup_logging: bool = True) -> tuple[list[BatchTask], dict[str, str]]:
    """Tasks for the queued cases of `videos` (ingested first; None: every queued case of the library).

    Returns (tasks, skipped): done cases are skipped, failed ones too unless `retry_failed`, and
    cases a live worker is analysing are left to it. Jobs of dead workers are taken back first.
    """
    library.jobs.recover_stale()
    if videos is None:
        cases = [library.get_case(j.case_id) for j in library.jobs.list_jobs((Status.QUEUED,))]
        labels = {c.id: f"case {c.id}" for c in cases}
    else:
        cases, labels = [], {}
        for video in videos:
            case, _created = library.ingest(video, config=config)
            cases.append(case)
            labels[case.id] = f"case {case.id} ({Path(video).name})"
    tasks: list[BatchTask] = []
    skipped: dict[str, str] = {}
    seen: set[int] = set()
    for case in cases:
        label = labels[case.id]
        if case.id in seen:  # two files with the same content are one case
            continue
        seen.add(case.id)
        status = case.status
        if status == Status.FAILED and retry_failed:
            case, status = library.requeue(case.id), Status.QUEUED
        if status == Status.QUEUED:
            tasks.append(BatchTask(label, float(case.duration_s or 0.0), analyse_case,
                                   (library.settings, case.id, analyze, setup_logging), case_id=case.id))
        elif status == Status.DONE:
            skipped[label] = "already done"
        elif status == Status.FAILED:
            skipped[label] = f"failed before ({case.error}); --retry-failed analyses it again"
        else:
            skipped[label] = "another worker is analysing it"
    return tasks, skipped


def case_fraction(library: Library) -> Callable[[BatchTask], float | None]:
    """`live_fraction` for `run_batch`: how far the worker's heartbeat says a running case is."""
    from library.errors import NotFoundError

    def fraction(task: BatchTask) -> float | None:
        try:
            return None if task.case_id is None else library.get_case(task.case_id).progress.fraction
        except NotFoundError:
            return None

    return fraction


def folder_tasks(videos: Sequence[Path], root: Path, out: Path,
                 config: dict[str, Any]) -> tuple[list[BatchTask], dict[str, str]]:
    """Tasks writing `out/<video path under root>` case folders; finished ones are skipped."""
    from analysis.results import is_case_folder

    tasks: list[BatchTask] = []
    skipped: dict[str, str] = {}
    for video in videos:
        name = "__".join(video.relative_to(root).with_suffix("").parts)
        case_dir = out / name
        if is_case_folder(case_dir):
            skipped[name] = "already done"
            continue
        tasks.append(BatchTask(name, _duration(video), analyse_file, (video, case_dir, config)))
    return tasks, skipped


def _duration(video: Path) -> float:
    try:
        from video import probe

        return float(probe(video, content_hash=False).duration_s or 0.0)
    except Exception:  # unreadable: its task reports the error; the ETA just cannot weigh it
        return 0.0


# ------------------------------------------------------------------------ running

def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def estimate_eta(elapsed_s: float, done_s: float, total_s: float) -> float | None:
    """Seconds left at the rate so far (`done_s` of `total_s` units of work in `elapsed_s`)."""
    if done_s <= 0 or elapsed_s <= 0:
        return None
    return max(total_s - done_s, 0.0) * elapsed_s / done_s


def run_batch(tasks: Sequence[BatchTask], executor: Executor, *, skipped: dict[str, str] | None = None,
              report: Callable[[str], None] = print, poll_s: float = 5.0,
              live_fraction: Callable[[BatchTask], float | None] | None = None,
              max_in_flight: int | None = None) -> BatchReport:
    """Run `tasks` on `executor`, printing progress with an ETA; returns the report.

    The ETA weighs each video by its duration; `live_fraction(task)` (the library's progress of a
    running case) makes it move between completions. At most `max_in_flight` tasks are submitted
    at once (default: all; the executor bounds how many run).
    """
    result = BatchReport(skipped=dict(skipped or {}))
    for key, reason in result.skipped.items():
        report(f"{key}: skipped ({reason})")
    if not tasks:
        report("batch: nothing to analyse")
        return result
    by_duration = all(t.duration_s > 0 for t in tasks)  # else every video counts the same
    weights = {t.key: t.duration_s if by_duration else 1.0 for t in tasks}
    total = sum(weights.values())
    waiting = list(tasks)
    running: dict[Any, BatchTask] = {}
    started = time.monotonic()
    finished_weight = 0.0
    limit = max_in_flight or len(tasks)

    def line() -> str:
        partial = 0.0
        if live_fraction is not None:
            for task in running.values():
                fraction = live_fraction(task)
                partial += weights[task.key] * min(max(fraction or 0.0, 0.0), 1.0)
        elapsed = time.monotonic() - started
        eta = estimate_eta(elapsed, finished_weight + partial, total)
        n = len(result.done) + len(result.failed)
        return (f"batch: {n}/{len(tasks)} finished ({len(result.failed)} failed), {len(running)} running, "
                f"{100 * (finished_weight + partial) / total:.0f}%, elapsed {_clock(elapsed)}, ETA {_clock(eta)}")

    def fill() -> None:
        while waiting and len(running) < limit:
            task = waiting.pop(0)
            running[executor.submit(task.fn, *task.args)] = task

    report(f"batch: {len(tasks)} video(s) to analyse, up to {executor.slots} at a time")
    try:
        fill()
        while running:
            ready, _ = executor.wait(list(running), poll_s)
            for handle in ready:
                task = running.pop(handle)
                try:
                    outcome = executor.result(handle)
                except Exception as exc:  # the task itself died (e.g. its process was killed)
                    from library.worker import one_line

                    outcome = {"status": Outcome.FAILED, "error": one_line(exc), "seconds": 0.0}
                finished_weight += weights[task.key]
                status, seconds = outcome.get("status"), float(outcome.get("seconds") or 0.0)
                if status == Outcome.DONE:
                    result.done.append(task.key)
                    report(f"{task.key}: done in {seconds:.1f} s")
                elif status == Outcome.SKIPPED:
                    result.skipped[task.key] = str(outcome.get("error"))
                    report(f"{task.key}: skipped ({outcome.get('error')})")
                else:
                    result.failed[task.key] = str(outcome.get("error") or status)
                    report(f"{task.key}: {status}: {outcome.get('error')}")
            fill()
            report(line())
    finally:
        result.seconds = round(time.monotonic() - started, 3)
    return result


class ThreadExecutor:
    """Runs tasks on threads of this process (no Ray): tests, and a quick local batch."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        self.slots = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="surglens-batch")

    def submit(self, fn: Callable[..., dict], *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def wait(self, handles: Sequence[Future], timeout_s: float) -> tuple[list[Future], list[Future]]:
        done, pending = wait_futures(handles, timeout=timeout_s, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done], [h for h in handles if h in pending]

    def result(self, handle: Future) -> dict:
        return handle.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def import_ray(local: bool = True):
    """The `ray` module, or a RuntimeError saying how to install it.

    With `local`, Ray is kept to this machine: its single-machine mode (the default on macOS and
    Windows, read when ray is first imported) puts every Ray server on 127.0.0.1 instead of the
    machine's network address. Ray never reports usage statistics.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if local:
        os.environ.setdefault(RAY_LOCAL_ONLY_ENV, "0")
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    return ray


class RayExecutor:
    """Runs tasks on Ray: a local instance (default) or the cluster at `address`.

    Each task asks for `cpus_per_task` CPUs and `memory_gb` GiB, so Ray runs on each node only as
    many as its reported CPUs and memory hold. `workers` caps the local instance's CPUs (default:
    all cores). `env` reaches every task's process (Ray's runtime_env env_vars).
    """

    def __init__(self, address: str | None = None, workers: int | None = None, *, cpus_per_task: float = 1.0,
                 memory_gb: float = DEFAULT_MEMORY_GB, env: dict[str, str] | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        if cpus_per_task <= 0 or memory_gb <= 0:
            raise ValueError(f"cpus_per_task and memory_gb must be positive, got {cpus_per_task!r}, {memory_gb!r}")
        ray = import_ray(local=address is None)
        self._ray = ray
        self.cpus_per_task, self.memory_bytes = cpus_per_task, int(memory_gb * 2**30)
        env_vars = {"YOLO_OFFLINE": "True", "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "runtime_env": {"env_vars": env_vars}}
        self._owns = not ray.is_initialized()
        if self._owns:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
        self.nodes = [n for n in ray.nodes() if n.get("Alive")]
        self.slots = sum(self._fits(n.get("Resources", {})) for n in self.nodes)
        if self.slots == 0:
            self.close()
            raise ValueError(f"no Ray node has {cpus_per_task:g} CPU and {memory_gb:g} GiB free for one analysis; "
                             "lower --memory-gb or add nodes")
        if workers is not None:
            self.slots = min(self.slots, workers)
        self._remote: dict[Callable, Any] = {}

    def _fits(self, resources: dict[str, float]) -> int:
        return int(min(resources.get("CPU", 0) // self.cpus_per_task, resources.get("memory", 0) // self.memory_bytes))

    def describe(self) -> str:
        cpus = sum(n["Resources"].get("CPU", 0) for n in self.nodes)
        memory = sum(n["Resources"].get("memory", 0) for n in self.nodes) / 2**30
        where = ", ".join(sorted({str(n.get("NodeManagerAddress")) for n in self.nodes})[:4])
        return (f"Ray: {len(self.nodes)} node(s) on {where}, {cpus:g} CPU, {memory:.1f} GiB memory; up to {self.slots} "
                f"video(s) at a time ({self.cpus_per_task:g} CPU, {self.memory_bytes / 2**30:g} GiB each)")

    def submit(self, fn: Callable[..., dict], *args: Any) -> Any:
        if fn not in self._remote:
            # One retry: a task whose process died (out of memory) runs again; its job is taken back first.
            self._remote[fn] = self._ray.remote(num_cpus=self.cpus_per_task, memory=self.memory_bytes,
                                                max_retries=1)(fn)
        return self._remote[fn].remote(*args)

    def wait(self, handles: Sequence[Any], timeout_s: float) -> tuple[list[Any], list[Any]]:
        return self._ray.wait(list(handles), num_returns=1, timeout=timeout_s)

    def result(self, handle: Any) -> dict:
        return self._ray.get(handle)

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
