import numpy as np
import pytest

from models.detections import Detections
from models.tracker import Tracker, load_tracker_config


def box(x, y, w=60, h=40):
    return [x, y, x + w, y + h]


def frames_of_two_tools(n=12, gap=range(5, 7)):
    """A grasper moving right and a hook moving left; the grasper is hidden during `gap`."""
    out = []
    for t in range(n):
        boxes, cls = [], []
        if t not in gap:
            boxes.append(box(50 + 8 * t, 100)); cls.append(0)
        boxes.append(box(400 - 8 * t, 110)); cls.append(2)
        out.append(Detections(boxes, [0.9] * len(cls), cls, frame_index=[t] * len(cls)))
    return out


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_ids_stable_through_short_occlusion(name):
    tracker = Tracker(name, frame_rate=1.0)
    ids = {0: set(), 2: set()}
    for det in frames_of_two_tools():
        out = tracker(det)  # no frame: BoT-SORT skips camera-motion compensation
        for cid, tid in zip(out.class_id, out.tracker_id):
            ids[int(cid)].add(int(tid))
    assert len(ids[0]) == 1 and len(ids[2]) == 1
    assert ids[0] != ids[2]


def test_reset_restarts_ids():
    tracker = Tracker("bytetrack", frame_rate=1.0)
    first = [tracker(d) for d in frames_of_two_tools(4, gap=())]
    tracker.reset()
    again = [tracker(d) for d in frames_of_two_tools(4, gap=())]
    assert sorted(set(first[-1].tracker_id)) == sorted(set(again[-1].tracker_id))


def test_buffer_is_in_seconds():
    # 5 s buffer at 25 fps -> 125 frames
    t = Tracker("bytetrack", frame_rate=25.0)
    assert t._make().max_frames_lost == 125


def test_bad_tracker_names():
    with pytest.raises(ValueError, match="unknown tracker 'deepsort'"):
        load_tracker_config("deepsort")
    with pytest.raises(ValueError, match="frame_rate must be positive, got 0"):
        Tracker("bytetrack", frame_rate=0)
