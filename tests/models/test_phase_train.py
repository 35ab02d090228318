"""Phase data loading, feature caching, `surglens train-phase` / `eval-phase`, and the shipped model."""
import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from models.datasets.voc import DatasetError
from models.phase.data import read_phase_dataset
from models.phase.train import load_features
from models.registry import MODELS_DIR, resolve_model
from models.taxonomy import load_taxonomy
from tests.conftest import shared_path
from video import file_sha256
from video.writer import VideoWriter

NAMES = load_taxonomy().phase_names
needs_detector = pytest.mark.skipif(not (MODELS_DIR / "detector").is_dir(), reason="no shipped detector")


class MeanColour:
    """A stand-in encoder: mean RGB per frame."""

    key = "mean-colour"
    calls = 0

    def __call__(self, frames):
        MeanColour.calls += 1
        return np.stack([f.reshape(-1, 3).mean(axis=0) for f in frames]).astype(np.float32)


def _cholect50_root(root, n_videos=3, frames_per_phase=3):
    """Tiny CholecT50 layout: every phase in order, a grey level per phase, one unlabelled image."""
    (root / "labels").mkdir(parents=True)
    for v in range(n_videos):
        name = f"VID{90 + v}"
        images = root / "videos" / name
        images.mkdir(parents=True)
        annotations = {}
        second = 0
        for phase in range(7):
            for _ in range(frames_per_phase):
                second += 3 + v
                annotations[str(second)] = [[0, -1, 0, -1, -1, -1, -1, 9, 14, 0, -1, -1, -1, -1, phase]]
                Image.new("RGB", (64, 48), (30 * phase, 20, 200 - 25 * phase)).save(images / f"{second:06d}.jpg")
        Image.new("RGB", (64, 48)).save(images / f"{second + 1:06d}.jpg")
        raw = {"video": 90 + v, "fps": 1, "categories": {
            "instrument": {"0": "grasper"},
            "phase": {str(i): n for i, n in enumerate(["preparation", "carlot-triangle-dissection", "clipping-and-cutting",
                                                      "gallbladder-dissection", "gallbladder-packaging",
                                                      "cleaning-and-coagulation", "gallbladder-extraction"])}},
               "annotations": annotations}
        (root / "labels" / f"{name}.json").write_text(json.dumps(raw))
    return root


def test_cholect50_layout_and_feature_cache(tmp_path):
    root = _cholect50_root(tmp_path / "ct50")
    videos = read_phase_dataset(root)
    assert [v.name for v in videos] == ["VID90", "VID91", "VID92"]
    assert len(videos[0].images) == 22 and len(videos[0].labels) == 21
    MeanColour.calls = 0
    first = load_features(videos, MeanColour(), tmp_path / "cache")
    calls = MeanColour.calls
    again = load_features(videos, MeanColour(), tmp_path / "cache")
    assert MeanColour.calls == calls  # second time everything came from the cache
    np.testing.assert_array_equal(first[1].features, again[1].features)
    assert len(list((tmp_path / "cache" / "mean-colour").glob("*.npz"))) == 3
    assert (first[0].frame_labels() >= 0).sum() == 21  # the unlabelled image is input only
    # A frame added to a folder invalidates that video's cache entry.
    Image.new("RGB", (64, 48)).save(root / "videos" / "VID90" / "000500.jpg")
    refreshed = load_features(read_phase_dataset(root, ["VID90"]), MeanColour(), tmp_path / "cache")
    assert MeanColour.calls > calls and len(refreshed[0].times) == 23


def test_cholec80_layout_decodes_the_video_at_its_fps(tmp_path):
    root = tmp_path / "c80"
    (root / "videos").mkdir(parents=True)
    (root / "phase_annotations").mkdir()
    with VideoWriter(root / "videos" / "video01.mp4", fps=5, size=(64, 48)) as w:
        for i in range(40):
            w.write(np.full((48, 64, 3), 10 if i < 20 else 220, np.uint8))
    lines = ["Frame\tPhase"] + [f"{i}\t{'Preparation' if i < 20 else 'CalotTriangleDissection'}" for i in range(40)]
    (root / "phase_annotations" / "video01-phase.txt").write_text("\n".join(lines) + "\n")
    (video,) = read_phase_dataset(root)
    assert video.labels.fps == pytest.approx(5.0)
    (feats,) = load_features([video], MeanColour(), None)
    np.testing.assert_allclose(feats.times, np.arange(8), atol=0.01)  # sampled at 1 fps
    assert feats.frame_labels().tolist() == [0] * 4 + [1] * 4
    with pytest.raises(DatasetError, match=r"videos \['video02'\] not in"):
        read_phase_dataset(root, ["video02"])


def test_unknown_layout(tmp_path):
    with pytest.raises(DatasetError, match="is neither a CholecT50 root"):
        read_phase_dataset(tmp_path)


@needs_detector
def test_train_and_eval_phase_cli(tmp_path, capsys):
    root = _cholect50_root(tmp_path / "ct50")
    out = tmp_path / "model"
    assert main(["train-phase", "--data", str(root), "--out", str(out), "--cache", str(tmp_path / "cache"),
                 "--report", str(tmp_path / "lovo.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["videos"] == ["VID90", "VID91", "VID92"]
    assert set(printed["leave_one_video_out_accuracy"]["offline_full"]) == {"strict", "relaxed"}
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "metadata.json", "weights.pt"]
    entry = resolve_model(out)
    assert entry.kind == "phase" and entry.metadata["phases"] == list(NAMES)
    assert entry.metadata["detector"]["detector_sha256"] == file_sha256(resolve_model("detector").weights)
    lovo = json.loads((tmp_path / "lovo.json").read_text())
    assert lovo["protocol"]["videos"] == ["VID90", "VID91", "VID92"]
    assert lovo["per_video"]["VID91"]["trained_on"] == ["VID90", "VID92"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "Leave-one-video-out evaluation" in card and "surglens train-phase" in card

    report = tmp_path / "eval.json"
    assert main(["eval-phase", "--data", str(root), "--weights", str(out), "--videos", "VID90",
                 "--cache", str(tmp_path / "cache"), "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["protocol"]["videos"] == ["VID90"] and result["protocol"]["relaxed_boundary"]["window_s"] == 10
    scored = result["per_video"]["VID90"]["offline_full"]["strict"]
    assert set(scored["per_phase"]) == set(NAMES) and len(scored["confusion"]["matrix"]) == 7
    assert {"precision", "recall", "jaccard", "f1"} <= set(scored["macro"])


@needs_detector
def test_eval_refuses_features_of_another_detector(tmp_path, capsys):
    root = _cholect50_root(tmp_path / "ct50", n_videos=2)
    out = tmp_path / "model"
    assert main(["train-phase", "--data", str(root), "--out", str(out), "--no-lovo", "--cache", ""]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["evaluation"] is None
    weights = out / "weights.pt"
    import torch

    state = torch.load(weights, weights_only=True)
    state["encoder"]["detector_sha256"] = "0" * 64
    torch.save(state, weights)
    capsys.readouterr()
    assert main(["eval-phase", "--data", str(root), "--weights", str(out), "--cache", ""]) == 2
    assert "trained on detector features with SHA-256 000000000000" in capsys.readouterr().err


@needs_detector
def test_shipped_phase_model_matches_the_shipped_detector():
    """After new detector weights, retrain: the command in assets/models/phase/MODEL_CARD.md"""
    from models.phase import TemporalPhaseModel, load_phase_model
    from models.phase.encoder import DetectorEncoder

    model = load_phase_model()
    assert isinstance(model, TemporalPhaseModel)
    assert model.encoder["detector_sha256"] == DetectorEncoder().identity["detector_sha256"], (
        "assets/models/phase was trained on other detector weights: run the command in its MODEL_CARD.md"
    )
    meta = resolve_model("phase").metadata
    held = meta["evaluation"]["protocol"]["held_out_of_every_fit"]
    assert {68, 70, 73} <= set(held)  # the operations with frames are never fitted on
    assert not {f"video{n:02d}" for n in held} & set(meta["training"]["fitting"] + meta["training"]["calibration"])
    assert meta["default_variant"] in ("offline", "auto")


@needs_detector
def test_shipped_model_on_a_real_video(tmp_path):
    """The shipped model on a real operation it never saw (VID73): the whole chain through eval-phase."""
    from models.phase import load_phase_model
    from models.phase.temporal_train import evaluate_temporal

    root = shared_path("cholect50-val")
    result = evaluate_temporal(load_phase_model(), [root], videos=["VID73"])
    assert result["default_variant"] == "auto" and result["protocol"]["videos"] == ["VID73"]
    assert result["mean_over_videos"]["auto"]["strict"]["accuracy"]["mean"] > 0.75
    assert result["per_video"]["auto"]["VID73"]["chosen"] == "offline"
