"""CVS metrics: AP per criterion, mAP, balanced accuracy of "all three criteria hold"."""
import numpy as np
import pytest

from metrics.cvs import cvs_report


def test_perfect_ranking_and_balanced_accuracy():
    truth = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]], bool)
    probs = np.where(truth, 0.9, 0.1)
    rep = cvs_report(truth, probs)
    assert rep.ap.tolist() == [1.0, 1.0, 1.0] and rep.map == 1.0
    assert rep.balanced_accuracy == 1.0 and rep.achieved_positives == 1
    d = rep.to_dict()
    assert d["ap"] == {"C1": 1.0, "C2": 1.0, "C3": 1.0} and d["positives"] == {"C1": 2, "C2": 2, "C3": 2}


def test_ap_of_a_hand_ranked_criterion_and_missed_cvs():
    truth = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]], bool)
    probs = np.array([[0.9, 0.2, 0.2], [0.8, 0.2, 0.2], [0.7, 0.2, 0.2], [0.1, 0.2, 0.2]])
    rep = cvs_report(truth, probs)
    assert rep.ap[0] == pytest.approx((1 / 1 + 2 / 3) / 2)  # hits at ranks 1 and 3
    assert np.isnan(rep.ap[1]) and rep.map == pytest.approx(rep.ap[0])  # no positive: no AP, out of the mean
    assert rep.balanced_accuracy == 1.0  # no achieved frame: only specificity, all correct
    assert rep.to_dict()["ap"]["C2"] is None


@pytest.mark.parametrize("truth,probs,match", [
    (np.zeros((2, 3)), np.zeros((2, 2)), r"\(N, 3\)"),
    (np.zeros((2, 3)), np.full((2, 3), 1.5), "0..1"),
])
def test_bad_input(truth, probs, match):
    with pytest.raises(ValueError, match=match):
        cvs_report(truth, probs)
