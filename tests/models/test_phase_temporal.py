"""The temporal phase model: evidence, detector noise, label sequences, fitting, calibration, persistence."""
import json

import numpy as np
import pytest

from models.datasets.voc import DatasetError
from models.phase.evidence import ToolNoise, hold_every, per_second
from models.phase.sequences import LabelSequence, is_label_root, read_label_sequences
from models.phase.temporal import TemporalConfig, TemporalPhaseModel, fit_temperature, timing_features
from models.phase.temporal_train import clip_source
from models.registry import MODELS_DIR
from models.taxonomy import load_taxonomy

NAMES = load_taxonomy().phase_names
TOOLS = load_taxonomy().tool_names
TINY = TemporalConfig(channels=8, layers=4, stages=2, epochs=3, clip_epochs=2, batch=4, clips_per_video=4,
                      calibration_videos=2, clip_max_s=60)


def test_per_second_means_and_holds():
    times = np.array([0.0, 0.5, 3.2])
    values = np.array([[1.0, 0.0], [0.0, 0.0], [0.5, 1.0]], np.float32)
    out = per_second(times, values, 5)
    np.testing.assert_allclose(out, [[0.5, 0], [0.5, 0], [0.5, 0], [0.5, 1], [0.5, 1]])
    # a first frame after second 0 is held backwards too
    np.testing.assert_allclose(per_second(np.array([2.0]), np.array([[1.0]]), 3), [[1], [1], [1]])


@pytest.mark.parametrize("times, values, n, match", [
    (np.array([0.0]), np.zeros(3), 2, "must be \\(N, C\\)"),
    (np.array([0.0]), np.zeros((1, 2)), 0, "n_seconds must be positive"),
    (np.zeros(0), np.zeros((0, 2)), 2, "no frames"),
])
def test_per_second_bad_input(times, values, n, match):
    with pytest.raises(ValueError, match=match):
        per_second(times, values, n)


def test_hold_every_keeps_one_row_in_step():
    x = np.arange(7)[:, None]
    assert hold_every(x, 3, 1).ravel().tolist() == [1, 1, 1, 1, 4, 4, 4]  # rows 1, 4 kept; row 0 takes the first
    assert hold_every(x, 3).ravel().tolist() == [0, 0, 0, 3, 3, 3, 6]
    assert hold_every(x, 1).ravel().tolist() == list(range(7))


def _noise() -> ToolNoise:
    rng = np.random.default_rng(0)
    truth = rng.random((400, len(TOOLS))) < 0.3
    conf = np.where(truth, np.where(rng.random(truth.shape) < 0.2, 0.0, 0.8), np.where(rng.random(truth.shape) < 0.05, 0.3, 0.0))
    return ToolNoise.measure(conf.astype(np.float32), truth, TOOLS, ["synthetic"])


def test_noise_rates_and_sampling_follow_the_measurement():
    noise = _noise()
    rates = noise.rates()
    assert set(rates) == set(TOOLS)
    assert all(0.1 < r["miss_rate"] < 0.3 and r["false_alarm_rate"] < 0.1 for r in rates.values())
    presence = np.zeros((5000, len(TOOLS)), bool)
    presence[:, 0] = True
    sample = noise.sample(presence, np.random.default_rng(1), rho=0.8)
    assert 0.1 < (sample[:, 0] == 0).mean() < 0.3  # misses at the measured rate, also when correlated
    assert (sample[:, 1] > 0).mean() < 0.1
    np.testing.assert_allclose(np.unique(sample[:, 0]), [0.0, 0.8], atol=1e-6)
    back = ToolNoise.from_state(noise.to_state())
    np.testing.assert_array_equal(back.present[0], noise.present[0])


def test_noise_needs_negative_frames():
    with pytest.raises(ValueError, match="no frame without 'Grasper'"):
        ToolNoise.measure(np.ones((3, len(TOOLS)), np.float32), np.ones((3, len(TOOLS)), bool), TOOLS)


def _write_labels(root, number, phases, tools):
    (root / "phase_annotations").mkdir(parents=True, exist_ok=True)
    (root / "tool_annotations").mkdir(parents=True, exist_ok=True)
    lines = ["Frame\tPhase"] + [f"{f}\t{NAMES[phases[f // 25]]}" for f in range(25 * len(phases))]
    (root / "phase_annotations" / f"video{number:02d}-phase.txt").write_text("\n".join(lines) + "\n")
    lines = ["Frame\t" + "\t".join(TOOLS)] + [f"{25 * s}\t" + "\t".join(str(int(v)) for v in tools[s]) for s in range(len(tools))]
    (root / "tool_annotations" / f"video{number:02d}-tool.txt").write_text("\n".join(lines) + "\n")


def _synthetic_operation(rng, length=None):
    """Phases in workflow order with the tools that mark them (grasper+hook dissect, clipper clips, bag...)."""
    lengths = rng.integers(15, 40, size=7) if length is None else np.full(7, length)
    phase = np.repeat(np.arange(7), lengths)
    tools = np.zeros((len(phase), len(TOOLS)), bool)
    marks = {0: [0], 1: [0, 2], 2: [4, 3], 3: [2], 4: [6], 5: [5, 1], 6: [0, 6]}
    for p, cols in marks.items():
        tools[np.ix_(phase == p, cols)] = True
    return phase, tools


def test_read_label_sequences(tmp_path):
    rng = np.random.default_rng(0)
    for n in (1, 2, 41):
        _write_labels(tmp_path, n, *_synthetic_operation(rng))
    (tmp_path / "tool_annotations" / "video03-tool.txt").write_text("Frame\t" + "\t".join(TOOLS) + "\n")  # no phase file
    assert is_label_root(tmp_path)
    seqs = read_label_sequences(tmp_path, exclude=[2])
    assert [s.name for s in seqs] == ["video01", "video41"] and [s.number for s in seqs] == [1, 41]
    assert seqs[0].phase[0] == 0 and seqs[0].phase[-1] == 6 and seqs[0].tools.shape[1] == len(TOOLS)


def test_read_label_sequences_refuses_other_folders(tmp_path):
    assert not is_label_root(tmp_path)
    with pytest.raises(DatasetError, match="not a cholec80-labels folder"):
        read_label_sequences(tmp_path)


def test_timing_features():
    np.testing.assert_allclose(timing_features("offline", 3), [[0, 3 / 3600], [0.5, 3 / 3600], [1, 3 / 3600]], rtol=1e-6)
    assert timing_features("online", 2).shape == (2, 1) and timing_features("clip", 4).shape == (4, 0)
    with pytest.raises(ValueError, match="variant must be one of"):
        timing_features("later", 2)


def test_fit_temperature_finds_a_sharper_or_flatter_scale():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    logits = np.eye(3)[y] * 2.0 + rng.normal(0, 1.0, (2000, 3))
    t_good = fit_temperature([logits], [y])
    t_over = fit_temperature([logits * 5], [y])
    assert t_over > t_good * 3  # overconfident logits need a larger temperature


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    seqs = [LabelSequence(f"video{i:02d}", *_synthetic_operation(rng)) for i in range(10)]
    return TemporalPhaseModel.fit(seqs, _noise(), NAMES, TINY)


def test_fit_predict_and_round_trip(model, tmp_path):
    rng = np.random.default_rng(5)
    phase, tools = _synthetic_operation(rng)
    evidence = model.noise.sample(tools, rng)
    for variant in ("offline", "online", "clip"):
        p = model.probabilities(evidence, variant)
        assert p.shape == (len(phase), 7)
        np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)
    probs = model.predict(evidence)
    assert probs.mode == "offline" and len(probs) == len(phase)
    assert set(model.training) == {"fitting", "calibration", "operation_rule"} and len(model.training["calibration"]) == 2
    assert 0 < model.edge_threshold < 1 and model.training["operation_rule"]["whole"] == 4
    path = model.save(tmp_path / "weights.pt")
    back = TemporalPhaseModel.load(path)
    np.testing.assert_allclose(back.probabilities(evidence, "offline"), model.probabilities(evidence, "offline"), atol=1e-6)
    assert back.temperatures == model.temperatures


def test_numpy_networks_give_the_torch_probabilities(model, tmp_path):
    """A process without torch runs the nets in numpy (NumpyTCN) from a plain copy: the same numbers."""
    from models._state import plain_state
    from models.phase.temporal import NumpyTCN

    path = model.save(tmp_path / "weights.pt")
    plain = TemporalPhaseModel.from_state(plain_state(path, "0" * 64))
    assert all(isinstance(n, NumpyTCN) for n in plain.nets.values()) and set(plain.nets) == set(model.nets)
    evidence = model.noise.sample(_synthetic_operation(np.random.default_rng(9))[1], np.random.default_rng(9))
    for variant in model.nets:  # causal ("online") and centred convolutions
        np.testing.assert_allclose(plain.probabilities(evidence, variant), model.probabilities(evidence, variant), atol=1e-5)
    back = TemporalPhaseModel.from_state(plain.state())  # saving a numpy model writes torch tensors again
    np.testing.assert_allclose(back.probabilities(evidence, "clip"), model.probabilities(evidence, "clip"), atol=1e-6)


@pytest.mark.skipif(not (MODELS_DIR / "phase" / "weights.pt").is_file(), reason="needs the shipped phase model")
def test_the_shipped_model_loads_without_torch(tmp_path):
    import subprocess
    import sys
    import textwrap

    from tests.conftest import REPO

    script = textwrap.dedent("""
        import sys
        import numpy as np
        from models.phase import load_phase_model
        m = load_phase_model()
        ev = np.random.default_rng(0).random((900, len(m.tool_names))).astype(np.float32)
        np.save(sys.argv[1], np.stack([m.probabilities(ev, v) for v in ("offline", "online", "clip")]))
        assert "torch" not in sys.modules
        print("ok")
        """)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p.npy")], cwd=REPO, capture_output=True,
                         text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "SURGLENS_DATA_DIR": str(tmp_path / "d")})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    from models.phase import load_phase_model

    m = load_phase_model()  # torch is loaded here: the torch networks
    ev = np.random.default_rng(0).random((900, len(m.tool_names))).astype(np.float32)
    expected = np.stack([m.probabilities(ev, v) for v in ("offline", "online", "clip")])
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5)


def test_short_videos_are_clips(model):
    evidence = np.zeros((120, len(TOOLS)), np.float32)
    assert model.choose_variant(evidence) == "clip"


def test_online_recognizer_matches_the_causal_network(model):
    rng = np.random.default_rng(3)
    _, tools = _synthetic_operation(rng)
    evidence = model.noise.sample(tools, rng)
    batch = model.probabilities(evidence, "online")
    rec = model.online()
    stepped = np.stack([rec(e) for e in evidence])
    np.testing.assert_allclose(stepped, batch, atol=1e-5)  # causal: the future never changes the past
    rec.reset()
    np.testing.assert_allclose(rec(evidence[0]), batch[0], atol=1e-5)


@pytest.mark.parametrize("evidence, variant, match", [
    (np.zeros((5, 3)), "offline", "evidence must be"),
    (np.zeros((5, len(TOOLS))), "sideways", "variant must be one of"),
])
def test_bad_predict_calls(model, evidence, variant, match):
    with pytest.raises(ValueError, match=match):
        model.probabilities(evidence, variant)


def test_load_rejects_other_files(tmp_path):
    import torch

    torch.save({"format": 1}, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="not a SurgLens temporal phase model"):
        TemporalPhaseModel.load(tmp_path / "weights.pt")


def test_clip_source_from_the_file_name():
    assert clip_source("0.975__group_57__VID22_372_and_VID26_693_b.mp4") == (26, 693)
    assert clip_source("x/0.975__group_22__VID05_1858_and_VID08_1331_a.mp4") == (5, 1858)
    with pytest.raises(ValueError, match="does not name its source"):
        clip_source("clip.mp4")


def _voc(root, n=6):
    """A tiny m2cai16-like VOC folder: grey frames, one Grasper box each (for the noise measurement)."""
    from PIL import Image

    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    ids = []
    for i in range(n):
        name = f"v01_{i:06d}"
        ids.append(name)
        Image.new("RGB", (96, 64), (40 * i % 255, 90, 120)).save(root / "JPEGImages" / f"{name}.jpg")
        tool = "Grasper" if i % 2 else "Hook"  # every tool must also be absent somewhere
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>96</width><height>64</height></size>"
            f"<object><name>{tool}</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>40</ymax>"
            "</bndbox></object></annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.mark.slow
@pytest.mark.skipif(not (MODELS_DIR / "detector").is_dir(), reason="needs the shipped detector")
def test_train_phase_cli_on_labels_writes_weights_card_and_metadata(tmp_path, capsys):
    from app.cli import main
    from models.phase import TemporalPhaseModel, load_phase_model

    labels = tmp_path / "cholec80-labels"
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 5, 6, 41, 42, 43, 44):
        _write_labels(labels, n, *_synthetic_operation(rng))
    voc = _voc(tmp_path / "m2cai")
    out = tmp_path / "model"
    assert main(["train-phase", "--data", str(labels), "--m2cai", str(voc), "--out", str(out), "--epochs", "2",
                 "--cache", ""]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "label_level_41_80" in printed["evaluation"]
    model = load_phase_model(out)
    assert isinstance(model, TemporalPhaseModel) and set(model.nets) == {"offline", "online", "clip"}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["default_variant"] == "offline" and meta["kind"] == "phase"
    card = (out / "MODEL_CARD.md").read_text()
    assert "Label level, official split" in card and "TeCNO 88.6 %" in card
    assert set(meta["detector_noise"]) == set(TOOLS)
