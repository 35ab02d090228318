"""The annotated video: at the analysed rate, with a fast x264 preset when many frames are analysed."""
import pytest

from analysis.pipeline import run_pipeline
from analysis.results import ANNOTATED
from analysis.stages.annotate import AnnotateStage
from analysis.stages.detection import DetectionStage
from tests.analysis.test_detection_stage import FakeDetector
from video import probe


@pytest.mark.parametrize("sample_fps, preset, fps", [(2.0, "veryfast", 2.0), (None, "ultrafast", 25.0)])
def test_annotated_video_at_the_analysed_rate_with_the_auto_preset(tiny_video, tmp_path, sample_fps, preset, fps):
    detection = DetectionStage(detector=FakeDetector())
    case = run_pipeline(tiny_video, tmp_path / "case", [detection, AnnotateStage(detection)], sample_fps=sample_fps)
    summary = case.summary("annotate")
    assert summary["preset"] == preset and summary["fps"] == fps
    assert set(summary["timings"]) == {"draw_s", "encode_s"}
    info = probe(tmp_path / "case" / ANNOTATED, content_hash=False)
    assert info.fps == pytest.approx(fps) and info.frame_count == case.sampling.frames_analysed


def test_bad_preset_is_refused():
    with pytest.raises(ValueError, match="preset must be 'auto' or one of .*, got 'placebo'"):
        AnnotateStage(DetectionStage(detector=FakeDetector()), preset="placebo")

