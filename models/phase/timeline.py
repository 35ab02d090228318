"""What the phase model outputs: per-second probabilities and the segment list."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# Segments whose mean probability is below this are flagged for review (timeline hatching, key moments).
LOW_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Segment:
    """A run of one phase: [start_s, end_s) in video seconds, canonical phase name, mean probability."""

    start_s: float
    end_s: float
    label: str
    confidence: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PhaseProbabilities:
    """Per-second phase probabilities (named columns) and the decoded phase of every second."""

    second: np.ndarray  # (T,) int64, second k covers [k, k+1) of video time
    probs: np.ndarray  # (T, P) float32, rows sum to 1
    phase_id: np.ndarray  # (T,) int64, decoded phase (Viterbi offline, running argmax online)
    phase_names: tuple[str, ...]
    mode: str = "offline"

    def __post_init__(self) -> None:
        n = len(self.second)
        if self.probs.shape != (n, len(self.phase_names)) or self.phase_id.shape != (n,):
            raise ValueError(
                f"{n} seconds need ({n}, {len(self.phase_names)}) probabilities and {n} phase ids, "
                f"got {self.probs.shape} and {self.phase_id.shape}"
            )

    def __len__(self) -> int:
        return len(self.second)

    def segments(self) -> list[Segment]:
        """Maximal runs of the decoded phase; confidence = mean probability of that phase over the run."""
        out: list[Segment] = []
        if len(self) == 0:
            return out
        cuts = np.flatnonzero(np.diff(self.phase_id)) + 1
        for start, stop in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(self)]])):
            p = int(self.phase_id[start])
            out.append(Segment(
                start_s=float(self.second[start]),
                end_s=float(self.second[stop - 1] + 1),
                label=self.phase_names[p],
                confidence=round(float(self.probs[start:stop, p].mean()), 4),
            ))
        return out

    def durations_s(self) -> dict[str, float]:
        """Seconds spent in each phase (decoded), every phase listed."""
        counts = np.bincount(self.phase_id, minlength=len(self.phase_names))
        return {n: float(c) for n, c in zip(self.phase_names, counts)}

    def transitions(self) -> list[dict[str, Any]]:
        """Each change of decoded phase: time, from, to."""
        segs = self.segments()
        return [{"t_s": b.start_s, "from": a.label, "to": b.label} for a, b in zip(segs, segs[1:])]

    def to_frame(self) -> "pd.DataFrame":
        """`second`, one probability column per phase (canonical names), `phase_id`."""
        import pandas as pd

        table = pd.DataFrame({"second": self.second.astype(np.int64)})
        for i, name in enumerate(self.phase_names):
            table[name] = self.probs[:, i].astype(np.float32)
        table["phase_id"] = self.phase_id.astype(np.int64)
        return table
