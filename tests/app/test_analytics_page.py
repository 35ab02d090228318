"""The Analytics page in AppTest: an empty library, and cases against the library's distribution."""
import pytest

from tests.app.conftest import figures, open_page, texts, write_case


def test_empty_library(library):
    at = open_page("analytics")
    assert "No analysed case yet" in at.info[0].value


def test_distributions_with_the_selected_case_highlighted(library, add_case):
    first, second = add_case(), add_case()
    add_case(analyse=False)  # not analysed: not counted
    library.update_metadata(first, title="Teaching case A")
    at = open_page("analytics", case_id=first)
    shown = texts(at)
    assert "Analysed cases 2" in shown and "Video analysed 0:12" in shown
    assert at.selectbox[0].value == first
    charts = figures(at)
    phases = charts["analytics_phases"]
    highlight = [t for t in phases.data if t.type == "scatter"]
    assert highlight[0].name == "Teaching case A"
    assert {t.name for t in phases.data if t.type == "box"} == {"Preparation", "Calot triangle dissection"}
    assert {"analytics_tools", "analytics_motion"} <= set(charts)
    (table,) = at.dataframe
    assert table.value["case_id"].tolist() == [first, second]
    assert table.value["Preparation"].tolist() == [2.0, 2.0]


def test_other_metric_and_share_of_the_case(library, add_case):
    add_case()
    at = open_page("analytics")
    at.selectbox(key="analytics_metric").set_value("idle_fraction").run()
    at.radio(key="analytics_phase_unit").set_value("share").run()
    assert not at.exception
    charts = figures(at)
    assert charts["analytics_motion"].layout.xaxis.title.text == "idle fraction"
    shares = [x for t in charts["analytics_phases"].data if t.type == "box" for x in t.x]
    assert sorted(shares) == pytest.approx([2 / 6, 4 / 6])


def test_cases_without_phases_say_so_instead_of_an_empty_chart(library, add_case):
    add_case(analyze=lambda video, out, config, progress: write_case(out, video, phases=[]))
    at = open_page("analytics")
    assert "No case has phase recognition yet." in texts(at)
    assert "analytics_phases" not in figures(at) and "analytics_tools" in figures(at)


def test_phases_in_surgical_order_and_no_none_cells(library, add_case):
    late_first = [(0.0, 3.0, "GallbladderDissection"), (3.0, 6.0, "Preparation")]
    add_case(analyze=lambda video, out, config, progress: write_case(out, video, phases=late_first))
    add_case()
    at = open_page("analytics")
    boxes = [t.name for t in figures(at)["analytics_phases"].data if t.type == "box"]
    assert boxes == ["Preparation", "Calot triangle dissection", "Gallbladder dissection"]
    (table,) = at.dataframe
    phase_columns = [c for c in table.value.columns if c in boxes]
    assert phase_columns == boxes
    assert not table.value.isna().any().any()
    assert table.value["Calot triangle dissection"].tolist() == [0.0, 4.0]
    assert "None" not in table.value.astype(str).to_numpy()


def test_study_progress_of_a_trainee(library, add_case):
    from library.teaching import Teaching

    case_id = add_case()
    teaching = Teaching(library)
    teaching.submit_attempt(case_id, "Trainee A", [(0, "Preparation"), (4, "CalotTriangleDissection")])
    teaching.submit_attempt(case_id, "Trainee A", [(0, "Preparation"), (2, "CalotTriangleDissection")])
    at = open_page("analytics")
    assert at.selectbox(key="analytics_trainee").value == "Trainee A"
    jaccard, error = figures(at)["analytics_study"].data
    assert list(error.y) == [2.0, 0.0] and jaccard.y[-1] == 1.0
