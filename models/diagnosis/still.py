"""Surgical stills: instrument detector on one image, tool presence, image quality, EigenCAM heatmap, and the
anatomy mask with the three critical-view-of-safety criteria when the anatomy model is installed."""
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
    anatomy: Any = None  # models.anatomy.model.AnatomyResult, or None
    anatomy_missing: str | None = None  # why there is no anatomy result

    def cvs_rows(self) -> list[dict[str, Any]]:
        """The three CVS criteria (probability, holds at >= 0.5); empty without an anatomy result."""
        from models.anatomy.data import CVS_THRESHOLD

        if self.anatomy is None:
            return []
        names = {"C1": "two structures enter the gallbladder", "C2": "hepatocystic triangle cleared",
                 "C3": "lower gallbladder off the cystic plate"}
        return [{"criterion": c, "meaning": names.get(c, ""), "probability": None if p != p else round(float(p), 3),
                 "holds": None if p != p else bool(p >= CVS_THRESHOLD)} for c, p in self.anatomy.cvs.items()]

    def anatomy_rows(self) -> list[dict[str, Any]]:
        if self.anatomy is None:
            return []
        return [{"structure": k, "share of image": round(float(v), 4)} for k, v in self.anatomy.areas.items()]

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
        if self.anatomy is None:
            return STILL_NOTE + (f" (no anatomy mask: {self.anatomy_missing})" if self.anatomy_missing else "")
        from models.anatomy.model import NOTE

        return f"{STILL_NOTE}; {NOTE}"

    def headline(self) -> str:
        seen = [f"{r['tool']} ({r['confidence']:.2f})" for r in self.tool_rows() if r["present"]]
        flags = [f.name for f in self.quality if f.flagged]
        cvs = [r for r in self.cvs_rows() if r["probability"] is not None]
        held = f"; CVS criteria holding: {', '.join(r['criterion'] for r in cvs if r['holds']) or 'none'}" if cvs else ""
        return "Instruments seen: " + (", ".join(seen) if seen else "none above the detector threshold") + (
            f"; quality flags: {', '.join(flags)}" if flags else "") + held

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        tables = {"Tools": self.tool_rows(), "Image quality": self.quality_rows(), "Detections": self.detection_rows()}
        if self.anatomy is not None:
            tables |= {"Critical view of safety": self.cvs_rows(), "Anatomy": self.anatomy_rows()}
        return tables

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "surgical-still",
            "detector": self.detector,
            "tools": self.tool_rows(),
            "detections": self.detection_rows(),
            "quality": self.quality_rows(),
            "anatomy": None if self.anatomy is None else {"cvs": self.cvs_rows(), "areas": self.anatomy_rows()},
            "note": self.note,
        }


class StillAnalyzer:
    """Callable: `analyzer(rgb) -> StillReport` for one (H, W, 3) uint8 surgical still."""

    def __init__(
        self,
        detector_weights: str | Path | None = None,
        conf: float = 0.25,
        explain: bool = True,
        quality_thresholds: QualityThresholds | None = None,
        anatomy: str | Path | None = "anatomy",
    ):
        from models.detector import Detector

        self.detector = Detector(detector_weights or find_detector_weights(), conf=conf)
        self.explain = explain
        self.quality_thresholds = quality_thresholds
        # The anatomy model is optional: without it the still has instruments and quality only, and says why.
        self.anatomy: Any = None
        self.anatomy_missing: str | None = "not requested" if anatomy is None else None
        if anatomy is not None:
            from models.anatomy.model import AnatomyModel

            try:
                self.anatomy = AnatomyModel(anatomy)
            except ModelNotFoundError:
                self.anatomy_missing = f"no anatomy model at {str(anatomy)!r} (shipped: assets/models/anatomy)"
            except (ValueError, OSError) as exc:
                self.anatomy_missing = str(exc)

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
            anatomy=self.anatomy([rgb])[0] if self.anatomy is not None else None, anatomy_missing=self.anatomy_missing,
        )
