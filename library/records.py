"""What the library hands out: frozen, picklable snapshots (safe to cache in the app, no DB session)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Sequence

from library import db


@dataclass(frozen=True)
class ProgressInfo:
    """The last progress a worker reported for a case's analysis."""

    stage: str | None
    done: int
    total: int
    eta_s: float | None
    updated_at: datetime | None

    @property
    def fraction(self) -> float | None:
        """0..1, or None before the first report."""
        return min(self.done / self.total, 1.0) if self.total > 0 else None


@dataclass(frozen=True)
class CaseRecord:
    """A case as the pages show it. `video_path` is absolute; `probe` holds technical fields only."""

    id: int
    title: str
    status: str  # queued | running | done | failed
    error: str | None
    progress: ProgressInfo
    created_at: datetime
    updated_at: datetime
    analysed_at: datetime | None
    sha256: str
    video_path: Path
    probe: dict[str, Any]
    analysis_config: dict[str, Any]
    duration_s: float | None
    procedure: str | None
    operation_date: date | None
    surgeon_id: str | None
    difficulty: int | None
    notes: str | None
    tags: tuple[str, ...]
    phase_seconds: dict[str, float]  # phase name -> seconds, in order of first appearance
    tool_seconds: dict[str, float]  # tool name -> seconds on screen
    # Blacked-out rectangles (x0, y0, x1, y1 in frame fractions) of burned-in text (video/mask.py)
    mask_regions: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def phases_present(self) -> tuple[str, ...]:
        return tuple(self.phase_seconds)

    @property
    def tools_present(self) -> tuple[str, ...]:
        return tuple(self.tool_seconds)

    @property
    def is_finished(self) -> bool:
        return self.status in (db.Status.DONE, db.Status.FAILED)

    def teaching_dict(self) -> dict[str, Any]:
        """Metadata, tags and summary for exports: no file name, hash, path or video metadata."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "procedure": self.procedure,
            "operation_date": self.operation_date.isoformat() if self.operation_date else None,
            "surgeon_id": self.surgeon_id,
            "difficulty": self.difficulty,
            "notes": self.notes,
            "tags": list(self.tags),
            "duration_s": self.duration_s,
            "phase_seconds": self.phase_seconds,
            "tool_seconds": self.tool_seconds,
            "analysis_config": self.analysis_config,
            "analysed_at": self.analysed_at.isoformat() if self.analysed_at else None,
        }

    @classmethod
    def from_row(cls, row: db.Case, data_dir: Path) -> "CaseRecord":
        def features(kind: str) -> dict[str, float]:
            return {f.name: f.seconds for f in sorted(row.features, key=lambda f: f.id) if f.kind == kind}

        return cls(
            id=row.id,
            title=row.title,
            status=row.status,
            error=row.error,
            progress=ProgressInfo(row.progress_stage, row.progress_done or 0, row.progress_total or 0,
                                  row.progress_eta_s, row.progress_at),
            created_at=row.created_at,
            updated_at=row.updated_at,
            analysed_at=row.analysed_at,
            sha256=row.sha256,
            video_path=data_dir / row.video_path,
            probe=dict(row.probe or {}),
            analysis_config=dict(row.analysis_config or {}),
            duration_s=row.duration_s,
            procedure=row.procedure,
            operation_date=row.operation_date,
            surgeon_id=row.surgeon_id,
            difficulty=row.difficulty,
            notes=row.notes,
            tags=tuple(t.name for t in row.tags),
            phase_seconds=features("phase"),
            tool_seconds=features("tool"),
            mask_regions=tuple(tuple(float(v) for v in r) for r in (row.mask_regions or ())),
        )


@dataclass(frozen=True)
class CommentRecord:
    """A comment or bookmark at `timestamp_s` seconds into the case's video."""

    id: int
    case_id: int
    timestamp_s: float
    text: str
    kind: str  # comment | bookmark
    author: str | None
    created_at: datetime
    updated_at: datetime
    parent_id: int | None = None  # the comment this one answers

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "timestamp_s": self.timestamp_s, "kind": self.kind, "text": self.text,
                "author": self.author, "created_at": self.created_at.isoformat(), "parent_id": self.parent_id}

    @classmethod
    def from_row(cls, row: db.Comment) -> "CommentRecord":
        return cls(row.id, row.case_id, row.timestamp_s, row.text, row.kind, row.author, row.created_at, row.updated_at,
                   row.parent_id)


@dataclass(frozen=True)
class CollectionRecord:
    """A teaching set; `case_ids` in the set's order."""

    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    case_ids: tuple[int, ...]

    @classmethod
    def from_row(cls, row: db.Collection) -> "CollectionRecord":
        return cls(row.id, row.name, row.description or "", row.created_at, row.updated_at,
                   tuple(item.case_id for item in row.items))


@dataclass(frozen=True)
class JobRecord:
    """One analysis run of a case."""

    id: int
    case_id: int
    status: str
    attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def from_row(cls, row: db.Job) -> "JobRecord":
        return cls(row.id, row.case_id, row.status, row.attempts, row.worker_id, row.heartbeat_at,
                   row.created_at, row.started_at, row.finished_at, row.error)


@dataclass(frozen=True)
class CaseFilter:
    """Search and filter criteria for `Library.list_cases`; every given criterion must hold.

    `tags`, `phases` and `tools` require all the listed values (e.g. cases showing both Clipper and
    Scissors). `text` matches title, procedure, notes, surgeon id, tag names, comment text and the
    phases and instruments found (by name or display name), case-insensitively. Dates are operation
    dates, inclusive. `order`: newest | oldest | title | duration | operation_date.
    """

    text: str | None = None
    tags: Sequence[str] = ()
    phases: Sequence[str] = ()
    tools: Sequence[str] = ()
    statuses: Sequence[str] = ()
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    date_from: date | None = None
    date_to: date | None = None
    surgeon_id: str | None = None
    procedure: str | None = None
    min_difficulty: int | None = None
    max_difficulty: int | None = None
    order: str = "newest"
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class FilterOptions:
    """The values a filter widget can offer, drawn from the library's content."""

    tags: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    surgeon_ids: tuple[str, ...] = ()
    max_duration_s: float | None = None
    status_counts: dict[str, int] = field(default_factory=dict)
