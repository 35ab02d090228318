"""Per-second tool evidence for the temporal phase model, and the detector's noise on it.

The temporal model is trained on annotated tool presence (78 Cholec80 operations, no frames) and
run on detector output. `ToolNoise` holds the detector's measured confidences on real labelled
frames, split by the true presence of each tool; `ToolNoise.sample` turns annotated presence into
confidences drawn from those distributions (temporally correlated, as detector misses are), so a
model trained on labels sees what it will see at run time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def per_second(times_s: np.ndarray, values: np.ndarray, n_seconds: int) -> np.ndarray:
    """(n_seconds, C) mean of `values` per second of video time; seconds without a frame hold the last
    seen value (the first frame's before it), so sparse sampling reads as a steady signal."""
    times_s = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or len(values) != len(times_s):
        raise ValueError(f"values must be (N, C) with one row per time, got {values.shape} for {len(times_s)} times")
    if n_seconds <= 0:
        raise ValueError(f"n_seconds must be positive, got {n_seconds!r}")
    if len(times_s) == 0:
        raise ValueError("no frames: there is no tool evidence to hold")
    second = np.clip(np.floor(times_s + 1e-9).astype(np.int64), 0, n_seconds - 1)
    sums = np.zeros((n_seconds, values.shape[1]), dtype=np.float64)
    np.add.at(sums, second, values)
    counts = np.bincount(second, minlength=n_seconds)
    seen = np.flatnonzero(counts)
    # index of the latest seen second at or before each second (the first seen one before it)
    last = np.maximum.accumulate(np.where(counts > 0, np.arange(n_seconds), -1))
    last = np.where(last < 0, seen[0], last)
    mean = np.zeros_like(sums)
    mean[seen] = sums[seen] / counts[seen, None]
    return mean[last].astype(np.float32)


def hold_every(values: np.ndarray, step: int, offset: int = 0) -> np.ndarray:
    """Keep every `step`-th row (from `offset`) and hold it until the next: sparse sampling, simulated."""
    if step <= 1:
        return values
    idx = np.arange(len(values))
    kept = np.maximum((idx - offset) // step * step + offset, 0)
    kept = np.where(idx < offset, offset, kept)
    return values[np.minimum(kept, len(values) - 1)]


@dataclass
class ToolNoise:
    """Measured detector confidences per tool, given that the tool is truly present or absent.

    `present[c]` / `absent[c]`: sorted 1-D arrays of the detector's per-frame confidence for tool c
    (0 where it found nothing) on frames where c is / is not in the ground truth.
    """

    tool_names: tuple[str, ...]
    present: list[np.ndarray]
    absent: list[np.ndarray]
    source: tuple[str, ...] = ()

    @classmethod
    def measure(
        cls, confidences: np.ndarray, truth: np.ndarray, tool_names: Sequence[str], source: Sequence[str] = ()
    ) -> "ToolNoise":
        """From (N, C) detector confidences and (N, C) true presence on the same real frames."""
        confidences = np.asarray(confidences, dtype=np.float32)
        truth = np.asarray(truth, dtype=bool)
        if confidences.shape != truth.shape or confidences.ndim != 2 or confidences.shape[1] != len(tool_names):
            raise ValueError(f"confidences {confidences.shape} and truth {truth.shape} must both be (N, {len(tool_names)})")
        present, absent = [], []
        for c, name in enumerate(tool_names):
            pos, neg = np.sort(confidences[truth[:, c], c]), np.sort(confidences[~truth[:, c], c])
            if len(neg) == 0:
                raise ValueError(f"no frame without {name!r}: cannot measure its false alarms")
            present.append(pos if len(pos) else np.ones(1, np.float32))
            absent.append(neg)
        return cls(tuple(tool_names), present, absent, tuple(source))

    def rates(self, threshold: float = 0.0) -> dict[str, dict[str, float]]:
        """Per tool: miss rate (confidence <= threshold when present), false-alarm rate, mean confidences."""
        out = {}
        for name, pos, neg in zip(self.tool_names, self.present, self.absent):
            out[name] = {
                "frames_present": int(len(pos)),
                "frames_absent": int(len(neg)),
                "miss_rate": round(float((pos <= threshold).mean()), 4),
                "false_alarm_rate": round(float((neg > threshold).mean()), 4),
                "mean_conf_present": round(float(pos.mean()), 4),
                "mean_conf_absent": round(float(neg.mean()), 4),
            }
        return out

    def sample(self, presence: np.ndarray, rng: np.random.Generator, rho: float = 0.0) -> np.ndarray:
        """(T, C) confidences for (T, C) annotated presence; `rho` in [0, 1) correlates errors over time."""
        presence = np.asarray(presence, dtype=bool)
        t, c = presence.shape
        if c != len(self.tool_names):
            raise ValueError(f"presence has {c} tools, the noise model {len(self.tool_names)}")
        z = rng.standard_normal((t, c))
        if rho > 0 and t > 1:
            scale = np.sqrt(1 - rho**2)
            # AR(1) in closed form is a scan; a short loop over time is fast enough at 1 step per second
            for i in range(1, t):
                z[i] = rho * z[i - 1] + scale * z[i]
        from scipy.special import ndtr

        u = ndtr(z)
        out = np.empty((t, c), dtype=np.float32)
        for k in range(c):
            for table, rows in ((self.present[k], presence[:, k]), (self.absent[k], ~presence[:, k])):
                if rows.any():
                    idx = np.minimum((u[rows, k] * len(table)).astype(np.int64), len(table) - 1)
                    out[rows, k] = table[idx]
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "tool_names": list(self.tool_names),
            "present": [p.tolist() for p in self.present],
            "absent": [a.tolist() for a in self.absent],
            "source": list(self.source),
        }

    @classmethod
    def from_state(cls, raw: dict[str, Any]) -> "ToolNoise":
        return cls(
            tuple(raw["tool_names"]),
            [np.asarray(p, dtype=np.float32) for p in raw["present"]],
            [np.asarray(a, dtype=np.float32) for a in raw["absent"]],
            tuple(raw.get("source", ())),
        )
