"""Label-only operations: per-second phase and annotated tool presence (the Cholec80 annotation files).

`read_label_sequences` reads a folder with `phase_annotations/videoNN-phase.txt` and
`tool_annotations/videoNN-tool.txt` (no frames needed) into one `LabelSequence` per operation that
has both files. Frame numbers in those files count at the videos' 25 fps (Cholec80's recording rate,
stated by the dataset, not assumed for any other video).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from models.datasets.cholec80 import read_cholec80_phases, read_cholec80_tools
from models.datasets.voc import DatasetError

CHOLEC80_FPS = 25.0  # the annotation files' frame numbering (Twinanda et al. 2016)


@dataclass(frozen=True)
class LabelSequence:
    """One operation, second by second: phase id (T,) and tool presence (T, C)."""

    name: str
    phase: np.ndarray
    tools: np.ndarray

    def __post_init__(self) -> None:
        if len(self.phase) != len(self.tools):
            raise ValueError(f"{self.name}: {len(self.phase)} phase seconds but {len(self.tools)} tool seconds")

    def __len__(self) -> int:
        return len(self.phase)

    @property
    def number(self) -> int:
        """The Cholec80 video number (video68 -> 68); -1 when the name has none."""
        match = re.search(r"(\d+)$", self.name)
        return int(match.group(1)) if match else -1


def is_label_root(root: str | Path) -> bool:
    """True for a folder in the cholec80-labels layout (phase and tool annotations, no frames)."""
    root = Path(root)
    return (root / "phase_annotations").is_dir() and (root / "tool_annotations").is_dir() and not (root / "videos").is_dir()


def read_label_sequences(root: str | Path, exclude: Sequence[int] = ()) -> list[LabelSequence]:
    """Every operation of a cholec80-labels folder with both files, sorted; `exclude` video numbers."""
    root = Path(root)
    if not is_label_root(root):
        raise DatasetError(f"{str(root)!r} is not a cholec80-labels folder (needs phase_annotations/ and tool_annotations/)")
    out = []
    for phase_file in sorted((root / "phase_annotations").glob("video*-phase.txt")):
        name = phase_file.name.split("-")[0]
        tool_file = root / "tool_annotations" / f"{name}-tool.txt"
        if not tool_file.exists():
            continue
        seq = _sequence(name, phase_file, tool_file)
        if seq.number not in exclude:
            out.append(seq)
    if not out:
        raise DatasetError(f"no operation with both phase and tool annotations under {str(root)!r}")
    return out


def _sequence(name: str, phase_file: Path, tool_file: Path) -> LabelSequence:
    phases = read_cholec80_phases(phase_file, CHOLEC80_FPS)
    tools = read_cholec80_tools(tool_file, CHOLEC80_FPS)
    # one row per second: the phase of the first frame of each second; tools are already 1 fps
    p_sec = np.floor(phases.seconds + 1e-9).astype(np.int64)
    t_sec = np.floor(tools.seconds + 1e-9).astype(np.int64)
    n = int(min(p_sec.max(), t_sec.max())) + 1
    phase = np.full(n, -1, dtype=np.int64)
    first = np.unique(p_sec, return_index=True)[1]
    phase[p_sec[first][p_sec[first] < n]] = phases.phase_id[first][p_sec[first] < n]
    presence = np.zeros((n, tools.presence.shape[1]), dtype=bool)
    ok = t_sec < n
    presence[t_sec[ok]] = tools.presence[ok]
    # gaps (none in the official files) hold the previous label
    have = phase >= 0
    if not have.any():
        raise DatasetError(f"{str(phase_file)!r} has no phase labels")
    idx = np.maximum.accumulate(np.where(have, np.arange(n), 0))
    return LabelSequence(name, phase[idx], presence)
