"""CVS key moments and the CVS lane, from hand-made anatomy tables."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import charts
from analysis.analyze import AnalysisConfig, build_stages
from analysis.moments import MOMENT_KINDS, cvs_frame, cvs_moments, key_moments
from analysis.results import ANATOMY, PHASE_SEGMENTS, TOOL_PRESENCE, CaseResult
from analysis.stages.anatomy import AnatomyStage
from models.taxonomy import load_taxonomy
from tests.conftest import publish_case, video_info

TOOLS = load_taxonomy().tool_names


def anatomy_table(cvs: list[tuple[float, float, float]]) -> pd.DataFrame:
    """anatomy.parquet as the stage writes it, one row per second with these (C1, C2, C3)."""
    c = np.asarray(cvs, dtype=float)
    n = len(c)
    return pd.DataFrame({"frame_index": np.arange(n) * 25, "timestamp_s": np.arange(n, dtype=float),
                         "second": np.arange(n), "area_gallbladder": np.full(n, 0.3),
                         "cvs_c1": c[:, 0], "cvs_c2": c[:, 1], "cvs_c3": c[:, 2], "cvs_all": c.prod(axis=1)})


def presence(duration: int, clipper: list[int]) -> pd.DataFrame:
    table = pd.DataFrame({"second": np.arange(duration)})
    for tool in TOOLS:
        column = np.zeros(duration, dtype=np.float32)
        if tool == "Clipper":
            column[clipper] = 0.8
        table[tool] = column
    return table


LOW, HIGH = (0.2, 0.3, 0.1), (0.8, 0.7, 0.6)


def test_the_new_kinds_are_registered():
    assert {"cvs_reached", "clipping_before_cvs"} <= set(MOMENT_KINDS)


def test_cvs_reached_at_the_first_second_all_three_hold():
    table = anatomy_table([LOW] * 5 + [(0.8, 0.4, 0.9)] + [HIGH] * 4)
    moments = cvs_moments(table)
    assert [(m.kind, m.time_s) for m in moments] == [("cvs_reached", 6.0)]
    m = moments[0]
    assert m.text.startswith("CVS reached (C1 0.80 C2 0.70 C3 0.60)")
    assert m.confidence == pytest.approx(0.8 * 0.7 * 0.6, abs=1e-4)
    assert "not for clinical use" in m.note


def test_clipping_before_cvs_from_the_clipper():
    table = anatomy_table([LOW] * 10 + [HIGH] * 5)
    moments = cvs_moments(table, presence=presence(15, [7, 8]))
    kinds = {m.kind: m for m in moments}
    assert kinds["cvs_reached"].time_s == 10.0
    clip = kinds["clipping_before_cvs"]
    assert clip.time_s == 7.0 and clip.label == "Clipper"
    assert clip.confidence == pytest.approx(1 - 0.2 * 0.3 * 0.1, abs=1e-4)
    assert "Clipping began before CVS" in clip.text and "not for clinical use" in clip.note


def test_no_warning_when_cvs_came_first_or_nothing_was_assessed_before():
    assert [m.kind for m in cvs_moments(anatomy_table([HIGH] * 6), presence=presence(6, [4]))] == ["cvs_reached"]
    assert cvs_moments(anatomy_table([LOW] * 6)[3:], presence=presence(6, [1])) == []


def test_clipping_phase_start_counts_and_cvs_is_restricted_to_its_phases():
    # CVS "holds" at 2 s during Preparation (ignored), then clipping starts at 8 s without it.
    cvs = [LOW, LOW, HIGH, LOW, LOW, LOW, LOW, LOW, LOW, HIGH]
    segments = [{"start_s": 0.0, "end_s": 4.0, "label": "Preparation", "confidence": 0.9},
                {"start_s": 4.0, "end_s": 8.0, "label": "CalotTriangleDissection", "confidence": 0.9},
                {"start_s": 8.0, "end_s": 10.0, "label": "ClippingCutting", "confidence": 0.9}]
    moments = cvs_moments(anatomy_table(cvs), segments)
    assert [(m.kind, m.time_s) for m in moments] == [("cvs_reached", 9.0), ("clipping_before_cvs", 8.0)]


def test_nan_criteria_give_no_moments_and_no_lane():
    table = anatomy_table([(math.nan,) * 3] * 5)
    assert cvs_frame(table).empty and cvs_moments(table, presence=presence(5, [2])) == []
    fig = charts.case_timeline([], presence(5, []), 5.0, anatomy=table)
    assert not any(t.y is not None and "CVS" in list(t.y) for t in fig.data)


def test_key_moments_read_anatomy_parquet(tmp_path: Path):
    folder = tmp_path / "case"
    publish_case(folder, video_info(duration_s=12), tables={TOOL_PRESENCE: presence(12, [5, 6]),
                                                            ANATOMY: anatomy_table([LOW] * 8 + [HIGH] * 4)},
                 segments=[{"start_s": 0, "end_s": 12, "label": "CalotTriangleDissection", "confidence": 0.8}])
    kinds = [m.kind for m in key_moments(CaseResult.load(folder))]
    assert "cvs_reached" in kinds and "clipping_before_cvs" in kinds


def test_cvs_lane_in_the_case_timeline():
    table = anatomy_table([LOW] * 3 + [(0.8, 0.2, 0.1)] * 2 + [(0.8, 0.7, 0.2)] * 2 + [HIGH] * 3)
    spans = charts.cvs_spans(table)
    assert [(s["start_s"], s["end_s"], s["met"]) for s in spans] == [
        (0.0, 3.0, ()), (3.0, 5.0, ("C1",)), (5.0, 7.0, ("C1", "C2")), (7.0, 10.0, ("C1", "C2", "C3"))]
    segments = [{"start_s": 0.0, "end_s": 10.0, "label": "CalotTriangleDissection", "confidence": 0.9}]
    fig = charts.case_timeline(segments, presence(10, []), 10.0, anatomy=table)
    lane = [t for t in fig.data if t.y is not None and list(t.y)[:1] == ["CVS"]]
    names = {t.name for t in lane}
    assert {"CVS 1 of 3", "CVS 2 of 3", "CVS reached (C1 C2 C3)"} <= names
    reached = next(t for t in lane if t.name == "CVS reached (C1 C2 C3)")
    assert list(reached.base) == [7.0] and list(reached.x) == [3.0]
    assert list(reached.customdata[0][:2]) == [7.0, 10.0]  # click-to-seek like the other marks
    assert "CVS" in list(fig.layout.yaxis.categoryarray)
    # No anatomy: the figure is as before.
    assert "CVS" not in list(charts.case_timeline(segments, presence(10, []), 10.0).layout.yaxis.categoryarray)


def test_anatomy_stage_is_registered_before_phase():
    names = [s.name for s in build_stages(AnalysisConfig())]
    assert names.index("anatomy") < names.index("phase")
    assert "anatomy" not in [s.name for s in build_stages(AnalysisConfig(anatomy=False))]
    stage = next(s for s in build_stages(AnalysisConfig(anatomy_every_s=2.5)) if s.name == "anatomy")
    assert stage.every_s_setting == 2.5


class _Info:
    def __init__(self, duration_s):
        self.duration_s = duration_s


class _Ctx:
    def __init__(self, duration_s, out_dir):
        self.info, self.out_dir, self.outputs = _Info(duration_s), out_dir, {}


@pytest.mark.parametrize("duration_s, every_s", [(120.0, 1.0), (599.0, 1.0), (600.0, 5.0), (3600.0, 5.0)])
def test_auto_interval_from_the_video_length(tmp_path, duration_s, every_s):
    stage = AnatomyStage(model=tmp_path / "absent", every_s=None)
    stage.reset()
    stage.start(_Ctx(duration_s, tmp_path))
    assert stage.every_s == every_s


def test_a_missing_model_is_a_note_not_a_crash(tmp_path):
    stage = AnatomyStage(model=tmp_path / "absent")
    ctx = _Ctx(30.0, tmp_path)
    stage.reset()
    stage.start(ctx)
    stage([])
    summary = stage.finish(ctx)
    assert summary["frames"] == 0 and "no anatomy model" in summary["skipped"]
    assert not (tmp_path / ANATOMY).exists() and "anatomy" not in ctx.outputs


def test_cvs_lane_only_where_the_cvs_model_applies():
    """With phases, the lane (like the moments) keeps Calot triangle dissection and clipping seconds only."""
    table = anatomy_table([HIGH] * 10)
    segments = [{"start_s": 0.0, "end_s": 4.0, "label": "Preparation", "confidence": 0.9},
                {"start_s": 4.0, "end_s": 7.0, "label": "CalotTriangleDissection", "confidence": 0.9},
                {"start_s": 7.0, "end_s": 10.0, "label": "GallbladderDissection", "confidence": 0.9}]
    assert [(s["start_s"], s["end_s"]) for s in charts.cvs_spans(table, segments)] == [(4.0, 7.0)]
    assert [(s["start_s"], s["end_s"]) for s in charts.cvs_spans(table)] == [(0.0, 10.0)]
