import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from models._ultralytics import load_ultralytics
from models.detections import Detections
from models.tracker import ByteTrack, Tracker, _BotSort, _BoxesView, load_tracker_config

REPO = Path(__file__).resolve().parents[2]


def box(x, y, w=60, h=40):
    return [x, y, x + w, y + h]


def frames_of_two_tools(n=12, gap=range(5, 7)):
    """A grasper moving right and a hook moving left; the grasper is hidden during `gap`."""
    out = []
    for t in range(n):
        tools = [(box(50 + 8 * t, 100), 0)] if t not in gap else []
        tools.append((box(400 - 8 * t, 110), 2))
        boxes, cls = [b for b, _ in tools], [c for _, c in tools]
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


# -- the native ByteTrack against ultralytics' BYTETracker ------------------------------------------


def random_boxes(seed, n_frames=80, n_objects=6, size=(640, 480)):
    """Seeded (xyxy, scores) per frame: objects drifting across the frame and wrapping round (so boxes
    cross), each blinking out now and then for a spell of random length (shorter and longer than the
    track buffers used below); a quarter of their boxes are weak (below track_high_thresh), plus
    clutter, near-duplicates, a degenerate box and the odd empty frame, in shuffled order."""
    rng = np.random.default_rng(seed)
    w, h = size
    pos, vel = rng.uniform([0, 0], [w, h], (n_objects, 2)), rng.normal(0, 12, (n_objects, 2))
    extent = rng.uniform(20, 120, (n_objects, 2))
    alive = rng.random(n_objects) < 0.7
    frames = []
    for _ in range(n_frames):
        alive ^= rng.random(n_objects) < 0.05
        pos = (pos + vel + rng.normal(0, 3, pos.shape)) % [w, h]
        vel += rng.normal(0, 1, vel.shape)
        boxes, scores = [], []
        for i in np.flatnonzero(alive):
            half = extent[i] * rng.uniform(0.9, 1.1, 2) / 2
            boxes.append([*(pos[i] - half), *(pos[i] + half)])
            scores.append(rng.uniform(0.3, 1.0) if rng.random() < 0.75 else rng.uniform(0.05, 0.3))
        for _ in range(rng.poisson(0.7)):
            centre, half = rng.uniform([0, 0], [w, h]), rng.uniform(5, 40, 2)
            boxes.append([*(centre - half), *(centre + half)])
            scores.append(rng.uniform(0.05, 0.6))
        if boxes and rng.random() < 0.1:
            boxes.append(list(np.array(boxes[0]) + rng.normal(0, 1, 4)))
            scores.append(rng.uniform(0.2, 0.9))
        if rng.random() < 0.03:
            boxes.append([5, 5, 5, 30])  # zero width: both trackers skip it
            scores.append(0.9)
        if rng.random() < 0.05:
            boxes, scores = [], []
        order = rng.permutation(len(boxes))
        frames.append((np.array(boxes, np.float32).reshape(-1, 4)[order], np.array(scores, np.float32)[order]))
    return frames


def ultralytics_args(config, track_buffer):
    skip = ("track_buffer_s", "class_aware")
    return SimpleNamespace(**{k: v for k, v in config.items() if k not in skip}, track_buffer=track_buffer)


def ultralytics_bytetrack(config, track_buffer):
    load_ultralytics()
    from ultralytics.trackers.byte_tracker import BYTETracker

    return BYTETracker(ultralytics_args(config, track_buffer))


@pytest.mark.parametrize("seed", range(12))
def test_native_bytetrack_reproduces_ultralytics(seed):
    config = dict(load_tracker_config("bytetrack"), fuse_score=seed % 3 != 2)
    buffer = [1, 3, 10, 30][seed % 4]
    ref = ultralytics_bytetrack(config, buffer)
    native = ByteTrack(config["track_high_thresh"], config["track_low_thresh"], config["new_track_thresh"],
                       config["match_thresh"], config["fuse_score"], buffer)
    for n, (xyxy, scores) in enumerate(random_boxes(seed)):
        out = ref.update(_BoxesView(xyxy, scores, np.zeros(len(scores), np.float32)))
        out = out.reshape(-1, 8)
        boxes, ids, rows = native.update(xyxy, scores)
        assert ids.tolist() == out[:, 4].astype(int).tolist(), f"frame {n}"
        assert rows.tolist() == out[:, 7].astype(int).tolist(), f"frame {n}"
        np.testing.assert_allclose(boxes, out[:, :4], rtol=0, atol=1e-3, err_msg=f"frame {n}")
        assert [t.track_id for t in native.lost] == [t.track_id for t in ref.lost_stracks], f"frame {n}"


class _UltralyticsByteTrack(_BotSort):
    """ultralytics' BYTETracker behind the interface `Tracker` drives: the reference for the native one."""

    def __init__(self, config, track_buffer):
        self.inner = ultralytics_bytetrack(config, track_buffer)
        self.max_frames_lost = self.inner.max_frames_lost


class _ReferenceTracker(Tracker):
    """`Tracker` on ultralytics' BYTETracker, as it was before the native ByteTrack."""

    def _make(self):
        return _UltralyticsByteTrack(self.config, super()._make().max_frames_lost)


def assert_same_tracks(frames, config, frame_rate=1.0):
    native, ref = Tracker(config, frame_rate), _ReferenceTracker(config, frame_rate)
    seen = set()
    for n, det in enumerate(frames):
        a, b = native(det), ref(det)
        assert a.tracker_id.tolist() == b.tracker_id.tolist(), f"frame {n}"
        assert a.class_id.tolist() == b.class_id.tolist() and a.confidence.tolist() == b.confidence.tolist(), f"frame {n}"
        np.testing.assert_allclose(a.xyxy, b.xyxy, rtol=0, atol=1e-3, err_msg=f"frame {n}")
        seen.update(a.tracker_id.tolist())
    return seen


@pytest.mark.parametrize("seed", range(4))
def test_tracker_ids_match_the_ultralytics_backed_tracker(seed):
    """Several classes at once (global ids in order of first appearance), buffers of 1 to 10 frames."""
    per_class = [random_boxes(100 * seed + c, n_frames=60, n_objects=4) for c in range(3)]
    frames = []
    for n in range(60):
        parts = [Detections(*per_class[c][n], [c] * len(per_class[c][n][1]), frame_index=[n] * len(per_class[c][n][1]))
                 for c in range(3)]
        frames.append(Detections.merge(parts)[np.random.default_rng(n).permutation(sum(map(len, parts)))])
    config = dict(load_tracker_config("bytetrack"), track_buffer_s=[1.0, 3.0, 10.0, 2.5][seed])
    assert len(assert_same_tracks(frames, config)) > 10


def test_tracker_ids_match_on_crossing_and_returning_tools():
    """Two graspers crossing, a hook seen weakly, a clipper back before and a bipolar back after 5 s."""
    frames = []
    for t in range(30):
        tools = [(box(40 + 15 * t, 100), 0, 0.9), (box(480 - 15 * t, 110), 0, 0.8), (box(300, 300 + t), 2, 0.9 if t % 3 else 0.2)]
        if not 8 <= t < 11:
            tools.append((box(100, 250 - 2 * t), 4, 0.7))
        if not 5 <= t < 15:
            tools.append((box(500, 300, 40, 80), 1, 0.6))
        boxes, cls, conf = zip(*tools)
        frames.append(Detections(list(boxes), list(conf), list(cls), frame_index=[t] * len(cls)))
    assert_same_tracks(frames, "bytetrack", frame_rate=1.0)
    assert_same_tracks(frames, dict(load_tracker_config("bytetrack"), class_aware=False), frame_rate=1.0)


@pytest.mark.parametrize("born, survivor", [(2, 3), (8, 1)])
def test_tracker_ids_match_when_a_lost_track_drifts_onto_a_tracked_one(born, survivor):
    """A lost track coasting onto another track's box: the one matched over fewer frames is dropped."""
    frames = []
    for t in range(20):
        tools = [(box(20 * t, 100, 200, 120), 0.9)] if t < 10 else []  # leaves at frame 10, coasting right
        if t >= born:
            tools.append((box(280, 100, 200, 120), 0.8))  # still, where the first one coasts to
        tools.append((box(50, 400, 50, 50), 0.9))
        boxes, conf = zip(*tools)
        frames.append(Detections(list(boxes), list(conf), [0] * len(conf), frame_index=[t] * len(conf)))
    native = Tracker("bytetrack", 1.0)
    last = [native(det) for det in frames][-1]
    assert survivor in last.tracker_id.tolist() and sorted(last.tracker_id.tolist()) == sorted({2, survivor})
    assert_same_tracks(frames, "bytetrack", frame_rate=1.0)


def test_tracker_ids_match_on_real_tool_boxes():
    """CholecT50 VID68's annotated instrument-tip boxes (1 fps) as detections, with seeded scores."""
    import json

    from tests.conftest import shared_path

    spec = json.loads(shared_path("cholect50-val", "labels", "VID68.json").read_text())
    rng = np.random.default_rng(0)
    frames = []
    for n, key in enumerate(sorted(spec["annotations"], key=int)):
        rows = [r for r in spec["annotations"][key] if r[1] >= 0 and r[3] >= 0]
        xywh = np.array([r[3:7] for r in rows], float).reshape(-1, 4) * [640, 360, 640, 360]
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        conf = np.where(rng.random(len(rows)) < 0.8, rng.uniform(0.3, 1.0, len(rows)), rng.uniform(0.05, 0.3, len(rows)))
        frames.append(Detections(xyxy, conf, [r[1] for r in rows], frame_index=[n] * len(rows)))
    assert len(frames) > 100
    assert len(assert_same_tracks(frames, "bytetrack", frame_rate=1.0)) > 5


def test_bytetrack_path_imports_neither_torch_nor_ultralytics():
    code = (
        "import sys\n"
        "import models.tracker\n"
        "from models.detections import Detections\n"
        "tracker = models.tracker.Tracker('bytetrack', 1.0)\n"
        "for t in range(5):\n"
        "    out = tracker(Detections([[10 + 5 * t, 10, 60 + 5 * t, 50], [200, 100, 260, 160]], [0.9, 0.2], [0, 3]))\n"
        "assert out.tracker_id.tolist() == [1], out\n"
        "print(sorted({'torch', 'ultralytics'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("change, message", [
    ({"track_high_thresh": 1.5}, "track_high_thresh must be a number in [0, 1], got 1.5"),
    ({"match_thresh": "0.8"}, "match_thresh must be a number in [0, 1], got '0.8'"),
    ({"new_track_thresh": float("nan")}, "new_track_thresh must be a number in [0, 1], got nan"),
    ({"track_low_thresh": 0.5}, "track_low_thresh (0.5) is above track_high_thresh (0.25)"),
    ({"track_buffer_s": 0}, "track_buffer_s must be a positive number of seconds, got 0"),
    ({"track_buffer_s": None}, "track_buffer_s must be a positive number of seconds, got None"),
    ({"track_buffer": 30}, "track_buffer (30) counts frames; give track_buffer_s in seconds"),
    ({"fuse_score": "yes"}, "fuse_score must be true or false, got 'yes'"),
    ({"tracker_type": "deepsort"}, "tracker_type 'deepsort' is not bytetrack or botsort"),
    ({"match_thresh": None, "drop": "match_thresh"}, "tracker settings lack ['match_thresh']"),
])
def test_bad_settings_are_refused_with_their_value(change, message, tmp_path):
    config = dict(load_tracker_config("bytetrack"), **change)
    config.pop(config.pop("drop", None), None)
    with pytest.raises(ValueError, match=re.escape(message)):
        Tracker(config, frame_rate=1.0)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=re.escape(f"{message} (in {str(path)!r})")):
        load_tracker_config(path)
    with pytest.raises(ValueError, match=re.escape("frame_rate must be positive, got 'fast'")):
        Tracker("bytetrack", frame_rate="fast")
