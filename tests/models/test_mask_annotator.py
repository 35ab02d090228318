"""Drawing an anatomy label map: class colours blended over the frame, background untouched, a legend."""
import numpy as np
import pytest

from models.annotators import ANATOMY_COLOURS, MaskAnnotator, hex_to_rgb

CLASSES = ["background", "gallbladder", "cystic_duct"]


def test_classes_are_tinted_and_the_background_is_not():
    frame = np.full((40, 60, 3), 100, np.uint8)
    labels = np.zeros((40, 60), np.uint8)
    labels[20:, :20] = 1
    labels[20:, 40:] = 2
    drawn = MaskAnnotator(CLASSES, alpha=0.5, legend=False).annotate(frame, labels)
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8
    assert (drawn[:20] == 100).all()  # background: unchanged
    gold = np.array(hex_to_rgb(ANATOMY_COLOURS["gallbladder"]))
    assert np.abs(drawn[30, 10].astype(int) - (100 + gold) // 2).max() <= 1
    green = np.array(hex_to_rgb(ANATOMY_COLOURS["cystic_duct"]))
    assert np.abs(drawn[30, 50].astype(int) - (100 + green) // 2).max() <= 1
    assert (frame == 100).all()  # the input is not drawn on


def test_legend_names_only_the_classes_on_screen_and_none_draws_nothing():
    frame = np.zeros((120, 200, 3), np.uint8)
    labels = np.zeros((120, 200), np.uint8)
    labels[60:, :50] = 1
    annotator = MaskAnnotator(CLASSES, note="not for clinical use")
    drawn = annotator.annotate(frame, labels)
    assert drawn[:40, 100:].any()  # legend at the top right
    assert (annotator.annotate(frame, None) == frame).all()


@pytest.mark.parametrize("shape", [(10, 10), (40, 61)])
def test_label_map_of_another_size_is_refused(shape):
    with pytest.raises(ValueError, match=r"label map must have the frame's shape \(40, 60\), got"):
        MaskAnnotator(CLASSES).annotate(np.zeros((40, 60, 3), np.uint8), np.zeros(shape, np.uint8))


@pytest.mark.parametrize("alpha", [0, -0.5, 1.5])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=f"alpha must be in \\(0, 1\\], got {alpha!r}"):
        MaskAnnotator(CLASSES, alpha=alpha)
