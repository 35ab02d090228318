import json

import numpy as np
import pandas as pd
import pytest

from analysis.clips import TimedDetections
from analysis.review_overlay import MAX_GAP_INTERVALS, SCALE, boxes_at, overlay_payload
from models.taxonomy import load_taxonomy

SIZE = (200, 100)


def table(rows):
    df = pd.DataFrame(rows, columns=["x1", "y1", "x2", "y2", "confidence", "class_id", "tracker_id", "timestamp_s"])
    return df.astype({"class_id": "int64", "tracker_id": "int64"})


def moving(times, tid=1, cls=0):
    """A box moving right by 10 px per second."""
    return [(10 + 10 * t, 20, 50 + 10 * t, 60, 0.9, cls, tid, float(t)) for t in times]


def test_payload_is_compact_json_with_names_colours_and_phases():
    names = load_taxonomy().tool_names
    rows = moving([0, 1, 2]) + [(0, 0, 100, 50, 0.5, names.index("Clipper"), -1, 1.0)]
    segments = [{"start_s": 0.0, "end_s": 1.5, "label": "Preparation"},
                {"start_s": 1.5, "end_s": 3.0, "label": "CalotTriangleDissection"}]
    payload = overlay_payload(table(rows), 1.0, SIZE, segments, duration_s=3.0)
    assert json.loads(json.dumps(payload)) == payload  # plain JSON, as the component gets it
    (track,) = payload["tracks"]
    assert track["id"] == 1 and track["t"] == [0.0, 1.0, 2.0] and track["c"] == 0
    assert track["b"][:4] == [500, 2000, 2500, 6000]  # fractions of the 200x100 frame, in 1/SCALE
    assert track["p"] == [0.9, 0.9, 0.9]
    assert payload["loose"] == {"t": [1.0], "c": [names.index("Clipper")], "p": [0.5], "b": [0, 0, SCALE // 2, SCALE // 2]}
    assert payload["names"][0] == "Grasper" and payload["colours"][0].startswith("#")
    assert [p["name"] for p in payload["phases"]] == ["Preparation", "Calot triangle dissection"]
    assert payload["max_gap_s"] == pytest.approx(MAX_GAP_INTERVALS)


def test_boxes_move_linearly_between_two_analysed_frames_of_a_track():
    payload = overlay_payload(table(moving([0, 1, 2])), 1.0, SIZE)
    (box,) = boxes_at(payload, 0.5)
    assert box[:4] == pytest.approx([15 / 200, 0.2, 55 / 200, 0.6])  # halfway from 0 s to 1 s
    assert box[4:] == (0, 1)
    assert boxes_at(payload, 1.0)[0][0] == pytest.approx(20 / 200)  # on an analysed frame: that frame's box
    assert boxes_at(payload, 2.5)[0][0] == pytest.approx(30 / 200)  # after the last frame: held one interval
    assert boxes_at(payload, 3.0) == [] and boxes_at(payload, -0.5) == []


def test_frames_too_far_apart_are_not_bridged():
    payload = overlay_payload(table(moving([0, 3])), 1.0, SIZE)  # out of view for 3 intervals
    assert boxes_at(payload, 0.5)[0][0] == pytest.approx(10 / 200)  # held, not moved towards the 3 s box
    assert boxes_at(payload, 1.5) == []
    assert boxes_at(payload, 3.2)[0][0] == pytest.approx(40 / 200)


def test_a_track_that_changes_class_keeps_each_frames_class():
    rows = moving([0], cls=2) + moving([1], cls=0)
    payload = overlay_payload(table(rows), 1.0, SIZE)
    assert payload["tracks"][0]["c"] == [2, 0]
    assert boxes_at(payload, 0.4)[0][4] == 2 and boxes_at(payload, 1.2)[0][4] == 0


def test_the_overlay_draws_what_annotated_clips_draw():
    rng = np.random.default_rng(0)
    rows = []
    for tid in (1, 2, 3):
        times = np.sort(rng.choice(np.arange(0, 20, 0.5), size=25, replace=False))
        for t in times:
            x, y = rng.uniform(0, 150), rng.uniform(0, 60)
            rows.append((x, y, x + 40, y + 30, 0.8, tid % 2, tid, float(t)))
    rows += [(5, 5, 25, 25, 0.4, 1, -1, 4.0), (5, 5, 25, 25, 0.4, 1, -1, 9.5)]
    df = table(rows)
    payload = overlay_payload(df, 0.5, SIZE)
    reference = TimedDetections(df, 0.5)
    for t in np.arange(0, 21, 0.13):
        ours = sorted(boxes_at(payload, float(t), suppress=False), key=lambda b: (b[5], b[0]))
        clips = reference(float(t))
        theirs = sorted(((*(clips.xyxy[i] / np.array([*SIZE, *SIZE])).tolist(), int(clips.class_id[i]),
                          int(clips.tracker_id[i])) for i in range(len(clips))), key=lambda b: (b[5], b[0]))
        assert len(ours) == len(theirs), t
        for a, b in zip(ours, theirs):
            assert a[:4] == pytest.approx(b[:4], abs=1e-3) and a[4:] == b[4:]


def test_one_instrument_read_as_two_classes_is_drawn_once_as_the_more_confident():
    names = load_taxonomy().tool_names
    hook, scissors = names.index("Hook"), names.index("Scissors")
    rows = [(545, 217, 791, 354, 0.74, hook, 1, 0.0), (566, 218, 791, 348, 0.68, scissors, 2, 0.0),  # IoU 0.87
            (10, 10, 60, 60, 0.5, 0, 3, 0.0)]  # another tool elsewhere
    payload = overlay_payload(table(rows), 1.0, (854, 480))
    assert [(b[4], b[5]) for b in boxes_at(payload, 0.5)] == [(hook, 1), (0, 3)]
    assert len(boxes_at(payload, 0.5, suppress=False)) == 3
    rows[1] = (566, 218, 791, 348, 0.9, scissors, 2, 0.0)  # now scissors is the more confident
    assert [b[4] for b in boxes_at(overlay_payload(table(rows), 1.0, (854, 480)), 0.5)] == [scissors, 0]


def test_an_empty_table_gives_an_empty_overlay():
    payload = overlay_payload(pd.DataFrame(), 1.0, SIZE, duration_s=10.0)
    assert payload["tracks"] == [] and payload["loose"]["t"] == [] and boxes_at(payload, 1.0) == []


@pytest.mark.parametrize("interval,size,match", [(0.0, SIZE, "interval_s must be positive, got 0.0"),
                                                 (1.0, (0, 100), r"frame_size must be .*got \(0, 100\)")])
def test_bad_settings_are_refused(interval, size, match):
    with pytest.raises(ValueError, match=match):
        overlay_payload(table(moving([0])), interval, size)
