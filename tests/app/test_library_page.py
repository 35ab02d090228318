"""The Library page in AppTest: upload, re-upload, bad files, queue, failures, search, teaching sets."""

import pytest

from library.export import export_file_name
from tests.app.conftest import make_video, open_page, texts


def upload(at, name: str, data: bytes, *more: tuple[str, bytes]):
    at.file_uploader[0].set_value([(n, d, "video/mp4") for n, d in ((name, data), *more)])
    at.run()
    assert not at.exception, at.exception
    return at


def test_empty_library(library):
    at = open_page("library")
    assert at.title[0].value == "Case library"
    assert len(at.file_uploader) == 1
    assert "Upload a video above" in texts(at)


def test_upload_is_stored_probed_and_queued(library, tmp_path):
    data = make_video(tmp_path / "Patient_Smith_2024.mp4").read_bytes()
    at = upload(open_page("library"), "Patient_Smith_2024.mp4", data)
    (case,) = library.list_cases()
    assert case.status == "queued"
    shown = texts(at)
    assert f"{case.title} stored and queued for analysis" in shown
    assert "Duration 0:06" in shown and "Picture 96×64" in shown and "Frame rate 10 fps" in shown
    assert "waiting for the analysis worker" in at.progress[0].proto.text  # the queue's progress bar
    assert "Patient_Smith" not in repr(at)  # the original file name is never shown
    assert not at.file_uploader[0].value  # emptied: a rerun does not ingest again
    at.run()
    assert len(library.list_cases()) == 1


def test_several_videos_at_once_queue_and_a_bad_one_is_named_by_position(library, tmp_path):
    first = make_video(tmp_path / "a.mp4", seed=1).read_bytes()
    second = make_video(tmp_path / "b.mp4", seed=2).read_bytes()
    at = upload(open_page("library"), "a.mp4", first, ("b.mp4", second), ("notes.mp4", b"garbage"))
    cases = library.list_cases(order="oldest")
    assert [c.status for c in cases] == ["queued", "queued"]
    assert [p.proto.text.split(":")[0] for p in at.progress] == [c.title for c in cases]  # both in the queue
    assert at.error[0].value.startswith("Upload rejected: video 3 of 3: not a readable video")
    assert "notes.mp4" not in at.error[0].value


def test_same_file_again_opens_the_existing_case(library, tmp_path):
    data = make_video(tmp_path / "v.mp4").read_bytes()
    at = upload(open_page("library"), "first.mp4", data)
    at = upload(at, "renamed copy.mp4", data)
    (case,) = library.list_cases()
    assert at.session_state["case_id"] == case.id
    assert at.title[0].value == case.title  # now on Case review
    assert f"already in the library as {case.title}" in texts(at)


def test_bad_file_is_rejected_and_nothing_is_written(library):
    at = upload(open_page("library"), "clip.mp4", b"this is not a video at all")
    assert "Upload rejected: not a readable video" in at.error[0].value
    assert library.list_cases() == []
    data_dir = library.settings.data_dir
    assert not any((data_dir / "videos").iterdir()) and not any((data_dir / "tmp").iterdir())


def test_failed_case_shows_its_reason_and_can_be_retried(library, add_case):
    def broken(video_path, out_dir, config, progress):
        raise RuntimeError("decoder gave up at 0:03")

    case_id = add_case(analyze=broken)
    at = open_page("library")
    assert "analysis failed. RuntimeError: decoder gave up at 0:03" in at.error[0].value
    at.button(key=f"retry_{case_id}").click().run()
    assert not at.exception
    assert library.get_case(case_id).status == "queued"
    assert not at.error


def test_search_filters_and_open(library, add_case):
    first, second = add_case(), add_case()
    library.add_tag(second, "bleeding")
    library.update_metadata(first, procedure="cholecystectomy", surgeon_id="S03")
    at = open_page("library")
    assert "2 case(s)" in texts(at)
    assert "Phases: Preparation, Calot triangle dissection" in texts(at)
    at.text_input(key="filter_text").input("bleeding").run()
    assert "1 case(s)" in texts(at) and f"Case {second}" in texts(at)
    at.text_input(key="filter_text").input("").run()
    at.multiselect(key="filter_tools").set_value(["Clipper"]).run()
    assert "2 case(s)" in texts(at)
    at.text_input(key="filter_text").input("S03").run()
    assert "1 case(s)" in texts(at) and "surgeon S03" in texts(at)
    at.text_input(key="filter_text").input("no such words").run()
    assert "No case matches these filters." in texts(at)
    at.text_input(key="filter_text").input("").run()
    at.button(key=f"open_list_{first}").click().run()
    assert not at.exception
    assert at.session_state["case_id"] == first and at.title[0].value == f"Case {first}"


def test_teaching_sets_are_created_filled_and_ordered(library, add_case):
    first, second = add_case(), add_case()
    at = open_page("library")
    next(t for t in at.text_input if t.label == "Name").input("Calot anatomy")
    at.form_submit_button[0].click().run()
    assert not at.exception
    (collection,) = library.list_collections()
    assert collection.name == "Calot anatomy"
    library.add_to_collection(collection.id, first)
    library.add_to_collection(collection.id, second)
    at.run()
    assert "1." in texts(at) and "2." in texts(at)
    at.button(key=f"down_{collection.id}_{first}").click().run()
    assert library.get_collection(collection.id).case_ids == (second, first)
    at.button(key=f"remove_{collection.id}_{second}").click().run()
    assert library.get_collection(collection.id).case_ids == (first,)
    assert any("Export teaching set" in b.label for b in at.download_button)


def test_upload_limit_comes_from_the_settings(library, monkeypatch):
    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "5")
    at = open_page("library")
    assert at.file_uploader[0].proto.max_upload_size_mb == 5
    assert "up to 5 MB" in at.file_uploader[0].label


def test_upload_limit_is_the_servers_when_that_is_smaller(library, monkeypatch):
    from streamlit import config

    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "2048")
    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 200)  # a bare `streamlit run` outside the repository
    try:
        at = open_page("library")
    finally:
        config.set_option("server.maxUploadSize", before)
    assert at.file_uploader[0].proto.max_upload_size_mb == 200 and "up to 200 MB" in at.file_uploader[0].label


def test_uploader_takes_any_file_name(library):
    at = open_page("library")
    assert list(at.file_uploader[0].proto.type) == []  # the content decides, not the extension
    assert ".ts" not in at.file_uploader[0].label and "ts, m2ts" in at.file_uploader[0].label


def test_unreadable_settings_give_an_error_not_a_traceback(library, monkeypatch):
    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "lots")
    at = open_page("library")
    assert "The case library cannot be opened: SURGLENS_MAX_UPLOAD_MB must be a number" in at.error[0].value


def test_a_name_given_at_upload_and_the_banner_goes_when_the_case_is_done(library, tmp_path):
    from library.worker import Worker
    from tests.app.conftest import fake_analyze

    data = make_video(tmp_path / "v.mp4").read_bytes()
    at = open_page("library")
    at.text_input(key="upload_title_0").input("Difficult Calot triangle")
    at = upload(at, "Patient_Smith.mp4", data)
    (case,) = library.list_cases()
    assert case.title == "Difficult Calot triangle"
    assert "Difficult Calot triangle stored and queued for analysis" in texts(at)
    assert "Codec h264" in texts(at) and "File size" in texts(at)  # one short value per box
    assert at.text_input(key="upload_title_1").value == ""  # the next upload starts unnamed
    Worker(library, analyze=fake_analyze, poll_s=0.01).run(once=True)
    at.run()
    assert "stored and queued" not in texts(at)


def test_search_finds_instruments_and_phases_found(library, add_case):
    found = add_case()
    add_case(analyse=False)
    at = open_page("library")
    for words in ("clipper", "calot triangle", "Preparation"):
        at.text_input(key="filter_text").input(words).run()
        assert "1 case(s)" in texts(at) and f"Case {found}" in texts(at), words


def test_deleting_a_case_asks_first_and_removes_its_files(library, add_case):
    case_id = add_case()
    video, results = library.get_case(case_id).video_path, library.case_dir(case_id)
    at = open_page("library")
    assert "Delete **Case" in texts(at)  # the confirmation, behind the delete icon
    assert library.get_case(case_id)
    at.button(key=f"delete_case_{case_id}").click().run()
    assert not at.exception
    assert library.list_cases() == [] and not video.exists() and not results.exists()
    assert f"Case {case_id} was deleted." in texts(at)


def test_teaching_set_export_name_open_inside_the_set_and_confirmed_deletion(library, add_case):
    first = add_case()
    collection = library.create_collection("Calot anatomy: 2025")
    library.add_to_collection(collection.id, first)
    at = open_page("library")
    (export,) = [b for b in at.download_button if "Export teaching set" in b.label]
    assert export.label == "Export teaching set (zip)"
    assert export_file_name(collection.name, "teaching-set") == "calot-anatomy-2025.zip"  # the name the button uses
    assert export_file_name("???", "teaching-set") == "teaching-set.zip"
    assert "Its 1 case(s) stay in the library" in texts(at)
    at.button(key=f"open_set{collection.id}_{first}").click().run()
    assert not at.exception
    assert at.title[0].value == f"Case {first}" and "Teaching set **Calot anatomy: 2025** · case 1 of 1" in texts(at)
    at = open_page("library")
    at.button(key=f"delete_set_{collection.id}").click().run()
    assert library.list_collections() == [] and library.get_case(first)


def test_the_ordinary_uploader_is_capped_and_points_large_recordings_elsewhere(library, monkeypatch):
    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "2048")
    at = open_page("library")
    uploader = at.file_uploader[0]
    assert uploader.proto.max_upload_size_mb == 200  # Streamlit holds an upload in memory: ordinary files only
    assert "up to 200 MB each; larger recordings: the large-recording uploader below, or import" in uploader.label


def test_ingested_uploads_leave_streamlits_memory(library, tmp_path, monkeypatch):
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    removed = []
    remove_file = MemoryUploadedFileManager.remove_file

    def recording(self, session_id, file_id):
        removed.append(file_id)
        remove_file(self, session_id, file_id)

    monkeypatch.setattr(MemoryUploadedFileManager, "remove_file", recording)
    data = make_video(tmp_path / "v.mp4").read_bytes()
    upload(open_page("library"), "a.mp4", data, ("notes.mp4", b"garbage"))
    assert len(removed) == 2 and len(set(removed)) == 2  # the stored one and the refused one
    assert len(library.list_cases()) == 1


def test_without_the_route_the_large_uploader_points_to_serve_and_the_import(library):
    at = open_page("library")
    assert not at.get("iframe")
    (note,) = [i.value for i in at.info if "Large" in i.value or "surglens serve" in i.value]
    assert "needs `surglens serve`" in note and "Import a video file from this machine" in note
    assert any("Import a video file from this machine" in e.proto.label for e in at.expander)


@pytest.fixture
def upload_route(library, monkeypatch):
    """The large-recording route as `surglens serve` mounts it (the pages see ROUTES_ACTIVE)."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from app import video_links

    monkeypatch.setattr(video_links, "ROUTES_ACTIVE", True)
    from app import server

    client = TestClient(Starlette(routes=server.routes()))

    def put(at, data: bytes, name: str = "Patient_Smith.mp4", n: int = 1, of: int = 1) -> str:
        reply = client.put(f"/surglens/upload/{at.session_state['upload_token']}",
                           params={"name": name, "n": n, "of": of}, content=data)
        assert reply.status_code == 200 and reply.json()["ok"], reply.text
        return reply.json()["staged"]

    return put


def _tmp_files(library) -> list:
    return [p for p in (library.settings.data_dir / "tmp").rglob("*") if p.is_file()]


def test_a_large_recording_streamed_to_disk_is_stored_and_queued(library, upload_route, tmp_path):
    at = open_page("library")
    (frame,) = at.get("iframe")
    assert f"/surglens/upload/{at.session_state['upload_token']}" in frame.proto.srcdoc
    assert "Large recording** (up to 2048 MB each" in texts(at)
    at.text_input(key="upload_title_0").input("Long case")
    data = make_video(tmp_path / "v.mp4").read_bytes()
    upload_route(at, data)
    at.run()
    assert not at.exception, at.exception
    (case,) = library.list_cases()
    assert case.title == "Long case" and case.status == "queued"
    shown = texts(at)
    assert "Long case stored and queued for analysis" in shown and "Duration 0:06" in shown
    assert "Patient_Smith" not in repr(at)
    assert _tmp_files(library) == []  # the staged file was deleted once ingested
    assert at.text_input(key="upload_title_1").value == ""  # the next upload starts unnamed
    frame_again = at.get("iframe")[0]
    assert frame_again.proto.srcdoc == frame.proto.srcdoc  # the same frame: an upload in it goes on

    upload_route(at, data, name="copy.MOV")  # the same recording again
    at.run()
    assert "Already in the library as Long case" in texts(at) and len(library.list_cases()) == 1
    assert at.title[0].value == "Case library"  # stays on the page (other uploads may be running in the frame)

    upload_route(at, b"not a video at all")
    at.run()
    assert at.error[0].value.startswith("Upload rejected: not a readable video")
    assert _tmp_files(library) == [] and len(library.list_cases()) == 1


def test_large_recordings_chosen_together_are_numbered(library, upload_route, tmp_path):
    at = open_page("library")
    at.text_input(key="upload_title_0").input("Teaching")
    upload_route(at, make_video(tmp_path / "a.mp4", seed=1).read_bytes(), n=1, of=3)
    at.run()
    assert "Teaching 1 stored and queued" in texts(at)
    assert at.text_input(key="upload_title_0").value == "Teaching"  # kept for the others of the three
    upload_route(at, make_video(tmp_path / "b.mp4", seed=2).read_bytes(), n=2, of=3)
    upload_route(at, b"garbage", n=3, of=3)
    at.run()
    assert [c.title for c in library.list_cases(order="oldest")] == ["Teaching 1", "Teaching 2"]
    shown = texts(at)
    assert "Teaching 1 stored and queued" in shown and "Teaching 2 stored and queued" in shown
    assert at.error[0].value.startswith("Upload rejected: video 3 of 3: not a readable video")
