"""The Live page in AppTest: the idle source choice, and a run on a tiny file with stub models kept as a case."""
from __future__ import annotations

from pathlib import Path

import pytest

import analysis.live
from tests.analysis.live_stubs import StubDetector, StubPhaseModel
from tests.app.conftest import make_video, open_page, texts


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch):
    detector = StubDetector()
    monkeypatch.setattr(analysis.live, "load_live_detector", lambda imgsz=320: detector)
    monkeypatch.setattr(analysis.live, "load_live_phase_model", lambda ref=None: StubPhaseModel())
    return detector


def test_idle_page_offers_the_sources(library, add_case):
    add_case(analyse=False)
    at = open_page("live")
    assert at.title[0].value == "Live"
    assert at.radio(key="live_kind").options == ["Library video", "File on this machine", "Camera", "Stream URL"]
    assert at.selectbox(key="live_case").value is not None  # a library video is ready to play
    assert not at.button(key="live_start").disabled
    at.radio(key="live_kind").set_value("Stream URL").run()
    assert at.button(key="live_start").disabled  # nothing typed: nothing opened
    assert not at.get("imgs")


def test_bad_path_is_an_error_and_nothing_starts(library, stubs):
    at = open_page("live")
    at.radio(key="live_kind").set_value("File on this machine").run()
    at.text_input(key="live_path").input("/no/such/recording.mp4").run()
    at.button(key="live_start").click().run()
    assert not at.exception
    assert "no such video file" in at.error[0].value
    assert at.session_state["live_session"] is None


def test_run_on_a_file_is_kept_as_a_queued_case(library, stubs, tmp_path: Path):
    clip = make_video(tmp_path / "theatre.mp4", seconds=3, fps=10)
    at = open_page("live")
    at.radio(key="live_kind").set_value("File on this machine").run()
    at.text_input(key="live_path").input(str(clip)).run()
    at.button(key="live_start").click().run(timeout=60)  # plays the 3 s at real rate, then keeps it
    assert not at.exception, at.exception
    assert at.session_state["live_session"] is None
    kept = at.session_state["live_kept"]
    assert kept.get("case_id"), kept
    assert kept["stats"]["frames_read"] == 30 and kept["seconds"] == 3
    assert stubs.calls >= 20  # the warm-up plus (nearly) every frame at 10 fps
    assert "Kept as Live session" in texts(at)
    case = library.get_case(kept["case_id"])
    assert case.status == "queued" and case.title.startswith("Live session")
    assert at.button(key="live_open_case").label.startswith("Open Live session")
