"""How long the Case review page of an analysed 32 s clip takes to open, first time and warm.

One run, one library in a temporary folder holding one analysed real clip:
  browser   Streamlit served on 127.0.0.1 and Debian's Chromium (Playwright): seconds from navigation
            until the case page is usable (timeline drawn, player has the video's metadata) and until
            every chart on it is drawn; the Library page, a light page, is the reference in the same run.
            "first" is the first open after the server started (imports, reading the case, the frame);
            "warm" are later opens, each a new Streamlit session in the same browser profile (a reload,
            another tab, or another user after the server has read the case once).
  in app    the same tab going Library -> Open -> Case review -> Library -> Open ...: the first open
            loads plotly.js into the tab, later ones are what a user clicking through cases waits for.
  script    the page's Streamlit script alone (AppTest, no browser), first and warm.
Goal (issue 5): under 2 s after the first load.

    .venv/bin/python bench/case_page.py [--case-dir DIR] [--warm 5] [--out runs/bench/case_page.json]

Without --case-dir the clip is analysed here with the full pipeline (a minute or two on a CPU);
with it, that analysed case folder (of the same clip, e.g. from `surglens analyze`) is reused.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CLIP = REPO.parent / "shared" / "data" / "cholec-clips" / "0.975__group_57__VID22_372_and_VID26_693_b.mp4"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CASE_READY = """() => {
  const v = document.querySelector('video');
  const bars = document.querySelector('[data-testid="stPlotlyChart"] g.trace.bars path');
  return !!(v && v.readyState >= 1 && bars);
}"""
ALL_CHARTS = """(n) => {
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  return charts.length >= n && charts.every(c => c.querySelector('.main-svg'));
}"""
CHARTS_ON_OPEN = 3  # timeline, trajectories, heatmap (the Motion tab is the one open)
LIBRARY_READY = """() => [...document.querySelectorAll('button')].some(b => b.innerText.includes('Open'))"""


def build_library(data_dir: Path, case_dir: Path | None) -> int:
    """A library with the clip analysed (or `case_dir` reused as its results); returns the case id."""
    from library import Library, Settings
    from library.worker import Worker

    def reuse(video_path, out_dir, config, progress):
        shutil.copytree(case_dir, out_dir)
        return {}

    with Library(Settings(data_dir=data_dir)) as lib:
        case, _ = lib.ingest(CLIP)
        Worker(lib, analyze=reuse if case_dir else None, poll_s=0.01).run(once=True)
        record = lib.get_case(case.id)
        if record.status != "done":
            raise RuntimeError(f"the clip could not be analysed: {record.error}")
        return case.id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_timings(data_dir: Path, case_id: int, warm: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = dict(os.environ, SURGLENS_DATA_DIR=str(data_dir), YOLO_OFFLINE="1")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    out: dict[str, list[float]] = {"library": [], "case_usable": [], "case_all_charts": [], "case_in_app": []}
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # One browser profile (its HTTP cache warms like a user's); every page is a new Streamlit session.
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            for i in range(warm + 1):
                for name, path, ready in (("library", "", LIBRARY_READY), ("case", f"/case_review?case={case_id}", CASE_READY)):
                    page = context.new_page()
                    t0 = time.perf_counter()
                    page.goto(url + path)
                    page.wait_for_function(ready, timeout=120_000, polling=20)
                    usable = time.perf_counter() - t0
                    if name == "case":
                        page.wait_for_function(ALL_CHARTS, arg=CHARTS_ON_OPEN, timeout=120_000, polling=20)
                        out["case_all_charts"].append(time.perf_counter() - t0)
                        out["case_usable"].append(usable)
                    else:
                        out["library"].append(usable)
                    page.close()
            # Inside the app, as a user does it: Library -> Open -> Case review -> Library -> Open ...
            page = context.new_page()
            page.goto(url)
            page.wait_for_function(LIBRARY_READY, timeout=120_000, polling=20)
            for i in range(warm + 1):
                t0 = time.perf_counter()
                page.locator("button", has_text="Open").first.click()
                page.wait_for_function(CASE_READY, timeout=120_000, polling=20)
                out["case_in_app"].append(time.perf_counter() - t0)
                page.locator('[data-testid="stSidebarNav"] a', has_text="Library").click()
                page.wait_for_function(LIBRARY_READY, timeout=120_000, polling=20)
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    return out


SCRIPT_TIMES = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from streamlit.testing.v1 import AppTest
times = {"library": [], "case": []}
for i in range(int(sys.argv[3]) + 1):
    for name, page in (("library", "views/library.py"), ("case", "views/case_review.py")):
        at = AppTest.from_file(sys.argv[1] + "/app/main.py", default_timeout=120)
        at.run()
        at.session_state["case_id"] = int(sys.argv[2])
        at.switch_page(page)
        t0 = time.perf_counter()
        at.run()
        times[name].append(time.perf_counter() - t0)
        assert not at.exception, at.exception
print(json.dumps(times))
"""


def script_timings(data_dir: Path, case_id: int, warm: int) -> dict[str, list[float]]:
    """The page scripts alone, in a fresh process (so "first" pays the imports like a fresh server)."""
    env = dict(os.environ, SURGLENS_DATA_DIR=str(data_dir), YOLO_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", SCRIPT_TIMES, str(REPO), str(case_id), str(warm)], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict[str, float]:
    warm = values[1:]
    return {"first_s": round(values[0], 3), "warm_median_s": round(statistics.median(warm), 3),
            "warm_max_s": round(max(warm), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case-dir", type=Path, help="an analysed case folder of the clip to reuse")
    parser.add_argument("--warm", type=int, default=5, help="warm opens after the first (default 5)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "case_page.json")
    args = parser.parse_args()
    if not CLIP.exists():
        print(f"needs the shared clip {CLIP}", file=sys.stderr)
        return 2
    if args.warm < 1:
        parser.error("--warm must be at least 1")
    with tempfile.TemporaryDirectory(prefix="surglens-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        case_id = build_library(data_dir, args.case_dir)
        browser = browser_timings(data_dir, case_id, args.warm)
        script = script_timings(data_dir, case_id, args.warm)
    rows = {
        "browser: Library page (reference)": summary(browser["library"]),
        "browser: Case review usable": summary(browser["case_usable"]),
        "browser: Case review, every chart drawn": summary(browser["case_all_charts"]),
        "browser: Open from the Library (same tab)": summary(browser["case_in_app"]),
        "script: Library page": summary(script["library"]),
        "script: Case review page": summary(script["case"]),
    }
    reference = rows["browser: Library page (reference)"]["warm_median_s"]
    print(f"{'':42} {'first s':>8} {'warm median s':>14} {'warm max s':>11} {'x Library':>10}")
    for name, r in rows.items():
        ratio = r["warm_median_s"] / reference if name.startswith("browser") else float("nan")
        print(f"{name:42} {r['first_s']:8.2f} {r['warm_median_s']:14.2f} {r['warm_max_s']:11.2f} {ratio:10.2f}")
    goal = rows["browser: Open from the Library (same tab)"]["warm_median_s"] < 2.0
    print(f"goal (under 2 s after the first load): {'met' if goal else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"clip": CLIP.name, "warm_runs": args.warm, "rows": rows, "raw": {
        "browser": browser, "script": script}, "goal_met": goal}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
