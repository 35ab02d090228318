"""Dice and IoU on hand-made masks."""
import json

import numpy as np
import pytest

from metrics.segmentation import dice, iou, segmentation_report


def square(y0, x0, size, shape=(10, 10)):
    m = np.zeros(shape, dtype=bool)
    m[y0:y0 + size, x0:x0 + size] = True
    return m


def test_half_overlapping_squares():
    a, b = square(0, 0, 4), square(0, 2, 4)  # 16 px each, 8 shared, union 24
    assert dice(a, b) == pytest.approx(2 * 8 / 32)
    assert iou(a, b) == pytest.approx(8 / 24)


def test_identical_disjoint_and_empty():
    a = square(2, 2, 3)
    assert dice(a, a) == 1.0 and iou(a, a) == 1.0
    assert dice(a, square(6, 6, 3)) == 0.0 and iou(a, square(6, 6, 3)) == 0.0
    empty = np.zeros((10, 10), bool)
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    assert dice(a, empty) == 0.0


def test_dice_iou_relation_holds():
    rng = np.random.default_rng(0)
    p, t = rng.random((32, 32)) > 0.5, rng.random((32, 32)) > 0.6
    d, j = dice(p, t), iou(p, t)
    assert d == pytest.approx(2 * j / (1 + j))


def test_report_means_and_json():
    rep = segmentation_report([square(0, 0, 4), square(0, 0, 4)], [square(0, 0, 4), square(0, 2, 4)], ["x", "y"], "polyp")
    assert rep.mean_dice == pytest.approx((1.0 + 0.5) / 2)
    d = rep.to_dict()
    json.dumps(d)
    assert d["label"] == "polyp" and d["per_image"][1]["iou"] == pytest.approx(1 / 3, abs=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dice(np.zeros((4, 4)), np.zeros((4, 5))), r"prediction shape \(4, 4\) differs"),
        (lambda: segmentation_report([np.zeros((2, 2))], [], ["a"]), "1 predictions, 0 references"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- multi-class label maps, dataset level ---------------------------------------------------------
from metrics.segmentation import (  # noqa: E402
    MultiClassSegmentationMeter, class_pixel_counts, multiclass_segmentation_report,
)

THREE = ["background", "a", "b"]


def test_class_counts_skip_ignored_pixels():
    target = np.array([[0, 1, 1], [2, 2, 255]])
    pred = np.array([[0, 1, 2], [2, 1, 1]])  # the last pixel is unannotated: never counted
    inter, p, t = class_pixel_counts(pred, target, 3)
    assert inter.tolist() == [1, 1, 1] and p.tolist() == [1, 2, 2] and t.tolist() == [1, 2, 2]


def test_dataset_level_dice_sums_pixels_over_images():
    t1, p1 = np.array([[1, 1, 1, 1]]), np.array([[1, 1, 0, 0]])  # a: 2 of 4 found
    t2, p2 = np.array([[1, 0, 2, 2]]), np.array([[1, 0, 2, 0]])  # a: 1 of 1, b: 1 of 2
    rep = multiclass_segmentation_report([p1, p2], [t1, t2], THREE)
    assert rep.dice[1] == pytest.approx(2 * 3 / (3 + 5)) and rep.iou[1] == pytest.approx(3 / 5)
    assert rep.dice[2] == pytest.approx(2 * 1 / (1 + 2))
    assert rep.mean_dice == pytest.approx((rep.dice[1] + rep.dice[2]) / 2)  # background is not in the mean
    d = rep.to_dict()
    assert set(d["dice"]) == set(THREE) and d["mean_over"] == ["a", "b"] and d["images"] == 2


def test_class_absent_everywhere_is_null_and_left_out_of_the_mean():
    meter = MultiClassSegmentationMeter(THREE)
    meter.update(np.array([[0, 1]]), np.array([[0, 1]]))
    rep = meter.report()
    assert np.isnan(rep.dice[2]) and rep.to_dict()["dice"]["b"] is None
    assert rep.mean_dice == 1.0


@pytest.mark.parametrize("pred,target,match", [
    (np.zeros((2, 2), int), np.zeros((2, 3), int), "differs"),
    (np.zeros((1, 2), int), np.array([[0, 7]]), "reference labels"),
    (np.array([[0, 5]]), np.zeros((1, 2), int), "predicted labels"),
])
def test_class_counts_bad_input(pred, target, match):
    with pytest.raises(ValueError, match=match):
        class_pixel_counts(pred, target, 3)
