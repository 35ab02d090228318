import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.moments import clock, display_name, key_moments, moments_frame, phase_segments, tool_runs
from analysis.results import PHASE_PROBS, PHASE_SEGMENTS, TOOL_PRESENCE, CaseResult, CaseResultError
from models.taxonomy import load_taxonomy
from tests.conftest import publish_case, video_info

TOOLS = load_taxonomy().tool_names


def case_folder(tmp_path: Path, segments=None, probs: pd.DataFrame | None = None, presence: dict | None = None,
                duration_s: int = 40) -> Path:
    """A case folder with only the tables given."""
    tables = {}
    if probs is not None:
        tables[PHASE_PROBS] = probs
    if presence is not None:
        table = pd.DataFrame({"second": np.arange(duration_s)})
        for tool in TOOLS:
            column = np.zeros(duration_s, dtype=np.float32)
            column[presence.get(tool, [])] = 0.7
            table[tool] = column
        tables[TOOL_PRESENCE] = table
    folder = tmp_path / "case"
    publish_case(folder, video_info(duration_s=duration_s), tables=tables, segments=segments)
    return folder


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.6, "1:00"), (61, "1:01"), (3725, "1:02:05"), (-3, "0:00")])
def test_clock(seconds, text):
    assert clock(seconds) == text


def test_display_names_come_from_the_taxonomy():
    assert display_name("carlot-triangle-dissection", "phase") == "Calot triangle dissection"
    assert display_name("specimen_bag", "tool") == "Specimen bag"
    assert display_name("Retractor", "tool") == "Retractor"  # outside the taxonomy: kept


def test_segments_are_canonical_sorted_and_drop_empty_ones(tmp_path):
    folder = case_folder(tmp_path, segments=[
        {"start_s": 10, "end_s": 30, "label": "carlot-triangle-dissection", "confidence": 0.6},
        {"start_s": 0, "end_s": 10, "label": "preparation", "confidence": 0.9},
        {"start_s": 30, "end_s": 30, "label": "ClippingCutting"},
    ])
    segs = phase_segments(CaseResult.load(folder))
    assert [(s["start_s"], s["end_s"], s["label"]) for s in segs] == [
        (0.0, 10.0, "Preparation"), (10.0, 30.0, "CalotTriangleDissection")]
    assert segs[0]["confidence"] == pytest.approx(0.9)


def test_segments_fall_back_to_per_second_probabilities(tmp_path):
    ids = [0, 0, 0, 1, 1, 2]
    names = load_taxonomy().phase_names
    probs = pd.DataFrame({"second": np.arange(6), **{n: np.zeros(6, np.float32) for n in names}, "phase_id": ids})
    probs[names[0]] = np.float32([0.9, 0.8, 0.7, 0.1, 0.2, 0.0])
    probs[names[1]] = np.float32([0.1, 0.2, 0.3, 0.6, 0.8, 0.0])
    probs[names[2]] = np.float32([0, 0, 0, 0.3, 0, 1.0])
    segs = phase_segments(CaseResult.load(case_folder(tmp_path, probs=probs)))
    assert [(s["start_s"], s["end_s"], s["label"]) for s in segs] == [
        (0, 3, "Preparation"), (3, 5, "CalotTriangleDissection"), (5, 6, "ClippingCutting")]
    assert segs[0]["confidence"] == pytest.approx(0.8) and segs[1]["confidence"] == pytest.approx(0.7)


def test_no_phase_stage_means_no_segments(tmp_path):
    assert phase_segments(CaseResult.load(case_folder(tmp_path))) == []


def test_tool_runs_bridge_short_gaps_only():
    presence = pd.DataFrame({"second": np.arange(12), "Hook": [0, 1, 1, 0, 0, 1, 0, 0, 0, 0.2, 0, 0]})
    assert tool_runs(presence, "Hook", max_gap_s=2) == [(1, 6), (9, 10)]
    assert tool_runs(presence, "Hook", max_gap_s=0) == [(1, 3), (5, 6), (9, 10)]
    assert tool_runs(presence, "Hook", min_confidence=0.5, max_gap_s=2) == [(1, 6)]
    assert tool_runs(presence, "Clipper") == []
    with pytest.raises(ValueError, match="max_gap_s must be >= 0, got -1"):
        tool_runs(presence, "Hook", max_gap_s=-1)


def test_key_moments_in_time_order(tmp_path):
    folder = case_folder(
        tmp_path,
        segments=[{"start_s": 0, "end_s": 12, "label": "Preparation"},
                  {"start_s": 12, "end_s": 25, "label": "CalotTriangleDissection"},
                  {"start_s": 25, "end_s": 40, "label": "ClippingCutting"}],
        presence={"Grasper": [2, 3, 4], "Clipper": [26, 27, 33], "Scissors": [30]},
    )
    moments = key_moments(folder)
    assert [(m.time_s, m.kind, m.label) for m in moments] == [
        (2, "first_seen", "Grasper"),
        (12, "phase", "CalotTriangleDissection"),
        (25, "phase", "ClippingCutting"),
        (26, "first_seen", "Clipper"),
        (26, "clipper", "Clipper"),
        (30, "first_seen", "Scissors"),
        (30, "scissors", "Scissors"),
        (33, "clipper", "Clipper"),
    ]
    assert moments[1].text == "Preparation → Calot triangle dissection"
    uses = [m for m in moments if m.kind == "clipper"]
    assert [(m.time_s, m.end_s) for m in uses] == [(26, 28), (33, 34)]
    assert uses[0].text == "Clipper in use 0:26–0:28 (2 s)"
    table = moments_frame(moments)
    assert list(table.columns) == ["time_s", "end_s", "kind", "label", "text"] and len(table) == len(moments)


def test_key_moments_of_a_case_without_phases_or_tools(tmp_path):
    assert key_moments(CaseResult.load(case_folder(tmp_path))) == []
    assert moments_frame([]).empty


def test_key_moments_of_a_missing_case(tmp_path):
    with pytest.raises(CaseResultError, match="case.json missing"):
        key_moments(tmp_path / "nowhere")
