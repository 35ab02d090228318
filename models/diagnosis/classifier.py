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

    @property
    def top_index(self) -> int:
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
        return f"Top class: {self.top_label} (score {self.top_score:.2f})"

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        return {"Scores": self.rows()}

    @property
    def note(self) -> str:
        return SCORE_NOTE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CLASSIFIER, "top": self.top_label, "top_score": round(self.top_score, 4),
                "scores": {r["class"]: r["score"] for r in self.rows()}, "note": SCORE_NOTE}


class ImageClassifier(TorchImageModel):
    """Callable classifier: `classifier(rgb) -> ClassificationResult` for an (H, W, 3) uint8 image."""

    kind = CLASSIFIER

    def __init__(self, weights: str | Path | ModelEntry, device: str = "cpu", explain: bool = True):
        super().__init__(weights, device)
        self.explain = explain
        self._cam_layer = cam_layer(self.net, self.metadata.get("cam_layer"))

    def predict_batch(self, x: torch.Tensor) -> np.ndarray:
        """(N, K) softmax scores for an already normalised (N, 3, S, S) batch."""
        with torch.no_grad():
            return torch.softmax(forward_logits(self.net, x.to(self.device)), dim=1).cpu().numpy()

    def __call__(self, rgb: np.ndarray) -> ClassificationResult:
        x = self.preprocess(rgb)
        scores = self.predict_batch(x)[0]
        heat = grad_cam(self.net, self._cam_layer, x, int(scores.argmax()), rgb.shape[:2]) if self.explain else None
        return ClassificationResult(classes=list(self.classes), scores=scores, heatmap=heat)
