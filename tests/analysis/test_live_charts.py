"""The rolling live phase timeline."""
import pytest

from analysis.live import PhaseSecond
from analysis.live_charts import live_phase_timeline, live_segments


def seconds(labels):
    return [PhaseSecond(i, label, 0.5 + 0.1 * (i % 3), ()) for i, label in enumerate(labels)]


def test_segments_merge_consecutive_seconds():
    segs = live_segments(seconds(["Preparation"] * 3 + ["CalotTriangleDissection"] * 2 + ["Preparation"]))
    assert [(s["start_s"], s["end_s"], s["label"]) for s in segs] == [
        (0, 3, "Preparation"), (3, 5, "CalotTriangleDissection"), (5, 6, "Preparation")]
    assert segs[0]["confidence"] == pytest.approx((0.5 + 0.6 + 0.7) / 3)


def test_window_rolls_with_time():
    timeline = seconds(["Preparation"] * 50 + ["CalotTriangleDissection"] * 30)
    fig = live_phase_timeline(timeline, window_s=60)
    assert tuple(fig.layout.xaxis.range) == (20.0, 80.0)
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert len(bars) == 2
    probability = next(t for t in fig.data if t.type == "scatter")
    assert len(probability.x) == 60 and max(probability.y) <= 1


def test_empty_timeline_is_a_placeholder():
    fig = live_phase_timeline([], window_s=30, now_s=0.4)
    assert fig.layout.annotations and "after one second" in fig.layout.annotations[0].text


def test_bad_window():
    with pytest.raises(ValueError, match="window_s must be positive, got 0"):
        live_phase_timeline([], window_s=0)
