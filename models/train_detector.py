"""Training the instrument detector (ultralytics YOLO from scratch, CPU by default)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models._ultralytics import load_ultralytics


@dataclass
class DetectorTrainConfig:
    """Settings of one detector training run; the defaults are the shipped model's."""

    data: str  # ultralytics data.yaml
    out_dir: str = "runs/detector"
    name: str = "train"
    arch: str = "yolo11n.yaml"  # built from scratch: no pretrained download
    epochs: int = 50
    imgsz: int = 320
    batch: int = 16
    seed: int = 0
    device: str = ""  # "" = GPU if present else CPU
    workers: int = 2
    patience: int = 0  # no early stop: val runs only at the end
    validate_each_epoch: bool = False


def train_detector(cfg: DetectorTrainConfig, resume: bool = True) -> Path:
    """Train (or resume) a detector; returns the path of the last checkpoint.

    A run folder holding weights/last.pt is resumed with its own saved settings, so an interrupted
    run continues where it stopped with the same schedule.
    """
    ul = load_ultralytics()
    import torch

    run_dir = Path(cfg.out_dir) / cfg.name
    last = run_dir / "weights" / "last.pt"
    if resume and last.exists():
        # ultralytics marks a finished run's checkpoint with epoch -1 (optimizer stripped): nothing to resume.
        if torch.load(last, map_location="cpu", weights_only=False).get("epoch", -1) == -1:
            return last
        ul.YOLO(str(last)).train(resume=True)
        return last
    device = cfg.device or ("0" if torch.cuda.is_available() else "cpu")
    model = ul.YOLO(cfg.arch)
    model.train(
        data=cfg.data,
        epochs=cfg.epochs,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        seed=cfg.seed,
        deterministic=True,
        device=device,
        workers=cfg.workers,
        project=str(Path(cfg.out_dir).resolve()),
        name=cfg.name,
        exist_ok=True,
        pretrained=False,
        amp=False,
        patience=cfg.patience or cfg.epochs,
        val=cfg.validate_each_epoch,
        plots=False,
        cache="ram",
    )
    return last


def prepare_dataset(data: str | Path, work_dir: str | Path) -> Path:
    """An ultralytics data.yaml for `data`: itself if it is one, else converted from a VOC root.

    A VOC root trains on its `trainval` split and validates on `test` (the m2cai16 protocol).
    """
    data = Path(data)
    if data.suffix in (".yaml", ".yml"):
        if not data.exists():
            raise FileNotFoundError(f"dataset file {str(data)!r} does not exist")
        return data
    from models.datasets.yolo import voc_to_yolo

    return voc_to_yolo(data, Path(work_dir) / data.name, {"train": ["trainval"], "val": ["test"]})


def export_detector(run_dir: str | Path, dest: str | Path, version: str = "1.0.0") -> Path:
    """Write a run's final weights (optimizer stripped) and metadata.json into a model folder."""
    import csv
    import json
    import shutil

    import yaml

    ul = load_ultralytics()
    from ultralytics.utils.torch_utils import strip_optimizer

    run_dir, dest = Path(run_dir), Path(dest)
    last = run_dir / "weights" / "last.pt"
    if not last.exists():
        raise FileNotFoundError(f"no weights/last.pt in run folder {str(run_dir)!r}")
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / "weights.pt"
    shutil.copy(last, weights)
    strip_optimizer(weights)
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    names = ul.YOLO(str(weights)).names
    from models.registry import write_metadata

    old = json.loads((dest / "metadata.json").read_text()) if (dest / "metadata.json").exists() else {}
    write_metadata(dest, {
        **old,
        "name": "surglens-instrument-detector",
        "kind": "detector",
        "architecture": Path(args.get("model", "yolo11n.yaml")).stem + " (ultralytics, trained from scratch)",
        "version": version,
        "classes": [names[i] for i in sorted(names)],
        "input_size": int(args["imgsz"]),
        "box_convention": "whole visible instrument (shaft and tip), xyxy pixels",
        "training": {
            "data": "m2cai16-tool-locations trainval (2,248 frames, videos 1-10), official split",
            "data_licence": "CC BY-NC-SA 4.0 (CAMMA); Jin et al. 2018 WACV",
            "epochs_completed": len(rows),
            "epochs_planned": int(args["epochs"]),
            "batch": int(args["batch"]),
            "seed": int(args["seed"]),
            "device": str(args.get("device")),
            "train_seconds": _train_seconds(rows),
        },
        "licence": "AGPL-3.0 (weights trained by SurgLens with ultralytics); data CC BY-NC-SA 4.0: non-commercial research and education",
    })
    return dest


def _train_seconds(rows: list[dict]) -> float:
    """Total training time from results.csv, whose `time` column restarts at each resume."""
    total, prev = 0.0, 0.0
    for row in rows:
        t = float(row["time"])
        total += t - prev if t > prev else t
        prev = t
    return round(total, 1)
