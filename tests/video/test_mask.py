"""video.mask: rectangles of burned-in text blacked out, in fractions of any frame size."""
from __future__ import annotations

import numpy as np
import pytest

from video.mask import apply_mask, parse_region_text, parse_regions, region_pixels


def test_regions_black_out_in_any_frame_size():
    regions = parse_regions([(0.0, 0.0, 0.5, 0.25), [0.75, 0.75, 1, 1]])
    for h, w in ((48, 64), (480, 854), (97, 131)):
        rgb = np.full((h, w, 3), 200, np.uint8)
        out = apply_mask(rgb, regions)
        assert rgb.min() == 200  # a copy: the input is untouched
        x0, y0, x1, y1 = region_pixels(regions[0], w, h)
        assert out[y0:y1, x0:x1].max() == 0 and (x0, y0) == (0, 0) and x1 >= w // 2 and y1 >= h // 4
        assert out[h - 1, w - 1].max() == 0 and out[h // 2, w // 2].min() == 200
        assert (out == 0).all(axis=2).sum() < h * w * 0.45  # only the regions


def test_no_regions_is_the_frame_itself_and_in_place_masking():
    rgb = np.full((10, 10, 3), 7, np.uint8)
    assert apply_mask(rgb, ()) is rgb
    assert apply_mask(rgb, [(0, 0, 1, 1)], copy=False) is rgb and rgb.max() == 0


def test_region_text():
    assert parse_region_text("0, 0, 0.3,0.08") == (0.0, 0.0, 0.3, 0.08)


@pytest.mark.parametrize(("regions", "match"), [
    ([(0.5, 0.0, 0.2, 0.1)], "x0 < x1"),
    ([(0.0, 0.0, 1.2, 0.1)], "x0 < x1"),
    ([(0.0, 0.0, 1.0)], r"\(x0, y0, x1, y1\)"),
    (["0,0,1,1"], r"\(x0, y0, x1, y1\)"),
    ([("a", 0, 1, 1)], "must be numbers"),
    ([(0, 0, float("nan"), 1)], "x0 < x1"),
    ([(0, 0, 1, 1)] * 17, "at most 16"),
])
def test_bad_regions(regions, match):
    with pytest.raises(ValueError, match=match):
        parse_regions(regions)


@pytest.mark.parametrize("text", ["0,0,0.3", "a,b,c,d", ""])
def test_bad_region_text(text):
    with pytest.raises(ValueError, match="mask region"):
        parse_region_text(text)
