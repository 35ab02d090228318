"""The Library's thumbnail of a case: a small JPEG of the frame at THUMBNAIL_AT of the video.

Written at analysis time by `analysis.stages.thumbnail.ThumbnailStage` (from the analysed frames);
`CaseResult.thumbnail` makes it from the video for cases analysed before. Masked regions (burned-in
text, video/mask.py) are black in it, as in every picture made from the video.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from video.mask import apply_mask, parse_regions

THUMBNAIL_AT = 0.1  # fraction of the video: past the first seconds of a recording (often the tower's menu)
THUMBNAIL_WIDTH = 320  # pixels
JPEG_QUALITY = 80


def thumbnail_time(duration_s: float) -> float:
    """Seconds into a video of `duration_s` seconds where its thumbnail is taken."""
    return max(float(duration_s or 0.0), 0.0) * THUMBNAIL_AT


def thumbnail_jpeg(rgb: np.ndarray, mask=None, width: int = THUMBNAIL_WIDTH) -> bytes:
    """`rgb` (HxWx3 uint8) with `mask` regions black, at most `width` pixels wide, as JPEG bytes."""
    from PIL import Image

    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"a thumbnail needs an HxWx3 frame, got {getattr(rgb, 'shape', type(rgb).__name__)}")
    image = Image.fromarray(np.ascontiguousarray(apply_mask(rgb, parse_regions(mask))).astype(np.uint8))
    if image.width > width:
        image = image.resize((width, max(1, round(image.height * width / image.width))), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def write_thumbnail(rgb: np.ndarray, dst: str | Path, mask=None) -> Path:
    """Write the thumbnail of `rgb` to `dst` atomically (a reader never sees half a file)."""
    dst = Path(dst)
    data = thumbnail_jpeg(rgb, mask)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".thumbnail-", suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def make_thumbnail(video_path: str | Path, dst: str | Path, duration_s: float, mask=None) -> Path:
    """The thumbnail of the video at `video_path` (of `duration_s` seconds), written to `dst`."""
    from analysis.clips import representative_frame

    if not Path(video_path).is_file():
        raise FileNotFoundError(f"no video at {str(video_path)!r}")
    return write_thumbnail(representative_frame(video_path, thumbnail_time(duration_s)), dst, mask)
