"""The shipped anatomy model: one weights file holding the segmenter and its CVS head.

`AnatomyModel(frames)` gives, per RGB frame, a label map at frame size, per-class area fractions and
the three CVS criteria as probabilities.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.anatomy.data import CLASSES, CRITERIA
from models.registry import ModelEntry, resolve_model, verify_weights

DEFAULT_MODEL = "anatomy"
NOTE = ("anatomy masks and CVS criteria come from a model trained on 343 frames of laparoscopic cholecystectomy "
        "(Endoscapes): research outputs for that operation only; not for clinical use")


@dataclass
class AnatomyResult:
    """One frame: `labels` (H, W) class indices, area fraction per foreground class, CVS probabilities."""

    labels: np.ndarray
    areas: dict[str, float]
    cvs: dict[str, float]
    frame_index: int = -1

    @property
    def cvs_achieved_probability(self) -> float:
        """Product of the three criteria (treated as independent): a score for "all three hold"."""
        return float(np.prod([self.cvs[c] for c in CRITERIA]))


def save_anatomy_weights(path: str | Path, net: Any, cvs_head: Any | None, meta: dict[str, Any]) -> Path:
    """Write the single weights file: segmenter state_dict, backbone yaml, CVS head tensors, settings."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    torch.save({"format": "surglens-anatomy/1", "model": state, "yaml": net.yaml, "meta": meta,
                "cvs": None if cvs_head is None else cvs_head.to_state()}, path)
    return path


BACKENDS = ("auto", "torch", "openvino")


def _predict_openvino(compiled: Any, image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`train.predict_labels` on the compiled segmenter, in numpy and OpenCV (no torch in the process)."""
    import cv2

    h, w = size
    x = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    out = compiled([np.ascontiguousarray(x.transpose(2, 0, 1)[None])])
    logits, pooled = out[0], out[1]
    z = logits[0] - logits[0].max(axis=0, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=0, keepdims=True)
    full = cv2.resize(np.ascontiguousarray(logits[0].transpose(1, 2, 0)), (image.shape[1], image.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    labels = full.argmax(2) if full.ndim == 3 else np.zeros(image.shape[:2], np.int64)
    return labels.astype(np.uint8), prob.astype(np.float32), pooled[0]


class AnatomyModel:
    """Callable anatomy segmenter + CVS head: `model(frames) -> list[AnatomyResult]`.

    `backend`: "torch", "openvino" (the segmenter converted once and cached; see models._openvino), or "auto"
    (OpenVINO on the CPU when the optional package is installed, else torch). `.backend` is what runs.
    On OpenVINO nothing here imports torch: the settings and CVS head come from a plain copy of the
    weights file (models._state) and a missing conversion is made by a child process.
    """

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", threads: int | None = None,
                 backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"anatomy backend must be one of {BACKENDS}, got {backend!r}")
        from models._openvino import openvino_available
        from models.anatomy.cvs import CVSHead

        self.entry: ModelEntry = resolve_model(weights or DEFAULT_MODEL)
        verify_weights(self.entry, required=self.entry.shipped)
        self.device, self.threads = device, threads
        self.backend, self.backend_note = "torch", None
        self.net: Any = None
        self._runner: Any = None
        self._compiled: Any = None
        want_openvino = backend == "openvino" or (backend == "auto" and device == "cpu")
        if backend == "auto" and device == "cpu" and not openvino_available():
            self.backend_note = "openvino not installed (pip install 'openvino>=2024,<2027')"
            want_openvino = False
        ckpt = self._read(torch_free=want_openvino and "torch" not in sys.modules)
        meta = ckpt.get("meta", {})
        cfg = meta.get("config", {})
        self.classes = list(meta.get("classes", CLASSES))
        self.input_size = tuple(int(v) for v in cfg.get("input_size", (256, 448)))
        self.cvs_head = CVSHead.from_state(ckpt["cvs"]) if ckpt.get("cvs") else None
        self.meta = meta
        self._ckpt = ckpt
        if want_openvino:
            self._load_openvino(required=backend == "openvino", threads=threads)
        if self.backend == "torch":
            self._build_torch()
        del self._ckpt

    @property
    def sha256(self) -> str:
        """The weights' SHA-256 (the one verify_weights checked, else hashed here): the key of derived copies."""
        from models.registry import SHA256_KEY, weights_sha256

        return str(self.entry.metadata.get(SHA256_KEY) or weights_sha256(self.entry.weights))

    def _read(self, torch_free: bool) -> dict[str, Any]:
        try:
            if torch_free:
                from models._state import plain_state

                ckpt = plain_state(self.entry.weights, self.sha256, trusted=True)
            else:
                import torch

                ckpt = torch.load(str(self.entry.weights), map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file: say which
            raise ValueError(f"cannot read anatomy weights {str(self.entry.weights)!r}: {exc}") from None
        if not isinstance(ckpt, dict) or "model" not in ckpt or "yaml" not in ckpt:
            raise ValueError(f"{str(self.entry.weights)!r} is not an anatomy weights file (no model/yaml)")
        return ckpt

    def _build_torch(self) -> None:
        import torch

        from models.anatomy.net import AnatomyNet

        ckpt = self._ckpt
        if isinstance(next(iter(ckpt["model"].values()), None), np.ndarray):  # a plain copy: torch needs the tensors
            ckpt = self._read(torch_free=False)
        cfg = self.meta.get("config", {})
        self.net = AnatomyNet(ckpt["yaml"], num_classes=len(self.classes), width=int(cfg.get("width", 64)))
        self.net.load_state_dict(ckpt["model"])
        self.net.eval().to(self.device)
        if self.threads:
            torch.set_num_threads(self.threads)
        self._runner = self.net

    def _load_openvino(self, required: bool, threads: int | None) -> None:
        from models._openvino import compiled_ir, openvino_cache_dir, run_child

        h, w = self.input_size
        path = openvino_cache_dir() / f"anatomy-{self.sha256[:16]}-{h}x{w}.xml"
        try:
            if not path.is_file():
                if "torch" in sys.modules:
                    self._convert(path)
                else:
                    run_child(["convert-anatomy", str(self.entry.weights)])
            self._compiled = compiled_ir(path, threads)
        except Exception as exc:
            if required:
                raise
            self.backend_note = f"OpenVINO conversion failed ({type(exc).__name__}: {exc}); using torch"
            return
        self.backend = "openvino"

    def _convert(self, path: Path) -> None:
        """Convert the torch segmenter (logits and pooled features as its two outputs) into the IR at `path`."""
        import torch

        from models._openvino import compiled_torch_module

        self._build_torch()

        class Both(torch.nn.Module):
            def __init__(self, net: Any):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net.forward_with_features(x)

        h, w = self.input_size
        compiled_torch_module(Both(self.net), torch.zeros(1, 3, h, w), path.stem, self.threads)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.entry.metadata

    def predict_raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label map at frame size, (C, h, w) probabilities at input size, pooled encoder features."""
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an RGB (H, W, 3) array, got shape {frame.shape}")
        if self._compiled is not None:
            return _predict_openvino(self._compiled, frame, self.input_size)
        from models.anatomy.train import predict_labels

        return predict_labels(self._runner, frame, self.input_size)

    def cvs_probabilities(self, prob: np.ndarray, pooled: np.ndarray) -> dict[str, float]:
        from models.anatomy.cvs import frame_features

        if self.cvs_head is None:
            return {c: float("nan") for c in CRITERIA}
        x = frame_features(prob, pooled, self.cvs_head.feature_set)[None]
        return {c: float(p) for c, p in zip(CRITERIA, self.cvs_head.predict_proba(x)[0])}

    def __call__(self, frames: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None) -> list[AnatomyResult]:
        indices = list(frame_indices) if frame_indices is not None else [-1] * len(frames)
        out = []
        for frame, index in zip(frames, indices):
            labels, prob, pooled = self.predict_raw(frame)
            counts = np.bincount(labels.ravel(), minlength=len(self.classes)) / labels.size
            out.append(AnatomyResult(
                labels=labels, areas={c: float(counts[k]) for k, c in enumerate(self.classes) if k > 0},
                cvs=self.cvs_probabilities(prob, pooled), frame_index=int(index),
            ))
        return out
