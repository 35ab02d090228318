"""Schema: portable DDL, concurrent creation, aware timestamps."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from library import Library, Settings, db
from tests.library.conftest import fake_probe


def test_schema_compiles_for_postgresql():
    ddl = "\n".join(str(CreateTable(t).compile(dialect=postgresql.dialect())) for t in db.Base.metadata.sorted_tables)
    assert "CREATE TABLE cases" in ddl and "AUTOINCREMENT" not in ddl.upper()


def test_app_and_worker_creating_a_new_library_at_once(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_library() -> None:
        barrier.wait()
        try:
            Library(settings, probe=fake_probe).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_library) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_timestamps_are_aware_utc(lib, make_case):
    case = lib.get_case(make_case())
    assert case.created_at.tzinfo is not None and case.created_at.utcoffset().total_seconds() == 0
    with pytest.raises(ValueError, match="naive datetime"):
        db.UTCDateTime().process_bind_param(datetime(2024, 1, 1), None)
