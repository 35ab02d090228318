"""Dice and IoU on hand-made masks."""
import json

import numpy as np
import pytest

from analysis.metrics.segmentation import dice, iou, segmentation_report


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
