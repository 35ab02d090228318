"""`CaseResult`: the one owner of the case folder format (writing, publishing and reading it back).

A case folder holds `case.json` (versioned summary: video, sampling, per-stage summaries, timings,
versions) and one file per table. Stages write through a `CaseWriter` into a temporary folder that
`CaseWriter.publish` renames into place only when every stage has finished, so a failed run never
leaves a half-written case; `CaseResult.load` reads any schema version listed in `READABLE_SCHEMAS`
and returns typed fields. Nothing else in SurgLens opens these files.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from video import VideoInfo

if TYPE_CHECKING:
    from analysis.stream import ParquetStream
    from models.phase.timeline import PhaseProbabilities, Segment

# Schema 2 stores the analysed rate and frame size in `sampling`; schema 1 cases derive them from the video.
CASE_SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)

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
THUMBNAIL = "thumbnail.jpg"  # small JPEG of an analysed frame at 10% of the video, for the Library
TABLES = (DETECTIONS, TOOL_PRESENCE, PHASE_PROBS, QUALITY, ANATOMY)
PARTIAL_MARKER = ".surglens-partial"  # in `<out>.partial` while SurgLens writes it


class CaseResultError(ValueError):
    """A case folder that is missing, incomplete or of a schema this version cannot read."""


class OutputFolderError(RuntimeError):
    """The output folder holds something SurgLens did not write; nothing was deleted."""


@dataclass(frozen=True)
class Sampling:
    """How the video was analysed: the requested rate, frames analysed, the analysed rate and frame size."""

    sample_fps: float | None
    frames_analysed: int
    resize: tuple[int, int] | None
    analysed_fps: float
    frame_size: tuple[int, int]  # (width, height) of the analysed frames, which boxes' pixels refer to

    @classmethod
    def of(cls, video: VideoInfo, sample_fps: float | None, frames_analysed: int,
           resize: Sequence[int] | None) -> "Sampling":
        """The sampling of `video` at `sample_fps` (None: every frame), resized to `resize` when given."""
        if not video.fps or video.fps <= 0:
            raise CaseResultError(f"the video's frame rate is unknown ({video.fps!r}), so its analysed rate is too")
        size = (int(resize[0]), int(resize[1])) if resize else (int(video.width), int(video.height))
        rate = min(float(sample_fps), float(video.fps)) if sample_fps else float(video.fps)
        return cls(None if sample_fps is None else float(sample_fps), int(frames_analysed),
                   tuple(size) if resize else None, rate, size)

    @property
    def frame_interval_s(self) -> float:
        """Seconds between analysed frames."""
        return 1.0 / self.analysed_fps


@dataclass(frozen=True)
class StageRecord:
    """One stage of the analysis: its version, seconds spent and JSON summary."""

    version: str
    seconds: float
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MotionReport:
    """Trajectories' motion metrics per track (with paths), per tool (with heatmaps) and per tool in each phase."""

    point: str
    sample_interval_s: float
    per_track: list[dict[str, Any]]
    per_tool: dict[str, dict[str, Any]]
    per_phase: list[dict[str, Any]]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "MotionReport":
        return cls(point=str(raw.get("point", "centre")), sample_interval_s=float(raw.get("sample_interval_s") or 0.0),
                   per_track=list(raw.get("per_track") or []), per_tool=dict(raw.get("per_tool") or {}),
                   per_phase=list(raw.get("per_phase") or []))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _video_info(raw: Mapping[str, Any]) -> VideoInfo:
    names = {f.name for f in fields(VideoInfo)}
    values = {k: v for k, v in raw.items() if k in names}
    missing = sorted(names - set(values) - {"path", "pix_fmt"})
    if missing:
        raise CaseResultError(f"case.json's video lacks {missing}")
    return VideoInfo(**{"path": "", **values})


@dataclass(frozen=True)
class CaseResult:
    """An analysed case folder: typed summary fields and typed readers of its tables."""

    path: Path
    video: VideoInfo  # as probed, without the file's path (it names the patient)
    sampling: Sampling
    stages: Mapping[str, StageRecord]
    decode: Mapping[str, Any] = field(default_factory=dict)
    wall_seconds: float | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    schema_version: int = CASE_SCHEMA_VERSION

    # -- the summary --------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "CaseResult":
        """The case in `path`; raises CaseResultError when there is none or its schema is unknown."""
        path = Path(path)
        case_file = path / CASE_JSON
        if not case_file.is_file():
            raise CaseResultError(f"no analysed case in {str(path)!r} ({CASE_JSON} missing)")
        try:
            raw = json.loads(case_file.read_text())
        except (OSError, ValueError) as exc:
            raise CaseResultError(f"{str(case_file)!r} is not readable JSON: {exc}") from exc
        return cls.from_dict(path, raw)

    @classmethod
    def from_dict(cls, path: str | Path, raw: Mapping[str, Any]) -> "CaseResult":
        """A case from its case.json content (any readable schema)."""
        version = raw.get("schema_version") if isinstance(raw, Mapping) else None
        if version not in READABLE_SCHEMAS:
            raise CaseResultError(f"case schema version {version!r} is not one of {READABLE_SCHEMAS}; "
                                  "analyse the video again with this version")
        if not isinstance(raw.get("video"), Mapping):
            raise CaseResultError("case.json has no video")
        video = _video_info(raw["video"])
        sampling_raw = raw.get("sampling") or {}
        derived = Sampling.of(video, sampling_raw.get("sample_fps"), int(sampling_raw.get("frames_analysed") or 0),
                              sampling_raw.get("resize"))
        if version >= 2:
            size = sampling_raw.get("frame_size") or derived.frame_size
            derived = Sampling(derived.sample_fps, derived.frames_analysed, derived.resize,
                               float(sampling_raw.get("analysed_fps") or derived.analysed_fps),
                               (int(size[0]), int(size[1])))
        stages = {name: StageRecord(str(s.get("version", "1")), float(s.get("seconds") or 0.0), s.get("summary") or {})
                  for name, s in (raw.get("stages") or {}).items()}
        return cls(path=Path(path), video=video, sampling=derived, stages=stages, decode=raw.get("decode") or {},
                   wall_seconds=raw.get("wall_seconds"), profile=raw.get("profile") or {},
                   versions=raw.get("versions") or {}, schema_version=int(version))

    def to_dict(self) -> dict[str, Any]:
        """case.json's content, in the current schema (never the video's path)."""
        return {
            "schema_version": CASE_SCHEMA_VERSION,
            "video": {k: v for k, v in self.video.to_dict().items() if k != "path"},
            "sampling": {"sample_fps": self.sampling.sample_fps, "frames_analysed": self.sampling.frames_analysed,
                         "resize": list(self.sampling.resize) if self.sampling.resize else None,
                         "analysed_fps": self.sampling.analysed_fps, "frame_size": list(self.sampling.frame_size)},
            "decode": dict(self.decode),
            "stages": {n: {"version": s.version, "seconds": s.seconds, "summary": dict(s.summary)}
                       for n, s in self.stages.items()},
            "wall_seconds": self.wall_seconds,
            "profile": dict(self.profile),
            "versions": dict(self.versions),
        }

    @property
    def duration_s(self) -> float:
        """The video's length in seconds (0 when unknown)."""
        return float(self.video.duration_s or 0.0)

    def summary(self, stage: str) -> Mapping[str, Any]:
        """A stage's summary ({} when it did not run)."""
        record = self.stages.get(stage)
        return record.summary if record else {}

    # -- the tables -----------------------------------------------------------------------------------------------
    def _table(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        file = self.path / name
        if not file.exists():
            return pd.DataFrame()
        return pd.read_parquet(file, columns=list(columns) if columns else None)

    def _json(self, name: str) -> Any:
        file = self.path / name
        return json.loads(file.read_text()) if file.exists() else None

    def detections(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every box: Detections columns, timestamp_s and class_name (empty when detection did not run)."""
        return self._table(DETECTIONS, columns)

    def tool_presence(self) -> pd.DataFrame:
        """`second` and each tool's highest confidence in that second."""
        return self._table(TOOL_PRESENCE)

    def quality(self) -> pd.DataFrame:
        return self._table(QUALITY)

    def anatomy(self) -> pd.DataFrame:
        """Per analysed anatomy frame: class areas and CVS criteria probabilities (empty when the stage did not run)."""
        return self._table(ANATOMY)

    def phases(self) -> "PhaseProbabilities | None":
        """The per-second phase probabilities, or None when phase recognition did not run."""
        from models.phase.timeline import PhaseProbabilities

        table = self._table(PHASE_PROBS)
        if table.empty or "phase_id" not in table or "second" not in table:
            return None
        names = tuple(c for c in table.columns if c not in ("second", "phase_id"))  # as PhaseProbabilities.to_frame
        probs = table[list(names)].to_numpy(np.float32)
        mode = str((self.summary("phase").get("model") or {}).get("mode") or "offline")
        return PhaseProbabilities(table["second"].to_numpy(np.int64), probs, table["phase_id"].to_numpy(np.int64),
                                  names, mode)

    def segments(self) -> "list[Segment]":
        """The phase segments by time, with taxonomy names (from the probabilities when no list was written)."""
        from models.phase.timeline import Segment
        from models.taxonomy import canonical_name

        raw = self._json(PHASE_SEGMENTS)
        if raw is None:
            probs = self.phases()
            return probs.segments() if probs is not None else []
        out = []
        for seg in raw:
            start, end = float(seg["start_s"]), float(seg["end_s"])
            if end > start:
                confidence = seg.get("confidence")
                out.append(Segment(start, end, canonical_name(str(seg["label"]), "phase"),
                                   None if confidence is None else float(confidence)))  # type: ignore[arg-type]
        return sorted(out, key=lambda s: s.start_s)

    def motion(self) -> MotionReport | None:
        """The motion report, or None when the motion stage did not run."""
        raw = self._json(MOTION)
        return MotionReport.from_dict(raw) if raw is not None else None

    # -- the media ----------------------------------------------------------------------------------------------
    @property
    def annotated_video(self) -> Path | None:
        """The annotated H.264 video at the analysed rate, when it was written."""
        file = self.path / ANNOTATED
        return file if file.exists() else None

    @property
    def cholec80_phases(self) -> Path | None:
        """The phase per frame in the Cholec80 text format, when phase recognition ran."""
        file = self.path / PHASE_CHOLEC80
        return file if file.exists() else None

    @property
    def proxy_video(self) -> Path | None:
        """The browser-playable copy, made only when the upload does not play in browsers."""
        file = self.path / PROXY
        return file if file.exists() else None

    def playable_video(self, original: str | Path) -> Path:
        """The file a browser should play: the proxy when one was made, else the original."""
        return self.proxy_video or Path(original)

    def thumbnail(self, video_path: str | Path | None = None, mask=None) -> Path | None:
        """The case's small JPEG (THUMBNAIL); for a case analysed before thumbnails were written, made now
        from `video_path` (`mask` regions black) and kept; None when there is none and it cannot be made."""
        file = self.path / THUMBNAIL
        if file.is_file():
            return file
        if video_path is None:
            return None
        from analysis.thumbnail import make_thumbnail

        try:
            return make_thumbnail(video_path, file, self.duration_s, mask=mask)
        except (OSError, ValueError, RuntimeError):
            return None

    def clip_file(self, start_s: float, end_s: float) -> Path:
        """Where the annotated clip of [start_s, end_s) is cached (cut on demand, not part of the analysis)."""
        return self.path / CLIPS_DIR / f"clip_{int(round(start_s * 1000)):08d}-{int(round(end_s * 1000)):08d}.mp4"

    def cached_clips(self) -> list[tuple[float, float, Path]]:
        """The clips already cut: (start_s, end_s, path), by start."""
        folder = self.path / CLIPS_DIR
        out = []
        for path in sorted(folder.glob("clip_*-*.mp4")) if folder.is_dir() else []:
            a, _, b = path.stem.removeprefix("clip_").partition("-")
            if a.isdigit() and b.isdigit():
                out.append((int(a) / 1000, int(b) / 1000, path))
        return sorted(out)

    def drop_derived_pictures(self) -> None:
        """Delete the clips and the thumbnail made from the video (a new mask: they are made again, masked)."""
        for _, _, clip in self.cached_clips():
            clip.unlink(missing_ok=True)
        (self.path / THUMBNAIL).unlink(missing_ok=True)

    def tables(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """(file stem, table) of every table the case has, for exports."""
        for name in TABLES:
            if (self.path / name).exists():
                yield Path(name).stem, self._table(name)

    def documents(self) -> Iterator[tuple[str, Any]]:
        """(file name, parsed JSON) of every JSON document besides case.json, for exports."""
        for name in (MOTION, PHASE_SEGMENTS):
            value = self._json(name)
            if value is not None:
                yield name, value


# -- writing ----------------------------------------------------------------------------------------------------
def is_case_folder(folder: str | Path) -> bool:
    """Whether `folder` is a case SurgLens wrote: it holds the case.json of a finished analysis."""
    try:
        case = json.loads((Path(folder) / CASE_JSON).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(case, dict) and isinstance(case.get("schema_version"), int) and isinstance(case.get("video"), dict)


def partial_folder(out_dir: str | Path) -> Path:
    """The temporary folder an analysis into `out_dir` writes before it replaces `out_dir`."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".partial")


def check_output_folder(out_dir: str | Path) -> None:
    """Raise `OutputFolderError` unless an analysis may write `out_dir` and its temporary folder.

    `out_dir` may be absent, an empty folder, or a previous case (replaced when the analysis
    completes); `<out_dir>.partial` may be absent, empty or one SurgLens left (its marker file).
    Anything else -- a folder of the user's files, a file, a link -- is refused and left untouched.
    """
    out_dir = Path(out_dir)
    for folder, ours, what in ((out_dir, is_case_folder, "a previous SurgLens case (no case.json written by SurgLens)"),
                               (partial_folder(out_dir), lambda p: (p / PARTIAL_MARKER).is_file(),
                                "one SurgLens left behind")):
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise OutputFolderError(f"output folder {str(folder)!r} exists and is not a folder; choose another --out")
        if folder.is_dir() and any(folder.iterdir()) and not ours(folder):
            raise OutputFolderError(
                f"output folder {str(folder)!r} is not empty and is not {what}; SurgLens only replaces "
                "folders it wrote. Choose a new or empty folder; nothing was deleted"
            )


class CaseWriter:
    """Writes a case into `<out_dir>.partial` and publishes it as `out_dir` in one rename.

    Open it only after `check_output_folder(out_dir)`. Stages write through `write_table`,
    `write_json`, `write_phases`, `write_motion`, or stream into `stream_table` / `file(name)`.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        check_output_folder(self.out_dir)
        self.path = partial_folder(self.out_dir)
        shutil.rmtree(self.path, ignore_errors=True)  # checked above: absent, empty or ours
        self.path.mkdir(parents=True)
        (self.path / PARTIAL_MARKER).write_text("written by SurgLens; removed when the analysis completes\n")

    def file(self, name: str) -> Path:
        """The path a streaming writer (video, Parquet) writes the case file `name` to."""
        if name not in (DETECTIONS, QUALITY, ANATOMY, ANNOTATED, PROXY, THUMBNAIL):
            raise ValueError(f"{name!r} is not a streamed case file")
        return self.path / name

    def stream_table(self, name: str, template: pd.DataFrame, rows_per_group: int | None = None) -> "ParquetStream":
        """A Parquet stream into the case table `name` (its columns and dtypes from `template`)."""
        from analysis.stream import DEFAULT_ROWS_PER_GROUP, ParquetStream

        return ParquetStream(self.file(name), template, rows_per_group or DEFAULT_ROWS_PER_GROUP)

    def read_table(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A table an earlier stage of this analysis wrote (only `columns` if given)."""
        if name not in TABLES:
            raise ValueError(f"{name!r} is not a case table; known: {TABLES}")
        return pd.read_parquet(self.path / name, columns=list(columns) if columns else None)

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        if name not in TABLES:
            raise ValueError(f"{name!r} is not a case table; known: {TABLES}")
        table.to_parquet(self.path / name, index=False)

    def write_phases(self, probs: "PhaseProbabilities", segments: "Sequence[Segment]", fps: float,
                     frame_count: int) -> None:
        """The per-second probabilities, the segment list and the Cholec80 per-frame text at the video's `fps`."""
        from models.datasets.cholec80 import write_cholec80_phases

        probs.to_frame().to_parquet(self.path / PHASE_PROBS, index=False)
        self.write_segments(segments)
        write_cholec80_phases(self.path / PHASE_CHOLEC80, probs.second, probs.phase_id, fps, frame_count)

    def write_segments(self, segments: "Sequence[Segment | Mapping[str, Any]]") -> None:
        """The phase segment list ({start_s, end_s, label, confidence} each)."""
        rows = [s if isinstance(s, Mapping) else s.to_dict() for s in segments]
        (self.path / PHASE_SEGMENTS).write_text(json.dumps(rows, indent=1))

    def write_motion(self, report: MotionReport) -> None:
        (self.path / MOTION).write_text(json.dumps(report.to_dict()))

    def publish(self, result: CaseResult) -> CaseResult:
        """Write case.json and rename the folder into `out_dir` (replacing a previous case); the published case."""
        (self.path / CASE_JSON).write_text(json.dumps(result.to_dict(), indent=2, default=_json_default))
        check_output_folder(self.out_dir)  # again: the folder may have changed while the analysis ran
        (self.path / PARTIAL_MARKER).unlink()
        if self.out_dir.exists():
            shutil.rmtree(self.out_dir)
        self.path.rename(self.out_dir)
        return CaseResult.load(self.out_dir)

    def discard(self) -> None:
        """Remove the temporary folder (a failed or stopped analysis)."""
        shutil.rmtree(self.path, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
