"""Baseline: the library schema of the first releases (before migrations), frozen here.

Libraries made before Alembic have exactly these tables (`create_schema` also added
comments.parent_id to older ones) and no alembic_version table: they start from this revision.
On an empty database it creates these tables; where they exist it changes nothing.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = sa.MetaData()
_cascade = {"ondelete": "CASCADE"}

sa.Table(
    "cases", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("error", sa.Text),
    sa.Column("progress_stage", sa.String(64)),
    sa.Column("progress_done", sa.Integer, nullable=False),
    sa.Column("progress_total", sa.Integer, nullable=False),
    sa.Column("progress_eta_s", sa.Float),
    sa.Column("progress_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("analysed_at", sa.DateTime),
    sa.Column("video_path", sa.String(300), nullable=False),
    sa.Column("probe", sa.JSON, nullable=False),
    sa.Column("analysis_config", sa.JSON, nullable=False),
    sa.Column("duration_s", sa.Float, index=True),
    sa.Column("procedure", sa.String(200)),
    sa.Column("operation_date", sa.Date, index=True),
    sa.Column("surgeon_id", sa.String(32), index=True),
    sa.Column("difficulty", sa.Integer),
    sa.Column("notes", sa.Text),
    sa.CheckConstraint("difficulty IS NULL OR (difficulty >= 1 AND difficulty <= 5)", name="ck_case_difficulty"),
    sqlite_autoincrement=True,
)
sa.Table(
    "case_features", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", **_cascade), nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.UniqueConstraint("case_id", "kind", "name"),
)
sa.Table(
    "tags", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
)
sa.Table(
    "case_tags", metadata,
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", **_cascade), primary_key=True),
    sa.Column("tag_id", sa.Integer, sa.ForeignKey("tags.id", **_cascade), primary_key=True),
)
sa.Table(
    "comments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", **_cascade), nullable=False, index=True),
    sa.Column("timestamp_s", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("author", sa.String(64)),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("comments.id", **_cascade)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Table(
    "collections", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Table(
    "collection_items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", **_cascade), nullable=False, index=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", **_cascade), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("collection_id", "case_id"),
)
sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", **_cascade), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker_id", sa.String(128)),
    sa.Column("heartbeat_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("error", sa.Text),
)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("the baseline is the oldest schema; there is nothing to go back to")
