"""`surglens worker` (the background analysis process) and `surglens library ...` admin commands."""
from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from app.cli import positive_float


def _settings(args: argparse.Namespace):
    from library.config import Settings

    return Settings.from_env(data_dir=args.data_dir, db_url=args.db_url)


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="library folder (default: $SURGLENS_DATA_DIR or ./data)")
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: $SURGLENS_DB_URL or SQLite in the data folder)")


def _worker(args: argparse.Namespace) -> int:
    from library.store import Library
    from library.worker import Worker, exit_when_hung, setup_worker_logging

    settings = _settings(args)
    log_path = setup_worker_logging(settings)
    # ultralytics keeps its settings inside the data folder it finds here (models/_ultralytics.py).
    previous_dir = os.environ.get("SURGLENS_DATA_DIR")
    os.environ["SURGLENS_DATA_DIR"] = str(settings.data_dir)
    try:
        with Library(settings) as library:
            worker = Worker(library, poll_s=args.poll_seconds, on_hang=exit_when_hung)
            previous = signal.signal(signal.SIGTERM, lambda *_: worker.stop())  # finish cleanly: job back to queue
            print(f"surglens worker {worker.worker_id}: library {settings.data_dir}, log {log_path}", flush=True)
            try:
                worker.run(once=args.once)
            finally:
                signal.signal(signal.SIGTERM, previous)
    finally:
        if previous_dir is None:
            os.environ.pop("SURGLENS_DATA_DIR", None)
        else:
            os.environ["SURGLENS_DATA_DIR"] = previous_dir
    return 0


def _case_line(case) -> dict:
    return {"id": case.id, "title": case.title, "status": case.status, "error": case.error,
            "duration_s": case.duration_s, "tags": list(case.tags), "phases": list(case.phases_present),
            "tools": list(case.tools_present)}


def _add_files(args: argparse.Namespace) -> int:
    """`library ingest` (videos) and `library import` (files of this machine by path): a JSON line per file."""
    from library.store import Library

    ingest = args.library_command == "ingest"
    with Library(_settings(args)) as library:
        for path in args.videos if ingest else args.paths:
            case, created = library.ingest(path) if ingest else library.import_file(path)
            print(json.dumps({**_case_line(case), "created": created}))
    return 0


def _list(args: argparse.Namespace) -> int:
    from library.store import Library

    with Library(_settings(args)) as library:
        cases = library.list_cases(text=args.text, tags=args.tag or (), statuses=args.status or (),
                                   phases=args.phase or (), tools=args.tool or ())
        for case in cases:
            print(json.dumps(_case_line(case)))
    return 0


def _requeue(args: argparse.Namespace) -> int:
    from library.store import Library

    with Library(_settings(args)) as library:
        print(json.dumps(_case_line(library.requeue(args.case_id))))
    return 0


def _mask(args: argparse.Namespace) -> int:
    from app.cli import CLIError
    from library.store import Library

    if not args.region and not args.clear:
        raise CLIError("give --region X0,Y0,X1,Y1 (repeatable) or --clear")
    with Library(_settings(args)) as library:
        case = library.set_mask_regions(args.case_id, [] if args.clear else args.region)
        print(json.dumps({"id": case.id, "mask_regions": [list(r) for r in case.mask_regions]}))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from app.cli import CLIError
    from library.store import Library

    with Library(_settings(args)) as library:
        case = library.get_case(args.case_id)
        if not args.yes:
            raise CLIError(f"this removes case {case.id} ({case.title!r}): its video, results, comments and "
                           "teaching-set entries; run again with --yes to delete it")
        library.delete_case(case.id)
        print(json.dumps({"id": case.id, "title": case.title, "deleted": True}))
    return 0


def _export_corrections(args: argparse.Namespace) -> int:
    from library.store import Library
    from library.teaching import Teaching

    with Library(_settings(args)) as library:
        entries = Teaching(library).export_corrections(args.out, include=args.include)
    frames = json.loads((Path(args.out) / "corrections.json").read_text())["box_frames"]
    print(json.dumps({"out": args.out, "cases": [e["video"] for e in entries], "included": args.include,
                      "box_frames": len(frames), "boxes": sum(f["boxes"] for f in frames),
                      "yolo": str(Path(args.out) / "yolo" / "data.yaml"),
                      "coco": str(Path(args.out) / "coco" / "annotations" / "instances.json")}))
    return 0


def _export(args: argparse.Namespace) -> int:
    from library.export import export_case, export_collection, html_report
    from library.store import Library

    with Library(_settings(args)) as library:
        if args.collection:
            export_collection(library, args.id, args.out)
        else:
            export_case(library, args.id, args.out)
            if args.html:
                with open(args.html, "w", encoding="utf-8") as f:
                    f.write(html_report(library, args.id))
    print(args.out)
    return 0


def register(sub) -> None:
    """Add `worker` and `library` subcommands."""
    worker = sub.add_parser("worker", help="run the background analysis worker (takes jobs from the library)")
    worker.add_argument("--once", action="store_true", help="exit when the queue is empty instead of waiting")
    worker.add_argument("--poll-seconds", type=positive_float, default=2.0, help="wait between queue checks (default 2)")
    _add_location(worker)
    worker.set_defaults(func=_worker)

    lib = sub.add_parser("library", help="case library administration")
    lib_sub = lib.add_subparsers(dest="library_command", required=True)

    ingest = lib_sub.add_parser("ingest", help="add videos to the library and queue their analysis")
    ingest.add_argument("videos", nargs="+")
    _add_location(ingest)
    ingest.set_defaults(func=_add_files)

    listing = lib_sub.add_parser("list", help="list cases as JSON lines")
    listing.add_argument("--text")
    listing.add_argument("--tag", action="append")
    listing.add_argument("--status", action="append", choices=("queued", "running", "done", "failed"))
    listing.add_argument("--phase", action="append")
    listing.add_argument("--tool", action="append")
    _add_location(listing)
    listing.set_defaults(func=_list)

    imports = lib_sub.add_parser("import", help="add video files of this machine by path (no upload size limit; "
                                                "copied, never moved)")
    imports.add_argument("paths", nargs="+", help="absolute paths of video files")
    _add_location(imports)
    imports.set_defaults(func=_add_files)

    from app.cli.video import _mask_region

    mask = lib_sub.add_parser("mask", help="black out burned-in text (a name, a date) in a case's annotated clips, "
                                           "report frames and, from its next analysis, its annotated video")
    mask.add_argument("case_id", type=int)
    mask.add_argument("--region", action="append", default=[], type=_mask_region, metavar="X0,Y0,X1,Y1",
                      help="a rectangle in fractions of the frame (e.g. 0,0,0.35,0.08); repeat for several")
    mask.add_argument("--clear", action="store_true", help="remove the case's mask")
    _add_location(mask)
    mask.set_defaults(func=_mask)

    requeue = lib_sub.add_parser("requeue", help="analyse a case again")
    requeue.add_argument("case_id", type=int)
    _add_location(requeue)
    requeue.set_defaults(func=_requeue)

    delete = lib_sub.add_parser("delete", help="remove a case: its video, results, comments and set entries")
    delete.add_argument("case_id", type=int)
    delete.add_argument("--yes", action="store_true", help="really delete (without it nothing is removed)")
    _add_location(delete)
    delete.set_defaults(func=_delete)

    corrections = lib_sub.add_parser(
        "export-corrections", help="write the educators' corrections: phases as a cholec80-labels folder for "
                                   "train-phase, instrument boxes with their frames as YOLO (for train-detector "
                                   "--corrections) and COCO")
    corrections.add_argument("out", help="folder to write (phase_annotations/ + tool_annotations/, yolo/, coco/)")
    corrections.add_argument("--include", help="also link in this cholec80-labels folder (e.g. the official one)")
    _add_location(corrections)
    corrections.set_defaults(func=_export_corrections)

    export = lib_sub.add_parser("export", help="export a case (or --collection) as a zip")
    export.add_argument("id", type=int, help="case id (collection id with --collection)")
    export.add_argument("--out", required=True, help="zip file to write")
    export.add_argument("--collection", action="store_true", help="the id is a collection's")
    export.add_argument("--html", help="also write the case's HTML report here")
    _add_location(export)
    export.set_defaults(func=_export)
