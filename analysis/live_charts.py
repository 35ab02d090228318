"""The rolling phase timeline of a live session (analysis.live): a plotly figure, no Streamlit."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from analysis.charts import GREY, colour
from analysis.live import PhaseSecond
from analysis.moments import clock
from models.taxonomy import display_name


def live_segments(timeline: Sequence[PhaseSecond]) -> list[dict]:
    """Runs of consecutive seconds in one phase: {start_s, end_s, label, confidence (mean)}."""
    segments: list[dict] = []
    for p in timeline:
        last = segments[-1] if segments else None
        if last is not None and last["label"] == p.phase and last["end_s"] == p.second:
            last["end_s"] = p.second + 1
            last["_sum"] += p.probability
            last["_n"] += 1
        else:
            segments.append({"start_s": p.second, "end_s": p.second + 1, "label": p.phase,
                             "_sum": p.probability, "_n": 1})
    for s in segments:
        s["confidence"] = s.pop("_sum") / s.pop("_n")
    return segments


def live_phase_timeline(timeline: Sequence[PhaseSecond], window_s: float = 120.0, now_s: float | None = None) -> go.Figure:
    """The last `window_s` seconds up to `now_s` (default: the last second seen): phase bars above the
    current phase's probability, on one time axis of video time."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s!r}")
    end = float(now_s if now_s is not None else (timeline[-1].second + 1 if timeline else 0.0))
    end = max(end, float(window_s))  # the first window shows 0..window_s and fills from the left
    start = end - float(window_s)
    shown = [p for p in timeline if p.second + 1 > start]
    fig = go.Figure()
    for label in dict.fromkeys(p.phase for p in shown):
        own = [s for s in live_segments(shown) if s["label"] == label]
        name = display_name(label, "phase")
        fig.add_trace(go.Bar(
            y=["Phase"] * len(own), x=[s["end_s"] - s["start_s"] for s in own], base=[s["start_s"] for s in own],
            orientation="h", name=name, marker=dict(color=colour(label, "phase"), line=dict(width=0)),
            customdata=[[clock(s["start_s"]), clock(s["end_s"]), f"{s['confidence']:.0%}"] for s in own],
            hovertemplate=f"<b>{name}</b><br>%{{customdata[0]}}–%{{customdata[1]}}<br>mean probability "
                          "%{customdata[2]}<extra></extra>", yaxis="y"))
    if shown:
        fig.add_trace(go.Scatter(
            x=[p.second + 0.5 for p in shown], y=[p.probability for p in shown], mode="lines", name="probability",
            line=dict(color="#333333", width=1.5), yaxis="y2", showlegend=False,
            hovertemplate="%{y:.0%}<extra>probability</extra>"))
    else:
        fig.add_annotation(x=start + window_s / 2, y=0.5, yref="paper", text="the first phase comes after one second",
                           showarrow=False, font=dict(color="#777777"))
        fig.add_trace(go.Bar(y=["Phase"], x=[window_s], base=[start], orientation="h", marker_color="#eeeeee",
                             hoverinfo="skip", showlegend=False))

    step = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600) if window_s / s <= 8)
    first_tick = max(0.0, start - start % step + (step if start % step else 0))
    ticks = [t for t in range(int(first_tick), int(end) + 1, step)]
    fig.update_xaxes(range=[start, end], tickvals=ticks, ticktext=[clock(t) for t in ticks], title_text="time in the video")
    fig.update_layout(
        barmode="overlay", height=230, dragmode=False, margin=dict(l=10, r=10, t=30, b=10),
        yaxis=dict(domain=[0.45, 1.0], fixedrange=True, showticklabels=False),
        yaxis2=dict(domain=[0.0, 0.38], range=[0, 1.05], tickformat=".0%", fixedrange=True, gridcolor="#eeeeee"),
        legend=dict(orientation="h", y=1.12, x=0), title=dict(text=f"Phase over the last {clock(window_s)}", font=dict(size=13)),
        plot_bgcolor="white", paper_bgcolor="white", hoverlabel=dict(namelength=-1),
    )
    fig.update_traces(selector=dict(type="bar"), marker_line_color=GREY, marker_line_width=0)
    return fig
