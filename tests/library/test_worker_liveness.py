"""Worker liveness: stops honoured in the proxy encode, shutdowns not counted, restarts, time limits, no passwords in logs."""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from analysis.pipeline import Progress, run_pipeline
from analysis.stages.playback import PlaybackStage
from app.cli import serve
from library import Library, Settings
from library.config import mask_password
from library.worker import StopRequested, Worker, _default_analyze, log, setup_worker_logging
from tests.library.conftest import write_fake_results


def _avi(path: Path, n_frames: int = 240) -> Path:
    """An MPEG-4 Part 2 AVI: browsers cannot play it, so the analysis encodes a proxy."""
    with av.open(str(path), mode="w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i % 250, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_proxy_encode_reports_progress_and_stops_between_chunks(tmp_path):
    video = _avi(tmp_path / "tower.avi")
    seen = []

    def progress(p: Progress) -> None:
        seen.append((p.stage, p.done))
        if p.stage == "playback" and p.total == 240:  # the encode's own report (frames of the video)
            raise StopRequested("worker stopping")

    with pytest.raises(StopRequested):
        run_pipeline(video, tmp_path / "case", [PlaybackStage()], sample_fps=1.0, progress=progress)
    encoded = [done for stage, done in seen if stage == "playback" and done != 10]  # 10: frames analysed
    assert encoded == [50]  # stopped after the first chunk of the 240 frames, not at the end
    assert not (tmp_path / "case").exists() and not (tmp_path / "case.partial").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tower.avi"]  # no half-written proxy anywhere


def test_worker_stopped_during_the_proxy_encode_gives_the_job_back_uncounted(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", heartbeat_s=0.05)
    with Library(settings) as lib:
        case, _ = lib.ingest(_avi(tmp_path / "tower.avi"),
                             config={"detect": False, "track": False, "phase": False, "quality": False,
                                     "annotate": False})
        worker = None

        def analyze(video_path, out_dir, config, progress, sha256=None):
            def report(p):
                if p.stage == "playback" and p.total == 240:  # inside the proxy encode
                    worker.stop()  # what SIGTERM from `surglens serve` does
                progress(p)
            return _default_analyze(video_path, out_dir, config, report, sha256=sha256)

        for _ in range(4):  # more stops than max_attempts: a shutdown is never a failed attempt
            worker = Worker(lib, analyze)
            assert worker.run_once().status == "released"
            assert lib.get_case(case.id).status == "queued"
        assert [j.attempts for j in lib.jobs.list_jobs()] == [0]
        assert not lib.case_dir(case.id).exists() and not lib.case_dir(case.id).with_name(f"{case.id}.partial").exists()
        assert Worker(lib).run_once().status == "done"  # the real analysis, uninterrupted
        result = lib.case_results(case.id)
        assert result.proxy_video is not None
        assert result.video.path == "" and result.video.sha256 == case.sha256


def test_the_worker_passes_the_ingest_hash_on(lib, make_case):
    case_id = make_case()
    hashes = []

    def analyze(video_path, out_dir, config, progress, sha256=None):
        hashes.append(sha256)
        return write_fake_results(out_dir)

    assert Worker(lib, analyze).run_once().status == "done"
    assert hashes == [lib.get_case(case_id).sha256]


def test_killed_worker_job_is_given_back_uncounted(lib, make_case):
    """`serve` stopping a worker that ignores SIGTERM kills it and gives the job back itself."""
    case_id = make_case()
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert stubborn.stdout.readline().strip() == "ready"
        import socket

        job = lib.jobs.claim(f"{socket.gethostname()}:{stubborn.pid}:abcd1234")
        assert job is not None and lib.get_case(case_id).status == "running"
        started = time.monotonic()
        assert serve.stop_worker(stubborn, lib.settings, grace_s=0.5) is True
        assert time.monotonic() - started < 10 and stubborn.poll() is not None
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
    assert lib.get_case(case_id).status == "queued"
    assert [(j.status, j.attempts) for j in lib.jobs.list_jobs()] == [("queued", 0)]


def test_release_process_leaves_other_workers_jobs(lib, make_case):
    make_case(), make_case()
    import socket

    host = socket.gethostname()
    mine = lib.jobs.claim(f"{host}:111:a")
    other = lib.jobs.claim(f"{host}:1112:b")  # a pid with the same digits at the start
    assert lib.jobs.release_process(111) == [mine.job_id]
    assert {j.id: j.status for j in lib.jobs.list_jobs()} == {mine.job_id: "queued", other.job_id: "running"}


class _FakeProcess:
    def __init__(self, exits_after_polls: int | None = None, code: int = 0):
        self.pid, self.returncode = 4242, None
        self._polls, self._exit_after, self._code = 0, exits_after_polls, code
        self.terminated = False

    def poll(self):
        self._polls += 1
        if self._exit_after is not None and self._polls > self._exit_after:
            self.returncode = self._code
        return self.returncode

    def wait(self, timeout=None):
        return self.returncode

    def terminate(self):
        self.terminated = True
        self.returncode = -15


class _FakeApp:
    def __init__(self, runs_for_polls: int):
        self.left = runs_for_polls

    def wait(self, timeout=None):
        if self.left > 0:
            self.left -= 1
            raise subprocess.TimeoutExpired("streamlit", timeout)
        return 0


def test_serve_restarts_a_dead_worker_and_stops_the_last_one(capsys):
    workers = [_FakeProcess(exits_after_polls=1, code=-9), _FakeProcess()]
    started = []

    def start():
        started.append(workers.pop(0))
        return started[-1]

    assert serve.supervise(_FakeApp(runs_for_polls=5), start, settings=None, poll_s=0) == 0
    assert len(started) == 2 and started[1].terminated
    assert "exit code -9" in capsys.readouterr().err


def test_serve_gives_up_on_a_worker_that_dies_at_once_every_time(capsys):
    started = []

    def start():
        started.append(_FakeProcess(exits_after_polls=0, code=1))
        return started[-1]

    assert serve.supervise(_FakeApp(runs_for_polls=20), start, settings=None, poll_s=0) == 0
    assert len(started) == serve.MAX_RESTARTS + 1
    assert "not restarting it" in capsys.readouterr().err


@pytest.mark.parametrize(("duration_s", "limit_s"), [(None, 600.0), (0.0, 600.0), (3600.0, 600.0 + 3 * 3600.0)])
def test_time_limit_scales_with_the_video(duration_s, limit_s):
    assert Settings().job_time_limit_s(duration_s) == limit_s


def test_job_past_its_time_limit_fails_with_the_reason(tmp_path, db_url):
    from library.store import Library
    from tests.library.conftest import fake_probe, fake_video

    settings = Settings(data_dir=tmp_path / "data", db_url=db_url, heartbeat_s=0.05, job_base_s=0.2,
                        job_per_video_s=0.0)
    with Library(settings, probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path))

        def hangs(video_path, out_dir, config, progress):
            time.sleep(0.3)
            progress(Progress("frames", 1, 10, None))
            return write_fake_results(out_dir)

        outcome = Worker(lib, hangs).run_once()
        assert outcome.status == "failed" and "time limit" in outcome.error
        assert lib.get_case(case.id).status == "failed" and not lib.case_dir(case.id).exists()


def test_database_password_never_reaches_the_log(tmp_path):
    url = "postgresql+psycopg://surglens:S3cret-pw@db.local:5432/library"
    settings = Settings(data_dir=tmp_path / "data", db_url=url)
    assert "S3cret" not in settings.safe_database_url and "surglens:***@db.local" in settings.safe_database_url
    path = setup_worker_logging(settings)
    try:
        log.info("worker started on %s", settings.safe_database_url)
        log.warning("connection to %s failed", url)  # a message that quotes the raw URL
        try:
            raise RuntimeError(f"(psycopg.OperationalError) could not connect: {url}")
        except RuntimeError:
            log.exception("library database error")
        for handler in log.handlers:
            handler.flush()
        text = path.read_text()
    finally:
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()
    assert text.count("surglens:***@db.local") == 3 and "S3cret" not in text
    assert mask_password("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_kill_9_during_the_proxy_encode_leaves_nothing_half_written_and_the_case_finishes(tmp_path):
    import os
    import textwrap

    from tests.conftest import REPO

    settings = Settings(data_dir=tmp_path / "data", heartbeat_s=0.05)
    with Library(settings) as lib:
        case, _ = lib.ingest(_avi(tmp_path / "tower.avi", n_frames=400),
                             config={"detect": False, "track": False, "phase": False, "quality": False,
                                     "annotate": False})
        script = tmp_path / "slow_encoding_worker.py"
        script.write_text(textwrap.dedent(f"""
            import time
            from library import Library, Settings
            from library.worker import Worker, _default_analyze

            def analyze(video_path, out_dir, config, progress, sha256=None):
                def report(p):
                    progress(p)
                    if p.stage == "playback" and p.total == 400:
                        time.sleep(0.5)  # a slow encode: time to be killed in the middle of it
                return _default_analyze(video_path, out_dir, config, report, sha256=sha256)

            settings = Settings(data_dir={str(settings.data_dir)!r}, heartbeat_s=0.05)
            Worker(Library(settings), analyze).run(once=True)
        """))
        proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            deadline = time.monotonic() + 90
            while lib.get_case(case.id).progress.stage != "playback" or lib.get_case(case.id).progress.total != 400:
                assert time.monotonic() < deadline and proc.poll() is None, "the encode never started"
                time.sleep(0.05)
        finally:
            proc.kill()  # SIGKILL in the middle of the proxy encode
            proc.wait()
        partial = lib.case_dir(case.id).with_name(f"{case.id}.partial")
        assert not lib.case_dir(case.id).exists()  # no case folder before the analysis completes
        assert Worker(lib).run(once=True) == 1  # the next worker takes the job back and finishes it
        done = lib.get_case(case.id)
        assert done.status == "done", done.error
        assert not partial.exists() and lib.case_results(case.id).proxy_video is not None
        assert [p.name for p in lib.case_dir(case.id).iterdir() if p.name.startswith(".")] == []  # no .partial files
        assert [j.attempts for j in lib.jobs.list_jobs()] == [2]  # a crash counts; a clean stop would not


def test_a_stage_stuck_past_its_time_limit_fails_the_job_and_calls_on_hang(tmp_path):
    from tests.library.conftest import fake_probe, fake_video

    settings = Settings(data_dir=tmp_path / "data", heartbeat_s=0.05, job_base_s=0.2, job_per_video_s=0.0)
    with Library(settings, probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path))
        hung = []

        def stuck(video_path, out_dir, config, progress):  # no progress report: cannot be interrupted
            deadline = time.monotonic() + 10
            while not hung and time.monotonic() < deadline:
                time.sleep(0.02)
            return write_fake_results(out_dir)

        outcome = Worker(lib, stuck, on_hang=hung.append, hang_grace_s=0.1).run_once()
        assert hung and "time limit" in hung[0]
        assert outcome.status == "lost"  # its late results are not kept
        case = lib.get_case(case.id)
        assert case.status == "failed" and "time limit" in case.error


def test_cli_errors_never_show_the_database_password(tmp_path, capsys):
    from app.cli import main

    url = "postgresql+psycopg://surglens:S3cret-pw@127.0.0.1:1/library?connect_timeout=1"
    code = main(["library", "list", "--data-dir", str(tmp_path / "data"), "--db-url", url])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Connection refused" in err.replace("connection refused", "Connection refused")
    assert "S3cret" not in err
