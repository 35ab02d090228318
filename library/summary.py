"""The filterable summary of an analysed case, read through its case result."""
from __future__ import annotations

from dataclasses import dataclass

from analysis.results import CaseResult
from models.taxonomy import canonical_name


@dataclass(frozen=True)
class CaseSummary:
    """Duration and the seconds of each phase and tool present (names are taxonomy names)."""

    duration_s: float | None
    phase_seconds: dict[str, float]
    tool_seconds: dict[str, float]


def summarise(result: CaseResult) -> CaseSummary:
    """Phases from the segment list (or per-second probabilities), tools from per-second presence."""
    phases: dict[str, float] = {}
    for seg in result.segments():
        phases[seg.label] = phases.get(seg.label, 0.0) + max(seg.end_s - seg.start_s, 0.0)
    tools: dict[str, float] = {}
    presence = result.tool_presence()
    for column in presence.columns:
        if column == "second":
            continue
        seconds = float((presence[column] > 0).sum())
        if seconds > 0:
            tools[canonical_name(str(column), "tool")] = seconds
    return CaseSummary(
        duration_s=result.duration_s if result.video.duration_s is not None else None,
        phase_seconds={k: round(v, 3) for k, v in phases.items()},
        tool_seconds=tools,
    )
