"""Multi-object tracking of instruments: our own ByteTrack (numpy + lap), or ultralytics' BoT-SORT.

`Tracker(config)` is called once per analysed frame with that frame's detections and returns them
with `tracker_id` set; `reset()` starts a new video. Track lifetimes in the YAML are in seconds and
are converted with the analysed frame rate.

`tracker_type: bytetrack` runs `ByteTrack` below, which reproduces ultralytics' `BYTETracker`
(same ids, boxes and kept detections frame after frame; tests/models/test_tracker.py checks it
against ultralytics) without importing torch or ultralytics. `tracker_type: botsort` wraps
ultralytics' `BOTSORT` (camera-motion compensation), imported only when a BoT-SORT tracker is made.
"""
from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lap
import numpy as np
import yaml

from models.detections import Detections
from models.taxonomy import ASSETS_DIR

TRACKERS_DIR = ASSETS_DIR / "trackers"
TRACKER_TYPES = ("bytetrack", "botsort")
# Settings every tracker reads (BoT-SORT also BOTSORT_THRESHOLDS, gmc_method, with_reid); thresholds are scores or IoU costs.
THRESHOLDS = ("track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh")
BOTSORT_THRESHOLDS = ("proximity_thresh", "appearance_thresh")
FLAGS = ("fuse_score", "class_aware", "with_reid")


def check_tracker_config(cfg: dict[str, Any], where: str = "") -> dict[str, Any]:
    """`cfg` if its settings are usable, else ValueError naming the setting and quoting its value."""

    def refuse(problem: str) -> ValueError:
        return ValueError(problem + (f" (in {where!r})" if where else ""))

    kind = cfg.get("tracker_type")
    if kind not in TRACKER_TYPES:
        raise refuse(f"tracker_type {kind!r} is not bytetrack or botsort")
    required = THRESHOLDS + ("fuse_score",) + ((*BOTSORT_THRESHOLDS, "gmc_method", "with_reid") if kind == "botsort" else ())
    missing = [key for key in required if key not in cfg]
    if missing:
        raise refuse(f"tracker settings lack {missing}")
    if "track_buffer" in cfg:
        raise refuse(f"track_buffer ({cfg['track_buffer']!r}) counts frames; give track_buffer_s in seconds")
    for key in THRESHOLDS + (BOTSORT_THRESHOLDS if kind == "botsort" else ()):
        if not _is_number(cfg[key]) or not 0 <= cfg[key] <= 1:
            raise refuse(f"{key} must be a number in [0, 1], got {cfg[key]!r}")
    if cfg["track_low_thresh"] > cfg["track_high_thresh"]:
        raise refuse(f"track_low_thresh ({cfg['track_low_thresh']!r}) is above track_high_thresh ({cfg['track_high_thresh']!r})")
    buffer = cfg.get("track_buffer_s", 5.0)
    if not _is_number(buffer) or not 0 < buffer < math.inf:
        raise refuse(f"track_buffer_s must be a positive number of seconds, got {buffer!r}")
    for key in FLAGS:
        if key in cfg and not isinstance(cfg[key], bool):
            raise refuse(f"{key} must be true or false, got {cfg[key]!r}")
    return cfg


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and not math.isnan(value)


def load_tracker_config(ref: str | Path) -> dict[str, Any]:
    """A shipped tracker name ("bytetrack", "botsort") or a YAML path -> settings dict."""
    path = Path(ref)
    if not path.exists():
        path = TRACKERS_DIR / f"{ref}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in TRACKERS_DIR.glob("*.yaml"))
        raise ValueError(f"unknown tracker {str(ref)!r}; shipped: {known}, or give a YAML path")
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict):
        raise ValueError(f"{str(path)!r} is not a mapping of tracker settings")
    return check_tracker_config(cfg, str(path))


# -- ByteTrack ----------------------------------------------------------------------------------
# Box arithmetic keeps ultralytics' dtypes and rounding steps (float32 boxes, float64 Kalman state),
# so that assignments tie-break and threshold exactly as in BYTETracker.

TRACKED, LOST, REMOVED = 1, 2, 3  # track states (ultralytics' TrackState values)


class KalmanXYAH:
    """Constant-velocity Kalman filter of boxes as (centre x, centre y, aspect w/h, height).

    State: those four and their velocities (8 values, float64); noise scales with the box height.
    """

    position_weight, velocity_weight = 1.0 / 20, 1.0 / 160

    def __init__(self) -> None:
        self.motion = np.eye(8)
        self.motion[:4, 4:] = np.eye(4)

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of a new track at measurement `xyah`, at rest."""
        z = np.asarray(xyah, dtype=np.float64)
        h = z[3]
        pos, vel = 2 * self.position_weight * h, 10 * self.velocity_weight * h
        return np.r_[z, np.zeros(4)], np.diag(np.square([pos, pos, 1e-2, pos, vel, vel, 1e-5, vel]))

    def predict(self, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead for (N, 8) means and (N, 8, 8) covariances."""
        h = means[:, 3]
        pos, vel, ones = self.position_weight * h, self.velocity_weight * h, np.ones_like(h)
        noise = np.square(np.stack([pos, pos, 1e-2 * ones, pos, vel, vel, 1e-5 * ones, vel], axis=1))
        motion_cov = np.zeros((len(h), 8, 8))
        motion_cov[:, range(8), range(8)] = noise
        return means @ self.motion.T, self.motion @ covs @ self.motion.T + motion_cov

    def update(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct one track's state with its matched measurement `xyah`."""
        std = self.position_weight * mean[3]
        innovation_cov = cov[:4, :4] + np.diag(np.square([std, std, 1e-1, std]))
        gain = np.linalg.solve(innovation_cov, cov[:, :4].T).T
        mean = mean + np.dot(xyah - mean[:4], gain.T)
        return mean, cov - np.dot(gain, np.dot(innovation_cov, gain.T))


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, 4) (centre x, centre y, aspect, height) -> corners, in the input's dtype."""
    cx, cy, aspect, h = xyah.T
    w = aspect * h
    x1, y1 = cx - w / 2, cy - h / 2
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def iou_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - IoU between (N, 4) and (M, 4) xyxy boxes, as float32 (N, M)."""
    a, b = np.asarray(a, np.float32).reshape(-1, 4), np.asarray(b, np.float32).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.ones((len(a), len(b)), np.float32)
    ax1, ay1, ax2, ay2 = a.T
    bx1, by1, bx2, by2 = b.T
    inter = (np.minimum(ax2[:, None], bx2) - np.maximum(ax1[:, None], bx1)).clip(0) * (
        np.minimum(ay2[:, None], by2) - np.maximum(ay1[:, None], by1)
    ).clip(0)
    union = (bx2 - bx1) * (by2 - by1) + ((ax2 - ax1) * (ay2 - ay1))[:, None] - inter
    return 1 - inter / (union + 1e-7)


def assign(cost: np.ndarray, limit: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost matching (lapjv) skipping pairs above `limit` -> (pairs, unmatched rows, unmatched columns)."""
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    _, rows, cols = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    pairs = [(r, int(c)) for r, c in enumerate(rows) if c >= 0]
    return pairs, np.flatnonzero(rows < 0).tolist(), np.flatnonzero(cols < 0).tolist()


class _Candidates:
    """One frame's detections as ByteTrack reads them: float32 corners, xyah, scores, row in the input."""

    def __init__(self, xyxy: np.ndarray, xyah: np.ndarray, score: np.ndarray, index: np.ndarray):
        self.xyxy, self.xyah, self.score, self.index = xyxy, xyah, score, index

    @classmethod
    def of(cls, xyxy: np.ndarray, score: np.ndarray) -> "_Candidates":
        """The boxes of `xyxy` that have an area (the others are skipped), with their scores and rows."""
        x1, y1, x2, y2 = np.asarray(xyxy, np.float32).reshape(-1, 4).T
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        keep = np.flatnonzero((w > 0) & (h > 0))
        cx, cy, w, h = cx[keep], cy[keep], w[keep], h[keep]
        # Top-left corner from the centre, in float64 then float32, as ultralytics derives it.
        left = (cx.astype(np.float64) - w.astype(np.float64) / 2).astype(np.float32)
        top = (cy.astype(np.float64) - h.astype(np.float64) / 2).astype(np.float32)
        corners = np.stack([left, top, left + w, top + h], axis=1)
        xyah = np.stack([left + w / 2, top + h / 2, w / h, h], axis=1)
        return cls(corners, xyah, np.asarray(score, np.float32).reshape(-1)[keep], keep)

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, rows: Any) -> "_Candidates":
        return _Candidates(self.xyxy[rows], self.xyah[rows], self.score[rows], self.index[rows])


class _Track:
    """One tracked object: Kalman state, id, state, the frames it started and was last matched in."""

    __slots__ = ("mean", "cov", "track_id", "state", "is_activated", "frame_id", "start_frame", "det_index")

    def __init__(self, mean: np.ndarray, cov: np.ndarray, track_id: int, frame_id: int, det_index: int):
        self.mean, self.cov, self.track_id = mean, cov, track_id
        self.state, self.is_activated = TRACKED, frame_id == 1  # tracks of the very first frame count at once
        self.frame_id = self.start_frame = frame_id
        self.det_index = det_index

    def update(self, kf: KalmanXYAH, dets: _Candidates, row: int, frame_id: int) -> None:
        """Matched to detection `row`: correct the state; the track is (again) tracked and confirmed."""
        self.mean, self.cov = kf.update(self.mean, self.cov, dets.xyah[row])
        self.state, self.is_activated, self.frame_id = TRACKED, True, frame_id
        self.det_index = int(dets.index[row])


def _boxes(tracks: list[_Track]) -> np.ndarray:
    """Tracks' current boxes, xyxy float64."""
    return xyah_to_xyxy(np.array([t.mean[:4] for t in tracks]).reshape(-1, 4))


def _union(a: list[_Track], b: list[_Track]) -> list[_Track]:
    """`a` then the tracks of `b` whose ids are not in `a`."""
    ids = {t.track_id for t in a}
    return a + [t for t in b if t.track_id not in ids]


def _without(a: list[_Track], ids: Any) -> list[_Track]:
    """The tracks of `a` whose ids are not in `ids`."""
    ids = set(ids)
    return [t for t in a if t.track_id not in ids]


class ByteTrack:
    """ByteTrack (Zhang et al., 2022) over one class's boxes, frame after frame.

    Each frame: confident detections (score >= `track_high_thresh`) are matched to tracked and lost
    tracks, by IoU (weighted by score with `fuse_score`) after a Kalman prediction, at cost at most
    `match_thresh`; tracks still unmatched are tried on the weak detections (between
    `track_low_thresh` and `track_high_thresh`) at IoU cost 0.5, and become lost otherwise. Tracks
    born last frame are confirmed by a second match (cost 0.7) or dropped; confident detections left
    over start tracks when at least `new_track_thresh`. Lost tracks are dropped after `track_buffer`
    frames, and of a tracked and a lost track on the same box (IoU > 0.85) the younger goes.
    """

    def __init__(self, track_high_thresh: float, track_low_thresh: float, new_track_thresh: float,
                 match_thresh: float, fuse_score: bool = True, track_buffer: int = 30):
        self.high, self.low, self.new = track_high_thresh, track_low_thresh, new_track_thresh
        self.match_thresh, self.fuse_score, self.max_frames_lost = match_thresh, fuse_score, int(track_buffer)
        self.kf = KalmanXYAH()
        self.reset()

    def reset(self) -> None:
        self.tracked: list[_Track] = []
        self.lost: list[_Track] = []
        self.removed_ids: deque[int] = deque(maxlen=1000)  # ids of the latest removals, repeats included
        self.frame_id = 0
        self._last_id = 0

    @property
    def idle(self) -> bool:
        """No tracked or lost tracks: a frame without detections changes nothing but the frame count."""
        return not self.tracked and not self.lost

    def _cost(self, tracks: list[_Track], dets: _Candidates, fuse: bool) -> np.ndarray:
        cost = iou_cost(_boxes(tracks), dets.xyxy)
        return 1 - (1 - cost) * dets.score[None, :] if fuse and cost.size else cost

    def update(self, xyxy: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame's boxes and scores -> (xyxy float32, track ids, input row) of its confirmed tracks."""
        self.frame_id += 1
        dets = _Candidates.of(xyxy, scores)
        high = dets[dets.score >= self.high]
        weak = dets[(dets.score > self.low) & (dets.score < self.high)]

        unconfirmed = [t for t in self.tracked if not t.is_activated]
        pool = _union([t for t in self.tracked if t.is_activated], self.lost)
        self._predict(pool)
        matched, refound, lost, removed = [], [], [], []

        pairs, left_tracks, left_dets = assign(self._cost(pool, high, self.fuse_score), self.match_thresh)
        for r, c in pairs:
            (matched if pool[r].state == TRACKED else refound).append(pool[r])
            pool[r].update(self.kf, high, c, self.frame_id)

        still = [pool[r] for r in left_tracks if pool[r].state == TRACKED]  # lost tracks never take weak boxes
        pairs, unmatched, _ = assign(self._cost(still, weak, False), 0.5)
        for r, c in pairs:
            still[r].update(self.kf, weak, c, self.frame_id)
            matched.append(still[r])
        for r in unmatched:
            still[r].state = LOST
            lost.append(still[r])

        high = high[left_dets]
        pairs, unmatched, left_dets = assign(self._cost(unconfirmed, high, self.fuse_score), 0.7)
        for r, c in pairs:
            unconfirmed[r].update(self.kf, high, c, self.frame_id)
            matched.append(unconfirmed[r])
        for r in unmatched:
            unconfirmed[r].state = REMOVED
            removed.append(unconfirmed[r])

        for c in left_dets:
            if high.score[c] < self.new:
                continue
            self._last_id += 1
            mean, cov = self.kf.initiate(high.xyah[c])
            matched.append(_Track(mean, cov, self._last_id, self.frame_id, int(high.index[c])))

        for track in self.lost:
            if self.frame_id - track.frame_id > self.max_frames_lost:
                track.state = REMOVED
                removed.append(track)

        self._merge(matched, refound, lost, removed)
        out = [t for t in self.tracked if t.is_activated]
        return (_boxes(out).astype(np.float32), np.array([t.track_id for t in out], np.int64),
                np.array([t.det_index for t in out], np.int64))

    def _predict(self, tracks: list[_Track]) -> None:
        """Kalman-predict `tracks` one frame; tracks not currently tracked keep their height still."""
        if not tracks:
            return
        means = np.array([t.mean for t in tracks])
        means[[t.state != TRACKED for t in tracks], 7] = 0
        means, covs = self.kf.predict(means, np.array([t.cov for t in tracks]))
        for track, mean, cov in zip(tracks, means, covs):
            track.mean, track.cov = mean, cov

    def _merge(self, matched: list[_Track], refound: list[_Track], lost: list[_Track], removed: list[_Track]) -> None:
        """End of frame: rebuild the tracked and lost lists from this frame's outcomes."""
        tracked = _union(_union([t for t in self.tracked if t.state == TRACKED], matched), refound)
        # Tracks removed this frame stay in the lost list until the next one (as in ByteTrack).
        lost_now = _without(_without(self.lost, (t.track_id for t in tracked)) + lost, self.removed_ids)
        self.tracked, self.lost = _drop_duplicates(tracked, lost_now)
        self.removed_ids.extend(t.track_id for t in removed)


def _drop_duplicates(tracked: list[_Track], lost: list[_Track]) -> tuple[list[_Track], list[_Track]]:
    """Of each tracked/lost pair on the same box (IoU > 0.85), drop the one matched over fewer frames."""
    cost = iou_cost(_boxes(tracked), _boxes(lost))
    drop_tracked, drop_lost = set(), set()
    for p, q in zip(*np.nonzero(cost < 0.15)):
        if tracked[p].frame_id - tracked[p].start_frame > lost[q].frame_id - lost[q].start_frame:
            drop_lost.add(q)
        else:
            drop_tracked.add(p)
    return ([t for i, t in enumerate(tracked) if i not in drop_tracked],
            [t for i, t in enumerate(lost) if i not in drop_lost])


# -- BoT-SORT (ultralytics) -----------------------------------------------------------------------


class _BoxesView:
    """The Results-like view ultralytics' trackers read: conf, cls, xywh, boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        x1, y1, x2, y2 = self.xyxy.T
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> "_BoxesView":
        return _BoxesView(self.xyxy[index], self.conf[index], self.cls[index])


class _BotSort:
    """ultralytics' BOTSORT behind ByteTrack's interface (ultralytics, hence torch, is imported here)."""

    def __init__(self, config: dict[str, Any], track_buffer: int):
        from models._ultralytics import load_ultralytics

        load_ultralytics()
        from ultralytics.trackers.bot_sort import BOTSORT

        args = {k: v for k, v in config.items() if k not in ("track_buffer_s", "class_aware")}
        self.inner = BOTSORT(SimpleNamespace(**args, track_buffer=track_buffer))
        self.max_frames_lost = self.inner.max_frames_lost

    @property
    def idle(self) -> bool:
        return not self.inner.tracked_stracks and not self.inner.lost_stracks

    @property
    def frame_id(self) -> int:
        return self.inner.frame_id

    @frame_id.setter
    def frame_id(self, value: int) -> None:
        self.inner.frame_id = value

    def update(self, dets: Detections, frame_bgr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As `ByteTrack.update`; `frame_bgr` feeds the camera-motion compensation."""
        out = self.inner.update(_BoxesView(dets.xyxy, dets.confidence, dets.class_id.astype(np.float32)), frame_bgr)
        if len(out) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return out[:, :4].astype(np.float32), out[:, 4].astype(np.int64), out[:, 7].astype(np.int64)


# -- the tracker the pipeline uses --------------------------------------------------------------


class Tracker:
    """Assigns stable `tracker_id`s to detections frame after frame."""

    def __init__(self, config: str | Path | dict[str, Any] = "bytetrack", frame_rate: float = 1.0):
        self.config = check_tracker_config(dict(config)) if isinstance(config, dict) else load_tracker_config(config)
        if not _is_number(frame_rate) or not 0 < frame_rate < math.inf:
            raise ValueError(f"frame_rate must be positive, got {frame_rate!r}")
        self.frame_rate = frame_rate
        self.class_aware = bool(self.config.get("class_aware", True))
        # BoT-SORT's camera-motion compensation reads the frame; ByteTrack never does.
        self.uses_image = self.config["tracker_type"] == "botsort" and self.config.get("gmc_method") not in (None, "none")
        self._trackers: dict[int, ByteTrack | _BotSort] = {}
        self._next_id = 1
        self._id_map: dict[tuple[int, int], int] = {}

    def _make(self) -> ByteTrack | _BotSort:
        """A tracker for one class, its buffer converted from seconds to analysed frames."""
        cfg = self.config
        buffer = max(1, int(round(float(cfg.get("track_buffer_s", 5.0)) * self.frame_rate)))
        if cfg["tracker_type"] == "botsort":
            return _BotSort(cfg, buffer)
        return ByteTrack(cfg["track_high_thresh"], cfg["track_low_thresh"], cfg["new_track_thresh"],
                         cfg["match_thresh"], cfg["fuse_score"], buffer)

    def reset(self) -> None:
        """Forget all tracks (a new video)."""
        self._trackers.clear()
        self._id_map.clear()
        self._next_id = 1

    def update(self, detections: Detections, frame_bgr: np.ndarray | None = None) -> Detections:
        """Track one frame's detections; returns the tracked ones with `tracker_id` set.

        Detections that no track claims this frame (e.g. a first low-confidence sighting) are dropped,
        as in ultralytics' own track mode. `frame_bgr` feeds BoT-SORT's camera-motion compensation.
        """
        if self.class_aware:
            keys = sorted(set(self._trackers) | set(np.unique(detections.class_id).tolist()))
        else:
            keys = [-1]
        kept: list[Detections] = []
        for key in keys:
            mask = detections.class_id == key if self.class_aware else np.ones(len(detections), bool)
            sub = detections[mask]
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = self._trackers[key] = self._make()
            # Every class tracker advances each frame so its lost tracks age in real time. A tracker
            # without tracks or detections only counts the frame: do just that (same state).
            if not len(sub) and not self.uses_image and tracker.idle:
                tracker.frame_id += 1
                continue
            if isinstance(tracker, ByteTrack):
                boxes, local_ids, rows = tracker.update(sub.xyxy, sub.confidence)
            else:
                boxes, local_ids, rows = tracker.update(sub, frame_bgr)
            if not len(rows):
                continue
            tracked = sub[rows]
            tracked.xyxy = boxes
            tracked.tracker_id = np.array([self._global_id(key, int(i)) for i in local_ids], dtype=np.int64)
            kept.append(tracked)
        return Detections.merge(kept)

    def _global_id(self, key: int, local_id: int) -> int:
        gid = self._id_map.get((key, local_id))
        if gid is None:
            gid = self._id_map[(key, local_id)] = self._next_id
            self._next_id += 1
        return gid

    __call__ = update


class BoxPredictor:
    """Boxes for frames the detector skipped: each track of the last detected frame, moved on at its velocity.

    `observe(tracked, t)` takes a detected frame's tracked boxes; `predict(t)` returns them moved to
    time `t` at each track's velocity between its last two sightings (held still after a first
    sighting, or when the previous sighting is more than `max_gap_s` older), clipped to `frame_size`.
    Ids, classes and confidences carry over, so tracks keep their ids between detected frames.
    """

    def __init__(self, frame_size: tuple[int, int] | None = None, max_gap_s: float = 1.0):
        if not max_gap_s > 0:
            raise ValueError(f"max_gap_s must be positive, got {max_gap_s!r}")
        self.frame_size, self.max_gap_s = frame_size, float(max_gap_s)
        self._last: Detections = Detections.empty()
        self._last_t: float | None = None
        self._velocity = np.zeros((0, 4), dtype=np.float32)
        self._seen: dict[int, tuple[float, np.ndarray]] = {}  # tracker id -> (time, box) at its last sighting

    def reset(self) -> None:
        self.__init__(self.frame_size, self.max_gap_s)

    def observe(self, tracked: Detections, t: float) -> None:
        """Remember a detected frame's tracked boxes and update each track's velocity."""
        velocity = np.zeros((len(tracked), 4), dtype=np.float32)
        for row, (tid, box) in enumerate(zip(tracked.tracker_id, tracked.xyxy)):
            if tid < 0:
                continue
            seen = self._seen.get(int(tid))
            if seen is not None and 0 < t - seen[0] <= self.max_gap_s:
                velocity[row] = (box - seen[1]) / (t - seen[0])
            self._seen[int(tid)] = (t, box.copy())
        self._last, self._last_t, self._velocity = tracked, t, velocity
        # Forget tracks not seen for long, so the map stays small on long videos.
        if len(self._seen) > 256:
            self._seen = {k: v for k, v in self._seen.items() if t - v[0] <= self.max_gap_s}

    def predict(self, t: float, frame_index: int = -1) -> Detections:
        """The last detected frame's tracks moved on to time `t`."""
        out = self._last[np.arange(len(self._last))]
        if self._last_t is not None and len(out):
            out.xyxy = out.xyxy + self._velocity * np.float32(t - self._last_t)
            if self.frame_size is not None:
                w, h = self.frame_size
                out.xyxy = np.clip(out.xyxy, 0, [w, h, w, h]).astype(np.float32)
        out.frame_index = np.full(len(out), frame_index, dtype=np.int64)
        return out
