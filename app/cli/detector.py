"""`surglens train-detector | eval-detector | eval-tracking | export-detector`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli import emit_json

BACKEND_CHOICES = ("auto", "torch", "openvino", "openvino-int8")  # models.detector.BACKENDS (not imported: keeps --help fast)


def _train(args: argparse.Namespace) -> int:
    from models.train_detector import DetectorTrainConfig, merge_corrections, prepare_dataset, train_detector

    data = prepare_dataset(args.data, Path(args.out) / "datasets")
    if args.corrections:
        data = merge_corrections(data, args.corrections, Path(args.out) / "datasets" / args.name)
    cfg = DetectorTrainConfig(
        data=str(data), out_dir=args.out, name=args.name, epochs=args.epochs, imgsz=args.imgsz,
        batch=args.batch, seed=args.seed, device=args.device,
    )
    last = train_detector(cfg, resume=not args.restart)
    print(f"trained: {last}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from models.eval_detector import evaluate_detector_voc, evaluate_presence

    if bool(args.voc) == bool(args.cholect50):
        raise ValueError("give exactly one of --voc ROOT or --cholect50 ROOT")
    if args.voc:
        result = evaluate_detector_voc(args.weights, args.voc, args.split, args.imgsz, backend=args.backend)
    else:
        from models.datasets.cholect50 import presence_frames

        frames = presence_frames(args.cholect50)
        result = evaluate_presence(args.weights, frames, args.imgsz, data_name=f"CholecT50 {Path(args.cholect50).name}",
                                   backend=args.backend)
    emit_json(result, args.out)
    return 0


def _eval_tracking(args: argparse.Namespace) -> int:
    from models.eval_tracking import evaluate_tracker

    result = evaluate_tracker(args.video, args.gt, args.tracker, args.weights, args.predictions, args.iou,
                              detect_every=args.detect_every, backend=args.backend)
    emit_json(result, args.out)
    return 0


def _backends(args: argparse.Namespace) -> int:
    from models.detector_card import backends_into_card, evaluate_backends

    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if args.write_card:
        result = backends_into_card(args.model, args.voc, args.cholect50, backends, calibration=args.calibration)
    else:
        result = evaluate_backends(args.model, args.voc, args.cholect50, backends, calibration=args.calibration)
    emit_json(result, args.out)
    return 0


def _export(args: argparse.Namespace) -> int:
    from models.train_detector import export_detector

    folder = export_detector(args.run, args.dest, version=args.version)
    print(f"exported: {folder}", file=sys.stderr)
    evals = (args.voc, args.cholect50, args.track_video, args.track_gt)
    if any(evals):
        if not all(evals):
            raise ValueError("model card evaluation needs all of --voc, --cholect50, --track-video and --track-gt")
        from models.detector_card import evaluate_into_card

        emit_json(evaluate_into_card(folder, *evals), None)
    return 0


def register(sub) -> None:
    """Add the detector subcommands."""
    p = sub.add_parser("train-detector", help="train (or resume) the instrument detector on a VOC or YOLO dataset")
    p.add_argument("--data", required=True, help="VOC root (trains on trainval, validates on test) or an ultralytics data.yaml")
    p.add_argument("--out", default="runs/detector", help="runs folder (checkpoints; resumable)")
    p.add_argument("--name", default="train")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="", help="'' = GPU if present, else CPU; or 'cpu', '0'")
    p.add_argument("--restart", action="store_true", help="start over instead of resuming last.pt")
    p.add_argument("--corrections", metavar="DIR", help="also train on the educators' corrected boxes: the yolo/ "
                                                         "folder written by `surglens library export-corrections`")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval-detector", help="box mAP on a VOC split, or tool-presence AP on CholecT50 frames")
    p.add_argument("--weights", default=None, help="model folder or .pt (default: shipped detector)")
    p.add_argument("--voc", help="VOC dataset root (e.g. m2cai16-tool-locations)")
    p.add_argument("--split", default="test")
    p.add_argument("--cholect50", help="CholecT50 root (labels/ + videos/): scores image-level tool presence")
    p.add_argument("--imgsz", type=int, default=None)
    p.add_argument("--backend", choices=BACKEND_CHOICES, default=None, help="inference backend (default: automatic)")
    p.add_argument("--out", help="write the JSON here too")
    p.set_defaults(func=_eval)

    p = sub.add_parser("detector-backends", help="box and presence mAP of each inference backend (torch, openvino) vs torch")
    p.add_argument("model", help="detector model folder (e.g. assets/models/detector)")
    p.add_argument("--voc", required=True, help="VOC root (m2cai16-tool-locations); scores the test split")
    p.add_argument("--cholect50", required=True, help="CholecT50 root for tool-presence AP")
    p.add_argument("--backends", default="torch,openvino", help="comma-separated: torch, openvino, openvino-int8 (default torch,openvino)")
    p.add_argument("--calibration", help="VOC root or data.yaml to calibrate the openvino-int8 export on (its training split)")
    p.add_argument("--write-card", action="store_true", help="write the rows into metadata.json and MODEL_CARD.md")
    p.add_argument("--out", help="write the JSON here too")
    p.set_defaults(func=_backends)

    p = sub.add_parser("eval-tracking", help="MOTA / IDF1 / id switches of detector + tracker on a video with ground truth")
    p.add_argument("--video", required=True)
    p.add_argument("--gt", required=True, help="m2cai16-track JSON or MOTChallenge gt.txt")
    p.add_argument("--tracker", default="bytetrack", help="bytetrack, botsort or a YAML path")
    p.add_argument("--weights", default=None)
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--predictions", help="also write the predicted tracks as MOTChallenge txt")
    p.add_argument("--detect-every", type=int, default=1, metavar="K", help="detector on every K-th frame, boxes predicted between")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default=None, help="inference backend (default: automatic)")
    p.add_argument("--out")
    p.set_defaults(func=_eval_tracking)

    p = sub.add_parser("export-detector", help="copy a training run's final weights into a model folder with metadata")
    p.add_argument("run", help="training run folder (holds weights/last.pt and results.csv)")
    p.add_argument("--dest", default="assets/models/detector")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--voc", help="with the next three: evaluate and write MODEL_CARD.md (VOC root, test split)")
    p.add_argument("--cholect50", help="CholecT50 root for tool-presence AP")
    p.add_argument("--track-video", help="tracking video (m2cai16-track-v10 mp4)")
    p.add_argument("--track-gt", help="its ground truth (JSON or MOTChallenge txt)")
    p.set_defaults(func=_export)
