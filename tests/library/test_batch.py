"""`surglens batch`: tasks from a folder or the queue, progress with ETA, resuming, and a real local Ray."""
from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.cli import main
from library import Library, Settings, batch, db
from library.batch import BatchTask, ThreadExecutor, estimate_eta, find_videos, library_tasks, run_batch
from tests.library.conftest import fake_analyze, fake_probe, fake_video, write_fake_results


def _run(lib: Library, videos, analyze=fake_analyze, workers: int = 2, **kwargs):
    tasks, skipped = library_tasks(lib, videos, analyze=analyze, setup_logging=False, **kwargs)
    lines: list[str] = []
    executor = ThreadExecutor(workers)
    try:
        result = run_batch(tasks, executor, skipped=skipped, report=lines.append, poll_s=0.05,
                           live_fraction=batch.case_fraction(lib))
    finally:
        executor.close()
    return result, lines


def test_find_videos_recursive_and_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.MP4", "1.mkv", "notes.txt", "b/3.avi"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path, ("mp4", "mkv", "avi"))] == \
        ["1.mkv", "b/2.MP4", "b/3.avi"]


@pytest.mark.parametrize(("make", "match"), [
    (lambda p: p / "absent", "not a folder"),
    (lambda p: p, "no video files"),
])
def test_find_videos_rejects(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        find_videos(make(tmp_path), ("mp4",))


@pytest.mark.parametrize(("elapsed", "done", "total", "eta"), [(10, 1, 4, 30.0), (10, 4, 4, 0.0), (0, 0, 4, None),
                                                               (10, 0, 4, None)])
def test_estimate_eta(elapsed, done, total, eta):
    assert estimate_eta(elapsed, done, total) == eta


def test_folder_batch_analyses_every_video_into_the_library(lib, tmp_path):
    videos = [fake_video(tmp_path, f"v{i}.mp4", f"video {i}".encode()) for i in range(3)]
    videos.append(fake_video(tmp_path, "copy.mp4", b"video 0"))  # same content: the same case
    result, lines = _run(lib, videos)
    assert result.ok and len(result.done) == 3 and result.skipped == {}
    assert {c.status for c in lib.list_cases()} == {"done"} and len(lib.list_cases()) == 3
    assert lines[0] == "batch: 3 video(s) to analyse, up to 2 at a time"
    assert "batch: 3/3 finished (0 failed), 0 running, 100%" in lines[-1] and "ETA 0:00" in lines[-1]
    # A second run finds every case done and analyses nothing.
    again, lines = _run(lib, videos)
    assert again.done == [] and set(again.skipped.values()) == {"already done"} and lines[-1] == \
        "batch: nothing to analyse"


def test_killed_batch_is_resumed(lib, tmp_path):
    videos = [fake_video(tmp_path, f"v{i}.mp4", f"video {i}".encode()) for i in range(3)]
    first, _ = _run(lib, videos[:1])  # finished before the kill
    lib.ingest(videos[1])
    lib.ingest(videos[2])
    job = lib.jobs.claim("somehost-gone:1:abc")  # the killed batch's task: its heartbeat stopped
    with lib._sessions.begin() as s:
        s.execute(update(db.Job).where(db.Job.id == job.job_id)
                  .values(heartbeat_at=db.utcnow() - timedelta(seconds=lib.settings.stale_after_s + 1)))
    analysed: list[int] = []

    def analyze(video_path, out_dir, config, progress):
        analysed.append(int(Path(out_dir).name))
        return fake_analyze(video_path, out_dir, config, progress)

    result, _ = _run(lib, videos, analyze)
    assert result.ok and sorted(analysed) == [2, 3] and list(result.skipped.values()) == ["already done"]
    assert {c.status for c in lib.list_cases()} == {"done"}
    assert [j.attempts for j in lib.jobs.list_jobs(case_id=job.case_id)] == [2]


def test_failed_video_is_reported_and_retried_only_when_asked(lib, tmp_path):
    videos = [fake_video(tmp_path, f"v{i}.mp4", f"video {i}".encode()) for i in range(2)]

    def analyze(video_path, out_dir, config, progress):
        if Path(out_dir).name == "2":
            raise RuntimeError("decoder gave up\ndetails")
        return write_fake_results(out_dir)

    result, lines = _run(lib, videos, analyze)
    assert not result.ok and result.failed == {"case 2 (v1.mp4)": "RuntimeError: decoder gave up"}
    assert "case 2 (v1.mp4): failed: RuntimeError: decoder gave up" in lines
    again, _ = _run(lib, videos, analyze)
    assert again.done == [] and "failed before" in again.skipped["case 2 (v1.mp4)"]
    retried, _ = _run(lib, videos, fake_analyze, retry_failed=True)
    assert retried.done == ["case 2 (v1.mp4)"] and lib.get_case(2).status == "done"


def test_library_batch_takes_every_queued_case_and_shows_live_progress(lib, make_case):
    ids = [make_case() for _ in range(2)]
    release = threading.Event()

    def analyze(video_path, out_dir, config, progress):
        from analysis.pipeline import Progress

        progress(Progress("frames", 16, 32, None))  # half way: the ETA line sees it through the library
        assert release.wait(10)
        return write_fake_results(out_dir)

    tasks, skipped = library_tasks(lib, None, analyze=analyze, setup_logging=False)
    assert [t.case_id for t in tasks] == ids and skipped == {}
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if "50%" in line:
            release.set()

    executor = ThreadExecutor(2)
    try:
        result = run_batch(tasks, executor, report=report, poll_s=0.05, live_fraction=batch.case_fraction(lib))
    finally:
        release.set()
        executor.close()
    assert result.ok and len(result.done) == 2
    assert any("0/2 finished (0 failed), 2 running, 50%" in line for line in lines)


def test_task_whose_job_another_worker_holds_is_skipped(lib, make_case):
    case_id = make_case()
    tasks, _ = library_tasks(lib, None, setup_logging=False)
    lib.jobs.claim("live-worker-elsewhere")  # e.g. the dashboard's worker was faster
    outcome = tasks[0].fn(*tasks[0].args)
    assert outcome == {"case_id": case_id, "status": "skipped", "error": "another worker has its job", "seconds": 0.0}


def test_a_task_that_dies_is_a_failure_not_a_crash():
    def die():
        raise MemoryError("killed")

    executor = ThreadExecutor(1)
    try:
        result = run_batch([BatchTask("v", 1.0, die, ())], executor, report=lambda line: None, poll_s=0.05)
    finally:
        executor.close()
    assert result.failed == {"v": "MemoryError: killed"}


@pytest.mark.parametrize(("argv", "match"), [
    (["batch"], "give a FOLDER of videos, or --library"),
    (["batch", "--library", "--out", "x"], "cannot be combined with --library"),
])
def test_batch_cli_refuses(argv, match, capsys, tmp_path):
    assert main(argv + ["--data-dir", str(tmp_path / "data")]) == 2
    assert match in capsys.readouterr().err


def test_batch_cli_without_ray_says_how_to_install(monkeypatch, capsys, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    fake_video(tmp_path, "v.mp4")
    assert main(["batch", str(tmp_path), "--data-dir", str(tmp_path / "data")]) == 2
    assert "surglens batch needs Ray, which is not installed: pip install 'surglens[batch]'" in capsys.readouterr().err
    assert not (tmp_path / "data" / "library.db").exists()  # nothing ingested


def test_batch_cli_with_a_fake_executor(monkeypatch, capsys, tmp_path, settings):
    """The CLI path end to end, with threads instead of Ray and the fake analysis."""
    class FakeRay(ThreadExecutor):
        def __init__(self, address, workers, **kwargs):
            super().__init__(workers or 2)

        def describe(self) -> str:
            return "fake executor"

    monkeypatch.setattr(batch, "RayExecutor", FakeRay)
    monkeypatch.setattr("library.worker._default_analyze", fake_analyze)
    monkeypatch.setattr("library.store._default_probe", fake_probe)
    monkeypatch.setattr(batch, "import_ray", lambda local=True: None)
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(2):
        fake_video(folder, f"v{i}.mp4", f"video {i}".encode())
    argv = ["batch", str(folder), "--data-dir", str(settings.data_dir), "--poll-seconds", "0.05"]
    if settings.db_url:
        argv += ["--db-url", settings.db_url]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "fake executor"
    summary = json.loads(out[-1])
    assert summary["ok"] and sorted(summary["done"]) == ["case 1 (v0.mp4)", "case 2 (v1.mp4)"]
    with Library(settings, probe=fake_probe) as library:
        assert {c.status for c in library.list_cases()} == {"done"}
    assert main(argv) == 0  # resumable: the second run skips both
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["skipped"] == {
        "case 1 (v0.mp4)": "already done", "case 2 (v1.mp4)": "already done"}


@pytest.mark.slow
def test_batch_on_a_local_ray_with_the_real_pipeline(make_video, tmp_path, capsys, monkeypatch):
    import sys

    if "ray" not in sys.modules:  # Ray reads it at its first import: its servers on loopback only
        monkeypatch.setenv(batch.RAY_LOCAL_ONLY_ENV, "0")
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'surglens[batch]')")
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(2):
        source = make_video(f"batch{i}.mp4", n_frames=40 + 10 * i, size=(160, 96))
        (folder / source.name).write_bytes(source.read_bytes())
    data = tmp_path / "data"
    assert main(["batch", str(folder), "--data-dir", str(data), "--workers", "2", "--poll-seconds", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Ray: 1 node(s) on 127.0.0.1, 2 CPU") and "up to 2 video(s) at a time" in out[0]
    assert any(line.startswith("batch: 2/2 finished (0 failed)") for line in out)
    summary = json.loads(out[-1])
    assert summary["ok"] and sorted(summary["done"]) == ["case 1 (batch0.mp4)", "case 2 (batch1.mp4)"]
    with Library(Settings(data_dir=data)) as library:
        cases = library.list_cases()
        assert {c.status for c in cases} == {"done"} and len(cases) == 2
        for case in cases:
            assert library.case_results(case.id).schema_version == 2
    assert "job 1: done" in (data / "logs" / "worker.log").read_text() or \
        "job 2: done" in (data / "logs" / "worker.log").read_text()


def test_plain_folder_batch_writes_case_folders_and_resumes(tmp_path, monkeypatch):
    from library.batch import folder_tasks

    calls: list[str] = []

    def analyze_video(video, out_dir, config):
        calls.append(Path(out_dir).name)
        if Path(video).name == "bad.mp4":
            raise ValueError("no video stream in the file")
        write_fake_results(Path(out_dir))

    monkeypatch.setattr("analysis.analyze.analyze_video", analyze_video)
    monkeypatch.setattr(batch, "_duration", lambda video: 32.0)
    folder, out = tmp_path / "videos", tmp_path / "out"
    (folder / "day2").mkdir(parents=True)
    for name in ("a.mp4", "day2/a.mp4", "bad.mp4"):
        fake_video(folder, name)
    videos = find_videos(folder, ("mp4",))

    def run():
        tasks, skipped = folder_tasks(videos, folder, out, {"sample_fps": 1.0})
        executor = ThreadExecutor(2)
        try:
            return run_batch(tasks, executor, skipped=skipped, report=lambda line: None, poll_s=0.05)
        finally:
            executor.close()

    result = run()
    assert sorted(result.done) == ["a", "day2__a"] and result.failed == {"bad": "ValueError: no video stream in the file"}
    assert (out / "day2__a" / "case.json").is_file() and not (out / "bad").exists()
    calls.clear()
    again = run()
    assert calls == ["bad"] and again.skipped == {"a": "already done", "day2__a": "already done"}
