"""`surglens` diagnosis commands: build datasets, train/evaluate classifiers and segmenters, diagnose an image."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli import emit_json

REPO = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    """Add the diagnosis subcommands to the parser."""
    p = sub.add_parser("build-diagnosis-data", help="turn ../shared/data into diagnosis datasets under runs/")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "datasets" / "diagnosis", help="output folder (keep it under runs/)")
    p.set_defaults(func=_build)

    p = sub.add_parser("build-modality-data", help="labelled folder (images/ + labels.csv with groups) for the modality classifier")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "datasets" / "diagnosis" / "modality-v3", help="output folder (under runs/)")
    p.add_argument("--per-class", type=int, default=300, help="at most this many images per modality")
    p.set_defaults(func=_build_modality)

    for kind in ("classifier", "segmenter"):
        p = sub.add_parser(f"train-{kind}", help=f"train an image {kind} (torchvision architecture, no downloads)")
        p.add_argument("data", type=Path, help="ImageFolder root (<class>/<image>)" if kind == "classifier" else "folder with images/ and masks/")
        p.add_argument("--out", type=Path, required=True, help="model folder to write (weights.pt + metadata.json + MODEL_CARD.md)")
        p.add_argument("--arch", default="mobilenet_v3_small" if kind == "classifier" else "lraspp_mobilenet_v3_large")
        p.add_argument("--input-size", type=int, default=128 if kind == "classifier" else 160)
        p.add_argument("--epochs", type=int, default=10)
        p.add_argument("--steps-per-epoch", type=int, default=None)
        p.add_argument("--batch-size", type=int, default=16 if kind == "classifier" else 4)
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--init", default=None, help="start from our weights (model name, folder or file) instead of scratch")
        p.add_argument("--modality", default="any", help="what images the model is for (recorded in metadata)")
        p.add_argument("--name", default=None, help="model name (default: the folder name)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        p.add_argument("--group-by", default=None, help="labels.csv folder only: column whose groups (lesion_id, patientid) "
                       "never straddle our train/val/test split (default: each image its own group)")
        p.add_argument("--fractions", type=float, nargs=3, default=[0.70, 0.15, 0.15], metavar=("TRAIN", "VAL", "TEST"),
                       help="labels.csv folder only: split fractions by group")
        p.add_argument("--checkpoints", type=Path, default=None, help="labels.csv folder only: write last.pt/best.pt here each epoch")
        p.add_argument("--time-budget", type=float, default=None, help="labels.csv folder only: stop after this many seconds")
        if kind == "classifier":
            p.add_argument("--positive", default=None, help="two classes: the class whose score is thresholded (chosen on val)")
            p.add_argument("--no-vflip", action="store_true", help="no vertical flips in augmentation (e.g. radiographs)")
            p.add_argument("--grey", action="store_true", help="no saturation/hue jitter (greyscale images)")
            p.add_argument("--centre-crop", type=float, default=None, help="train and predict on the middle FRACTION of each "
                           "side only (drops borders, corner letters: a source-bias guard)")
            p.add_argument("--no-erase", action="store_true", help="no random erasing in augmentation")
            p.add_argument("--min-scale", type=float, default=0.4, help="smallest random crop (fraction of the image area)")
        if kind == "segmenter":
            p.add_argument("--classes", nargs="+", default=["background", "foreground"], help="class names, background first")
        p.set_defaults(func=_train, kind=kind)

        p = sub.add_parser(f"eval-{kind}", help=f"evaluate an image {kind}; JSON to stdout and --json")
        p.add_argument("model", help="model name, folder or weights file")
        p.add_argument("data", type=Path)
        p.add_argument("--json", type=Path, default=None, help="also write the report here")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--split", default=None, help="labels.csv folder: only rows of this split; when labels.csv has none "
                       "(the shared sets say train everywhere) the split recorded in the model's metadata.json is used")
        p.add_argument("--card", action="store_true", help="record the result in metadata.json and rewrite MODEL_CARD.md")
        p.add_argument("--notes", type=Path, default=None, help="with --card: JSON of card fields to merge into metadata "
                       "(goals, findings, limits, licence, intended_use)")
        if kind == "classifier":
            p.add_argument("--bias-check", action="store_true", help="also score centre crops / centre-blanked images and "
                           "measure where Grad-CAM looks (source-bias check)")
            p.add_argument("--gradcam-dir", type=Path, default=None, help="with --bias-check: save a few Grad-CAM overlays here")
        p.set_defaults(func=_eval, kind=kind)

    p = sub.add_parser("diagnose", help="analyse one still image (PNG/JPEG/TIFF/DICOM) and print JSON")
    p.add_argument("image", type=Path)
    p.add_argument("--model", default="auto", help="'auto' (default: decide the kind of image, then run the analysis that "
                   "fits it, as the page does), 'surgical-still', or a classifier/segmenter model")
    p.add_argument("--window", default="default", help="display window for DICOM: default, full range, soft tissue, lung, bone, brain")
    p.add_argument("--frame", type=int, default=0, help="frame of a multi-frame image")
    p.add_argument("--overlays", type=Path, default=None, help="write overlay PNGs into this folder")
    p.add_argument("--deidentified-copy", type=Path, default=None, help="write the de-identified copy here")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (decompression-bomb guard)")
    p.set_defaults(func=_diagnose)


def _build(args: argparse.Namespace) -> int:
    from models.diagnosis.data import build_datasets

    summary = build_datasets(args.shared, args.out)
    print(json.dumps({"out": str(args.out), "counts": summary["counts"]}, indent=2))
    return 0


def _build_modality(args: argparse.Namespace) -> int:
    from models.diagnosis.data import build_modality_dataset

    print(json.dumps(build_modality_dataset(args.shared, args.out, per_class=args.per_class), indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch

    from models.diagnosis import train

    torch.set_num_threads(args.threads)
    if (args.data / "labels.csv").is_file():
        return _train_labelled(args)
    common = dict(architecture=args.arch, input_size=args.input_size, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                  batch_size=args.batch_size, lr=args.lr, init=args.init, modality=args.modality, name=args.name,
                  seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    if args.kind == "classifier":
        entry = train.train_classifier(args.data, args.out, **common)
    else:
        entry = train.train_segmenter(args.data, args.out, classes=args.classes, **common)
    print(json.dumps({"model": entry.name, "weights": str(entry.weights), "classes": entry.classes}, indent=2))
    return 0


def _train_labelled(args: argparse.Namespace) -> int:
    """A labels.csv folder: our grouped split, epoch/temperature/threshold chosen on val (models/diagnosis/fit.py)."""
    from models.diagnosis import fit

    common = dict(group_by=args.group_by, architecture=args.arch, input_size=args.input_size, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, fractions=args.fractions, seed=args.seed, modality=args.modality,
                  name=args.name, checkpoint_dir=args.checkpoints, time_budget_s=args.time_budget, init=args.init,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.kind == "classifier":
        entry = fit.train_labelled_classifier(args.data, args.out, positive=args.positive, vflip=not args.no_vflip,
                                              colour=not args.grey, centre_crop=args.centre_crop, erase=not args.no_erase,
                                              min_scale=args.min_scale, **common)
    else:
        entry = fit.train_labelled_segmenter(args.data, args.out, classes=args.classes, **common)
    _record_command(entry)
    print(json.dumps({"model": entry.name, "weights": str(entry.weights), "classes": entry.classes,
                      "split": entry.metadata["split"]["counts"]}, indent=2))
    return 0


def _record_command(entry) -> None:
    """Store the command line that trained a model in its metadata (for the card)."""
    import shlex

    from models.registry import resolve_model, write_metadata

    meta = dict(entry.metadata)
    meta.setdefault("training", {})["command"] = "surglens " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_metadata(entry.weights.parent, meta)
    resolve_model(entry.weights.parent)


def _eval(args: argparse.Namespace) -> int:
    import torch

    from models.diagnosis import train

    torch.set_num_threads(args.threads)
    if (args.data / "labels.csv").is_file():
        from models.diagnosis import evaluation

        if args.kind == "classifier":
            report = evaluation.evaluate_labelled_classifier(args.model, args.data, args.split, bias_check=args.bias_check,
                                                             gradcam_dir=args.gradcam_dir)
        else:
            report = evaluation.evaluate_labelled_segmenter(args.model, args.data, args.split)
        if args.card:
            import shlex

            extra = json.loads(args.notes.read_text()) if args.notes else None
            parts = [f"eval-{args.kind}", args.model, str(args.data)] + (["--split", args.split] if args.split else [])
            if getattr(args, "bias_check", False):
                parts.append("--bias-check")
            command = "surglens " + " ".join(shlex.quote(a) for a in parts) + " --card"
            report["card"] = str(evaluation.write_card(args.model, report, command, extra))
    elif args.split or args.card:
        raise ValueError(f"--split and --card need a folder with labels.csv; {str(args.data)!r} has none")
    else:
        fn = train.evaluate_classifier if args.kind == "classifier" else train.evaluate_segmenter
        report = fn(args.model, args.data)
    emit_json(report, args.json)
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from models.diagnosis.diagnose import diagnose, load_analyzer
    from models.diagnosis.image import DEFAULT_MAX_PIXELS, read_image, write_deidentified

    image = read_image(args.image, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
    presets = image.window_presets()
    if args.window not in presets:
        raise ValueError(f"window {args.window!r} not available for this image; choose from {list(presets)}")
    if args.deidentified_copy:
        write_deidentified(image, args.deidentified_copy)
    ref, decision = args.model, None
    if ref == "auto":
        from models.diagnosis.diagnose import decide_modality, load_router, modality_choices, no_model_text

        decision = decide_modality(image, load_router(), args.frame)
        fitting = list(modality_choices(decision.modality).values()) if decision.confident else []
        if not fitting:
            text = no_model_text(decision.modality) if decision.confident else (
                "the kind of image is uncertain; name an analysis with --model")
            print(json.dumps({"kind_of_image": decision.modality, "decided_by": decision.source,
                              "confidence": decision.confidence, "scores": decision.scores, "analysis": None,
                              "statement": text}, indent=2))
            return 0
        ref = fitting[0]
    result = diagnose(image, load_analyzer(ref), frame=args.frame, window=presets[args.window])
    if args.overlays:
        import cv2

        args.overlays.mkdir(parents=True, exist_ok=True)
        for name, rgb in result.overlays.items():
            cv2.imwrite(str(args.overlays / f"{name.replace(': ', '-').replace(' ', '_')}.png"), rgb[..., ::-1])
    out = result.to_dict()
    if decision is not None:
        out["kind_of_image"] = {"modality": decision.modality, "decided_by": decision.source, "confidence": decision.confidence}
    print(json.dumps(out, indent=2))
    return 0
