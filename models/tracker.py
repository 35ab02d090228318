"""Multi-object tracking of instruments: ultralytics ByteTrack / BoT-SORT over our `Detections`.

`Tracker(config)` is called once per analysed frame with that frame's detections and returns them
with `tracker_id` set; `reset()` starts a new video. Track lifetimes in the YAML are in seconds and
are converted with the analysed frame rate.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

from models._ultralytics import load_ultralytics
from models.detections import Detections
from models.taxonomy import ASSETS_DIR

TRACKERS_DIR = ASSETS_DIR / "trackers"


def load_tracker_config(ref: str | Path) -> dict[str, Any]:
    """A shipped tracker name ("bytetrack", "botsort") or a YAML path -> settings dict."""
    path = Path(ref)
    if not path.exists():
        path = TRACKERS_DIR / f"{ref}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in TRACKERS_DIR.glob("*.yaml"))
        raise ValueError(f"unknown tracker {str(ref)!r}; shipped: {known}, or give a YAML path")
    cfg = yaml.safe_load(path.read_text())
    if cfg.get("tracker_type") not in ("bytetrack", "botsort"):
        raise ValueError(f"tracker_type {cfg.get('tracker_type')!r} in {str(path)!r} is not bytetrack or botsort")
    return cfg


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


class Tracker:
    """Assigns stable `tracker_id`s to detections frame after frame."""

    def __init__(self, config: str | Path | dict[str, Any] = "bytetrack", frame_rate: float = 1.0):
        self.config = dict(config) if isinstance(config, dict) else load_tracker_config(config)
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate!r}")
        self.frame_rate = frame_rate
        self.class_aware = bool(self.config.get("class_aware", True))
        # BoT-SORT's camera-motion compensation reads the frame; ByteTrack never does.
        self.uses_image = self.config.get("tracker_type") == "botsort" and self.config.get("gmc_method") not in (None, "none")
        self._trackers: dict[int, Any] = {}
        self._next_id = 1
        self._id_map: dict[tuple[int, int], int] = {}

    def _make(self) -> Any:
        load_ultralytics()
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker

        args = dict(self.config)
        args["track_buffer"] = max(1, int(round(float(args.pop("track_buffer_s", 5.0)) * self.frame_rate)))
        args.pop("class_aware", None)
        ns = SimpleNamespace(**args)
        return BOTSORT(ns) if args["tracker_type"] == "botsort" else BYTETracker(ns)

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
            tracker = self._trackers.setdefault(key, self._make())
            # Every class tracker advances each frame so its lost tracks age in real time. A ByteTrack
            # tracker without tracks or detections only counts the frame: do just that (same state).
            if not len(sub) and not self.uses_image and not tracker.tracked_stracks and not tracker.lost_stracks:
                tracker.frame_id += 1
                continue
            out = tracker.update(_BoxesView(sub.xyxy, sub.confidence, sub.class_id.astype(np.float32)), frame_bgr)
            if len(out) == 0:
                continue
            idx = out[:, 7].astype(int)
            local_ids = out[:, 4].astype(int)
            tracked = sub[idx]
            tracked.xyxy = out[:, :4].astype(np.float32)
            tracked.tracker_id = np.array([self._global_id(key, i) for i in local_ids], dtype=np.int64)
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
