"""COCO detection annotations (one JSON with images, categories and xywh pixel boxes)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.datasets.voc import BoxAnnotation, DatasetError


def read_coco(json_path: str | Path, images_dir: str | Path) -> list[BoxAnnotation]:
    """Boxes of every image listed in a COCO JSON, in file order; images without boxes have none.

    COCO `bbox` is [x, y, width, height] in pixels; it becomes xyxy. Labels are category names.
    `images_dir` is the folder that the images' `file_name` entries are relative to.
    """
    json_path = Path(json_path)
    try:
        raw = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read COCO annotations {str(json_path)!r}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"COCO annotations {str(json_path)!r} are not a JSON object")
    missing = [k for k in ("images", "annotations", "categories") if k not in raw]
    if missing:
        raise DatasetError(f"COCO annotations {str(json_path)!r} lack {missing}")
    names = {int(c["id"]): str(c["name"]) for c in raw["categories"]}
    boxes: dict[int, list[list[float]]] = {int(img["id"]): [] for img in raw["images"]}
    labels: dict[int, list[str]] = {i: [] for i in boxes}
    for ann in raw["annotations"]:
        image_id, category = int(ann["image_id"]), int(ann["category_id"])
        if image_id not in boxes:
            raise DatasetError(f"annotation {ann.get('id')!r} in {str(json_path)!r} refers to unknown image id {image_id}")
        if category not in names:
            raise DatasetError(f"annotation {ann.get('id')!r} in {str(json_path)!r} has unknown category id {category}")
        bbox = ann.get("bbox")
        if not bbox or len(bbox) != 4:
            raise DatasetError(f"annotation {ann.get('id')!r} in {str(json_path)!r} has no [x, y, w, h] bbox: {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        boxes[image_id].append([x, y, x + w, y + h])
        labels[image_id].append(names[category])
    return [
        BoxAnnotation(
            image_path=Path(images_dir) / img["file_name"],
            width=int(img.get("width", 0)),
            height=int(img.get("height", 0)),
            xyxy=np.asarray(boxes[int(img["id"])], dtype=np.float32).reshape(-1, 4),
            labels=tuple(labels[int(img["id"])]),
        )
        for img in raw["images"]
    ]
