"""Shipped and user-supplied model weights: one folder per model with weights + metadata.json.

A model folder holds exactly one weights file, `metadata.json` (name, kind, version, classes,
input size, training data, licence, metrics) and `MODEL_CARD.md`. Shipped models live in
assets/models/<name>/; users may point at any folder of the same shape or at a bare weights file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.taxonomy import ASSETS_DIR

MODELS_DIR = ASSETS_DIR / "models"
WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors", ".onnx")


class ModelNotFoundError(FileNotFoundError):
    """Weights or their metadata are missing."""


@dataclass(frozen=True)
class ModelEntry:
    """A model on disk: its weights file and its metadata."""

    name: str
    weights: Path
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", "unknown"))

    @property
    def classes(self) -> list[str]:
        return list(self.metadata.get("classes", []))

    @property
    def card(self) -> Path | None:
        card = self.weights.parent / "MODEL_CARD.md"
        return card if card.exists() else None


def resolve_model(ref: str | Path) -> ModelEntry:
    """A shipped model name (e.g. "detector"), a model folder, or a weights file -> ModelEntry."""
    path = Path(ref)
    if not path.exists() and (MODELS_DIR / str(ref)).is_dir():
        path = MODELS_DIR / str(ref)
    if path.is_dir():
        weights = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if len(weights) != 1:
            raise ModelNotFoundError(f"model folder {str(path)!r} must hold exactly one weights file, found {[w.name for w in weights]}")
        meta_file = path / "metadata.json"
        metadata = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        return ModelEntry(name=metadata.get("name", path.name), weights=weights[0], metadata=metadata)
    if path.is_file():
        meta_file = path.parent / "metadata.json"
        metadata = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        return ModelEntry(name=metadata.get("name", path.stem), weights=path, metadata=metadata)
    raise ModelNotFoundError(f"no model at {str(ref)!r} (not a shipped model name, a folder or a weights file)")


def list_models(root: str | Path = MODELS_DIR) -> list[ModelEntry]:
    """Every model folder under `root`."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            out.append(resolve_model(folder))
        except ModelNotFoundError:
            continue
    return out


def write_metadata(folder: str | Path, metadata: dict[str, Any]) -> Path:
    """Write metadata.json beside a model's weights."""
    path = Path(folder) / "metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    return path
