"""Cached loaders the pages share: the case library, an analysed case's data, frames, library-wide tables.

Everything here reads through the core (library, analysis, models); nothing computes results.
Case data and Case review's figures are cached by (folder, analysis time), so a re-analysed case is
read afresh and a warm page is only drawn, not computed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.charts import case_timeline, motion_heatmap, trajectories
from analysis.clips import representative_frame, representative_time
from analysis.moments import Moment, key_moments, phase_segments
from analysis.results import CaseResult, CaseResultError, MotionReport
from library import CaseRecord, Library, LibraryError, Settings

REPO = Path(__file__).resolve().parent.parent
EVAL_ROOTS = (REPO / "runs",)  # besides each model's own folder
EVAL_DEPTH = 3  # how deep under runs/ evaluation JSONs are looked for


@st.cache_resource(show_spinner=False)
def _library(settings: Settings) -> Library:
    return Library(settings)


def get_library() -> Library:
    """The case library of SURGLENS_DATA_DIR / SURGLENS_DB_URL, one per settings for every session."""
    return _library(Settings.from_env())


@dataclass(frozen=True)
class CaseData:
    """What Case review draws from an analysed case folder."""

    case_dir: Path
    result: CaseResult
    duration_s: float
    frame_size: tuple[int, int]  # of the analysed frames, which detections and trajectories refer to
    segments: list[dict[str, Any]]
    presence: pd.DataFrame
    motion: dict[str, Any]
    moments: list[Moment]
    annotated: Path | None
    frame_time_s: float  # the representative frame for trajectories
    anatomy: pd.DataFrame = field(default_factory=pd.DataFrame)  # anatomy.parquet: per-second areas and CVS criteria


def version_of(record: CaseRecord) -> str:
    """A cache key part that changes whenever the case is analysed again."""
    return record.analysed_at.isoformat() if record.analysed_at else record.updated_at.isoformat()


@st.cache_data(max_entries=32, show_spinner=False)
def case_data(case_dir: str, version: str) -> CaseData:
    """The analysed case in `case_dir` (raises analysis.results.CaseResultError when it has none)."""
    result = CaseResult.load(case_dir)
    motion = result.motion()
    return CaseData(
        case_dir=Path(case_dir),
        result=result,
        duration_s=result.duration_s,
        frame_size=result.sampling.frame_size,
        segments=phase_segments(result),
        presence=result.tool_presence(),
        motion=motion.to_dict() if motion else {},
        moments=key_moments(result),
        annotated=result.annotated_video,
        frame_time_s=representative_time(result),
        anatomy=result.anatomy(),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def frame_at(video_path: str, time_s: float, max_width: int = 960, mask: tuple = ()) -> np.ndarray | None:
    """A frame of the video (downscaled to `max_width`, `mask` regions black), or None when the video cannot be read."""
    try:
        rgb = representative_frame(video_path, time_s, mask=mask)
    except (OSError, ValueError, RuntimeError):
        return None
    if rgb.shape[1] > max_width:
        from PIL import Image

        h = round(rgb.shape[0] * max_width / rgb.shape[1])
        rgb = np.asarray(Image.fromarray(rgb).resize((max_width, h)))
    return rgb


@st.cache_data(max_entries=32, show_spinner=False)
def timeline_figure(case_dir: str, version: str, comments: tuple, playhead_s: float) -> go.Figure:
    """Case review's timeline, built once per (case version, comments, playhead)."""
    data = case_data(case_dir, version)
    return case_timeline(data.segments, data.presence, data.duration_s, comments, data.moments, playhead_s=playhead_s,
                         anatomy=data.anatomy)


@st.cache_data(max_entries=8, show_spinner=False)
def overlay_data(case_dir: str, version: str) -> dict[str, Any]:
    """Case review's player overlay (boxes at the video's rate, phase strip), built once per case version."""
    from analysis.review_overlay import overlay_payload

    data = case_data(case_dir, version)
    r = data.result
    return overlay_payload(r.detections(), r.sampling.frame_interval_s, r.sampling.frame_size, data.segments, r.duration_s)


@st.cache_data(max_entries=64, show_spinner=False)
def case_thumbnail(case_dir: str, video_path: str, version: str, mask: tuple = ()) -> bytes | None:
    """The Library's thumbnail (JPEG bytes) of an analysed case, made from the video for cases analysed
    before thumbnails were (`mask` regions black); None when it has none and none can be made."""
    try:
        path = CaseResult.load(case_dir).thumbnail(video_path, mask=[list(r) for r in mask])
        return path.read_bytes() if path else None
    except (CaseResultError, OSError, ValueError):
        return None


@st.cache_data(max_entries=32, show_spinner=False)
def motion_figures(case_dir: str, version: str, video_path: str, by: str, tool: str | None,
                   mask: tuple = ()) -> tuple[go.Figure, go.Figure]:
    """Case review's trajectories (`by` tool or track) and heatmap (`tool`, or all when None) over the frame (`mask` black)."""
    data = case_data(case_dir, version)
    frame = frame_at(video_path, data.frame_time_s, mask=mask)
    return (trajectories(data.motion, data.frame_size, frame, by=by),
            motion_heatmap(data.motion, data.frame_size, None if tool is None else [tool], frame))


ANATOMY_MODEL = "anatomy"  # the shipped anatomy segmenter + CVS head (assets/models/anatomy)


@dataclass(frozen=True)
class AnatomyStill:
    """The anatomy model on one frame: the frame, the mask drawn over it, the CVS criteria and class areas."""

    time_s: float
    frame: np.ndarray
    overlay: np.ndarray
    cvs: dict[str, float]  # C1..C3 probabilities (NaN without a CVS head)
    areas: dict[str, float]


@st.cache_resource(show_spinner="Loading the anatomy model...")
def anatomy_model(ref: str = ANATOMY_MODEL) -> tuple[Any, str | None]:
    """(the anatomy model, None), or (None, why) when it is not installed or cannot be read; one for every session."""
    from models.anatomy.model import AnatomyModel
    from models.registry import ModelNotFoundError

    try:
        return AnatomyModel(ref), None
    except (ModelNotFoundError, ValueError, OSError) as exc:
        return None, str(exc)


@st.cache_data(max_entries=16, show_spinner="Segmenting the anatomy...")
def anatomy_still(video_path: str, time_s: float, mask: tuple = (), ref: str = ANATOMY_MODEL) -> AnatomyStill | None:
    """The anatomy model on the frame at `time_s` (`mask` regions black); None without a model or a readable frame."""
    from models.annotators import MaskAnnotator

    model, _ = anatomy_model(ref)
    frame = frame_at(video_path, time_s, mask=mask)
    if model is None or frame is None:
        return None
    result = model([frame])[0]
    return AnatomyStill(time_s=float(time_s), frame=frame, overlay=MaskAnnotator(model.classes).annotate(frame, result.labels),
                        cvs=dict(result.cvs), areas=dict(result.areas))


@dataclass(frozen=True)
class LibraryTables:
    """Long tables across the analysed cases, for Analytics: one row per (case, phase|tool)."""

    cases: pd.DataFrame  # case_id, title, duration_s, procedure, surgeon_id, difficulty, operation_date
    phases: pd.DataFrame  # case_id, title, phase, seconds, share
    tools: pd.DataFrame  # case_id, title, tool, seconds
    motion: pd.DataFrame  # case_id, title, tool, <motion metrics>


@st.cache_data(max_entries=8, show_spinner=False)
def library_tables(_lib: Library, _records: tuple[CaseRecord, ...], stamp: tuple) -> LibraryTables:
    """Tables of the analysed cases `_records`; `stamp` (data dir, (id, version) pairs) is the cache key."""
    cases, phases, tools, motion = [], [], [], []
    for r in _records:
        cases.append({"case_id": r.id, "title": r.title, "duration_s": r.duration_s, "procedure": r.procedure,
                      "surgeon_id": r.surgeon_id, "difficulty": r.difficulty, "operation_date": r.operation_date})
        total = sum(r.phase_seconds.values()) or 1.0
        phases += [{"case_id": r.id, "title": r.title, "phase": k, "seconds": v, "share": v / total}
                   for k, v in r.phase_seconds.items()]
        tools += [{"case_id": r.id, "title": r.title, "tool": k, "seconds": v} for k, v in r.tool_seconds.items()]
        report = _motion_of(_lib, r.id)
        if report is not None:
            per_tool = report.per_tool
            motion += [{"case_id": r.id, "title": r.title, "tool": k,
                        **{m: v for m, v in values.items() if m not in ("heatmap", "label")}}
                       for k, values in per_tool.items()]
    return LibraryTables(
        cases=_frame(cases, ["case_id", "title", "duration_s"]),
        phases=_frame(phases, ["case_id", "title", "phase", "seconds", "share"]),
        tools=_frame(tools, ["case_id", "title", "tool", "seconds"]),
        motion=_frame(motion, ["case_id", "title", "tool"]),
    )


def _motion_of(lib: Library, case_id: int) -> MotionReport | None:
    try:
        return lib.case_results(case_id).motion()
    except (CaseResultError, LibraryError):
        return None


def motion_of(lib: Library, case_id: int) -> dict[str, Any]:
    """A case's motion report as the chart builders take it ({} when it has none)."""
    report = _motion_of(lib, case_id)
    return report.to_dict() if report else {}


def _frame(rows: list[dict[str, Any]], empty_columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=empty_columns)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation JSON: where it is, the model it names, and its report."""

    path: str  # shown: relative to the repository when inside it
    folder: str  # absolute folder of the file (a model's own folder for its shipped evaluations)
    model: str | None
    report: dict[str, Any]


@st.cache_data(ttl=60, show_spinner=False)
def evaluations(model_dirs: tuple[str, ...]) -> list[Evaluation]:
    """Every evaluation JSON (`*eval*.json`) in the model folders and under runs/."""
    files: list[Path] = []
    for folder in model_dirs:
        files += sorted(Path(folder).glob("*eval*.json"))
    for root in EVAL_ROOTS:
        for depth in range(EVAL_DEPTH + 1):
            files += sorted(root.glob("/".join(["*"] * depth + ["*eval*.json"])))
    out = []
    for path in dict.fromkeys(files):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict):
            model = report.get("model")
            name = model.get("name") if isinstance(model, dict) else model
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            out.append(Evaluation(str(shown), str(path.parent.resolve()), str(name) if name else None, report))
    return out
