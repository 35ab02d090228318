"""Evaluation of diagnosis models on labelled folders (images/, masks/, labels.csv) and the model cards.

`evaluate_labelled_classifier` / `evaluate_labelled_segmenter` run the app's own inference (each
image at its own resolution, the shipped temperature and threshold) on one split, and
`write_card` turns such a report into metadata.json `evaluation` + MODEL_CARD.md, so the card's
numbers are exactly what `surglens eval-classifier/eval-segmenter ... --card` printed.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.diagnosis.labelled import read_labelled, select_rows
from models.registry import ModelEntry, resolve_model, write_metadata

CENTRE_FRACTION = 0.7  # the source-bias check keeps / blanks the middle 70 % of each side


def _num(v: float | None, digits: int = 4) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), digits)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def centre_crop(rgb: np.ndarray, fraction: float = CENTRE_FRACTION) -> np.ndarray:
    """The middle `fraction` of each side (drops borders, corner letters, most arrows)."""
    h, w = rgb.shape[:2]
    dh, dw = round(h * (1 - fraction) / 2), round(w * (1 - fraction) / 2)
    return rgb[dh:h - dh, dw:w - dw]


def blank_centre(rgb: np.ndarray, fraction: float = CENTRE_FRACTION) -> np.ndarray:
    """The image with its middle `fraction` (for a chest film: the lungs) filled with mid-grey."""
    out = rgb.copy()
    h, w = rgb.shape[:2]
    dh, dw = round(h * (1 - fraction) / 2), round(w * (1 - fraction) / 2)
    out[dh:h - dh, dw:w - dw] = 128
    return out


def classification_metrics(y: np.ndarray, probs: np.ndarray, classes: Sequence[str], decision: dict | None = None,
                           n_boot: int = 1000) -> dict[str, Any]:
    """The JSON block of eval-classifier: auc (+95 % CI), balanced accuracy, sensitivity/specificity, per-class AUC, ECE."""
    from metrics.calibration import expected_calibration_error, reliability_curve
    from metrics.classification import (
        auc_interval,
        balanced_accuracy,
        bootstrap_interval,
        confusion_matrix,
        macro_auc,
        roc_curve,
        sensitivity_specificity,
    )

    k = len(classes)
    if decision and k == 2:
        pos = classes.index(decision["positive"])
        pred = np.where(probs[:, pos] >= float(decision["threshold"]), pos, 1 - pos)
    else:
        pos, pred = (1 if k == 2 else None), probs.argmax(1)
    cm = confusion_matrix(y, pred, k)
    sens, spec = sensitivity_specificity(cm)
    per_auc = [roc_curve(y == c, probs[:, c]).auc for c in range(k)]
    out: dict[str, Any] = {"n": int(len(y)), "classes": list(classes), "support": dict(zip(classes, np.bincount(y, minlength=k).tolist()))}
    if k == 2:
        out["positive"] = classes[pos]
        out["auc"] = _num(per_auc[pos])
        lo, hi = auc_interval(y == pos, probs[:, pos], n_boot=n_boot)
        out["auc_ci95"] = [_num(lo), _num(hi)]
        out["sensitivity"], out["specificity"] = _num(sens[pos]), _num(spec[pos])
        out["threshold"] = float(decision["threshold"]) if decision else None
    else:
        out["auc"] = _num(macro_auc(y, probs))
        lo, hi = bootstrap_interval(lambda yy, pp: macro_auc(yy, pp), y, probs, n_boot=n_boot)
        out["auc_ci95"] = [_num(lo), _num(hi)]
        out["sensitivity"] = {c: _num(sens[i]) for i, c in enumerate(classes)}
        out["specificity"] = {c: _num(spec[i]) for i, c in enumerate(classes)}
        out["per_class_auc_ci95"] = {}
        for i, c in enumerate(classes):
            lo, hi = auc_interval(y == i, probs[:, i], n_boot=n_boot)
            out["per_class_auc_ci95"][c] = [_num(lo), _num(hi)]
    out["per_class_auc"] = {c: _num(a) for c, a in zip(classes, per_auc)}
    out["balanced_accuracy"] = _num(balanced_accuracy(y, pred, k))
    lo, hi = bootstrap_interval(lambda yy, pp: balanced_accuracy(yy, pp, k), y, pred, n_boot=n_boot)
    out["balanced_accuracy_ci95"] = [_num(lo), _num(hi)]
    out["accuracy"] = _num(float((pred == y).mean()) if len(y) else math.nan)
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    out["ece"] = expected_calibration_error(conf, correct)
    out["reliability"] = reliability_curve(conf, correct)
    out["confusion_matrix"] = cm.astype(int).tolist()
    return out


def evaluate_labelled_classifier(model: str | Path | ModelEntry, data_dir: str | Path, split: str | None = None,
                                 bias_check: bool = False, gradcam_dir: str | Path | None = None, n_gradcam: int = 6) -> dict[str, Any]:
    """Metrics of a shipped/folder classifier on the rows of one split of a labelled folder.

    `bias_check` also scores the centre crop and the image with its centre blanked, and measures how
    much of each Grad-CAM map falls in the centre; `gradcam_dir` saves a few Grad-CAM overlays.
    """
    from models.diagnosis.classifier import ImageClassifier
    from models.diagnosis.data import load_rgb

    clf = ImageClassifier(model, explain=False)
    rows, source = select_rows(read_labelled(data_dir), split, clf.metadata)
    unknown = sorted({r.label for r in rows} - set(clf.classes))
    if unknown:
        raise ValueError(f"{str(data_dir)!r} has labels {unknown} that the model does not know (classes: {clf.classes})")
    y = np.array([clf.classes.index(r.label) for r in rows])
    images = [load_rgb(r.image) for r in rows]
    probs = np.stack([clf(im).scores for im in images])
    report = {"model": clf.name, "weights": str(clf.entry.weights), "data": str(data_dir), "split": split or "all",
              "split_source": source, "temperature": clf.temperature, "evaluated_at": _now(),
              **classification_metrics(y, probs, clf.classes, clf.decision)}
    report["per_image"] = [{"stem": r.stem, "true": r.label, "scores": {c: round(float(p), 4) for c, p in zip(clf.classes, ps)}}
                           for r, ps in zip(rows, probs)]
    if bias_check:
        report["source_bias_check"] = _bias_check(clf, images, y, rows, gradcam_dir, n_gradcam)
    return report


def _bias_check(clf, images, y, rows, gradcam_dir, n_gradcam) -> dict[str, Any]:
    from models.diagnosis.explain import overlay_heatmap

    variants = {}
    for name, fn in (("centre_crop", centre_crop), ("centre_blanked", blank_centre)):
        p = np.stack([clf(fn(im)).scores for im in images])
        m = classification_metrics(y, p, clf.classes, clf.decision, n_boot=500)
        variants[name] = {"auc": m["auc"], "auc_ci95": m["auc_ci95"], "balanced_accuracy": m["balanced_accuracy"]}
    inside = []
    saved = []
    if gradcam_dir:
        Path(gradcam_dir).mkdir(parents=True, exist_ok=True)
    pick = set(np.linspace(0, len(images) - 1, min(n_gradcam, len(images))).round().astype(int).tolist())
    clf.explain = True  # the classifier's own Grad-CAM, placed where a centre-cropping model looked
    for i, im in enumerate(images):
        res = clf(im)
        heat = res.heatmap
        box = np.zeros_like(heat, dtype=bool)
        h, w = heat.shape
        dh, dw = round(h * (1 - CENTRE_FRACTION) / 2), round(w * (1 - CENTRE_FRACTION) / 2)
        box[dh:h - dh, dw:w - dw] = True
        total = float(heat.sum())
        inside.append(float(heat[box].sum()) / total if total > 0 else math.nan)
        if gradcam_dir and i in pick:
            import cv2

            path = Path(gradcam_dir) / f"{rows[i].stem[:60]}_{res.top_label}.png"
            cv2.imwrite(str(path), np.concatenate([im, overlay_heatmap(im, heat)], 1)[..., ::-1])
            saved.append(str(path))
    clf.explain = False
    frac = np.array(inside, dtype=np.float64)
    return {
        "centre_fraction": CENTRE_FRACTION,
        "model_centre_crop": clf.centre_crop,
        "what": (f"AUC on the middle {CENTRE_FRACTION:.0%} of each side only (borders, corner letters removed) and on the image "
                 "with that middle blanked (lungs removed: a high AUC here means the model reads the source, not the lungs); "
                 f"Grad-CAM mass inside the middle box, whose area is {CENTRE_FRACTION ** 2:.0%} of the image"),
        **variants,
        "gradcam_mass_in_centre": {"mean": _num(np.nanmean(frac)), "median": _num(np.nanmedian(frac)),
                                   "images_below_half": int(np.sum(frac < 0.5))},
        "gradcam_examples": saved,
    }


def evaluate_labelled_segmenter(model: str | Path | ModelEntry, data_dir: str | Path, split: str | None = None) -> dict[str, Any]:
    """Per-image Dice and IoU (each image at its own resolution) and their means on one split."""
    from metrics.segmentation import segmentation_report
    from models.diagnosis.data import load_rgb, read_mask
    from models.diagnosis.segmenter import ImageSegmenter

    seg = ImageSegmenter(model)
    rows, source = select_rows(read_labelled(data_dir, masks=True), split, seg.metadata)
    preds, truths = [], []
    for r in rows:
        rgb = load_rgb(r.image)
        truth = read_mask(r.mask, 2)
        if truth.shape != rgb.shape[:2]:
            raise ValueError(f"mask {str(r.mask)!r} is {truth.shape[::-1]}, image {str(r.image)!r} is {rgb.shape[1::-1]}")
        preds.append(seg(rgb).labels == 1)
        truths.append(truth == 1)
    rep = segmentation_report(preds, truths, [r.stem for r in rows], label=seg.classes[1])
    dice = np.asarray(rep.dice, dtype=np.float64)
    from metrics.classification import bootstrap_interval

    lo, hi = bootstrap_interval(lambda d: float(np.mean(d)), dice)
    return {"model": seg.name, "weights": str(seg.entry.weights), "data": str(data_dir), "split": split or "all",
            "split_source": source, "evaluated_at": _now(), "n": len(rows), "class": seg.classes[1],
            "threshold": (seg.metadata.get("decision") or {}).get("threshold"),
            "dice": _num(rep.mean_dice), "dice_ci95": [_num(lo), _num(hi)], "iou": _num(rep.mean_iou),
            "dice_median": _num(float(np.median(dice))), "images_dice_below_0.5": int(np.sum(dice < 0.5)),
            "per_image": [{"stem": r.stem, "dice": _num(d), "iou": _num(i)} for r, d, i in zip(rows, rep.dice, rep.iou)]}


# --- model cards --------------------------------------------------------------------------------------

def write_card(model: str | Path | ModelEntry, report: dict[str, Any], command: str, extra: dict[str, Any] | None = None) -> Path:
    """Record `report` (without per-image rows) as metadata.json `evaluation` and rewrite MODEL_CARD.md from it."""
    entry = model if isinstance(model, ModelEntry) else resolve_model(model)
    meta = dict(entry.metadata)
    summary = {k: v for k, v in report.items() if k != "per_image"}
    summary["command"] = command
    # Version-2 models keep one evaluation per split ("val", "test", "all"); older records are replaced.
    evaluation = dict(meta.get("evaluation") or {}) if meta.get("version") == 2 else {}
    evaluation[report.get("split") or "all"] = summary
    meta["evaluation"] = evaluation
    if extra:
        meta.update(extra)
    folder = entry.weights.parent
    write_metadata(folder, meta)
    card = folder / "MODEL_CARD.md"
    card.write_text(render_card(meta))
    return card


def render_card(meta: dict[str, Any]) -> str:
    """MODEL_CARD.md text from metadata.json (training, split, validation choices, held-out evaluation)."""
    ev = meta.get("evaluation", {})
    test = ev.get("test") or ev.get("all") or {}
    tr = meta.get("training", {})
    split = meta.get("split", {})
    is_seg = meta.get("kind") == "image-segmenter"
    lines = [f"# {meta['name']}", ""]
    lines.append(f"{meta['kind']} for **{meta.get('modality', 'any')}** images: `{meta['architecture']}` trained from scratch by "
                 f"SurgLens ({meta['input_size']} px input, whole image resized), classes: {', '.join(meta['classes'])}. "
                 "Research software: not a medical device, not for clinical use.")
    lines += ["", "## Headline (held-out test split, never trained or tuned on)", ""]
    if is_seg:
        lines.append(f"- n = {test.get('n')} images; mean **Dice {test.get('dice')}** (95 % bootstrap CI {test.get('dice_ci95')}), "
                     f"mean IoU {test.get('iou')}, median Dice {test.get('dice_median')}, {test.get('images_dice_below_0.5')} "
                     f"image(s) with Dice < 0.5; mask threshold {test.get('threshold')} (chosen on validation).")
    else:
        lines.append(f"- n = {test.get('n')} images, support {test.get('support')}.")
        lines.append(f"- ROC AUC{' (macro one-vs-rest)' if len(meta['classes']) > 2 else ' (' + str(test.get('positive')) + ' vs rest)'}: "
                     f"**{test.get('auc')}** (95 % bootstrap CI {test.get('auc_ci95')}).")
        lines.append(f"- Balanced accuracy: **{test.get('balanced_accuracy')}** (95 % CI {test.get('balanced_accuracy_ci95')}); "
                     f"accuracy {test.get('accuracy')}.")
        if isinstance(test.get("sensitivity"), dict):
            lines += ["", "| class | support | sensitivity | specificity | AUC | AUC 95 % CI |", "|---|---|---|---|---|---|"]
            for c in meta["classes"]:
                lines.append(f"| {c} | {test['support'].get(c)} | {test['sensitivity'].get(c)} | {test['specificity'].get(c)} | "
                             f"{test['per_class_auc'].get(c)} | {test.get('per_class_auc_ci95', {}).get(c)} |")
            lines.append("")
        else:
            lines.append(f"- At the validation-chosen threshold {test.get('threshold')} on the {test.get('positive')} score: "
                         f"sensitivity {test.get('sensitivity')}, specificity {test.get('specificity')}.")
        lines.append(f"- Calibration (temperature {meta.get('temperature', 1.0)} fitted on validation): ECE {test.get('ece')} "
                     "(10 equal-width bins of the top score).")
        if test.get("reliability"):
            lines += ["", "Reliability curve (test):", "", "| confidence bin | n | mean confidence | accuracy |", "|---|---|---|---|"]
            for b in test["reliability"]:
                lines.append(f"| {b['bin'][0]:.1f}-{b['bin'][1]:.1f} | {b['count']} | {b['confidence']} | {b['accuracy']} |")
        if test.get("confusion_matrix"):
            lines += ["", f"Confusion matrix (rows true, columns predicted; order {', '.join(meta['classes'])}): "
                      f"`{test['confusion_matrix']}`"]
    goals = meta.get("goals")
    if goals:
        lines += ["", "## Goals", ""] + [f"- {g}" for g in goals]
    bias = test.get("source_bias_check")
    if bias:
        seen = (f" This model itself only ever sees the middle {bias['model_centre_crop']:.0%} of each side, so Grad-CAM "
                "cannot fall outside that box and the centre-blanked score shows what is left of the lungs' edges."
                if bias.get("model_centre_crop") else "")
        lines += ["", "## Source-bias check (test split)", "", f"{bias['what']}.{seen}", "",
                  f"- full image: AUC {test.get('auc')}",
                  f"- centre crop only: AUC {bias['centre_crop']['auc']} (CI {bias['centre_crop']['auc_ci95']})",
                  f"- centre blanked (lungs hidden): AUC {bias['centre_blanked']['auc']} (CI {bias['centre_blanked']['auc_ci95']})",
                  f"- Grad-CAM mass inside the centre box: mean {bias['gradcam_mass_in_centre']['mean']}, median "
                  f"{bias['gradcam_mass_in_centre']['median']}; {bias['gradcam_mass_in_centre']['images_below_half']} image(s) "
                  "with less than half inside."]
    if meta.get("findings"):
        lines += ["", "## What we saw", ""] + [f"- {f}" for f in meta["findings"]]
    lines += ["", "## Data and split", ""]
    lines.append(f"- Training data: `{tr.get('data')}` ({meta.get('data_note', '')}).".replace(" ()", ""))
    if split:
        lines.append(f"- Our split: {split.get('method')}; counts {split.get('counts')}. The per-image assignment is in "
                     "metadata.json `split.assignment`; `--split test` uses it when labels.csv has no test rows.")
    if not is_seg:
        lines.append(f"- Training images per class: {tr.get('images_per_class')} (classes sampled equally often).")
    lines.append(f"- Augmentation: {tr.get('augmentation')}.")
    lines.append(f"- {tr.get('epochs_run')} of {tr.get('epochs')} epochs run; kept epoch {tr.get('best_epoch')} (best on validation); "
                 f"batch {tr.get('batch_size')}, AdamW lr {tr.get('lr')} with warm-up and cosine decay, seed {tr.get('seed')}"
                 + (f"; started from our weights {tr['init']}" if tr.get("init") else "; from scratch (random init)") + ".")
    val = ev.get("val")
    if val:
        if is_seg:
            lines.append(f"- Validation (used for choices): Dice {val.get('dice')}, IoU {val.get('iou')}, n {val.get('n')}.")
        else:
            lines.append(f"- Validation (used for choices): AUC {val.get('auc')}, balanced accuracy {val.get('balanced_accuracy')}, n {val.get('n')}.")
    lines += ["", "## Reproduce", "", "```", tr.get("command", "(training command not recorded)")]
    for name in ("val", "test"):
        if ev.get(name, {}).get("command"):
            lines.append(ev[name]["command"])
    lines += ["```", ""]
    if meta.get("limits"):
        lines += ["## Known limits", ""] + [f"- {x}" for x in meta["limits"]] + [""]
    lines += [f"Licence: {meta.get('licence', 'see metadata.json')}", ""]
    return "\n".join(lines)
