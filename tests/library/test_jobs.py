"""The job queue: exclusive claims, heartbeats, and taking back jobs of dead or silent workers."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import psutil
import pytest
from sqlalchemy import update

from library import Library, db
from library.jobs import new_worker_id, worker_process_gone
from library.summary import CaseSummary
from tests.library.conftest import Progress, fake_probe

DEAD_WORKER = "{host}:999999999:deadbeef"  # a pid that cannot exist


def _dead_worker_id() -> str:
    return DEAD_WORKER.format(host=new_worker_id().split(":")[0])


def test_claim_takes_oldest_and_only_once(lib, make_case):
    first, second = make_case(), make_case()
    a = lib.jobs.claim("worker-a")
    b = lib.jobs.claim("worker-b")
    assert (a.case_id, b.case_id) == (first, second)
    assert lib.jobs.claim("worker-c") is None
    assert lib.get_case(first).status == "running" and lib.get_case(first).progress.stage == "starting"
    assert a.video_path == lib.get_case(first).video_path and a.out_dir == lib.case_dir(first)


def test_two_workers_racing_for_one_job_one_wins(settings, make_case):
    make_case()
    libraries = [Library(settings, probe=fake_probe) for _ in range(2)]  # two engines, like two processes
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = libraries[i].jobs.claim(f"worker-{i}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    (job,) = libraries[0].jobs.list_jobs()
    assert job.status == "running" and job.attempts == 1 and job.worker_id == winners[0].worker_id
    for library in libraries:
        library.close()


def test_two_workers_draining_one_queue_never_take_the_same_job(settings, make_case):
    n_jobs = 40
    for _ in range(n_jobs):
        make_case()
    libraries = [Library(settings, probe=fake_probe) for _ in range(2)]  # own engines and connections
    barrier = threading.Barrier(2)
    taken: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def drain(i: int) -> None:
        barrier.wait()
        try:
            while (job := libraries[i].jobs.claim(f"worker-{i}")) is not None:
                taken[i].append(job.job_id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        assert not set(taken[0]) & set(taken[1])
        assert sorted(taken[0] + taken[1]) == list(range(1, n_jobs + 1))
        owners = {j.id: (j.worker_id, j.status, j.attempts) for j in libraries[0].jobs.list_jobs()}
        for i, ids in enumerate(taken):
            assert all(owners[job_id] == (f"worker-{i}", "running", 1) for job_id in ids)
        assert {c.status for c in libraries[0].list_cases()} == {"running"}
    finally:
        for library in libraries:
            library.close()


def test_heartbeat_writes_progress_and_detects_loss(lib, make_case):
    case_id = make_case()
    job = lib.jobs.claim("worker-a")
    assert lib.jobs.heartbeat(job, Progress("frames", 8, 32, 12.5))
    progress = lib.get_case(case_id).progress
    assert (progress.stage, progress.done, progress.total, progress.eta_s) == ("frames", 8, 32, 12.5)
    assert progress.fraction == 0.25
    with lib._sessions.begin() as s:  # someone else took the job
        s.execute(update(db.Job).values(worker_id="worker-b"))
    assert not lib.jobs.heartbeat(job, Progress("frames", 16, 32, 5.0))
    assert lib.get_case(case_id).progress.done == 8
    assert not lib.jobs.finish(job, CaseSummary(32.0, {}, {}), {})
    assert not lib.jobs.fail(job, "boom")
    assert lib.get_case(case_id).status == "running"


def _set_running(lib: Library, worker_id: str, heartbeat_age_s: float, attempts: int = 1) -> None:
    with lib._sessions.begin() as s:
        s.execute(update(db.Job).values(status="running", worker_id=worker_id, attempts=attempts,
                                        started_at=db.utcnow(),
                                        heartbeat_at=db.utcnow() - timedelta(seconds=heartbeat_age_s)))
        s.execute(update(db.Case).values(status="running"))


def test_job_of_a_dead_worker_process_is_requeued(lib, make_case):
    case_id = make_case()
    _set_running(lib, _dead_worker_id(), heartbeat_age_s=0)  # fresh heartbeat, but the process is gone
    assert lib.jobs.recover_stale() == [1]
    assert lib.get_case(case_id).status == "queued"
    job = lib.jobs.claim("worker-new")
    assert job.case_id == case_id and job.attempt == 2


def test_silent_worker_is_requeued_live_one_is_not(lib, make_case):
    case_id = make_case()
    alive = new_worker_id()  # this process: alive
    _set_running(lib, alive, heartbeat_age_s=1)
    assert lib.jobs.recover_stale() == []
    assert lib.get_case(case_id).status == "running"
    _set_running(lib, alive, heartbeat_age_s=lib.settings.stale_after_s + 5)
    assert lib.jobs.recover_stale() == [1]
    assert lib.get_case(case_id).status == "queued"


def test_job_interrupted_too_often_is_failed(lib, make_case):
    case_id = make_case()
    _set_running(lib, _dead_worker_id(), heartbeat_age_s=0, attempts=lib.settings.max_attempts)
    lib.jobs.recover_stale()
    case = lib.get_case(case_id)
    assert case.status == "failed" and f"interrupted {lib.settings.max_attempts} times" in case.error
    assert lib.jobs.claim("worker-new") is None


def test_release_gives_the_job_back_without_counting_the_attempt(lib, make_case):
    case_id = make_case()
    job = lib.jobs.claim("worker-a")
    assert lib.jobs.release(job)
    assert lib.get_case(case_id).status == "queued"
    assert lib.jobs.claim("worker-b").attempt == 1


@pytest.mark.parametrize(("worker_id", "gone"), [(None, True), ("otherhost:1:abc", False), ("garbage", False)])
def test_worker_process_gone(worker_id, gone):
    assert worker_process_gone(worker_id, None) is gone


def test_worker_process_gone_detects_dead_and_reused_pids():
    assert worker_process_gone(_dead_worker_id(), None)
    me = new_worker_id()
    assert not worker_process_gone(me, db.utcnow())
    # A job claimed a minute before this process started cannot be this process's: the pid was reused.
    created = datetime.fromtimestamp(psutil.Process().create_time(), timezone.utc)
    assert worker_process_gone(me, created - timedelta(minutes=1))


def test_requeue_only_when_finished(lib, make_case):
    case_id = make_case()
    with pytest.raises(ValueError, match=f"case {case_id} is already queued"):
        lib.requeue(case_id)
    job = lib.jobs.claim("w")
    lib.jobs.fail(job, "ValueError: bad")
    assert lib.get_case(case_id).error == "ValueError: bad"
    case = lib.requeue(case_id, config={"sample_fps": 2.0})
    assert case.status == "queued" and case.error is None and case.analysis_config["sample_fps"] == 2.0
    assert [j.status for j in lib.jobs.list_jobs(case_id=case_id)] == ["failed", "queued"]
