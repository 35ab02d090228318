"""Plotly figure builders of the teaching pages (study mode, assessments, corrections, side by side).

Pure: data in, figure out, no Streamlit. Phase colours and names come from the taxonomy, as in analysis.charts.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.charts import _CONFIG_LAYOUT, _bars, _time_axis, colour
from analysis.moments import clock
from models.taxonomy import display_name, load_taxonomy

Segments = Sequence[Mapping[str, Any]]


def timelines_on_one_axis(rows: Mapping[str, Segments], duration_s: float, title: str = "",
                          marks: Mapping[str, Sequence[float]] | None = None) -> go.Figure:
    """Several phase timelines (e.g. the reference and a trainee's) as lanes over one time axis.

    `rows` maps a lane name to its segments, drawn top to bottom; `marks` maps a lane name to times drawn
    as ticks on it (e.g. the trainee's transition marks). Each phase has one legend entry.
    """
    fig = go.Figure()
    shown: set[str] = set()
    lanes = list(rows)
    for lane, segments in rows.items():
        for label in dict.fromkeys(s["label"] for s in segments):
            spans = [(float(s["start_s"]), float(s["end_s"])) for s in segments if s["label"] == label]
            name = display_name(label, "phase")
            fig.add_trace(_bars(spans, lane, name, colour(label, "phase"),
                                f"<b>{lane}</b>: {name}<br>%{{customdata[2]}}–%{{customdata[3]}}",
                                legendgroup=label, showlegend=label not in shown))
            shown.add(label)
    for lane, times in (marks or {}).items():
        if times:
            fig.add_trace(go.Scatter(x=list(times), y=[lane] * len(times), mode="markers", name=f"{lane}: marks",
                                     marker=dict(symbol="line-ns", size=22, line=dict(width=2, color="#222222")),
                                     customdata=[[clock(t)] for t in times], showlegend=False,
                                     hovertemplate="mark at %{customdata[0]}<extra></extra>"))
    fig.update_yaxes(categoryorder="array", categoryarray=lanes[::-1], fixedrange=True)
    _time_axis(fig, duration_s, title_text="time in the video")
    fig.update_layout(barmode="overlay", bargap=0.3, height=130 + 45 * len(lanes), title=title, dragmode=False,
                      legend=dict(orientation="h", y=-0.35), **_CONFIG_LAYOUT)
    return fig


def transition_errors(transitions: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Per reference transition, the trainee's timing error in seconds (negative: marked early); missed ones apart."""
    x = [f"{clock(t['reference_s'])} {display_name(t['phase'], 'phase')}" for t in transitions]
    errors = [t.get("error_s") for t in transitions]
    fig = go.Figure(go.Bar(
        x=x, y=[e if e is not None else 0 for e in errors],
        marker_color=["#cccccc" if e is None else colour(t["phase"], "phase") for e, t in zip(errors, transitions)],
        text=["missed" if e is None else f"{e:+.0f} s" for e in errors], textposition="outside",
        hovertemplate="%{x}<br>%{text}<extra></extra>"))
    fig.update_layout(title="Timing error per transition", yaxis_title="seconds (trainee − reference)",
                      height=320, **_CONFIG_LAYOUT)
    return fig


def study_progress(attempts: pd.DataFrame) -> go.Figure:
    """A trainee's attempts over time: mean segment Jaccard (left axis) and mean timing error (right axis).

    `attempts` has columns created_at, mean_jaccard, mean_abs_error_s and case (title), one row per attempt.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if not attempts.empty:
        n = list(range(1, len(attempts) + 1))
        hover = [f"attempt {i}: {c}<br>{t:%Y-%m-%d %H:%M}" for i, c, t in
                 zip(n, attempts["case"], pd.to_datetime(attempts["created_at"]))]
        fig.add_trace(go.Scatter(x=n, y=attempts["mean_jaccard"], mode="lines+markers", name="mean Jaccard",
                                 text=hover, hovertemplate="%{text}<br>Jaccard %{y:.2f}<extra></extra>"),
                      secondary_y=False)
        fig.add_trace(go.Scatter(x=n, y=attempts["mean_abs_error_s"], mode="lines+markers", name="mean timing error (s)",
                                 line=dict(dash="dot"), text=hover,
                                 hovertemplate="%{text}<br>timing error %{y:.1f} s<extra></extra>"), secondary_y=True)
    fig.update_yaxes(title_text="mean Jaccard", range=[0, 1.05], secondary_y=False)
    fig.update_yaxes(title_text="timing error (s)", rangemode="tozero", secondary_y=True)
    fig.update_xaxes(title_text="attempt", dtick=1)
    fig.update_layout(title="Progress over attempts" + ("" if not attempts.empty else " (no attempt yet)"),
                      height=340, legend=dict(orientation="h", y=-0.3), **_CONFIG_LAYOUT)
    return fig


def assessment_progress(assessments: pd.DataFrame) -> go.Figure:
    """Assessment totals over time, one line per form (share of the form's maximum).

    `assessments` has columns created_at, form, total, max_total and case.
    """
    fig = go.Figure()
    for form, rows in assessments.groupby("form", sort=True) if not assessments.empty else ():
        fig.add_trace(go.Scatter(
            x=pd.to_datetime(rows["created_at"]), y=rows["total"] / rows["max_total"], mode="lines+markers", name=form,
            customdata=list(zip(rows["total"], rows["max_total"], rows["case"])),
            hovertemplate=f"{form} %{{customdata[0]}}/%{{customdata[1]}}<br>%{{customdata[2]}}<extra></extra>"))
    fig.update_yaxes(title_text="share of the maximum score", range=[0, 1.05], tickformat=".0%")
    fig.update_xaxes(tickformat="%Y-%m-%d %H:%M")
    fig.update_layout(title="Scores over time" + ("" if not assessments.empty else " (no assessment yet)"),
                      height=320, legend=dict(orientation="h", y=-0.3), **_CONFIG_LAYOUT)
    return fig


def phase_order(*timelines: Segments) -> list[str]:
    """Phases present in any timeline, in the taxonomy's surgical order (others after, by first appearance)."""
    names = load_taxonomy().phase_names
    present = dict.fromkeys(s["label"] for t in timelines for s in t)
    return sorted(present, key=lambda p: (names.index(p) if p in names else len(names), list(present).index(p)))


def phase_seconds(segments: Segments) -> dict[str, float]:
    totals: dict[str, float] = {}
    for s in segments:
        totals[s["label"]] = totals.get(s["label"], 0.0) + float(s["end_s"]) - float(s["start_s"])
    return totals


def phase_aligned(cases: Mapping[str, Segments]) -> go.Figure:
    """Cases' phases aligned: each phase gets one slot as long as its longest case, every case's time
    in that phase starts at the slot's start, so the same phase lines up across the lanes."""
    order = phase_order(*cases.values())
    totals = {name: phase_seconds(segs) for name, segs in cases.items()}
    slot_start, at = {}, 0.0
    for phase in order:
        slot_start[phase] = at
        at += max(t.get(phase, 0.0) for t in totals.values()) or 0.0
    fig = go.Figure()
    shown: set[str] = set()
    for lane, seconds in totals.items():
        for phase in order:
            if seconds.get(phase, 0.0) <= 0:
                continue
            a = slot_start[phase]
            name = display_name(phase, "phase")
            fig.add_trace(_bars([(a, a + seconds[phase])], lane, name, colour(phase, "phase"),
                                f"<b>{lane}</b>: {name}<br>{clock(seconds[phase])} in this phase",
                                legendgroup=phase, showlegend=phase not in shown))
            shown.add(phase)
    for phase in order[1:]:
        fig.add_vline(x=slot_start[phase], line=dict(color="#999999", width=1, dash="dot"))
    lanes = list(cases)
    fig.update_yaxes(categoryorder="array", categoryarray=lanes[::-1], fixedrange=True)
    widths = {p: max(t.get(p, 0.0) for t in totals.values()) for p in order}
    fig.update_xaxes(tickvals=[slot_start[p] + widths[p] / 2 for p in order], showgrid=False,
                     ticktext=[display_name(p, "phase") for p in order], tickangle=0)
    fig.update_layout(barmode="overlay", bargap=0.3, height=160 + 45 * len(lanes), dragmode=False,
                      title="Aligned by phase (each phase starts together; bar length = time in that phase)",
                      legend=dict(orientation="h", y=-0.5), **_CONFIG_LAYOUT)
    return fig


def phase_duration_bars(cases: Mapping[str, Segments]) -> go.Figure:
    """Seconds per phase, one bar per case, grouped by phase in surgical order."""
    order = phase_order(*cases.values())
    fig = go.Figure()
    for lane, segments in cases.items():
        seconds = phase_seconds(segments)
        fig.add_trace(go.Bar(x=[display_name(p, "phase") for p in order], y=[seconds.get(p, 0.0) for p in order],
                             name=lane, text=[clock(seconds.get(p, 0.0)) for p in order],
                             hovertemplate=f"{lane}<br>%{{x}}: %{{y:.0f}} s<extra></extra>"))
    fig.update_layout(barmode="group", title="Time per phase", yaxis_title="seconds", height=340,
                      legend=dict(orientation="h", y=-0.3), **_CONFIG_LAYOUT)
    return fig


def motion_summary(motion: Mapping[str, Any], by_phase: bool = False) -> pd.DataFrame:
    """Path length, time on screen and idle time per tool (whole case), or per phase segment and tool.

    Idle seconds are the idle fraction of the tool's time on screen (analysis.motion's idle threshold).
    """
    def row(m: Mapping[str, Any]) -> dict[str, Any]:
        on = float(m.get("time_on_screen_s") or 0.0)
        return {"path_length_norm": m.get("path_length_norm"), "time_on_screen_s": on,
                "idle_s": round(on * float(m.get("idle_fraction") or 0.0), 1)}

    columns = ["tool", "path_length_norm", "time_on_screen_s", "idle_s"]
    if not by_phase:
        rows = [{"tool": display_name(t, "tool"), **row(m)} for t, m in (motion.get("per_tool") or {}).items()]
        return pd.DataFrame(rows, columns=columns)
    rows = [{"phase": display_name(seg["phase"], "phase"), "from": clock(seg["start_s"]), "to": clock(seg["end_s"]),
             "tool": display_name(t, "tool"), **row(m)}
            for seg in motion.get("per_phase") or [] for t, m in (seg.get("tools") or {}).items()]
    return pd.DataFrame(rows, columns=["phase", "from", "to", *columns])


def motion_per_phase(motion: Mapping[str, Any]) -> pd.DataFrame:
    """Totals per phase (all tools, all its segments): path length, instrument time on screen, idle seconds."""
    table = motion_summary(motion, by_phase=True)
    if table.empty:
        return pd.DataFrame(columns=["phase", "path_length_norm", "time_on_screen_s", "idle_s"])
    return (table.groupby("phase", sort=False)[["path_length_norm", "time_on_screen_s", "idle_s"]].sum()
            .reset_index())


def boxes_on_frame(rgb: Any, boxes: Sequence[Mapping[str, Any]], frame_size: tuple[int, int], title: str = "",
                   dashed: Sequence[Mapping[str, Any]] = ()) -> go.Figure:
    """A video frame with instrument boxes drawn over it, numbered as listed (the editor's rows).

    `boxes` are {x1, y1, x2, y2, label} in pixels of a `frame_size` (width, height) frame; `rgb` (HxWx3, any
    size: it is stretched to the frame) may be None (a grey canvas). `dashed` boxes (e.g. the model's,
    where they were changed) are drawn thin and dashed, unnumbered.
    """
    import base64

    import cv2
    import numpy as np

    width, height = int(frame_size[0]), int(frame_size[1])
    fig = go.Figure()
    if rgb is not None:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            fig.add_layout_image(source="data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode(),
                                 x=0, y=0, sizex=width, sizey=height, xref="x", yref="y", sizing="stretch",
                                 layer="below")
    for number, box in enumerate(boxes, start=1):
        c = colour(str(box["label"]), "tool")
        x1, y1, x2, y2 = (float(box[k]) for k in ("x1", "y1", "x2", "y2"))
        fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, line=dict(color=c, width=3))
        fig.add_annotation(x=x1, y=y1, text=f"{number} {display_name(str(box['label']), 'tool')}", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(color="#ffffff", size=12), bgcolor=c)
        fig.add_trace(go.Scatter(x=[x1, x2, x2, x1, x1], y=[y1, y1, y2, y2, y1], mode="lines", line=dict(width=0),
                                 fill="toself", fillcolor="rgba(0,0,0,0)", showlegend=False,
                                 name=f"box {number}", hoveron="fills",
                                 hovertemplate=f"box {number}: {display_name(str(box['label']), 'tool')}<br>"
                                               f"({x1:.0f}, {y1:.0f})–({x2:.0f}, {y2:.0f})<extra></extra>"))
    for box in dashed:
        fig.add_shape(type="rect", x0=float(box["x1"]), y0=float(box["y1"]), x1=float(box["x2"]), y1=float(box["y2"]),
                      line=dict(color=colour(str(box["label"]), "tool"), width=1, dash="dash"))
    fig.update_xaxes(range=[0, width], showgrid=False, zeroline=False, constrain="domain", title_text="x (px)")
    fig.update_yaxes(range=[height, 0], showgrid=False, zeroline=False, scaleanchor="x", title_text="y (px)")
    fig.update_layout(title=title, height=max(300, min(640, int(560 * height / max(width, 1)) + 80)),
                      dragmode=False, plot_bgcolor="#444444", **_CONFIG_LAYOUT)
    return fig
