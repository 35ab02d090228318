"""Training of the anatomy segmenter: augmented crops of train frames, class-weighted CE + Dice, AdamW.

Checkpoints go to a run folder every epoch (`last.pt`, resumable) and `best.pt` holds the epoch with the
best mean Dice on the selection split (val); only train frames are ever trained on.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from models.anatomy.data import CLASSES, IGNORE, AnatomyFrame, load_image, load_mask, read_split
from models.anatomy.net import AnatomyNet, build_from_detector

DEFAULT_INPUT = (256, 448)  # (H, W): 854x480 frames keep (nearly) their aspect


@dataclass
class TrainConfig:
    """Settings of one training run."""

    epochs: int = 40
    batch_size: int = 8
    lr: float = 2e-3
    encoder_lr: float = 5e-4
    weight_decay: float = 1e-4
    input_size: tuple[int, int] = DEFAULT_INPUT
    width: int = 64
    dice_weight: float = 1.0
    seed: int = 0
    threads: int = 2
    init: str = "assets/models/detector/weights.pt"
    max_frames: int | None = None  # smoke tests: only the first N train frames
    max_val: int | None = None


def class_weights(masks: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """Inverse square-root pixel frequency per class, normalised to mean 1 (ignore label excluded)."""
    counts = np.zeros(num_classes, np.float64)
    for m in masks:
        counts += np.bincount(m[m != IGNORE].ravel(), minlength=num_classes)[:num_classes]
    freq = counts / max(counts.sum(), 1.0)
    w = 1.0 / np.sqrt(np.maximum(freq, 1e-4))
    return w / w.mean()


def augment(image: np.ndarray, mask: np.ndarray, size: tuple[int, int], rng: np.random.Generator):
    """Random scale, crop, small rotation, flip and colour jitter -> (H, W, 3) uint8, (H, W) uint8."""
    import cv2

    h, w = size
    ih, iw = mask.shape
    base = max(h / ih, w / iw)
    scale = base * rng.uniform(0.8, 1.6)
    angle = rng.uniform(-12, 12)
    m = cv2.getRotationMatrix2D((iw / 2, ih / 2), angle, scale)
    # Centre of the crop in the source image, anywhere that keeps most of the crop inside.
    cx = rng.uniform(iw / 2 - max(0.0, iw / 2 - w / (2 * scale)), iw / 2 + max(0.0, iw / 2 - w / (2 * scale)))
    cy = rng.uniform(ih / 2 - max(0.0, ih / 2 - h / (2 * scale)), ih / 2 + max(0.0, ih / 2 - h / (2 * scale)))
    src = m @ np.array([cx, cy, 1.0])
    m[:, 2] += np.array([w / 2, h / 2]) - src
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    msk = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
    if rng.random() < 0.5:
        img, msk = img[:, ::-1], msk[:, ::-1]
    x = img.astype(np.float32) / 255.0
    # Colour: brightness, contrast, saturation, gamma, a small per-channel gain (hue/white-balance drift).
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-0.08, 0.08)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.7, 1.3) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(0.6, 1.4) + grey
    x = x * rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    x = np.clip(x, 0, 1) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.2:
        k = int(rng.choice([3, 5]))
        x = cv2.GaussianBlur(x, (k, k), 0)
    if rng.random() < 0.2:
        x = x + rng.normal(0, 0.03, size=x.shape).astype(np.float32)
    return np.ascontiguousarray(np.clip(x, 0, 1)), np.ascontiguousarray(msk)


def to_input(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> (1, 3, h, w) float tensor in 0..1 at the network's input size."""
    import cv2

    h, w = size
    x = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def dice_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """1 - soft Dice averaged over the foreground classes present in the batch; ignore pixels masked out."""
    valid = (target != IGNORE).unsqueeze(1).float()
    prob = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=num_classes - 1) * (target != IGNORE), num_classes).permute(0, 3, 1, 2).float() * valid
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    present = onehot.sum((0, 2, 3))[1:] > 0
    fg = 1 - dice[1:]
    return fg[present].mean() if present.any() else fg.mean() * 0


@torch.no_grad()
def predict_labels(net: AnatomyNet, image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label map at the image's size, softmax probabilities (C, h, w) at input size, pooled encoder features."""
    import cv2

    net.eval()
    logits, pooled = net.forward_with_features(to_input(image, size))
    prob = logits.softmax(1)
    # Bilinear upsampling of the logits to the image (half-pixel centres, as torch's align_corners=False),
    # in OpenCV: the same labels as F.interpolate, about 30x faster at 854x480.
    channels_last = np.ascontiguousarray(logits[0].permute(1, 2, 0).numpy())
    full = cv2.resize(channels_last, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    labels = full.argmax(2) if full.ndim == 3 else np.zeros(image.shape[:2], np.int64)
    return labels.astype(np.uint8), prob[0].numpy(), pooled[0].numpy()


def evaluate_segmentation(net: AnatomyNet, frames: Sequence[AnatomyFrame], size: tuple[int, int]):
    """MultiClassSegmentationReport of the network on labelled frames."""
    from metrics.segmentation import MultiClassSegmentationMeter

    meter = MultiClassSegmentationMeter(CLASSES, ignore_index=IGNORE)
    for f in frames:
        if f.mask is None:
            raise FileNotFoundError(f"frame {f.stem!r} has no mask")
        pred, _, _ = predict_labels(net, load_image(f.image), size)
        meter.update(pred, load_mask(f.mask))
    return meter.report()


def _val_cache(frames: Sequence[AnatomyFrame], size: tuple[int, int]) -> list[tuple[torch.Tensor, np.ndarray]]:
    """Selection frames resized once to the input size (masks by nearest neighbour)."""
    import cv2

    out = []
    for f in frames:
        mask = cv2.resize(load_mask(f.mask), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)  # type: ignore[arg-type]
        out.append((to_input(load_image(f.image), size), mask))
    return out


@torch.no_grad()
def _quick_val(net: AnatomyNet, cache: Sequence[tuple[torch.Tensor, np.ndarray]], size: tuple[int, int]):
    """Dice per class at input resolution: cheap enough to select the best epoch every epoch."""
    from metrics.segmentation import MultiClassSegmentationMeter

    net.eval()
    meter = MultiClassSegmentationMeter(CLASSES, ignore_index=IGNORE)
    for i in range(0, len(cache), 8):
        chunk = cache[i:i + 8]
        pred = net(torch.cat([x for x, _ in chunk])).argmax(1).numpy().astype(np.uint8)
        for p, (_, m) in zip(pred, chunk):
            meter.update(p, m)
    return meter.report()


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))) * 0.98 + 0.02


def train_segmenter(
    data: str | Path,
    run_dir: str | Path,
    config: TrainConfig | None = None,
    resume: bool = False,
    train_split: str = "train",
    val_split: str = "val",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train on `train_split`, select on `val_split`; returns the run summary (also run_dir/summary.json)."""
    cfg = config or TrainConfig()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_frames = read_split(data, train_split)[: cfg.max_frames]
    val_frames = read_split(data, val_split)[: cfg.max_val]
    if not train_frames:
        raise ValueError(f"split {train_split!r} of {str(data)!r} has no frames")
    images = [load_image(f.image) for f in train_frames]
    masks = [load_mask(f.mask) for f in train_frames]  # type: ignore[arg-type]
    weights = torch.tensor(class_weights(masks, len(CLASSES)), dtype=torch.float32)
    val_cache = _val_cache(val_frames, cfg.input_size)
    net = build_from_detector(cfg.init, num_classes=len(CLASSES), width=cfg.width)
    opt = torch.optim.AdamW([
        {"params": net.encoder_parameters(), "lr": cfg.encoder_lr},
        {"params": net.decoder_parameters(), "lr": cfg.lr},
    ], weight_decay=cfg.weight_decay)
    base_lrs = [cfg.encoder_lr, cfg.lr]
    steps_per_epoch = max(1, len(train_frames) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best": -1.0, "best_epoch": None, "history": [], "seconds": 0.0}
    last = run_dir / "last.pt"
    if resume and last.exists():
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        log(f"resumed from {last} at epoch {state['epoch']}")
    rng = np.random.default_rng(cfg.seed + 1000 * state["epoch"])
    meta = {"config": {**asdict(cfg), "input_size": list(cfg.input_size)}, "classes": list(CLASSES),
            "class_weights": [round(float(w), 4) for w in weights], "train_split": train_split,
            "val_split": val_split, "train_frames": len(train_frames), "val_frames": len(val_frames),
            "train_videos": len({f.video_id for f in train_frames})}
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.time()
        net.train()
        order = rng.permutation(len(train_frames))
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            pairs = [augment(images[i], masks[i], cfg.input_size, rng) for i in idx]
            x = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).contiguous()
            y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64))
            factor = _lr_factor(state["step"], total_steps, warmup=steps_per_epoch)
            for group, lr in zip(opt.param_groups, base_lrs):
                group["lr"] = lr * factor
            logits = net(x)
            loss = F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE)
            loss = loss + cfg.dice_weight * dice_loss(logits, y, len(CLASSES))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            state["step"] += 1
            losses.append(float(loss.detach()))
        train_s = time.time() - t0
        report = _quick_val(net, val_cache, cfg.input_size) if val_frames else None
        score = report.mean_dice if report is not None else -float(np.mean(losses))
        state["epoch"] = epoch + 1
        state["seconds"] += time.time() - t0
        row = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 5), "train_s": round(train_s, 1),
               "epoch_s": round(time.time() - t0, 1), "val_mean_dice": None if report is None else round(score, 5),
               "val_dice": None if report is None else {c: (None if math.isnan(v) else round(float(v), 4))
                                                        for c, v in zip(CLASSES, report.dice)}}
        state["history"].append(row)
        improved = score > state["best"]
        if improved:
            state["best"], state["best_epoch"] = float(score), epoch + 1
            torch.save({"model": net.state_dict(), "yaml": net.yaml, "meta": meta, "epoch": epoch + 1,
                        "val_mean_dice": float(score)}, run_dir / "best.pt")
        torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "state": state, "yaml": net.yaml,
                    "meta": meta}, run_dir / "last.tmp")
        (run_dir / "last.tmp").replace(last)
        log(json.dumps({**row, "best_epoch": state["best_epoch"], "best": round(state["best"], 5)}))
    summary = {**meta, "epochs_completed": state["epoch"], "best_epoch": state["best_epoch"],
               "best_val_mean_dice": state["best"], "train_seconds": round(state["seconds"], 1),
               "history": state["history"]}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Train the anatomy segmenter (run folder with checkpoints).")
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", default="runs/anatomy")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--max-val", type=int, default=None)
    ap.add_argument("--input-size", type=int, nargs=2, default=list(DEFAULT_INPUT), metavar=("H", "W"))
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_frames=args.max_frames, max_val=args.max_val,
                      input_size=tuple(args.input_size), width=args.width)
    train_segmenter(args.data, args.run, cfg, resume=args.resume, log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
