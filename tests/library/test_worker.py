"""The worker with an injected analysis: success, failure, loss, stop and resume."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from library import db
from library.worker import Worker, one_line
from tests.conftest import REPO
from tests.library.conftest import Progress, fake_analyze, write_fake_results


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_success_marks_done_and_fills_the_summary(lib, make_case):
    case_id = make_case()
    outcome = Worker(lib, fake_analyze).run_once()
    assert outcome.status == "done" and outcome.case_id == case_id
    case = lib.get_case(case_id)
    assert case.status == "done" and case.error is None and case.analysed_at is not None
    assert case.phase_seconds == {"Preparation": 12.0, "CalotTriangleDissection": 20.0}  # alias -> taxonomy name
    assert case.tool_seconds == {"Grasper": 4.0, "Hook": 2.0}
    assert case.progress.stage == "done" and case.progress.fraction == 1.0
    assert case.analysis_config["sample_fps"] == lib.settings.sample_fps and "detect" in case.analysis_config
    assert lib.case_results(case_id).schema_version == 2
    assert not lib.case_dir(case_id).with_name(f"{case_id}.partial").exists()
    assert lib.jobs.list_jobs()[0].status == "done"


def test_progress_reaches_the_case_row_while_running(lib, make_case):
    case_id = make_case()
    seen = []

    def slow_analyze(video_path, out_dir, config, progress):
        progress(Progress("frames", 5, 20, 3.0))
        _wait_for(lambda: lib.get_case(case_id).progress.done == 5)  # written by the heartbeat thread
        seen.append(lib.get_case(case_id))
        return write_fake_results(out_dir)

    assert Worker(lib, slow_analyze).run_once().status == "done"
    (running,) = seen
    assert running.status == "running" and running.progress.stage == "frames" and running.progress.eta_s == 3.0


def test_failure_marks_failed_with_one_line_and_leaves_no_folder(lib, make_case, caplog):
    case_id = make_case()

    def broken(video_path, out_dir, config, progress):
        partial = Path(out_dir).with_name(Path(out_dir).name + ".partial")
        partial.mkdir(parents=True)
        (partial / "detections.parquet").write_bytes(b"half")
        progress(Progress("frames", 8, 32, 1.0))
        raise RuntimeError("stage 'detection' failed: out of memory\nsecond line of detail")

    with caplog.at_level(logging.ERROR, logger="surglens.worker"):
        outcome = Worker(lib, broken).run_once()
    case = lib.get_case(case_id)
    assert outcome.status == "failed"
    assert case.status == "failed" and case.error == "RuntimeError: stage 'detection' failed: out of memory"
    assert case.progress.stage is None
    assert list(lib.settings.cases_dir.iterdir()) == []
    assert "Traceback" in caplog.text and "second line of detail" in caplog.text  # full detail in the log
    with pytest.raises(ValueError, match="has no results"):
        lib.case_results(case_id)


def test_analysis_that_writes_no_case_json_fails(lib, make_case):
    case_id = make_case()
    Worker(lib, lambda video, out, config, progress: {}).run_once()
    case = lib.get_case(case_id)
    assert case.status == "failed" and "case.json missing" in case.error


def test_failed_rerun_removes_old_results(lib, make_case):
    case_id = make_case()
    Worker(lib, fake_analyze).run_once()
    lib.requeue(case_id)

    def broken(*_):
        raise ValueError("bad weights")

    Worker(lib, broken).run_once()
    assert lib.get_case(case_id).status == "failed" and not lib.case_dir(case_id).exists()


def test_several_uploads_queue_and_run_in_order(lib, make_case):
    ids = [make_case() for _ in range(3)]
    order = []

    def analyze(video_path, out_dir, config, progress):
        order.append(int(Path(out_dir).name))
        return write_fake_results(out_dir)

    assert Worker(lib, analyze).run(once=True) == 3
    assert order == ids
    assert {c.status for c in lib.list_cases()} == {"done"}


def test_restarted_worker_resumes_an_interrupted_job(lib, make_case):
    case_id = make_case()
    job = lib.jobs.claim("host-gone:1:abc")  # a worker on a machine that went away mid-analysis
    partial = job.out_dir.with_name(job.out_dir.name + ".partial")
    partial.mkdir(parents=True)
    with lib._sessions.begin() as s:
        s.execute(update(db.Job).values(heartbeat_at=db.utcnow() - timedelta(seconds=lib.settings.stale_after_s + 1)))
    assert Worker(lib, fake_analyze).run(once=True) == 1
    case = lib.get_case(case_id)
    assert case.status == "done"
    assert [j.attempts for j in lib.jobs.list_jobs()] == [2]
    assert not partial.exists()


def test_case_deleted_during_analysis_discards_results(lib, make_case):
    case_id = make_case()

    def analyze(video_path, out_dir, config, progress):
        lib.delete_case(case_id)
        return write_fake_results(out_dir)

    assert Worker(lib, analyze).run_once().status == "lost"
    assert list(lib.settings.cases_dir.iterdir()) == []


def test_lost_job_stops_the_analysis(lib, make_case):
    make_case()

    def analyze(video_path, out_dir, config, progress):
        with lib._sessions.begin() as s:  # another worker took the job back
            s.execute(update(db.Job).values(worker_id="someone-else"))
        while True:
            progress(Progress("frames", 1, 2, None))  # raises once the heartbeat notices
            time.sleep(0.01)

    outcome = Worker(lib, analyze).run_once()
    assert outcome.status == "lost"


def test_stop_gives_the_job_back(lib, make_case):
    case_id = make_case()
    started = threading.Event()

    def analyze(video_path, out_dir, config, progress):
        Path(str(out_dir) + ".partial").mkdir(parents=True)
        started.set()
        while True:
            progress(Progress("frames", 1, 2, None))
            time.sleep(0.01)

    worker = Worker(lib, analyze, poll_s=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert started.wait(10)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    case = lib.get_case(case_id)
    assert case.status == "queued"
    (job,) = lib.jobs.list_jobs()
    assert job.status == "queued" and job.attempts == 0
    assert list(lib.settings.cases_dir.iterdir()) == []


def test_empty_queue_once_returns_immediately(lib):
    assert Worker(lib, fake_analyze).run(once=True) == 0


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (RuntimeError("a\nb"), "RuntimeError: a"),
        (KeyError("x"), "KeyError: 'x'"),
        (ValueError(""), "ValueError"),
        (ValueError("x" * 600), "ValueError: " + "x" * 485 + "..."),
    ],
)
def test_one_line(exc, line):
    assert one_line(exc) == line


def test_killed_worker_process_is_detected_and_its_job_resumed(lib, make_case, tmp_path):
    case_id = make_case()
    script = tmp_path / "crashing_worker.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from library import Library, Settings
        from library.worker import Worker
        from tests.library.conftest import Progress, fake_probe

        def hang(video_path, out_dir, config, progress):
            while True:
                progress(Progress("frames", 1, 32, None))
                time.sleep(0.05)

        settings = Settings(data_dir={str(lib.settings.data_dir)!r}, db_url={lib.settings.db_url!r}, heartbeat_s=0.05)
        Worker(Library(settings, probe=fake_probe), hang).run(once=True)
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=env)
    try:
        _wait_for(lambda: lib.get_case(case_id).progress.done == 1, timeout_s=60)
    finally:
        proc.kill()  # SIGKILL: no chance to give the job back
        proc.wait()
    assert lib.get_case(case_id).status == "running"  # its heartbeat is still fresh, but its pid is gone
    assert Worker(lib, fake_analyze).run(once=True) == 1
    assert lib.get_case(case_id).status == "done"
    assert [j.attempts for j in lib.jobs.list_jobs()] == [2]
