from __future__ import annotations

import cv2
import numpy as np
import pytest

from video import FrameQuality, FrameReader, QualityThresholds, measure_quality, quality_findings


def _laparoscopic_view(h: int = 240, w: int = 428) -> np.ndarray:
    """Textured red tissue inside a circular field of view with black corners."""
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    tissue = np.clip(np.array([170, 60, 50], np.float32) + 60 * texture[..., None], 0, 255)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = np.hypot(yy - h / 2, xx - w / 2) < h * 0.65
    return (tissue * inside[..., None]).astype(np.uint8)


def _flagged(rgb: np.ndarray) -> set[str]:
    return {f.name for f in quality_findings(measure_quality(rgb)) if f.flagged}


def test_clear_laparoscopic_view_raises_no_finding():
    q = measure_quality(_laparoscopic_view())
    assert _flagged(_laparoscopic_view()) == set()
    assert q.out_of_body_score < 0.2 and 0 < q.brightness < 1


def test_blur_lowers_sharpness_below_threshold():
    sharp = _laparoscopic_view()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert measure_quality(blurred).blur < measure_quality(sharp).blur / 5
    assert "blur" in _flagged(blurred)


def test_smoke_veil_raises_haze():
    view = _laparoscopic_view()
    smoky = cv2.addWeighted(view, 0.4, np.full_like(view, 230), 0.6, 0)
    smoky[view.sum(axis=2) == 0] = 0  # the vignette stays black
    assert measure_quality(smoky).haze > measure_quality(view).haze + 0.2
    assert "haze" in _flagged(smoky)


def test_exposure_extremes():
    white = measure_quality(np.full((120, 160, 3), 255, np.uint8))
    black = measure_quality(np.zeros((120, 160, 3), np.uint8))
    assert (white.overexposed_fraction, white.brightness) == (1.0, pytest.approx(1.0))
    assert (black.underexposed_fraction, black.brightness, black.haze) == (1.0, 0.0, 0.0)
    assert {"overexposed"} <= _flagged(np.full((120, 160, 3), 255, np.uint8))
    assert {"dark", "underexposed"} <= _flagged(np.zeros((120, 160, 3), np.uint8))


def test_operating_room_view_scores_out_of_body():
    room = np.zeros((240, 428, 3), np.uint8)
    room[:] = (70, 110, 150)  # blue-green drapes
    room[40:120, 100:300] = (225, 225, 220)  # lamp and white surfaces, no vignette
    assert measure_quality(room).out_of_body_score > 0.9
    assert "out_of_body" in _flagged(room)


def test_measures_do_not_depend_on_resolution():
    view = _laparoscopic_view(480, 854)
    small, large = measure_quality(cv2.resize(view, (427, 240), interpolation=cv2.INTER_AREA)), measure_quality(view)
    assert small.haze == pytest.approx(large.haze, abs=0.02)
    assert small.out_of_body_score == pytest.approx(large.out_of_body_score, abs=0.05)


def test_findings_follow_thresholds():
    q = measure_quality(_laparoscopic_view())
    findings = quality_findings(q, QualityThresholds(max_haze=0.0))
    assert [f.name for f in findings] == ["blur", "haze", "dark", "overexposed", "underexposed", "out_of_body"]
    haze = findings[1]
    assert (haze.value, haze.threshold, haze.flagged) == (q.haze, 0.0, True)
    assert set(q.to_dict()) == set(FrameQuality.__dataclass_fields__)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10), np.uint8), r"HxWx3 uint8 RGB image, got shape \(10, 10\)"),
        (np.zeros((10, 10, 3), np.float32), "dtype float32"),
        (np.zeros((10, 10, 4), np.uint8), r"shape \(10, 10, 4\)"),
        (np.zeros((1, 10, 3), np.uint8), r"shape \(1, 10, 3\)"),
        ("frame.png", "got str"),
    ],
)
def test_bad_images_are_rejected(image, message):
    with pytest.raises(ValueError, match=message):
        measure_quality(image)


def test_real_clips_clear_versus_smoky(cholec_clips, smoke_clips):
    clear = [measure_quality(f.rgb) for f in FrameReader(cholec_clips[0], sample_fps=0.25)]
    assert not any(f.flagged for q in clear for f in quality_findings(q) if f.name in ("haze", "blur", "out_of_body"))
    smoky = [measure_quality(f.rgb) for clip in smoke_clips for f in FrameReader(clip, sample_fps=0.5)]
    assert np.median([q.haze for q in smoky]) > np.median([q.haze for q in clear]) + 0.05
