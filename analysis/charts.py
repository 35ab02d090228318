"""Plotly figure builders for the dashboard and the HTML report. Pure: data in, figure out, no Streamlit.

Times are seconds of the video on a shared x axis, so the phase timeline, the tool swimlanes and
the comment markers line up. Clickable marks carry `customdata = [start_s, end_s]` so a page can
seek the player to what was clicked. Phase and tool names and colours come from the taxonomy.
"""
from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.moments import Moment, clock
from models.phase.timeline import LOW_CONFIDENCE
from models.taxonomy import display_name, label_of

if TYPE_CHECKING:
    from analysis.results import CaseResult

GREY = "#b0b0b0"
HIGHLIGHT = "#d62728"
NOTE_SYMBOLS = {"comment": "circle", "bookmark": "star"}
MOMENT_SYMBOL = "triangle-down"
MOTION_METRICS = {  # motion.json field -> axis title
    "time_on_screen_s": "time on screen (s)",
    "path_length_norm": "path length (frame diagonals)",
    "mean_speed_norm_s": "mean speed (diagonals/s)",
    "peak_speed_norm_s": "peak speed (diagonals/s)",
    "idle_fraction": "idle fraction",
    "working_area_norm": "working area (share of frame)",
    "appearances": "appearances",
}
_CONFIG_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), hoverlabel=dict(namelength=-1))


def colour(name: str, kind: str) -> str:
    """The taxonomy colour of a phase or tool (grey outside the taxonomy)."""
    label = label_of(name, kind)
    return label.colour if label else GREY


def _time_axis(fig: go.Figure, duration_s: float, **where: Any) -> None:
    """Seconds on the axis, labelled m:ss."""
    duration_s = max(float(duration_s), 1.0)
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200) if duration_s / s <= 12)
    ticks = np.arange(0, duration_s + 1e-9, step)
    pad = duration_s * 0.01  # so markers at 0:00 and at the end are drawn whole
    fig.update_xaxes(range=[-pad, duration_s + pad], tickvals=ticks, ticktext=[clock(t) for t in ticks], **where)


def _bars(spans: Sequence[tuple[float, float]], row_name: str, name: str, fill: str, hover: str,
          extra: Sequence[str] | None = None, legendgroup: str | None = None, showlegend: bool = True) -> go.Bar:
    starts = [a for a, _ in spans]
    return go.Bar(
        y=[row_name] * len(spans), x=[b - a for a, b in spans], base=starts, orientation="h", name=name,
        marker=dict(color=fill, line=dict(width=0)), legendgroup=legendgroup or name, showlegend=showlegend,
        customdata=[[a, b, clock(a), clock(b), *(extra[i:i + 1] if extra else [])] for i, (a, b) in enumerate(spans)],
        hovertemplate=hover + "<extra></extra>",
    )


def _phase_traces(segments: Sequence[Mapping[str, Any]], row_name: str = "Phase") -> list[go.Bar]:
    """One bar trace per phase; segments below LOW_CONFIDENCE are hatched and say "review"."""
    traces = []
    for label in dict.fromkeys(s["label"] for s in segments):
        own = [s for s in segments if s["label"] == label]
        low = [s.get("confidence") is not None and s["confidence"] < LOW_CONFIDENCE for s in own]
        conf = [(f"{s['confidence']:.0%}" if s.get("confidence") is not None else "n/a") + (" (low: review)" if lo else "")
                for s, lo in zip(own, low)]
        bar = _bars([(s["start_s"], s["end_s"]) for s in own], row_name, display_name(label, "phase"),
                    colour(label, "phase"),
                    f"<b>{display_name(label, 'phase')}</b><br>%{{customdata[2]}}–%{{customdata[3]}}"
                    "<br>confidence %{customdata[4]}<br>click to play from here", extra=conf)
        bar.marker.pattern = dict(shape=["/" if lo else "" for lo in low], fgcolor="white", solidity=0.3)
        traces.append(bar)
    return traces


def _note_traces(notes: Iterable[Any], moments: Iterable[Moment], row_name: str) -> list[go.Scatter]:
    traces = []
    notes = list(notes)
    for kind, symbol in NOTE_SYMBOLS.items():
        own = [n for n in notes if n.kind == kind]
        if own:
            traces.append(go.Scatter(
                x=[n.timestamp_s for n in own], y=[row_name] * len(own), mode="markers", name=f"{kind}s",
                marker=dict(symbol=symbol, size=13, color="#333333" if kind == "comment" else "#f2b701",
                            line=dict(width=1, color="white")),
                customdata=[[n.timestamp_s, n.timestamp_s, clock(n.timestamp_s), _short(n.text)] for n in own],
                hovertemplate=f"<b>{kind}</b> %{{customdata[2]}}<br>%{{customdata[3]}}<extra></extra>"))
    moments = list(moments)
    if moments:
        traces.append(go.Scatter(
            x=[m.time_s for m in moments], y=[row_name] * len(moments), mode="markers", name="key moments",
            marker=dict(symbol=MOMENT_SYMBOL, size=11, color="#555555"),
            customdata=[[m.time_s, m.end_s or m.time_s, clock(m.time_s), m.text] for m in moments],
            hovertemplate="<b>%{customdata[3]}</b><br>%{customdata[2]}<extra></extra>"))
    return traces


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def presence_spans(presence: pd.DataFrame, min_confidence: float = 0.0, max_gap_s: float = 2.0) -> dict[str, list[tuple[float, float]]]:
    """Tool name -> [(start_s, end_s)) spans on screen, for the tools present at all."""
    from analysis.moments import tool_runs

    spans = {}
    for column in presence.columns:
        if column == "second":
            continue
        runs = tool_runs(presence, column, min_confidence, max_gap_s)
        if runs:
            label = label_of(column, "tool")
            spans[label.name if label else str(column)] = runs
    return spans


def _tool_traces(presence: pd.DataFrame, max_gap_s: float) -> list[go.Bar]:
    traces = []
    for name, spans in presence_spans(presence, max_gap_s=max_gap_s).items():
        shown = display_name(name, "tool")
        traces.append(_bars(spans, shown, shown, colour(name, "tool"),
                            f"<b>{shown}</b><br>%{{customdata[2]}}–%{{customdata[3]}}<br>click to play from here",
                            showlegend=False))
    return traces


CVS_ROW = "CVS"
CVS_LEVEL_COLOURS = {1: "#c7e9c0", 2: "#74c476", 3: "#1b7837"}  # criteria holding: 1, 2, all three


def cvs_spans(anatomy: pd.DataFrame, segments: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Runs of analysed seconds with the same CVS criteria holding (>= 0.5):
    [{start_s, end_s, met: ("C1", ...), mean: {C1: p, ...}}]; empty when CVS was not assessed.

    With phase `segments`, only the seconds the CVS model is meant for count (`cvs_window`: Calot
    triangle dissection and clipping), as for the CVS key moments."""
    from analysis.moments import CVS_CRITERIA, CVS_HOLDS, cvs_frame, cvs_window

    table = cvs_frame(anatomy)
    table = table[cvs_window(table["timestamp_s"].to_numpy(dtype=float), list(segments))].reset_index(drop=True)
    if table.empty:
        return []
    times = table["timestamp_s"].to_numpy(dtype=float)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    ends = np.minimum(np.r_[times[1:], times[-1] + step], times + step)
    values = table[list(CVS_CRITERIA)].to_numpy(dtype=float)
    met = [tuple(f"C{i + 1}" for i in np.flatnonzero(v >= CVS_HOLDS)) for v in values]
    spans: list[dict[str, Any]] = []
    for i, (t, end) in enumerate(zip(times, ends)):
        if spans and spans[-1]["met"] == met[i] and t - spans[-1]["end_s"] < 1e-6:
            spans[-1]["end_s"], spans[-1]["rows"] = float(end), spans[-1]["rows"] + [i]
        else:
            spans.append({"start_s": float(t), "end_s": float(end), "met": met[i], "rows": [i]})
    for span in spans:
        mean = values[span.pop("rows")].mean(axis=0)
        span["mean"] = {f"C{k + 1}": round(float(m), 4) for k, m in enumerate(mean)}
    return spans


def _cvs_traces(anatomy: pd.DataFrame, segments: Sequence[Mapping[str, Any]] = (),
                row_name: str = CVS_ROW) -> list[go.Bar]:
    """The CVS lane: light grey where assessed, green shades where 1, 2 or all three criteria hold."""
    spans = cvs_spans(anatomy, segments)
    if not spans:
        return []
    extent = [(spans[0]["start_s"], spans[-1]["end_s"])]
    traces = [_bars(extent, row_name, "CVS assessed", "#eeeeee", "CVS assessed %{customdata[2]}–%{customdata[3]}",
                    showlegend=False)]
    for level, fill in CVS_LEVEL_COLOURS.items():
        own = [s for s in spans if len(s["met"]) == level]
        if not own:
            continue
        name = "CVS reached (C1 C2 C3)" if level == 3 else f"CVS {level} of 3"
        extra = [" ".join(f"{c} {'✓' if c in s['met'] else '✗'} {p:.2f}" for c, p in s["mean"].items()) for s in own]
        traces.append(_bars([(s["start_s"], s["end_s"]) for s in own], row_name, name, fill,
                            f"<b>{name}</b><br>%{{customdata[2]}}–%{{customdata[3]}}<br>%{{customdata[4]}}"
                            "<br>research output, not for clinical use<br>click to play from here", extra=extra))
    return traces


def _playhead(fig: go.Figure, playhead_s: float | None) -> None:
    if playhead_s is not None:
        fig.add_vline(x=float(playhead_s), line=dict(color="#222222", width=1.5, dash="dot"))


def case_timeline(
    segments: Sequence[Mapping[str, Any]],
    presence: pd.DataFrame,
    duration_s: float,
    notes: Iterable[Any] = (),
    moments: Iterable[Moment] = (),
    playhead_s: float | None = None,
    max_gap_s: float = 2.0,
    anatomy: pd.DataFrame | None = None,
) -> go.Figure:
    """The phase timeline (with comment, bookmark and key-moment markers) above the tool swimlanes, one time axis.

    `notes` are objects with `timestamp_s`, `kind` ("comment" | "bookmark") and `text` (CommentRecord).
    `anatomy` (anatomy.parquet) adds a "CVS" row under the phases: where 1, 2 or all 3 criteria hold, in
    Calot triangle dissection and clipping only when there are phases (the CVS model knows no other).
    """
    cvs_traces = _cvs_traces(anatomy, segments) if anatomy is not None else []
    tool_traces = _tool_traces(presence, max_gap_s)
    lanes = max(len(tool_traces), 1)
    top = 3.0 if cvs_traces else 2.0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[top, max(lanes, 1.5)])
    for trace in _phase_traces(segments):
        fig.add_trace(trace, row=1, col=1)
    for trace in cvs_traces:
        fig.add_trace(trace, row=1, col=1)
    for trace in _note_traces(notes, moments, "Notes"):
        fig.add_trace(trace, row=1, col=1)
    for trace in tool_traces:
        fig.add_trace(trace, row=2, col=1)
    rows = [CVS_ROW, "Phase", "Notes"] if cvs_traces else ["Phase", "Notes"]
    fig.update_yaxes(categoryorder="array", categoryarray=rows, range=[-0.6, len(rows) - 0.4], row=1, col=1,
                     fixedrange=True)
    fig.update_yaxes(autorange="reversed", row=2, col=1, fixedrange=True)
    if not segments:
        fig.add_annotation(x=duration_s / 2, y="Phase", text="no phase recognition for this case", showarrow=False,
                           font=dict(color="#777777"), row=1, col=1)
        fig.add_trace(go.Bar(y=["Phase"], x=[duration_s], base=[0], orientation="h", marker_color="#eeeeee",
                             hoverinfo="skip", showlegend=False), row=1, col=1)
    if not tool_traces:
        fig.add_trace(go.Bar(y=["none detected"], x=[duration_s], base=[0], orientation="h", marker_color="#eeeeee",
                             hoverinfo="skip", showlegend=False), row=2, col=1)
    _time_axis(fig, duration_s, row=1, col=1)
    _time_axis(fig, duration_s, row=2, col=1, title_text="time in the video")
    _playhead(fig, playhead_s)
    fig.update_layout(barmode="overlay", bargap=0.25, height=190 + 28 * lanes + (28 if cvs_traces else 0),
                      clickmode="event+select",
                      dragmode=False, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      **_CONFIG_LAYOUT)
    return fig


def phase_timeline(segments: Sequence[Mapping[str, Any]], duration_s: float, notes: Iterable[Any] = (),
                   moments: Iterable[Moment] = (), playhead_s: float | None = None) -> go.Figure:
    """The phase timeline alone, with comment, bookmark and key-moment markers."""
    fig = go.Figure(_phase_traces(segments) + _note_traces(notes, moments, "Notes"))
    fig.update_yaxes(categoryorder="array", categoryarray=["Phase", "Notes"], range=[-0.6, 1.6], fixedrange=True)
    _time_axis(fig, duration_s, title_text="time in the video")
    _playhead(fig, playhead_s)
    fig.update_layout(barmode="overlay", height=200, clickmode="event+select", dragmode=False, title="Phases",
                      legend=dict(orientation="h", y=-0.4), **_CONFIG_LAYOUT)
    return fig


def tool_swimlanes(presence: pd.DataFrame, duration_s: float, max_gap_s: float = 2.0) -> go.Figure:
    """One lane per tool seen, bars where it is on screen."""
    traces = _tool_traces(presence, max_gap_s)
    fig = go.Figure(traces)
    fig.update_yaxes(autorange="reversed", fixedrange=True)
    _time_axis(fig, duration_s, title_text="time in the video")
    fig.update_layout(barmode="overlay", height=120 + 28 * max(len(traces), 1), title="Instruments on screen",
                      clickmode="event+select", dragmode=False, **_CONFIG_LAYOUT)
    return fig


def _jpeg_uri(rgb: np.ndarray, max_width: int = 640) -> str:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _frame_axes(fig: go.Figure, frame_size: tuple[int, int], frame: np.ndarray | None, opacity: float = 1.0) -> None:
    w, h = frame_size
    if frame is not None:
        fig.add_layout_image(source=_jpeg_uri(frame), xref="x", yref="y", x=0, y=0, sizex=w, sizey=h,
                             sizing="stretch", layer="below", opacity=opacity)
    fig.update_xaxes(range=[0, w], showgrid=False, zeroline=False, visible=False)
    fig.update_yaxes(range=[h, 0], showgrid=False, zeroline=False, visible=False, scaleanchor="x", scaleratio=1)
    # A fixed height (not the legend's or the title's): the frame keeps its size however many tools there are.
    fig.update_layout(plot_bgcolor="#202020" if frame is None else "white", height=int(520 * h / max(w, 1)) + 80)


TRAJECTORY_VIEWS = ("tool", "track")


def trajectories(motion: Mapping[str, Any], frame_size: tuple[int, int], frame: np.ndarray | None = None,
                 min_samples: int = 2, by: str = "tool") -> go.Figure:
    """Instrument paths (motion.json `per_track[].path`) drawn over a representative frame.

    `by="tool"` draws one line per instrument (all its tracks, broken between tracks), `by="track"`
    one line per track; either way the legend has one entry per instrument, so a long case with
    dozens of tracks keeps a legible plot of a fixed size.
    """
    if by not in TRAJECTORY_VIEWS:
        raise ValueError(f"by must be one of {TRAJECTORY_VIEWS}, got {by!r}")
    fig = go.Figure()
    tracks = [t for t in motion.get("per_track", []) if len(t.get("path", [])) >= min_samples]
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for track in tracks:
        groups.setdefault(track["label"], []).append(track)
    for label, own in groups.items():
        shown, tint = display_name(label, "tool"), colour(label, "tool")
        if by == "tool":
            xs: list[float | None] = []
            ys: list[float | None] = []
            data: list[list[Any]] = []
            for track in own:
                path = np.asarray(track["path"], dtype=float)
                xs += [*path[:, 1], None]
                ys += [*path[:, 2], None]
                data += [[t, t, clock(t), f"#{track['tracker_id']}"] for t in path[:, 0]] + [[None, None, "", ""]]
            name = f"{shown} ({len(own)} track{'s' if len(own) > 1 else ''})"
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", name=name, legendgroup=label, line=dict(color=tint, width=2.5),
                customdata=data, connectgaps=False,
                hovertemplate=f"<b>{shown}</b> %{{customdata[3]}}<br>%{{customdata[2]}}<extra></extra>"))
            continue
        for i, track in enumerate(own):
            path = np.asarray(track["path"], dtype=float)
            fig.add_trace(go.Scatter(
                x=path[:, 1], y=path[:, 2], mode="lines+markers", name=shown, legendgroup=label, showlegend=i == 0,
                line=dict(color=tint, width=2.5), marker=dict(size=5),
                customdata=[[t, t, clock(t)] for t in path[:, 0]],
                hovertemplate=f"<b>{shown} #{track['tracker_id']}</b><br>%{{customdata[2]}}<extra></extra>"))
            fig.add_trace(go.Scatter(x=path[-1:, 1], y=path[-1:, 2], mode="markers", legendgroup=label,
                                     marker=dict(size=10, symbol="x", color=tint), showlegend=False, hoverinfo="skip"))
    _frame_axes(fig, frame_size, frame)
    title = ("Instrument trajectories" + (" per track" if by == "track" else "")
             + ("" if tracks else " (no track long enough to draw)"))
    fig.update_layout(title=title, legend=dict(orientation="h", y=-0.02, x=0, yanchor="top"), **_CONFIG_LAYOUT)
    return fig


def motion_heatmap(motion: Mapping[str, Any], frame_size: tuple[int, int], tools: Sequence[str] | None = None,
                   frame: np.ndarray | None = None) -> go.Figure:
    """Where the instruments were (share of samples per grid cell), all tools or the given ones, over the frame."""
    per_tool = {k: v for k, v in (motion.get("per_tool") or {}).items() if tools is None or k in tools}
    grids = [(np.asarray(v["heatmap"], dtype=float), v.get("samples", 1)) for v in per_tool.values() if v.get("heatmap")]
    fig = go.Figure()
    w, h = frame_size
    if grids:
        total = sum(n for _, n in grids) or 1
        heat = sum(g * n for g, n in grids) / total
        rows, cols = heat.shape
        fig.add_trace(go.Heatmap(
            z=np.where(heat > 0, heat, np.nan), x=(np.arange(cols) + 0.5) * w / cols, y=(np.arange(rows) + 0.5) * h / rows,
            colorscale="YlOrRd", opacity=0.65, zmin=0, colorbar=dict(title="share", tickformat=".0%"),
            hovertemplate="%{z:.1%} of samples<extra></extra>"))
    _frame_axes(fig, frame_size, frame, opacity=0.9)
    if not per_tool:
        title = "Where the instruments were: no instruments"
    elif len(per_tool) == 1:
        title = f"Where the {display_name(next(iter(per_tool)), 'tool')} was"
    else:
        title = f"Where the instruments were ({len(per_tool)})"  # the names are in the selector: a long title is cut
    fig.update_layout(title=title, **_CONFIG_LAYOUT)
    return fig


def motion_tool_table(motion: Mapping[str, Any]) -> pd.DataFrame:
    """Motion metrics per tool, one row per tool (taxonomy display names)."""
    rows = [{"tool": display_name(name, "tool"), **{k: m.get(k) for k in MOTION_METRICS}}
            for name, m in (motion.get("per_tool") or {}).items()]
    return pd.DataFrame(rows, columns=["tool", *MOTION_METRICS])


def motion_phase_table(motion: Mapping[str, Any]) -> pd.DataFrame:
    """Motion metrics per phase segment and tool."""
    rows = []
    for seg in motion.get("per_phase") or []:
        for tool, m in (seg.get("tools") or {}).items():
            rows.append({"phase": display_name(seg["phase"], "phase"), "from": clock(seg["start_s"]),
                         "to": clock(seg["end_s"]), "tool": display_name(tool, "tool"),
                         **{k: m.get(k) for k in MOTION_METRICS}})
    return pd.DataFrame(rows, columns=["phase", "from", "to", "tool", *MOTION_METRICS])


def phase_durations(segments: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Seconds spent in each phase of one case."""
    totals: dict[str, float] = {}
    for s in segments:
        totals[s["label"]] = totals.get(s["label"], 0.0) + s["end_s"] - s["start_s"]
    fig = go.Figure(go.Bar(
        x=list(totals.values()), y=[display_name(k, "phase") for k in totals], orientation="h",
        marker_color=[colour(k, "phase") for k in totals], text=[clock(v) for v in totals.values()],
        hovertemplate="%{y}: %{x:.0f} s<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Time per phase" + ("" if totals else " (no phase recognition)"), xaxis_title="seconds",
                      height=120 + 30 * max(len(totals), 1), **_CONFIG_LAYOUT)
    return fig


def library_distribution(table: pd.DataFrame, value: str, group: str, highlight_case_id: int | None = None,
                         title: str = "", value_title: str | None = None, kind: str | None = None) -> go.Figure:
    """Each group's distribution of `value` across the library's cases, with one case highlighted.

    `table` is long: one row per (case_id, group) with the columns `case_id`, `title`, `group`, `value`.
    `kind` ("phase" | "tool") colours the groups from the taxonomy.
    """
    fig = go.Figure()
    groups = list(dict.fromkeys(table[group])) if not table.empty else []
    if kind:  # phases in surgical order, tools in taxonomy order; names outside the taxonomy last
        groups.sort(key=lambda n: (label.id, "") if (label := label_of(n, kind)) else (math.inf, str(n)))
    for name in groups:
        sub = table[table[group] == name]
        shown = display_name(name, kind) if kind else str(name)
        fig.add_trace(go.Box(
            y=[shown] * len(sub), x=sub[value], name=shown, orientation="h", boxpoints="all", jitter=0.4, pointpos=0,
            marker=dict(color=colour(name, kind) if kind else GREY, size=6), line=dict(color="#555555", width=1),
            fillcolor="rgba(0,0,0,0)", customdata=sub[["case_id", "title"]].to_numpy(),
            hovertemplate="%{customdata[1]}: %{x:.3g}<extra></extra>", showlegend=False))
    if highlight_case_id is not None and not table.empty:
        own = table[table["case_id"] == highlight_case_id]
        if not own.empty:
            fig.add_trace(go.Scatter(
                x=own[value], y=[display_name(n, kind) if kind else str(n) for n in own[group]], mode="markers",
                name=str(own["title"].iloc[0]), marker=dict(symbol="diamond", size=15, color=HIGHLIGHT,
                                                             line=dict(color="white", width=1.5)),
                hovertemplate="<b>%{fullData.name}</b>: %{x:.3g}<extra></extra>"))
    if not groups:
        fig.add_annotation(text="nothing to compare yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, xaxis_title=value_title or value, height=140 + 36 * max(len(groups), 1),
                      legend=dict(orientation="h", y=-0.2), **_CONFIG_LAYOUT)
    return fig


# ---------------------------------------------------------------- model evaluations


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def roc_curves(evaluation: Mapping[str, Any]) -> go.Figure | None:
    """One-vs-rest ROC curve per class (classification reports with per_class[].roc); None when absent."""
    per_class = evaluation.get("per_class") or {}
    curves = {k: v for k, v in per_class.items() if isinstance(v, Mapping) and v.get("roc")}
    if not curves:
        return None
    fig = go.Figure()
    for name, v in curves.items():
        fpr = list(v["roc"].get("fpr", []))
        tpr = list(v["roc"].get("tpr", []))
        if not fpr or not all(_present(x) for x in fpr + tpr):
            continue
        auc = f" (AUC {v['auc']:.2f})" if _present(v.get("auc")) else ""
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name}{auc}", line=dict(shape="hv")))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color=GREY), showlegend=False,
                             hoverinfo="skip"))
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1.02], scaleanchor="x")
    fig.update_layout(title="ROC curves (one class against the rest)", height=460, **_CONFIG_LAYOUT)
    return fig


def confusion_matrix(evaluation: Mapping[str, Any]) -> go.Figure | None:
    """Confusion matrix (rows: true class, columns: predicted), row-normalised colours; None when absent."""
    matrix = evaluation.get("confusion_matrix")
    classes = evaluation.get("classes")
    if not matrix or not classes:
        return None
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig = go.Figure(go.Heatmap(
        z=share, x=list(classes), y=list(classes), colorscale="Blues", zmin=0, zmax=1, text=counts.astype(int),
        texttemplate="%{text}", customdata=share, colorbar=dict(title="row share", tickformat=".0%"),
        hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.0%})<extra></extra>"))
    fig.update_yaxes(title="true class", autorange="reversed")
    fig.update_xaxes(title="predicted class")
    fig.update_layout(title="Confusion matrix", height=160 + 45 * len(classes), **_CONFIG_LAYOUT)
    return fig


def per_class_ap(evaluation: Mapping[str, Any]) -> go.Figure | None:
    """Per-class average precision (detection AP50/AP50_95 or presence AP); None when absent."""
    per_class = (evaluation.get("metrics") or {}).get("per_class") or {}
    keys = [k for k in ("AP50", "AP50_95", "AP") if any(isinstance(v, Mapping) and k in v for v in per_class.values())]
    if not keys:
        return None
    names = list(per_class)
    fig = go.Figure([go.Bar(x=[per_class[n].get(k) for n in names], y=[display_name(n, "tool") for n in names],
                            orientation="h", name=k, hovertemplate="%{y}: %{x:.3f}<extra>" + k + "</extra>")
                     for k in keys])
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="average precision", range=[0, 1])
    fig.update_layout(title="Average precision per class", barmode="group", height=140 + 30 * len(names) * len(keys),
                      **_CONFIG_LAYOUT)
    return fig


def evaluation_figures(evaluation: Mapping[str, Any]) -> list[go.Figure]:
    """Every chart an evaluation JSON supports (ROC curves, confusion matrix, per-class AP)."""
    figures = (roc_curves(evaluation), confusion_matrix(evaluation), per_class_ap(evaluation))
    return [f for f in figures if f is not None]


# ---------------------------------------------------------------- the HTML report


def report_figures(case: Any, result: "CaseResult | None", comments: Sequence[Any]) -> list[go.Figure]:
    """The charts of a case's HTML report (library.export.FigureBuilder): timeline, phase durations, trajectories."""
    if result is None:
        return []
    from analysis.moments import key_moments, phase_segments

    segments = phase_segments(result)
    duration = result.duration_s or float(case.duration_s or 0.0)
    report = result.motion()
    motion = report.to_dict() if report else {}
    threads = [c for c in comments if getattr(c, "parent_id", None) is None]  # answers share their comment's marker
    timeline = case_timeline(segments, result.tool_presence(), duration, threads, key_moments(result),
                             anatomy=result.anatomy())
    figures = [_for_report(timeline, "Phases, notes and instruments over time", legend_right=True)]
    if segments:
        figures.append(_for_report(phase_durations(segments), "Time per phase"))
    if motion.get("per_track"):
        figures.append(_for_report(trajectories(motion, result.sampling.frame_size), "Instrument trajectories",
                                   legend_right=True))
    return figures


REPORT_WIDTH = 1000  # px: fits the report's column; print zooms it to the page


def _for_report(fig: go.Figure, title: str, legend_right: bool = False) -> go.Figure:
    """A fixed-size chart for the static report: room for lane labels, the title apart from the legend."""
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    height = (fig.layout.height or 300) + 60  # the title and the axis title get their own room
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=10)),
                      width=REPORT_WIDTH, height=height, margin=dict(l=150, r=200 if legend_right else 30, t=60, b=60))
    if legend_right:  # beside the chart: never over its title, tick labels or axis title
        fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"))
    return fig
