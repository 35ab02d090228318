"""End to end in Debian's Chromium: `surglens serve` (dashboard + worker), a real clip uploaded, analysed,
reviewed (phase timeline seeks the player, annotated clip plays, a comment is added), then Diagnosis.

Skips when ../shared/data or /usr/bin/chromium is absent; with SURGLENS_REQUIRE_BROWSER=1 (CI) a
missing browser fails instead. SURGLENS_UPDATE_SCREENSHOT=1 also refreshes assets/docs/screenshot.png.
Screenshots go to runs/browser/.
"""
from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import cv2
import pytest

from tests.browser.conftest import (
    SHOTS,
    _full_page,
    _no_exception,
    _offline_and_clean,
    _playing,
    _watched,
    open_app,
    serving,
    serving_case,
    wait_until_shown,
)
from tests.conftest import REPO, shared_path

pytestmark = pytest.mark.browser

README_SHOT = REPO / "assets" / "docs" / "screenshot.png"
ANALYSIS_TIMEOUT_S = 900  # a 32 s clip on two busy CPU cores, including model loading
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def server(tmp_path_factory, clip, playwright_api):
    """`surglens serve` on a free port with an empty library in tmp; yields (url, log path)."""
    data = tmp_path_factory.mktemp("library")
    with serving(data) as (url, log):
        yield url, log


def _wait_for_analysis(page, log: Path) -> None:
    done = page.locator('[data-testid="stMarkdownContainer"]', has_text=re.compile(r"· done ·"))
    failed = page.locator('[data-testid="stAlert"]', has_text="analysis failed")
    wait_until_shown(page, done, failed, ANALYSIS_TIMEOUT_S, "the analysis",
                     lambda: f"\n--- serve log ---\n{log.read_text()[-3000:]}")


def _seconds(clock_text: str) -> int:
    minutes, seconds = clock_text.split(":")[-2:]
    return int(minutes) * 60 + int(seconds)


def _save_readme_shot(png: bytes) -> None:
    """A small palette PNG of the review page for the README (< 400 KB)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((1200, round(image.height * 1200 / image.width)), Image.LANCZOS)
    image = image.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    README_SHOT.parent.mkdir(exist_ok=True)
    image.save(README_SHOT, optimize=True)
    assert README_SHOT.stat().st_size < 400_000


def test_upload_analyse_review_comment(server, browser, clip):
    url, log = server

    # Library: upload a real clip; its probe shows at once, the worker analyses it in the background.
    page, seen = open_app(browser, url)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(clip))
    page.get_by_text("stored and queued for analysis").wait_for()
    page.locator('[data-testid="stMetricValue"]', has_text="0:32").wait_for()  # the duration, probed at once
    assert "VID22" not in page.content()  # the file name is not shown
    progress = page.locator('[data-testid="stProgress"]')
    assert "Case 1:" in progress.first.inner_text()  # the queue, drawn from the database
    page.reload()  # the bar survives a reload (unless the analysis is already over)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stProgress\"]')"
                           " || [...document.querySelectorAll('p')].some(p => p.innerText.includes('· done ·'))")
    _wait_for_analysis(page, log)
    _no_exception(page)
    page.locator("button", has_text="Open").first.click()

    # Case review: the phase timeline above the instrument lanes.
    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    timeline.locator("g.trace.bars path").first.wait_for()
    assert timeline.get_by_text("no phase recognition").count() == 0, "the case has no phase timeline"
    phase_bars = timeline.locator(".subplot.xy g.trace.bars path")
    assert phase_bars.count() >= 1
    _no_exception(page)

    # Clicking a phase bar (the right-most, so it starts after 0:00) seeks the player to its start.
    bars = phase_bars if phase_bars.count() > 1 else timeline.locator("g.trace.bars path")
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    box = max((b for b in boxes if b and b["width"] > 2), key=lambda b: b["x"])
    page.mouse.click(box["x"] + min(box["width"] / 2, 5), box["y"] + box["height"] / 2)
    caption = page.get_by_text(re.compile(r"Starts at (?!0:00\b)\d+:\d\d"))
    caption.wait_for()
    start_s = _seconds(re.search(r"Starts at (\d+:\d\d)", caption.inner_text()).group(1))
    player = page.locator("video").first
    page.wait_for_function("([v, t]) => v.readyState >= 1 && Math.abs(v.currentTime - t) < 1.0",
                           arg=[player.element_handle(), start_s])

    # The annotated clip of a segment: cut, shown, playing.
    page.get_by_role("tab", name="Annotated clip").click()
    page.locator("button", has_text="Make annotated clip").click()
    clip_video = page.locator("video").nth(1)
    clip_video.wait_for(timeout=300_000)
    deadline = time.monotonic() + 60
    while not _playing(clip_video, page):
        assert time.monotonic() < deadline, "the annotated clip does not play"
    assert page.locator("button", has_text="Download this clip").count() == 1
    _no_exception(page)

    # A comment at the current time, shown in the list and as a marker on the timeline.
    page.get_by_role("tab", name=re.compile(r"Comments \(0\)")).click()
    page.locator('textarea[aria-label="Comment"]').fill("Clip applied before cutting: good practice.")
    page.locator('[data-testid="stForm"]', has=page.locator('textarea[aria-label="Comment"]')).locator(
        "button", has_text="Add").click()
    page.get_by_role("tab", name=re.compile(r"Comments \(1\)")).wait_for()
    timeline.get_by_text("comments").wait_for()  # the legend entry of the comment markers
    _no_exception(page)

    _full_page(page, "case_review_clip.png")

    # The Motion section: trajectories over a frame, heatmap, metric tables.
    page.get_by_role("tab", name=re.compile(r"Key moments")).click()
    page.get_by_role("tab", name="Motion").click()
    page.locator('[data-testid="stPlotlyChart"]').nth(2).locator(".main-svg").first.wait_for()
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    _no_exception(page)
    page.wait_for_timeout(1000)
    _full_page(page, "case_review.png")
    if os.environ.get("SURGLENS_UPDATE_SCREENSHOT") == "1":
        page.set_viewport_size({"width": 1400, "height": 1450})
        page.wait_for_timeout(1500)
        _save_readme_shot(page.screenshot())
    _offline_and_clean(seen)
    page.close()


def test_diagnosis_of_a_still_and_a_dicom(server, browser, clip, tmp_path):
    url, _ = server
    dicom = next(iter(sorted(shared_path("medical-images", "chest-xray").glob("*.dcm"))), None)
    if dicom is None:
        pytest.skip("no chest DICOM in ../shared/data/medical-images/chest-xray")
    capture = cv2.VideoCapture(str(clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 400)
    ok, bgr = capture.read()
    capture.release()
    assert ok
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), bgr)

    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(240_000)  # loading a model on a busy CPU
    for image in (still, dicom):
        page.goto(f"{url}/diagnosis")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(image))
        result = page.locator("button", has_text="Download result (JSON)")
        page.wait_for_function(
            "() => [...document.querySelectorAll('button')].some(b => b.innerText.includes('Download result (JSON)'))"
            " || document.querySelector('[data-testid=\"stException\"]')")
        _no_exception(page)
        assert result.count() == 1, page.locator('[data-testid="stAlert"]').all_inner_texts()
        assert page.locator('[data-testid="stImage"]').count() >= 1
        _full_page(page, f"diagnosis_{image.suffix.lstrip('.')}.png")
    page.close()


@pytest.fixture(scope="module")
def review_server(tmp_path_factory, playwright_api):
    """`surglens serve` over a library holding one case analysed by the AppTest fake (no model runs); yields
    (url, log path, case id)."""
    from tests.app.conftest import fake_analyze, make_video

    data = tmp_path_factory.mktemp("review-library")
    video = make_video(data.parent / "review.mp4", seconds=12, fps=25, size=(320, 180))
    with serving_case(data, "Walk case", video, fake_analyze) as served:
        yield served


BOXES = '[data-testid="surglensBoxes"]'  # the canvas app/player_overlay.py lays over the player


def _leftmost_painted(page) -> int:
    """The left-most column of the boxes canvas with a painted pixel (-1 when it is blank)."""
    return page.evaluate("""sel => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let best = -1;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) { const x = ((i - 3) / 4) % c.width;
            if (best < 0 || x < best) best = x; }
        return best; }""", BOXES)


def _boxes_on_the_original(page, player) -> None:
    """Boxes drawn over the original between two analysed frames (the fake's grasper moves right at 1 fps),
    and the phase strip's cursor following playback."""
    shown = []
    for t in (2.0, 2.5, 3.0):
        player.evaluate(f"v => {{ v.pause(); v.currentTime = {t}; }}")
        page.wait_for_function("([v, t]) => Math.abs(v.currentTime - t) < 1e-3 && v.readyState >= 2",
                               arg=[player.element_handle(), t])
        page.wait_for_function(f"""() => {{ const c = document.querySelector('{BOXES}');
            return c && Number(c.dataset.boxes) >= 1; }}""")
        page.wait_for_timeout(200)  # a few animation frames
        shown.append(_leftmost_painted(page))
    assert shown[0] >= 0, "nothing is drawn over the player"
    assert shown[0] < shown[1] < shown[2], f"the box does not move between analysed frames: {shown}"
    cursor = page.locator(".overlay-strip .cursor")
    player.evaluate("v => { v.currentTime = 1.0; }")
    page.wait_for_timeout(300)
    before = float(cursor.evaluate("c => parseFloat(c.style.left)"))
    assert _playing(player, page)
    after = float(cursor.evaluate("c => parseFloat(c.style.left)"))
    assert after > before, f"the timeline cursor does not follow playback ({before} -> {after})"
    player.evaluate("v => v.pause()")


def test_review_walk_is_offline_and_the_player_tools_work(review_server, browser):
    """Every page (a deep link too) without a request off the machine or a console error; boxes over the
    original between analysed frames and a cursor that follows playback; speed, stepping and "comment here"
    on the player; a new comment keeps the Comments panel; the Motion panel at 1440x900."""
    url, log, case_id = review_server
    page, seen = open_app(browser, url, width=1440, height=900)
    page.locator("button", has_text="Open").first.wait_for()
    icon = page.locator("link[rel~='icon']").first.get_attribute("href") or ""
    assert not icon.startswith("http") or "127.0.0.1" in icon, icon
    box = page.locator("button", has_text="Open").first.bounding_box()
    assert box and box["width"] >= 60  # not cut to "O..."
    page.locator("button", has_text="Open").first.click()

    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    timeline.locator("g.trace.bars path").first.wait_for()
    player = page.locator("video").first
    page.wait_for_function("v => v.readyState >= 1", arg=player.element_handle())
    page.get_by_role("button", name="2×").click()
    assert player.evaluate("v => v.playbackRate") == 2
    _boxes_on_the_original(page, player)
    player.evaluate("v => { v.pause(); v.currentTime = 7.2; }")
    page.get_by_role("button", name="frame ▶").click()
    page.wait_for_function("v => v.currentTime > 7.2", arg=player.element_handle())
    page.get_by_role("button", name="comment here").click()
    at = page.locator('input[aria-label="At (m:ss)"]')
    at.wait_for()
    page.wait_for_function("el => el.value === '0:07'", arg=at.element_handle())  # the player's own position
    page.locator('textarea[aria-label="Comment"]').fill("The clip goes on here.")
    page.locator('[data-testid="stForm"]', has=page.locator('textarea[aria-label="Comment"]')).locator(
        "button", has_text="Add").click()
    page.get_by_role("tab", name="Comments (1)", selected=True).wait_for()  # still on the comments
    time_button = page.locator('[class*="st-key-seek_comment_"] button', has_text="0:07").first
    time_button.wait_for()
    page.wait_for_timeout(1000)  # the rerun's stale elements are gone
    assert time_button.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), "the comment time is cut"
    _no_exception(page)

    # The comment's time seeks; "Link to this moment" reopens the case there, in a new tab.
    time_button.click()
    page.get_by_text("Starts at 0:07").wait_for()
    page.locator("button", has_text="Link to this moment").click()
    link = page.locator('[data-testid="stCode"] code').first.inner_text().strip()
    assert link.startswith(url) and f"case={case_id}" in link and "t=7" in link, link
    page.keyboard.press("Escape")
    shared = browser.new_page(viewport={"width": 1440, "height": 900})
    shared_seen = _watched(shared)
    shared.goto(link)  # a deep link: its page answers with the server at the root (app/server.py), no 404 probe
    shared.get_by_text("Starts at 0:07").wait_for()
    assert shared.locator('[data-testid="stHeading"]', has_text="Walk case").count() >= 1
    shared.goto(f"{url}/analytics?case={case_id}")
    shared.locator('[data-testid="stHeading"]', has_text="Analytics").first.wait_for()
    shared.wait_for_timeout(1500)
    _offline_and_clean(shared_seen)
    assert "/analytics/_stcore" not in log.read_text()
    shared.close()

    page.get_by_role("tab", name="Motion").click()
    page.locator('[data-testid="stPlotlyChart"]').nth(2).locator(".main-svg").first.wait_for()
    page.wait_for_timeout(1000)
    motion = page.get_by_role("tabpanel", name="Motion")
    motion.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "motion_panel_1440x900.png"))
    selector = page.locator('[data-testid="stSelectbox"]', has_text="Heatmap of")
    box = selector.bounding_box()
    assert box and box["width"] > 150 and box["height"] > 30  # the selector and its label are whole
    _no_exception(page)

    for name in ("Analytics", "Models", "Diagnosis", "Library"):
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name).click()
        page.locator('[data-testid="stHeading"]', has_text=re.compile(name if name != "Library" else "Case library")
                     ).first.wait_for()
        page.wait_for_timeout(1500)
        _no_exception(page)
    _offline_and_clean(seen)
    page.close()
