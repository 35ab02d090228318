"""Pascal VOC detection sets (m2cai16-tool-locations is one)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset file or folder that cannot be read."""


@dataclass(frozen=True)
class BoxAnnotation:
    """Ground-truth boxes of one image: xyxy in pixels and class names."""

    image_path: Path
    width: int
    height: int
    xyxy: np.ndarray  # (N, 4) float32
    labels: tuple[str, ...]


def read_voc_xml(xml_path: str | Path, images_dir: str | Path) -> BoxAnnotation:
    """Parse one VOC annotation file."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"cannot read VOC annotation {str(xml_path)!r}: {exc}") from exc
    size = root.find("size")
    if size is None:
        raise DatasetError(f"VOC annotation {str(xml_path)!r} has no <size>")
    width, height = int(size.findtext("width", "0")), int(size.findtext("height", "0"))
    boxes, labels = [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        boxes.append([float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")])
        labels.append(obj.findtext("name", "").strip())
    filename = root.findtext("filename") or xml_path.with_suffix(".jpg").name
    return BoxAnnotation(
        image_path=Path(images_dir) / filename,
        width=width,
        height=height,
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=tuple(labels),
    )


class VOCDataset:
    """A VOC folder (Annotations/, JPEGImages/, ImageSets/Main/<split>.txt)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / "Annotations").is_dir():
            raise DatasetError(f"{str(self.root)!r} is not a VOC dataset (no Annotations/ folder)")

    def class_names(self) -> list[str]:
        """Class names from class_list.txt ("<id> <name>" lines) if present, else from the XMLs."""
        listing = self.root / "class_list.txt"
        if listing.exists():
            return [line.split()[-1] for line in listing.read_text().splitlines() if line.strip()]
        names: list[str] = []
        for ann in self.read_split(None):
            names += [n for n in ann.labels if n not in names]
        return names

    def split_ids(self, split: str | None) -> list[str]:
        """Image ids of an official split, or every annotated image when split is None."""
        if split is None:
            return sorted(p.stem for p in (self.root / "Annotations").glob("*.xml"))
        path = self.root / "ImageSets" / "Main" / f"{split}.txt"
        if not path.exists():
            raise DatasetError(f"split {split!r} not found: {str(path)!r}")
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]

    def read_split(self, split: str | None) -> list[BoxAnnotation]:
        """All annotations of a split."""
        return [
            read_voc_xml(self.root / "Annotations" / f"{i}.xml", self.root / "JPEGImages")
            for i in self.split_ids(split)
        ]
