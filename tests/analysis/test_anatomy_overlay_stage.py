"""The anatomy stage in a pipeline with a fake model: its label maps are drawn in the annotated video."""
import numpy as np
import pytest

from analysis.analyze import AnalysisConfig, analyze_video
from analysis.moments import MOMENT_KINDS, key_moments
from analysis.pipeline import run_pipeline
from analysis.results import ANNOTATED
from analysis.stages.anatomy import AnatomyStage
from analysis.stages.annotate import AnnotateStage
from analysis.stages.detection import DetectionStage
from models.anatomy.data import CLASSES
from models.anatomy.model import AnatomyResult
from models.registry import MODELS_DIR
from tests.conftest import shared_path
from tests.analysis.test_detection_stage import FakeDetector
from video import FrameReader


class FakeAnatomyModel:
    """Labels the left half of every frame gallbladder; C1..C3 fixed."""

    classes = list(CLASSES)

    class entry:
        name, weights = "fake-anatomy", "fake.pt"

    def __call__(self, frames, indices=None):
        out = []
        for frame in frames:
            labels = np.zeros(frame.shape[:2], np.uint8)
            labels[:, : frame.shape[1] // 2] = CLASSES.index("gallbladder")
            out.append(AnatomyResult(labels, {c: 0.5 if c == "gallbladder" else 0.0 for c in CLASSES[1:]},
                                     {"C1": 0.9, "C2": 0.8, "C3": 0.7}))
        return out


def test_anatomy_masks_in_the_annotated_video(tiny_video, tmp_path):
    anatomy = AnatomyStage(every_s=1.0)
    anatomy._model = FakeAnatomyModel()
    detection = DetectionStage(detector=FakeDetector())
    case = run_pipeline(tiny_video, tmp_path / "case", [detection, anatomy, AnnotateStage(detection, anatomy=anatomy)],
                        sample_fps=5.0)
    assert case.summary("annotate")["anatomy_overlay"] is True
    table = case.anatomy()
    assert table["second"].tolist() == [0, 1, 2]
    assert table["cvs_all"].iloc[0] == pytest.approx(0.9 * 0.8 * 0.7, abs=1e-6)
    plain = run_pipeline(tiny_video, tmp_path / "plain", [detection, AnnotateStage(detection)], sample_fps=5.0)
    assert plain.summary("annotate")["anatomy_overlay"] is False
    drawn = [f.rgb.astype(int) for f in FrameReader(tmp_path / "case" / ANNOTATED, sample_fps=None)]
    bare = [f.rgb.astype(int) for f in FrameReader(tmp_path / "plain" / ANNOTATED, sample_fps=None)]
    assert len(drawn) == len(bare) == case.sampling.frames_analysed
    w = drawn[0].shape[1]
    # Every frame (the map is held between analysed seconds): the left half tinted gold, more red than blue.
    for a, b in zip(drawn, bare):
        shift = (a[:, : w // 4] - b[:, : w // 4]).mean(axis=(0, 1))
        assert shift[0] - shift[2] > 20


CALOT_CLIP = "0.975__group_57__VID22_372_and_VID26_693_b.mp4"  # hook dissecting the cystic artery, 32 s


@pytest.mark.skipif(not (MODELS_DIR / "anatomy" / "weights.pt").is_file(), reason="needs the shipped anatomy model")
def test_default_analysis_of_a_real_calot_clip_has_anatomy(tmp_path):
    clip = shared_path("cholec-clips", CALOT_CLIP)
    case = analyze_video(clip, tmp_path / "case", AnalysisConfig(annotate=True))  # the video too, at 1 fps
    stages = list(case.stages)
    assert stages.index("anatomy") < stages.index("phase")
    summary = case.summary("anatomy")
    assert summary["every_s"] == 1.0 and summary["frames"] == 32  # auto: every second of a clip under 10 minutes
    assert "not for clinical use" in summary["note"]
    assert case.summary("annotate")["anatomy_overlay"] is True
    table = case.anatomy()
    assert table[["cvs_c1", "cvs_c2", "cvs_c3"]].apply(lambda c: c.between(0, 1)).all().all()
    kinds = {m.kind for m in key_moments(tmp_path / "case")}
    assert kinds <= set(MOMENT_KINDS)
