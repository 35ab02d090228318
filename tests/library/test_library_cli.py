"""`surglens worker` and `surglens library ...`."""
from __future__ import annotations

import json
import zipfile

import pytest

from app.cli import main
from library import Library, Settings


def test_worker_once_on_an_empty_library(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["worker", "--once", "--data-dir", str(data)]) == 0
    assert "surglens worker" in capsys.readouterr().out
    assert (data / "library.db").exists() and "stopped after 0 job(s)" in (data / "logs" / "worker.log").read_text()


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_worker_rejects_bad_poll_seconds(value, capsys):
    with pytest.raises(SystemExit):
        main(["worker", "--poll-seconds", value])
    assert "--poll-seconds" in capsys.readouterr().err


def test_ingest_run_list_export(tmp_path, cholec_clips, capsys):
    data = tmp_path / "data"
    with Library(Settings(data_dir=data)) as lib:  # model stages off: the CLI plumbing is under test
        lib.ingest(cholec_clips[2], config={"detect": False, "phase": False, "quality": False, "annotate": False})
    assert main(["library", "ingest", str(cholec_clips[2]), "--data-dir", str(data)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["created"] is False and line["status"] == "queued" and "group_" not in json.dumps(line)
    assert main(["worker", "--once", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["library", "list", "--status", "done", "--data-dir", str(data)]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == [line["id"]]
    out, report = tmp_path / "case.zip", tmp_path / "case.html"
    args = ["library", "export", str(line["id"]), "--out", str(out), "--html", str(report), "--data-dir", str(data)]
    assert main(args) == 0
    assert f"case-{line['id']}/case.json" in zipfile.ZipFile(out).namelist()
    assert f"Case {line['id']}" in report.read_text()


def test_missing_case_is_a_one_line_error(tmp_path, capsys):
    assert main(["library", "requeue", "42", "--data-dir", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.strip() == "surglens library: error: no case with id 42"


def test_delete_asks_for_yes_then_removes_the_case_and_its_files(tmp_path, capsys):
    from tests.library.conftest import fake_probe, fake_video

    data = tmp_path / "data"
    with Library(Settings(data_dir=data), probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path))
        lib.add_comment(case.id, 1.0, "kept until deleted")
        lib.case_dir(case.id).mkdir(parents=True)
    assert main(["library", "delete", str(case.id), "--data-dir", str(data)]) == 2
    assert "run again with --yes" in capsys.readouterr().err and case.video_path.exists()
    assert main(["library", "delete", str(case.id), "--yes", "--data-dir", str(data)]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": case.id, "title": f"Case {case.id}", "deleted": True}
    assert not case.video_path.exists() and not (data / "cases" / str(case.id)).exists()
    with Library(Settings(data_dir=data), probe=fake_probe) as lib:
        assert lib.list_cases() == []
    assert main(["library", "delete", str(case.id), "--yes", "--data-dir", str(data)]) == 2
    assert f"no case with id {case.id}" in capsys.readouterr().err
