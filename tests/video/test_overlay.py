"""Drawing boxes: one instrument read as two classes is boxed once, as the more confident class."""
import numpy as np
import pytest

from models.detections import Detections
from video.overlay import Annotator, distinct_boxes

RED, BLUE = "#ff0000", "#0000ff"


def test_duplicate_boxes_of_different_classes_keep_the_more_confident():
    xyxy = np.array([[10, 10, 50, 50], [11, 10, 51, 50], [60, 60, 90, 90], [12, 12, 30, 30]], np.float32)
    keep = distinct_boxes(xyxy, np.array([0.6, 0.9, 0.5, 0.4]))
    assert keep.tolist() == [False, True, True, True]  # the small box inside overlaps by IoU 0.2 only
    assert distinct_boxes(np.zeros((0, 4)), np.zeros(0)).tolist() == []


@pytest.mark.parametrize("iou", [0, -0.1, 1.5])
def test_bad_iou(iou):
    with pytest.raises(ValueError, match="iou must be in"):
        distinct_boxes(np.zeros((1, 4)), np.ones(1), iou=iou)


def test_the_annotator_draws_one_box_per_tool():
    frame = np.zeros((100, 100, 3), np.uint8)
    both = Detections([[20, 20, 80, 80], [21, 20, 80, 81]], [0.55, 0.8], [0, 1], [1, 2])  # Hook 0.55, Scissors 0.8
    drawn = Annotator(["Hook", "Scissors"], [RED, BLUE])(frame, both, 0.0)
    assert drawn[50, 21, 2] > 200 and drawn[50, 21, 0] < 50  # the blue (Scissors) box on the left edge
    red = lambda img: ((img[..., 0] > 200) & (img[..., 2] < 50)).any()  # noqa: E731
    assert not red(drawn)  # no red (Hook) box at all
    every = Annotator(["Hook", "Scissors"], [RED, BLUE], suppress_iou=None)(frame, both, 0.0)
    assert red(every)
