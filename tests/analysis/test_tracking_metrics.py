import numpy as np
import pytest

from analysis.metrics.tracking import FrameTracks, evaluate_tracking


def ft(ids, boxes):
    return FrameTracks(np.array(ids, int), np.array(boxes, float).reshape(-1, 4))


BOX = [0, 0, 10, 10]
FAR = [100, 100, 110, 110]


def test_perfect_tracking():
    gt = [ft([1], [BOX])] * 4
    rep = evaluate_tracking(gt, [ft([7], [BOX])] * 4)
    assert (rep.mota, rep.idf1, rep.id_switches) == (1.0, 1.0, 0)


def test_one_id_switch_hand_computed():
    gt = [ft([1], [BOX])] * 4
    pred = [ft([7], [BOX]), ft([7], [BOX]), ft([8], [BOX]), ft([8], [BOX])]
    rep = evaluate_tracking(gt, pred)
    assert rep.id_switches == 1
    assert rep.mota == pytest.approx(1 - 1 / 4)
    # best one-to-one: gt 1 <-> 7 for 2 frames: IDTP 2, IDFP 2, IDFN 2 -> IDF1 = 4 / 8
    assert rep.idf1 == pytest.approx(0.5)


def test_misses_and_false_positives():
    gt = [ft([1], [BOX]), ft([1], [BOX]), ft([], [])]
    pred = [ft([5], [BOX]), ft([], []), ft([6], [FAR])]
    rep = evaluate_tracking(gt, pred)
    assert (rep.matches, rep.misses, rep.false_positives) == (1, 1, 1)
    assert rep.mota == pytest.approx(1 - 2 / 2)
    assert rep.idf1 == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))


def test_match_is_kept_when_still_valid():
    # Two predictions overlap the gt; the one matched before keeps the match (no switch).
    near = [1, 0, 11, 10]  # IoU 9/11 with BOX
    gt = [ft([1], [BOX]), ft([1], [BOX])]
    pred = [ft([5], [near]), ft([4, 5], [BOX, near])]
    rep = evaluate_tracking(gt, pred)
    assert rep.id_switches == 0
    assert rep.false_positives == 1


def test_low_iou_is_not_a_match():
    gt = [ft([1], [BOX])]
    pred = [ft([1], [[6, 0, 16, 10]])]  # IoU 4/16
    assert evaluate_tracking(gt, pred).matches == 0


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 ground-truth frames but 1"):
        evaluate_tracking([ft([], [])] * 2, [ft([], [])])
