"""An educator's corrections and assessment end to end in Debian's Chromium, on the shared clip (its analysis written
by the AppTest fake, so no model runs): (a) a phase boundary moved and saved, the Cholec80 download holding it; one
instrument box of a frame marked wrong and saved, the corrections zip's YOLO and COCO boxes holding that; (b) an
OSATS form saved and downloaded as CSV with its scores.

Skips like tests/browser/test_dashboard.py when the browser or ../shared/data is absent. Screenshots: runs/browser/.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.browser.conftest import _full_page, _no_exception, _offline_and_clean, fake_analysis, open_app, serving_case

pytestmark = pytest.mark.browser
ROW_H = 35  # Streamlit's data editor: header and rows 35 px high


@pytest.fixture(scope="module")
def correction_server(tmp_path_factory, playwright_api):
    """`surglens serve` over a library holding the shared clip, analysed by the fake; yields (url, log, case id)."""
    with serving_case(tmp_path_factory.mktemp("correction-library"), "Correction clip", analyze=fake_analysis()) as served:
        yield served


def _open(browser, url: str, page_name: str):
    return open_app(browser, url, page_name, height=1100, accept_downloads=True)


def _select_cell(page, editor, row: int, x: int = 80) -> None:
    """Select a cell of a data editor's first column by clicking it (`row` 0 is the first data row)."""
    editor.scroll_into_view_if_needed()
    editor.click(position={"x": x, "y": ROW_H + row * ROW_H + ROW_H // 2})
    page.wait_for_timeout(300)


def _idle(page) -> None:
    """Wait until the app's script run triggered by the last action has finished (on busy CPUs it takes a while)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def _type_in_cell(page, text: str) -> None:
    """Replace the selected cell's text: Enter opens its editor, the old text is selected and typed over."""
    page.keyboard.press("Enter")
    page.wait_for_timeout(400)
    page.keyboard.press("Control+A")
    page.keyboard.type(text, delay=50)
    page.keyboard.press("Enter")
    _idle(page)


def _download(page, button) -> bytes:
    _idle(page)
    with page.expect_download() as info:
        button.click()
    return Path(info.value.path()).read_bytes()


def test_an_educator_corrects_a_segment_and_a_box(correction_server, browser):
    url, log, case_id = correction_server
    page, seen = _open(browser, url, "Corrections")
    page.get_by_text("Not corrected yet").wait_for()
    page.locator("video").first.wait_for()

    # Move the Preparation -> Calot boundary from 0:10 to 0:20: the second row's time, typed in its cell.
    timeline = page.locator(f".st-key-correct_rows_{case_id}_model")
    _select_cell(page, timeline, 1)
    _type_in_cell(page, "0:20")
    page.locator(".st-key-correct_timelines").get_by_text("Your edit (not saved)").wait_for()
    _no_exception(page)
    author = page.locator('input[aria-label="Educator (optional, a display name)"]')
    author.fill("Educator E")
    author.press("Enter")
    _idle(page)
    _idle(page)
    page.locator(".st-key-correct_save button").click()
    page.get_by_text("Corrected by Educator E").wait_for()
    _no_exception(page)
    lines = _download(page, page.locator(".st-key-correct_export button:visible")).decode().splitlines()
    assert lines[0] == "Frame\tPhase" and len(lines) == 1 + 800  # the clip's 800 frames at 25 fps
    assert lines[1 + 250] == "250\tPreparation"  # 0:10, Calot in the model's output, Preparation now
    assert lines[1 + 499] == "499\tPreparation" and lines[1 + 500] == "500\tCalotTriangleDissection"

    # The frame at 0:03 has the model's Grasper and Clipper: the Clipper is marked wrong and the frame saved.
    frame_at = page.locator('input[aria-label="Frame at (s)"]')
    frame_at.fill("3")
    frame_at.press("Enter")
    _idle(page)
    page.get_by_text("Frame 75 at 0:03: the model's 2 boxes").wait_for()
    boxes = page.locator(f".st-key-correct_boxes_{case_id}_75_model")
    _select_cell(page, boxes, 1, x=40)
    for _ in range(5):  # instrument, x1, y1, x2, y2 -> wrong
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    _idle(page)
    figure = page.locator(".st-key-correct_frame_boxes")
    figure.get_by_text("1 marked wrong (dashed)").wait_for()
    _no_exception(page)
    _full_page(page, "correction-boxes.png")
    _idle(page)
    page.locator(".st-key-correct_boxes_save button").click()
    page.get_by_text("boxes corrected by Educator E").wait_for()
    _no_exception(page)

    archive = zipfile.ZipFile(io.BytesIO(_download(page, page.locator(".st-key-correct_export_all button:visible"))))
    stem = f"video{1000 + case_id}"
    names = set(archive.namelist())
    assert {f"corrections/yolo/images/{stem}_000075.jpg", f"corrections/coco/images/{stem}_000075.jpg",
            f"corrections/phase_annotations/{stem}-phase.txt", "corrections/yolo/data.yaml"} <= names
    label = archive.read(f"corrections/yolo/labels/{stem}_000075.txt").decode().split()
    assert label[0] == "0" and len(label) == 5  # the Grasper only (class 0); the Clipper is gone
    coco = json.loads(archive.read("corrections/coco/annotations/instances.json"))
    assert [a["category_id"] for a in coco["annotations"]] == [1]
    assert coco["images"][0]["width"] == 854 and coco["images"][0]["timestamp_s"] == 3.0
    phases = archive.read(f"corrections/phase_annotations/{stem}-phase.txt").decode().splitlines()
    assert phases[1 + 250] == "250\tPreparation"
    _offline_and_clean(seen)


def test_an_osats_form_saved_and_exported(correction_server, browser):
    url, log, case_id = correction_server
    page, seen = _open(browser, url, "Assessment")
    operator = page.locator('input[aria-label="Operator (a display name)"]')
    operator.fill("Trainee B")
    page.locator('input[aria-label="Assessor (optional)"]').fill("Educator E")
    chosen = [5, 4, 3, 2, 1, 4, 5]
    for i, score in enumerate(chosen):
        page.locator(f".st-key-assess_OSATS_{i}").get_by_text(str(score), exact=True).click()
    _idle(page)
    page.locator('[data-testid="stFormSubmitButton"] button').click()
    page.get_by_text("OSATS saved: 24 of 35.").wait_for()
    _no_exception(page)
    text = _download(page, page.locator(".st-key-assess_csv_case button")).decode()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    from library.teaching import OSATS_ITEMS

    assert [int(row[item]) for item in OSATS_ITEMS] == chosen
    assert (row["form"], row["trainee"], row["assessor"], row["total"], row["max_total"]) == (
        "OSATS", "Trainee B", "Educator E", "24", "35")
    _full_page(page, "assessment-osats.png")
    _offline_and_clean(seen)
