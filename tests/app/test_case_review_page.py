"""The Case review page in AppTest: an analysed case, seeking, comments, clips, metadata, unfinished cases."""
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import MAIN, figures, open_page, texts, write_case


def open_tab(at, label: str):
    """Open one of the lazy section tabs ("Motion", "Annotated clip", "Case details", "Export")."""
    at.session_state["review_tab"] = label
    at.run()
    assert not at.exception, at.exception
    return at


def element(at, kind: str):
    """The page's elements of a proto kind ("video", "progress", ...)."""
    return list(at.get(kind))


def test_empty_library(library):
    at = open_page("case_review")
    assert "The library is empty" in at.info[0].value


def test_analysed_case_shows_player_timeline_motion_and_moments(library, add_case):
    case_id = add_case()
    at = open_page("case_review", case_id=case_id)
    assert at.title[0].value == f"Case {case_id}"
    (video,) = element(at, "video")
    assert video.proto.start_time == 0
    charts = figures(at)
    assert {"Preparation", "Calot triangle dissection", "key moments"} <= {t.name for t in charts["timeline"].data}
    assert {"trajectories", "heatmap", "phase_durations"} <= set(charts)
    assert [t.name for t in charts["trajectories"].data] == ["Grasper (1 track)", "Clipper (1 track)"]
    shown = texts(at)
    for moment in ("0:02  Preparation → Calot triangle dissection", "0:03  Clipper first seen",
                   "0:03  Clipper in use 0:03–0:05 (2 s)"):
        assert moment in shown
    tools, phases = at.dataframe
    assert tools.value["tool"].tolist() == ["Grasper", "Clipper"]
    assert set(phases.value["phase"]) == {"Preparation", "Calot triangle dissection"}
    assert not at.download_button  # lazy tabs: only the open one (Motion) is drawn
    open_tab(at, "Export")
    assert {b.label for b in at.download_button} == {"HTML report", "Case (zip: JSON, CSV, Cholec80 phases, clips, report)"}
    assert "trajectories" not in figures(at)
    assert "Patient_Smith" not in repr(at)  # the uploaded file's name is never shown


def test_a_key_moment_seeks_the_player(library, add_case):
    at = open_tab(open_page("case_review", case_id=add_case()), "Annotated clip")
    next(b for b in at.button if b.label.endswith("Clipper in use 0:03–0:05 (2 s)")).click().run()
    assert at.session_state["seek_s"] == 3.0
    assert element(at, "video")[0].proto.start_time == 3
    assert at.slider(key="clip_slider").value == (3.0, 5.0)  # a span also becomes the clip range
    assert figures(at)["timeline"].layout.shapes[0].x0 == 3.0  # the playhead moved


def test_case_from_the_url(library, add_case):
    first, second = add_case(), add_case()
    at = open_page("case_review")
    assert at.title[0].value == f"Case {second}"  # the newest analysed case by default
    at.query_params["case"] = str(first)
    at.run()
    assert at.title[0].value == f"Case {first}"


def comments_tab(at):
    at.session_state["side_tab"] = "Comments"
    at.run()
    assert not at.exception, at.exception
    return at


def test_motion_by_instrument_by_default_tracks_on_demand(library, add_case):
    at = open_page("case_review", case_id=add_case())
    assert at.toggle(key="motion_tracks").label == "Each track (2)"
    at.toggle(key="motion_tracks").set_value(True).run()
    paths = [t for t in figures(at)["trajectories"].data if t.mode == "lines+markers"]
    assert [t.name for t in paths] == ["Grasper", "Clipper"] and "Clipper #2" in paths[1].hovertemplate
    at.selectbox(key="heatmap_tool").set_value("Clipper").run()
    assert figures(at)["heatmap"].layout.title.text == "Where the Clipper was"
    assert figures(at)["heatmap"].layout.height == figures(at)["trajectories"].layout.height  # fixed sizes


def test_comment_at_the_current_time_shows_on_the_timeline(library, add_case):
    case_id = add_case()
    at = comments_tab(open_page("case_review", case_id=case_id, review_case=case_id, seek_s=4.0))
    assert at.text_input(key="comment_at").value == "0:04"  # the last jump
    at.text_area[0].input("Note the critical view of safety")
    at.radio[0].set_value("bookmark")
    at.form_submit_button[0].click().run()
    assert not at.exception
    (comment,) = library.list_comments(case_id)
    assert (comment.timestamp_s, comment.kind, comment.text) == (4.0, "bookmark", "Note the critical view of safety")
    bookmarks = next(t for t in figures(at)["timeline"].data if t.name == "bookmarks")
    assert list(bookmarks.x) == [4.0]
    assert "Bookmark added at 0:04." in texts(at)
    assert at.session_state["side_tab"] == "Comments (1)"  # the panel stays on the comments
    assert at.button(key=f"seek_comment_{comment.id}").label == "0:04"  # the full time
    at.button(key=f"seek_comment_{comment.id}").click().run()
    assert at.session_state["seek_s"] == 4.0
    at.button(key=f"delete_comment_{comment.id}").click().run()
    assert library.list_comments(case_id) == []


def test_a_typed_time_edits_and_answers(library, add_case):
    case_id = add_case()
    at = comments_tab(open_page("case_review", case_id=case_id))
    at.text_input(key="comment_at").input("0:05")
    at.text_area[0].input("Clip the artery")
    at.text_input[1].input("E01")
    at.form_submit_button[0].click().run()
    (comment,) = library.list_comments(case_id)
    assert (comment.timestamp_s, comment.author) == (5.0, "E01")
    assert at.button(key=f"seek_comment_{comment.id}").label == "0:05 · E01"
    at.text_area(key=f"edit_text_{comment.id}").input("Clip the cystic artery")
    at.text_input(key=f"edit_at_{comment.id}").input("0:03")
    at.button(key=f"edit_submit_{comment.id}").click().run()
    assert not at.exception and not at.error
    assert (library.list_comments(case_id)[0].text, library.list_comments(case_id)[0].timestamp_s) == (
        "Clip the cystic artery", 3.0)
    at.text_area(key=f"reply_text_{comment.id}").input("Why before the duct?")
    at.text_input(key=f"reply_author_{comment.id}").input("T04")
    at.button(key=f"reply_submit_{comment.id}").click().run()
    answer = library.list_comments(case_id)[1]
    assert (answer.parent_id, answer.timestamp_s, answer.author) == (comment.id, 3.0, "T04")
    assert "Why before the duct?" in texts(at) and at.session_state["side_tab"] == "Comments (1)"
    comments = next(t for t in figures(at)["timeline"].data if t.name == "comments")
    assert list(comments.x) == [3.0]  # one marker per thread


@pytest.mark.parametrize("typed, match", [("soon", "a time must look like"), ("1:75", "a time must look like"),
                                          ("9:00", "after the end of the video")])
def test_a_bad_time_is_refused(library, add_case, typed, match):
    case_id = add_case()
    at = comments_tab(open_page("case_review", case_id=case_id))
    at.text_input(key="comment_at").input(typed)
    at.text_area[0].input("x")
    at.form_submit_button[0].click().run()
    assert match in at.error[0].value and library.list_comments(case_id) == []


def test_empty_comment_is_refused(library, add_case):
    case_id = add_case()
    at = comments_tab(open_page("case_review", case_id=case_id))
    at.form_submit_button[0].click().run()
    assert "comment text is empty" in at.error[0].value
    assert library.list_comments(case_id) == []


def test_a_teaching_set_keeps_its_order_and_a_link_reopens_the_moment(library, add_case):
    first, second, other = add_case(), add_case(), add_case()
    collection = library.create_collection("Calot anatomy")
    library.add_to_collection(collection.id, first)
    library.add_to_collection(collection.id, second)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params.update({"case": str(first), "set": str(collection.id), "t": "4"})
    at.switch_page("views/case_review.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == f"Case {first}" and at.session_state["seek_s"] == 4.0  # the moment of the link
    assert "Teaching set **Calot anatomy** · case 1 of 2" in texts(at)
    assert at.button(key="set_previous").disabled
    (link,) = [c.value for c in at.code]
    assert link == f"case_review?case={first}&set={collection.id}&t=4"
    at.button(key="set_next").click().run()
    assert at.title[0].value == f"Case {second}" and at.session_state["seek_s"] == 0.0
    assert "case 2 of 2" in texts(at) and at.button(key="set_next").disabled
    at.selectbox(key="case_picker").set_value(other).run()  # outside the set: no set bar
    assert at.title[0].value == f"Case {other}" and "Teaching set" not in texts(at)


def test_annotated_clip_is_cut_shown_and_downloadable(library, add_case):
    case_id = add_case()
    at = open_tab(open_page("case_review", case_id=case_id), "Annotated clip")
    at.slider(key="clip_slider").set_value((1.0, 3.0)).run()
    next(b for b in at.button if b.label == "Make annotated clip").click().run()
    assert not at.exception and not at.error
    ((start, end, path),) = library.case_results(case_id).cached_clips()
    assert (start, end) == (1.0, 3.0)
    videos = element(at, "video")
    assert len(videos) == 2 and videos[1].proto.autoplay
    assert any(b.label == "Download this clip (H.264 mp4)" for b in at.download_button)


def test_metadata_and_tags_are_saved(library, add_case):
    case_id = add_case()
    at = open_tab(open_page("case_review", case_id=case_id), "Case details")
    fields = {t.label: t for t in at.text_input}
    fields["Procedure"].input("Laparoscopic cholecystectomy")
    fields["Surgeon (pseudonymous id, e.g. S03)"].input("S07")
    at.multiselect[-1].set_value(["teaching", "bleeding"])
    at.select_slider[0].set_value(4)
    next(b for b in at.form_submit_button if b.label == "Save").click().run()
    assert not at.exception and not at.error
    case = library.get_case(case_id)
    assert (case.procedure, case.surgeon_id, case.difficulty) == ("Laparoscopic cholecystectomy", "S07", 4)
    assert set(case.tags) == {"teaching", "bleeding"}


def test_a_real_name_as_surgeon_id_is_refused(library, add_case):
    case_id = add_case()
    at = open_tab(open_page("case_review", case_id=case_id), "Case details")
    next(t for t in at.text_input if t.label.startswith("Surgeon")).input("Dr Jane Smith")
    next(b for b in at.form_submit_button if b.label == "Save").click().run()
    assert "surgeon_id must be a pseudonym" in at.error[0].value
    assert library.get_case(case_id).surgeon_id is None


def test_queued_case_shows_its_progress(library, add_case):
    case_id = add_case(analyse=False)
    at = open_page("case_review", case_id=case_id)
    assert "being analysed in the background" in at.info[0].value
    assert "waiting for the analysis worker" in at.progress[0].proto.text
    assert not figures(at)


def test_failed_case_offers_a_new_analysis(library, add_case):
    def broken(video_path, out_dir, config, progress):
        raise ValueError("no frames decoded")

    case_id = add_case(analyze=broken)
    at = open_page("case_review", case_id=case_id)
    assert "ValueError: no frames decoded" in at.error[0].value
    next(b for b in at.button if b.label == "Analyse again").click().run()
    assert library.get_case(case_id).status == "queued"


def test_missing_results_give_an_error_not_a_traceback(library, add_case):
    case_id = add_case()
    (library.case_dir(case_id) / "case.json").unlink()
    at = open_page("case_review", case_id=case_id)
    assert "cannot be read" in at.error[0].value


def test_case_without_phase_recognition(library, add_case):
    case_id = add_case(analyze=lambda video, out, config, progress: write_case(out, video, phases=[]))
    at = open_page("case_review", case_id=case_id)
    assert at.title[0].value == f"Case {case_id}"
    assert "Needs phase recognition for this case." in texts(at)
