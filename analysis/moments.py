"""Key moments of an analysed case: phase transitions, uncertain phase stretches, each tool's first appearance,
clipper and scissors use, and the critical view of safety (CVS reached; clipping begun before it).

Everything is read through the case result (`analysis.results.CaseResult`), so the dashboard, exports and
the CLI agree: phase segments, the per-second tool presence and the anatomy table's CVS criteria.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.results import CaseResult
from models.phase.timeline import LOW_CONFIDENCE
from models.taxonomy import display_name, label_of, load_taxonomy  # noqa: F401  (display_name: re-exported)

MOMENT_KINDS = ("phase", "uncertain", "first_seen", "clipper", "scissors", "cvs_reached", "clipping_before_cvs")
CVS_CRITERIA = ("cvs_c1", "cvs_c2", "cvs_c3")
CVS_HOLDS = 0.5  # a criterion holds in a second where its probability is at least this
# Where CVS matters: it is assessed during Calot triangle dissection, before clipping.
CVS_PHASES = ("CalotTriangleDissection", "ClippingCutting")
CLIPPING_PHASE = "ClippingCutting"
USE_TOOLS = {"Clipper": "clipper", "Scissors": "scissors"}  # tools whose every use is a key moment


def clock(seconds: float) -> str:
    """m:ss (h:mm:ss past an hour) of a time in the video."""
    total = int(round(max(float(seconds), 0.0)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True)
class Moment:
    """One key moment at `time_s` seconds; `end_s` closes the moments that last (a tool's use)."""

    time_s: float
    kind: str  # one of MOMENT_KINDS
    label: str  # taxonomy name of the phase or tool
    text: str  # one line for the page
    end_s: float | None = None
    confidence: float | None = None  # the model's probability behind a moment that has one (CVS)
    note: str | None = None  # a caveat shown with it (not for clinical use)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def phase_segments(result: CaseResult) -> list[dict[str, Any]]:
    """The case's phase segments as dicts {start_s, end_s, label, confidence} (taxonomy names, by time).

    Empty when the phase stage did not run.
    """
    return [s.to_dict() for s in result.segments()]


def tool_runs(presence: pd.DataFrame, tool: str, min_confidence: float = 0.0,
              max_gap_s: float = 2.0) -> list[tuple[float, float]]:
    """[(start_s, end_s)) spans where `tool` is on screen, from the per-second presence table.

    Seconds whose confidence is above `min_confidence` count as present; gaps of at most
    `max_gap_s` seconds inside a span (a missed detection) are bridged.
    """
    if max_gap_s < 0:
        raise ValueError(f"max_gap_s must be >= 0, got {max_gap_s!r}")
    if presence.empty or tool not in presence.columns:
        return []
    seconds = presence["second"].to_numpy(dtype=float) if "second" in presence else np.arange(len(presence), dtype=float)
    present = seconds[presence[tool].to_numpy(dtype=float) > min_confidence].tolist()
    runs: list[tuple[float, float]] = []
    for t in present:
        if runs and t - runs[-1][1] <= max_gap_s:
            runs[-1] = (runs[-1][0], t + 1.0)
        else:
            runs.append((t, t + 1.0))
    return runs


def key_moments(case: CaseResult | str | Path, min_confidence: float = 0.0, max_gap_s: float = 2.0) -> list[Moment]:
    """Phase transitions, the first appearance of each tool, and each use of the clipper and scissors, by time."""
    result = case if isinstance(case, CaseResult) else CaseResult.load(case)
    moments: list[Moment] = []
    segments = phase_segments(result)
    for before, after in zip(segments, segments[1:]):
        if before["label"] == after["label"]:
            continue
        text = f"{display_name(before['label'], 'phase')} → {display_name(after['label'], 'phase')}"
        moments.append(Moment(after["start_s"], "phase", after["label"], text))
    for seg in segments:  # where the model is unsure, the educator's review is worth most
        if seg["confidence"] is not None and seg["confidence"] < LOW_CONFIDENCE:
            text = (f"Phase uncertain: {display_name(seg['label'], 'phase')} at {seg['confidence']:.0%} confidence, "
                    f"{clock(seg['start_s'])}–{clock(seg['end_s'])}: review")
            moments.append(Moment(seg["start_s"], "uncertain", seg["label"], text, seg["end_s"]))
    presence = result.tool_presence()
    for column in presence.columns:
        if column == "second":
            continue
        label = label_of(column, "tool")
        name = label.name if label else str(column)
        runs = tool_runs(presence, column, min_confidence, max_gap_s)
        if not runs:
            continue
        moments.append(Moment(runs[0][0], "first_seen", name, f"{display_name(name, 'tool')} first seen"))
        if name in USE_TOOLS:
            for start, end in runs:
                text = f"{display_name(name, 'tool')} in use {clock(start)}–{clock(end)} ({end - start:g} s)"
                moments.append(Moment(start, USE_TOOLS[name], name, text, end))
    moments += cvs_moments(result.anatomy(), segments, presence, min_confidence, max_gap_s)
    order = {k: i for i, k in enumerate(MOMENT_KINDS)}
    return sorted(moments, key=lambda m: (m.time_s, order[m.kind], m.label))


def cvs_frame(anatomy: pd.DataFrame) -> pd.DataFrame:
    """anatomy.parquet's CVS columns by time (timestamp_s, cvs_c1..c3, cvs_all); empty without assessed CVS.

    The interim model (no CVS head) writes NaN criteria: those rows are dropped.
    """
    if anatomy.empty or any(c not in anatomy for c in CVS_CRITERIA):
        return pd.DataFrame(columns=["timestamp_s", *CVS_CRITERIA, "cvs_all"])
    time = anatomy["timestamp_s"] if "timestamp_s" in anatomy else anatomy["second"]
    table = pd.DataFrame({"timestamp_s": time.to_numpy(dtype=float),
                          **{c: anatomy[c].to_numpy(dtype=float) for c in CVS_CRITERIA}})
    table["cvs_all"] = (anatomy["cvs_all"].to_numpy(dtype=float) if "cvs_all" in anatomy
                        else table[list(CVS_CRITERIA)].prod(axis=1).to_numpy())
    return table.dropna(subset=list(CVS_CRITERIA)).sort_values("timestamp_s").reset_index(drop=True)


def cvs_window(times: np.ndarray, segments: Sequence[dict[str, Any]]) -> np.ndarray:
    """Which times count for CVS: inside Calot triangle dissection or clipping when the case has phases, else all."""
    times = np.asarray(times, dtype=float)
    if not segments:
        return np.ones(len(times), dtype=bool)
    inside = np.zeros(len(times), dtype=bool)
    for seg in segments:
        if seg["label"] in CVS_PHASES:
            inside |= (times >= seg["start_s"]) & (times < seg["end_s"])
    return inside


def cvs_moments(anatomy: pd.DataFrame, segments: Sequence[dict[str, Any]] = (), presence: pd.DataFrame | None = None,
                min_confidence: float = 0.0, max_gap_s: float = 2.0) -> list[Moment]:
    """"CVS reached (C1 C2 C3)" at the first second where all three criteria hold, and "Clipping began before
    CVS" at the first clipper presence or clipping-phase start when no earlier second reached it.

    Only seconds in Calot triangle dissection or clipping count when the case has phase segments
    (`cvs_window`). Nothing when the criteria were not assessed (no anatomy table, no CVS head).
    """
    from models.anatomy.model import NOTE

    table = cvs_frame(anatomy)
    if table.empty:
        return []
    table = table[cvs_window(table["timestamp_s"].to_numpy(), segments)]
    holds = (table[list(CVS_CRITERIA)] >= CVS_HOLDS).all(axis=1)
    reached = table[holds]
    moments = []
    t_cvs = None
    if not reached.empty:
        row = reached.iloc[0]
        t_cvs = float(row["timestamp_s"])
        scores = " ".join(f"C{i + 1} {row[c]:.2f}" for i, c in enumerate(CVS_CRITERIA))
        moments.append(Moment(t_cvs, "cvs_reached", "CVS",
                              f"CVS reached ({scores}), all three {row['cvs_all']:.0%}",
                              confidence=round(float(row["cvs_all"]), 4), note=NOTE))
    starts = [s["start_s"] for s in segments if s["label"] == CLIPPING_PHASE]
    if presence is not None:
        runs = tool_runs(presence, "Clipper", min_confidence, max_gap_s)
        starts += [runs[0][0]] if runs else []
    if not starts:
        return moments
    t_clip = float(min(starts))
    if t_cvs is not None and t_cvs <= t_clip:
        return moments
    before = table[table["timestamp_s"] < t_clip]
    if before.empty:  # nothing was assessed before the clipping: no claim either way
        return moments
    best = before.loc[before["cvs_all"].idxmax()]
    scores = " ".join(f"C{i + 1} {best[c]:.2f}" for i, c in enumerate(CVS_CRITERIA))
    confidence = 1.0 - float(before["cvs_all"].max())
    moments.append(Moment(t_clip, "clipping_before_cvs", "Clipper",
                          f"Clipping began before CVS (best before it at {clock(best['timestamp_s'])}: {scores}), "
                          f"{confidence:.0%} confident: review",
                          confidence=round(confidence, 4), note=NOTE))
    return moments


def moments_frame(moments: Sequence[Moment]) -> pd.DataFrame:
    """Moments as a table (time_s, end_s, kind, label, text)."""
    columns = ["time_s", "end_s", "kind", "label", "text"]
    return pd.DataFrame([{k: m.to_dict()[k] for k in columns} for m in moments], columns=columns)


def review_these(moments: Sequence[Moment], segments: Sequence[dict[str, Any]]) -> list[tuple[Moment, float]]:
    """The 'uncertain' moments with their segment's confidence, least confident first (an educator's review list)."""
    confidence = {(s["start_s"], s["label"]): s["confidence"] for s in segments if s.get("confidence") is not None}
    found = [(m, confidence.get((m.time_s, m.label), LOW_CONFIDENCE)) for m in moments if m.kind == "uncertain"]
    return sorted(found, key=lambda mc: (mc[1], mc[0].time_s))
