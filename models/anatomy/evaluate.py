"""Fitting the CVS head on train frames, exporting the model folder, and evaluating a split."""
from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from models.anatomy.data import CRITERIA, IGNORE, AnatomyFrame, load_image, load_mask, read_split

FEATURE_SETS = ("mask", "encoder", "mask+encoder")


def frame_outputs(net: Any, frames: Sequence[AnatomyFrame], size: tuple[int, int]):
    """Per frame: predicted labels at frame size, mask features, pooled encoder features (one pass each)."""
    from models.anatomy.cvs import mask_features
    from models.anatomy.train import predict_labels

    for f in frames:
        labels, prob, pooled = predict_labels(net, load_image(f.image), size)
        yield f, labels, mask_features(prob), pooled


def fit_cvs_on_split(net: Any, data: str | Path, split: str, size: tuple[int, int],
                     log: Callable[[str], None] = print):
    """CVS head fitted on the segmenter's own predictions for the frames of `split` (train only)."""
    from models.anatomy.cvs import fit_cvs_head

    frames = read_split(data, split)
    masks, pooled = [], []
    for _, _, m, p in frame_outputs(net, frames, size):
        masks.append(m)
        pooled.append(p)
    xm, xe = np.stack(masks), np.stack(pooled)
    features = {"mask": xm, "encoder": xe, "mask+encoder": np.concatenate([xm, xe], axis=1)}
    truth = np.array([f.cvs_truth for f in frames])
    head = fit_cvs_head(features, truth, [f.video_id for f in frames])
    head.cv["fitted_on"] = {"split": split, "frames": len(frames), "videos": len({f.video_id for f in frames})}
    log(f"cvs head: {head.feature_set}, C={head.C}, cross-validated mAP {head.cv['best']['map']}")
    return head


def export_model(run_dir: str | Path, data: str | Path, out: str | Path, train_split: str = "train",
                 log: Callable[[str], None] = print) -> Path:
    """best.pt of a run + a CVS head fitted on `train_split` -> out/weights.pt and out/metadata.json."""
    import torch

    from models.anatomy.model import save_anatomy_weights
    from models.anatomy.net import AnatomyNet
    from models.registry import write_metadata

    run_dir, out = Path(run_dir), Path(out)
    best = run_dir / "best.pt"
    if not best.is_file():
        raise FileNotFoundError(f"no best.pt in run folder {str(run_dir)!r}")
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    meta = ckpt["meta"]
    cfg = meta["config"]
    size = tuple(cfg["input_size"])
    net = AnatomyNet(ckpt["yaml"], num_classes=len(meta["classes"]), width=int(cfg["width"]))
    net.load_state_dict(ckpt["model"])
    net.eval()
    head = fit_cvs_on_split(net, data, train_split, size, log=log)
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    out.mkdir(parents=True, exist_ok=True)
    save_anatomy_weights(out / "weights.pt", net, head, meta)
    metadata = {
        "name": "surglens-anatomy", "kind": "anatomy-segmenter", "version": 1,
        "architecture": "YOLO11n backbone (from the SurgLens detector) + U-Net decoder; CVS logistic head",
        "classes": list(meta["classes"]), "criteria": list(CRITERIA), "input_size": list(size),
        "ignore_index": IGNORE,
        "training": {
            "data": f"endoscapes-seg50 {train_split}: {meta['train_frames']} frames, {meta['train_videos']} videos",
            "selection": f"epoch with the best mean Dice on {meta['val_split']} ({meta['val_frames']} frames); never trained on",
            "init": f"encoder: {cfg['init']} (our detector, trained on m2cai16); decoder random",
            "epochs_planned": cfg["epochs"], "epochs_completed": summary.get("epochs_completed"),
            "best_epoch": ckpt.get("epoch"), "best_val_mean_dice": round(float(ckpt.get("val_mean_dice", math.nan)), 4),
            "batch_size": cfg["batch_size"], "lr": cfg["lr"], "encoder_lr": cfg["encoder_lr"], "seed": cfg["seed"],
            "loss": "class-weighted cross-entropy + soft Dice over foreground, label 255 ignored",
            "augmentation": "scale 0.8-1.6x, crop, rotation +-12 deg, horizontal flip, brightness/contrast/saturation/gamma/colour gain, blur, noise",
            "class_weights": meta.get("class_weights"), "device": "cpu", "width": cfg["width"],
            "command": (f"surglens train-anatomy --data {data} --out {out} --run {run_dir} --epochs {cfg['epochs']} "
                        f"--input-size {size[0]} {size[1]} --width {cfg['width']} --batch-size {cfg['batch_size']}"),
            "train_seconds": summary.get("train_seconds"),
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "cvs_head": {"feature_set": head.feature_set, "C": head.C, "folds": head.cv["folds"], "cv": head.cv["best"],
                     "fitted_on": head.cv["fitted_on"]},
        "licence": "weights: AGPL-3.0-or-later (trained by SurgLens); data: Endoscapes2023 (CAMMA), CC BY-NC-SA 4.0: non-commercial research and education",
        "intended_use": "research and teaching overlays of hepatocystic anatomy and CVS criteria; not for clinical use",
    }
    write_metadata(out, metadata)
    log(f"exported {out / 'weights.pt'} ({(out / 'weights.pt').stat().st_size / 1e6:.1f} MB)")
    return out / "weights.pt"


def evaluate_anatomy(model: str | Path | None, data: str | Path, split: str, threads: int | None = None) -> dict[str, Any]:
    """Dice/IoU per class (dataset level), mean Dice over the six classes, CVS AP/mAP/balanced accuracy."""
    from metrics.cvs import cvs_report
    from metrics.segmentation import MultiClassSegmentationMeter
    from models.anatomy.model import AnatomyModel

    t0 = time.time()
    frames = read_split(data, split)
    if not frames:
        raise ValueError(f"split {split!r} of {str(data)!r} has no frames")
    m = AnatomyModel(model, threads=threads)
    meter = MultiClassSegmentationMeter(m.classes, ignore_index=IGNORE)
    probs, truth = [], []
    for f in frames:
        labels, prob, pooled = m.predict_raw(load_image(f.image))
        if f.mask is not None:
            meter.update(labels, load_mask(f.mask))
        probs.append([m.cvs_probabilities(prob, pooled)[c] for c in CRITERIA])
        truth.append(f.cvs_truth)
    seg = meter.report().to_dict()
    result: dict[str, Any] = {
        "model": str(m.entry.weights), "data": str(data), "split": split, "frames": len(frames),
        "videos": len({f.video_id for f in frames}), "frames_with_masks": meter.images,
        "dice": seg["dice"], "iou": seg["iou"], "mean_dice": seg["mean_dice"], "mean_iou": seg["mean_iou"],
        "mean_over": seg["mean_over"], "segmentation_convention": seg["convention"],
    }
    p = np.asarray(probs, dtype=np.float64)
    if np.isfinite(p).all():
        result["cvs"] = cvs_report(np.asarray(truth), p).to_dict()
        result["cvs"]["truth"] = "a criterion holds when the mean of the three raters is >= 0.5"
    else:
        result["cvs"] = None
    result["seconds"] = round(time.time() - t0, 1)
    result["seconds_per_frame"] = round(result["seconds"] / len(frames), 3)
    return result
