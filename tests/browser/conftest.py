"""Browser fixtures and helpers every test_*_journey.py shares: Debian's Chromium through playwright, `surglens serve`
on a free port over a library in tmp, and the checks that a page stayed on the machine and raised nothing.

Skips when /usr/bin/chromium or playwright is absent; with SURGLENS_REQUIRE_BROWSER=1 (CI) that fails instead.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from bench.readme_shots import CHROMIUM, watch_page
from tests.conftest import REPO, shared_path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CLIP = "0.975__group_57__VID22_372_and_VID26_693_b.mp4"
CLIP_PHASES = [(0.0, 10.0, "Preparation"), (10.0, 32.0, "CalotTriangleDissection")]  # what the fake analysis writes
SHOTS = REPO / "runs" / "browser"


def _browser_or_skip():
    """playwright's sync API, or skip (fail under SURGLENS_REQUIRE_BROWSER=1) when the browser is missing."""
    required = os.environ.get("SURGLENS_REQUIRE_BROWSER") == "1"
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = problem or "playwright is not installed (pip install playwright)"
    if problem:
        (pytest.fail if required else pytest.skip)(f"browser test: {problem}")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(data: Path) -> Iterator[tuple[str, Path]]:
    """`surglens serve` on a free port over the library in `data` (SQLite); yields (url, log path) and stops
    serve, its Streamlit and its worker (the process group started) at exit."""
    port = _free_port()
    log = data / "serve.log"
    env = dict(os.environ, SURGLENS_DATA_DIR=str(data), YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(data / "yolo"))
    env.pop("SURGLENS_DB_URL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--address", "127.0.0.1", "--port", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"surglens serve did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def fake_analysis(phases: list[tuple[float, float, str]] = CLIP_PHASES) -> Callable:
    """The worker's `analyze` writing a case with `phases` through the AppTest fake (no model runs)."""
    from tests.app.conftest import write_case

    return lambda video, out, config, progress: write_case(out, video, phases)


@contextlib.contextmanager
def serving_case(data: Path, title: str, video: Path | None = None, analyze: Callable | None = None,
                 config: dict | None = None) -> Iterator[tuple[str, Path, int]]:
    """`serving` over a library in `data` holding `video` (default the shared clip) as the analysed case `title`;
    `analyze` is the worker's (default the real pipeline), `config` the case's analysis settings (AnalysisConfig
    fields). Yields (url, log path, case id)."""
    from library import Library, Settings
    from library.worker import Worker

    with Library(Settings(data_dir=data)) as lib:
        case, _ = lib.ingest(video or shared_path("cholec-clips", CLIP), title=title, config=config)
        worker = Worker(lib) if analyze is None else Worker(lib, analyze=analyze, poll_s=0.01)
        assert worker.run(once=True) == 1
        done = lib.get_case(case.id)
        assert done.status == "done", done.error
    with serving(data) as (url, log):
        yield url, log, case.id


@pytest.fixture(scope="module")
def clip() -> Path:
    return shared_path("cholec-clips", CLIP)


@pytest.fixture(scope="module")
def playwright_api():
    return _browser_or_skip()


@pytest.fixture(scope="module")
def browser(playwright_api):
    with playwright_api() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


_watched = watch_page  # requests off the machine and console errors (see _offline_and_clean)


def wait_until_shown(page, done, failed, timeout_s: float, what: str, detail: Callable[[], str] = lambda: "") -> None:
    """Poll until the locator `done` matches; fail as soon as `failed` matches (quoting it) or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while done.count() == 0:
        if failed.count():
            pytest.fail(f"{what}: {failed.first.inner_text()}{detail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: nothing after {timeout_s:g} s{detail()}")
        page.wait_for_timeout(1000)


def _offline_and_clean(seen: dict[str, list[str]]) -> None:
    assert seen["remote"] == [], f"requests that left the machine: {seen['remote'][:5]}"
    assert seen["errors"] == [], f"console errors: {seen['errors'][:5]}"


def _no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def open_app(browser, url: str, nav: str | None = None, *, width: int = 1400, height: int = 1000,
             timeout_ms: int = 60_000, **options: Any) -> tuple[Any, dict[str, list[str]]]:
    """A new page at `url`, watched by `_watched`, with SHOTS made; `nav` opens that page of the sidebar and waits
    for its title. `options` go to `browser.new_page` (e.g. accept_downloads). Returns (page, seen)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height}, **options)
    seen = _watched(page)
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    if nav is not None:
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=nav).click()
        page.locator('[data-testid="stHeading"]', has_text=re.compile(f"^{re.escape(nav)}$")).wait_for()
    return page, seen


def _playing(video, page) -> bool:
    """True once the <video> has data and its currentTime advances."""
    video.evaluate("v => { v.muted = true; if (v.paused) return v.play().catch(() => null); }")
    first = video.evaluate("v => v.currentTime")
    page.wait_for_timeout(1500)
    ready, later = video.evaluate("v => [v.readyState, v.currentTime]")
    return ready >= 2 and later > first


def _full_page(page, name: str) -> None:
    """A screenshot of the whole page into SHOTS / `name` (Streamlit scrolls inside its own container, not the
    document)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 6000))})
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / name))
    page.set_viewport_size(size)
