"""The phase-order HMM: transition structure, causal filtering, smoothing, decoding."""
import numpy as np
import pytest

from models.phase.hmm import OnlinePhaseFilter, PhaseHMM, ordered_path, phase_transitions

CHAIN = {0: (1,), 1: (2,)}


def _expected_time_in_phase(a: np.ndarray, phase: int, k: int) -> float:
    """Mean seconds spent in `phase` when entering at its first sub-state (absorbing-chain formula)."""
    states = slice(phase * k, (phase + 1) * k)
    q = a[states, states]
    return float(np.linalg.inv(np.eye(k) - q).sum(axis=1)[0])


@pytest.mark.parametrize("k", [1, 2, 8])
def test_expected_durations_hold_for_any_number_of_substates(k):
    a = phase_transitions([10.0, 40.0, 25.0], substates=k, successors=CHAIN)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    for phase, duration in enumerate([10.0, 40.0, 25.0]):
        assert _expected_time_in_phase(a, phase, k) == pytest.approx(duration)


def test_leaving_mass_goes_to_successors_and_a_little_elsewhere():
    a = phase_transitions([10.0, 10.0, 10.0], substates=1, successors={0: (1,)}, off_workflow=0.1)
    np.testing.assert_allclose(a[0], [0.9, 0.09, 0.01])
    # Phase 1 has no successor: all its leaving mass is off-workflow, split evenly.
    np.testing.assert_allclose(a[1], [0.05, 0.9, 0.05])
    # Within a phase, sub-states only advance.
    a2 = phase_transitions([10.0, 10.0, 10.0], substates=2, successors=CHAIN)
    assert a2[0, 1] == pytest.approx(0.2) and a2[0, 2:].sum() == 0
    assert a2[1, 2] == pytest.approx(0.2 * 0.98)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"expected_duration_s": [3.0, 10.0], "substates": 4}, "must exceed 4 s"),
        ({"expected_duration_s": [10.0], "substates": 0}, "substates must be >= 1"),
        ({"expected_duration_s": [10.0, 10.0], "off_workflow": 1.0}, r"off_workflow must lie in \[0, 1\)"),
    ],
)
def test_bad_transition_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        phase_transitions(**kwargs)


def _noisy_evidence(truth: np.ndarray, n_phases: int, flip: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = np.where(rng.random(len(truth)) < flip, rng.integers(0, n_phases, len(truth)), truth)
    ev = np.full((len(truth), n_phases), np.log(0.2))
    ev[np.arange(len(truth)), noisy] = np.log(0.8)
    return ev


def _hmm(k: int = 2, **kw) -> PhaseHMM:
    return PhaseHMM(phase_transitions([20.0, 20.0, 20.0], k, CHAIN), [1 / 3] * 3, substates=k, **kw)


def test_decoders_remove_flicker_from_noisy_evidence():
    truth = np.repeat([0, 1, 2], 20)
    ev = _noisy_evidence(truth, 3, flip=0.3)
    assert (ev.argmax(1) != truth).sum() > 5  # the raw evidence flickers
    hmm = _hmm()
    path = hmm.viterbi(ev)
    assert (path == truth).mean() > 0.9 and np.count_nonzero(np.diff(path)) == 2
    post = hmm.smooth(ev)
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    ordered = ordered_path(post, CHAIN)
    assert (ordered == truth).mean() > 0.9 and np.all(np.diff(ordered) >= 0)


def test_filter_is_causal_and_smoothing_is_not():
    truth = np.repeat([0, 1, 2], 10)
    ev = _noisy_evidence(truth, 3, flip=0.0)
    changed = ev.copy()
    changed[-1] = ev[0]  # rewrite only the last second
    hmm = _hmm()
    np.testing.assert_allclose(hmm.filter(ev)[:-1], hmm.filter(changed)[:-1])
    assert not np.allclose(hmm.smooth(ev)[:-1], hmm.smooth(changed)[:-1])


def test_missing_seconds_carry_no_evidence_and_online_matches_batch():
    truth = np.repeat([0, 1, 2], 10)
    ev = _noisy_evidence(truth, 3, flip=0.0)
    ev[5:8] = np.nan
    hmm = _hmm()
    batch = hmm.filter(ev)
    online = OnlinePhaseFilter(hmm)
    rows = [online(row) for row in ev]
    np.testing.assert_allclose(rows, batch, atol=1e-12)
    online.reset()
    # Skipping the NaN seconds entirely (seconds_elapsed) gives the same belief afterwards.
    for t in range(5):
        online(ev[t])
    np.testing.assert_allclose(online(ev[8], seconds_elapsed=4), batch[8], atol=1e-12)
    assert np.all(np.isfinite(hmm.smooth(np.full((4, 3), np.nan))))


def test_start_and_end_constraints():
    hmm = PhaseHMM(phase_transitions([20.0, 20.0, 20.0], 2, CHAIN), [1, 0, 0], final=[0, 0, 1], substates=2,
                   start_at_beginning=True)
    post = hmm.smooth(np.full((60, 3), np.nan))  # no evidence: the prior alone
    assert post[0, 0] == pytest.approx(1.0) and post[-1, 2] == pytest.approx(1.0)
    assert ordered_path(post, CHAIN).tolist() == sorted(ordered_path(post, CHAIN).tolist())


def test_ordered_path_hand_made():
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.4, 0.6], [0.0, 1.0, 0.0]])
    # 0 -> 2 -> 1 breaks the order twice (cost 2 x 5); 0 -> 1 -> 1 scores 2.4.
    assert ordered_path(probs, CHAIN, off_workflow_cost=5.0).tolist() == [0, 1, 1]
    assert ordered_path(probs, CHAIN, off_workflow_cost=0.0).tolist() == [0, 2, 1]
    assert ordered_path(np.zeros((0, 3)), CHAIN).tolist() == []


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PhaseHMM(np.eye(3), [0.5, 0.5], substates=1), r"transition must be \(2, 2\)"),
        (lambda: PhaseHMM(np.full((2, 2), 0.9), [0.5, 0.5]), "probability distributions"),
        (lambda: PhaseHMM(np.eye(2), [0.7, 0.7]), "summing to 1"),
        (lambda: _hmm().filter(np.zeros((4, 2))), r"must be \(T, 3\)"),
    ],
)
def test_bad_hmm_inputs(make, match):
    with pytest.raises(ValueError, match=match):
        make()
