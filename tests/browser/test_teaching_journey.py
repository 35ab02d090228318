"""A trainee's study-mode attempt end to end in Debian's Chromium: a shared clip in the library (its analysis
written by the AppTest fake, so no model runs), its labels hidden, two transitions marked, the score shown.

Skips like tests/browser/test_dashboard.py when the browser or ../shared/data is absent. Screenshot: runs/browser/.
"""
from __future__ import annotations

import pytest

from tests.browser.conftest import _full_page, _no_exception, _offline_and_clean, fake_analysis, open_app, serving_case

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def study_server(tmp_path_factory, playwright_api):
    """`surglens serve` over a library holding the shared clip, analysed by the fake; yields (url, log)."""
    with serving_case(tmp_path_factory.mktemp("study-library"), "Study clip", analyze=fake_analysis()) as (url, log, _):
        yield url, log


def test_a_trainee_attempt_with_its_score(study_server, browser):
    url, log = study_server
    page, seen = open_app(browser, url, "Study mode")
    page.get_by_text("the model's phase recognition").wait_for()
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0  # no labels before the attempt
    page.locator("video").first.wait_for()

    name = page.locator('input[aria-label="Your display name"]')
    name.fill("Trainee A")
    name.press("Enter")
    at = page.locator('input[aria-label="Add at (m:ss)"]')
    at.fill("0:13")
    at.press("Enter")
    page.wait_for_timeout(1000)
    phase = page.locator(".st-key-study_add_phase").get_by_role("combobox")
    phase.click()
    page.get_by_role("option", name="Calot triangle dissection").click()
    page.wait_for_timeout(1000)
    page.locator(".st-key-study_add button").click()
    page.wait_for_timeout(1500)
    _no_exception(page)
    page.locator(".st-key-study_submit button").click()

    page.locator('[data-testid="stHeading"]', has_text="Your score").wait_for()
    _no_exception(page)
    metric = page.locator('[data-testid="stMetric"]', has_text="Mean timing error")
    assert "3.0 s" in metric.inner_text()  # Calot from 0:10 in the reference, marked at 0:13
    assert "0 of 1" in page.locator('[data-testid="stMetric"]', has_text="Missed transitions").inner_text()
    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    timeline.locator("g.trace.bars path").first.wait_for()
    page.get_by_text("Attempts of Trainee A").wait_for()
    _full_page(page, "study-attempt.png")
    _offline_and_clean(seen)


@pytest.fixture(scope="module")
def two_case_server(tmp_path_factory, playwright_api):
    """`surglens serve` over a library holding two shared clips, analysed by the fake with different timings."""
    from library import Library, Settings
    from library.worker import Worker
    from tests.browser.conftest import serving
    from tests.conftest import shared_path

    data = tmp_path_factory.mktemp("compare-library")
    clips = sorted(shared_path("cholec-clips").glob("*.mp4"))[:2]
    timings = {"Trainee operation": [(0.0, 20.0, "Preparation"), (20.0, 32.0, "CalotTriangleDissection")],
               "Reference operation": [(0.0, 8.0, "Preparation"), (8.0, 32.0, "CalotTriangleDissection")]}
    with Library(Settings(data_dir=data)) as lib:
        for clip, (title, phases) in zip(clips, timings.items()):
            lib.ingest(clip, title=title)
            assert Worker(lib, analyze=fake_analysis(phases), poll_s=0.01).run(once=True) == 1
        assert [c.status for c in lib.list_cases()] == ["done", "done"]
    with serving(data) as (url, log):
        yield url, log


def test_two_cases_side_by_side(two_case_server, browser):
    url, _ = two_case_server
    page, seen = open_app(browser, url, "Side by side")
    page.get_by_text("A: Reference operation", exact=False).first.wait_for()  # case A: the newest by default
    page.locator('[data-testid="stSelectbox"]', has_text="Case B").get_by_role("combobox").click()
    page.get_by_role("option", name="Trainee operation").click()
    page.get_by_text("B: Trainee operation", exact=False).first.wait_for()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(2).wait_for()  # aligned by phase, in real time, time per phase
    for i in range(3):
        charts.nth(i).locator("g.trace.bars path").first.wait_for()
    lanes = charts.nth(1).locator("g.ytick text").all_text_contents()  # SVG text has no innerText
    assert any("Reference operation" in t for t in lanes) and any("Trainee operation" in t for t in lanes), lanes
    durations = " ".join(charts.nth(2).locator("text").all_text_contents())
    assert "0:08" in durations and "0:20" in durations, durations  # Preparation: 8 s in A, 20 s in B, as analysed
    page.get_by_text("Per phase", exact=False).first.wait_for()
    page.get_by_text("Per instrument, whole case").wait_for()
    _no_exception(page)
    _full_page(page, "side-by-side.png")
    _offline_and_clean(seen)
    page.close()
