"""`surglens` diagnosis commands: build datasets, train/evaluate classifiers and segmenters, diagnose an image."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    """Add the diagnosis subcommands to the parser."""
    p = sub.add_parser("build-diagnosis-data", help="turn ../shared/data into diagnosis datasets under runs/")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "datasets" / "diagnosis", help="output folder (keep it under runs/)")
    p.set_defaults(func=_build)

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
        if kind == "segmenter":
            p.add_argument("--classes", nargs="+", default=["background", "foreground"], help="class names, background first")
        p.set_defaults(func=_train, kind=kind)

        p = sub.add_parser(f"eval-{kind}", help=f"evaluate an image {kind}; JSON to stdout and --json")
        p.add_argument("model", help="model name, folder or weights file")
        p.add_argument("data", type=Path)
        p.add_argument("--json", type=Path, default=None, help="also write the report here")
        p.add_argument("--threads", type=int, default=1)
        p.set_defaults(func=_eval, kind=kind)

    p = sub.add_parser("diagnose", help="analyse one still image (PNG/JPEG/TIFF/DICOM) and print JSON")
    p.add_argument("image", type=Path)
    p.add_argument("--model", default="surgical-still", help="'surgical-still' (default) or a classifier/segmenter model")
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


def _train(args: argparse.Namespace) -> int:
    import torch

    from models.diagnosis import train

    torch.set_num_threads(args.threads)
    common = dict(architecture=args.arch, input_size=args.input_size, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                  batch_size=args.batch_size, lr=args.lr, init=args.init, modality=args.modality, name=args.name,
                  seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    if args.kind == "classifier":
        entry = train.train_classifier(args.data, args.out, **common)
    else:
        entry = train.train_segmenter(args.data, args.out, classes=args.classes, **common)
    print(json.dumps({"model": entry.name, "weights": str(entry.weights), "classes": entry.classes}, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    from models.diagnosis import train

    torch.set_num_threads(args.threads)
    fn = train.evaluate_classifier if args.kind == "classifier" else train.evaluate_segmenter
    report = fn(args.model, args.data)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
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
    result = diagnose(image, load_analyzer(args.model), frame=args.frame, window=presets[args.window])
    if args.overlays:
        import cv2

        args.overlays.mkdir(parents=True, exist_ok=True)
        for name, rgb in result.overlays.items():
            cv2.imwrite(str(args.overlays / f"{name.replace(': ', '-').replace(' ', '_')}.png"), rgb[..., ::-1])
    print(json.dumps(result.to_dict(), indent=2))
    return 0
