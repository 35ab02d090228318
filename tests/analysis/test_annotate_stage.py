"""The annotated video: at the analysed rate, with a fast x264 preset when many frames are analysed."""
import pytest

from analysis.pipeline import run_pipeline
from analysis.results import ANNOTATED
from analysis.analyze import AnalysisConfig, build_stages
from analysis.stages.annotate import ANNOTATE_MIN_FPS, AnnotateStage
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


@pytest.mark.parametrize("sample_fps, written", [(1.0, False), (5.0, True), (None, True)])
def test_nothing_is_encoded_below_min_fps(tiny_video, tmp_path, sample_fps, written):
    detection = DetectionStage(detector=FakeDetector())
    stage = AnnotateStage(detection, min_fps=ANNOTATE_MIN_FPS)
    case = run_pipeline(tiny_video, tmp_path / "case", [detection, stage], sample_fps=sample_fps)
    assert (case.annotated_video is not None) == written
    assert ("skipped" in case.summary("annotate")) == (not written)


def test_the_default_pipeline_annotates_from_five_analysed_fps_unless_asked():
    assert ANNOTATE_MIN_FPS == 5.0
    stages = {False: None, True: None, None: ANNOTATE_MIN_FPS}
    for annotate, min_fps in stages.items():
        built = [s for s in build_stages(AnalysisConfig(annotate=annotate, anatomy=False, phase=False, quality=False,
                                                        detector_weights=None)) if s.name == "annotate"]
        assert (not built) if annotate is False else built[0].min_fps == min_fps


@pytest.mark.parametrize("settings, match", [
    ({"preset": "placebo"}, "preset must be 'auto' or one of .*, got 'placebo'"),
    ({"min_fps": 0}, "min_fps must be positive or None, got 0"),
])
def test_bad_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        AnnotateStage(DetectionStage(detector=FakeDetector()), **settings)

