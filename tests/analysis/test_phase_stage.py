"""PhaseStage in the pipeline: files, in-memory outputs, modes, and a real clip's timeline."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import Stage, run_pipeline
from analysis.results import PHASE_CHOLEC80, PHASE_PROBS, PHASE_SEGMENTS
from analysis.stages.phase import PhaseStage
from models.datasets.cholec80 import read_cholec80_phases
from models.registry import MODELS_DIR
from models.taxonomy import load_taxonomy
from video.writer import VideoWriter

pytestmark = pytest.mark.skipif(
    not (MODELS_DIR / "phase").is_dir() or not (MODELS_DIR / "detector").is_dir(),
    reason="needs the shipped phase model and detector in assets/models",
)
NAMES = load_taxonomy().phase_names


class PhaseReader(Stage):
    """A later stage (like motion) reading the phase stage's in-memory results."""

    name = "reader"

    def finish(self, ctx):
        self.seen = ctx.outputs["phase"]
        return {}


@pytest.fixture(scope="module")
def detector():
    from models.detector import Detector

    return Detector()


@pytest.fixture
def clip(tmp_path):
    """5.5 s at 4 fps, 96x64: a dark then a bright scene."""
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=4, size=(96, 64)) as w:
        for i in range(22):
            w.write(np.full((64, 96, 3), 40 if i < 11 else 200, np.uint8))
    return path


def test_stage_writes_probabilities_segments_and_cholec80(clip, tmp_path, detector):
    reader = PhaseReader()
    case = run_pipeline(clip, tmp_path / "case", [PhaseStage(detector=detector), reader], sample_fps=2)
    out = tmp_path / "case"
    probs = pd.read_parquet(out / PHASE_PROBS)
    assert list(probs.columns) == ["second", *NAMES, "phase_id"]
    assert probs["second"].tolist() == list(range(6))  # 5.5 s -> seconds 0..5, two frames per second averaged
    np.testing.assert_allclose(probs[list(NAMES)].sum(axis=1), 1.0, atol=1e-5)
    segments = json.loads((out / PHASE_SEGMENTS).read_text())
    assert segments[0]["start_s"] == 0 and segments[-1]["end_s"] == 6
    assert all(set(s) == {"start_s", "end_s", "label", "confidence"} and s["label"] in NAMES for s in segments)
    assert all(a["end_s"] == b["start_s"] for a, b in zip(segments, segments[1:]))
    cholec = read_cholec80_phases(out / PHASE_CHOLEC80, fps=4)
    assert len(cholec) == 22  # one line per video frame, at the video's own fps
    assert cholec.phase_id.tolist() == np.repeat(probs["phase_id"].to_numpy(), 4)[:22].tolist()
    summary = case.summary("phase")
    assert summary["model"]["full_procedure"] is False and summary["model"]["mode"] == "offline"
    assert summary["model"]["detector_matches"] is True
    assert summary["seconds"] == 6 and summary["frames"] == 11 and summary["segments"] == len(segments)
    assert sum(summary["durations_s"].values()) == 6
    assert len(summary["transitions"]) == len(segments) - 1
    assert [s.to_dict() for s in reader.seen.segments] == segments
    assert reader.seen.probabilities.probs.shape == (6, 7) and reader.seen.probabilities.phase_names == tuple(NAMES)


def test_online_mode_and_forced_whole_operation(clip, tmp_path, detector):
    case = run_pipeline(clip, tmp_path / "case", [PhaseStage(detector=detector, mode="online", full_procedure=True)], sample_fps=1)
    summary = case.summary("phase")
    assert summary["model"]["mode"] == "online" and summary["model"]["full_procedure"] is True
    probs = pd.read_parquet(tmp_path / "case" / PHASE_PROBS)
    assert probs["phase_id"].iloc[0] == 0  # a whole operation starts in Preparation


@pytest.mark.parametrize(
    "kwargs, match",
    [({"mode": "live"}, "phase mode must be 'offline' or 'online'")],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhaseStage(**kwargs)


def test_shared_detector_must_keep_low_confidence_boxes(clip, tmp_path):
    from models.detector import Detector

    stage = PhaseStage(detector=Detector(conf=0.5))
    with pytest.raises(ValueError, match="above the phase model's presence threshold 0.25"):
        run_pipeline(clip, tmp_path / "case", [stage], sample_fps=1)


def test_real_calot_clip_is_not_preparation_throughout(cholec_clips, tmp_path, detector):
    """group 57 = hook, dissect, cystic artery: Calot triangle dissection, never Preparation all along."""
    (clip,) = [c for c in cholec_clips if "group_57" in c.name]
    case = run_pipeline(clip, tmp_path / "case", [PhaseStage(detector=detector)], sample_fps=1)
    probs = pd.read_parquet(tmp_path / "case" / PHASE_PROBS)
    assert len(probs) == 32
    labels = probs["phase_id"].map(dict(enumerate(NAMES)))
    assert (labels != "Preparation").mean() > 0.5, labels.value_counts().to_dict()
    assert case.summary("phase")["model"]["full_procedure"] is False
