"""Case review with an anatomy.parquet: the CVS lane, the CVS key moments and the anatomy still."""
from pathlib import Path

import numpy as np
import pandas as pd

import models.anatomy.model as anatomy_module
from analysis.results import ANATOMY
from models.anatomy.data import CLASSES
from models.anatomy.model import AnatomyResult
from tests.app.conftest import figures, open_page, texts, write_case

# C1..C3 per second of the 6 s fake case (Preparation 0-2 s, Calot triangle dissection 2-6 s, Clipper at 3-4 s).
CVS = [(0.1, 0.1, 0.1), (0.2, 0.2, 0.1), (0.7, 0.3, 0.2), (0.8, 0.6, 0.3), (0.9, 0.8, 0.7), (0.9, 0.8, 0.8)]


def analyze_with_anatomy(video_path: Path, out_dir: Path, config, progress):
    c = np.asarray(CVS)
    anatomy = pd.DataFrame({"frame_index": np.arange(6) * 10, "timestamp_s": np.arange(6.0), "second": np.arange(6),
                            "area_gallbladder": 0.3, "cvs_c1": c[:, 0], "cvs_c2": c[:, 1], "cvs_c3": c[:, 2],
                            "cvs_all": c.prod(axis=1)})
    return write_case(out_dir, video_path, tables={ANATOMY: anatomy})


class FakeAnatomyModel:
    """Labels the left half gallbladder; fixed criteria."""

    classes = list(CLASSES)

    def __init__(self, ref=None, **kwargs):
        pass

    def __call__(self, frames, indices=None):
        labels = np.zeros(frames[0].shape[:2], np.uint8)
        labels[:, : labels.shape[1] // 2] = CLASSES.index("gallbladder")
        return [AnatomyResult(labels, {c: 0.5 if c == "gallbladder" else 0.0 for c in CLASSES[1:]},
                              {"C1": 0.81, "C2": 0.42, "C3": 0.63})]


def test_cvs_lane_and_moments(library, add_case):
    at = open_page("case_review", case_id=add_case(analyze=analyze_with_anatomy))
    timeline = figures(at)["timeline"]
    lane = {t.name for t in timeline.data if t.y is not None and list(t.y)[:1] == ["CVS"]}
    assert {"CVS 1 of 3", "CVS 2 of 3", "CVS reached (C1 C2 C3)"} <= lane
    shown = texts(at)
    assert "0:04  CVS reached (C1 0.90 C2 0.80 C3 0.70), all three 50%" in shown
    # The clipper came at 0:03, before CVS at 0:04: flagged, with the caveat.
    assert "0:03  Clipping began before CVS" in shown
    assert "not for clinical use" in shown


def open_anatomy_tab(at):
    at.session_state["review_tab"] = "Anatomy"
    at.run()
    assert not at.exception, at.exception
    return at


def test_anatomy_still_at_a_moment(library, add_case, monkeypatch):
    monkeypatch.setattr(anatomy_module, "AnatomyModel", FakeAnatomyModel)
    at = open_anatomy_tab(open_page("case_review", case_id=add_case(analyze=analyze_with_anatomy)))
    assert [img.captions[0] for img in at.get("image")] == ["Anatomy at 0:00"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"C1 two structures": "0.81", "C2 triangle cleared": "0.42", "C3 cystic plate": "0.63"}
    assert "not for clinical use" in texts(at)
    choices = at.selectbox(key="anatomy_at").options
    assert any("CVS reached" in c for c in choices)  # any key moment's frame can be segmented


def test_without_an_anatomy_model_the_tab_says_so(library, add_case, monkeypatch, tmp_path):
    import app.resources

    monkeypatch.setattr(app.resources, "ANATOMY_MODEL", str(tmp_path / "no-such-model"))
    at = open_anatomy_tab(open_page("case_review", case_id=add_case(analyze=analyze_with_anatomy)))
    assert "No anatomy model is installed" in texts(at)
