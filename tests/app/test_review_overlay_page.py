"""Case review's player overlay in AppTest: the boxes' JSON sent to the component, the toggle, the phase strip."""
import json

import pytest

from analysis.review_overlay import boxes_at
from tests.app.conftest import open_page


def overlay_data(at) -> dict:
    """The data of the page's player overlay component (components v2)."""
    (element,) = [e for e in at.get("bidi_component") if "player_overlay" in e.proto.component_name]
    return json.loads(element.proto.json)


def test_boxes_of_the_stored_detections_go_to_the_player(library, add_case):
    at = open_page("case_review", case_id=add_case())
    assert at.toggle(key="overlay_boxes").value is True
    data = overlay_data(at)
    assert data["on"] is True
    assert [t["id"] for t in data["tracks"]] == [1, 2]  # the fake's grasper and clipper tracks, at 1 fps
    assert [p["name"] for p in data["phases"]] == ["Preparation", "Calot triangle dissection"]
    (grasper,) = boxes_at(data, 1.5)  # between two analysed frames: moved halfway
    assert grasper[0] * 96 == pytest.approx(10 + 8 * 1.5, abs=0.05)


def test_boxes_can_be_switched_off_the_strip_stays(library, add_case):
    at = open_page("case_review", case_id=add_case())
    at.toggle(key="overlay_boxes").set_value(False).run()
    assert not at.exception, at.exception
    data = overlay_data(at)
    assert data["on"] is False and data["tracks"] == [] and len(data["phases"]) == 2


def test_the_annotated_video_has_its_own_boxes(library, add_case):
    at = open_page("case_review", case_id=add_case())
    at.session_state["video_source"] = "Annotated"
    at.run()
    assert at.toggle(key="overlay_boxes").disabled
    assert overlay_data(at)["on"] is False
