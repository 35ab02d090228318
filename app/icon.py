"""The browser tab's icon, drawn here: a Material or emoji page icon makes the browser fetch it from a
font or image host on the internet, and the dashboard must work offline."""
from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 64


def app_icon(size: int = SIZE) -> Image.Image:
    """An RGBA lens: a dark ring with a red pupil, on a transparent background."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    r = np.hypot(x - size / 2, y - size / 2) / (size / 2)
    icon = np.zeros((size, size, 4), np.uint8)
    icon[r <= 1.0] = (38, 39, 48, 255)
    icon[r <= 0.78] = (255, 255, 255, 255)
    icon[r <= 0.46] = (255, 75, 75, 255)
    icon[(np.hypot(x - size * 0.42, y - size * 0.42) / (size / 2)) <= 0.12] = (255, 255, 255, 255)
    return Image.fromarray(icon, "RGBA")
