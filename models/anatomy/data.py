"""Reader of the endoscapes-seg50 layout: images/STEM.jpg, masks/STEM.png, labels.json keyed by split."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = (
    "background", "cystic_plate", "hepatocystic_triangle", "cystic_artery", "cystic_duct", "gallbladder", "tool",
)
FOREGROUND = CLASSES[1:]
CRITERIA = ("C1", "C2", "C3")
IGNORE = 255
# Truth of a criterion: the mean of the raters' votes is at least this (majority of three).
CVS_THRESHOLD = 0.5


@dataclass(frozen=True)
class AnatomyFrame:
    """One labelled frame: image and mask paths, its operation, and the three criteria (rater means)."""

    stem: str
    image: Path
    mask: Path | None
    video_id: str
    cvs: tuple[float, float, float]

    @property
    def cvs_truth(self) -> tuple[bool, bool, bool]:
        return tuple(v >= CVS_THRESHOLD for v in self.cvs)  # type: ignore[return-value]


def read_split(root: str | Path, split: str) -> list[AnatomyFrame]:
    """Frames of one split of a folder in the endoscapes-seg50 layout, sorted by stem."""
    root = Path(root)
    labels_file = root / "labels.json"
    if not labels_file.is_file():
        raise FileNotFoundError(f"no labels.json in {str(root)!r}")
    labels = json.loads(labels_file.read_text())
    if split not in labels:
        raise ValueError(f"split {split!r} not in {str(labels_file)!r}; it has {sorted(labels)}")
    frames = []
    for stem, entry in sorted(labels[split].items()):
        image = root / "images" / entry.get("file_name", f"{stem}.jpg")
        if not image.is_file():
            raise FileNotFoundError(f"image {str(image)!r} of split {split!r} is missing")
        mask = root / "masks" / f"{Path(image.name).stem}.png"
        cvs = entry.get("cvs_criteria", [0.0, 0.0, 0.0])
        if len(cvs) != 3:
            raise ValueError(f"cvs_criteria of {stem!r} must hold 3 values, got {cvs!r}")
        frames.append(AnatomyFrame(
            stem=stem, image=image, mask=mask if mask.is_file() else None,
            video_id=str(entry.get("video_id", stem.split("_")[0])), cvs=tuple(float(v) for v in cvs),
        ))
    return frames


def load_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_mask(path: str | Path) -> np.ndarray:
    """uint8 (H, W) labels 0..6, 255 not annotated.

    A label outside 0..6 (one shipped val mask, 153_32700, has 24,522 px of label 7) is read as not
    annotated rather than guessed at.
    """
    from PIL import Image

    with Image.open(path) as im:
        mask = np.array(im)
    if mask.ndim != 2:
        raise ValueError(f"mask {str(path)!r} must be single-channel, got shape {mask.shape}")
    mask[(mask >= len(CLASSES)) & (mask != IGNORE)] = IGNORE
    return mask.astype(np.uint8)
