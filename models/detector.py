"""The instrument detector: ultralytics YOLO weights behind our own `Detections` type.

Class names come from the weights' metadata.json (models/registry.py), never from code. One forward
pass gives both boxes and a pooled feature vector per frame (a forward hook on chosen layers), so
the phase model can reuse the detector as its encoder without a second pass.

Boxes come from OpenVINO when it is installed (2-3x faster than torch on this CPU, the same boxes),
run without ultralytics or torch (models._openvino.OpenVINOBoxes: a process that only detects never
imports torch, 500 MiB less memory), and from torch otherwise; `backend` or the
SURGLENS_DETECTOR_BACKEND variable forces one ("openvino-int8": the NNCF-quantised export, used
only when asked for, made by `surglens detector-backends ... --calibration`). The OpenVINO graph
has no pooled features: the first `predict` (features) call runs torch and switches the detector
to torch from then on, so boxes and features keep coming from one forward pass.
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models._ultralytics import load_ultralytics
from models.detections import Detections
from models.registry import SHA256_KEY, ModelEntry, resolve_model, verify_weights, weights_sha256

DEFAULT_MODEL = "detector"
# Neck outputs (P3, P4, P5) and the deepest backbone block of YOLO11: pooled, they describe the scene.
FEATURE_LAYERS = (10, 16, 19, 22)
BACKENDS = ("auto", "torch", "openvino", "openvino-int8")
BACKEND_ENV = "SURGLENS_DETECTOR_BACKEND"


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
        backend: str | None = None,
    ):
        backend = backend or os.environ.get(BACKEND_ENV) or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"detector backend must be one of {BACKENDS}, got {backend!r}")
        self.entry: ModelEntry = resolve_model(weights or DEFAULT_MODEL)
        # ultralytics unpickles the file: check it first (shipped weights must carry their SHA-256).
        verify_weights(self.entry, required=self.entry.shipped)
        self.imgsz = int(imgsz or self.entry.metadata.get("input_size", 320))
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.device = device or "cpu"
        self.feature_layers = tuple(feature_layers)
        self._pooled: dict[int, Any] = {}
        # The last batch's frames and results: stages sharing this detector (detection, phase) ask for
        # the same frames in turn, and get one forward pass. Holding the frames keeps their ids unique.
        self._last: tuple[list[np.ndarray], list[Detections], np.ndarray | None] | None = None
        # `backend` is what runs boxes now; `backend_note` says why "auto" fell back to torch.
        self.backend, self.backend_note = "torch", None
        self._fast: Any = None
        if backend != "torch":
            self._load_openvino(required=backend != "auto", int8=backend == "openvino-int8")
        # The OpenVINO path never builds the torch model (nor imports torch): names come from its export.
        names = self._fast.names if self._fast is not None else self.model.names
        model_names = [names[i] for i in sorted(names)]
        self.class_names: list[str] = self.entry.classes or model_names
        if len(self.class_names) != len(model_names):
            raise ValueError(
                f"metadata of {str(self.entry.weights)!r} lists {len(self.class_names)} classes, the weights have {len(model_names)}"
            )

    @cached_property
    def model(self) -> Any:
        """The ultralytics torch model (built on first use: the torch backend, pooled features, Grad-CAM)."""
        ul = load_ultralytics()
        model = ul.YOLO(str(self.entry.weights), task="detect")
        layers = model.model.model
        for index in self.feature_layers:
            layers[index].register_forward_hook(self._make_hook(index))
        return model

    def _load_openvino(self, required: bool, int8: bool = False) -> None:
        from models._openvino import OpenVINOBoxes, exported_model_dir, openvino_available

        if self.device != "cpu":
            if required:
                raise ValueError(f"the OpenVINO backend runs on the CPU, got device {self.device!r}")
            return
        if not required and not openvino_available():
            self.backend_note = "openvino not installed (pip install 'openvino>=2024,<2027')"
            return
        try:
            export = exported_model_dir(self.entry.weights, self.weights_sha256, self.imgsz, int8=int8)
            self._fast = OpenVINOBoxes(export, self.imgsz, self.conf, self.iou, self.max_det)
        except Exception as exc:
            if required:
                raise
            self.backend_note = f"OpenVINO export or load failed ({type(exc).__name__}: {exc}); using torch"
            return
        self.backend = "openvino-int8" if int8 else "openvino"

    @property
    def precision(self) -> str:
        """The inference precision boxes come at: "f32" on torch, the OpenVINO CPU's ("bf16" where it has it)."""
        return self._fast.precision if self.backend != "torch" and self._fast is not None else "f32"

    @cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the weights file (the verified one metadata.json records): the key of its OpenVINO export."""
        return str(self.entry.metadata.get(SHA256_KEY) or weights_sha256(self.entry.weights))

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
        """Detections per RGB frame and the (N, D) pooled features of the same forward pass.

        Pooled features exist only in the torch model: on the OpenVINO backend this call runs torch
        and switches the detector to torch for every later call (`backend_note` says so).
        """
        if self.backend != "torch":
            self.backend, self.backend_note = "torch", "pooled features were requested (torch only); using torch"
        return self._run(frames, frame_indices, features=True)

    def __call__(self, frames: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None) -> list[Detections]:
        """Detections per RGB frame (no features: the fastest backend)."""
        return self._run(frames, frame_indices, features=False)[0]

    def remember(self, frames: Sequence[np.ndarray], detections: Sequence[Detections]) -> None:
        """Serve `detections` for exactly these frame arrays on the next call, without running the model.

        For a stage that detects only some frames (detection every k-th frame) and shares this
        detector with a stage that asks for every frame: the latter gets these boxes, not a new pass.
        """
        if len(frames) != len(detections):
            raise ValueError(f"remember needs one Detections per frame, got {len(detections)} for {len(frames)} frames")
        self._last = (list(frames), list(detections), None)

    def _run(
        self, frames: Sequence[np.ndarray], frame_indices: Sequence[int] | None, features: bool
    ) -> tuple[list[Detections], np.ndarray]:
        if len(frames) == 0:
            return [], np.zeros((0, 0), dtype=np.float32)
        indices = list(frame_indices) if frame_indices is not None else [-1] * len(frames)
        torch_pass = self.backend == "torch"
        last = self._last
        if (
            last is not None
            and len(last[0]) == len(frames)
            and all(a is b for a, b in zip(last[0], frames))
            and (last[2] is not None or not features)
        ):
            return [_with_frame_index(d, i) for d, i in zip(last[1], indices)], last[2]
        self._pooled.clear()
        if torch_pass:
            # ultralytics expects BGR arrays.
            bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
            results = self.model.predict(bgr, imgsz=self.imgsz, conf=self.conf, iou=self.iou, max_det=self.max_det,
                                         device=self.device, verbose=False)
            detections = [Detections.from_ultralytics(r, i) for r, i in zip(results, indices)]
            pooled = np.concatenate([self._pooled[i] for i in self.feature_layers], axis=1).astype(np.float32)
        else:
            detections = [
                Detections(xyxy=b, confidence=c, class_id=k, frame_index=np.full(len(b), i, dtype=np.int64))
                for (b, c, k), i in zip(self._fast(list(frames), self.conf, self.iou, self.max_det), indices)
            ]
            pooled = None
        self._last = (list(frames), detections, pooled)
        return detections, pooled  # type: ignore[return-value]

    def presence(self, detections: Detections) -> np.ndarray:
        """Per-class maximum confidence of one frame's detections (0 where a tool is absent)."""
        out = np.zeros(len(self.class_names), dtype=np.float32)
        np.maximum.at(out, detections.class_id, detections.confidence)
        return out


def _with_frame_index(det: Detections, frame_index: int) -> Detections:
    out = det[np.arange(len(det))]  # a copy: callers may set tracker ids on what they get
    out.frame_index = np.full(len(out), frame_index, dtype=np.int64)
    return out
