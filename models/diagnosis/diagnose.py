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
from models.registry import MODELS_DIR, ModelEntry, ModelNotFoundError, list_models, resolve_model
from models.taxonomy import load_taxonomy

STILL = "surgical-still"
DISCLAIMER = "Research software: not a medical device and not for clinical use. Scores are not calibrated probabilities."

Analyzer = Union[StillAnalyzer, ImageClassifier, ImageSegmenter]
Result = Union[StillReport, ClassificationResult, SegmentationResult]


ROUTER = "image-modality"  # the shipped classifier that says what kind of image was uploaded
MIN_MODALITY_CONFIDENCE = 0.7  # below this the page asks the user to choose the kind of image
MODALITY_LABELS = {
    "laparoscopy": "Surgical still (laparoscopy)",
    "colonoscopy": "Colonoscopy",
    "dermoscopy": "Dermoscopy (skin lesion)",
    "chest-xray": "Chest X-ray",
    "ct": "CT slice",
    "other-xray": "X-ray (not chest)",
    "other": "Other medical image (MR, ultrasound, ...)",
}
# What SurgLens says for a kind of image it has no model for.
NO_MODEL = {
    "ct": "SurgLens has no diagnostic model for CT slices: the image is shown with its windows, but no finding is made.",
    "other-xray": "SurgLens has no diagnostic model for X-rays other than frontal chest films: no finding is made.",
    "other": "SurgLens has no diagnostic model for this kind of image: no finding is made.",
}
_DICOM_MODALITY = {"CT": "ct", "CR": "chest-xray", "DX": "chest-xray", "DR": "chest-xray", "MR": "other", "US": "other",
                   "NM": "other", "PT": "other", "MG": "other", "XA": "other-xray", "RF": "other-xray", "RG": "other-xray"}


@dataclass
class ModalityDecision:
    """What kind of image this is, how sure, and from what (the DICOM header or the modality classifier)."""

    modality: str | None
    confidence: float | None
    source: str
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def confident(self) -> bool:
        return self.modality is not None and (self.confidence is None or self.confidence >= MIN_MODALITY_CONFIDENCE)

    @property
    def label(self) -> str:
        return MODALITY_LABELS.get(self.modality or "", "unknown")

    def text(self) -> str:
        how = f"{self.confidence:.2f}" if self.confidence is not None else "stated in the file"
        return f"Kind of image: {self.label} ({self.source}; {how})"


def dicom_modality(image: MedicalImage) -> ModalityDecision | None:
    """The kind of image from DICOM Modality / BodyPartExamined, or None when the header does not settle it."""
    if image.source_format != "dicom" or not image.modality:
        return None
    code = image.modality.upper()
    kind = _DICOM_MODALITY.get(code)
    if kind is None:  # ES (endoscopy), XC/OT (photographs), SC (secondary capture): the pixels must tell
        return None
    part = str(getattr(image.dataset, "BodyPartExamined", "") or "").upper() if image.dataset is not None else ""
    if kind == "chest-xray" and part and part not in ("CHEST", "THORAX", "LUNG"):
        kind = "other-xray"
    where = f"DICOM header: Modality={code}" + (f", BodyPartExamined={part}" if part else "")
    return ModalityDecision(kind, None, where)


def decide_modality(image: MedicalImage, router: "ImageClassifier | None" = None, frame: int = 0) -> ModalityDecision:
    """The kind of image: from the DICOM header when it says, else from the modality classifier `router`."""
    from_header = dicom_modality(image)
    if from_header is not None:
        return from_header
    if router is None:
        return ModalityDecision(None, None, "no modality classifier available")
    scores = router.predict_batch(router.preprocess(image.to_rgb(frame)))[0]
    k = int(np.argmax(scores))
    return ModalityDecision(router.classes[k], float(scores[k]), f"modality classifier {router.name}",
                            {c: round(float(v), 4) for c, v in zip(router.classes, scores)})


def load_router(ref: str | Path = ROUTER) -> "ImageClassifier | None":
    """The shipped modality classifier (None when it is not installed)."""
    try:
        return ImageClassifier(ref, explain=False)
    except ModelNotFoundError:
        return None


def diagnosis_models(root: str | Path = MODELS_DIR) -> list[ModelEntry]:
    """Shipped (or `root`) classifier and segmenter folders, the modality router left out."""
    return [m for m in list_models(root) if m.kind in KINDS and m.weights.parent.name != ROUTER]


def modality_choices(modality: str | None, root: str | Path = MODELS_DIR) -> dict[str, str]:
    """Label -> reference of the analyses that fit one kind of image (empty: SurgLens has no model for it)."""
    if modality == "laparoscopy":
        return {"Surgical still: instruments, quality, EigenCAM": STILL}
    choices = {}
    for m in diagnosis_models(root):
        if m.metadata.get("modality") == modality:
            what = "classifier" if m.kind == CLASSIFIER else "segmenter"
            choices[f"{m.name} ({what}, {modality})"] = str(m.weights.parent)
    return choices


def no_model_text(modality: str | None) -> str:
    """The plain statement shown when no analysis fits."""
    return NO_MODEL.get(modality or "other", f"SurgLens has no model for {MODALITY_LABELS.get(modality or '', 'this kind of image')} "
                        "images installed: no finding is made.")


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
        from models.annotators import InstrumentAnnotator

        result: Result = analyzer(rgb)
        overlays["detections"] = InstrumentAnnotator(result.class_names, _tool_colours(result.class_names)).annotate(
            rgb, result.detections)
        if result.heatmap is not None:
            overlays["explanation"] = overlay_heatmap(rgb, result.heatmap)
        if result.anatomy is not None:  # the anatomy mask with its legend (models.diagnosis.still)
            from models.anatomy.data import CLASSES
            from models.annotators import MaskAnnotator

            classes = getattr(getattr(analyzer, "anatomy", None), "classes", CLASSES)
            overlays["anatomy"] = MaskAnnotator(classes).annotate(rgb, result.anatomy.labels)
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
