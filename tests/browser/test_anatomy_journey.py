"""Anatomy in Debian's Chromium: the shared Calot triangle clip analysed by the real pipeline (the shipped
anatomy model included), then Case review shows the CVS lane, the anatomy overlays in the annotated video
and the anatomy still of a moment with the not-for-clinical-use note.

Skips like tests/browser/test_dashboard.py when the browser, ../shared/data or the shipped anatomy model is
absent. Screenshots: runs/browser/.
"""
from __future__ import annotations

import time

import pytest

from models.registry import MODELS_DIR
from tests.browser.conftest import _full_page, _no_exception, _offline_and_clean, _playing, open_app, serving_case

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not (MODELS_DIR / "anatomy" / "weights.pt").is_file(),
                                                      reason="needs the shipped anatomy model")]


@pytest.fixture(scope="module")
def anatomy_server(tmp_path_factory, playwright_api):
    """`surglens serve` over a library holding the shared clip analysed by the real pipeline; yields (url, log)."""
    # The annotated video is asked for: by default it is written only from 5 analysed fps on.
    with serving_case(tmp_path_factory.mktemp("anatomy-library"), "Calot clip", config={"annotate": True}) as (url, log, _):
        yield url, log


def test_cvs_lane_overlays_and_anatomy_still(anatomy_server, browser):
    url, log = anatomy_server
    page, seen = open_app(browser, url)
    page.locator("button", has_text="Open").first.click()

    # The timeline has its CVS row (a y-axis label) with bars in it.
    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    timeline.locator("g.trace.bars path").first.wait_for()
    timeline.locator("g.ytick text", has_text="CVS").first.wait_for()
    timeline.get_by_text("CVS", exact=False).first.wait_for()
    _no_exception(page)

    # The annotated video (anatomy masks under the boxes) plays.
    page.get_by_role("radio", name="Annotated").or_(page.get_by_role("button", name="Annotated")).first.click()
    player = page.locator("video").first
    deadline = time.monotonic() + 60
    while not _playing(player, page):
        assert time.monotonic() < deadline, "the annotated video does not play"
    _no_exception(page)

    # The anatomy still at the player's start time: the mask image, the three criteria, the note.
    page.get_by_role("tab", name="Anatomy").click()
    panel = page.get_by_role("tabpanel", name="Anatomy")
    panel.locator('[data-testid="stImage"] img').first.wait_for(timeout=120_000)
    for label in ("C1 two structures", "C2 triangle cleared", "C3 cystic plate"):
        panel.get_by_text(label).first.wait_for()
    panel.get_by_text("not for clinical use", exact=False).first.wait_for()
    _no_exception(page)
    page.wait_for_timeout(1000)
    _full_page(page, "case_review_anatomy.png")
    _offline_and_clean(seen)
    page.close()
