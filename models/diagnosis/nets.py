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
    """An untrained network: one of ours (`SURGLENS_ARCHITECTURES`) or torchvision's (weights=None: no downloads)."""
    import torchvision

    if architecture in SURGLENS_ARCHITECTURES:
        want, make = SURGLENS_ARCHITECTURES[architecture]
        if want != kind:
            raise ValueError(f"architecture {architecture!r} is an {want!r}, not an {kind!r}")
        return make(num_classes)
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


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _ResBlock(nn.Module):
    """Two 3x3 convolutions with a residual shortcut (projected when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A small residual classifier for training from scratch on a few hundred images.

    Total stride 16, so the last stage (`stages.3`, the Grad-CAM layer) is an 8x8 map at 128 px and
    14x14 at 224 px, not the 4x4 of ImageNet-style networks at these sizes.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (24, 48, 96, 192), dropout: float = 0.3):
        super().__init__()
        self.stem = _conv_bn(3, widths[0], 2)
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            stages.append(_ResBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class SmallUNet(nn.Module):
    """A four-level U-Net (base width 16) for binary or few-class masks, trained from scratch."""

    def __init__(self, num_classes: int, base: int = 16, levels: int = 4):
        super().__init__()
        widths = [base * 2 ** i for i in range(levels + 1)]
        self.down = nn.ModuleList()
        cin = 3
        for w in widths[:-1]:
            self.down.append(nn.Sequential(_conv_bn(cin, w), _conv_bn(w, w)))
            cin = w
        self.bottom = nn.Sequential(_conv_bn(widths[-2], widths[-1]), _conv_bn(widths[-1], widths[-1]))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in reversed(range(levels)))
        self.fuse = nn.ModuleList(nn.Sequential(_conv_bn(2 * widths[i], widths[i]), _conv_bn(widths[i], widths[i]))
                                  for i in reversed(range(levels)))
        self.out = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size, skips = x.shape[-2:], []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2, ceil_mode=True)
        x = self.bottom(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips)):
            x = up(x)
            x = fuse(torch.cat([x[..., :skip.shape[-2], :skip.shape[-1]], skip], 1))
        return self.out(x)[..., :size[0], :size[1]]


# Our own architectures (name -> kind, constructor); shipped models name them in metadata.json.
SURGLENS_ARCHITECTURES = {
    "surglens_resnet_small": (CLASSIFIER, SmallResNet),
    "surglens_unet_small": (SEGMENTER, SmallUNet),
}


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

    @property
    def centre_crop(self) -> float | None:
        """Fraction of each side the model looks at (metadata `centre_crop`), None for the whole image."""
        value = self.metadata.get("centre_crop")
        return float(value) if value else None

    def crop_box(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the part of an (H, W) image the model sees."""
        h, w = int(shape[0]), int(shape[1])
        if not self.centre_crop:
            return 0, h, 0, w
        dh, dw = round(h * (1 - self.centre_crop) / 2), round(w * (1 - self.centre_crop) / 2)
        return dh, h - dh, dw, w - dw

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> normalised (1, 3, S, S) tensor at the model's input size (centre-cropped first if set)."""
        top, bottom, left, right = self.crop_box(rgb.shape)
        return to_tensor(np.ascontiguousarray(rgb[top:bottom, left:right]), self.input_size, self.mean, self.std).to(self.device)


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
