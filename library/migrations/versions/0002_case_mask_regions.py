"""cases.mask_regions: rectangles of burned-in text blacked out in every picture made from the video.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from library.migrations.helpers import has_column

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_column("cases", "mask_regions"):
        with op.batch_alter_table("cases") as batch:
            batch.add_column(sa.Column("mask_regions", sa.JSON, nullable=True))


def downgrade() -> None:
    if has_column("cases", "mask_regions"):
        with op.batch_alter_table("cases") as batch:
            batch.drop_column("mask_regions")
