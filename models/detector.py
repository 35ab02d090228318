"""The instrument detector: ultralytics YOLO weights behind our own `Detections` type.

Class names come from the weights' metadata.json (models/registry.py), never from code. One forward
pass gives both boxes and a pooled feature vector per frame (a forward hook on chosen layers), so
the phase model can reuse the detector as its encoder without a second pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models._ultralytics import load_ultralytics
from models.detections import Detections
from models.registry import ModelEntry, resolve_model, verify_weights

DEFAULT_MODEL = "detector"
# Neck outputs (P3, P4, P5) and the deepest backbone block of YOLO11: pooled, they describe the scene.
FEATURE_LAYERS = (10, 16, 19, 22)


class Detector:
    """Callable instrument detector: `detector(frames) -> list[Detections]`, one per RGB frame."""

    def __init__(
        self,
        weights: str | Path | None = None,
        conf: float = 0.25,
        iou: float = 0.5,
        imgsz: int | None = None,
        device: str | None = None,
        max_det: int = 30,
        feature_layers: Sequence[int] = FEATURE_LAYERS,
    ):
        self.entry: ModelEntry = resolve_model(weights or DEFAULT_MODEL)
        # ultralytics unpickles the file: check it first (shipped weights must carry their SHA-256).
        verify_weights(self.entry, required=self.entry.shipped)
        ul = load_ultralytics()
        self.model = ul.YOLO(str(self.entry.weights), task="detect")
        model_names = [self.model.names[i] for i in sorted(self.model.names)]
        self.class_names: list[str] = self.entry.classes or model_names
        if len(self.class_names) != len(model_names):
            raise ValueError(
                f"metadata of {str(self.entry.weights)!r} lists {len(self.class_names)} classes, the weights have {len(model_names)}"
            )
        self.imgsz = int(imgsz or self.entry.metadata.get("input_size", 320))
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.device = device or "cpu"
        self._pooled: dict[int, Any] = {}
        # The last batch's frames and results: stages sharing this detector (detection, phase) ask for
        # the same frames in turn, and get one forward pass. Holding the frames keeps their ids unique.
        self._last: tuple[list[np.ndarray], list[Detections], np.ndarray] | None = None
        layers = self.model.model.model
        for index in feature_layers:
            layers[index].register_forward_hook(self._make_hook(index))
        self.feature_layers = tuple(feature_layers)

    def _make_hook(self, index: int):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            self._pooled[index] = output.mean(dim=(2, 3)).detach().float().cpu().numpy()

        return hook

    @property
    def metadata(self) -> dict[str, Any]:
        return self.entry.metadata

    def predict(
        self, frames: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None
    ) -> tuple[list[Detections], np.ndarray]:
        """Detections per RGB frame and the (N, D) pooled features of the same forward pass."""
        if len(frames) == 0:
            return [], np.zeros((0, 0), dtype=np.float32)
        indices = list(frame_indices) if frame_indices is not None else [-1] * len(frames)
        last = self._last
        if last is not None and len(last[0]) == len(frames) and all(a is b for a, b in zip(last[0], frames)):
            return [_with_frame_index(d, i) for d, i in zip(last[1], indices)], last[2]
        self._pooled.clear()
        # ultralytics expects BGR arrays.
        results = self.model.predict(
            [np.ascontiguousarray(f[..., ::-1]) for f in frames],
            imgsz=self.imgsz,
            conf=self.conf,
            iou=self.iou,
            max_det=self.max_det,
            device=self.device,
            verbose=False,
        )
        detections = [Detections.from_ultralytics(r, i) for r, i in zip(results, indices)]
        features = np.concatenate([self._pooled[i] for i in self.feature_layers], axis=1).astype(np.float32)
        self._last = (list(frames), detections, features)
        return detections, features

    def __call__(self, frames: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None) -> list[Detections]:
        return self.predict(frames, frame_indices)[0]

    def presence(self, detections: Detections) -> np.ndarray:
        """Per-class maximum confidence of one frame's detections (0 where a tool is absent)."""
        out = np.zeros(len(self.class_names), dtype=np.float32)
        np.maximum.at(out, detections.class_id, detections.confidence)
        return out


def _with_frame_index(det: Detections, frame_index: int) -> Detections:
    out = det[np.arange(len(det))]  # a copy: callers may set tracker ids on what they get
    out.frame_index = np.full(len(out), frame_index, dtype=np.int64)
    return out
