"""Alembic environment: migrates the connection `library.migrations.upgrade` passes (never a URL from a file)."""
from __future__ import annotations

from alembic import context

from library.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("library migrations run through library.migrations.upgrade(engine), not the alembic command")
# render_as_batch: SQLite changes tables by copying them (ALTER is limited there).
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
