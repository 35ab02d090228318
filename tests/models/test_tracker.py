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


def test_box_predictor_moves_tracks_at_their_velocity_and_keeps_ids():
    from models.tracker import BoxPredictor

    predictor = BoxPredictor(frame_size=(200, 100), max_gap_s=1.0)
    predictor.observe(Detections([box(10, 20, 20, 10)], [0.8], [2], tracker_id=[7]), 0.0)
    held = predictor.predict(0.1, frame_index=3)  # first sighting: no velocity yet, held still
    assert held.xyxy.tolist() == [[10, 20, 30, 30]] and held.tracker_id.tolist() == [7] and held.frame_index.tolist() == [3]
    predictor.observe(Detections([box(20, 20, 20, 10)], [0.9], [2], tracker_id=[7]), 0.2)  # 50 px/s to the right
    moved = predictor.predict(0.3)
    assert np.allclose(moved.xyxy, [[25, 20, 45, 30]]) and moved.class_id.tolist() == [2] and moved.confidence.tolist() == [pytest.approx(0.9)]
    assert np.allclose(predictor.predict(10.0).xyxy[0, [0, 2]], [200, 200])  # clipped to the frame
    predictor.observe(Detections.empty(), 0.4)
    assert len(predictor.predict(0.5)) == 0  # a frame without tracks predicts none
    with pytest.raises(ValueError, match="max_gap_s must be positive, got 0"):
        BoxPredictor(max_gap_s=0)


def test_idle_class_trackers_only_count_frames_with_the_same_tracks():
    """The shortcut for class trackers with nothing to track gives exactly the full update's tracks."""
    # A clipper seen at first, gone long enough for its track to be removed (idle tracker), then back.
    late = [Detections([box(200, 50)], [0.9], [4], frame_index=[t]) if t < 2 or t >= 10 else Detections.empty() for t in range(12)]
    frames = [Detections.merge([a, b]) for a, b in zip(frames_of_two_tools(), late)]
    fast, full = Tracker("bytetrack", frame_rate=1.0), Tracker("bytetrack", frame_rate=1.0)
    full.uses_image = True  # disables the shortcut (as for BoT-SORT)
    for det in frames:
        a, b = fast(det), full(det)
        assert a.tracker_id.tolist() == b.tracker_id.tolist() and np.allclose(a.xyxy, b.xyxy)
    assert 4 in a.class_id.tolist()
