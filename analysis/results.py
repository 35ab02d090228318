"""The files of an analysed case folder, and reading them back.

A case folder holds `case.json` (versioned summary: probe, sampling, per-stage summaries, timings,
versions) and one file per table. Stages write only the names listed here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

CASE_JSON = "case.json"
DETECTIONS = "detections.parquet"  # Detections columns + timestamp_s (tracker_id -1 when untracked)
TOOL_PRESENCE = "tool_presence.parquet"  # second, one column per tool (max confidence that second)
MOTION = "motion.json"  # trajectories' metrics per track, per tool, per phase
PHASE_PROBS = "phase_probs.parquet"  # second, one column per phase (probabilities), phase_id
PHASE_SEGMENTS = "phase_segments.json"  # [{start_s, end_s, label, confidence}]
PHASE_CHOLEC80 = "phase_cholec80.txt"  # Cholec80 format (Frame<TAB>Phase at the video's fps)
QUALITY = "quality.parquet"  # frame_index, timestamp_s, quality measures
ANATOMY = "anatomy.parquet"  # frame_index, timestamp_s, second, area_<class>, cvs_c1..cvs_c3, cvs_all
ANNOTATED = "annotated.mp4"  # H.264, boxes, names, track ids, trails, at the analysed rate
PROXY = "proxy.mp4"  # browser-playable H.264 copy, only when the upload is not (analysis/stages/playback.py)
CLIPS_DIR = "clips"  # annotated segment clips cut on demand


class CaseResultError(ValueError):
    """A case folder that is missing or incomplete."""


@dataclass(frozen=True)
class CaseResult:
    """An analysed case folder: its summary and lazy access to its tables."""

    path: Path
    case: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> "CaseResult":
        path = Path(path)
        case_file = path / CASE_JSON
        if not case_file.exists():
            raise CaseResultError(f"no analysed case in {str(path)!r} ({CASE_JSON} missing)")
        return cls(path=path, case=json.loads(case_file.read_text()))

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def table(self, name: str) -> pd.DataFrame:
        """A Parquet table of the case; an empty frame when the stage did not run."""
        file = self.path / name
        return pd.read_parquet(file) if file.exists() else pd.DataFrame()

    def playable_video(self, original: str | Path) -> Path:
        """The file a browser should play: the proxy when one was made, else the original."""
        proxy = self.path / PROXY
        return proxy if proxy.exists() else Path(original)

    def json(self, name: str) -> Any:
        file = self.path / name
        return json.loads(file.read_text()) if file.exists() else None
