"""`Detections`: the one type instrument boxes have outside the detector."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np


@dataclass
class Detections:
    """Boxes of one frame or of many, as named numpy columns.

    `xyxy` is (N, 4) float32 in pixels of the analysed frame; `tracker_id` is -1 where no tracker
    has assigned one; `frame_index` is the source-video frame each box belongs to.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    frame_index: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        self.tracker_id = (
            np.full(n, -1, dtype=np.int64) if self.tracker_id is None else np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
        )
        self.frame_index = (
            np.full(n, -1, dtype=np.int64) if self.frame_index is None else np.asarray(self.frame_index, dtype=np.int64).reshape(-1)
        )
        for name in ("confidence", "class_id", "tracker_id", "frame_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Detections.{name} has {len(getattr(self, name))} rows, xyxy has {n}")

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> "Detections":
        """Rows by boolean mask, integer array or slice."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(
            self.xyxy[index], self.confidence[index], self.class_id[index], self.tracker_id[index], self.frame_index[index]
        )

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def merge(cls, parts: Iterable["Detections"]) -> "Detections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.tracker_id for p in parts]),
            np.concatenate([p.frame_index for p in parts]),
        )

    @classmethod
    def from_ultralytics(cls, result: Any, frame_index: int = -1) -> "Detections":
        """Convert one ultralytics `Results` object (predict or track) into Detections."""
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return cls.empty()
        tracker_id = boxes.id.cpu().numpy() if getattr(boxes, "id", None) is not None else None
        n = len(boxes)
        return cls(
            xyxy=boxes.xyxy.cpu().numpy(),
            confidence=boxes.conf.cpu().numpy(),
            class_id=boxes.cls.cpu().numpy().astype(np.int64),
            tracker_id=tracker_id,
            frame_index=np.full(n, frame_index, dtype=np.int64),
        )

    def to_columns(self) -> dict[str, np.ndarray]:
        """Flat named columns (for pandas / Parquet)."""
        return {
            "x1": self.xyxy[:, 0], "y1": self.xyxy[:, 1], "x2": self.xyxy[:, 2], "y2": self.xyxy[:, 3],
            "confidence": self.confidence, "class_id": self.class_id,
            "tracker_id": self.tracker_id, "frame_index": self.frame_index,
        }
