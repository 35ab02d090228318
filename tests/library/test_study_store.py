"""Reference labels (educator corrections), study attempts and OSATS/GOALS assessments in the library."""
from __future__ import annotations

import csv
import io
import sqlite3

import pytest

from library import Library, LibraryError, Settings
from library.teaching import GOALS_ITEMS, OSATS_ITEMS, Teaching
from library.worker import Worker
from tests.library.conftest import fake_analyze, fake_probe, fake_video

CORRECTED = [{"start_s": 0, "end_s": 8, "label": "Preparation"},
             {"start_s": 8, "end_s": 20, "label": "CalotTriangleDissection"},
             {"start_s": 20, "end_s": 32, "label": "ClippingCutting"}]


def test_the_model_is_the_reference_until_an_educator_corrects(lib, analysed):
    teaching = Teaching(lib)
    model = teaching.reference(analysed)
    assert model.source == "model"
    assert [(s["start_s"], s["label"]) for s in model.segments] == [(0, "Preparation"), (12, "CalotTriangleDissection")]
    saved = teaching.save_reference(analysed, CORRECTED, author="  E01 ")
    assert (saved.source, saved.author) == ("educator", "E01")
    assert [s["label"] for s in saved.segments] == ["Preparation", "CalotTriangleDissection", "ClippingCutting"]
    assert teaching.model_segments(analysed) == list(model.segments)  # the model output is kept
    assert teaching.corrected_case_ids() == [analysed]
    teaching.clear_reference(analysed)
    assert teaching.reference(analysed).source == "model"


@pytest.mark.parametrize("segments, message", [
    ([{"start_s": 0, "end_s": 8, "label": "Lunch"}], "unknown phase 'Lunch'"),
    ([{"start_s": 5, "end_s": 5, "label": "Preparation"}], "0 <= start < end"),
    ([{"start_s": 0, "end_s": 10, "label": "Preparation"}, {"start_s": 5, "end_s": 12, "label": "ClippingCutting"}],
     "overlap at 5 s"),
    ([{"start_s": 0, "end_s": 99, "label": "Preparation"}], "after the end of the video"),
    ([], "no segment"),
])
def test_bad_corrections(lib, analysed, segments, message):
    with pytest.raises(LibraryError, match=message):
        Teaching(lib).save_reference(analysed, segments)


def test_cholec80_export_of_the_reference_uses_the_video_fps(lib, analysed):
    teaching = Teaching(lib)
    teaching.save_reference(analysed, CORRECTED)
    lines = teaching.reference_cholec80_text(analysed).splitlines()
    assert lines[0] == "Frame\tPhase"
    assert len(lines) == 1 + 800  # the fake probe: 800 frames at 25 fps
    assert lines[1 + 8 * 25 - 1] == f"{8 * 25 - 1}\tPreparation"
    assert lines[1 + 8 * 25] == f"{8 * 25}\tCalotTriangleDissection"
    assert lines[1 + 20 * 25] == f"{20 * 25}\tClippingCutting"


def test_attempts_score_against_the_educator_reference(lib, analysed):
    teaching = Teaching(lib)
    first = teaching.submit_attempt(analysed, " Dr  Who ", [(0, "Preparation"), (15, "CalotTriangleDissection")],
                                    tool_marks=[(2.0, ["Grasper"]), (5.0, ["hook"])])
    assert (first.trainee, first.reference_source) == ("Dr Who", "model")
    assert first.score["transitions"][0]["error_s"] == 3.0  # model: Calot at 12 s
    assert first.tool_f1 == 1.0  # the fake presence: Grasper at 1-4 s, Hook at 5-6 s
    teaching.save_reference(analysed, CORRECTED)
    second = teaching.submit_attempt(analysed, "Dr Who", [(0, "Preparation"), (9, "CalotTriangleDissection"),
                                                          (20, "ClippingCutting")])
    assert second.reference_source == "educator"
    assert second.mean_abs_error_s == pytest.approx(0.5)
    assert second.tool_f1 is None
    assert [a.id for a in teaching.attempts("Dr Who")] == [first.id, second.id]
    assert teaching.attempts(case_id=analysed + 1) == []
    assert teaching.trainees() == ["Dr Who"]


@pytest.mark.parametrize("trainee, marks, message", [
    ("", [(0, "Preparation")], "trainee name is empty"),
    ("T1", [], "mark at least one phase"),
    ("T1", [(0, "Lunch")], "unknown phase 'Lunch'"),
    ("T1", [(40, "Preparation")], "after the end of the video"),
])
def test_bad_attempts(lib, analysed, trainee, marks, message):
    with pytest.raises(LibraryError, match=message):
        Teaching(lib).submit_attempt(analysed, trainee, marks)


def test_assessments_stored_and_exported(lib, analysed):
    teaching = Teaching(lib)
    osats = teaching.save_assessment(analysed, "OSATS", {i: 4 for i in OSATS_ITEMS}, trainee="T1", assessor="E01",
                                     notes="steady")
    goals = teaching.save_assessment(analysed, "GOALS", {i: 3 for i in GOALS_ITEMS}, trainee="T1")
    assert (osats.total, osats.max_total, goals.total, goals.max_total) == (28, 35, 15, 25)
    assert [a.id for a in teaching.assessments(trainee="T1")] == [osats.id, goals.id]
    assert [a.id for a in teaching.assessments(form="GOALS")] == [goals.id]
    rows = list(csv.DictReader(io.StringIO(teaching.assessments_csv())))
    assert [r["form"] for r in rows] == ["OSATS", "GOALS"]
    assert rows[0]["Respect for tissue"] == "4" and rows[0]["Autonomy"] == "" and rows[0]["total"] == "28"
    assert rows[0]["case"] == lib.get_case(analysed).title
    teaching.delete_assessment(osats.id)
    assert [a.id for a in teaching.assessments()] == [goals.id]
    assert teaching.trainees() == ["T1"]


@pytest.mark.parametrize("form, scores, message", [
    ("DOPS", {}, "form must be one of"),
    ("GOALS", {i: 3 for i in GOALS_ITEMS[:-1]}, "missing \\['Autonomy'\\]"),
    ("GOALS", {**{i: 3 for i in GOALS_ITEMS}, "Speed": 2}, "unknown GOALS item"),
    ("GOALS", {**{i: 3 for i in GOALS_ITEMS}, "Autonomy": 6}, "'Autonomy' must be scored 1-5, got 6"),
])
def test_bad_assessments(lib, analysed, form, scores, message):
    with pytest.raises(LibraryError, match=message):
        Teaching(lib).save_assessment(analysed, form, scores)


def test_deleting_a_case_removes_its_teaching_rows(lib, analysed):
    teaching = Teaching(lib)
    teaching.save_reference(analysed, CORRECTED)
    teaching.submit_attempt(analysed, "T1", [(0, "Preparation")])
    teaching.save_assessment(analysed, "GOALS", {i: 3 for i in GOALS_ITEMS})
    lib.delete_case(analysed)
    assert (teaching.attempts(), teaching.assessments(), teaching.corrected_case_ids()) == ([], [], [])


def test_an_existing_library_gains_the_teaching_tables(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with Library(settings, probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path), title="Old case")
    with sqlite3.connect(settings.data_dir / "library.db") as conn:  # a library from before teaching workflows
        conn.executescript("DROP TABLE reference_labels; DROP TABLE study_attempts; DROP TABLE assessments;")
    with Library(settings, probe=fake_probe) as lib:
        assert lib.get_case(case.id).title == "Old case"
        record = Teaching(lib).save_assessment(case.id, "GOALS", {i: 2 for i in GOALS_ITEMS})
        assert record.total == 10


def test_the_case_zip_carries_the_correction_beside_the_model(lib, analysed):
    import json
    import zipfile

    from library.export import export_case, zip_bytes

    def names() -> set[str]:
        return set(zipfile.ZipFile(io.BytesIO(zip_bytes(lambda f: export_case(lib, analysed, f)))).namelist())

    root = f"case-{analysed}"
    assert f"{root}/reference_phases.json" not in names()
    Teaching(lib).save_reference(analysed, CORRECTED, author="E01")
    zf = zipfile.ZipFile(io.BytesIO(zip_bytes(lambda f: export_case(lib, analysed, f))))
    assert {f"{root}/reference_phases.json", f"{root}/reference_phase_cholec80.txt",
            f"{root}/phase_segments.json"} <= set(zf.namelist())
    assert json.loads(zf.read(f"{root}/reference_phases.json"))["author"] == "E01"
    assert zf.read(f"{root}/reference_phase_cholec80.txt").decode().splitlines()[1 + 20 * 25] == "500\tClippingCutting"


def test_export_corrections_is_a_cholec80_labels_folder(lib, analysed, make_case, tmp_path):
    from models.phase.sequences import read_label_sequences

    make_case()  # a second case, analysed but never corrected: not exported
    Worker(lib, fake_analyze).run_once()
    Teaching(lib).save_reference(analysed, CORRECTED, author="E01")
    official = tmp_path / "official"
    (official / "phase_annotations").mkdir(parents=True)
    (official / "tool_annotations").mkdir()
    (official / "phase_annotations" / "video01-phase.txt").write_text("Frame\tPhase\n0\tPreparation\n25\tPreparation\n")
    (official / "tool_annotations" / "video01-tool.txt").write_text(
        "Frame\tGrasper\tBipolar\tHook\tScissors\tClipper\tIrrigator\tSpecimenBag\n0\t1\t0\t0\t0\t0\t0\t0\n")
    entries = Teaching(lib).export_corrections(tmp_path / "out", include=official)
    assert [e["video"] for e in entries] == [f"video{1000 + analysed}"]
    sequences = {s.name: s for s in read_label_sequences(tmp_path / "out")}
    assert set(sequences) == {"video01", f"video{1000 + analysed}"}
    mine = sequences[f"video{1000 + analysed}"]
    assert len(mine) == 32
    assert mine.phase[7] == 0 and mine.phase[8] == 1 and mine.phase[20] == 2  # the educator's boundaries
    assert mine.tools[1:5, 0].all() and not mine.tools[0, 0] and mine.tools[5:7, 2].all()  # Grasper 1-4 s, Hook 5-6 s
    with pytest.raises(LibraryError, match="must be a cholec80-labels folder"):
        Teaching(lib).export_corrections(tmp_path / "out2", include=tmp_path)


def test_export_corrections_command(tmp_path, capsys):
    import json

    from app.cli import main

    settings = Settings(data_dir=tmp_path / "data")
    with Library(settings, probe=fake_probe) as lib:
        case, _ = lib.ingest(fake_video(tmp_path))
        Worker(lib, fake_analyze).run_once()
        Teaching(lib).save_reference(case.id, CORRECTED)
    assert main(["library", "export-corrections", str(tmp_path / "labels"), "--data-dir", str(settings.data_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["cases"] == [f"video{1000 + case.id}"]
    assert (tmp_path / "labels" / "phase_annotations" / f"video{1000 + case.id}-phase.txt").exists()


def test_an_attempt_keeps_the_reference_it_was_scored_against(lib, analysed):
    teaching = Teaching(lib)
    attempt = teaching.submit_attempt(analysed, "T1", [(0, "Preparation")])
    teaching.save_reference(analysed, CORRECTED)
    (kept,) = teaching.attempts("T1")
    assert [s["start_s"] for s in kept.score["reference_segments"]] == [0, 12]
    assert kept.id == attempt.id


def test_the_cvs_moment_is_scored_against_the_anatomy_estimate(lib, analysed):
    import pandas as pd

    teaching = Teaching(lib)
    attempt = teaching.submit_attempt(analysed, "T1", [(0, "Preparation")], cvs_s=20.0)
    assert attempt.score["cvs_error_s"] is None  # no anatomy analysis: nothing to compare with
    pd.DataFrame({"timestamp_s": [10.0, 15.0, 18.0], "cvs_c1": [0.9, 0.9, 0.9], "cvs_c2": [0.2, 0.8, 0.9],
                  "cvs_c3": [0.9, 0.4, 0.7]}).to_parquet(lib.case_dir(analysed) / "anatomy.parquet")
    assert teaching.reference_cvs_s(analysed) == 18.0  # the first second with all three criteria
    assert teaching.submit_attempt(analysed, "T1", [(0, "Preparation")], cvs_s=20.0).score["cvs_error_s"] == 2.0
