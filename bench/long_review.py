"""A 60-minute recording uploaded and reviewed in a real browser, with the server's memory sampled throughout.

Builds (or reuses) a >= 60-minute input from the shared clips by stream copy (`bench.analyze.build_input`,
under runs/bench/), starts `surglens serve` (dashboard + worker, `bench.readme_shots.Serving`) over a
fresh library in runs/long-review/library and, in Debian's Chromium (playwright, 1440x900):

  upload    the file through the Library page's large-recording uploader (streamed to disk by the
            upload route, app/upload_links.py; or, when it is over the upload limit or with `--via import`,
            the page's "Import a video file from this machine" path), until the page says it is stored
            and queued
  analysis  until the case is done (the library's database, then the page's case card)
  review    Case review of that case: the player plays a few seconds, a key moment seeks it, the
            Motion and Anatomy tabs, the HTML report downloaded from the Export tab; the Library page

Every 0.5 s from the server's start to the end, the RSS of each process of the server's tree (serve, the
dashboard, the worker and any child, e.g. ffmpeg; never Chromium) is read with psutil. Writes
runs/long-review/report.json (the peaks per phase and process, the samples) and prints a table: peak total
and per-process RSS, wall time and whether it stayed <= 1.5 GB (1536 MiB), per phase. Exits non-zero
when a phase went over it, or on a console error, a failed request or a request that left the machine.

    .venv/bin/python -m bench.long_review [--minutes 60] [--via auto|upload|import] [--limit-mib 1536] [--report PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.analyze import BENCH_DIR, REPO, build_input
from bench.readme_shots import CHROMIUM, VIEWPORT, Serving, sync_playwright_or_exit, watch_page

OUT_DIR = REPO / "runs" / "long-review"
LIMIT_MIB = 1536.0  # 1.5 GB, the budget for the whole server
SAMPLE_S = 0.5
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
UPLOAD_TIMEOUT_S = 1200
ANALYSIS_TIMEOUT_S = 3 * 3600
PHASES = ("startup", "upload", "analysis", "review", "shutdown")
LARGE_UPLOADER = 'iframe[title="Large-recording uploader"]'  # the Library page's disk-streamed uploader


def _role(proc, serve_pid: int, roles: dict[int, str]) -> str:
    """What a process of the server's tree is: serve, dashboard, worker, or '<name> (child of <role>)'."""
    if proc.pid == serve_pid:
        return "serve"
    cmd = " ".join(proc.cmdline())
    if "streamlit" in cmd:
        return "dashboard"
    if "app.cli" in cmd and " worker" in cmd:
        return "worker"
    parent = roles.get(proc.ppid(), "?")
    name = "ffmpeg" if "ffmpeg" in proc.name() else proc.name()
    return f"{name} (child of {parent})"


@dataclass
class PhaseStats:
    """Peaks of one phase: the tree's total RSS, the largest single process, and each role's largest."""

    seconds: float = 0.0
    samples: int = 0
    peak_total_mib: float = 0.0
    peak_total_at_s: float | None = None
    peak_total_by_role: dict[str, float] = field(default_factory=dict)  # the processes at the total's peak
    peak_process_mib: float = 0.0
    peak_process_role: str | None = None
    peak_by_role_mib: dict[str, float] = field(default_factory=dict)


class TreeSampler:
    """Samples the RSS of a process and all its descendants every `interval_s` in a thread, by phase."""

    def __init__(self, pid_of, interval_s: float = SAMPLE_S):
        self.pid_of, self.interval_s = pid_of, interval_s  # pid_of(): the root's pid, or None before it exists
        self.phase, self.step = PHASES[0], PHASES[0]
        self.phases: dict[str, PhaseStats] = {}
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.monotonic()
        self._phase_t0 = self._t0
        self._roles: dict[int, str] = {}

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def enter(self, phase: str) -> None:
        """Start the next phase (its wall time runs from here)."""
        now = time.monotonic()
        self.phases.setdefault(self.phase, PhaseStats()).seconds += now - self._phase_t0
        self.phase, self.step, self._phase_t0 = phase, phase, now
        print(f"[{now - self._t0:7.1f} s] {phase}", flush=True)

    def mark(self, step: str) -> None:
        """Name what the browser does next (the samples carry it, for finding what made memory grow)."""
        self.step = step

    def steps(self) -> dict[str, dict]:
        """Per step, in order: the peak total RSS and each role's peak."""
        out: dict[str, dict] = {}
        for s in self.samples:
            step = out.setdefault(s["step"], {"peak_total_mib": 0.0, "peak_by_role_mib": {}})
            step["peak_total_mib"] = max(step["peak_total_mib"], s["total_mib"])
            for role, v in s["by_role_mib"].items():
                step["peak_by_role_mib"][role] = max(step["peak_by_role_mib"].get(role, 0.0), v)
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.enter("stopped")
        self.phases.pop("stopped", None)

    def _read(self, pid: int) -> list[tuple[int, str, float]]:
        import psutil

        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        rows = []
        for proc in procs:  # parents come before their children, so a child's parent role is known
            try:
                role = self._roles.get(proc.pid) or _role(proc, pid, self._roles)
                self._roles[proc.pid] = role
                rows.append((proc.pid, role, proc.memory_info().rss / 2**20))
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
        return rows

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            pid = self.pid_of()
            if pid is None:
                continue
            rows = self._read(pid)
            if not rows:
                continue
            t = round(time.monotonic() - self._t0, 2)
            by_role: dict[str, float] = {}
            for _, role, rss in rows:
                by_role[role] = by_role.get(role, 0.0) + rss
            total = sum(rss for _, _, rss in rows)
            _, big_role, big = max(rows, key=lambda r: r[2])
            stats = self.phases.setdefault(self.phase, PhaseStats())
            stats.samples += 1
            if total > stats.peak_total_mib:
                stats.peak_total_mib, stats.peak_total_at_s = round(total, 1), t
                stats.peak_total_by_role = {r: round(v, 1) for r, v in by_role.items()}
            if big > stats.peak_process_mib:
                stats.peak_process_mib, stats.peak_process_role = round(big, 1), big_role
            for _, role, rss in rows:
                stats.peak_by_role_mib[role] = round(max(stats.peak_by_role_mib.get(role, 0.0), rss), 1)
            self.samples.append({"t": t, "phase": self.phase, "step": self.step, "total_mib": round(total, 1),
                                 "by_role_mib": {r: round(v, 1) for r, v in by_role.items()}})


def _no_exception(page, where: str) -> None:
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        raise SystemExit(f"{where} shows an exception: {errors.first.inner_text()[:500]}")


def _case_status(data: Path) -> list[tuple[int, str, str | None]]:
    from library import Library, Settings

    with Library(Settings(data_dir=data)) as lib:
        return [(c.id, str(c.status), c.error) for c in lib.list_cases()]


def upload(page, video: Path, via: str) -> str:
    """The video into the library from the Library page (its large-recording uploader, or the "import from this
    machine" path); the duration the page shows for it."""
    page.locator('[data-testid="stFileUploader"]').first.wait_for()
    if via == "upload":
        # st.file_uploader would hold the file in the dashboard's memory (and takes ordinary files only)
        frame = page.frame_locator(LARGE_UPLOADER)
        frame.locator('input[type="file"]').set_input_files(str(video))
        received = frame.get_by_text(re.compile("^(Received|Not uploaded)"))
        received.wait_for(timeout=UPLOAD_TIMEOUT_S * 1000)
        if received.inner_text().startswith("Not uploaded"):
            raise SystemExit(f"the large-recording uploader refused the file: {received.inner_text()}")
    else:
        page.get_by_text("Import a video file from this machine").click()
        field_ = page.get_by_role("textbox", name="Full path of the video file")
        field_.fill(str(video))
        field_.press("Enter")  # commits the text; the button is enabled on the rerun
        page.locator("button", has_text="Import").last.click()
    page.get_by_text("stored and queued for analysis").wait_for(timeout=UPLOAD_TIMEOUT_S * 1000)
    shown = page.locator('[data-testid="stMetricValue"]', has_text=re.compile(r"^\d+:\d\d(:\d\d)?$")).first
    shown.wait_for()  # the stored file's probe
    _no_exception(page, "the Library page after the upload")
    return shown.inner_text()


def wait_for_analysis(page, data: Path, log: Path) -> int:
    """The case id, once the library's database and then the page's case card say done."""
    deadline = time.monotonic() + ANALYSIS_TIMEOUT_S
    while True:
        cases = _case_status(data)
        if len(cases) != 1:
            raise SystemExit(f"expected one case in the library, found {cases}")
        case_id, status, error = cases[0]
        if status == "done":
            break
        if status == "failed":
            raise SystemExit(f"the analysis failed: {error}\n--- serve log ---\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no analysis after {ANALYSIS_TIMEOUT_S} s (status {status})")
        page.wait_for_timeout(2000)  # the page stays open, its progress bar polling, as a user would leave it
    page.locator('[data-testid="stMarkdownContainer"]', has_text=re.compile(r"· done ·")).first.wait_for(timeout=120_000)
    _no_exception(page, "the Library page after the analysis")
    return case_id


def _playing(video, page, seconds: float = 3.0) -> bool:
    """True once the <video> has data and its currentTime advances over `seconds` of playback."""
    video.evaluate("v => { v.muted = true; if (v.paused) return v.play().catch(() => null); }")
    first = video.evaluate("v => v.currentTime")
    page.wait_for_timeout(int(seconds * 1000))
    ready, later = video.evaluate("v => [v.readyState, v.currentTime]")
    return ready >= 2 and later > first + 0.5


def review(page, url: str, report_dst: Path, mark=lambda step: None) -> dict:
    """Case review of the (only) case as a user walks it, then the Library page; what was seen."""
    seen: dict = {}
    mark("open Case review")
    page.locator("button", has_text="Open").first.click()
    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    timeline.locator("g.trace.bars path").first.wait_for()
    player = page.locator("video").first
    page.wait_for_function("v => v.readyState >= 1", arg=player.element_handle())
    from app.video_links import ROUTE_PREFIX

    seen["player_streamed_by_range"] = ROUTE_PREFIX in (player.get_attribute("src") or "")
    seen["player_duration_s"] = round(player.evaluate("v => v.duration"), 1)
    mark("play")
    deadline = time.monotonic() + 60
    while not _playing(player, page):
        if time.monotonic() > deadline:
            raise SystemExit("the original does not play in Case review")
    seen["played_to_s"] = round(player.evaluate("v => v.currentTime"), 1)
    player.evaluate("v => v.pause()")
    _no_exception(page, "Case review")

    # A key moment after the first minutes: the player seeks there (the page reruns with its start time).
    mark("seek by a key moment")
    moments = page.locator('[class*="st-key-moment_"] button')
    moments.first.wait_for()
    texts = moments.all_inner_texts()
    seen["key_moments"] = len(texts)
    later = [i for i, text in enumerate(texts) if (m := re.match(r"\s*(\d+):(\d\d)(?::(\d\d))?", text))
             and _clock_s(m) >= 600]
    index = later[len(later) // 2] if later else len(texts) - 1
    moment = moments.nth(index)
    target = re.match(r"\s*(\d+):(\d\d)(?::(\d\d))?", texts[index])
    moment.click()
    start_s = _clock_s(target)
    page.wait_for_function("t => { const v = document.querySelector('video');"
                           " return v && v.readyState >= 1 && Math.abs(v.currentTime - t) < 1.5; }", arg=start_s,
                           timeout=60_000)
    seen["seeked_to_s"] = start_s
    player = page.locator("video").first
    if not _playing(player, page, 2.0):
        raise SystemExit(f"the player does not play after seeking to {start_s} s")
    player.evaluate("v => v.pause()")
    _no_exception(page, "Case review after a key moment")

    mark("Motion tab")
    page.get_by_role("tab", name="Motion").click()
    motion = page.get_by_role("tabpanel", name="Motion")
    motion.locator('[data-testid="stPlotlyChart"]').nth(1).locator(".main-svg").first.wait_for()
    _no_exception(page, "Case review › Motion")
    tabs = page.get_by_role("tab", name="Anatomy")
    seen["anatomy_tab"] = bool(tabs.count())
    if tabs.count():
        mark("Anatomy tab")
        tabs.click()
        anatomy = page.get_by_role("tabpanel", name="Anatomy")
        anatomy.locator('[data-testid="stImage"], [data-testid="stAlert"]').first.wait_for(timeout=300_000)
        _no_exception(page, "Case review › Anatomy")

    mark("HTML report download")
    page.get_by_role("tab", name="Export").click()
    with page.expect_download(timeout=300_000) as download:
        page.get_by_role("button", name=re.compile("HTML report")).click()
    download.value.save_as(str(report_dst))
    html = report_dst.read_text(encoding="utf-8")
    seen["html_report_bytes"] = len(html.encode())
    if "<html" not in html.lower():
        raise SystemExit(f"the HTML report does not look like HTML: {html[:200]!r}")
    _no_exception(page, "Case review › Export")

    mark("Library page")
    page.goto(url)
    page.locator("button", has_text="Open").first.wait_for()
    page.locator('[data-testid="stMarkdownContainer"]', has_text=re.compile(r"· done ·")).first.wait_for()
    _no_exception(page, "the Library page")
    return seen


def _clock_s(match: re.Match) -> int:
    """Seconds of an m:ss or h:mm:ss match."""
    a, b, c = match.groups()
    return int(a) * 3600 + int(b) * 60 + int(c) if c else int(a) * 60 + int(b)


def render(report: dict) -> str:
    """The table printed at the end (and what the README quotes)."""
    limit = report["limit_mib"]
    lines = [f"| phase | wall s | peak total RSS MiB | largest process MiB | <= {limit:g} MiB | at the total's peak |",
             "|---|---|---|---|---|---|"]
    for name, p in report["phases"].items():
        parts = ", ".join(f"{r} {v:,.0f}" for r, v in sorted(p["peak_total_by_role"].items(), key=lambda x: -x[1]))
        lines.append(f"| {name} | {p['seconds']:.0f} | {p['peak_total_mib']:,.0f} | {p['peak_process_mib']:,.0f} "
                     f"({p['peak_process_role']}) | {'yes' if p['peak_total_mib'] <= limit else 'NO'} | {parts} |")
    o = report["overall"]
    lines.append(f"| **all** | {o['seconds']:.0f} | {o['peak_total_mib']:,.0f} | {o['peak_process_mib']:,.0f} "
                 f"({o['peak_process_role']}) | {'yes' if o['within_limit'] else 'NO'} | |")
    lines.append(f"\nvideo {report['video']['duration_s'] / 60:.1f} min, {report['video']['bytes'] / 2**20:.0f} MiB, "
                 f"into the library by {report['via']}; load average before/after "
                 f"{report['loadavg_before'][0]:.2f} / {report['loadavg_after'][0]:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the input (default 60)")
    parser.add_argument("--via", choices=("auto", "upload", "import"), default="auto",
                        help="the Library page's large-recording uploader (streamed to disk), its "
                             "import-from-this-machine path, or (auto) the uploader unless the file is over the "
                             "upload limit")
    parser.add_argument("--limit-mib", type=float, default=LIMIT_MIB, help="the server's RSS budget (default 1536)")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--report", type=Path, default=OUT_DIR / "report.json", help="where the JSON report goes")
    args = parser.parse_args(argv)
    sync_playwright = sync_playwright_or_exit()
    from library.config import Settings
    from video import probe

    video = build_input(args.minutes, BENCH_DIR)
    info = probe(video, content_hash=False)
    if info.duration_s < args.minutes * 60:
        raise SystemExit(f"{video} lasts {info.duration_s:.0f} s, under {args.minutes:g} min")
    size = video.stat().st_size
    # The large-recording uploader's limit (app/server.py's upload route): the library's.
    limit_mb = Settings.from_env().max_upload_mb
    via = args.via if args.via != "auto" else ("upload" if size <= limit_mb * 2**20 else "import")
    if via == "upload" and size > limit_mb * 2**20:
        raise SystemExit(f"{video.name} is {size / 2**20:.0f} MiB, over the upload limit of {limit_mb:g} MB "
                         "(SURGLENS_MAX_UPLOAD_MB); use --via import")
    print(f"{video.name}: {info.duration_s / 60:.1f} min, {size / 2**20:.0f} MiB; upload limit {limit_mb:g} MB; via {via}",
          flush=True)

    data = OUT_DIR / "library"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    load_before = os.getloadavg()
    serving = Serving(data)
    sampler = TreeSampler(lambda: serving.proc.pid if serving.proc is not None else None).start()
    started = time.monotonic()
    seen: dict[str, list[str]] = {"remote": [], "errors": []}
    walk: dict = {}
    try:
        with serving as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=not args.headed)
            page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
            page.set_default_timeout(120_000)
            seen = watch_page(page)
            page.goto(server.url)
            sampler.enter("upload")
            walk["duration_shown"] = upload(page, video, via)
            sampler.enter("analysis")
            walk["case_id"] = wait_for_analysis(page, data, data / "serve.log")
            sampler.enter("review")
            walk.update(review(page, server.url, OUT_DIR / "report.html", sampler.mark))
            page.wait_for_timeout(int(SAMPLE_S * 4000))  # a few samples after the last step
            browser.close()
            sampler.enter("shutdown")  # until serve has stopped its dashboard and worker
    finally:
        sampler.stop()
    phases = {name: asdict(sampler.phases[name]) for name in PHASES if name in sampler.phases}
    top = max(phases.values(), key=lambda p: p["peak_process_mib"])
    overall = {"seconds": round(time.monotonic() - started, 1),
               "peak_total_mib": max(p["peak_total_mib"] for p in phases.values()),
               "peak_process_mib": top["peak_process_mib"], "peak_process_role": top["peak_process_role"]}
    overall["within_limit"] = overall["peak_total_mib"] <= args.limit_mib
    for p in phases.values():
        p["within_limit"] = p["peak_total_mib"] <= args.limit_mib
        p["seconds"] = round(p["seconds"], 1)
    report = {"video": {"file": video.name, "duration_s": info.duration_s, "bytes": size}, "via": via,
              "upload_limit_mb": limit_mb, "limit_mib": args.limit_mib, "sample_s": SAMPLE_S, "overall": overall,
              "phases": phases, "steps": sampler.steps(), "walk": walk, "browser": seen, "cpus": os.cpu_count(),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "samples": sampler.samples}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1))
    print(render(report))
    print("\npeak RSS MiB per step: " + "; ".join(
        f"{name} {v['peak_total_mib']:,.0f} (" + ", ".join(f"{r} {m:,.0f}" for r, m in v["peak_by_role_mib"].items()) + ")"
        for name, v in report["steps"].items()))
    print(f"review: {json.dumps(walk)}\nreport: {args.report}")
    problems = []
    if seen["remote"]:
        problems.append(f"requests that left the machine: {seen['remote'][:5]}")
    if seen["errors"]:
        problems.append(f"console errors or failed requests: {seen['errors'][:5]}")
    if not overall["within_limit"]:
        problems.append(f"the server's RSS reached {overall['peak_total_mib']:,.0f} MiB, over {args.limit_mib:g}")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
