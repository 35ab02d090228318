"""The shipped anatomy model: one weights file holding the segmenter and its CVS head.

`AnatomyModel(frames)` gives, per RGB frame, a label map at frame size, per-class area fractions and
the three CVS criteria as probabilities.
"""
from __future__ import annotations

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


class _OpenVINONet:
    """The segmenter's `forward_with_features` on a compiled OpenVINO model (same inputs and outputs, torch tensors)."""

    def __init__(self, compiled: Any):
        self.compiled = compiled

    def eval(self) -> "_OpenVINONet":
        return self

    def forward_with_features(self, x: Any) -> tuple[Any, Any]:
        import torch

        out = self.compiled([x.numpy()])
        return torch.from_numpy(out[0]), torch.from_numpy(out[1])


class AnatomyModel:
    """Callable anatomy segmenter + CVS head: `model(frames) -> list[AnatomyResult]`.

    `backend`: "torch", "openvino" (the segmenter converted once and cached; see models._openvino), or "auto"
    (OpenVINO on the CPU when the optional package is installed, else torch). `.backend` is what runs.
    """

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", threads: int | None = None,
                 backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"anatomy backend must be one of {BACKENDS}, got {backend!r}")
        import torch

        from models.anatomy.cvs import CVSHead
        from models.anatomy.net import AnatomyNet

        self.entry: ModelEntry = resolve_model(weights or DEFAULT_MODEL)
        verify_weights(self.entry, required=self.entry.shipped)
        try:
            ckpt = torch.load(str(self.entry.weights), map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file: say which
            raise ValueError(f"cannot read anatomy weights {str(self.entry.weights)!r}: {exc}") from None
        if not isinstance(ckpt, dict) or "model" not in ckpt or "yaml" not in ckpt:
            raise ValueError(f"{str(self.entry.weights)!r} is not an anatomy weights file (no model/yaml)")
        meta = ckpt.get("meta", {})
        cfg = meta.get("config", {})
        self.classes = list(meta.get("classes", CLASSES))
        self.input_size = tuple(int(v) for v in cfg.get("input_size", (256, 448)))
        self.net = AnatomyNet(ckpt["yaml"], num_classes=len(self.classes), width=int(cfg.get("width", 64)))
        self.net.load_state_dict(ckpt["model"])
        self.net.eval().to(device)
        self.device = device
        self.cvs_head = CVSHead.from_state(ckpt["cvs"]) if ckpt.get("cvs") else None
        self.meta = meta
        if threads:
            torch.set_num_threads(threads)
        self.backend, self.backend_note = "torch", None
        self._runner: Any = self.net
        if backend == "openvino" or (backend == "auto" and device == "cpu"):
            self._load_openvino(required=backend == "openvino", threads=threads)

    def _load_openvino(self, required: bool, threads: int | None) -> None:
        import torch

        from models._openvino import compiled_torch_module, openvino_available
        from models.registry import SHA256_KEY, weights_sha256

        if not required and not openvino_available():
            self.backend_note = "openvino not installed (pip install 'surglens[fast]')"
            return
        h, w = self.input_size

        class Both(torch.nn.Module):  # logits and pooled features as the model's two outputs
            def __init__(self, net: Any):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net.forward_with_features(x)

        # verify_weights has checked the file against the recorded SHA-256: only unrecorded weights are hashed here
        sha = str(self.entry.metadata.get(SHA256_KEY) or weights_sha256(self.entry.weights))
        key = f"anatomy-{sha[:16]}-{h}x{w}"
        try:
            self._runner = _OpenVINONet(compiled_torch_module(Both(self.net), torch.zeros(1, 3, h, w), key, threads))
        except Exception as exc:
            if required:
                raise
            self.backend_note = f"OpenVINO conversion failed ({type(exc).__name__}: {exc}); using torch"
            return
        self.backend = "openvino"

    @property
    def metadata(self) -> dict[str, Any]:
        return self.entry.metadata

    def predict_raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label map at frame size, (C, h, w) probabilities at input size, pooled encoder features."""
        from models.anatomy.train import predict_labels

        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an RGB (H, W, 3) array, got shape {frame.shape}")
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
