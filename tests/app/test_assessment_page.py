"""The Assessment page in AppTest: an OSATS form saved beside the motion metrics, exported, charted over time."""
import csv
import io

from library.teaching import GOALS_ITEMS, Teaching
from tests.app.conftest import figures, open_page, texts


def test_empty_library(library):
    at = open_page("assessment")
    assert "No analysed case yet" in at.info[0].value


def test_osats_saved_and_exported_beside_the_motion(library, add_case):
    case_id = add_case()
    at = open_page("assessment")
    motion = at.dataframe[0].value
    assert set(motion["tool"]) == {"Grasper", "Clipper"} and "idle_s" in motion
    assert len(at.radio) == 7  # the OSATS items
    at.text_input(key="assess_trainee").set_value("Trainee A")
    at.radio(key="assess_OSATS_0").set_value(5)
    at.button[0].click()  # the form's submit button
    at = at.run()
    assert not at.exception, at.exception
    assert "OSATS saved: 23 of 35." in texts(at)  # 5 + six items at the default 3
    (record,) = Teaching(library).assessments(case_id=case_id)
    assert (record.form, record.trainee, record.scores["Respect for tissue"]) == ("OSATS", "Trainee A", 5)
    rows = list(csv.DictReader(io.StringIO(Teaching(library).assessments_csv(case_id=case_id))))
    assert rows[0]["total"] == "23"
    case_table = next(d.value for d in at.dataframe if "form" in d.value)
    assert case_table["total"].tolist() == ["23/35"]
    assert at.selectbox(key="assess_who").value == "Trainee A"
    assert len(figures(at)["assess_progress"].data) == 1


def test_goals_form(library, add_case):
    case_id = add_case()
    Teaching(library).save_assessment(case_id, "GOALS", {i: 4 for i in GOALS_ITEMS}, trainee="T2")
    at = open_page("assessment")
    at.segmented_control(key="assess_form").set_value("GOALS").run()
    assert not at.exception
    assert len(at.radio) == 5 and at.radio[0].label == "Depth perception"
