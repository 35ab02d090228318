"""Annotators: boxes, labels and trails share `annotate(scene, detections)`; one instrument read as two classes is
boxed once, as the more confident class."""
import numpy as np
import pytest

from models.detections import Detections
from models.annotators import (
    BoxAnnotator, InstrumentAnnotator, LabelAnnotator, TraceAnnotator, distinct_boxes, trace_length_for,
)

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
    drawn = InstrumentAnnotator(["Hook", "Scissors"], [RED, BLUE]).annotate(frame, both)
    assert drawn[50, 21, 2] > 200 and drawn[50, 21, 0] < 50  # the blue (Scissors) box on the left edge
    red = lambda img: ((img[..., 0] > 200) & (img[..., 2] < 50)).any()  # noqa: E731
    assert not red(drawn)  # no red (Hook) box at all
    every = InstrumentAnnotator(["Hook", "Scissors"], [RED, BLUE], suppress_iou=None).annotate(frame, both)
    assert red(every)


def test_each_annotator_draws_its_part_on_the_scene():
    det = Detections([[20, 20, 60, 60]], [0.9], [0], [7])
    boxed = BoxAnnotator([RED]).annotate(np.zeros((100, 100, 3), np.uint8), det)
    assert boxed[40, 20, 0] > 200 and boxed[40, 40].max() == 0  # the outline only
    labelled = LabelAnnotator(["Hook"], [RED]).annotate(np.zeros((100, 100, 3), np.uint8), det)
    assert labelled[:20, 20:60].max() > 200 and labelled[40, 40].max() == 0  # a tag above the box's corner
    with pytest.raises(ValueError, match="2 classes but only 1 colours"):
        LabelAnnotator(["Hook", "Grasper"], [RED])


def test_trails_follow_a_track_fade_and_reset():
    trace = TraceAnnotator([RED], trace_length=3)
    scene = lambda: np.zeros((100, 100, 3), np.uint8)  # noqa: E731
    at = lambda x: Detections([[x, 40, x + 20, 60]], [0.9], [0], [1])  # noqa: E731
    assert trace.annotate(scene(), at(0)).max() == 0  # one point: no trail yet
    drawn = trace.annotate(scene(), at(40))
    assert drawn[50, 30, 0] > 100  # a line between the centres 10 and 50
    trace.annotate(scene(), Detections.empty())
    assert trace.annotate(scene(), Detections.empty()).max() == 0  # older than 3 frames: gone
    trace.annotate(scene(), at(0))
    trace.reset()
    assert trace.annotate(scene(), at(40)).max() == 0
    with pytest.raises(ValueError, match="trace_length must be an integer >= 2 frames, got 1"):
        TraceAnnotator([RED], trace_length=1)


@pytest.mark.parametrize("trail_s, fps, frames", [(4.0, 1.0, 4), (4.0, 25.0, 100), (0.5, 2.0, 4)])
def test_trace_length_for(trail_s, fps, frames):
    assert trace_length_for(trail_s, fps) == frames
