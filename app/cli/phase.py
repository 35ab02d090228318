"""`surglens train-phase | eval-phase`: the phase model's training and evaluation (core in models/phase)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metrics.phase import RELAXED_WINDOW_S


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _config(args: argparse.Namespace):
    from models.phase.model import PhaseModelConfig

    return PhaseModelConfig(head=args.head, temperature=args.temperature, substates=args.substates, seed=args.seed)


def _headline(evaluation: dict) -> dict:
    """The numbers to print: strict and relaxed accuracy of each variant, mean over videos."""
    return {
        variant: {rule: rules[rule]["accuracy"] for rule in ("strict", "relaxed")}
        for variant, rules in evaluation["mean_over_videos"].items()
    }


def _train_temporal(args: argparse.Namespace, label_root: str) -> int:
    from models.phase.sequences import is_label_root
    from models.phase.temporal_train import train_temporal

    frames = [d for d in args.data if not is_label_root(d)]
    if len(frames) > 1:
        raise ValueError(f"give at most one CholecT50 root beside the labels, got {frames}")
    from models.phase.temporal import TemporalConfig

    clips = sorted(str(p) for c in args.clips or [] for p in (sorted(Path(c).glob("*.mp4")) if Path(c).is_dir() else [Path(c)]))
    config = TemporalConfig(seed=args.seed)
    if args.epochs:
        config.epochs = config.clip_epochs = args.epochs
    result = train_temporal(label_root, frames[0] if frames else None, args.out, m2cai_root=args.m2cai, clips=clips,
                            config=config,
                            detector=args.detector, cache_dir=args.cache or None, anatomy=args.anatomy,
                            folds=not args.no_lovo, log=_log)
    print(json.dumps({"model": args.out, "evaluation": result["metadata"]["evaluation"]}, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from models.phase.sequences import is_label_root
    from models.phase.train import dump_json, train_phase_model

    labels = [d for d in args.data if is_label_root(d)]
    if len(labels) > 1:
        raise ValueError(f"give one cholec80-labels folder, got {labels}")
    if labels:
        return _train_temporal(args, labels[0])

    result = train_phase_model(
        args.data, args.out, detector=args.detector, config=_config(args), cache_dir=args.cache or None,
        videos=args.videos, lovo=not args.no_lovo, relaxed_s=args.relaxed, version=args.version, log=_log,
    )
    if args.report and result["evaluation"] is not None:
        dump_json(result["evaluation"], args.report)
    summary = {"model": args.out, "videos": result["metadata"]["training"]["videos"]}
    if result["evaluation"] is not None:
        summary["leave_one_video_out_accuracy"] = _headline(result["evaluation"])
    print(json.dumps(summary, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from models.phase import TemporalPhaseModel, load_phase_model
    from models.phase.train import dump_json, evaluate_phase_model

    model = load_phase_model(args.weights)
    if isinstance(model, TemporalPhaseModel):
        from models.phase.temporal_train import evaluate_temporal

        if args.lovo:
            raise ValueError("--lovo retrains the HMM baseline; the temporal model's folds are in `surglens train-phase`")
        result = evaluate_temporal(model, args.data, detector=args.detector, videos=args.videos, relaxed_s=args.relaxed,
                                   log=_log)
        if args.out:
            dump_json(result, args.out)
        print(json.dumps({"default_variant": result["default_variant"], "videos": result["protocol"]["videos"],
                          "accuracy": _headline(result)}, indent=2))
        return 0

    result = evaluate_phase_model(
        args.data, weights=args.weights, detector=args.detector, cache_dir=args.cache or None, videos=args.videos,
        lovo=args.lovo, relaxed_s=args.relaxed, log=_log,
    )
    if args.out:
        dump_json(result, args.out)
    print(json.dumps({"protocol": result["protocol"]["scheme"], "videos": result["protocol"]["videos"],
                      "accuracy": _headline(result)}, indent=2))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", action="append", required=True,
                   help="CholecT50 root (labels/ + videos/), Cholec80 root (videos/ + phase_annotations/) or, to train the "
                        "temporal model, a cholec80-labels folder (phase_annotations/ + tool_annotations/); repeatable")
    p.add_argument("--videos", nargs="+", help="only these videos (e.g. VID68 VID70)")
    p.add_argument("--detector", default=None, help="detector model folder or .pt for the features (default: shipped detector)")
    p.add_argument("--cache", default="runs/phase/features", help="frame-feature cache folder ('' to disable)")
    p.add_argument("--relaxed", type=float, default=RELAXED_WINDOW_S, help="relaxed-boundary window in seconds")


def register(sub) -> None:
    """Add the phase subcommands."""
    from models.phase.model import PhaseModelConfig
    from models.phase.train import MODEL_VERSION

    defaults = PhaseModelConfig()
    p = sub.add_parser("train-phase", help="train the phase model (leave-one-video-out report, then fit on all videos)")
    _common(p)
    p.add_argument("--out", default="assets/models/phase", help="model folder to write (weights.pt, metadata.json, MODEL_CARD.md)")
    p.add_argument("--head", default=defaults.head, choices=["bernoulli", "linear"])
    p.add_argument("--temperature", type=float, default=defaults.temperature, help="weight of the per-second evidence")
    p.add_argument("--substates", type=int, default=defaults.substates, help="HMM sub-states per phase (duration sharpness)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--version", default=MODEL_VERSION)
    p.add_argument("--no-lovo", action="store_true", help="skip the leave-one-video-out evaluation")
    p.add_argument("--report", help="also write the full leave-one-video-out JSON here")
    p.add_argument("--m2cai", help="m2cai16-tool-locations root: its test frames measure the detector's noise (temporal model)")
    p.add_argument("--clips", nargs="+", help="shared clips (files or a folder) to score the shipped temporal model on")
    p.add_argument("--epochs", type=int, help="temporal model: training epochs of every variant (default: its config)")
    p.add_argument("--anatomy", help="anatomy model (e.g. 'anatomy'): its class areas separate Calot triangle from "
                                     "gallbladder dissection in clips (temporal model)")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval-phase", help="accuracy, per-phase P/R/Jaccard/F1, confusion matrix (strict and relaxed)")
    _common(p)
    p.add_argument("--weights", default=None, help="phase model folder or weights file (default: shipped)")
    p.add_argument("--lovo", action="store_true", help="leave-one-video-out: retrain per fold with the model's config")
    p.add_argument("--out", help="write the JSON result here too")
    p.set_defaults(func=_eval)
