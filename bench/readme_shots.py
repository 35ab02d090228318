"""The README's screenshots of a real-length case: Case review's Motion panel and the HTML report, at 1440x900.

Builds a 10.7-minute input from the shared clips (../shared/data/cholec-clips, by stream copy, as
bench/analyze.py does), analyses it with the shipped models into a library under runs/readme-shots/
(kept: a second run reuses the analysed case; --fresh analyses again), serves the dashboard
(`surglens serve`) and photographs it in Debian's Chromium (playwright):

  assets/docs/motion_panel.png   Case review › Motion of that case (viewport 1440x900)
  assets/docs/html_report.png    the case's HTML report, as downloaded: key frames per phase, motion (viewport 1440x900)
  assets/docs/html_report_charts.png   its charts (viewport 1440x900)

Each PNG is quantised to a small palette (< 400 KB). Nothing is sent anywhere; nothing of the shared
data is written into the repository (the library stays under runs/, which git ignores).

    .venv/bin/python -m bench.readme_shots [--minutes 10.6] [--fresh] [--out assets/docs]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.analyze import BENCH_DIR, REPO, build_input

LIBRARY_DIR = REPO / "runs" / "readme-shots"
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 900}
LOCAL_HOSTS = ("127.0.0.1", "localhost")
TITLE = "Long case (10.7 min)"
MAX_PNG_BYTES = 400_000


def watch_page(page) -> dict[str, list[str]]:
    """Record every request of `page` that leaves the machine and every console error, page error and failed
    response (the browser tests and the benches assert both lists stay empty)."""
    from urllib.parse import urlsplit

    seen: dict[str, list[str]] = {"remote": [], "errors": []}

    def request(req) -> None:
        parts = urlsplit(req.url)
        if parts.scheme not in ("data", "blob", "about") and parts.hostname not in LOCAL_HOSTS:
            seen["remote"].append(req.url)

    page.on("request", request)
    page.on("console", lambda msg: seen["errors"].append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("response", lambda r: seen["errors"].append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return seen


def sync_playwright_or_exit():
    """Playwright's sync API, once Debian's Chromium is known to be there (else exit with the apt hint)."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def analysed_case(data: Path, video: Path, fresh: bool) -> int:
    """The id of the analysed long case in the library at `data` (ingested and analysed when needed)."""
    from library import Library, Settings
    from library.worker import Worker

    if fresh and data.exists():
        shutil.rmtree(data)
    with Library(Settings(data_dir=data)) as lib:
        case, _ = lib.ingest(video, title=TITLE)
        if lib.get_case(case.id).status != "done":
            if lib.get_case(case.id).status == "failed":
                lib.requeue(case.id)
            print(f"analysing {video.name} ({case.duration_s or 0:.0f} s) with the shipped models...", flush=True)
            t0 = time.perf_counter()
            Worker(lib, poll_s=0.1).run(once=True)
            print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
        record = lib.get_case(case.id)
        if record.status != "done":
            raise SystemExit(f"the analysis did not finish: {record.status} {record.error or ''}")
        return case.id


def write_report(data: Path, case_id: int, dst: Path) -> Path:
    from analysis.charts import report_figures
    from library import Library, Settings
    from library.export import html_report

    with Library(Settings(data_dir=data)) as lib:
        dst.write_text(html_report(lib, case_id, figures=report_figures), encoding="utf-8")
    return dst


class Serving:
    """`surglens serve` over the library at `data` on a free local port (dashboard and worker)."""

    def __init__(self, data: Path):
        self.data, self.port = data, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Serving":
        env = dict(os.environ, SURGLENS_DATA_DIR=str(self.data), YOLO_OFFLINE="1")
        env.pop("SURGLENS_DB_URL", None)
        self.log = open(self.data / "serve.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--address", "127.0.0.1",
                                      "--port", str(self.port)], cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise SystemExit(f"surglens serve did not come up; see {self.data / 'serve.log'}")
            time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def save_png(png: bytes, dst: Path) -> int:
    """A palette PNG of the screenshot (full 1440x900, no resampling: text stays sharp); its size in bytes."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.save(dst, optimize=True)
    size = dst.stat().st_size
    if size > MAX_PNG_BYTES:
        raise SystemExit(f"{dst} is {size} bytes, over {MAX_PNG_BYTES}")
    return size


def motion_shot(page, url: str, case_id: int) -> bytes:
    page.goto(f"{url}/case_review?case={case_id}")
    page.locator('[data-testid="stPlotlyChart"]').first.locator("g.trace.bars path").first.wait_for()
    page.get_by_role("tab", name="Motion").click()
    motion = page.get_by_role("tabpanel", name="Motion")
    motion.locator('[data-testid="stPlotlyChart"]').nth(1).locator(".main-svg").first.wait_for()
    page.wait_for_timeout(2500)  # the heatmap's frame and the charts' transitions
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        raise SystemExit(f"Case review shows an exception: {errors.first.inner_text()[:500]}")
    # The section's tabs at the top of the window (Streamlit scrolls stMain, not the document).
    motion.evaluate("el => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                    " m.scrollTop += el.getBoundingClientRect().top - 110; }")
    page.mouse.move(5, VIEWPORT["height"] - 5)  # off the charts: no hover toolbar in the picture
    page.wait_for_timeout(1200)
    return page.screenshot()


def report_shot(page, report: Path, heading: str) -> bytes:
    """The report from its section `heading` down, one window high."""
    page.goto(report.as_uri())
    page.locator(".chart .main-svg").first.wait_for()
    page.locator("h2", has_text=heading).evaluate(
        "h => window.scrollTo(0, h.getBoundingClientRect().top + window.scrollY - 16)")
    page.wait_for_timeout(1500)
    return page.screenshot()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.6, help="length of the input (default 10.6: 20 clips)")
    parser.add_argument("--fresh", action="store_true", help="analyse again instead of reusing the library")
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "docs", help="folder of the PNGs (default assets/docs/)")
    args = parser.parse_args(argv)
    sync_playwright = sync_playwright_or_exit()
    video = build_input(args.minutes, BENCH_DIR)
    data = LIBRARY_DIR / "library"
    case_id = analysed_case(data, video, args.fresh)
    report = write_report(data, case_id, LIBRARY_DIR / "report.html")
    with Serving(data) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(120_000)
        shots = {"motion_panel.png": motion_shot(page, server.url, case_id),
                 "html_report.png": report_shot(page, report, "Key frames per phase"),
                 "html_report_charts.png": report_shot(page, report, "Charts")}
        browser.close()
    for name, png in shots.items():
        size = save_png(png, args.out / name)
        print(f"{args.out / name}: {size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
