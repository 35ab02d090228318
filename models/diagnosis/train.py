"""Training and evaluation of diagnosis models (CLI: train-/eval-classifier, train-/eval-segmenter).

Training writes a complete model folder (weights.pt + metadata.json + MODEL_CARD.md) into a
temporary folder and renames it into place, so a crash never leaves a half-written model.
Evaluation runs the same inference code as the app on every image at its own resolution.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from metrics.classification import classification_report
from metrics.segmentation import segmentation_report
from models.diagnosis.classifier import ImageClassifier
from models.diagnosis.data import (
    ClassificationData,
    SegmentationData,
    augmentation,
    channel_stats,
    load_rgb,
    read_mask,
    scan_image_folder,
    scan_pairs,
)
from models.diagnosis.nets import CLASSIFIER, SEGMENTER, build_network, forward_logits
from models.diagnosis.segmenter import ImageSegmenter
from models.registry import ModelEntry, resolve_model, write_metadata

Log = Callable[[str], None]


# What `train_network` uses for a kind unless told otherwise.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    CLASSIFIER: {"architecture": "mobilenet_v3_small", "input_size": 128, "batch_size": 16},
    SEGMENTER: {"architecture": "lraspp_mobilenet_v3_large", "input_size": 160, "batch_size": 4},
}


def train_classifier(train_dir: str | Path, out_dir: str | Path, **options: Any) -> ModelEntry:
    """Train an image classifier on an ImageFolder: `train_network` of kind CLASSIFIER (its keyword options)."""
    return train_network(CLASSIFIER, train_dir, out_dir, **options)


def train_segmenter(pairs_dir: str | Path, out_dir: str | Path, **options: Any) -> ModelEntry:
    """Train a segmenter on images/ + masks/ pairs: `train_network` of kind SEGMENTER (its keyword options)."""
    return train_network(SEGMENTER, pairs_dir, out_dir, **options)


def train_network(
    kind: str,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    classes: Sequence[str] | None = None,
    architecture: str | None = None,
    input_size: int | None = None,
    epochs: int = 10,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    lr: float = 2e-3,
    init: str | Path | None = None,
    modality: str = "any",
    name: str | None = None,
    seed: int = 0,
    log: Log = print,
) -> ModelEntry:
    """Train a diagnosis network from scratch or starting from our weights (`init`); writes its model folder.

    CLASSIFIER: an ImageFolder, its class folders the classes, each sampled equally often (small classes are
    repeated with augmentation). SEGMENTER: images/ + masks/ pairs (binary masks -> classes[1], default
    background/foreground); loss = CE + soft Dice. With `init`, every tensor whose shape matches is loaded, so a
    new class list only re-learns the last layer. `architecture`, `input_size` and `batch_size` default per kind
    (KIND_DEFAULTS).
    """
    if kind not in KIND_DEFAULTS:
        raise ValueError(f"kind must be one of {list(KIND_DEFAULTS)}, got {kind!r}")
    defaults = KIND_DEFAULTS[kind]
    architecture = defaults["architecture"] if architecture is None else architecture
    input_size = defaults["input_size"] if input_size is None else input_size
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    torch.manual_seed(seed)
    if kind == CLASSIFIER:
        if classes is not None:
            raise ValueError(f"a classifier's classes are the folders of its data, got classes={classes!r}")
        data, classes = ClassificationData.from_folder(data_dir, input_size)
    else:
        classes = list(classes or ("background", "foreground"))
        data = SegmentationData.from_pairs(data_dir, input_size, len(classes))
    mean, std = channel_stats(data.images)
    data.transform = augmentation(input_size, mean, std)
    net = build_network(kind, architecture, len(classes))
    init_note = _load_init(net, init, log)
    steps = steps_per_epoch or math.ceil(len(data) / batch_size)
    generator = torch.Generator().manual_seed(seed)
    sampler: torch.utils.data.Sampler
    if kind == CLASSIFIER:
        counts = np.bincount(data.labels, minlength=len(classes))
        weights = torch.tensor([1.0 / counts[y] for y in data.labels], dtype=torch.double)
        sampler = torch.utils.data.WeightedRandomSampler(weights, steps * batch_size, replacement=True,
                                                         generator=generator)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
        loss = lambda x, y: loss_fn(forward_logits(net, x), y)  # noqa: E731
        seen = {"images_per_class": dict(zip(classes, counts.tolist()))}
    else:
        sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=steps * batch_size,
                                                 generator=generator)
        loss = _ce_dice_loss(net, len(classes))
        seen = {"pairs": len(data)}
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=0)
    history = _fit(net, loader, epochs, lr, loss, log)
    metadata = {
        "name": name or Path(out_dir).name,
        "kind": kind,
        "version": 1,
        "architecture": architecture,
        "classes": list(classes),
        "input_size": input_size,
        "normalisation": {"mean": mean, "std": std},
        "modality": modality,
        "training": {
            "data": str(data_dir), **seen, "epochs": epochs, "steps_per_epoch": steps, "batch_size": batch_size,
            "lr": lr, "init": init_note, "seed": seed, "final_loss": history[-1] if history else None,
            "trained_at": _now(),
        },
    }
    return _save_model(net, out_dir, metadata)


def _ce_dice_loss(net: nn.Module, n_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A segmenter's loss: cross-entropy plus the mean soft Dice loss of the foreground classes."""
    ce = nn.CrossEntropyLoss()

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = forward_logits(net, x)
        probs = torch.softmax(logits, 1)[:, 1:]
        onehot = nn.functional.one_hot(y, n_classes).permute(0, 3, 1, 2)[:, 1:].float()
        inter = (probs * onehot).sum((0, 2, 3))
        soft_dice = (2 * inter + 1) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
        return ce(logits, y) + (1 - soft_dice).mean()

    return loss


def evaluate_classifier(model: str | Path | ModelEntry, data_dir: str | Path) -> dict[str, Any]:
    """Sensitivity, specificity, ROC/AUC per class and the confusion matrix on an ImageFolder."""
    clf = ImageClassifier(model, explain=False)
    files, labels, _ = scan_image_folder(data_dir, clf.classes)
    results = [clf(load_rgb(f)) for f in files]
    scores = np.stack([r.scores for r in results])
    report = classification_report(labels, scores, clf.classes)
    return {
        "model": clf.name,
        "weights": str(clf.entry.weights),
        "data": str(data_dir),
        "evaluated_at": _now(),
        **report.to_dict(),
        "per_image": [
            {"file": str(Path(f).relative_to(data_dir)), "true": clf.classes[y], "predicted": r.top_label,
             "score": round(r.top_score, 4)}
            for f, y, r in zip(files, labels, results)
        ],
    }


def evaluate_segmenter(model: str | Path | ModelEntry, pairs_dir: str | Path) -> dict[str, Any]:
    """Dice and IoU per image (at each image's own resolution) and their means, per foreground class."""
    seg = ImageSegmenter(model)
    pairs = scan_pairs(pairs_dir)
    preds, truths = [], []
    for img, msk in pairs:
        rgb = load_rgb(img)
        truth = read_mask(msk, len(seg.classes))
        if truth.shape != rgb.shape[:2]:
            raise ValueError(f"mask {str(msk)!r} is {truth.shape[::-1]}, image {str(img)!r} is {rgb.shape[1::-1]}")
        preds.append(seg(rgb).labels)
        truths.append(truth)
    names = [p[0].name for p in pairs]
    per_class = {
        c: segmentation_report([p == k for p in preds], [t == k for t in truths], names, label=c).to_dict()
        for k, c in enumerate(seg.classes) if k > 0
    }
    return {"model": seg.name, "weights": str(seg.entry.weights), "data": str(pairs_dir), "evaluated_at": _now(),
            "classes": per_class}


def _fit(net: nn.Module, loader, epochs: int, lr: float, loss_fn: Callable, log: Log) -> list[float]:
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    total = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    history = []
    net.train()
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(x, y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        history.append(round(float(np.mean(losses)), 5))
        log(f"epoch {epoch + 1}/{epochs}  loss {history[-1]:.4f}  ({time.perf_counter() - start:.1f} s)")
    _recalibrate_batchnorm(net, loader)
    net.eval()
    return history


def _recalibrate_batchnorm(net: nn.Module, loader, max_batches: int = 50) -> None:
    """Recompute BatchNorm running statistics with the final weights ("precise BN").

    torchvision's MobileNetV3 uses BN momentum 0.01, so after a short training the running averages
    still describe early weights and eval-mode predictions collapse; a plain average over training
    batches with the final weights fixes that.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for i, (x, _y) in enumerate(loader):
            if i >= max_batches:
                break
            net(x)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


def _load_init(net: nn.Module, init: str | Path | None, log: Log) -> str | None:
    """Copy every same-shaped tensor from our weights `init`; returns a note for the metadata."""
    if init is None:
        return None
    entry = resolve_model(init)
    state = torch.load(entry.weights, map_location="cpu", weights_only=True)
    own = net.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ValueError(f"no tensor of {str(entry.weights)!r} fits this architecture; is it the same architecture?")
    net.load_state_dict(matched, strict=False)
    log(f"initialised {len(matched)}/{len(own)} tensors from {entry.weights}")
    return f"{entry.name} ({len(matched)}/{len(own)} tensors)"


def _save_model(net: nn.Module, out_dir: str | Path, metadata: dict[str, Any]) -> ModelEntry:
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(net.state_dict(), tmp / "weights.pt")
    write_metadata(tmp, metadata)
    (tmp / "MODEL_CARD.md").write_text(_card_stub(metadata))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return resolve_model(out_dir)


def _card_stub(meta: dict[str, Any]) -> str:
    return (
        f"# {meta['name']}\n\n{meta['kind']} ({meta['architecture']}, {meta['input_size']} px), classes: "
        f"{', '.join(meta['classes'])}.\n\nTrained by SurgLens on `{meta['training']['data']}`:\n\n"
        f"```json\n{json.dumps(meta['training'], indent=1)}\n```\n\nNo evaluation recorded yet: run "
        f"`surglens eval-{'classifier' if meta['kind'] == CLASSIFIER else 'segmenter'}` on held-out data and "
        "write the numbers here. Research use only; not for clinical use.\n"
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
