"""Corrections in AppTest: an educator's timeline saved as the reference beside the model's, its Cholec80 export,
and the least-confident stretches listed first (here and in Case review)."""
import json

from analysis.results import PHASE_SEGMENTS
from library.teaching import Teaching
from tests.app.conftest import figures, open_page, texts, write_case

UNSURE = [{"start_s": 0.0, "end_s": 2.0, "label": "Preparation", "confidence": 0.45},
          {"start_s": 2.0, "end_s": 6.0, "label": "CalotTriangleDissection", "confidence": 0.3}]


def unsure_analysis(video, out, config, progress):
    case = write_case(out, video)
    (out / PHASE_SEGMENTS).write_text(json.dumps(UNSURE))
    return case


def test_empty_library(library):
    assert "No analysed case yet" in open_page("corrections").info[0].value


def test_a_correction_becomes_the_reference_and_is_exported(library, add_case):
    case_id = add_case()
    at = open_page("corrections", **{f"correct_seed_{case_id}": [(0.0, "Preparation"), (4.0, "ClippingCutting")]})
    assert "Not corrected yet" in texts(at)
    lanes = [t.y[0] for t in figures(at)["correct_timelines"].data]
    assert {"Model", "Reference (model)", "Your edit (not saved)"} == set(lanes)
    at.text_input(key="correct_author").set_value("E01")
    at.button(key="correct_save").click().run()
    assert not at.exception, at.exception
    teaching = Teaching(library)
    reference = teaching.reference(case_id)
    assert reference.source == "educator" and reference.author == "E01"
    assert [(s["start_s"], s["end_s"], s["label"]) for s in reference.segments] == [
        (0.0, 4.0, "Preparation"), (4.0, 6.0, "ClippingCutting")]
    assert [s["label"] for s in teaching.model_segments(case_id)] == ["Preparation", "CalotTriangleDissection"]
    assert "Corrected by E01" in texts(at)
    lines = teaching.reference_cholec80_text(case_id).splitlines()
    assert len(lines) == 1 + 60 and lines[40] == "39\tPreparation" and lines[41] == "40\tClippingCutting"  # 10 fps
    at.button(key="correct_clear").click().run()
    assert teaching.reference(case_id).source == "model"


def test_a_bad_time_is_refused(library, add_case):
    case_id = add_case()
    at = open_page("corrections", **{f"correct_seed_{case_id}": [(0.0, "Preparation"), (60.0, "ClippingCutting")]})
    assert "after the end of the video" in at.error[0].value
    assert at.button(key="correct_save").disabled


def test_least_confident_stretches_first(library, add_case):
    add_case(analyze=unsure_analysis)
    at = open_page("corrections")
    flagged = [b.label for b in at.button if b.key and b.key.startswith("correct_review_")]
    assert flagged == ["0:02–0:06  Calot triangle dissection (30%)", "0:00–0:02  Preparation (45%)"]
    review = open_page("case_review")
    assert [b.label for b in review.button if b.key and b.key.startswith("review_")][0].startswith("0:02–0:06")
    assert "**Review these** (2, least confident first)" in texts(review)
