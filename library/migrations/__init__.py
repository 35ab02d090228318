"""Schema migrations of the case library (Alembic), run by `library.db.create_schema` on every open.

Configured in code (no alembic.ini): `upgrade(engine)` brings any library to the newest revision.
A library made before migrations existed has no `alembic_version` table; it has the baseline
schema (revision 0001, frozen in versions/0001_baseline.py) and is upgraded from there. A new
library gets its tables from the models (`create_all`) and then runs the same revisions, so every
revision checks before it changes anything (a column a revision adds may already be there).

Adding a change: a new file in versions/ with `down_revision` the previous head, written with
`op` and guarded by `library.migrations.helpers` (has_column, ...); a test upgrades a library of
the previous schema (tests/library/test_migrations.py).
"""
from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, inspect

FOLDER = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
_LOCK = threading.Lock()  # Alembic's `context` is process-global: one upgrade at a time per process


def config(connection=None):
    """An Alembic Config for this folder; `connection` is the one env.py migrates."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision id."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The library's revision (None: never migrated, i.e. the baseline or older)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the library on `engine` to `revision` (in one transaction where the database allows)."""
    from alembic import command

    with _LOCK, engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # the app and the worker may start together: one at a time
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(7241051301)"))
        command.upgrade(config(conn), revision)


def has_version_table(engine: Engine) -> bool:
    return VERSION_TABLE in inspect(engine).get_table_names()
