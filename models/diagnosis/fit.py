"""Training on a labelled folder with our grouped split: heavy augmentation, per-epoch checkpoints,
the epoch, temperature and decision threshold chosen on the validation part only.

The test part is never read here; `surglens eval-classifier/eval-segmenter MODEL DATA --split test
--card` measures it afterwards and writes the model card (models/diagnosis/cards.py).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from models.diagnosis.data import channel_stats, load_rgb, read_mask
from models.diagnosis.labelled import DEFAULT_FRACTIONS, LabelledRow, group_split, read_labelled, split_record
from models.diagnosis.nets import CLASSIFIER, SEGMENTER, build_network, forward_logits
from models.diagnosis.train import _load_init, _now, _recalibrate_batchnorm, _save_model
from models.registry import ModelEntry

Log = Callable[[str], None]
PRELOAD_SCALE = 1.15


def heavy_augmentation(size: int, mean: Sequence[float], std: Sequence[float], *, vflip: bool = True,
                       colour: bool = True, erase: bool = True, min_scale: float = 0.4) -> Callable:
    """Crops, flips, affine, colour, blur and (images only) random erasing; masks follow the geometry."""
    from torchvision.transforms import v2

    steps = [
        v2.RandomResizedCrop(size, scale=(min_scale, 1.0), ratio=(0.75, 1.33), antialias=True),
        v2.RandomHorizontalFlip(),
        *([v2.RandomVerticalFlip()] if vflip else []),
        v2.RandomApply([v2.RandomAffine(degrees=25, translate=(0.05, 0.05), scale=(0.9, 1.1), shear=8)], p=0.6),
        v2.ColorJitter(brightness=0.35, contrast=0.35, saturation=0.25 if colour else 0, hue=0.03 if colour else 0),
        v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.2),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ]
    if erase:
        steps.append(v2.RandomErasing(p=0.25, scale=(0.02, 0.1)))
    return v2.Compose(steps)


class _Images(torch.utils.data.Dataset):
    def __init__(self, images: list[np.ndarray], targets: list, transform: Callable):
        self.images, self.targets, self.transform = images, targets, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors

        img = tv_tensors.Image(torch.from_numpy(self.images[i].transpose(2, 0, 1).copy()))
        target = self.targets[i]
        if isinstance(target, np.ndarray):
            img, mask = self.transform(img, tv_tensors.Mask(torch.from_numpy(target.astype(np.int64))))
            return img.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()
        return self.transform(img).as_subclass(torch.Tensor), int(target)


def _normalised(images: list[np.ndarray], mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    x = np.stack(images).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _batched(net: nn.Module, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return torch.cat([forward_logits(net, x[i:i + batch]) for i in range(0, len(x), batch)])


def _split_rows(data_dir, group_by, fractions, seed, masks) -> tuple[list[LabelledRow], dict[str, str]]:
    rows = read_labelled(data_dir, group_by, masks=masks)
    return rows, group_split(rows, fractions, seed)


def train_labelled_classifier(
    data_dir: str | Path, out_dir: str | Path, *, group_by: str | None, architecture: str = "surglens_resnet_small",
    input_size: int = 128, epochs: int = 30, batch_size: int = 16, lr: float = 3e-3, fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0, positive: str | None = None, vflip: bool = True, colour: bool = True, modality: str = "any",
    name: str | None = None, checkpoint_dir: str | Path | None = None, time_budget_s: float | None = None,
    init: str | Path | None = None, centre_crop: float | None = None, erase: bool = True, min_scale: float = 0.4,
    log: Log = print,
) -> ModelEntry:
    """Train a classifier on the train part of a grouped split of `data_dir`; pick epoch/temperature/threshold on val.

    Classes are sampled equally often. The epoch kept is the one with the best validation balanced
    accuracy (ties: higher macro AUC); with `positive` (two classes, that class's score thresholded at
    Youden's J on validation) the one with the best validation AUC.
    """
    from metrics.classification import balanced_accuracy, macro_auc

    torch.manual_seed(seed)
    rows, assignment = _split_rows(data_dir, group_by, fractions, seed, masks=False)
    classes = sorted({r.label for r in rows})
    if positive is not None and positive not in classes:
        raise ValueError(f"positive class {positive!r} is not one of {classes}")
    parts = {s: [r for r in rows if assignment[r.stem] == s] for s in ("train", "val")}
    big = round(input_size * PRELOAD_SCALE)

    def load(r: LabelledRow, size: int) -> np.ndarray:
        import cv2

        if not centre_crop:
            return load_rgb(r.image, size)
        from models.diagnosis.evaluation import centre_crop as crop

        return cv2.resize(np.ascontiguousarray(crop(load_rgb(r.image), centre_crop)), (size, size), interpolation=cv2.INTER_AREA)

    train_imgs = [load(r, big) for r in parts["train"]]
    train_y = [classes.index(r.label) for r in parts["train"]]
    val_x_imgs = [load(r, input_size) for r in parts["val"]]
    val_y = np.array([classes.index(r.label) for r in parts["val"]])
    mean, std = channel_stats(train_imgs)
    data = _Images(train_imgs, train_y, heavy_augmentation(input_size, mean, std, vflip=vflip, colour=colour, erase=erase,
                                                           min_scale=min_scale))
    val_x = _normalised(val_x_imgs, mean, std)
    counts = np.bincount(train_y, minlength=len(classes))
    weights = torch.tensor([1.0 / counts[y] for y in train_y], dtype=torch.double)
    steps = math.ceil(len(data) / batch_size)
    sampler = torch.utils.data.WeightedRandomSampler(weights, steps * batch_size, replacement=True,
                                                     generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=0)
    net = build_network(CLASSIFIER, architecture, len(classes))
    init_note = _load_init(net, init, log)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)

    def score(n: nn.Module) -> tuple[tuple[float, float], dict[str, float]]:
        probs = torch.softmax(_batched(n, val_x), 1).numpy()
        ba, mauc = balanced_accuracy(val_y, probs.argmax(1), len(classes)), macro_auc(val_y, probs)
        mauc = 0.0 if math.isnan(mauc) else mauc
        shown = {"val_balanced_accuracy": round(ba, 4), "val_auc": round(mauc, 4)}
        # Two classes: the threshold is set afterwards, so rank epochs by AUC (arg-max accuracy is moot).
        return ((mauc, ba) if positive is not None else (ba, mauc)), shown

    best, history = _train_loop(net, loader, epochs, lr, lambda x, y: loss_fn(forward_logits(net, x), y), score,
                                checkpoint_dir, time_budget_s, log)
    net.load_state_dict(best["state"])
    logits = _batched(net, val_x).numpy()
    temperature = fit_temperature(logits, val_y)
    probs = _softmax(logits / temperature)
    meta: dict[str, Any] = {
        "name": name or Path(out_dir).name, "kind": CLASSIFIER, "version": 2, "architecture": architecture,
        "classes": classes, "input_size": input_size, "normalisation": {"mean": mean, "std": std},
        "modality": modality, "cam_layer": "stages.3" if architecture == "surglens_resnet_small" else None,
        "temperature": round(float(temperature), 4), "centre_crop": centre_crop,
    }
    if positive is not None:
        k = classes.index(positive)
        meta["decision"] = {"positive": positive, "threshold": round(youden_threshold(val_y == k, probs[:, k]), 4),
                            "chosen_on": "validation (Youden's J on temperature-scaled scores)"}
    meta["training"] = {
        "data": str(data_dir), "images_per_class": dict(zip(classes, counts.tolist())), "epochs": epochs,
        "epochs_run": len(history), "best_epoch": best["epoch"], "steps_per_epoch": steps, "batch_size": batch_size,
        "lr": lr, "schedule": "AdamW, 15 % warm-up then cosine (on elapsed time when a time budget is set)", "init": init_note, "seed": seed,
        "time_budget_s": time_budget_s,
        "augmentation": f"heavy (crop {min_scale}-1, {'h+v' if vflip else 'horizontal'} flips, affine, {'colour' if colour else 'brightness/contrast'}, blur"
                        + (", erasing)" if erase else ")") + (f"; centre {centre_crop:.0%} of each side only" if centre_crop else ""),
        "history": history, "trained_at": _now(),
    }
    meta["split"] = split_record(assignment, group_by, fractions, seed)
    return _save_model(net, out_dir, {k: v for k, v in meta.items() if v is not None})


def train_labelled_segmenter(
    data_dir: str | Path, out_dir: str | Path, *, group_by: str | None = None, classes: Sequence[str] = ("background", "foreground"),
    architecture: str = "surglens_unet_small", input_size: int = 128, epochs: int = 20, batch_size: int = 8, lr: float = 3e-3,
    fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, modality: str = "any", name: str | None = None,
    checkpoint_dir: str | Path | None = None, time_budget_s: float | None = None, init: str | Path | None = None,
    log: Log = print,
) -> ModelEntry:
    """Train a binary segmenter (CE + soft Dice); the epoch and the mask threshold are chosen on val Dice."""
    import cv2

    torch.manual_seed(seed)
    classes = list(classes)
    if len(classes) != 2:
        raise ValueError(f"labelled segmenter training is binary (background + one class), got classes {classes}")
    rows, assignment = _split_rows(data_dir, group_by, fractions, seed, masks=True)
    parts = {s: [r for r in rows if assignment[r.stem] == s] for s in ("train", "val")}
    big = round(input_size * PRELOAD_SCALE)

    def mask_at(r: LabelledRow, size: int) -> np.ndarray:
        return cv2.resize(read_mask(r.mask, 2).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)

    train_imgs = [load_rgb(r.image, big) for r in parts["train"]]
    train_masks = [mask_at(r, big) for r in parts["train"]]
    val_x_imgs = [load_rgb(r.image, input_size) for r in parts["val"]]
    val_masks = np.stack([mask_at(r, input_size) for r in parts["val"]]).astype(bool)
    mean, std = channel_stats(train_imgs)
    # Crops no smaller than 60 %: a polyp cut by the crop border teaches little to a net trained for minutes.
    data = _Images(train_imgs, train_masks, heavy_augmentation(input_size, mean, std, erase=False, min_scale=0.6))
    val_x = _normalised(val_x_imgs, mean, std)
    steps = math.ceil(len(data) / batch_size)
    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=steps * batch_size,
                                             generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=0)
    net = build_network(SEGMENTER, architecture, 2)
    init_note = _load_init(net, init, log)
    ce = nn.CrossEntropyLoss()

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = forward_logits(net, x)
        p = torch.softmax(logits, 1)[:, 1]
        t = (y == 1).float()
        inter = (p * t).sum((1, 2))
        soft_dice = (2 * inter + 1) / (p.sum((1, 2)) + t.sum((1, 2)) + 1)
        return ce(logits, y) + (1 - soft_dice).mean()

    def val_probs(n: nn.Module) -> np.ndarray:
        return torch.softmax(_batched(n, val_x, 16), 1)[:, 1].numpy()

    def score(n: nn.Module) -> tuple[tuple[float, float], dict[str, float]]:
        d = mean_dice(val_probs(n) >= 0.5, val_masks)
        return (d, 0.0), {"val_dice": round(d, 4)}

    best, history = _train_loop(net, loader, epochs, lr, loss, score, checkpoint_dir, time_budget_s, log)
    net.load_state_dict(best["state"])
    probs = val_probs(net)
    grid = np.round(np.arange(0.2, 0.81, 0.05), 2)
    dices = [mean_dice(probs >= t, val_masks) for t in grid]
    threshold = float(grid[int(np.argmax(dices))])
    meta = {
        "name": name or Path(out_dir).name, "kind": SEGMENTER, "version": 2, "architecture": architecture,
        "classes": classes, "input_size": input_size, "normalisation": {"mean": mean, "std": std}, "modality": modality,
        "decision": {"positive": classes[1], "threshold": threshold,
                     "chosen_on": f"validation mean Dice at {input_size} px over thresholds {grid.tolist()}"},
        "training": {
            "data": str(data_dir), "pairs": len(data), "epochs": epochs, "epochs_run": len(history), "best_epoch": best["epoch"],
            "steps_per_epoch": steps, "batch_size": batch_size, "lr": lr, "init": init_note, "seed": seed, "time_budget_s": time_budget_s,
            "schedule": "AdamW, 15 % warm-up then cosine (on elapsed time when a time budget is set)",
            "augmentation": "heavy (crop 0.6-1, flips, affine, colour, blur)", "history": history, "trained_at": _now(),
        },
        "split": split_record(assignment, group_by, fractions, seed),
    }
    return _save_model(net, out_dir, meta)


def _lr_factor(progress: float, warmup: float = 0.15) -> float:
    """Linear warm-up then cosine decay to zero over training progress 0..1."""
    if progress < warmup:
        return 0.1 + 0.9 * progress / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


def _train_loop(net, loader, epochs, lr, loss_fn, score, checkpoint_dir, time_budget_s, log):
    """AdamW, warm-up + cosine; after each epoch: precise BN, validation score, checkpoint (last.pt, best.pt).

    With `time_budget_s` the schedule runs on elapsed time (progress = max(epoch fraction, time fraction)),
    and training stops before an epoch that would not fit, so the learning rate has decayed when it ends.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    total_steps = max(1, epochs * len(loader))
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    if ckpt:
        ckpt.mkdir(parents=True, exist_ok=True)
    best: dict[str, Any] = {"key": (-1.0, -1.0), "epoch": 0, "state": {k: v.clone() for k, v in net.state_dict().items()}}
    history, started, step = [], time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        t0, losses = time.perf_counter(), []
        net.train()
        for x, y in loader:
            progress = step / total_steps
            if time_budget_s:
                progress = max(progress, (time.perf_counter() - started) / time_budget_s)
            for group in opt.param_groups:
                group["lr"] = lr * _lr_factor(progress)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(x, y)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
        _recalibrate_batchnorm(net, loader, max_batches=10)
        key, shown = score(net)
        row = {"epoch": epoch, "loss": round(float(np.mean(losses)), 5), **shown, "seconds": round(time.perf_counter() - t0, 1)}
        history.append(row)
        if key > best["key"]:
            best = {"key": key, "epoch": epoch, "state": {k: v.clone() for k, v in net.state_dict().items()}}
        if ckpt:
            torch.save({"epoch": epoch, "state": net.state_dict(), "optimizer": opt.state_dict(), "history": history}, ckpt / "last.pt")
            if best["epoch"] == epoch:
                torch.save({"epoch": epoch, "state": best["state"]}, ckpt / "best.pt")
            (ckpt / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        log(json.dumps(row))
        elapsed = time.perf_counter() - started
        if time_budget_s and epoch < epochs and elapsed + 0.9 * (elapsed / epoch) > time_budget_s:
            log(f"time budget of {time_budget_s:.0f} s: stopping after epoch {epoch} ({elapsed:.0f} s)")
            break
    return best, history


def mean_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over images of Dice between boolean (N, H, W) masks (1.0 where both are empty)."""
    inter = (pred & truth).sum((1, 2))
    total = pred.sum((1, 2)) + truth.sum((1, 2))
    return float(np.mean(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T (0.25..8) minimising the negative log-likelihood of softmax(logits / T)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
    nll = [-np.log(_softmax(logits / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def youden_threshold(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold maximising sensitivity + specificity - 1 (ties: the middle one)."""
    from metrics.classification import roc_curve

    roc = roc_curve(is_positive, scores)
    if np.isnan(roc.tpr).any() or np.isnan(roc.fpr).any():
        return 0.5
    j = roc.tpr - roc.fpr
    best = np.flatnonzero(j == j.max())
    t = roc.thresholds[best[len(best) // 2]]
    return float(min(t, 1.0))
