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
NOTE = "anatomy masks and CVS criteria are research outputs from 343 training frames; not for clinical use"


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


class AnatomyModel:
    """Callable anatomy segmenter + CVS head: `model(frames) -> list[AnatomyResult]`."""

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", threads: int | None = None):
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

    @property
    def metadata(self) -> dict[str, Any]:
        return self.entry.metadata

    def predict_raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label map at frame size, (C, h, w) probabilities at input size, pooled encoder features."""
        from models.anatomy.train import predict_labels

        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an RGB (H, W, 3) array, got shape {frame.shape}")
        return predict_labels(self.net, frame, self.input_size)

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
