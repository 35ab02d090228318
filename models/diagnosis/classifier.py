"""Image classifier: a model folder -> class scores and a Grad-CAM heatmap for one RGB image."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.diagnosis.explain import grad_cam
from models.diagnosis.nets import CLASSIFIER, TorchImageModel, cam_layer, forward_logits
from models.registry import ModelEntry

SCORE_NOTE = "softmax scores of an uncalibrated research model, not probabilities of disease; not for clinical use"


@dataclass
class ClassificationResult:
    """Scores over the model's classes for one image; `heatmap` explains the top class (or None)."""

    classes: list[str]
    scores: np.ndarray
    heatmap: np.ndarray | None = None
    decision: dict[str, Any] | None = None  # {"positive": class, "threshold": t} chosen on validation

    @property
    def top_index(self) -> int:
        """The predicted class: the thresholded positive class for a binary model with a decision, else the arg-max."""
        if self.decision and len(self.classes) == 2:
            k = self.classes.index(self.decision["positive"])
            return k if self.scores[k] >= float(self.decision["threshold"]) else 1 - k
        return int(np.argmax(self.scores))

    @property
    def top_label(self) -> str:
        return self.classes[self.top_index]

    @property
    def top_score(self) -> float:
        return float(self.scores[self.top_index])

    def rows(self) -> list[dict[str, Any]]:
        """One row per class, highest score first (for tables)."""
        order = np.argsort(-self.scores)
        return [{"class": self.classes[i], "score": round(float(self.scores[i]), 4)} for i in order]

    def headline(self) -> str:
        if self.decision and len(self.classes) == 2:
            pos = self.decision["positive"]
            score = float(self.scores[self.classes.index(pos)])
            return f"Finding: {self.top_label} ({pos} score {score:.2f}, threshold {float(self.decision['threshold']):.2f})"
        return f"Top class: {self.top_label} (score {self.top_score:.2f})"

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        return {"Scores": self.rows()}

    @property
    def note(self) -> str:
        return SCORE_NOTE

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": CLASSIFIER, "top": self.top_label, "top_score": round(self.top_score, 4),
               "scores": {r["class"]: r["score"] for r in self.rows()}, "note": SCORE_NOTE}
        if self.decision:
            out["decision"] = dict(self.decision)
        return out


class ImageClassifier(TorchImageModel):
    """Callable classifier: `classifier(rgb) -> ClassificationResult` for an (H, W, 3) uint8 image."""

    kind = CLASSIFIER

    def __init__(self, weights: str | Path | ModelEntry, device: str = "cpu", explain: bool = True):
        super().__init__(weights, device)
        self.explain = explain
        self._cam_layer = cam_layer(self.net, self.metadata.get("cam_layer"))
        # Temperature and decision threshold are fitted on our validation split (models/diagnosis/fit.py).
        self.temperature = float(self.metadata.get("temperature", 1.0))
        decision = self.metadata.get("decision")
        self.decision = {"positive": decision["positive"], "threshold": float(decision["threshold"])} if decision else None

    def predict_batch(self, x: torch.Tensor) -> np.ndarray:
        """(N, K) softmax scores (temperature-scaled when the model has one) for a normalised (N, 3, S, S) batch."""
        with torch.no_grad():
            logits = forward_logits(self.net, x.to(self.device)) / self.temperature
            return torch.softmax(logits, dim=1).cpu().numpy()

    def __call__(self, rgb: np.ndarray) -> ClassificationResult:
        x = self.preprocess(rgb)
        result = ClassificationResult(classes=list(self.classes), scores=self.predict_batch(x)[0], decision=self.decision)
        if self.explain:
            top, bottom, left, right = self.crop_box(rgb.shape)
            heat = grad_cam(self.net, self._cam_layer, x, result.top_index, (bottom - top, right - left))
            if (bottom - top, right - left) != rgb.shape[:2]:  # a centre-cropping model saw nothing outside the box
                full = np.zeros(rgb.shape[:2], np.float32)
                full[top:bottom, left:right] = heat
                heat = full
            result.heatmap = heat
        return result
