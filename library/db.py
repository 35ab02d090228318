"""The case library schema (SQLAlchemy 2.0 ORM), portable to any database SQLAlchemy speaks.

Only generic column types and Core/ORM constructs are used, so the same models run on the default
SQLite file and on PostgreSQL. Timestamps are stored as naive UTC and read back as aware UTC.
Lists that are filtered on (phases and tools present) are rows of `case_features`, not JSON, so
filters are plain joins on every backend.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Status(StrEnum):
    """Where a case, and the job analysing it, stands; stored as its string value."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (Status.DONE, Status.FAILED)


class Outcome(StrEnum):
    """How one job ended for the worker that ran it."""

    DONE = "done"
    FAILED = "failed"
    RELEASED = "released"  # the worker stopped: the job went back to the queue, not counted as an attempt
    LOST = "lost"  # taken back as stale, or the case was deleted, before it finished
    SKIPPED = "skipped"  # (a batch) another worker holds the job


CASE_STATUSES = tuple(Status)
JOB_STATUSES = CASE_STATUSES
COMMENT_KINDS = ("comment", "bookmark")
FEATURE_KINDS = ("phase", "tool")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


case_tags = Table(
    "case_tags",
    Base.metadata,
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Case(Base):
    """One uploaded video and everything known about it.

    The original file name is not a column: it is never stored (see library/store.py).
    """

    __tablename__ = "cases"
    # sqlite_autoincrement: ids (and so "Case 12" titles) are never reused after a delete.
    __table_args__ = (
        CheckConstraint("difficulty IS NULL OR (difficulty >= 1 AND difficulty <= 5)", name="ck_case_difficulty"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), index=True, default=Status.QUEUED.value)
    error: Mapped[str | None] = mapped_column(Text)
    progress_stage: Mapped[str | None] = mapped_column(String(64))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_eta_s: Mapped[float | None] = mapped_column(Float)
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    analysed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    video_path: Mapped[str] = mapped_column(String(300))  # relative to data_dir: videos/<sha256>.<ext>
    probe: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # technical fields only
    analysis_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration_s: Mapped[float | None] = mapped_column(Float, index=True)
    procedure: Mapped[str | None] = mapped_column(String(200))
    operation_date: Mapped[date | None] = mapped_column(Date, index=True)
    surgeon_id: Mapped[str | None] = mapped_column(String(32), index=True)
    difficulty: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    # Rectangles (x0, y0, x1, y1 in frame fractions) blacked out in every picture made from the video
    # (burned-in patient name/date; video/mask.py). Added by migration 0002 (library/migrations).
    mask_regions: Mapped[list[Any] | None] = mapped_column(JSON, default=list)

    tags: Mapped[list["Tag"]] = relationship(secondary=case_tags, order_by="Tag.name", back_populates="cases")
    features: Mapped[list["CaseFeature"]] = relationship(back_populates="case", cascade="all, delete-orphan")
    comments: Mapped[list["Comment"]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Comment.timestamp_s"
    )
    jobs: Mapped[list["Job"]] = relationship(back_populates="case", cascade="all, delete-orphan", order_by="Job.id")
    collection_items: Mapped[list["CollectionItem"]] = relationship(back_populates="case", cascade="all, delete-orphan")


class CaseFeature(Base):
    """A phase or tool seen in an analysed case, with how many seconds it lasted."""

    __tablename__ = "case_features"
    __table_args__ = (UniqueConstraint("case_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "phase" | "tool"
    name: Mapped[str] = mapped_column(String(64), index=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    case: Mapped[Case] = relationship(back_populates="features")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)

    cases: Mapped[list[Case]] = relationship(secondary=case_tags, back_populates="tags")


class Comment(Base):
    """A comment or a bookmark pinned to a time in the case's video."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    timestamp_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="comment")
    author: Mapped[str | None] = mapped_column(String(64))
    # The comment this one answers (None: a top-level comment). Added after the first release:
    # `create_schema` adds the column to older libraries (see ADDED_COLUMNS).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    case: Mapped[Case] = relationship(back_populates="comments")


class Collection(Base):
    """A teaching set: an ordered list of cases."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    items: Mapped[list["CollectionItem"]] = relationship(
        back_populates="collection", cascade="all, delete-orphan", order_by="CollectionItem.position"
    )


class CollectionItem(Base):
    __tablename__ = "collection_items"
    __table_args__ = (UniqueConstraint("collection_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0..n-1, dense

    collection: Mapped[Collection] = relationship(back_populates="items")
    case: Mapped[Case] = relationship(back_populates="collection_items")


class Job(Base):
    """One analysis run of a case; claimed by exactly one worker."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=Status.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="jobs")


class ReferenceLabels(Base):
    """An educator's corrected phase timeline of a case: its reference, kept beside the model's output.

    Stored here, not in the case folder, so it survives the case being analysed again."""

    __tablename__ = "reference_labels"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{start_s, end_s, label}]
    author: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BoxCorrection(Base):
    """An educator's instrument boxes on one frame of a case, kept beside the model's detections (never changed).

    `boxes` is the whole corrected set for the frame ([{x1, y1, x2, y2, label}], pixels of the upright video
    frame of `width` x `height`); an empty list says the frame shows no instrument. Added by migration 0003.
    """

    __tablename__ = "box_corrections"
    __table_args__ = (UniqueConstraint("case_id", "frame_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    timestamp_s: Mapped[float] = mapped_column(Float)
    frame_index: Mapped[int] = mapped_column(Integer)  # round(timestamp_s * the video's fps)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    author: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StudyAttempt(Base):
    """A trainee's study-mode attempt at a case: the marks given and their score against the reference."""

    __tablename__ = "study_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    trainee: Mapped[str] = mapped_column(String(64), index=True)  # a display name, no account
    reference_source: Mapped[str] = mapped_column(String(16))  # educator | model
    marks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[time_s, phase]]
    tool_marks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[time_s, [tool, ...]]]
    cvs_s: Mapped[float | None] = mapped_column(Float)
    score: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # StudyScore.to_dict()
    mean_abs_error_s: Mapped[float | None] = mapped_column(Float)
    mean_jaccard: Mapped[float | None] = mapped_column(Float)
    tool_f1: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Assessment(Base):
    """A structured rating (OSATS or GOALS, items scored 1-5) of a case's operator, filled by an educator."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(16))  # OSATS | GOALS
    trainee: Mapped[str | None] = mapped_column(String(64), index=True)  # who operated (a display name)
    assessor: Mapped[str | None] = mapped_column(String(64))
    scores: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # item -> 1..5
    total: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout for two processes."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if parsed.database and parsed.database != ":memory:":
            # The worker writes progress while the app reads: WAL lets readers and one writer overlap.
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


# Columns added to existing tables after the first release: (table, column, DDL type), added when missing.
ADDED_COLUMNS = (("comments", "parent_id", "INTEGER REFERENCES comments(id) ON DELETE CASCADE"),)


def create_schema(engine: Engine) -> None:
    """Create missing tables, add missing later columns (ADDED_COLUMNS) to an older library, then
    run the schema migrations (Alembic `upgrade head`, library/migrations).

    The app and the worker often start together on a new library: when the other process created a
    table (or added a column) between our check and our CREATE, checking again finds it."""
    for attempt in range(len(Base.metadata.tables)):
        try:
            Base.metadata.create_all(engine)
            break
        except DatabaseError:
            if attempt == len(Base.metadata.tables) - 1:
                raise
    for table, column, ddl in ADDED_COLUMNS:
        _add_missing_column(engine, table, column, ddl)
    _upgrade(engine)


def _upgrade(engine: Engine, attempts: int = 5) -> None:
    """Alembic `upgrade head` (library/migrations); another process upgrading at the same moment is waited for."""
    import time

    from library import migrations

    for attempt in range(attempts):
        try:
            migrations.upgrade(engine)
            return
        except DatabaseError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _add_missing_column(engine: Engine, table: str, column: str, ddl: str) -> None:
    from sqlalchemy import inspect, text

    def present() -> bool:
        return column in {c["name"] for c in inspect(engine).get_columns(table)}

    if present():
        return
    try:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
    except DatabaseError:
        if not present():  # not another process adding it at the same moment
            raise
