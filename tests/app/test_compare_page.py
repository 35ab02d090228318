"""Side by side in AppTest: two cases' timelines, aligned by phase, and their motion per phase."""
from library.teaching import Teaching
from tests.app.conftest import figures, open_page, write_case


def test_needs_two_cases(library, add_case):
    add_case()
    assert "needs two analysed cases" in open_page("compare").info[0].value


def test_two_cases_aligned_by_phase(library, add_case):
    longer_prep = [(0.0, 4.0, "Preparation"), (4.0, 6.0, "CalotTriangleDissection")]
    first = add_case()
    second = add_case(analyze=lambda video, out, config, progress: write_case(out, video, phases=longer_prep))
    Teaching(library).save_reference(first, [{"start_s": 0, "end_s": 6, "label": "Preparation"}])
    at = open_page("compare")
    assert not at.exception
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (second, first)
    charts = figures(at)
    aligned = {(t.y[0][:1], t.name): (t.base[0], t.x[0]) for t in charts["compare_aligned"].data}
    # Preparation slot: 6 s (case 1's corrected reference), so Calot starts at 6 s.
    assert aligned[("A", "Calot triangle dissection")] == (6.0, 2.0)
    assert aligned[("B", "Preparation")] == (0.0, 6.0)
    assert {"compare_timelines", "compare_durations"} <= set(charts)
    per_phase = at.dataframe[0].value
    assert per_phase["phase"].tolist() == ["Preparation", "Calot triangle dissection"]
    assert per_phase["A time"].tolist() == ["0:04", "0:02"] and per_phase["B time"].tolist() == ["0:06", "0:00"]
    assert per_phase["A path (diagonals)"].notna().all()
    tools = at.dataframe[1].value
    assert set(tools["case"]) == {"A", "B"} and "idle_s" in tools


def test_the_same_case_twice(library, add_case):
    first = add_case()
    add_case()
    at = open_page("compare")
    at.selectbox(key="compare_b").set_value(at.selectbox(key="compare_a").value).run()
    assert "Choose two different cases." in at.warning[0].value
