"""Study-mode scoring on hand-made timelines."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.study import (
    clean_marks,
    marks_from_segments,
    match_transitions,
    phase_jaccard,
    score_attempt,
    segments_from_marks,
    tool_scores,
    tools_shown,
)
from analysis.teaching_charts import phase_aligned, study_progress, timelines_on_one_axis, transition_errors

REFERENCE = [
    {"start_s": 0.0, "end_s": 10.0, "label": "Preparation"},
    {"start_s": 10.0, "end_s": 30.0, "label": "CalotTriangleDissection"},
    {"start_s": 30.0, "end_s": 40.0, "label": "ClippingCutting"},
]


def test_perfect_marks_score_perfectly():
    score = score_attempt(REFERENCE, marks_from_segments(REFERENCE), 40.0, "educator")
    assert score.reference_source == "educator"
    assert [(t.phase, t.reference_s, t.error_s) for t in score.transitions] == [
        ("CalotTriangleDissection", 10.0, 0.0), ("ClippingCutting", 30.0, 0.0)]
    assert score.mean_abs_error_s == 0.0 and score.missed == 0
    assert score.jaccard == {"Preparation": 1.0, "CalotTriangleDissection": 1.0, "ClippingCutting": 1.0}
    assert score.mean_jaccard == 1.0


def test_late_and_missed_transitions_and_jaccard_on_seconds():
    # Calot dissection marked 5 s late, clipping never marked: it is missed, its seconds count as Calot.
    score = score_attempt(REFERENCE, [(0, "Preparation"), (15, "CalotTriangleDissection")], 40.0)
    assert [t.error_s for t in score.transitions] == [5.0, None]
    assert score.missed == 1 and score.mean_abs_error_s == 5.0
    assert score.jaccard["Preparation"] == pytest.approx(10 / 15)
    assert score.jaccard["CalotTriangleDissection"] == pytest.approx(15 / 30)
    assert score.jaccard["ClippingCutting"] == 0.0
    assert score.mean_jaccard == pytest.approx((10 / 15 + 0.5 + 0.0) / 3)
    assert score.to_dict()["missed_transitions"] == 1


def test_nearest_mark_into_the_same_phase_is_matched():
    reference = REFERENCE + [{"start_s": 40.0, "end_s": 50.0, "label": "CalotTriangleDissection"}]
    marks = [(0, "Preparation"), (8, "CalotTriangleDissection"), (31, "ClippingCutting"), (44, "CalotTriangleDissection")]
    matches = match_transitions(reference, marks)
    assert [(m.reference_s, m.trainee_s) for m in matches] == [(10.0, 8.0), (30.0, 31.0), (40.0, 44.0)]
    assert [m.error_s for m in matches] == [-2.0, 1.0, 4.0]


def test_unlabelled_start_before_the_first_mark():
    segments = segments_from_marks([(5, "Preparation"), (10, "CalotTriangleDissection")], 20.0)
    assert segments == [{"start_s": 5.0, "end_s": 10.0, "label": "Preparation"},
                        {"start_s": 10.0, "end_s": 20.0, "label": "CalotTriangleDissection"}]
    assert phase_jaccard(REFERENCE[:2], segments, 20.0)["Preparation"] == pytest.approx(0.5)


def test_repeated_phase_marks_merge():
    assert clean_marks([(10, "A"), (0, "A"), (20, "B")]) == [(0.0, "A"), (20.0, "B")]


@pytest.mark.parametrize("marks, message", [
    ([(-1, "Preparation")], "must be >= 0"),
    ([(50, "Preparation")], "after the end of the video"),
    ([(3, "Preparation"), (3, "ClippingCutting")], "two marks at the same time"),
])
def test_bad_marks(marks, message):
    with pytest.raises(ValueError, match=message):
        score_attempt(REFERENCE, marks, 40.0)


def test_bad_reference_source():
    with pytest.raises(ValueError, match="reference_source must be"):
        score_attempt(REFERENCE, [(0, "Preparation")], 40.0, "teacher")


def test_tool_f1_pools_the_marked_moments():
    shown = {5.0: {"Grasper", "Hook"}, 20.0: {"Grasper"}}
    precision, recall, f1 = tool_scores([(5.0, ["Grasper"]), (20.0, ["Grasper", "Clipper"])], shown)
    assert (precision, recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert f1 == pytest.approx(2 / 3)
    assert tool_scores([], shown) is None
    score = score_attempt(REFERENCE, [(0, "Preparation")], 40.0, tool_marks=[(5.0, ["Grasper", "Hook"])],
                          reference_tools_at=shown)
    assert score.tool_f1 == 1.0
    with pytest.raises(ValueError, match="reference_tools_at"):
        score_attempt(REFERENCE, [(0, "Preparation")], 40.0, tool_marks=[(5.0, ["Grasper"])])


def test_tools_shown_reads_the_presence_second():
    presence = pd.DataFrame({"second": [0, 1, 2], "Grasper": [0.9, 0.0, 0.8], "Hook": [0.0, 0.7, 0.0]})
    assert tools_shown(presence, 1.6) == {"Hook"}
    assert tools_shown(presence, 2.0) == {"Grasper"}
    assert tools_shown(presence, 30.0) == set()
    assert tools_shown(pd.DataFrame(), 1.0) == set()


def test_cvs_error():
    score = score_attempt(REFERENCE, [(0, "Preparation")], 40.0, cvs_s=28.0, reference_cvs_s=25.0)
    assert score.cvs_error_s == 3.0
    assert score_attempt(REFERENCE, [(0, "Preparation")], 40.0, cvs_s=28.0).cvs_error_s is None


def test_charts():
    trainee = segments_from_marks([(0, "Preparation"), (15, "CalotTriangleDissection")], 40.0)
    fig = timelines_on_one_axis({"Reference": REFERENCE, "You": trainee}, 40.0, marks={"You": [0, 15]})
    lanes = {y for trace in fig.data for y in (trace.y or ())}
    assert lanes == {"Reference", "You"}
    assert sum(bool(t.showlegend) for t in fig.data if t.type == "bar") == 3  # one legend entry per phase
    score = score_attempt(REFERENCE, [(0, "Preparation"), (15, "CalotTriangleDissection")], 40.0)
    bars = transition_errors(score.to_dict()["transitions"]).data[0]
    assert list(bars.text) == ["+5 s", "missed"]
    attempts = pd.DataFrame({"created_at": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
                             "mean_jaccard": [0.5, 0.8], "mean_abs_error_s": [10.0, 3.0], "case": ["A", "B"]})
    assert [list(t.y) for t in study_progress(attempts).data] == [[0.5, 0.8], [10.0, 3.0]]
    assert study_progress(attempts.iloc[:0]).data == ()


def test_phase_aligned_slots_start_together():
    a = REFERENCE
    b = [{"start_s": 0.0, "end_s": 20.0, "label": "Preparation"},
         {"start_s": 20.0, "end_s": 25.0, "label": "CalotTriangleDissection"}]
    fig = phase_aligned({"A": a, "B": b})
    bases = {(t.y[0], t.name): (t.base[0], t.x[0]) for t in fig.data}
    # Preparation's slot is 20 s (B's), so Calot starts at 20 s in both lanes.
    assert bases[("A", "Preparation")] == (0.0, 10.0)
    assert bases[("A", "Calot triangle dissection")] == (20.0, 20.0)
    assert bases[("B", "Calot triangle dissection")] == (20.0, 5.0)
    assert bases[("A", "Clipping and cutting")][0] == 40.0
    assert not math.isnan(bases[("B", "Preparation")][1])


def test_review_these_lists_the_least_confident_first():
    from analysis.moments import Moment, review_these

    segments = [{"start_s": 0.0, "end_s": 5.0, "label": "Preparation", "confidence": 0.45},
                {"start_s": 5.0, "end_s": 9.0, "label": "CalotTriangleDissection", "confidence": 0.2},
                {"start_s": 9.0, "end_s": 20.0, "label": "ClippingCutting", "confidence": 0.9}]
    moments = [Moment(0.0, "uncertain", "Preparation", "a", 5.0), Moment(5.0, "phase", "CalotTriangleDissection", "b"),
               Moment(5.0, "uncertain", "CalotTriangleDissection", "c", 9.0)]
    assert [(m.text, c) for m, c in review_these(moments, segments)] == [("c", 0.2), ("a", 0.45)]
