"""A case's detections in the standard formats other tools read: COCO results JSON and MOTChallenge txt.

Both take the case's detections table (`CaseResult.detections()`: x1..y2 in analysed-frame pixels,
confidence, class_id, tracker_id, frame_index of the source video) and number frames by the source
video's frame index, so they line up with the Cholec80 phase txt of the same case.
"""
from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd

_COLUMNS = ("x1", "y1", "x2", "y2", "confidence", "class_id", "tracker_id", "frame_index")


def _checked(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _COLUMNS if c not in table]
    if len(table) and missing:
        raise ValueError(f"detections table lacks columns {missing}")
    return table.sort_values(["frame_index", "class_id"], kind="stable") if len(table) else table


def coco_categories(class_names: Sequence[str]) -> list[dict[str, Any]]:
    """COCO categories: id = class_id + 1 (COCO ids start at 1), in the detector's class order."""
    return [{"id": i + 1, "name": str(n), "supercategory": "instrument"} for i, n in enumerate(class_names)]


def coco_results(table: pd.DataFrame) -> list[dict[str, Any]]:
    """COCO detection results: one {image_id, category_id, bbox [x, y, w, h], score} per box.

    `image_id` is the source video's frame index; `category_id` is class_id + 1 (see `coco_categories`).
    """
    table = _checked(table)
    if not len(table):
        return []
    xyxy = table[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    wh = np.clip(xyxy[:, 2:] - xyxy[:, :2], 0, None)
    return [{"image_id": int(f), "category_id": int(c) + 1,
             "bbox": [round(float(x), 2), round(float(y), 2), round(float(w), 2), round(float(h), 2)],
             "score": round(float(s), 4)}
            for f, c, (x, y), (w, h), s in zip(table["frame_index"], table["class_id"], xyxy[:, :2], wh,
                                               table["confidence"])]


def mot_text(table: pd.DataFrame) -> str:
    """MOTChallenge tracker output: `frame,id,bb_left,bb_top,bb_width,bb_height,conf,-1,-1,-1` per tracked box.

    Frames are 1-based (source frame index + 1), as MOTChallenge numbers them; untracked boxes (tracker_id -1)
    are left out.
    """
    table = _checked(table)
    out = io.StringIO()
    if len(table):
        tracked = table[table["tracker_id"] >= 0].sort_values(["frame_index", "tracker_id"], kind="stable")
        for row in tracked.itertuples(index=False):
            w, h = max(row.x2 - row.x1, 0.0), max(row.y2 - row.y1, 0.0)
            out.write(f"{int(row.frame_index) + 1},{int(row.tracker_id)},{row.x1:.2f},{row.y1:.2f},{w:.2f},{h:.2f},"
                      f"{row.confidence:.4f},-1,-1,-1\n")
    return out.getvalue()
