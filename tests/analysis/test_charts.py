import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from analysis import charts
from metrics.classification import classification_report
from analysis.moments import Moment
from analysis.motion import motion_report
from analysis.results import TOOL_PRESENCE, CaseResult
from tests.conftest import publish_case, video_info
from models.taxonomy import load_taxonomy

TAX = load_taxonomy()
SEGMENTS = [{"start_s": 0.0, "end_s": 10.0, "label": "Preparation", "confidence": 0.9},
            {"start_s": 10.0, "end_s": 25.0, "label": "CalotTriangleDissection", "confidence": None},
            {"start_s": 25.0, "end_s": 30.0, "label": "Preparation", "confidence": 0.5}]


@dataclass
class Note:
    timestamp_s: float
    kind: str
    text: str


def presence(tools: dict[str, list[int]], seconds: int = 30) -> pd.DataFrame:
    table = pd.DataFrame({"second": np.arange(seconds)})
    for name in TAX.tool_names:
        column = np.zeros(seconds, np.float32)
        column[tools.get(name, [])] = 0.8
        table[name] = column
    return table


def motion(seconds: int = 6) -> dict:
    rows = [dict(x1=10 * t, y1=0, x2=10 * t + 20, y2=20, confidence=0.9, class_id=0, tracker_id=1, frame_index=t,
                 timestamp_s=float(t)) for t in range(seconds)]
    rows.append(dict(x1=50, y1=50, x2=60, y2=60, confidence=0.9, class_id=4, tracker_id=2, frame_index=2, timestamp_s=2.0))
    return motion_report(pd.DataFrame(rows), TAX.tool_names, (160, 90), 1.0, SEGMENTS)


def test_case_timeline_has_phases_tools_and_notes_on_one_time_axis():
    notes = [Note(3.0, "comment", "look here"), Note(12.0, "bookmark", "clip")]
    moments = [Moment(10.0, "phase", "CalotTriangleDissection", "Preparation → Calot")]
    fig = charts.case_timeline(SEGMENTS, presence({"Hook": [1, 2, 3, 8], "Clipper": [20]}), 30.0, notes, moments,
                               playhead_s=12.0)
    by_name = {t.name: t for t in fig.data}
    prep = by_name["Preparation"]
    assert prep.marker.color == TAX.phases[0].colour
    assert [list(c[:2]) for c in prep.customdata] == [[0.0, 10.0], [25.0, 30.0]]  # clicking seeks to [start, end]
    assert list(prep.base) == [0.0, 25.0] and list(prep.x) == [10.0, 5.0]
    assert by_name["Calot triangle dissection"].customdata[0][4] == "n/a"
    lanes = {t.y[0] for t in fig.data if t.type == "bar" and t.xaxis == "x2"}
    assert lanes == {"Hook", "Clipper"}  # only the tools seen
    hook = next(t for t in fig.data if t.type == "bar" and t.y[0] == "Hook")
    assert [list(c[:2]) for c in hook.customdata] == [[1.0, 4.0], [8.0, 9.0]]
    assert list(by_name["comments"].x) == [3.0] and list(by_name["bookmarks"].x) == [12.0]
    assert list(by_name["key moments"].customdata[0][:2]) == [10.0, 10.0]
    assert fig.layout.xaxis.range == (-0.3, 30.3) and fig.layout.xaxis2.range == (-0.3, 30.3)  # 1% margins
    assert fig.layout.xaxis.matches == "x2"  # one shared time axis
    assert fig.layout.shapes[0].x0 == 12.0  # playhead
    assert fig.layout.clickmode == "event+select"


def test_case_timeline_without_phases_or_tools_says_so():
    fig = charts.case_timeline([], presence({}), 32.0)
    assert "no phase recognition" in fig.layout.annotations[0].text
    assert any(t.y[0] == "none detected" for t in fig.data if t.type == "bar")
    json.loads(fig.to_json())


def test_phase_timeline_and_swimlanes_alone():
    fig = charts.phase_timeline(SEGMENTS, 30.0, [Note(5.0, "comment", "x" * 200)])
    assert {t.name for t in fig.data} == {"Preparation", "Calot triangle dissection", "comments"}
    assert fig.data[-1].customdata[0][3].endswith("…")  # long comments are shortened in hovers
    lanes = charts.tool_swimlanes(presence({"Grasper": [0]}), 30.0)
    assert [t.y[0] for t in lanes.data] == ["Grasper"]


def test_time_axis_labels_are_clock_times():
    fig = charts.phase_timeline(SEGMENTS, 3600.0)
    assert fig.layout.xaxis.ticktext[:3] == ("0:00", "5:00", "10:00")


def test_trajectories_over_a_frame():
    report = motion()
    frame = np.zeros((90, 160, 3), np.uint8)
    fig = charts.trajectories(report, (160, 90), frame, by="track")
    paths = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in paths] == ["Grasper"]  # the one-sample clipper track is too short to draw
    assert "Grasper #1" in paths[0].hovertemplate
    assert list(paths[0].x) == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert fig.layout.images[0].source.startswith("data:image/jpeg;base64,")
    assert fig.layout.yaxis.range == (90, 0)  # image rows go down
    assert "no track" in charts.trajectories({"per_track": []}, (160, 90)).layout.title.text


def test_trajectories_of_a_long_case_have_one_legend_entry_per_instrument():
    tracks = [{"tracker_id": i, "label": "Hook" if i % 3 else "Grasper",
               "path": [[float(t), 10.0 + t + i, 20.0 + i] for t in range(5)]} for i in range(60)]
    by_tool = charts.trajectories({"per_track": tracks}, (160, 90))
    assert [t.name for t in by_tool.data] == ["Grasper (20 tracks)", "Hook (40 tracks)"]
    assert by_tool.data[0].x.count(None) == 20  # tracks are separate strokes of one line
    by_track = charts.trajectories({"per_track": tracks}, (160, 90), by="track")
    assert sum(bool(t.showlegend is not False) for t in by_track.data) == 2
    assert by_tool.layout.height == by_track.layout.height == charts.trajectories({}, (160, 90)).layout.height
    with pytest.raises(ValueError, match="by must be one of"):
        charts.trajectories({}, (160, 90), by="surgeon")


def test_heatmap_weights_tools_by_samples_and_hides_empty_cells():
    report = motion()
    fig = charts.motion_heatmap(report, (160, 90))
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.nansum(z) == pytest.approx(1.0, abs=1e-3)  # shares are rounded to 4 decimals in motion.json
    assert np.isnan(z).any()
    only = charts.motion_heatmap(report, (160, 90), tools=["Clipper"])
    assert np.nanmax(np.asarray(only.data[0].z, dtype=float)) == pytest.approx(1.0)
    assert only.layout.title.text == "Where the Clipper was"
    assert "no instruments" in charts.motion_heatmap({}, (160, 90)).layout.title.text


def test_motion_tables():
    report = motion()
    tools = charts.motion_tool_table(report)
    assert tools["tool"].tolist() == ["Grasper", "Clipper"]
    assert tools.loc[0, "time_on_screen_s"] == pytest.approx(6.0)
    phases = charts.motion_phase_table(report)
    assert set(phases["phase"]) == {"Preparation"}  # the tracks end before Calot triangle dissection
    assert phases.iloc[0][["from", "to"]].tolist() == ["0:00", "0:10"]
    assert charts.motion_tool_table({}).empty and list(charts.motion_phase_table({}).columns)[:4] == ["phase", "from", "to", "tool"]


def test_phase_durations_sum_repeated_phases():
    fig = charts.phase_durations(SEGMENTS)
    assert dict(zip(fig.data[0].y, fig.data[0].x)) == {"Preparation": 15.0, "Calot triangle dissection": 15.0}


def test_library_distribution_highlights_one_case():
    table = pd.DataFrame({"case_id": [1, 2, 3, 1], "title": ["A", "B", "C", "A"],
                          "phase": ["Preparation"] * 3 + ["ClippingCutting"], "seconds": [10.0, 20.0, 30.0, 5.0]})
    fig = charts.library_distribution(table, "seconds", "phase", highlight_case_id=1, kind="phase")
    boxes = [t for t in fig.data if t.type == "box"]
    assert [b.name for b in boxes] == ["Preparation", "Clipping and cutting"]
    marker = [t for t in fig.data if t.type == "scatter"][0]
    assert marker.name == "A" and list(marker.x) == [10.0, 5.0]
    assert not [t for t in charts.library_distribution(table, "seconds", "phase", 99).data if t.type == "scatter"]
    empty = charts.library_distribution(table.iloc[0:0], "seconds", "phase")
    assert "nothing to compare" in empty.layout.annotations[0].text


def test_classification_evaluation_gives_roc_and_confusion():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    report = classification_report([0, 1, 1, 1], probs, ["ct", "xray"]).to_dict()
    figs = charts.evaluation_figures(report)
    assert [f.layout.title.text for f in figs] == ["ROC curves (one class against the rest)", "Confusion matrix"]
    assert np.asarray(figs[1].data[0].text).tolist() == [[1, 0], [1, 2]]
    assert np.asarray(figs[1].data[0].z)[1].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_detection_evaluation_gives_per_class_ap():
    report = {"task": "detection", "metrics": {"mAP50": 0.5, "per_class": {
        "Grasper": {"AP50": 0.7, "AP50_95": 0.4}, "specimen_bag": {"AP50": 0.3, "AP50_95": 0.1}}}}
    (fig,) = charts.evaluation_figures(report)
    assert [t.name for t in fig.data] == ["AP50", "AP50_95"]
    assert list(fig.data[0].y) == ["Grasper", "Specimen bag"]
    presence_report = {"metrics": {"mAP": 0.6, "per_class": {"Hook": {"AP": 0.6, "positives": 3}}}}
    assert [t.name for t in charts.evaluation_figures(presence_report)[0].data] == ["AP"]
    assert charts.evaluation_figures({"accuracy": 0.5}) == []


def test_report_figures_for_export(tmp_path):
    folder = tmp_path / "case"
    publish_case(folder, video_info(size=(160, 90), duration_s=30), tables={TOOL_PRESENCE: presence({"Hook": [1]})},
                 segments=SEGMENTS, motion=motion())

    @dataclass
    class Case:
        duration_s: float = 30.0

    figs = charts.report_figures(Case(), CaseResult.load(folder), [Note(2.0, "comment", "hi")])
    assert len(figs) == 3
    assert charts.report_figures(Case(), None, []) == []
