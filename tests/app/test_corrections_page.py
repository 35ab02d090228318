"""Corrections in AppTest: an educator's timeline saved as the reference beside the model's, its Cholec80 export,
the least-confident stretches listed first (here and in Case review), and a frame's instrument boxes corrected
(marked wrong, relabelled, added) beside the model's detections."""
import json
import re

import pytest

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


# -- instrument boxes on a frame ------------------------------------------------------------------------------------
def _box_editor(at, case_id: int, frame_index: int, version: str = "model"):
    (editor,) = [e for e in at.data_editor if e.key == f"correct_boxes_{case_id}_{frame_index}_{version}"]
    return editor


def _rects(fig, dash=None):
    return [s for s in fig.layout.shapes if s.type == "rect" and s.line.dash == dash]


def test_the_model_boxes_of_a_frame_are_shown(library, add_case):
    case_id = add_case()
    at = open_page("corrections", **{f"correct_box_time_{case_id}": 3.2})  # the nearest analysed frame: 3 s (1 fps)
    assert "Frame 30 at 0:03: the model's 2 boxes" in texts(at)
    rows = _box_editor(at, case_id, 30).value
    assert list(rows["instrument"]) == ["Grasper", "Clipper"] and list(rows["x1"]) == [34.0, 50.0]
    fig = figures(at)["correct_frame_boxes"]
    assert [(r.x0, r.x1) for r in _rects(fig)] == [(34.0, 54.0), (50.0, 70.0)]
    assert fig.layout.images[0].source.startswith("data:image/jpeg;base64,")  # the decoded frame under them
    assert (fig.layout.xaxis.range[1], fig.layout.yaxis.range[0]) == (96, 64)


def test_box_edits_are_saved_beside_the_model(library, add_case):
    case_id = add_case()
    at = open_page("corrections", **{f"correct_box_time_{case_id}": 3.0})
    at.text_input(key="correct_author").set_value("E01")
    at.session_state[f"correct_boxes_{case_id}_30_model"] = {
        "edited_rows": {0: {"wrong": True}, 1: {"instrument": "Scissors"}},  # not a grasper; the clipper is scissors
        "added_rows": [{"instrument": "Hook", "x1": 70, "y1": 40, "x2": 96, "y2": 64}], "deleted_rows": []}
    at.run()
    assert not at.exception and not at.error
    fig = figures(at)["correct_frame_boxes"]
    assert [(r.x0, r.y0) for r in _rects(fig)] == [(50.0, 10.0), (70.0, 40.0)]
    assert [(r.x0, r.y0) for r in _rects(fig, "dash")] == [(34.0, 20.0)]  # the box marked wrong, dashed
    assert "2 boxes, 1 marked wrong (dashed)" in fig.layout.title.text
    at.button(key="correct_boxes_save").click().run()
    assert not at.exception, at.exception
    teaching = Teaching(library)
    saved = teaching.frame_boxes(case_id, 3.0)
    assert (saved.source, saved.author) == ("educator", "E01")
    assert [(b["label"], b["x1"], b["x2"]) for b in saved.boxes] == [("Scissors", 50.0, 70.0), ("Hook", 70.0, 96.0)]
    assert [b["label"] for b in teaching.model_boxes(case_id, 3.0).boxes] == ["Grasper", "Clipper"]  # kept
    assert "boxes corrected by E01" in texts(at)
    assert list(_box_editor(at, case_id, 30, saved.updated_at.isoformat()).value["instrument"]) == ["Scissors", "Hook"]
    assert "0:03 (2 boxes)" in [b.label for b in at.button]  # the corrected frames, to come back to
    at.button(key="correct_boxes_clear").click().run()
    assert teaching.frame_boxes(case_id, 3.0).source == "model"


@pytest.mark.parametrize(("added", "message"), [
    ({"instrument": "Hook", "x1": 70, "y1": 40, "x2": 120, "y2": 64}, r"box 3 \(70, 40, 120, 64\) is outside the 96x64 frame"),
    ({"instrument": "Hook", "x1": 70, "y1": 40}, "box 3 is incomplete"),
    ({"instrument": "Hook", "x1": 70, "y1": 50, "x2": 80, "y2": 40}, r"x1 < x2 and y1 < y2, got \(70, 50, 80, 40\)"),
])
def test_a_bad_box_is_refused(library, add_case, added, message):
    case_id = add_case()
    at = open_page("corrections", **{f"correct_box_time_{case_id}": 3.0})
    at.session_state[f"correct_boxes_{case_id}_30_model"] = {"edited_rows": {}, "added_rows": [added],
                                                             "deleted_rows": []}
    at.run()
    assert re.search(message, at.error[0].value)
    assert at.button(key="correct_boxes_save").disabled


def test_a_review_stretch_opens_its_frame_in_the_box_editor(library, add_case):
    case_id = add_case(analyze=unsure_analysis)
    at = open_page("corrections")
    assert "Frame 0 at 0:00" in texts(at)
    at.button(key="correct_review_0").click().run()  # 0:02-0:06, the least confident stretch
    assert at.number_input(key=f"correct_box_time_{case_id}").value == 2.0
    assert "Frame 20 at 0:02: the model's 1 box." in texts(at)
