import numpy as np
import pandas as pd
import pytest

from analysis.motion import motion_metrics, motion_report, reference_points, tool_presence_per_second

SIZE = (300, 400)  # diagonal 500


def test_path_length_and_speed_hand_computed():
    times = np.array([0.0, 1.0, 2.0])
    pts = np.array([[0, 0], [30, 40], [30, 40]])  # 50 px, then still
    m = motion_metrics(times, pts, SIZE, sample_interval_s=1.0)
    assert m.path_length_px == pytest.approx(50)
    assert m.path_length_norm == pytest.approx(0.1)
    assert m.mean_speed_px_s == pytest.approx(25)
    assert m.peak_speed_px_s == pytest.approx(50)
    assert m.peak_speed_norm_s == pytest.approx(0.1)
    assert m.idle_fraction == pytest.approx(0.5)
    assert m.time_on_screen_s == pytest.approx(3.0)
    assert m.appearances == 1


def test_gaps_split_appearances_and_are_not_bridged():
    times = np.array([0.0, 1.0, 5.0, 6.0])
    pts = np.array([[0, 0], [3, 4], [300, 400], [300, 404]])
    m = motion_metrics(times, pts, SIZE, sample_interval_s=1.0)
    assert m.appearances == 2
    assert m.path_length_px == pytest.approx(5 + 4)  # the jump across the gap is not a movement
    assert (m.first_seen_s, m.last_seen_s) == (0.0, 6.0)


def test_working_area_is_hull_share_of_frame():
    pts = np.array([[0, 0], [150, 0], [150, 200], [0, 200]])
    m = motion_metrics(np.arange(4.0), pts, SIZE, 1.0)
    assert m.working_area_norm == pytest.approx(0.25)
    assert np.sum(m.heatmap) == pytest.approx(1.0)


def test_collinear_points_have_zero_area():
    m = motion_metrics(np.arange(3.0), np.array([[0, 0], [1, 1], [2, 2]]), SIZE, 1.0)
    assert m.working_area_norm == 0.0


def test_simultaneous_points_are_averaged():
    m = motion_metrics(np.array([0.0, 0.0, 1.0]), np.array([[0, 0], [20, 0], [10, 0]]), SIZE, 1.0)
    assert m.samples == 2 and m.path_length_px == pytest.approx(0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 times but 1 points"):
        motion_metrics(np.zeros(2), np.zeros((1, 2)), SIZE, 1.0)
    with pytest.raises(ValueError, match="sample_interval_s must be positive, got 0"):
        motion_metrics(np.zeros(1), np.zeros((1, 2)), SIZE, 0)
    with pytest.raises(ValueError, match="'middle'"):
        reference_points(np.zeros((1, 4)), SIZE, "middle")


def test_tip_is_corner_nearest_centre():
    # tool entering from the top-left: the tip is the bottom-right corner
    np.testing.assert_allclose(reference_points(np.array([[0, 0, 100, 150]]), SIZE, "tip"), [[100, 150]])


def _tracks():
    return pd.DataFrame({
        "x1": [0.0, 30, 100, 100], "y1": [0.0, 40, 100, 100], "x2": [10.0, 40, 110, 110], "y2": [10.0, 50, 110, 110],
        "confidence": [0.9, 0.9, 0.8, 0.7], "class_id": [0, 0, 2, 2], "tracker_id": [1, 1, 2, 2],
        "frame_index": [0, 25, 25, 50], "timestamp_s": [0.0, 1.0, 1.0, 2.0],
    })


def test_motion_report_per_track_tool_and_phase():
    rep = motion_report(_tracks(), ["Grasper", "Bipolar", "Hook"], SIZE, 1.0,
                        segments=[{"start_s": 0, "end_s": 1.5, "label": "Preparation"}, {"start_s": 1.5, "end_s": 3, "label": "ClippingCutting"}])
    assert {t["tracker_id"] for t in rep["per_track"]} == {1, 2}
    assert rep["per_tool"]["Grasper"]["path_length_px"] == pytest.approx(50)
    assert rep["per_tool"]["Hook"]["path_length_px"] == pytest.approx(0)
    assert set(rep["per_phase"][0]["tools"]) == {"Grasper", "Hook"}
    assert set(rep["per_phase"][1]["tools"]) == {"Hook"}


def test_tool_presence_per_second():
    table = tool_presence_per_second(_tracks(), ["Grasper", "Bipolar", "Hook"], duration_s=2.5)
    assert list(table["second"]) == [0, 1, 2]
    np.testing.assert_allclose(table["Hook"], [0, 0.8, 0.7])
    np.testing.assert_allclose(table["Bipolar"], [0, 0, 0])
