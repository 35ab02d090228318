"""Explanation heatmaps (Grad-CAM for classifiers, EigenCAM for the YOLO detector) and overlays.

Heatmaps are float32 (H, W) in 0..1 at the size of the analysed image. They show where the network's
features respond, not proof of why it decided: the page says so next to them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from models.detector import Detector

# YOLO11 neck outputs at strides 8, 16, 32; EigenCAM averages their first principal components.
DETECTOR_CAM_LAYERS = (16, 19, 22)


def grad_cam(net: nn.Module, layer: nn.Module, x: torch.Tensor, class_index: int, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM of one class for a (1, 3, h, w) input, resized to `size` = (H, W)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = GradCAM(model=_TensorOutput(net), target_layers=[layer])
    try:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(class_index))])[0]
    finally:  # not `with`: the package's __exit__ swallows IndexError
        cam.activations_and_grads.release()
    return _resize(heat, size)


def eigen_cam_detector(detector: "Detector", rgb: np.ndarray, layers: Sequence[int] = DETECTOR_CAM_LAYERS) -> np.ndarray:
    """EigenCAM over the detector's neck for one RGB frame (letterboxed like ultralytics), at frame size."""
    from pytorch_grad_cam import EigenCAM

    x, (top, left, h, w) = _letterbox(rgb, detector.imgsz)
    net = detector.model.model
    targets = [net.model[i] for i in layers]
    cam = EigenCAM(model=_TensorOutput(net), target_layers=targets)
    try:
        with torch.no_grad():
            heat = cam(input_tensor=x, targets=[])[0]  # EigenCAM needs no target
    finally:
        cam.activations_and_grads.release()
    return _resize(heat[top:top + h, left:left + w], rgb.shape[:2])


class _TensorOutput(nn.Module):
    """Adapts models whose forward returns a dict (torchvision segmenters) or tuple (YOLO) to one tensor."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if isinstance(out, dict):
            out = out["out"]
        while isinstance(out, (list, tuple)):
            out = out[0]
        return out


def _letterbox(rgb: np.ndarray, size: int, stride: int = 32) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    import cv2

    h0, w0 = rgb.shape[:2]
    scale = size / max(h0, w0)
    h, w = max(1, round(h0 * scale)), max(1, round(w0 * scale))
    ph, pw = -(-h // stride) * stride, -(-w // stride) * stride
    top, left = (ph - h) // 2, (pw - w) // 2
    canvas = np.full((ph, pw, 3), 114, dtype=np.uint8)
    canvas[top:top + h, left:left + w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(canvas.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
    return x, (top, left, h, w)


def _resize(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    heat = cv2.resize(np.asarray(heat, dtype=np.float32), (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
    lo, hi = float(heat.min()), float(heat.max())
    return ((heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)).astype(np.float32)


def overlay_heatmap(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a 0..1 heatmap (JET colours) over an RGB uint8 image."""
    import cv2

    colour = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (rgb.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha).astype(np.uint8)


def overlay_mask(rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (0, 255, 0), alpha: float = 0.45) -> np.ndarray:
    """Tint the pixels of a boolean mask and outline it."""
    import cv2

    out = rgb.copy()
    m = np.asarray(mask, dtype=bool)
    out[m] = (out[m].astype(np.float32) * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, max(1, round(max(rgb.shape[:2]) / 400)))
    return out
