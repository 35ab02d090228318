"""The filterable summary of an analysed case, read from its case folder."""
from __future__ import annotations

from dataclasses import dataclass

from analysis.results import PHASE_PROBS, PHASE_SEGMENTS, TOOL_PRESENCE, CaseResult
from models.taxonomy import load_taxonomy


@dataclass(frozen=True)
class CaseSummary:
    """Duration and the seconds of each phase and tool present (names are taxonomy names)."""

    duration_s: float | None
    phase_seconds: dict[str, float]
    tool_seconds: dict[str, float]


def canonical_name(name: str, kind: str) -> str:
    """The taxonomy name of a phase or tool name or alias (unknown names are kept as they are)."""
    tax = load_taxonomy()
    labels, lookup = (tax.phases, tax.phase_id) if kind == "phase" else (tax.tools, tax.tool_id)
    try:
        return labels[lookup(name)].name
    except KeyError:  # a label outside the taxonomy (custom weights) is kept as it is
        return name


def summarise(result: CaseResult) -> CaseSummary:
    """Phases from the segment list (or per-second probabilities), tools from per-second presence."""
    duration = (result.case.get("video") or {}).get("duration_s")
    phases: dict[str, float] = {}
    segments = result.json(PHASE_SEGMENTS)
    if segments:
        for seg in segments:
            name = canonical_name(str(seg["label"]), "phase")
            phases[name] = phases.get(name, 0.0) + max(float(seg["end_s"]) - float(seg["start_s"]), 0.0)
    else:
        probs = result.table(PHASE_PROBS)
        if "phase_id" in probs:
            names = load_taxonomy().phase_names
            for pid in probs["phase_id"]:
                if 0 <= int(pid) < len(names):
                    phases[names[int(pid)]] = phases.get(names[int(pid)], 0.0) + 1.0  # one row per second
    tools: dict[str, float] = {}
    presence = result.table(TOOL_PRESENCE)
    for column in presence.columns:
        if column == "second":
            continue
        seconds = float((presence[column] > 0).sum())
        if seconds > 0:
            tools[canonical_name(str(column), "tool")] = seconds
    return CaseSummary(
        duration_s=float(duration) if duration is not None else None,
        phase_seconds={k: round(v, 3) for k, v in phases.items()},
        tool_seconds=tools,
    )
