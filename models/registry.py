"""Shipped and user-supplied model weights: one folder per model with weights + metadata.json.

A model folder holds exactly one weights file, `metadata.json` (name, kind, version, classes,
input size, training data, licence, metrics) and `MODEL_CARD.md`. Shipped models live in
assets/models/<name>/; users may point at any folder of the same shape or at a bare weights file.

Weights of .pt files are pickles, and loading a pickle can run code. So a model is only ever loaded
from a shipped folder (a bare name always means the shipped one, never a folder of that name in
the working directory) or from a path the user names, and `verify_weights` checks the weights
against the SHA-256 that `write_metadata` records in metadata.json (`weights_sha256`) before any
loader opens them; shipped detector weights without that record are refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.taxonomy import ASSETS_DIR

MODELS_DIR = ASSETS_DIR / "models"
WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors", ".onnx")


SHA256_KEY = "weights_sha256"


class ModelNotFoundError(FileNotFoundError):
    """Weights or their metadata are missing."""


class WeightsIntegrityError(ValueError):
    """Weights that do not match the SHA-256 recorded in their metadata.json, or have none where one is required."""


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
    def shipped(self) -> bool:
        """Whether the weights are inside the shipped models folder (assets/models)."""
        return self.weights.resolve().is_relative_to(MODELS_DIR.resolve())

    @property
    def card(self) -> Path | None:
        card = self.weights.parent / "MODEL_CARD.md"
        return card if card.exists() else None


def resolve_model(ref: str | Path) -> ModelEntry:
    """A shipped model name (e.g. "detector"), a model folder, or a weights file -> ModelEntry.

    A bare name of a shipped model is always the shipped folder, even when the working directory
    has a file or folder of that name; anything else is a path, as the user named it.
    """
    path = Path(ref)
    if len(path.parts) == 1 and path.name == str(ref) and (MODELS_DIR / path.name).is_dir():
        path = MODELS_DIR / path.name
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


def weights_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a weights file, read in 1 MiB chunks."""
    from video.probe import file_sha256  # here, not at the top: video.probe loads PyAV

    return file_sha256(path)


def verify_weights(entry: ModelEntry, *, required: bool = False) -> ModelEntry:
    """Check `entry`'s weights against the SHA-256 in its metadata.json before they are loaded.

    Raises `WeightsIntegrityError` on a mismatch, and when `required` and no SHA-256 is recorded.
    Returns `entry`, so loaders can write `verify_weights(resolve_model(ref))`.
    """
    expected = entry.metadata.get(SHA256_KEY)
    if expected is None:
        if required:
            raise WeightsIntegrityError(
                f"refusing to load {str(entry.weights)!r}: its metadata.json records no {SHA256_KEY}, so the "
                "weights cannot be checked (re-export the model, or name a weights file of your own)"
            )
        return entry
    actual = weights_sha256(entry.weights)
    if actual != str(expected).lower():
        raise WeightsIntegrityError(
            f"refusing to load {str(entry.weights)!r}: its SHA-256 is {actual}, but metadata.json records "
            f"{expected!r}; the weights were changed or replaced after the model was written"
        )
    return entry


def write_metadata(folder: str | Path, metadata: dict[str, Any]) -> Path:
    """Write metadata.json beside a model's weights, with the weights' SHA-256 when the folder holds one weights file."""
    folder = Path(folder)
    path = folder / "metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    metadata = {k: v for k, v in metadata.items() if k != SHA256_KEY}
    if len(weights) == 1:
        metadata[SHA256_KEY] = weights_sha256(weights[0])
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    return path
