"""The Library page's large-recording uploader in Debian's Chromium: real clips streamed to disk through the
signed upload route (app/upload_links.py), ingested by the page and shown as stored and queued.

Two clips are chosen together; the page reruns as each is ingested and its queue changes, and the uploader's
frame must never be reloaded by that (an upload in it would stop). Skips like tests/browser/test_dashboard.py when the browser or
../shared/data is absent. Screenshot: runs/browser/large_upload.png.
"""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import SHOTS, _no_exception, _offline_and_clean, open_app, serving

pytestmark = pytest.mark.browser
FRAME = 'iframe[title="Large-recording uploader"]'


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory, playwright_api):
    data = tmp_path_factory.mktemp("large-upload-library")
    with serving(data) as (url, log):
        yield url, log, data


def test_clips_through_the_large_recording_uploader_are_stored_and_queued(upload_server, browser, cholec_clips):
    if len(cholec_clips) < 2:
        pytest.skip("real data not available: two clips in ../shared/data/cholec-clips")
    clips = cholec_clips[:2]
    url, log, data = upload_server
    page, seen = open_app(browser, url, timeout_ms=120_000)
    page.get_by_text("Large recording").first.wait_for()
    frame = page.frame_locator(FRAME)
    frame.locator('input[type="file"]').wait_for()
    document = page.locator(FRAME).element_handle().content_frame()
    document.evaluate("() => { window.surglensKept = true; }")  # gone if the page's reruns reload the frame
    frame.locator('input[type="file"]').set_input_files([str(c) for c in clips])
    frame.get_by_text(re.compile("^Received")).nth(1).wait_for()  # both files reached the server's disk
    banners = page.locator('[data-testid="stAlert"]', has_text=re.compile("stored and queued for analysis"))
    try:
        page.wait_for_function("n => [...document.querySelectorAll('[data-testid=\"stAlert\"]')]"
                               ".filter(a => a.innerText.includes('stored and queued for analysis')).length >= n",
                               arg=2, timeout=120_000)
    except Exception:
        pytest.fail(f"not both clips were stored: {banners.all_inner_texts()}\n--- serve log ---\n"
                    f"{log.read_text()[-3000:]}")
    assert frame.locator(".row.failed").count() == 0, frame.locator(".row.failed").all_inner_texts()
    assert document.evaluate("() => window.surglensKept === true"), "a rerun reloaded the uploader's frame"
    page.locator('[data-testid="stMetricValue"]', has_text="0:32").first.wait_for()  # the stored file's probe
    assert "VID" not in page.content()  # the file names stay in the browser's frame, never on the page
    left = [p for folder in ("incoming", "staged") for p in (data / "tmp" / folder).rglob("*") if p.is_file()]
    assert left == []  # no partial, and the staged files were deleted once ingested
    _no_exception(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "large_upload.png"))
    _offline_and_clean(seen)
