"""`surglens probe VIDEO` and `surglens analyze VIDEO --out DIR`."""
from __future__ import annotations

import argparse
import json
import sys


def _probe(args: argparse.Namespace) -> int:
    from video import probe

    print(json.dumps(probe(args.video).to_dict(), indent=2))
    return 0


def _sample_fps(value: str) -> float | None:
    from app.cli import positive_float

    return None if value == "all" else positive_float(value)


def _mask_region(text: str):
    from video.mask import parse_region_text

    try:
        return parse_region_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_seconds(value: str) -> float:
    from app.cli import positive_float

    return positive_float(value)


def _analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from analysis.analyze import AnalysisConfig, analyze_video
    from analysis.pipeline import Progress
    from analysis.results import check_output_folder
    from video import probe

    check_output_folder(args.out)  # fail fast, before any model loads, on a folder we must not replace
    info = probe(args.video, content_hash=False)  # ... and on a bad file (the pipeline hashes it, once)
    config = AnalysisConfig(
        sample_fps=args.sample_fps, detect=not args.no_detect, track=not args.no_track, tracker=args.tracker,
        phase=not args.no_phase, quality=not args.no_quality,
        annotate=False if args.no_annotate else (True if args.annotate else None),
        detector_weights=args.detector, phase_weights=args.phase_model, detect_every=args.detect_every,
        mask_regions=[list(r) for r in args.mask] or None,
        anatomy=not args.no_anatomy, anatomy_every_s=args.anatomy_every, anatomy_weights=args.anatomy_model,
    )
    bar = tqdm(total=None, unit="frame", disable=args.quiet or not sys.stderr.isatty() and not args.progress, file=sys.stderr)

    def progress(p: Progress) -> None:
        if bar.total != p.total:
            bar.total = p.total
        bar.set_description(p.stage)
        bar.n = p.done
        bar.refresh()

    try:
        case = analyze_video(args.video, args.out, config, progress)
    finally:
        bar.close()
    summary = {
        "out": args.out,
        "video": {k: info.to_dict()[k] for k in ("width", "height", "fps", "frame_count", "duration_s")},
        "frames_analysed": case.sampling.frames_analysed,
        "stages": {k: v.seconds for k, v in case.stages.items()},
        "wall_seconds": case.wall_seconds,
    }
    print(json.dumps(summary, indent=2))
    return 0


def register(sub) -> None:
    """Add the video subcommands."""
    p = sub.add_parser("probe", help="print a video's properties as JSON")
    p.add_argument("video")
    p.set_defaults(func=_probe)

    p = sub.add_parser("analyze", help="analyse a video into a case folder (case.json + tables + annotated video)")
    p.add_argument("video")
    p.add_argument("--out", required=True, help="output folder: new, empty or a previous case, which is replaced "
                   "atomically when the analysis completes (any other folder is refused, never deleted)")
    p.add_argument("--sample-fps", type=_sample_fps, default=1.0, help="frames per second to analyse, or 'all' (default 1)")
    p.add_argument("--tracker", default="bytetrack", help="bytetrack, botsort or a YAML path")
    p.add_argument("--detect-every", type=int, default=1, metavar="K",
                   help="run the detector on every K-th analysed frame and track boxes between (default 1: every frame)")
    p.add_argument("--detector", default=None, help="detector model folder or .pt (default: shipped)")
    p.add_argument("--phase-model", default=None, help="phase model folder (default: shipped)")
    p.add_argument("--anatomy-model", default=None, help="anatomy model folder (default: shipped assets/models/anatomy)")
    p.add_argument("--anatomy-every", type=_positive_seconds, default=None, metavar="S",
                   help="anatomy masks and CVS criteria every S seconds (default: 1 below 10 minutes of video, else 5)")
    for stage in ("detect", "track", "phase", "quality", "annotate", "anatomy"):
        p.add_argument(f"--no-{stage}", action="store_true", help=f"skip the {stage} stage")
    p.add_argument("--annotate", action="store_true",
                   help="write the annotated video at any analysed rate (default: only from 5 analysed fps on)")
    p.add_argument("--mask", action="append", default=[], type=_mask_region, metavar="X0,Y0,X1,Y1",
                   help="black out this rectangle (fractions of the frame, e.g. 0,0,0.35,0.08 for a name and "
                        "date burned in at the top left) in the annotated video; repeat for several")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--progress", action="store_true", help="progress bar even when stderr is not a terminal")
    p.set_defaults(func=_analyze)
