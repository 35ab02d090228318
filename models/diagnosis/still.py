"""Surgical stills: instrument detector on one image, tool presence, image quality, EigenCAM heatmap."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.detections import Detections
from models.registry import ModelNotFoundError, resolve_model
from video.quality import Finding, QualityThresholds, measure_quality, quality_findings

# Where the still analysis looks for detector weights: the shipped model.
DETECTOR_CANDIDATES: tuple[str | Path, ...] = ("detector",)


STILL_NOTE = "detector confidences are uncalibrated scores of a research model; not for clinical use"


class NoDetectorError(ModelNotFoundError):
    """No instrument-detector weights are available (none shipped, no development checkpoint)."""


def find_detector_weights() -> Path:
    """The folder of the detector to use for stills, or NoDetectorError saying where it was looked for."""
    for ref in DETECTOR_CANDIDATES:
        try:
            return resolve_model(ref).weights.parent
        except ModelNotFoundError:
            continue
    raise NoDetectorError(
        "no instrument-detector weights: expected assets/models/detector/ (shipped); "
        "train and export one with `surglens train-detector` and `surglens export-detector`"
    )


@dataclass
class StillReport:
    """What the still analysis found in one RGB image."""

    class_names: list[str]
    detections: Detections
    presence: np.ndarray  # per class: highest box confidence, 0 where the tool was not found
    heatmap: np.ndarray | None = None
    quality: list[Finding] = field(default_factory=list)
    detector: str = ""

    def tool_rows(self) -> list[dict[str, Any]]:
        return [
            {"tool": name, "present": bool(self.presence[i] > 0), "confidence": round(float(self.presence[i]), 3),
             "boxes": int((self.detections.class_id == i).sum())}
            for i, name in enumerate(self.class_names)
        ]

    def detection_rows(self) -> list[dict[str, Any]]:
        return [
            {"tool": self.class_names[c], "confidence": round(float(s), 3), "x1": int(b[0]), "y1": int(b[1]),
             "x2": int(b[2]), "y2": int(b[3])}
            for b, s, c in zip(self.detections.xyxy, self.detections.confidence, self.detections.class_id)
        ]

    def quality_rows(self) -> list[dict[str, Any]]:
        return [
            {"measure": f.name, "value": round(float(f.value), 4), "threshold": float(f.threshold), "flagged": bool(f.flagged)}
            for f in self.quality
        ]

    @property
    def note(self) -> str:
        return STILL_NOTE

    def headline(self) -> str:
        seen = [f"{r['tool']} ({r['confidence']:.2f})" for r in self.tool_rows() if r["present"]]
        flags = [f.name for f in self.quality if f.flagged]
        return "Instruments seen: " + (", ".join(seen) if seen else "none above the detector threshold") + (
            f"; quality flags: {', '.join(flags)}" if flags else "")

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        return {"Tools": self.tool_rows(), "Image quality": self.quality_rows(), "Detections": self.detection_rows()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "surgical-still",
            "detector": self.detector,
            "tools": self.tool_rows(),
            "detections": self.detection_rows(),
            "quality": self.quality_rows(),
            "note": STILL_NOTE,
        }


class StillAnalyzer:
    """Callable: `analyzer(rgb) -> StillReport` for one (H, W, 3) uint8 surgical still."""

    def __init__(
        self,
        detector_weights: str | Path | None = None,
        conf: float = 0.25,
        explain: bool = True,
        quality_thresholds: QualityThresholds | None = None,
    ):
        from models.detector import Detector

        self.detector = Detector(detector_weights or find_detector_weights(), conf=conf)
        self.explain = explain
        self.quality_thresholds = quality_thresholds

    @property
    def class_names(self) -> list[str]:
        return self.detector.class_names

    def __call__(self, rgb: np.ndarray) -> StillReport:
        from models.diagnosis.explain import eigen_cam_detector

        detections = self.detector([rgb])[0]
        heat = eigen_cam_detector(self.detector, rgb) if self.explain else None
        return StillReport(
            class_names=list(self.class_names), detections=detections, presence=self.detector.presence(detections),
            heatmap=heat, quality=quality_findings(measure_quality(rgb), self.quality_thresholds),
            detector=self.detector.entry.name,
        )
