"""Per-frame image quality of laparoscopic video: blur, haze/smoke, exposure and out-of-body views.

Every measure is computed on the frame scaled to 256 px height, so values do not depend on the
video's resolution. "Lit" pixels are those with luma > 0.08; the dark circular vignette of a
laparoscope is not lit and is left out of the haze measure.

- blur: variance of the Laplacian of the grey image (0-255 levels). LOW means blurry.
- haze: mean dark channel (per-pixel RGB minimum, then a 15 px minimum filter; He et al. 2009)
  over lit pixels, 0..1. Smoke adds a whitish veil that lifts the darkest colour channel.
- brightness: mean luma of the whole frame, 0..1.
- overexposed_fraction / underexposed_fraction: share of pixels with luma >= 250/255 / <= 10/255.
- out_of_body_score: 0..1, HIGH means probably outside the patient. In-body views are
  reddish/pinkish (hue < 30 or >= 320 degrees, saturation >= 0.2) and laparoscopes show a dark
  vignette in the frame corners around a lit centre; the score is
  1 - (0.6 * clip((red_fraction - 0.2) / 0.3, 0, 1) + 0.4 * dark_corners * lit_centre).

Calibration (thresholds in `QualityThresholds`), reproduced by
`.venv/bin/python -m bench.quality_calibration` on 2026-11-23:
  frames: 192 clear (cholec-clips at 1 fps), 500 smoky (smoke-clips, all frames, labelled per
  clip), the clear frames blurred (Gaussian sigma 2.5 px), 94 more in-body frames (m2cai16,
  CholecT50) and 5 natural photos as out-of-body stand-ins. "Good views": clear and in-body
  frames with out_of_body_score <= 0.5 (248; this drops the cholec clip that shows the trocar
  tube and the 4 s black tail of another).
  haze: ROC AUC 0.82 smoky vs good clear; max_haze 0.248 (Youden optimum) flags 61% of smoky
    frames and 0% of good clear ones. Smoke clips come from another camera and procedure and are
    labelled per clip, so treat haze as a hint, not a detector.
  blur: AUC 0.995 blurred vs clear; min_sharpness 49.0 flags 100% blurred, 1% clear.
  exposure (1st / 99th percentile of good views): min_brightness 0.13,
    max_overexposed_fraction 0.05, max_underexposed_fraction 0.45 (the vignette alone covers
    about a third of a 16:9 laparoscopic frame).
  out_of_body_score > 0.5: 4 of 5 natural photos (missed: two faces before a red, blurred
  stadium crowd), 2-4% of the in-body sets, and in the clear clips 31 of the 32 frames of the
  trocar-tube clip plus the black tail, nothing else.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import cv2
import numpy as np

WORK_HEIGHT = 256
LIT_LUMA = 0.08
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_DARK_PATCH = np.ones((15, 15), np.uint8)


@dataclass(frozen=True)
class FrameQuality:
    """Quality measures of one frame (see the module docstring for definitions and units)."""

    blur: float
    haze: float
    brightness: float
    overexposed_fraction: float
    underexposed_fraction: float
    out_of_body_score: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class QualityThresholds:
    """Where a measure becomes a finding; defaults calibrated on the shared clips (module docstring)."""

    min_sharpness: float = 49.0
    max_haze: float = 0.248
    min_brightness: float = 0.13
    max_overexposed_fraction: float = 0.05
    max_underexposed_fraction: float = 0.45
    max_out_of_body_score: float = 0.5


@dataclass(frozen=True)
class Finding:
    """One measure against its threshold; `flagged` when the frame is on the bad side."""

    name: str
    value: float
    threshold: float
    flagged: bool


def measure_quality(rgb: np.ndarray) -> FrameQuality:
    """Measure one RGB frame (HxWx3 uint8)."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 2:
        got = f"shape {rgb.shape} dtype {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"measure_quality needs an HxWx3 uint8 RGB image, got {got}")
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(2, round(w * WORK_HEIGHT / h)), WORK_HEIGHT), interpolation=cv2.INTER_AREA)
    img = small.astype(np.float32) / 255.0
    luma = img @ _LUMA
    lit = luma > LIT_LUMA
    grey = luma * 255.0
    return FrameQuality(
        blur=float(cv2.Laplacian(grey, cv2.CV_32F).var()),
        haze=_haze(img, lit),
        brightness=float(luma.mean()),
        overexposed_fraction=float((grey >= 250).mean()),
        underexposed_fraction=float((grey <= 10).mean()),
        out_of_body_score=_out_of_body_score(small, luma, lit),
    )


def quality_findings(q: FrameQuality, thresholds: QualityThresholds | None = None) -> list[Finding]:
    """Each measure of `q` against `thresholds` (defaults: the calibrated ones)."""
    t = thresholds or QualityThresholds()
    return [
        Finding("blur", q.blur, t.min_sharpness, q.blur < t.min_sharpness),
        Finding("haze", q.haze, t.max_haze, q.haze > t.max_haze),
        Finding("dark", q.brightness, t.min_brightness, q.brightness < t.min_brightness),
        Finding("overexposed", q.overexposed_fraction, t.max_overexposed_fraction, q.overexposed_fraction > t.max_overexposed_fraction),
        Finding("underexposed", q.underexposed_fraction, t.max_underexposed_fraction, q.underexposed_fraction > t.max_underexposed_fraction),
        Finding("out_of_body", q.out_of_body_score, t.max_out_of_body_score, q.out_of_body_score > t.max_out_of_body_score),
    ]


def _haze(img: np.ndarray, lit: np.ndarray) -> float:
    if not lit.any():
        return 0.0
    darkest = img.min(axis=2)
    darkest[~lit] = 1.0  # the unlit vignette must not pull the minimum filter down
    return float(cv2.erode(darkest, _DARK_PATCH)[lit].mean())


def _out_of_body_score(small: np.ndarray, luma: np.ndarray, lit: np.ndarray) -> float:
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)  # OpenCV hue is degrees / 2
    hue, sat = hsv[..., 0], hsv[..., 1]
    reddish = ((hue < 15) | (hue >= 160)) & (sat >= 51)
    red_fraction = float(reddish[lit].mean()) if lit.any() else 0.0
    corners, centre = _vignette_masks(*luma.shape)
    dark_corners = float((luma[corners] <= LIT_LUMA).mean())
    lit_centre = float(lit[centre].mean())
    in_body = 0.6 * float(np.clip((red_fraction - 0.2) / 0.3, 0.0, 1.0)) + 0.4 * dark_corners * lit_centre
    return 1.0 - in_body


@functools.lru_cache(maxsize=8)
def _vignette_masks(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame corners (outside the ellipse inscribed in the frame, scaled 1.1) and the centre disc."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy = (yy - h / 2) / (h / 2)
    corners = np.hypot(dy, (xx - w / 2) / (w / 2)) > 1.1
    centre = np.hypot(dy, (xx - w / 2) / (h / 2)) < 0.6
    return corners, centre
