"""Schema: portable DDL, concurrent creation, aware timestamps."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from library import Library, Settings, db
from tests.library.conftest import fake_probe, fake_video, run_together


def test_schema_compiles_for_postgresql():
    ddl = "\n".join(str(CreateTable(t).compile(dialect=postgresql.dialect())) for t in db.Base.metadata.sorted_tables)
    assert "CREATE TABLE cases" in ddl and "AUTOINCREMENT" not in ddl.upper()


def test_app_and_worker_creating_a_new_library_at_once(tmp_path, db_url):
    settings = Settings(data_dir=tmp_path / "data", db_url=db_url)
    assert run_together(lambda: Library(settings, probe=fake_probe).close(), 4) == []


def test_timestamps_are_aware_utc(lib, make_case):
    case = lib.get_case(make_case())
    assert case.created_at.tzinfo is not None and case.created_at.utcoffset().total_seconds() == 0
    with pytest.raises(ValueError, match="naive datetime"):
        db.UTCDateTime().process_bind_param(datetime(2024, 1, 1), None)


def test_a_library_from_before_answers_gains_the_column(tmp_path):
    """An existing library.db without comments.parent_id opens, keeps its comments and takes answers."""
    import sqlite3

    settings = Settings(data_dir=tmp_path / "data")
    with Library(settings, probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path), title="Old case")
        old = lib.add_comment(case.id, 3.0, "an old comment")
    with sqlite3.connect(settings.data_dir / "library.db") as conn:  # the schema of the first release
        columns = "id, case_id, timestamp_s, text, kind, author, created_at, updated_at"
        conn.executescript(
            "CREATE TABLE old (id INTEGER NOT NULL PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases (id) "
            "ON DELETE CASCADE, timestamp_s FLOAT NOT NULL, text TEXT NOT NULL, kind VARCHAR(16) NOT NULL, "
            "author VARCHAR(64), created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);"
            f"INSERT INTO old SELECT {columns} FROM comments; DROP TABLE comments; ALTER TABLE old RENAME TO comments;")
        assert "parent_id" not in {row[1] for row in conn.execute("PRAGMA table_info(comments)")}
    with Library(settings, probe=fake_probe) as lib:
        (kept,) = lib.list_comments(case.id)
        assert (kept.id, kept.text, kept.parent_id) == (old.id, "an old comment", None)
        answer = lib.add_comment(case.id, 0.0, "an answer", parent_id=old.id)
        assert answer.parent_id == old.id
    Library(settings, probe=fake_probe).close()  # a second start finds the column and leaves it
