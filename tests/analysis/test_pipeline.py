import json

import numpy as np
import pytest

from analysis.pipeline import AnalysisError, Stage, run_pipeline
from analysis.results import CASE_JSON, CASE_SCHEMA_VERSION, PARTIAL_MARKER, CaseResult, CaseResultError, OutputFolderError
from video.writer import VideoWriter


@pytest.fixture
def clip(tmp_path):
    """A 4 s, 10 fps, 64x48 H.264 clip whose frame brightness encodes its index."""
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=10, size=(64, 48)) as w:
        for i in range(40):
            w.write(np.full((48, 64, 3), i * 5, np.uint8))
    return path


class Recorder(Stage):
    name = "recorder"

    def __init__(self):
        self.batches, self.started, self.resets = [], 0, 0

    def reset(self):
        self.resets += 1
        self.batches = []

    def start(self, ctx):
        self.started += 1
        self.fps = ctx.analysed_fps

    def __call__(self, frames):
        self.batches.append([(f.index, round(f.timestamp_s, 3), f.rgb.shape) for f in frames])

    def finish(self, ctx):
        (ctx.case.path / "recorder.json").write_text(json.dumps(self.batches))
        ctx.outputs[self.name] = len(self.batches)
        return {"frames": sum(len(b) for b in self.batches)}


class Consumer(Stage):
    name = "consumer"

    def finish(self, ctx):
        return {"seen": ctx.outputs["recorder"]}


class Exploding(Stage):
    name = "exploding"

    def finish(self, ctx):
        raise ValueError("model file unreadable")


def test_every_stage_sees_each_sampled_frame_once(clip, tmp_path):
    rec = Recorder()
    case = run_pipeline(clip, tmp_path / "case", [rec, Consumer()], sample_fps=2, batch_size=3)
    frames = [f for b in rec.batches for f in b]
    # Every 5th frame of 10 fps: only reference frames are decoded, each target served within 3 frames.
    assert len(frames) == 8 and all(0 <= f[1] - i * 0.5 <= 0.3 + 1e-6 for i, f in enumerate(frames))
    assert [f[0] for f in frames] == [round(f[1] * 10) for f in frames]
    assert max(len(b) for b in rec.batches) == 3
    assert rec.fps == 2 and rec.started == 1
    assert case.stages["recorder"].summary == {"frames": 8}
    assert case.stages["consumer"].summary == {"seen": 3}
    assert case.video.fps == 10 and case.sampling.frames_analysed == 8
    assert case.sampling.analysed_fps == 2 and case.sampling.frame_size == (64, 48)
    loaded = CaseResult.load(tmp_path / "case")
    assert loaded == case and loaded.schema_version == CASE_SCHEMA_VERSION
    assert (loaded.path / "recorder.json").exists()


def test_resize_and_all_frames(clip, tmp_path):
    rec = Recorder()
    run_pipeline(clip, tmp_path / "case", [rec], sample_fps=None, resize=(32, 24))
    frames = [f for b in rec.batches for f in b]
    assert len(frames) == 40 and frames[0][2] == (24, 32, 3)
    assert rec.fps == 10


def test_progress_reports_frames_and_stages(clip, tmp_path):
    seen = []
    run_pipeline(clip, tmp_path / "case", [Recorder()], sample_fps=1, progress=seen.append)
    frames = [p for p in seen if p.stage == "frames"]
    assert frames[-1].done == frames[-1].total == 4
    assert seen[-1].stage == "recorder"


def test_failed_stage_leaves_no_case_and_keeps_the_old_one(clip, tmp_path):
    out = tmp_path / "case"
    run_pipeline(clip, out, [Recorder()], sample_fps=1)
    before = (out / CASE_JSON).read_text()
    with pytest.raises(AnalysisError, match="stage 'exploding' failed: model file unreadable"):
        run_pipeline(clip, out, [Recorder(), Exploding()], sample_fps=1)
    assert (out / CASE_JSON).read_text() == before
    assert not (tmp_path / "case.partial").exists()


def test_bad_video_fails_before_any_stage_runs(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    rec = Recorder()
    with pytest.raises(ValueError, match="notes.mp4"):
        run_pipeline(bad, tmp_path / "case", [rec])
    assert rec.resets == 0 and not (tmp_path / "case").exists()


def test_missing_case_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CaseResultError, match="case.json missing"):
        CaseResult.load(tmp_path)


# -- the output folder: only what SurgLens wrote is ever replaced (issue 13) --------------------------
def test_a_folder_of_user_files_is_refused_and_left_untouched(clip, tmp_path):
    desk = tmp_path / "Desktop"
    (desk / "photos").mkdir(parents=True)
    (desk / "thesis.docx").write_bytes(b"years of work")
    (desk / "photos" / "a.jpg").write_bytes(b"jpeg")
    rec = Recorder()
    with pytest.raises(OutputFolderError, match=r"'.*Desktop' is not empty and is not a previous SurgLens case.*nothing was deleted"):
        run_pipeline(clip, desk, [rec], sample_fps=1)
    assert (desk / "thesis.docx").read_bytes() == b"years of work" and (desk / "photos" / "a.jpg").exists()
    assert rec.resets == 0 and not (tmp_path / "Desktop.partial").exists()


def test_a_json_file_named_case_json_that_we_did_not_write_is_not_a_case(clip, tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "case.json").write_text('{"patient": "x"}')
    with pytest.raises(OutputFolderError, match="not a previous SurgLens case"):
        run_pipeline(clip, out, [Recorder()], sample_fps=1)
    assert (out / "case.json").read_text() == '{"patient": "x"}'


def test_a_users_folder_named_like_the_temporary_one_is_refused(clip, tmp_path):
    partial = tmp_path / "case.partial"
    partial.mkdir()
    (partial / "mine.txt").write_text("keep")
    with pytest.raises(OutputFolderError, match=r"case\.partial' is not empty and is not one SurgLens left behind"):
        run_pipeline(clip, tmp_path / "case", [Recorder()], sample_fps=1)
    assert (partial / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_file_or_link_as_output_is_refused(clip, tmp_path, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("data")
    else:
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        run_pipeline(clip, out, [Recorder()], sample_fps=1)
    assert out.exists()


def test_empty_folder_previous_case_and_left_over_partial_are_fine(clip, tmp_path):
    out = tmp_path / "case"
    out.mkdir()
    run_pipeline(clip, out, [Recorder()], sample_fps=1)  # empty
    (out / "recorder.json").write_text("old")
    run_pipeline(clip, out, [Recorder()], sample_fps=2)  # a previous case is replaced
    assert json.loads((out / CASE_JSON).read_text())["sampling"]["sample_fps"] == 2
    assert (out / "recorder.json").read_text() != "old" and not (out / PARTIAL_MARKER).exists()
    left = tmp_path / "case.partial"  # what a killed analysis leaves: marked as ours
    left.mkdir()
    (left / PARTIAL_MARKER).write_text("")
    (left / "detections.parquet").write_bytes(b"half")
    run_pipeline(clip, out, [Recorder()], sample_fps=1)
    assert not left.exists()


def test_the_temporary_folder_is_marked_while_stages_run(clip, tmp_path):
    seen = []

    class Look(Stage):
        name = "look"

        def finish(self, ctx):
            seen.append((ctx.case.path / PARTIAL_MARKER).is_file())
            return {}

    run_pipeline(clip, tmp_path / "case", [Look()], sample_fps=1)
    assert seen == [True]
