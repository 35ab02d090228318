"""Expected calibration error and reliability curves on hand-made cases."""
import pytest

from metrics.calibration import expected_calibration_error, reliability_curve


def test_perfectly_calibrated_and_overconfident():
    # 10 predictions at 0.8, 8 right: calibrated
    assert expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2) == 0.0
    # all at 0.95 and only half right: ECE 0.45
    assert expected_calibration_error([0.95] * 4, [True, False, True, False]) == pytest.approx(0.45)


def test_curve_bins_and_weights():
    curve = reliability_curve([0.05, 0.15, 0.15, 1.0], [False, True, False, True], bins=10)
    assert [b["count"] for b in curve] == [1, 2, 1]
    assert curve[1] == {"bin": [0.1, 0.2], "count": 2, "confidence": 0.15, "accuracy": 0.5}
    assert curve[-1]["bin"] == [0.9, 1.0]  # 1.0 falls in the last bin
    # ECE = (1*0.05 + 2*0.35 + 1*0) / 4
    assert expected_calibration_error([0.05, 0.15, 0.15, 1.0], [False, True, False, True]) == pytest.approx(0.1875)


@pytest.mark.parametrize("conf, correct, bins, match", [
    ([0.5, 0.5], [True], 10, "equal length"),
    ([1.5], [True], 10, "must lie in"),
    ([0.5], [True], 0, "bins must be at least 1"),
    ([], [], 10, "no predictions"),
])
def test_bad_input(conf, correct, bins, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(conf, correct, bins)
