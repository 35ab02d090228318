"""`surglens live SOURCE`: detection, tracking and phase on a file (at its real rate), a camera or a stream URL."""
from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import datetime
from pathlib import Path

from app.cli import CLIError, positive_float, positive_int
from app.cli.library import _add_location, _settings


def _status_line(update) -> str:
    t = int(update.timestamp_s)
    phase = f"{update.phase.phase} {update.phase.probability:.0%}" if update.phase else "-"
    tools = ", ".join(update.tools) or "none"
    stats = update.stats
    rate = stats.processed_fps if stats.frames_processed > 2 else stats.mean_processed_fps
    return (f"{t // 60}:{t % 60:02d}  phase {phase}  tools {tools}  "
            f"{rate:.1f} fps processed ({stats.skipped_share:.0%} skipped)")


def _live(args: argparse.Namespace) -> int:
    from analysis.live import LiveSession, analyse_recording, parse_source

    parse_source(args.source)  # a bad SOURCE fails before anything loads
    out = Path(args.out) if args.out else None
    record_to = None
    if out is not None:
        from analysis.results import check_output_folder

        check_output_folder(out / "case")
        record_to = out / "recording.mp4"
        if record_to.exists():
            raise CLIError(f"{str(record_to)!r} exists already; choose a new --out folder")
    settings = None if out is not None else _settings(args)
    started = datetime.now()
    session = LiveSession(args.source, tracker=None if args.no_track else args.tracker,
                          phase_model=None if args.no_phase else (args.phase_model or "phase"), imgsz=args.imgsz,
                          max_seconds=args.seconds, record_to=record_to)
    source = session.start()
    print(f"live: {source.kind} {source.label}, {source.fps:g} fps, {source.size[0]}x{source.size[1]}"
          + (f", {source.duration_s:.1f} s" if source.duration_s else "") + " (Ctrl+C stops)", flush=True)
    # Ctrl+C asks the session to stop; the recording is still kept. A second one interrupts.
    stopping = threading.Event()

    def on_interrupt(*_):
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()
        session.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        next_line = 0.0
        for update in session:
            if update.stats.elapsed_s >= next_line:
                print(_status_line(update), flush=True)
                next_line = float(int(update.stats.elapsed_s) + 1)
        result = session.finish()
    except BaseException:
        session.abort()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    summary = result.to_dict()
    summary["phases"] = [p.to_dict() for p in result.phases]
    if result.recording is None:
        raise CLIError("no frame was read from the source: nothing to keep")
    if out is not None:
        print(f"live: recording kept as {result.recording}; analysing it into {out / 'case'}", flush=True)
        case = analyse_recording(result.recording, out / "case")
        summary["case"] = {"out": str(out / "case"), "wall_seconds": case.get("wall_seconds")}
    else:
        from library.live import keep_recording, live_title
        from library.store import Library

        with Library(settings) as library:
            case, created = keep_recording(library, result.recording, title=live_title(started))
        summary["recording"] = None  # the library holds it now
        summary["case"] = {"id": case.id, "title": case.title, "status": case.status, "created": created}
        print(f"live: kept as case {case.id} ({case.title}), {case.status} for analysis", flush=True)
    print(json.dumps(summary), flush=True)
    return 0


def register(sub) -> None:
    """Add `live`."""
    p = sub.add_parser("live", help="analyse a file (at its real rate), a capture device or a stream URL as it plays")
    p.add_argument("source", help="a video file, a capture device index (0, 1, ...) or an rtsp:// / http(s):// URL")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", help="keep the session in this folder: OUT/recording.mp4 and its analysis OUT/case")
    where.add_argument("--library", action="store_true",
                       help="keep the session as a library case queued for analysis (the default)")
    p.add_argument("--seconds", type=positive_float, help="stop after this many seconds of video")
    p.add_argument("--tracker", default="bytetrack", help="bytetrack, botsort or a YAML path (default bytetrack)")
    p.add_argument("--no-track", action="store_true", help="no tracking (boxes without ids)")
    p.add_argument("--no-phase", action="store_true", help="no phase recognition")
    p.add_argument("--phase-model", default=None, help="temporal phase model folder (default: shipped)")
    p.add_argument("--imgsz", type=positive_int, default=320, help="detector input size in pixels (default 320, as trained)")
    _add_location(p)
    p.set_defaults(func=_live)

