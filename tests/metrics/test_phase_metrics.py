"""Phase metrics against hand-computed values, strict and with the relaxed boundary."""
import numpy as np
import pytest

from metrics.phase import ground_truth_segments, mean_over_videos, phase_metrics, relaxed_correct

ABC = ("A", "B", "C")


def test_strict_metrics_hand_computed():
    gt = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    pred = [0, 0, 1, 1, 1, 0, 1, 2, 2, 1]
    m = phase_metrics(gt, pred, ABC)
    assert m.accuracy == pytest.approx(0.7)
    np.testing.assert_allclose(m.precision, [2 / 3, 3 / 5, 1.0])
    np.testing.assert_allclose(m.recall, [2 / 3, 3 / 4, 2 / 3])
    np.testing.assert_allclose(m.jaccard, [2 / 4, 3 / 6, 2 / 3])
    np.testing.assert_allclose(m.f1, [2 / 3, 2 * 0.6 * 0.75 / 1.35, 0.8])
    assert m.macro("precision") == pytest.approx((2 / 3 + 0.6 + 1.0) / 3)
    assert m.macro("recall") == pytest.approx((2 / 3 + 0.75 + 2 / 3) / 3)
    np.testing.assert_array_equal(m.confusion, [[2, 1, 0], [1, 3, 0], [0, 1, 2]])


def test_absent_phase_is_nan_and_left_out_of_macro_never_predicted_is_zero():
    m = phase_metrics([0, 0, 1, 1], [0, 0, 0, 0], ("A", "B", "C"))
    assert m.accuracy == 0.5
    assert np.isnan(m.precision[2]) and np.isnan(m.f1[2]) and not m.present[2]
    assert m.precision[1] == 0 and m.recall[1] == 0 and m.f1[1] == 0 and m.jaccard[1] == 0
    assert m.precision[0] == 0.5 and m.recall[0] == 1 and m.jaccard[0] == 0.5
    assert m.macro("precision") == pytest.approx(0.25)  # over A and B only
    d = m.to_dict()
    assert d["macro_over"] == ["A", "B"] and d["per_phase"]["C"]["precision"] is None


GT15 = [0] * 5 + [1] * 6 + [2] * 4
PRED15 = [2, 0, 0, 1, 1, 0, 0, 0, 0, 1, 2, 2, 1, 2, 2]


def test_relaxed_boundary_hand_computed():
    # window 3 s at 1 fps: frames 3,4 (early B), 5-7 (late A), 10 (early C), 12 (late B) are forgiven;
    # frame 8 is 3 s after B starts (outside the window) and frame 0 predicts a non-neighbour phase.
    correct = relaxed_correct(GT15, PRED15, window_s=3)
    assert np.flatnonzero(~correct).tolist() == [0, 8]
    m = phase_metrics(GT15, PRED15, ABC, relaxed_s=3)
    assert m.accuracy == pytest.approx(13 / 15)
    np.testing.assert_allclose(m.precision, [5 / 6, 1.0, 4 / 5])
    np.testing.assert_allclose(m.recall, [4 / 5, 5 / 6, 1.0])
    np.testing.assert_allclose(m.jaccard, [7 / 9, 8 / 9, 5 / 6])
    assert m.relaxed_window_s == 3
    strict = phase_metrics(GT15, PRED15, ABC)
    assert strict.accuracy == pytest.approx(6 / 15)
    np.testing.assert_allclose(strict.precision, [1 / 3, 1 / 4, 3 / 5])
    np.testing.assert_allclose(strict.recall, [2 / 5, 1 / 6, 3 / 4])
    np.testing.assert_allclose(strict.jaccard, [2 / 9, 1 / 9, 3 / 6])
    np.testing.assert_array_equal(m.confusion, strict.confusion)  # confusion stays strict


def test_relaxed_uses_neighbouring_segments_not_id_differences():
    names = tuple("ABCDEFG")
    # B (id 1) is one id after A but the next segment is C: predicting B at A's end is still wrong.
    assert relaxed_correct([0, 0, 2, 2], [0, 1, 2, 2]).tolist() == [True, False, True, True]
    # Out-of-order phases (cleaning before packaging, as in real videos): the next segment counts.
    gt, pred = [3, 3, 5, 5, 4, 4], [3, 5, 5, 4, 5, 4]
    assert phase_metrics(gt, pred, names, relaxed_s=10).accuracy == 1.0
    assert phase_metrics(gt, pred, names).accuracy == pytest.approx(3 / 6)


def test_relaxed_window_is_in_seconds_for_sparse_frames():
    gt, pred = [0, 0, 1, 1], [0, 0, 1, 0]
    # Frame 3 comes 40 s after segment B starts: outside a 10 s window when times are given.
    assert phase_metrics(gt, pred, ABC, times_s=[0, 50, 60, 100], relaxed_s=10).accuracy == 0.75
    assert phase_metrics(gt, pred, ABC, relaxed_s=10).accuracy == 1.0  # default: one frame per second
    assert phase_metrics(gt, [0, 1, 0, 1], ABC, times_s=[0, 50, 60, 100], relaxed_s=10).accuracy == 1.0


def test_segments():
    assert ground_truth_segments(np.array([2, 2, 0, 0, 0, 2])) == [(2, 0, 1), (0, 2, 4), (2, 5, 5)]
    assert ground_truth_segments(np.array([], dtype=int)) == []


def test_mean_over_videos():
    a = phase_metrics([0, 0, 1, 1], [0, 0, 1, 1], ABC)  # acc 1
    b = phase_metrics([0, 0, 2, 2], [0, 1, 2, 2], ABC)  # acc 0.75, B absent
    out = mean_over_videos([a, b])
    assert out["videos"] == 2
    assert out["accuracy"]["mean"] == pytest.approx(0.875) and out["accuracy"]["std"] == pytest.approx(0.125)
    assert out["per_phase"]["B"]["recall"] == 1.0  # only video a has B
    assert out["per_phase"]["C"]["precision"] == 1.0
    assert out["per_phase"]["A"]["recall"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "gt, pred, kwargs, match",
    [
        ([0, 1], [0], {}, "equal length"),
        ([], [], {}, "no frames"),
        ([0, 3], [0, 1], {}, "ground truth phase ids must lie in 0..2"),
        ([0, 1], [0, -1], {}, "prediction phase ids"),
        ([0, 1], [0, 1], {"times_s": [0.0]}, "one time per frame"),
        ([0, 1], [0, 1], {"times_s": [5.0, 1.0]}, "increasing"),
    ],
)
def test_bad_inputs(gt, pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        phase_metrics(gt, pred, ABC, **kwargs)


def test_mean_over_nothing():
    with pytest.raises(ValueError, match="no per-video results"):
        mean_over_videos([])
