"""`surglens train-anatomy | eval-anatomy`: the anatomy segmenter and its CVS head."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from app.cli import emit_json, positive_int


def _train(args: argparse.Namespace) -> int:
    from models.anatomy.evaluate import export_model
    from models.anatomy.train import TrainConfig, train_segmenter

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, input_size=(args.input_size[0], args.input_size[1]),
                      width=args.width, init=args.init, max_frames=args.max_frames, threads=args.threads)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    train_segmenter(args.data, args.run, cfg, resume=args.resume, train_split=args.train_split,
                    val_split=args.val_split, log=log)
    weights = export_model(args.run, args.data, args.out, train_split=args.train_split, log=log)
    print(f"exported: {weights}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from models.anatomy.evaluate import evaluate_anatomy

    result = evaluate_anatomy(args.model, args.data, args.split, threads=args.threads)
    if args.card:
        from models.anatomy.card import write_card

        parts = ["surglens", "eval-anatomy", "--data", args.data, "--split", args.split]
        parts += ["--model", args.model] if args.model else []
        command = " ".join(shlex.quote(str(p)) for p in parts + ["--card"])
        card = write_card(Path(result["model"]).parent, result, command)
        print(f"wrote {card}", file=sys.stderr)
    emit_json(result, args.json)
    return 0


def register(sub) -> None:
    """Add the anatomy subcommands."""
    p = sub.add_parser("train-anatomy", help="train (or resume) the anatomy segmenter, fit the CVS head, export the model")
    p.add_argument("--data", required=True, help="folder in the endoscapes-seg50 layout (images/, masks/, labels.json)")
    p.add_argument("--out", default="assets/models/anatomy", help="model folder to write (weights.pt, metadata.json)")
    p.add_argument("--run", default="runs/anatomy", help="run folder: checkpoints every epoch, best.pt, summary.json")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--input-size", type=positive_int, nargs=2, default=[256, 448], metavar=("H", "W"),
                   help="network input, multiples of 32")
    p.add_argument("--width", type=positive_int, default=48, help="decoder width")
    p.add_argument("--init", default="assets/models/detector/weights.pt", help="ultralytics detector whose backbone starts the encoder")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val", help="selects the best epoch; never trained on")
    p.add_argument("--max-frames", type=positive_int, default=None, help="only the first N train frames (smoke tests)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval-anatomy", help="Dice/IoU per class and CVS AP of the anatomy model on one split")
    p.add_argument("--data", required=True, help="folder in the endoscapes-seg50 layout")
    p.add_argument("--split", required=True, help="key of labels.json, e.g. val")
    p.add_argument("--model", default=None, help="model folder or weights file (default: the shipped anatomy model)")
    p.add_argument("--json", default=None, help="also write the result to this file")
    p.add_argument("--card", action="store_true", help="write MODEL_CARD.md and metadata evaluation of the model folder")
    p.add_argument("--threads", type=positive_int, default=None)
    p.set_defaults(func=_eval)
