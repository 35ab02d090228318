import numpy as np
import pytest

from metrics.detection import (
    ImageBoxes,
    average_precision,
    box_iou,
    evaluate_detections,
    presence_average_precision,
)


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    # overlap 5x10=50, union 100+100-50=150
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 1.0, 0.0]])


def test_box_iou_degenerate_box_is_zero():
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0


def test_average_precision_perfect_and_half():
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # recall reaches 0.5 only, at precision 1: 51 of 101 recall points (0..0.5) have precision 1
    assert average_precision(np.array([0.5]), np.array([1.0])) == pytest.approx(51 / 101)


def test_evaluate_detections_hand_case():
    names = ["Grasper", "Hook"]
    gt = [
        ImageBoxes(np.array([[0, 0, 10, 10]]), np.array([0])),
        ImageBoxes(np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), np.array([0, 1])),
    ]
    pred = [
        # image 1: one exact grasper (0.9), one false positive grasper (0.8)
        ImageBoxes(np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), np.array([0, 0]), np.array([0.9, 0.8])),
        # image 2: grasper found at 0.7, hook at IoU 0.5625 (0.6)
        ImageBoxes(np.array([[0, 0, 10, 10], [25, 25, 40, 40]]), np.array([0, 1]), np.array([0.7, 0.6])),
    ]
    rep = evaluate_detections(gt, pred, names, conf_threshold=0.5)
    # Grasper ranking: TP(0.9), FP(0.8), TP(0.7) -> recall 0.5, 0.5, 1.0; precision 1, 0.5, 0.667
    # envelope: recall<=0.5 -> 1.0 (51 points), 0.5<recall<=1 -> 0.667 (50 points)
    assert rep.ap50["Grasper"] == pytest.approx((51 * 1.0 + 50 * (2 / 3)) / 101)
    assert rep.ap50["Hook"] == pytest.approx(1.0)
    # Hook IoU = 225/400 = 0.5625: a TP at thresholds 0.50 and 0.55 only -> 2 of 10 thresholds
    assert rep.ap50_95["Hook"] == pytest.approx(0.2)
    assert rep.precision["Grasper"] == pytest.approx(2 / 3)
    assert rep.recall["Grasper"] == pytest.approx(1.0)
    assert rep.map50 == pytest.approx((rep.ap50["Grasper"] + 1.0) / 2)


def test_duplicate_detection_is_a_false_positive():
    gt = [ImageBoxes(np.array([[0, 0, 10, 10]]), np.array([0]))]
    pred = [ImageBoxes(np.array([[0, 0, 10, 10], [0, 0, 10, 10]]), np.array([0, 0]), np.array([0.9, 0.8]))]
    rep = evaluate_detections(gt, pred, ["Grasper"], conf_threshold=0.5)
    assert rep.precision["Grasper"] == pytest.approx(0.5)
    assert rep.ap50["Grasper"] == pytest.approx(1.0)


def test_classes_without_ground_truth_are_left_out_of_the_mean():
    gt = [ImageBoxes(np.array([[0, 0, 10, 10]]), np.array([0]))]
    pred = [ImageBoxes(np.array([[0, 0, 10, 10]]), np.array([0]), np.array([0.9]))]
    rep = evaluate_detections(gt, pred, ["Grasper", "Hook"])
    assert rep.support["Hook"] == 0
    assert rep.map50 == pytest.approx(1.0)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="1 ground-truth images but 0"):
        evaluate_detections([ImageBoxes(np.zeros((0, 4)), np.zeros(0))], [], ["Grasper"])


def test_presence_average_precision_hand_case():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    # positives at ranks 1 and 3: precision 1/1 and 2/3
    assert presence_average_precision(labels, scores) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(presence_average_precision(np.zeros(3), np.ones(3)))


def test_presence_average_precision_ignores_the_order_of_tied_scores():
    # Missed tools all score 0: a positive among them must not gain or lose by where it sits.
    labels = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.6, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    # thresholds 0.9, 0.6, 0.5, 0: precision 1, 1, 2/3, 4/8 at recall gains 1/4, 1/4, 0, 2/4
    expected = (1 + 1 + 2 * 0.5) / 4
    rng = np.random.default_rng(0)
    for _ in range(20):
        order = rng.permutation(len(labels))
        assert presence_average_precision(labels[order], scores[order]) == pytest.approx(expected)


def test_presence_average_precision_equals_scikit_learn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    labels = rng.random(200) < 0.3
    scores = np.round(rng.random(200), 1) * (rng.random(200) < 0.7)  # coarse scores, many ties and zeros
    assert presence_average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores))


def test_presence_average_precision_bad_lengths():
    with pytest.raises(ValueError, match="labels has 3 entries, scores has 2"):
        presence_average_precision(np.ones(3), np.ones(2))
