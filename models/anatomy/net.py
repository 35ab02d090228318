"""The anatomy network: our detector's YOLO11 backbone (strides 2-32) under a small U-Net decoder.

The whole network is saved as one state_dict; the backbone is rebuilt from the detector's model yaml
(stored with the weights), so loading needs ultralytics' layer classes but never the detector file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# Backbone layers whose outputs feed the decoder: strides 2, 4, 8, 16, 32 of YOLO11.
SKIP_LAYERS = (0, 2, 4, 6, 10)
LAST_BACKBONE_LAYER = 10
MEAN = (0.0, 0.0, 0.0)  # YOLO input convention: RGB scaled to 0..1, no mean/std
STD = (1.0, 1.0, 1.0)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True),
    )


def build_backbone(yaml: dict[str, Any]) -> nn.ModuleList:
    """YOLO backbone layers 0..10 built from a model yaml (random weights)."""
    from models._ultralytics import load_ultralytics

    load_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(cfg=dict(yaml), ch=3, nc=int(yaml.get("nc", 1)), verbose=False)
    return nn.ModuleList(list(model.model[: LAST_BACKBONE_LAYER + 1]))


class AnatomyNet(nn.Module):
    """(N, 3, H, W) RGB in 0..1 -> (N, classes, H, W) logits; H, W multiples of 32."""

    def __init__(self, yaml: dict[str, Any], num_classes: int = 7, width: int = 64):
        super().__init__()
        self.yaml = dict(yaml)
        self.backbone = build_backbone(self.yaml)
        with torch.no_grad():
            chans = [f.shape[1] for f in self._features(torch.zeros(1, 3, 64, 64))]
        c2, c4, c8, c16, c32 = chans
        w = width
        self.lat32 = nn.Sequential(nn.Conv2d(c32, 2 * w, 1, bias=False), nn.BatchNorm2d(2 * w), nn.SiLU(inplace=True))
        self.dec16 = _block(2 * w + c16, 2 * w)
        self.dec8 = _block(2 * w + c8, w)
        self.dec4 = _block(w + c4, w)
        self.dec2 = _block(w + c2, w // 2)
        self.head = nn.Conv2d(w // 2, num_classes, 1)
        self.dropout = nn.Dropout2d(0.1)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in SKIP_LAYERS:
                outs.append(x)
        return outs

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the pooled deepest backbone features (N, C32)."""
        f2, f4, f8, f16, f32 = self._features(x)
        y = self.lat32(f32)
        for dec, skip in ((self.dec16, f16), (self.dec8, f8), (self.dec4, f4), (self.dec2, f2)):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = dec(torch.cat([y, skip], dim=1))
        logits = self.head(self.dropout(y))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits, f32.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        enc = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in enc]


def detector_init(weights: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Model yaml and backbone state_dict (layers 0..10) of an ultralytics detector checkpoint."""
    from models._ultralytics import load_ultralytics

    load_ultralytics()
    ckpt = torch.load(str(weights), map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model")
    if model is None or not hasattr(model, "yaml"):
        raise ValueError(f"{str(weights)!r} is not an ultralytics checkpoint with a model")
    state = {}
    for key, value in model.float().state_dict().items():
        parts = key.split(".")  # model.<index>.<rest>
        if parts[0] == "model" and int(parts[1]) <= LAST_BACKBONE_LAYER:
            state[".".join(parts[1:])] = value.clone()
    return dict(model.yaml), state


def build_from_detector(weights: str | Path, num_classes: int = 7, width: int = 64) -> AnatomyNet:
    """AnatomyNet whose encoder starts from the detector's backbone; the decoder is random."""
    yaml, state = detector_init(weights)
    net = AnatomyNet(yaml, num_classes=num_classes, width=width)
    missing, unexpected = net.backbone.load_state_dict(state, strict=True), None
    del missing, unexpected
    return net
