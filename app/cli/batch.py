"""`surglens batch FOLDER`: analyse many videos on Ray (local by default), results into the library."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from app.cli import CLIError, positive_float, positive_int
from app.cli.library import _add_location, _settings
from app.cli.video import _sample_fps


def _executor(args: argparse.Namespace, settings):
    from library import batch

    return batch.RayExecutor(args.address, args.workers, cpus_per_task=args.cpus_per_task, memory_gb=args.memory_gb,
                             env={"SURGLENS_DATA_DIR": str(settings.data_dir)})


def _batch(args: argparse.Namespace) -> int:
    from library import batch

    if args.folder is None and not args.library:
        raise CLIError("give a FOLDER of videos, or --library to analyse the library's queued cases")
    if args.out and args.library:
        raise CLIError("--out writes plain case folders without the library; it cannot be combined with --library")
    settings = _settings(args)
    config = {"sample_fps": args.sample_fps} if args.sample_fps != "default" else None
    videos = batch.find_videos(args.folder, settings.video_extensions) if args.folder else None
    if args.address and not args.out and settings.database_url.startswith("sqlite"):
        print("warning: on a Ray cluster every node must reach the library: use PostgreSQL (--db-url) and a "
              "data folder every node mounts", flush=True)
    batch.import_ray(local=not args.address)  # a missing Ray fails here, before anything is ingested
    # ultralytics keeps its settings inside the data folder it finds here (models/_ultralytics.py).
    previous_dir = os.environ.get("SURGLENS_DATA_DIR")
    os.environ["SURGLENS_DATA_DIR"] = str(settings.data_dir)
    try:
        result = _run(args, settings, config, videos)
    finally:
        if previous_dir is None:
            os.environ.pop("SURGLENS_DATA_DIR", None)
        else:
            os.environ["SURGLENS_DATA_DIR"] = previous_dir
    print(json.dumps(result.to_dict()))
    return 0 if result.ok else 1


def _run(args: argparse.Namespace, settings, config, videos):
    from library import batch
    from library.store import Library

    def report(line: str) -> None:
        print(line, flush=True)

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        tasks, skipped = batch.folder_tasks(videos, Path(args.folder), out, config or {"sample_fps": settings.sample_fps})
        executor = _executor(args, settings)
        try:
            report(executor.describe())
            result = batch.run_batch(tasks, executor, skipped=skipped, report=report, poll_s=args.poll_seconds,
                                     max_in_flight=args.workers)
        finally:
            executor.close()
    else:
        with Library(settings) as library:
            tasks, skipped = batch.library_tasks(library, videos, retry_failed=args.retry_failed, config=config)
            if args.library and videos is not None:  # the folder's cases and every other queued one
                mine = {t.case_id for t in tasks}
                more, _ = batch.library_tasks(library, None)
                tasks += [t for t in more if t.case_id not in mine]
            executor = _executor(args, settings)
            try:
                report(executor.describe())
                result = batch.run_batch(tasks, executor, skipped=skipped, report=report, poll_s=args.poll_seconds,
                                         live_fraction=batch.case_fraction(library), max_in_flight=args.workers)
            finally:
                executor.close()
    return result


def register(sub) -> None:
    """Add `batch`."""
    p = sub.add_parser("batch", help="analyse many videos on Ray (local by default) into the library")
    p.add_argument("folder", nargs="?", help="folder of videos (searched recursively); each becomes a library case")
    p.add_argument("--library", action="store_true", help="analyse every queued case of the library (too)")
    p.add_argument("--out", help="write plain case folders OUT/<video> instead of library cases")
    p.add_argument("--address", help="join the Ray cluster at this address (default: a local Ray on this machine)")
    p.add_argument("--workers", type=positive_int,
                   help="at most this many videos at once (default: as many as the cores and memory allow)")
    p.add_argument("--cpus-per-task", type=positive_float, default=1.0, help="CPUs one analysis asks for (default 1)")
    p.add_argument("--memory-gb", type=positive_float, default=2.0,
                   help="memory one analysis asks for, in GiB (default 2; its measured peak is 1.8-2.0)")
    p.add_argument("--sample-fps", type=lambda v: v if v == "default" else _sample_fps(v), default="default",
                   help="frames per second to analyse for new cases, or 'all' (default: the library's, 1)")
    p.add_argument("--retry-failed", action="store_true", help="analyse cases that failed before again")
    p.add_argument("--poll-seconds", type=positive_float, default=5.0, help="seconds between progress lines (default 5)")
    _add_location(p)
    p.set_defaults(func=_batch)
