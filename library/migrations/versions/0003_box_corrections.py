"""box_corrections: an educator's instrument boxes on a frame of a case, beside the model's detections.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from library.migrations.helpers import has_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "box_corrections"


def upgrade() -> None:
    if has_table(TABLE):  # a new library: created from the models just before
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("timestamp_s", sa.Float, nullable=False),
        sa.Column("frame_index", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("boxes", sa.JSON, nullable=False),
        sa.Column("author", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("case_id", "frame_index"),
    )
    op.create_index(op.f("ix_box_corrections_case_id"), TABLE, ["case_id"])


def downgrade() -> None:
    if has_table(TABLE):
        op.drop_index(op.f("ix_box_corrections_case_id"), table_name=TABLE)
        op.drop_table(TABLE)
