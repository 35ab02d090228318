"""Per-frame encoder of the phase model: the instrument detector's pooled features + tool presence.

One detector forward pass gives both the pooled neck/backbone activations (scene appearance) and
the boxes, whose per-class maximum confidence is the tool-presence vector. Features depend on the
exact detector weights, so the encoder's `identity` (name, version, SHA-256 of the weights) goes
into the phase model's metadata and into the feature cache's key.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from models.detections import Detections
from video import file_sha256

DEFAULT_PRESENCE_CONF = 0.25


class DetectorEncoder:
    """Callable: RGB frames -> (N, D + C) features = pooled detector activations, tool presence.

    `detector` may be shared with the detection stage (same weights loaded once); its confidence
    threshold must not exceed `presence_conf`, since presence below the detector's threshold is lost.
    """

    def __init__(self, weights: str | Path | None = None, detector: Any = None, presence_conf: float = DEFAULT_PRESENCE_CONF):
        if detector is None:
            from models.detector import Detector

            detector = Detector(weights, conf=presence_conf)
        if detector.conf > presence_conf:
            raise ValueError(
                f"the shared detector keeps boxes from confidence {detector.conf}, above the phase model's "
                f"presence threshold {presence_conf}: give the phase stage its own detector"
            )
        self.detector = detector
        self.presence_conf = float(presence_conf)

    @cached_property
    def identity(self) -> dict[str, Any]:
        """What the features depend on: the detector weights (name, version, SHA-256) and settings."""
        entry = self.detector.entry
        return {
            "kind": "detector",
            "detector_name": entry.name,
            "detector_version": entry.metadata.get("version"),
            "detector_sha256": file_sha256(entry.weights),
            "imgsz": self.detector.imgsz,
            "feature_layers": list(self.detector.feature_layers),
            "presence_conf": self.presence_conf,
            "classes": list(self.detector.class_names),
        }

    @property
    def key(self) -> str:
        """Short id of the identity, for feature caches."""
        ident = self.identity
        return f"detector-{ident['detector_sha256'][:12]}-{ident['imgsz']}-p{self.presence_conf:g}"

    def presence(self, detections: Sequence[Detections]) -> np.ndarray:
        """(N, C) per-class maximum confidence, 0 below `presence_conf`."""
        out = np.stack([self.detector.presence(d) for d in detections]) if detections else np.zeros((0, len(self.detector.class_names)))
        return np.where(out >= self.presence_conf, out, 0.0).astype(np.float32)

    def __call__(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        if len(frames) == 0:
            raise ValueError("no frames to encode")
        detections, pooled = self.detector.predict(frames)
        return np.concatenate([pooled, self.presence(detections)], axis=1).astype(np.float32)


def encode_frames(
    encoder: DetectorEncoder, frames: Iterable[tuple[float, np.ndarray]], batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Encode (time, RGB) pairs in batches -> (times (N,), features (N, D))."""
    times: list[float] = []
    parts: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    for t, rgb in frames:
        times.append(t)
        batch.append(rgb)
        if len(batch) == batch_size:
            parts.append(encoder(batch))
            batch = []
    if batch:
        parts.append(encoder(batch))
    if not parts:
        raise ValueError("no frames to encode")
    return np.asarray(times, dtype=np.float64), np.concatenate(parts)
