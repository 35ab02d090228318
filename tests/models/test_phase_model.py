"""The phase model on synthetic detector-like features: fit, predict (online/offline), save/load."""
import numpy as np
import pytest

from models.phase.model import LabelledFeatures, PhaseModel, PhaseModelConfig, expected_durations
from models.phase.timeline import PhaseProbabilities, Segment
from models.taxonomy import load_taxonomy

NAMES = load_taxonomy().phase_names
N_POOLED, N_TOOLS = 12, 7
ENCODER = {"classes": [f"tool{i}" for i in range(N_TOOLS)], "detector_sha256": "ab" * 32, "presence_conf": 0.25}
# Which tool shows up in which phase (a caricature of the real usage).
PHASE_TOOL = [0, 2, 4, 2, 6, 5, 0]


def synthetic_video(name: str, seed: int, durations=(40, 200, 60, 160, 40, 60, 40), sparse: bool = True) -> LabelledFeatures:
    rng = np.random.default_rng(seed)
    phase = np.repeat(np.arange(7), durations)
    times = np.arange(len(phase), dtype=np.float64)
    presence = np.where(rng.random((len(phase), N_TOOLS)) < 0.08, 0.5, 0.0)
    seen = rng.random(len(phase)) < 0.7
    presence[np.flatnonzero(seen), np.asarray(PHASE_TOOL)[phase[seen]]] = 0.9
    pooled = rng.normal(size=(len(phase), N_POOLED)) + phase[:, None] * 0.3
    features = np.concatenate([pooled, presence], axis=1).astype(np.float32)
    labelled = np.sort(rng.choice(len(phase), len(phase) // 3, replace=False)) if sparse else np.arange(len(phase))
    return LabelledFeatures(name, times, features, times[labelled], phase[labelled])


@pytest.fixture(scope="module")
def videos():
    return [synthetic_video(f"V{i}", i, durations=(40 + 5 * i, 200 - 20 * i, 60, 160 + 10 * i, 40, 60, 40)) for i in range(3)]


@pytest.fixture(scope="module")
def model(videos):
    return PhaseModel.fit(videos[:2], NAMES, PhaseModelConfig(), ENCODER)


def _accuracy(probs: PhaseProbabilities, video: LabelledFeatures) -> float:
    return float((probs.phase_id[video.label_times.astype(int)] == video.label_phase).mean())


def test_offline_whole_operation_recovers_the_timeline_in_order(model, videos):
    test = videos[2]
    probs = model.predict(test.times, test.features, test.n_seconds, mode="offline", full_procedure=True)
    assert len(probs) == test.n_seconds and probs.mode == "offline"
    np.testing.assert_allclose(probs.probs.sum(axis=1), 1.0, atol=1e-5)
    assert _accuracy(probs, test) > 0.9
    assert [s.label for s in probs.segments()] == list(NAMES)  # one segment per phase, in surgical order


def test_online_and_clip_modes(model, videos):
    test = videos[2]
    online = model.predict(test.times, test.features, mode="online")
    assert online.mode == "online" and _accuracy(online, test) > 0.6
    # A clip cut from the middle of Calot triangle dissection, times restarting at 0.
    clip = slice(100, 132)
    probs = model.predict(test.times[clip] - 100, test.features[clip], mode="offline", full_procedure=False)
    assert len(probs) == 32
    assert (probs.phase_id == NAMES.index("CalotTriangleDissection")).mean() > 0.8


def test_online_recognizer_matches_batch_filter(model, videos):
    test = videos[2]
    batch = model.predict(test.times[:50], test.features[:50], mode="online")
    recognizer = model.online()
    rows = [recognizer(int(t), f[None]) for t, f in zip(test.times[:50], test.features[:50])]
    np.testing.assert_allclose(rows, batch.probs, atol=1e-5)
    with pytest.raises(ValueError, match="seconds must increase: got 3 after 49"):
        recognizer(3, test.features[:1])
    recognizer.reset()
    recognizer(3, test.features[:1])


def test_frames_are_aggregated_per_second(model, videos):
    test = videos[2]
    # Two frames per second (the second one a copy) give the same evidence as one.
    times = np.repeat(test.times[:20], 2) + np.tile([0.0, 0.5], 20)
    feats = np.repeat(test.features[:20], 2, axis=0)
    np.testing.assert_allclose(model.emissions(times, feats, 20), model.emissions(test.times[:20], test.features[:20], 20))
    ev = model.emissions(np.array([0.2, 3.9]), test.features[:2], 5)
    assert np.isnan(ev[[1, 2, 4]]).all() and np.isfinite(ev[[0, 3]]).all()


def test_save_load_round_trip(model, videos, tmp_path):
    path = model.save(tmp_path / "phase" / "weights.pt")
    again = PhaseModel.load(path)
    test = videos[2]
    a = model.predict(test.times, test.features, full_procedure=True)
    b = again.predict(test.times, test.features, full_procedure=True)
    np.testing.assert_allclose(a.probs, b.probs)
    assert again.encoder["detector_sha256"] == ENCODER["detector_sha256"] and again.config == model.config


def test_linear_head_trains_and_round_trips(videos, tmp_path):
    config = PhaseModelConfig(head="linear", inputs="all", pca_dims=8, epochs=50)
    model = PhaseModel.fit(videos[:2], NAMES, config, ENCODER)
    test = videos[2]
    assert _accuracy(model.predict(test.times, test.features, full_procedure=True), test) > 0.8
    again = PhaseModel.load(model.save(tmp_path / "w.pt"))
    np.testing.assert_allclose(again.frame_log_proba(test.features[:5]), model.frame_log_proba(test.features[:5]), atol=1e-6)


def test_expected_durations_and_frame_labels():
    v = LabelledFeatures("x", np.array([0.0, 1.0, 2.5, 10.0, 11.0]), np.zeros((5, 1)),
                         np.array([0.0, 1.0, 2.0, 10.0, 11.0]), np.array([0, 0, 0, 1, 1]))
    # Boundary halfway between the last P1 label (2 s) and the first P2 label (10 s): 6 s each.
    np.testing.assert_allclose(expected_durations([v], 3, floor_s=1.0)[:2], [6.0, 6.0])
    assert expected_durations([v], 3, floor_s=1.0)[2] == pytest.approx(6.0)  # unseen phase: the mean
    # Frame at 2.5 s is 0.5 s after the 2 s label: outside the tolerance, so unlabelled.
    assert v.frame_labels().tolist() == [0, 0, -1, 1, 1]
    assert v.n_seconds == 12


def test_timeline_outputs():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]], dtype=np.float32)
    p = PhaseProbabilities(np.arange(4), probs, np.array([0, 0, 1, 1]), ("A", "B"))
    assert p.segments() == [Segment(0.0, 2.0, "A", 0.85), Segment(2.0, 4.0, "B", 0.65)]
    assert p.durations_s() == {"A": 2.0, "B": 2.0}
    assert p.transitions() == [{"t_s": 2.0, "from": "A", "to": "B"}]
    table = p.to_frame()
    assert list(table.columns) == ["second", "A", "B", "phase_id"] and table["phase_id"].tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"4 seconds need \(4, 2\) probabilities"):
        PhaseProbabilities(np.arange(4), probs[:3], np.zeros(4, int), ("A", "B"))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, v: m.predict(v.times, v.features, mode="live"), "mode must be 'offline' or 'online'"),
        (lambda m, v: m.frame_log_proba(v.features[:, :5]), r"features must be \(N, 19\)"),
        (lambda m, v: m.emissions(v.times[:3], v.features[:4], 10), "3 times for 4 feature rows"),
        (lambda m, v: PhaseModel.fit([v], NAMES, PhaseModelConfig(head="forest"), ENCODER), "head must be"),
        (lambda m, v: PhaseModel.fit([v], NAMES, PhaseModelConfig(), {}), "needs the encoder's class list"),
        (lambda m, v: PhaseModel.fit([v], NAMES, PhaseModelConfig(head="linear", inputs="colour"), ENCODER), "inputs must be"),
    ],
)
def test_bad_calls(model, videos, call, match):
    with pytest.raises(ValueError, match=match):
        call(model, videos[0])


def test_fit_needs_two_phases():
    v = LabelledFeatures("x", np.arange(3.0), np.ones((3, 8)), np.arange(3.0), np.zeros(3, int))
    with pytest.raises(ValueError, match="at least two phases"):
        PhaseModel.fit([v], NAMES, PhaseModelConfig(), ENCODER)


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a SurgLens phase model"):
        PhaseModel.load(bad)
