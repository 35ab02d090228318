"""`surglens live FILE`: one status line per second at the file's real rate, then the session kept as a case."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import analysis.live
from app.cli import main
from library import Library, Settings
from models.taxonomy import load_taxonomy
from tests.analysis.live_stubs import StubDetector
from video import probe


@pytest.fixture(scope="module")
def clip(make_video) -> Path:
    return make_video("live_cli_3s.mp4", n_frames=30, fps=10)


@pytest.fixture(autouse=True)
def stub_detector(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(analysis.live, "load_live_detector", lambda imgsz=320: StubDetector())


def test_live_file_into_the_library_with_the_shipped_phase_model(clip, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["live", str(clip), "--data-dir", str(data), "--tracker", "bytetrack"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    status = [line for line in lines if " fps processed " in line]
    assert 2 <= len(status) <= 4, lines  # about one a second over 3 s
    assert "tools Grasper" in status[-1] and "phase " in status[-1]
    summary = json.loads(lines[-1])
    assert summary["source"]["fps"] == 10.0 and summary["frames_recorded"] == 30
    assert [p["second"] for p in summary["phases"]] == [0, 1, 2]
    assert all(p["phase"] in load_taxonomy().phase_names for p in summary["phases"])
    with Library(Settings.from_env(data_dir=str(data))) as library:
        case = library.get_case(summary["case"]["id"])
        assert case.status == "queued" and case.title.startswith("Live session ")
        assert probe(data / case.video_path, content_hash=False).frame_count == 30


def test_live_out_keeps_the_recording_and_analyses_it(clip, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(analysis.live, "analyse_recording", lambda rec, out, config=None: calls.append((rec, out)) or {})
    out = tmp_path / "session"
    assert main(["live", str(clip), "--out", str(out), "--seconds", "1", "--no-phase", "--no-track"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames_recorded"] == 10 and summary["phases"] == []
    assert calls == [(out / "recording.mp4", out / "case")]
    assert probe(out / "recording.mp4", content_hash=False).frame_count == 10


@pytest.mark.parametrize("argv, match", [
    (["live", "/no/such/clip.mp4"], "no such video file"),
    (["live", "ftp://host/stream"], "stream URLs must use"),
])
def test_bad_source_is_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
