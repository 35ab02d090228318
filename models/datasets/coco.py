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


def write_coco(annotations: list[BoxAnnotation], class_names: list[str], json_path: str | Path,
               images_dir: str | Path, info: dict | None = None, image_extra: list[dict] | None = None) -> Path:
    """Write boxes as one COCO detection JSON; `read_coco(json_path, images_dir)` reads them back.

    Category ids are the class indices + 1 (COCO keeps 0 free); `file_name` is relative to `images_dir`;
    `image_extra` (one dict per annotation) adds fields to each image entry (e.g. its time in the video).
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    if image_extra is not None and len(image_extra) != len(annotations):
        raise ValueError(f"image_extra has {len(image_extra)} entries for {len(annotations)} images")
    images, boxes = [], []
    for image_id, ann in enumerate(annotations, start=1):
        try:
            file_name = Path(ann.image_path).resolve().relative_to(images_dir.resolve()).as_posix()
        except ValueError:
            raise DatasetError(f"image {str(ann.image_path)!r} is not inside {str(images_dir)!r}") from None
        images.append({"id": image_id, "file_name": file_name, "width": int(ann.width), "height": int(ann.height),
                       **((image_extra or [{}] * len(annotations))[image_id - 1])})
        for (x1, y1, x2, y2), label in zip(np.asarray(ann.xyxy, dtype=np.float64).reshape(-1, 4), ann.labels):
            if label not in class_names:
                raise DatasetError(f"label {label!r} of {str(ann.image_path)!r} is not one of {list(class_names)}")
            w, h = x2 - x1, y2 - y1
            boxes.append({"id": len(boxes) + 1, "image_id": image_id, "category_id": class_names.index(label) + 1,
                          "bbox": [round(float(x1), 2), round(float(y1), 2), round(float(w), 2), round(float(h), 2)],
                          "area": round(float(w * h), 2), "iscrowd": 0})
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "info": info or {}, "images": images, "annotations": boxes,
        "categories": [{"id": i + 1, "name": name, "supercategory": "instrument"} for i, name in enumerate(class_names)],
    }, indent=1))
    return json_path
