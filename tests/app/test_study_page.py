"""Study mode in AppTest: a trainee's attempt scored against the model, then against an educator's correction."""
from library.teaching import Teaching
from tests.app.conftest import figures, open_page, texts


def test_empty_library(library):
    at = open_page("study")
    assert "No analysed case yet" in at.info[0].value


def test_an_attempt_is_scored_and_kept(library, add_case):
    case_id = add_case()
    at = open_page("study", **{f"study_seed_{case_id}": [(0.0, "Preparation"), (3.0, "CalotTriangleDissection")]})
    assert "the model's phase recognition" in texts(at)
    assert "study_timelines" not in figures(at)  # labels hidden before submitting
    at.text_input(key="study_trainee").set_value("Trainee A")
    at.button(key="study_submit").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Mean timing error 1.0 s" in shown  # the model: Calot from 2 s, marked at 3 s
    assert "Missed transitions 0 of 1" in shown
    assert "Instrument F1 not marked" in shown
    lanes = {y for t in figures(at)["study_timelines"].data for y in (t.y or ())}
    assert lanes == {"Reference (model)", "You"}
    (attempt,) = Teaching(library).attempts("Trainee A")
    assert attempt.mean_abs_error_s == 1.0 and attempt.reference_source == "model"
    assert "Attempts of Trainee A" in texts(at)


def test_the_educator_reference_is_used_and_said(library, add_case):
    case_id = add_case()
    Teaching(library).save_reference(case_id, [{"start_s": 0, "end_s": 3, "label": "Preparation"},
                                               {"start_s": 3, "end_s": 6, "label": "CalotTriangleDissection"}])
    at = open_page("study", **{f"study_seed_{case_id}": [(0.0, "Preparation"), (3.0, "CalotTriangleDissection")],
                               f"study_tool_seed_{case_id}": [(1.0, ["Grasper"])]})
    assert "the educator's corrected phase labels" in texts(at)
    at.text_input(key="study_trainee").set_value("Trainee A")
    at.button(key="study_submit").click().run()
    shown = texts(at)
    assert "Mean timing error 0.0 s" in shown and "Mean segment Jaccard 1.00" in shown
    assert "Instrument F1 1.00" in shown
    assert "Reference (educator)" in {y for t in figures(at)["study_timelines"].data for y in (t.y or ())}


def test_a_name_is_required(library, add_case):
    add_case()
    at = open_page("study")
    at.button(key="study_submit").click().run()
    assert "trainee name is empty" in at.error[0].value


def test_transitions_added_one_by_one(library, add_case):
    add_case()
    at = open_page("study")
    at.text_input(key="study_add_at").set_value("0:03")
    at.selectbox(key="study_add_phase").set_value("Calot triangle dissection")
    at.button(key="study_add").click().run()
    assert not at.exception, at.exception
    at.text_input(key="study_trainee").set_value("Trainee B")
    at.button(key="study_submit").click().run()
    assert "Mean timing error 1.0 s" in texts(at)
    (attempt,) = Teaching(library).attempts("Trainee B")
    assert attempt.marks == ((0.0, "Preparation"), (3.0, "CalotTriangleDissection"))


def test_a_teaching_set_narrows_the_cases(library, add_case):
    first, second = add_case(), add_case()
    library.update_metadata(second, title="Set case")
    collection = library.create_collection("Calot basics")
    library.add_to_collection(collection.id, second)
    at = open_page("study")
    assert at.selectbox(key="study_case").value == first
    at.selectbox(key="study_case_set").set_value(collection.id).run()
    assert at.selectbox(key="study_case").options == ["Set case"]
    assert at.selectbox(key="study_case").value == second


def test_a_case_without_phases(library, add_case):
    from tests.app.conftest import write_case

    add_case(analyze=lambda video, out, config, progress: write_case(out, video, phases=[]))
    at = open_page("study")
    assert "no phase timeline to compare with" in at.warning[0].value


def test_next_case_of_the_teaching_set_after_an_attempt(library, add_case):
    first, second = add_case(), add_case()
    collection = library.create_collection("Calot basics")
    library.add_to_collection(collection.id, first)
    library.add_to_collection(collection.id, second)
    at = open_page("study")
    at.selectbox(key="study_case_set").set_value(collection.id).run()
    at.text_input(key="study_trainee").set_value("Trainee A")
    at.button(key="study_submit").click().run()
    at.button(key="study_next").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="study_case").value == second
    assert "Your score" not in texts(at)
