"""Image segmenter: a model folder -> a label map at image size with per-class areas (px, mm²)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.diagnosis.nets import SEGMENTER, TorchImageModel, forward_logits

AREA_NOTE = "areas are of the model's mask, a research output; not a measurement for clinical use"


@dataclass
class SegmentationResult:
    """`labels` (H, W) int class map; `confidence` (H, W) softmax score of the chosen class per pixel."""

    classes: list[str]
    labels: np.ndarray
    confidence: np.ndarray
    pixel_area_mm2: float | None = None

    def mask(self, class_name: str) -> np.ndarray:
        return self.labels == self.classes.index(class_name)

    @property
    def foreground(self) -> list[str]:
        """Every class but the first (background)."""
        return self.classes[1:]

    def rows(self) -> list[dict[str, Any]]:
        """Per foreground class: area in pixels, in mm² when spacing is known, and mean confidence."""
        out = []
        for name in self.foreground:
            m = self.mask(name)
            px = int(m.sum())
            out.append({
                "class": name,
                "area_px": px,
                "area_mm2": round(px * self.pixel_area_mm2, 2) if self.pixel_area_mm2 else None,
                "fraction_of_image": round(px / m.size, 4),
                "mean_confidence": round(float(self.confidence[m].mean()), 4) if px else None,
            })
        return out

    def headline(self) -> str:
        parts = []
        for r in self.rows():
            area = f"{r['area_mm2']:,.1f} mm²" if r["area_mm2"] is not None else "mm² unknown (no pixel spacing)"
            parts.append(f"{r['class']}: {r['area_px']:,} px, {area}")
        return "; ".join(parts)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        return {"Regions": self.rows()}

    @property
    def note(self) -> str:
        return AREA_NOTE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": SEGMENTER, "regions": self.rows(), "pixel_area_mm2": self.pixel_area_mm2, "note": AREA_NOTE}


class ImageSegmenter(TorchImageModel):
    """Callable segmenter: `segmenter(rgb, pixel_area_mm2=None) -> SegmentationResult`."""

    kind = SEGMENTER

    def predict_scores(self, x: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """(K, H, W) softmax scores of one normalised (1, 3, S, S) input, upsampled to `size`."""
        with torch.no_grad():
            logits = forward_logits(self.net, x.to(self.device))
            logits = torch.nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            return torch.softmax(logits, dim=1)[0].cpu().numpy()

    def __call__(self, rgb: np.ndarray, pixel_area_mm2: float | None = None) -> SegmentationResult:
        scores = self.predict_scores(self.preprocess(rgb), rgb.shape[:2])
        decision = self.metadata.get("decision")
        if decision and len(self.classes) == 2:  # threshold chosen on our validation split
            labels = (scores[self.classes.index(decision["positive"])] >= float(decision["threshold"])).astype(np.int64)
            if decision["positive"] == self.classes[0]:
                labels = 1 - labels
        else:
            labels = scores.argmax(axis=0)
        return SegmentationResult(
            classes=list(self.classes), labels=labels.astype(np.int64),
            confidence=np.take_along_axis(scores, labels[None], axis=0)[0].astype(np.float32),
            pixel_area_mm2=pixel_area_mm2,
        )
