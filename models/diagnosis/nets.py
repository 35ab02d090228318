"""Network construction and loading for diagnosis models (torchvision architectures, no downloads).

A diagnosis model folder (models/registry.py) holds `weights.pt` (a state dict) and metadata.json:
kind ("image-classifier" | "image-segmenter"), architecture (a torchvision model name), classes,
input_size, normalisation {mean, std} (RGB, 0..1 scale), modality, and optionally cam_layer (the
module Grad-CAM explains; default: the last convolution).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.registry import ModelEntry, resolve_model

CLASSIFIER = "image-classifier"
SEGMENTER = "image-segmenter"
KINDS = (CLASSIFIER, SEGMENTER)


def build_network(kind: str, architecture: str, num_classes: int) -> nn.Module:
    """An untrained torchvision network (weights=None always: nothing is downloaded)."""
    import torchvision
    from torchvision.models import get_model, list_models

    if kind == CLASSIFIER:
        known = list_models(module=torchvision.models)
        extra: dict[str, Any] = {}
    elif kind == SEGMENTER:
        known = list_models(module=torchvision.models.segmentation)
        extra = {"weights_backbone": None, "aux_loss": False}
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    if architecture not in known:
        raise ValueError(f"unknown {kind} architecture {architecture!r}; torchvision offers {sorted(known)}")
    return get_model(architecture, weights=None, num_classes=num_classes, **extra)


def forward_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a classifier (N, K) or a segmenter (N, K, H, W); torchvision segmenters return a dict."""
    out = net(x)
    return out["out"] if isinstance(out, dict) else out


class TorchImageModel:
    """Shared loading and preprocessing of a diagnosis model folder."""

    kind = ""

    def __init__(self, weights: str | Path | ModelEntry, device: str = "cpu"):
        self.entry = weights if isinstance(weights, ModelEntry) else resolve_model(weights)
        meta = self.entry.metadata
        if meta.get("kind") != self.kind:
            raise ValueError(f"{str(self.entry.weights)!r} is a {meta.get('kind', 'model without kind')!r}, not an {self.kind!r}")
        missing = [k for k in ("architecture", "classes", "input_size") if k not in meta]
        if missing:
            raise ValueError(f"metadata.json beside {str(self.entry.weights)!r} lacks {missing}")
        self.classes: list[str] = list(meta["classes"])
        self.input_size = int(meta["input_size"])
        norm = meta.get("normalisation", {})
        self.mean = np.asarray(norm.get("mean", [0.5, 0.5, 0.5]), dtype=np.float32)
        self.std = np.asarray(norm.get("std", [0.25, 0.25, 0.25]), dtype=np.float32)
        self.device = device
        self.net = build_network(self.kind, meta["architecture"], len(self.classes))
        state = torch.load(self.entry.weights, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(device).eval()

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def metadata(self) -> dict[str, Any]:
        return self.entry.metadata

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> normalised (1, 3, S, S) tensor at the model's input size."""
        return to_tensor(rgb, self.input_size, self.mean, self.std).to(self.device)


def to_tensor(rgb: np.ndarray, size: int, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Resize (whole image, aspect not kept) and normalise one RGB uint8 image to (1, 3, size, size)."""
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    small = (small - mean) / std
    return torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None]


def cam_layer(net: nn.Module, name: str | None = None) -> nn.Module:
    """The module Grad-CAM explains: `name` if given, else the network's last Conv2d."""
    if name:
        return net.get_submodule(name)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("network has no Conv2d layer to explain")
    return convs[-1]
