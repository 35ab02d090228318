import numpy as np
import pytest

from metrics.tracking import FrameTracks, evaluate_tracking


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


def test_hota_of_perfect_tracking_and_of_one_id_switch():
    gt = [ft([1], [BOX])] * 4
    perfect = evaluate_tracking(gt, [ft([7], [BOX])] * 4)
    assert (perfect.hota, perfect.deta, perfect.assa) == pytest.approx((1.0, 1.0, 1.0))
    switched = evaluate_tracking(gt, [ft([7], [BOX])] * 2 + [ft([8], [BOX])] * 2)
    # every box found (DetA 1); each half of the gt track shares 2 of 4 frames with its id: AssA 1/2
    assert switched.deta == pytest.approx(1.0)
    assert switched.assa == pytest.approx(0.5)
    assert switched.hota == pytest.approx(np.sqrt(0.5))


def test_ignored_ground_truth_is_neither_missed_nor_a_false_positive():
    gt = [
        FrameTracks(np.array([1, 2]), np.array([BOX, FAR], float), ignore=np.array([False, True])),
        FrameTracks(np.array([1, 2]), np.array([BOX, FAR], float), ignore=np.array([False, True])),
        ft([1], [BOX]),
    ]
    pred = [
        ft([5, 6], [BOX, FAR]),  # 6 sits on the ignored box: removed
        ft([5], [BOX]),  # the ignored box is not found: not a miss
        ft([5, 7], [BOX, [200, 200, 210, 210]]),  # 7 is a plain false positive
    ]
    rep = evaluate_tracking(gt, pred)
    assert (rep.ignored_gt, rep.removed_predictions) == (2, 1)
    assert (rep.gt_objects, rep.matches, rep.misses, rep.false_positives, rep.id_switches) == (3, 3, 0, 1, 0)
    assert rep.mota == pytest.approx(1 - 1 / 3)
    # IDTP 3 (gt 1 <-> 5), IDFP 1 (id 7), IDFN 0
    assert rep.idf1 == pytest.approx(2 * 3 / (2 * 3 + 1 + 0))
    assert rep.predicted_tracks == 2


def test_report_serialises_plain_numbers():
    d = evaluate_tracking([ft([1], [BOX])], [ft([2], [BOX])]).to_dict()
    assert {"hota", "deta", "assa", "mota", "idf1"} <= set(d)
    assert all(type(v) in (int, float) for v in d.values())


@pytest.mark.parametrize(
    "gt, pred, match",
    [
        ([ft([1, 1], [BOX, FAR])], [ft([], [])], r"ground truth ids repeat within the frame: \[1, 1\]"),
        ([ft([1], [BOX])], [FrameTracks(np.array([1, 2]), np.array([BOX], float))], "2 predicted ids but 1 boxes"),
        ([FrameTracks(np.array([1]), np.array([BOX], float), ignore=np.array([True, False]))], [ft([], [])],
         "2 ignore flags for 1 ground-truth boxes"),
    ],
)
def test_malformed_frames_raise(gt, pred, match):
    with pytest.raises(ValueError, match=match):
        evaluate_tracking(gt, pred)


def test_bad_iou_threshold_raises():
    with pytest.raises(ValueError, match="iou_threshold must lie in"):
        evaluate_tracking([ft([], [])], [ft([], [])], iou_threshold=0.0)
