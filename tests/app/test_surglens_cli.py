"""The `surglens` CLI: probe and analyze on real clips, one-line errors on bad input."""
import json
import subprocess
import sys

import pytest

from app.cli import main
from tests.conftest import REPO


def test_probe_prints_exact_properties_of_every_real_clip(cholec_clips, capsys):
    assert cholec_clips, "no clips in the shared data"
    for clip in cholec_clips:
        assert main(["probe", str(clip)]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["width"], info["height"], info["fps"], info["frame_count"]) == (854, 480, 25.0, 800)
        assert info["codec"] == "h264" and info["duration_s"] == pytest.approx(32.0)


@pytest.mark.parametrize(
    "content,match",
    [(b"", "empty"), (b"hello, this is not a video\n" * 20, "not a video"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "notes.mp4")],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, capsys, content, match):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(content)
    for command in (["probe", str(bad)], ["analyze", str(bad), "--out", str(tmp_path / "case")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, err
    assert not (tmp_path / "case").exists()


def test_analyze_refuses_a_folder_it_did_not_write(tiny_video, tmp_path, capsys):
    folder = tmp_path / "Desktop"
    folder.mkdir()
    (folder / "report.txt").write_text("mine")
    assert main(["analyze", str(tiny_video), "--out", str(folder), "--quiet", "--no-phase", "--no-detect"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a previous SurgLens case" in err and "nothing was deleted" in err, err
    assert (folder / "report.txt").read_text() == "mine" and sorted(p.name for p in folder.iterdir()) == ["report.txt"]


def test_missing_file(tmp_path, capsys):
    assert main(["probe", str(tmp_path / "nope.mp4")]) == 2
    assert "nope.mp4" in capsys.readouterr().err


def test_sample_fps_is_validated(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "x.mp4", "--out", "o", "--sample-fps", "-2"])
    assert "must be a positive number, got '-2'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--anatomy-every", "0"), ("--anatomy-every", "-1"), ("--anatomy-every", "x")])
def test_anatomy_interval_is_validated(capsys, flag, value):
    with pytest.raises(SystemExit):
        main(["analyze", "x.mp4", "--out", "o", flag, value])
    assert f"must be a positive number, got {value!r}" in capsys.readouterr().err


def test_analyze_real_clip_writes_the_case(cholec_clips, tmp_path):
    """Every stage on a real clip, through the console entry point (a fresh process, as a user runs it)."""
    clip = next(c for c in cholec_clips if "group_57" in c.name)
    out = tmp_path / "case"
    run = subprocess.run([sys.executable, "-m", "app.cli", "analyze", str(clip), "--out", str(out), "--quiet"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    assert summary["frames_analysed"] == 32
    from analysis.results import CaseResult

    case = CaseResult.load(out)
    assert set(case.stages) == {"quality", "detection", "anatomy", "phase", "motion", "playback", "thumbnail", "annotate"}
    for name in ("detections.parquet", "tool_presence.parquet", "motion.json", "phase_probs.parquet",
                 "phase_segments.json", "phase_cholec80.txt", "quality.parquet", "thumbnail.jpg"):
        assert (out / name).exists(), name
    # At 1 fps nothing is encoded that nobody watches: the boxes are drawn on the original in Case review.
    assert case.annotated_video is None and "no annotated video" in case.summary("annotate")["skipped"]
    assert case.video.fps == 25.0 and case.video.frame_count == 800
