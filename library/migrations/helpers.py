"""Checks revisions use so they run on a new library (tables from the models) and on an old one alike."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def has_table(table: str) -> bool:
    return table in sa.inspect(op.get_bind()).get_table_names()


def has_column(table: str, column: str) -> bool:
    return has_table(table) and column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
