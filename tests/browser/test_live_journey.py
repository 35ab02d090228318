"""The Live page in Debian's Chromium: a shared clip played at its real rate with boxes, track ids and the causal
phase, then kept as a case (issue 18's check).

Skips like tests/browser/test_dashboard.py when the browser or ../shared/data is absent. Screenshot: runs/browser/.
"""
from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import SHOTS, _no_exception, _offline_and_clean, open_app, serving

pytestmark = pytest.mark.browser
SECONDS = 8


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, playwright_api):
    with serving(tmp_path_factory.mktemp("live-library")) as (url, log):
        yield url, log


def test_live_page_plays_a_clip_at_its_rate_with_boxes_and_phase(live_server, browser, clip):
    url, log = live_server
    page, seen = open_app(browser, url, "Live", timeout_ms=120_000)
    page.get_by_text("File on this machine").click()
    path = page.locator('input[aria-label="Full path of the video file"]')
    path.fill(str(clip))
    path.press("Enter")
    limit = page.locator('input[aria-label^="Stop after"]')
    limit.fill(str(SECONDS))
    limit.press("Enter")
    page.wait_for_timeout(1000)
    started = time.monotonic()
    page.get_by_role("button", name="Start").click()

    # Frames with their time arrive while the clip plays; the phase metric and the processed rate show.
    page.locator('[data-testid="stImage"]').first.wait_for()
    page.get_by_text(re.compile(r"Analysed [0-9.]+ of 25 fps")).first.wait_for()
    phase = page.locator('[data-testid="stMetric"]', has_text="Phase")
    phase.wait_for()
    assert phase.inner_text().strip() != "Phase\n–"
    page.screenshot(path=str(SHOTS / "live_page.png"))

    # At --seconds the session stops by itself and is kept as a library case.
    page.get_by_role("button", name=re.compile(r"^Open .* in Case review")).wait_for()
    elapsed = time.monotonic() - started
    assert elapsed >= SECONDS * 0.9, f"played {SECONDS} s of video in {elapsed:.1f} s: faster than real time"
    _no_exception(page)
    _offline_and_clean(seen)
