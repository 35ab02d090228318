"""Cholec80 annotation files: `videoXX-phase.txt`, `videoXX-tool.txt`, and writing phase predictions.

`videoXX-phase.txt` has a `Frame<TAB>Phase` header, then one line per video frame (Cholec80 videos
run at 25 fps) with the phase name. `videoXX-tool.txt` has a `Frame<TAB>Grasper<TAB>...` header and
one row every 25 frames with a 0/1 column per tool. Names go through the taxonomy, so aliases work.
The frame numbering's rate is always passed in: read it from the video, never assume it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from models.datasets.voc import DatasetError
from models.taxonomy import load_taxonomy


@dataclass(frozen=True)
class PhaseAnnotation:
    """Phase id (taxonomy ids) of annotated frames of one video, as named numpy columns."""

    frame_index: np.ndarray  # (N,) int64, in the numbering of `fps`
    phase_id: np.ndarray  # (N,) int64
    fps: float
    video: str = ""

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        if len(self.frame_index) != len(self.phase_id):
            raise ValueError(f"{len(self.frame_index)} frame indices but {len(self.phase_id)} phase ids")

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def seconds(self) -> np.ndarray:
        """Time of each annotated frame in seconds."""
        return self.frame_index / self.fps

    def per_second(self) -> "PhaseAnnotation":
        """The first annotated frame of every whole second (the usual 1 fps evaluation rate)."""
        second = np.floor(self.seconds + 1e-9).astype(np.int64)
        _, first = np.unique(second, return_index=True)
        return PhaseAnnotation(self.frame_index[first], self.phase_id[first], self.fps, self.video)


@dataclass(frozen=True)
class ToolAnnotation:
    """Tool presence of annotated frames of one video; columns follow `tool_names` (taxonomy order)."""

    frame_index: np.ndarray  # (N,) int64
    presence: np.ndarray  # (N, T) bool
    tool_names: tuple[str, ...]
    fps: float
    video: str = ""

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def seconds(self) -> np.ndarray:
        return self.frame_index / self.fps


def _rows(path: Path, header: str) -> tuple[list[str], list[list[str]]]:
    try:
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {str(path)!r}: {exc}") from exc
    if not lines or lines[0][0].lower() != header.lower():
        raise DatasetError(f"{str(path)!r} is not a Cholec80 annotation file (first line must start with {header!r})")
    return lines[0], lines[1:]


def _frame(path: Path, number: int, value: str) -> int:
    try:
        frame = int(value)
    except ValueError:
        raise DatasetError(f"{str(path)!r} line {number}: frame {value!r} is not an integer") from None
    if frame < 0:
        raise DatasetError(f"{str(path)!r} line {number}: negative frame {frame}")
    return frame


def read_cholec80_phases(path: str | Path, fps: float) -> PhaseAnnotation:
    """Read a `videoXX-phase.txt` file; `fps` is the rate of its frame numbers (the video's fps)."""
    path = Path(path)
    taxonomy = load_taxonomy()
    _, rows = _rows(path, "Frame")
    frames, phases = [], []
    for number, row in enumerate(rows, start=2):
        if len(row) != 2:
            raise DatasetError(f"{str(path)!r} line {number}: expected 'Frame<TAB>Phase', got {' '.join(row)!r}")
        frames.append(_frame(path, number, row[0]))
        try:
            phases.append(taxonomy.phase_id(row[1]))
        except KeyError:
            raise DatasetError(f"{str(path)!r} line {number}: unknown phase {row[1]!r}") from None
    return PhaseAnnotation(
        np.asarray(frames, dtype=np.int64), np.asarray(phases, dtype=np.int64), float(fps), _video_name(path)
    )


def read_cholec80_tools(path: str | Path, fps: float) -> ToolAnnotation:
    """Read a `videoXX-tool.txt` file into presence columns in taxonomy tool order."""
    path = Path(path)
    taxonomy = load_taxonomy()
    header, rows = _rows(path, "Frame")
    try:
        tool_ids = [taxonomy.tool_id(name) for name in header[1:]]
    except KeyError as exc:
        raise DatasetError(f"{str(path)!r}: unknown tool column in header: {exc}") from None
    frames = []
    presence = np.zeros((len(rows), len(taxonomy.tools)), dtype=bool)
    for i, row in enumerate(rows):
        number = i + 2
        if len(row) != len(header):
            raise DatasetError(f"{str(path)!r} line {number}: expected {len(header)} columns, got {len(row)}")
        frames.append(_frame(path, number, row[0]))
        for tool, value in zip(tool_ids, row[1:]):
            if value not in ("0", "1"):
                raise DatasetError(f"{str(path)!r} line {number}: tool value {value!r} is not 0 or 1")
            presence[i, tool] = value == "1"
    return ToolAnnotation(
        np.asarray(frames, dtype=np.int64), presence, tuple(taxonomy.tool_names), float(fps), _video_name(path)
    )


def write_cholec80_phases(
    path: str | Path, seconds: Sequence[float], phase_id: Sequence[int], fps: float, num_frames: int
) -> Path:
    """Write per-second (or any sparser/denser) predictions as a Cholec80 phase file.

    Every video frame 0..num_frames-1 gets the phase of the latest prediction at or before its time
    (frame / fps); frames before the first prediction take the first one. Atomic: a temporary file
    replaces `path` only once it is complete.
    """
    seconds = np.asarray(seconds, dtype=np.float64)
    phase_id = np.asarray(phase_id, dtype=np.int64)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if len(seconds) == 0 or len(seconds) != len(phase_id):
        raise ValueError(f"need as many phase ids as times, got {len(seconds)} times and {len(phase_id)} ids")
    if np.any(np.diff(seconds) <= 0):
        raise ValueError("prediction times must be strictly increasing")
    names = load_taxonomy().phase_names
    if phase_id.min() < 0 or phase_id.max() >= len(names):
        raise ValueError(f"phase ids must lie in 0..{len(names) - 1}, got {sorted(set(phase_id.tolist()))}")
    frame_time = np.arange(int(num_frames)) / float(fps)
    which = np.clip(np.searchsorted(seconds, frame_time + 1e-9, side="right") - 1, 0, len(seconds) - 1)
    lines = ["Frame\tPhase"] + [f"{i}\t{names[p]}" for i, p in enumerate(phase_id[which])]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def _video_name(path: Path) -> str:
    return path.stem.rsplit("-", 1)[0]
