"""Anatomy as phase evidence: the Calot-vs-gallbladder-dissection regression, smoothing and fusion."""
import numpy as np
import pytest

from models.phase.appearance import CALOT, GB_DISSECTION, CalotEvidence, area_features, fuse, smooth
from models.taxonomy import load_taxonomy

NAMES = load_taxonomy().phase_names
CLASSES = ("cystic_plate", "hepatocystic_triangle", "cystic_duct", "gallbladder")


def _frames(rng, n, calot):
    """Calot frames show triangle and duct; gallbladder-dissection frames the plate and more gallbladder."""
    areas = []
    for _ in range(n):
        if calot:
            areas.append({"hepatocystic_triangle": rng.uniform(0.05, 0.2), "cystic_duct": rng.uniform(0.01, 0.05),
                          "gallbladder": rng.uniform(0.1, 0.3), "cystic_plate": rng.uniform(0, 0.01)})
        else:
            areas.append({"cystic_plate": rng.uniform(0.05, 0.2), "gallbladder": rng.uniform(0.2, 0.5)})
    return areas


def test_evidence_separates_the_two_dissections_and_round_trips():
    rng = np.random.default_rng(0)
    areas = _frames(rng, 40, True) + _frames(rng, 30, False)
    y = np.r_[np.ones(40, bool), np.zeros(30, bool)]
    ev = CalotEvidence.fit(area_features(areas, CLASSES), y, CLASSES)
    ratio = ev.log_ratio(area_features(_frames(rng, 5, True) + _frames(rng, 5, False), CLASSES))
    assert (ratio[:5] > 0).all() and (ratio[5:] < 0).all()
    back = CalotEvidence.from_state(ev.to_state())
    np.testing.assert_allclose(back.log_ratio(area_features(areas, CLASSES)), ev.log_ratio(area_features(areas, CLASSES)))
    assert back.frames == 70


def test_fit_needs_both_phases():
    with pytest.raises(ValueError, match="need frames of both phases"):
        CalotEvidence.fit(np.zeros((3, 2)), np.ones(3, bool), ("a", "b"))


def test_fuse_moves_mass_only_between_the_two_dissections():
    c, g = NAMES.index(CALOT), NAMES.index(GB_DISSECTION)
    probs = np.full((3, 7), 0.05)
    probs[:, c], probs[:, g] = 0.15, 0.6
    out = fuse(probs, np.array([0.0, 3.0, -3.0]), NAMES)
    np.testing.assert_allclose(out.sum(axis=1), probs.sum(axis=1))
    others = [i for i in range(7) if i not in (c, g)]
    np.testing.assert_allclose(out[:, others], probs[:, others])
    np.testing.assert_allclose(out[0], probs[0])  # no evidence, no change
    assert out[1, c] > out[1, g]  # strong anatomy evidence for Calot overturns the tool prior
    assert out[2, c] < probs[2, c]


def test_smooth_is_a_centred_mean():
    np.testing.assert_allclose(smooth(np.array([0.0, 3.0, 0.0]), 3), [1.5, 1.0, 1.5])
    np.testing.assert_allclose(smooth(np.array([1.0, 2.0]), 1), [1.0, 2.0])
