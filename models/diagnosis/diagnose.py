"""One entry point for the page and the CLI: pick an analysis, run it on a MedicalImage, get overlays + JSON."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from models.diagnosis.classifier import ClassificationResult, ImageClassifier
from models.diagnosis.explain import overlay_heatmap, overlay_mask
from models.diagnosis.image import MedicalImage, Window
from models.diagnosis.nets import CLASSIFIER, KINDS, SEGMENTER
from models.diagnosis.segmenter import ImageSegmenter, SegmentationResult
from models.diagnosis.still import StillAnalyzer, StillReport
from models.registry import MODELS_DIR, ModelEntry, list_models, resolve_model
from models.taxonomy import load_taxonomy

STILL = "surgical-still"
DISCLAIMER = "Research software: not a medical device and not for clinical use. Scores are not calibrated probabilities."

Analyzer = Union[StillAnalyzer, ImageClassifier, ImageSegmenter]
Result = Union[StillReport, ClassificationResult, SegmentationResult]


def diagnosis_models(root: str | Path = MODELS_DIR) -> list[ModelEntry]:
    """Shipped (or `root`) classifier and segmenter folders."""
    return [m for m in list_models(root) if m.kind in KINDS]


def analysis_choices(root: str | Path = MODELS_DIR) -> dict[str, str]:
    """Label -> reference for every analysis the page offers (surgical still first, the default)."""
    choices = {"Surgical still: instruments, quality, EigenCAM": STILL}
    for m in diagnosis_models(root):
        what = "classifier" if m.kind == CLASSIFIER else "segmenter"
        choices[f"{m.name} ({what}, {m.metadata.get('modality', 'any')})"] = str(m.weights.parent)
    return choices


def suggested_choice(image: MedicalImage, choices: dict[str, str]) -> int:
    """Index of the analysis to preselect: the surgical still for photographs, the first model for DICOM."""
    return 1 if image.source_format == "dicom" and len(choices) > 1 else 0


def load_analyzer(ref: str | Path) -> Analyzer:
    """`STILL` -> the detector-based still analysis; a model name/folder -> its classifier or segmenter."""
    if str(ref) == STILL:
        return StillAnalyzer()
    entry = resolve_model(ref)
    if entry.kind == CLASSIFIER:
        return ImageClassifier(entry)
    if entry.kind == SEGMENTER:
        return ImageSegmenter(entry)
    raise ValueError(f"{str(ref)!r} is a {entry.kind!r} model; diagnosis needs one of {KINDS} or {STILL!r}")


@dataclass
class Diagnosis:
    """An analysed image: the display RGB, the result, named overlay images and the JSON view."""

    image: MedicalImage
    rgb: np.ndarray
    result: Result
    overlays: dict[str, np.ndarray] = field(default_factory=dict)
    frame: int = 0
    window: Window | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"image": image_summary(self.image, self.frame, self.window), "analysis": self.result.to_dict(),
                "disclaimer": DISCLAIMER}


def image_summary(image: MedicalImage, frame: int = 0, window: Window | None = None) -> dict[str, Any]:
    """What was read, for display and JSON. No identifying data: header PHI was removed on import, and
    the file name is left out (DICOM files are often named by the UIDs that de-identification replaces)."""
    w = window or image.window
    return {
        "format": image.source_format, "modality": image.modality,
        "width": image.width, "height": image.height, "frames": image.n_frames, "frame": frame,
        "colour": image.is_colour, "bits_stored": image.bits_stored,
        "pixel_spacing_mm": list(image.pixel_spacing_mm) if image.pixel_spacing_mm else None,
        "window": {"center": w.center, "width": w.width}, "inverted": image.inverted,
        "removed_phi": list(image.removed_phi), "notes": list(image.notes),
    }


def diagnose(image: MedicalImage, analyzer: Analyzer, frame: int = 0, window: Window | None = None) -> Diagnosis:
    """Run one analysis on one frame of an image, displayed through `window` (the image default if None)."""
    rgb = image.to_rgb(frame, window)
    overlays: dict[str, np.ndarray] = {}
    if isinstance(analyzer, StillAnalyzer):
        from video.overlay import Annotator

        result: Result = analyzer(rgb)
        overlays["detections"] = Annotator(result.class_names, _tool_colours(result.class_names))(rgb, result.detections, 0.0)
        if result.heatmap is not None:
            overlays["explanation"] = overlay_heatmap(rgb, result.heatmap)
    elif isinstance(analyzer, ImageClassifier):
        result = analyzer(rgb)
        if result.heatmap is not None:
            overlays["explanation"] = overlay_heatmap(rgb, result.heatmap)
    else:
        result = analyzer(rgb, image.pixel_area_mm2())
        for name in result.foreground:
            overlays[f"mask: {name}"] = overlay_mask(rgb, result.mask(name))
    return Diagnosis(image=image, rgb=rgb, result=result, overlays=overlays, frame=frame, window=window)


def model_card(analyzer: Analyzer) -> str | None:
    """The MODEL_CARD.md text of the model behind an analyzer, if its folder has one."""
    entry = analyzer.detector.entry if isinstance(analyzer, StillAnalyzer) else analyzer.entry
    return entry.card.read_text() if entry.card else None


def _tool_colours(class_names: list[str]) -> list[str]:
    """Taxonomy colour of each detector class (grey for names the taxonomy does not know)."""
    tax = load_taxonomy()
    out = []
    for name in class_names:
        try:
            out.append(tax.tools[tax.tool_id(name)].colour)
        except KeyError:
            out.append("#cccccc")
    return out
