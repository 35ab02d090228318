"""Study mode scoring: a trainee's marked phase transitions (and optionally tools and the CVS moment) against
a reference timeline.

Pure: timelines in, a `StudyScore` out; no files, no database. Conventions:
- A timeline is a list of segments {start_s, end_s, label} with taxonomy phase names; a trainee's marks are
  (time_s, phase) pairs, each the moment that phase begins (the first mark usually at 0:00). A mark's phase
  lasts until the next mark, the last until the end of the video; before the first mark nothing is labelled.
- Transitions of the reference are the starts of its segments whose phase differs from the one before
  (the start of the video is not a transition). Each is matched to the trainee's nearest mark into the same
  phase; the timing error is trainee minus reference in seconds (negative: marked early). No mark into that
  phase: the transition is missed (no error, counted apart).
- Segment Jaccard per phase is computed on whole seconds 0..duration: |both p| / |either p|, for every phase
  in the reference or the trainee's timeline; the mean is over the phases of the reference.
- Instrument F1 pools every marked moment: a tool named at a moment the reference shows it is a true positive,
  one named that is not shown a false positive, one shown but not named a false negative.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class TransitionMatch:
    """One reference transition into `phase` at `reference_s`, and the trainee's nearest mark into it."""

    phase: str
    reference_s: float
    trainee_s: float | None  # None: the trainee never marked this phase

    @property
    def error_s(self) -> float | None:
        return None if self.trainee_s is None else self.trainee_s - self.reference_s


@dataclass(frozen=True)
class StudyScore:
    """How a trainee's timeline compares with the reference (`reference_source`: "educator" or "model")."""

    reference_source: str
    transitions: tuple[TransitionMatch, ...]
    jaccard: dict[str, float]  # phase -> segment Jaccard (phases of the reference or the trainee)
    reference_phases: tuple[str, ...]
    tool_precision: float | None = None  # None when no tools were marked
    tool_recall: float | None = None
    tool_f1: float | None = None
    cvs_error_s: float | None = None  # trainee minus reference; None when either is missing

    @property
    def mean_abs_error_s(self) -> float | None:
        """Mean |timing error| over the matched transitions (None when none matched)."""
        errors = [abs(t.error_s) for t in self.transitions if t.error_s is not None]
        return float(np.mean(errors)) if errors else None

    @property
    def missed(self) -> int:
        return sum(t.trainee_s is None for t in self.transitions)

    @property
    def mean_jaccard(self) -> float:
        """Mean Jaccard over the reference's phases (NaN without any)."""
        values = [self.jaccard.get(p, 0.0) for p in self.reference_phases]
        return float(np.mean(values)) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_source": self.reference_source,
            "mean_abs_error_s": _round(self.mean_abs_error_s),
            "missed_transitions": self.missed,
            "mean_jaccard": _round(self.mean_jaccard),
            "transitions": [{**asdict(t), "error_s": _round(t.error_s)} for t in self.transitions],
            "jaccard": {k: _round(v) for k, v in self.jaccard.items()},
            "reference_phases": list(self.reference_phases),
            "tool_precision": _round(self.tool_precision),
            "tool_recall": _round(self.tool_recall),
            "tool_f1": _round(self.tool_f1),
            "cvs_error_s": _round(self.cvs_error_s),
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def clean_marks(marks: Iterable[tuple[float, str]], duration_s: float | None = None) -> list[tuple[float, str]]:
    """Marks sorted by time, repeats of the phase already running dropped; bad times raise ValueError."""
    out: list[tuple[float, str]] = []
    for time_s, phase in sorted(((float(t), str(p)) for t, p in marks), key=lambda m: m[0]):
        if not (time_s >= 0 and math.isfinite(time_s)):
            raise ValueError(f"a mark's time must be >= 0 seconds, got {time_s!r}")
        if duration_s is not None and time_s > duration_s:
            raise ValueError(f"a mark at {time_s:g} s is after the end of the video ({duration_s:g} s)")
        if out and out[-1][0] == time_s:
            raise ValueError(f"two marks at the same time {time_s:g} s")
        if out and out[-1][1] == phase:
            continue
        out.append((time_s, phase))
    return out


def segments_from_marks(marks: Iterable[tuple[float, str]], duration_s: float) -> list[dict[str, Any]]:
    """The timeline a trainee's marks describe: each phase from its mark to the next (the last to the end)."""
    marks = clean_marks(marks, duration_s)
    ends = [t for t, _ in marks[1:]] + [float(duration_s)]
    return [{"start_s": t, "end_s": end, "label": p} for (t, p), end in zip(marks, ends) if end > t]


def marks_from_segments(segments: Sequence[Mapping[str, Any]]) -> list[tuple[float, str]]:
    """The (time_s, phase) marks that describe a timeline: its first segment and every change of phase."""
    out: list[tuple[float, str]] = []
    for seg in sorted(segments, key=lambda s: float(s["start_s"])):
        if not out or out[-1][1] != seg["label"]:
            out.append((float(seg["start_s"]), str(seg["label"])))
    return out


def reference_transitions(segments: Sequence[Mapping[str, Any]]) -> list[tuple[float, str]]:
    """Changes of phase in a timeline (time_s, the phase entered), the video's start left out."""
    return marks_from_segments(segments)[1:]


def per_second(segments: Sequence[Mapping[str, Any]], duration_s: float) -> np.ndarray:
    """The phase name at the middle of each whole second 0..ceil(duration)-1 ("" where none)."""
    n = int(math.ceil(max(float(duration_s), 0.0)))
    labels = np.full(n, "", dtype=object)
    centres = np.arange(n) + 0.5
    for seg in sorted(segments, key=lambda s: float(s["start_s"])):
        inside = (centres >= float(seg["start_s"])) & (centres < float(seg["end_s"]))
        labels[inside] = str(seg["label"])
    return labels


def phase_jaccard(reference: Sequence[Mapping[str, Any]], trainee: Sequence[Mapping[str, Any]],
                  duration_s: float) -> dict[str, float]:
    """Segment Jaccard per phase on whole seconds, for every phase either timeline has."""
    ref, own = per_second(reference, duration_s), per_second(trainee, duration_s)
    phases = dict.fromkeys([*(str(s["label"]) for s in reference), *(str(s["label"]) for s in trainee)])
    out = {}
    for phase in phases:
        union = np.sum((ref == phase) | (own == phase))
        out[phase] = float(np.sum((ref == phase) & (own == phase)) / union) if union else 0.0
    return out


def match_transitions(reference: Sequence[Mapping[str, Any]],
                      marks: Iterable[tuple[float, str]]) -> list[TransitionMatch]:
    """Each reference transition with the trainee's nearest mark into the same phase (None when none)."""
    marks = list(marks)
    out = []
    for time_s, phase in reference_transitions(reference):
        candidates = [t for t, p in marks if p == phase]
        nearest = min(candidates, key=lambda t: (abs(t - time_s), t)) if candidates else None
        out.append(TransitionMatch(phase, time_s, nearest))
    return out


def tool_scores(tool_marks: Iterable[tuple[float, Iterable[str]]],
                reference_tools_at: Mapping[float, Iterable[str]] | Any) -> tuple[float, float, float] | None:
    """(precision, recall, F1) of the tools named at each marked moment; None without any moment.

    `reference_tools_at` maps a time to the tools the reference shows then: a callable (time_s -> names)
    or a mapping of the marked times.
    """
    lookup = reference_tools_at if callable(reference_tools_at) else reference_tools_at.__getitem__
    tp = fp = fn = 0
    moments = 0
    for time_s, named in tool_marks:
        moments += 1
        named, shown = set(named), set(lookup(time_s))
        tp += len(named & shown)
        fp += len(named - shown)
        fn += len(shown - named)
    if not moments:
        return None
    precision = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score_attempt(
    reference: Sequence[Mapping[str, Any]],
    marks: Iterable[tuple[float, str]],
    duration_s: float,
    reference_source: str = "model",
    tool_marks: Sequence[tuple[float, Iterable[str]]] = (),
    reference_tools_at: Any = None,
    cvs_s: float | None = None,
    reference_cvs_s: float | None = None,
) -> StudyScore:
    """Score a trainee's marks against the reference timeline (see the module docstring for the rules)."""
    if reference_source not in ("educator", "model"):
        raise ValueError(f"reference_source must be 'educator' or 'model', got {reference_source!r}")
    if not duration_s or duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s!r}")
    marks = clean_marks(marks, duration_s)
    trainee = segments_from_marks(marks, duration_s)
    tools = None
    if tool_marks:
        if reference_tools_at is None:
            raise ValueError("tool marks need reference_tools_at (the tools the reference shows at a time)")
        tools = tool_scores(tool_marks, reference_tools_at)
    precision, recall, f1 = tools if tools else (None, None, None)
    cvs_error = None if cvs_s is None or reference_cvs_s is None else float(cvs_s) - float(reference_cvs_s)
    return StudyScore(
        reference_source=reference_source,
        transitions=tuple(match_transitions(reference, marks)),
        jaccard=phase_jaccard(reference, trainee, duration_s),
        reference_phases=tuple(dict.fromkeys(str(s["label"]) for s in reference)),
        tool_precision=precision, tool_recall=recall, tool_f1=f1, cvs_error_s=cvs_error,
    )


def tools_shown(presence: Any, time_s: float, min_confidence: float = 0.0) -> set[str]:
    """Tools the per-second presence table shows at `time_s` (confidence above `min_confidence`)."""
    if presence is None or len(presence) == 0:
        return set()
    seconds = (presence["second"].to_numpy(dtype=float) if "second" in presence
               else np.arange(len(presence), dtype=float))
    row = int(np.argmin(np.abs(seconds - math.floor(float(time_s)))))
    if abs(seconds[row] - math.floor(float(time_s))) > 1.0:
        return set()
    return {c for c in presence.columns if c != "second" and float(presence[c].iloc[row]) > min_confidence}
