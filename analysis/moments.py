"""Key moments of an analysed case: phase transitions, uncertain phase stretches, each tool's first appearance,
clipper and scissors use.

Everything is read from the case folder (`analysis.results`), so the dashboard, exports and the CLI
agree. Phase segments come from `phase_segments.json`, or, when only per-second probabilities were
written, from runs of the per-second phase. Tool times come from the per-second presence table.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.results import PHASE_PROBS, PHASE_SEGMENTS, TOOL_PRESENCE, CaseResult
from models.phase.timeline import LOW_CONFIDENCE
from models.taxonomy import Label, load_taxonomy

MOMENT_KINDS = ("phase", "uncertain", "first_seen", "clipper", "scissors")
USE_TOOLS = {"Clipper": "clipper", "Scissors": "scissors"}  # tools whose every use is a key moment


def clock(seconds: float) -> str:
    """m:ss (h:mm:ss past an hour) of a time in the video."""
    total = int(round(max(float(seconds), 0.0)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def taxonomy_label(name: str, kind: str) -> Label | None:
    """The taxonomy label of a phase or tool name or alias; None for names outside the taxonomy."""
    tax = load_taxonomy()
    labels, lookup = (tax.phases, tax.phase_id) if kind == "phase" else (tax.tools, tax.tool_id)
    try:
        return labels[lookup(str(name))]
    except KeyError:
        return None


def display_name(name: str, kind: str) -> str:
    """What the UI calls a phase or tool (the taxonomy's display name, else the name itself)."""
    label = taxonomy_label(name, kind)
    return label.display if label else str(name)


@dataclass(frozen=True)
class Moment:
    """One key moment at `time_s` seconds; `end_s` closes the moments that last (a tool's use)."""

    time_s: float
    kind: str  # one of MOMENT_KINDS
    label: str  # taxonomy name of the phase or tool
    text: str  # one line for the page
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def phase_segments(result: CaseResult) -> list[dict[str, Any]]:
    """The case's phase segments [{start_s, end_s, label, confidence}] with taxonomy names, by time.

    Empty when the phase stage did not run.
    """
    raw = result.json(PHASE_SEGMENTS)
    if raw is None:
        raw = _segments_from_probs(result.table(PHASE_PROBS))
    segments = []
    for seg in raw or []:
        start, end = float(seg["start_s"]), float(seg["end_s"])
        if end <= start:
            continue
        label = taxonomy_label(seg["label"], "phase")
        confidence = seg.get("confidence")
        segments.append({"start_s": start, "end_s": end, "label": label.name if label else str(seg["label"]),
                         "confidence": None if confidence is None else float(confidence)})
    return sorted(segments, key=lambda s: s["start_s"])


def _segments_from_probs(probs: pd.DataFrame) -> list[dict[str, Any]]:
    if probs.empty or "phase_id" not in probs or "second" not in probs:
        return []
    names = load_taxonomy().phase_names
    seconds = probs["second"].to_numpy(dtype=float)
    ids = probs["phase_id"].to_numpy(dtype=int)
    columns = [c for c in probs.columns if c in names]
    out = []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(ids)]):
        if not 0 <= ids[a] < len(names):
            continue
        name = names[ids[a]]
        confidence = float(probs[name].iloc[a:b].mean()) if name in columns else None
        out.append({"start_s": seconds[a], "end_s": seconds[b - 1] + 1.0, "label": name, "confidence": confidence})
    return out


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
    presence = result.table(TOOL_PRESENCE)
    for column in presence.columns:
        if column == "second":
            continue
        label = taxonomy_label(column, "tool")
        name = label.name if label else str(column)
        runs = tool_runs(presence, column, min_confidence, max_gap_s)
        if not runs:
            continue
        moments.append(Moment(runs[0][0], "first_seen", name, f"{display_name(name, 'tool')} first seen"))
        if name in USE_TOOLS:
            for start, end in runs:
                text = f"{display_name(name, 'tool')} in use {clock(start)}–{clock(end)} ({end - start:g} s)"
                moments.append(Moment(start, USE_TOOLS[name], name, text, end))
    order = {k: i for i, k in enumerate(MOMENT_KINDS)}
    return sorted(moments, key=lambda m: (m.time_s, order[m.kind], m.label))


def moments_frame(moments: Sequence[Moment]) -> pd.DataFrame:
    """Moments as a table (time_s, end_s, kind, label, text)."""
    columns = ["time_s", "end_s", "kind", "label", "text"]
    return pd.DataFrame([{k: m.to_dict()[k] for k in columns} for m in moments], columns=columns)


def review_these(moments: Sequence[Moment], segments: Sequence[dict[str, Any]]) -> list[tuple[Moment, float]]:
    """The 'uncertain' moments with their segment's confidence, least confident first (an educator's review list)."""
    confidence = {(s["start_s"], s["label"]): s["confidence"] for s in segments if s.get("confidence") is not None}
    found = [(m, confidence.get((m.time_s, m.label), LOW_CONFIDENCE)) for m in moments if m.kind == "uncertain"]
    return sorted(found, key=lambda mc: (mc[1], mc[0].time_s))
