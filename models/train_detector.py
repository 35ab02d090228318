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


def merge_corrections(data_yaml: str | Path, corrections: str | Path, work_dir: str | Path) -> Path:
    """A data.yaml training on `data_yaml`'s train images plus a corrections YOLO set; returns its path.

    `corrections` is the `yolo/` folder of `surglens library export-corrections` (or the export folder holding
    it): images/, labels/, data.yaml. Its labels are renumbered to the dataset's class names (matched through
    the taxonomy's aliases) and written under `work_dir/corrections` beside links to its images; validation
    stays the dataset's own.
    """
    import os

    import yaml

    from models.datasets.voc import DatasetError
    from models.taxonomy import load_taxonomy

    data_yaml, corrections, work_dir = Path(data_yaml), Path(corrections), Path(work_dir)
    if not (corrections / "data.yaml").exists() and (corrections / "yolo" / "data.yaml").exists():
        corrections = corrections / "yolo"
    if not (corrections / "data.yaml").exists() or not (corrections / "images").is_dir():
        raise DatasetError(f"--corrections must be an exported YOLO set (images/, labels/, data.yaml), "
                           f"got {str(corrections)!r}")
    spec = yaml.safe_load(data_yaml.read_text())
    extra = yaml.safe_load((corrections / "data.yaml").read_text())
    names, extra_names = _names(spec, data_yaml), _names(extra, corrections / "data.yaml")
    taxonomy = load_taxonomy()

    def key(name: str) -> str:
        try:
            return taxonomy.tools[taxonomy.tool_id(name)].name
        except KeyError:
            return name.strip().lower()

    index = {key(n): i for i, n in enumerate(names)}
    unknown = sorted({n for n in extra_names if key(n) not in index})
    remap = {i: index.get(key(n)) for i, n in enumerate(extra_names)}
    base = Path(spec.get("path") or data_yaml.parent)
    base = base if base.is_absolute() else (data_yaml.parent / base)
    img_out, lbl_out = work_dir / "corrections" / "images", work_dir / "corrections" / "labels"
    img_out.mkdir(parents=True, exist_ok=True)
    lbl_out.mkdir(parents=True, exist_ok=True)
    added = 0
    for image in sorted((corrections / "images").iterdir()):
        if image.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
            continue
        label = corrections / "labels" / f"{image.stem}.txt"
        lines = []
        for line in (label.read_text().splitlines() if label.exists() else []):
            if not line.strip():
                continue
            cls, *rest = line.split()
            target = remap.get(int(cls))
            if target is None:
                raise DatasetError(f"{str(label)!r} has class {cls} ({extra_names[int(cls)] if int(cls) < len(extra_names) else '?'!r}), "
                                   f"which the dataset does not have: unknown {unknown}; dataset classes {names}")
            lines.append(" ".join([str(target), *rest]))
        link = img_out / image.name
        if not link.exists():
            os.symlink(image.resolve(), link)
        (lbl_out / f"{image.stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        added += 1
    if not added:
        raise DatasetError(f"the corrections set {str(corrections)!r} has no images")
    trains = spec.get("train") or []
    trains = [trains] if isinstance(trains, str) else list(trains)
    merged = {**spec, "path": str(base.resolve()),
              "train": [str((base / t).resolve()) for t in trains] + [str(img_out.resolve())],
              "names": dict(enumerate(names))}
    for split in ("val", "test"):
        if isinstance(spec.get(split), str):
            merged[split] = str((base / spec[split]).resolve())
        elif spec.get(split):
            merged[split] = [str((base / v).resolve()) for v in spec[split]]
    out = work_dir / "with-corrections.yaml"
    out.write_text(yaml.safe_dump(merged, sort_keys=False))
    return out


def _names(spec: dict, where: Path) -> list[str]:
    names = spec.get("names") if isinstance(spec, dict) else None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list):
        return [str(n) for n in names]
    from models.datasets.voc import DatasetError

    raise DatasetError(f"{str(where)!r} has no class names, got {names!r}")


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
