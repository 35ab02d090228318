"""Schema migrations: a library made with an older schema (no alembic_version table) opens and is upgraded."""
from __future__ import annotations

import importlib.util
from datetime import datetime

import pytest
import sqlalchemy as sa

from library import Library, db, migrations
from tests.library.conftest import fake_probe, fake_video, run_together


def _baseline_metadata() -> sa.MetaData:
    path = migrations.FOLDER / "versions" / "0001_baseline.py"
    spec = importlib.util.spec_from_file_location("baseline_0001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metadata


def _todays_library(settings, without_answers: bool = False) -> sa.Engine:
    """A library database as this release's predecessors made it: the baseline tables, one case, no alembic table.

    `without_answers`: an even older one, from before comments.parent_id was added.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(settings.database_url)
    metadata = _baseline_metadata()
    if without_answers:
        metadata.remove(metadata.tables["comments"])
        sa.Table("comments", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
                 sa.Column("timestamp_s", sa.Float, nullable=False), sa.Column("text", sa.Text, nullable=False),
                 sa.Column("kind", sa.String(16), nullable=False), sa.Column("author", sa.String(64)),
                 sa.Column("created_at", sa.DateTime, nullable=False),
                 sa.Column("updated_at", sa.DateTime, nullable=False))
    metadata.create_all(engine)
    now = datetime(2026, 11, 30, 9, 0)
    with engine.begin() as conn:
        conn.execute(sa.insert(metadata.tables["cases"]).values(
            id=1, sha256="a" * 64, title="Calot teaching case", status="done", progress_done=0, progress_total=0,
            created_at=now, updated_at=now, video_path="videos/" + "a" * 64 + ".mp4", probe={"fps": 25.0},
            analysis_config={"sample_fps": 1.0}, duration_s=32.0))
        conn.execute(sa.insert(metadata.tables["comments"]).values(
            id=1, case_id=1, timestamp_s=3.0, text="clip here", kind="comment", created_at=now, updated_at=now))
        if engine.dialect.name == "postgresql":  # rows inserted with explicit ids leave the sequences behind
            for table in ("cases", "comments"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT MAX(id) FROM {table}))"))
    assert not migrations.has_version_table(engine)
    return engine


def _columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_a_library_of_todays_schema_is_upgraded_and_keeps_its_data(settings):
    old = _todays_library(settings)
    assert "mask_regions" not in _columns(old, "cases") and "box_corrections" not in sa.inspect(old).get_table_names()
    old.dispose()
    with Library(settings, probe=fake_probe) as lib:
        assert migrations.current(lib.engine) == migrations.head() == "0003"
        assert "mask_regions" in _columns(lib.engine, "cases")
        assert {"case_id", "timestamp_s", "frame_index", "boxes"} <= _columns(lib.engine, "box_corrections")
        case = lib.get_case(1)
        assert case.title == "Calot teaching case" and case.mask_regions == ()
        assert [c.text for c in lib.list_comments(1)] == ["clip here"]
        masked = lib.set_mask_regions(1, [(0.0, 0.0, 0.4, 0.1)])
        assert masked.mask_regions == ((0.0, 0.0, 0.4, 0.1),)
    with Library(settings, probe=fake_probe) as again:  # opening an upgraded library changes nothing
        assert migrations.current(again.engine) == "0003" and again.get_case(1).mask_regions == ((0.0, 0.0, 0.4, 0.1),)


def test_an_older_library_without_answers_is_upgraded_too(settings):
    _todays_library(settings, without_answers=True).dispose()
    with Library(settings, probe=fake_probe) as lib:
        assert {"parent_id"} <= _columns(lib.engine, "comments") and "mask_regions" in _columns(lib.engine, "cases")
        assert migrations.current(lib.engine) == "0003"
        reply = lib.add_comment(1, 0.0, "agreed", parent_id=1)
        assert reply.parent_id == 1


def test_a_new_library_is_at_the_head_revision(settings, tmp_path):
    with Library(settings, probe=fake_probe) as lib:
        assert migrations.current(lib.engine) == migrations.head()
        case, _ = lib.ingest(fake_video(tmp_path))
        assert lib.get_case(case.id).mask_regions == ()


def test_the_baseline_is_the_schema_of_the_models_before_the_migrations(settings):
    """Every baseline table and column is in the models: the revisions only ever add to it."""
    baseline = _baseline_metadata()
    for name, table in baseline.tables.items():
        model = db.Base.metadata.tables[name]
        assert set(table.c.keys()) <= set(model.c.keys()), name
    assert set(db.Base.metadata.tables["cases"].c.keys()) - set(baseline.tables["cases"].c.keys()) == {"mask_regions"}


def test_the_app_and_the_worker_opening_an_old_library_together(settings):
    _todays_library(settings).dispose()
    assert run_together(lambda: Library(settings, probe=fake_probe).close(), 3) == []
    with Library(settings, probe=fake_probe) as lib:
        assert migrations.current(lib.engine) == "0003"


@pytest.mark.parametrize("regions", [[(0.5, 0, 0.2, 0.1)], [(0, 0, 1.5, 1)], [(0, 0, 1)], ["0,0,1,1"]])
def test_bad_mask_regions_are_refused(lib, make_case, regions):
    from library import LibraryError

    case_id = make_case()
    with pytest.raises(LibraryError, match="mask region"):
        lib.set_mask_regions(case_id, regions)


def test_two_processes_upgrading_an_old_library_at_once(settings):
    """`surglens serve` starts the app and the worker together: both open the library and upgrade it."""
    import subprocess
    import sys

    from tests.conftest import REPO

    _todays_library(settings).dispose()
    code = ("import sys; from library import Library, Settings; "
            "Library(Settings(data_dir=sys.argv[1], db_url=sys.argv[2] or None)).close(); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(settings.data_dir), settings.db_url or ""], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in results]
    with Library(settings, probe=fake_probe) as lib:
        assert migrations.current(lib.engine) == "0003" and lib.get_case(1).title == "Calot teaching case"


def test_revision_0003_makes_the_box_corrections_table(settings, tmp_path):
    """Revision 0003 run on a library of revision 0002 (not through create_all): the table, its index and its
    cascade are made, and the library works with it."""
    from library.teaching import Teaching
    from library.worker import Worker
    from tests.library.conftest import fake_analyze

    with Library(settings, probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path))
        Worker(lib, fake_analyze).run_once()
        with lib.engine.begin() as conn:  # back to the schema of revision 0002
            conn.execute(sa.text("DROP TABLE box_corrections"))
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
        assert migrations.current(lib.engine) == "0002"
        migrations.upgrade(lib.engine)
        assert migrations.current(lib.engine) == "0003"
        assert {"id", "case_id", "timestamp_s", "frame_index", "width", "height", "boxes", "author", "created_at",
                "updated_at"} == _columns(lib.engine, "box_corrections")
        assert "ix_box_corrections_case_id" in {i["name"] for i in sa.inspect(lib.engine).get_indexes("box_corrections")}
        saved = Teaching(lib).save_boxes(case.id, 1.0, [{"x1": 1, "y1": 2, "x2": 30, "y2": 40, "label": "Hook"}])
        assert saved.source == "educator" and saved.boxes[0]["label"] == "Hook"
        lib.delete_case(case.id)
        assert Teaching(lib).box_corrections() == []
