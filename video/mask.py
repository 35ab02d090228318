"""Blacking out burned-in text: rectangles of a frame (a tower's patient name and date overlay) set to black.

Regions are rectangles in fractions of the frame, `(x0, y0, x1, y1)` with 0 <= x0 < x1 <= 1 and
0 <= y0 < y1 <= 1, so one mask fits the original, the analysed (resized) frames and the thumbnails
alike. A case keeps its regions in its metadata; every picture SurgLens writes from the video
(annotated video and clips, report key frames, stills) goes through `apply_mask`.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

Region = tuple[float, float, float, float]
MAX_REGIONS = 16


def parse_regions(regions: Iterable[Sequence[float]] | None) -> tuple[Region, ...]:
    """Validated regions as tuples of floats; raises ValueError naming the bad one."""
    out: list[Region] = []
    for region in regions or ():
        if isinstance(region, (str, bytes)) or len(region) != 4:
            raise ValueError(f"a mask region is (x0, y0, x1, y1) in fractions of the frame, got {region!r}")
        try:
            x0, y0, x1, y1 = (float(v) for v in region)
        except (TypeError, ValueError):
            raise ValueError(f"mask region values must be numbers, got {region!r}") from None
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)) or x0 >= x1 or y0 >= y1:
            raise ValueError(f"a mask region needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {region!r}")
        out.append((x0, y0, x1, y1))
    if len(out) > MAX_REGIONS:
        raise ValueError(f"at most {MAX_REGIONS} mask regions, got {len(out)}")
    return tuple(out)


def parse_region_text(text: str) -> Region:
    """One region from "x0,y0,x1,y1" (fractions, e.g. "0,0,0.3,0.08"), as the CLI takes it."""
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    if len(parts) != 4:
        raise ValueError(f"a mask region is four fractions x0,y0,x1,y1 (e.g. 0,0,0.3,0.08), got {text!r}")
    return parse_regions([parts])[0]


def region_pixels(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel box (x0, y0, x1, y1) a region covers in a width x height frame, rounded outwards."""
    x0, y0, x1, y1 = region
    return (max(0, math.floor(x0 * width)), max(0, math.floor(y0 * height)),
            min(width, math.ceil(x1 * width)), min(height, math.ceil(y1 * height)))


def apply_mask(rgb: np.ndarray, regions: Sequence[Region] | None, *, copy: bool = True) -> np.ndarray:
    """`rgb` (HxWxC) with every region set to black; a copy unless `copy=False` (then in place)."""
    if not regions:
        return rgb
    if not isinstance(rgb, np.ndarray) or rgb.ndim not in (2, 3):
        raise ValueError(f"a frame must be an HxW or HxWxC array, got {getattr(rgb, 'shape', type(rgb).__name__)}")
    out = rgb.copy() if copy else rgb
    height, width = out.shape[:2]
    for region in regions:
        x0, y0, x1, y1 = region_pixels(region, width, height)
        out[y0:y1, x0:x1] = 0
    return out
