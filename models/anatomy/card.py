"""The anatomy model's MODEL_CARD.md and metadata `evaluation`, written from `surglens eval-anatomy --card`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.registry import write_metadata

NAMES = {
    "cystic_plate": "cystic plate", "hepatocystic_triangle": "hepatocystic triangle", "cystic_artery": "cystic artery",
    "cystic_duct": "cystic duct", "gallbladder": "gallbladder", "tool": "tool", "background": "background",
}


def write_card(model_dir: str | Path, result: dict[str, Any], command: str) -> Path:
    """Store `result` (an eval-anatomy output) under metadata `evaluation` and rewrite MODEL_CARD.md."""
    model_dir = Path(model_dir)
    meta_file = model_dir / "metadata.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"no metadata.json in model folder {str(model_dir)!r}")
    meta = json.loads(meta_file.read_text())
    evaluation = dict(meta.get("evaluation", {}))
    evaluation[f"endoscapes_seg50_{result['split']}"] = {
        k: result[k] for k in ("frames", "videos", "dice", "iou", "mean_dice", "mean_iou", "cvs", "seconds_per_frame")
    } | {"command": command}
    meta["evaluation"] = evaluation
    write_metadata(model_dir, meta)
    card = model_dir / "MODEL_CARD.md"
    card.write_text(render_card(meta, result, command))
    return card


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def render_card(meta: dict[str, Any], result: dict[str, Any], command: str) -> str:
    """Markdown model card from metadata and one split's evaluation."""
    t = meta["training"]
    head = meta.get("cvs_head", {})
    rows = "\n".join(
        f"| {NAMES.get(c, c)} | {_pct(result['dice'][c])} | {_pct(result['iou'][c])} |" for c in meta["classes"][1:]
    )
    cvs = result.get("cvs") or {}
    frames = cvs.get("frames") or 0
    crow = "\n".join(
        f"| {c} | {cvs.get('positives', {}).get(c, 'n/a')} | {_pct(cvs.get('positives', {}).get(c, 0) / frames if frames else None)} "
        f"| {_pct(cvs.get('ap', {}).get(c))} |" for c in meta.get("criteria", [])
    )
    cv = head.get("cv", {})
    minutes = (t.get("train_seconds") or 0) / 60
    return f"""# SurgLens anatomy segmenter and CVS assessment {meta['version']}

Segments the hepatocystic anatomy of laparoscopic cholecystectomy frames (cystic plate, hepatocystic
triangle, cystic artery, cystic duct, gallbladder) and tools, and scores the three criteria of the
critical view of safety (C1 two structures entering the gallbladder, C2 hepatocystic triangle
cleared, C3 lower third of the gallbladder off the cystic plate) from the predicted masks.
For research and teaching; **not for clinical use**, and never a substitute for the surgeon's own view.

## Model
- {meta['architecture']}; input {meta['input_size'][0]}x{meta['input_size'][1]} px (RGB 0..1), output upsampled to the frame.
- Trained by SurgLens: {t['init']}. No downloaded weights.
- {t['epochs_completed']} of {t['epochs_planned']} epochs, batch {t['batch_size']}, AdamW (decoder lr {t['lr']},
  encoder lr {t['encoder_lr']}, cosine), {t['loss']}; augmentation: {t['augmentation']}.
  CPU, 2 cores shared with other work: {minutes:.0f} min of training.{(chr(10) + '  ' + t['schedule_note']) if t.get('schedule_note') else ''}
- Model selection: {t['selection']} (best epoch {t['best_epoch']}).
- CVS head: one logistic regression per criterion on `{head.get('feature_set')}` features (C={head.get('C')}),
  chosen among mask features, pooled encoder features and both by {head.get('folds', 'n/a')}-fold cross-validation on
  train frames grouped by video (cross-validated train mAP {_pct(cv.get('map'))}); fitted on the segmenter's own
  predictions for the train frames. Val frames never enter fitting or selection of the head.
- One weights file `weights.pt`: segmenter state_dict, backbone yaml and the head's tensors.

## Data and licence
- Endoscapes2023 Seg50 subset (Murali et al. 2023, CAMMA; CC BY-NC-SA 4.0): {t['data']}; evaluation on
  the official val videos. Masks: label 255 and one stray label 7 (val frame 153_32700) are not scored.
- {meta['licence']}.

## Segmentation, {result['split']} ({result['frames']} frames, {result['videos']} operations never trained on)
Mean Dice over the six classes **{_pct(result['mean_dice'])}**, mean IoU {_pct(result['mean_iou'])}
(pixel counts summed over the split; Dice/IoU in %).

| class | Dice | IoU |
|---|---|---|
{rows}

## Critical view of safety, {result['split']}
Truth: a criterion holds when the mean of three raters is >= 0.5. AP per criterion (sklearn average
precision), mean AP **{_pct(cvs.get('map'))}**; balanced accuracy of "CVS achieved" (all three criteria
with probability >= 0.5) **{_pct(cvs.get('balanced_accuracy'))}** — with only
{cvs.get('achieved_positives', 'n/a')} frame(s) of achieved CVS in this split, that number is very uncertain.

| criterion | positive frames | chance AP (prevalence) | AP |
|---|---|---|---|
{crow}

Speed: {result['seconds_per_frame'] * 1000:.0f} ms per frame on this machine's CPU.

## Reproduce
```
{t.get('command', 'surglens train-anatomy --data ../shared/data/endoscapes-seg50 --out assets/models/anatomy')}
{command}
```

## Limitations
- 343 training frames from 30 operations of one centre; other optics, lighting and anatomy differ.
- Cystic artery and duct are thin and often partly hidden: their masks are the least reliable.
- CVS from 343 frames is weak: compare each AP with its chance level (the prevalence) above. The
  criteria need the thin structures (artery, duct, triangle) that the segmenter finds least well.
- The CVS head sees the segmenter's predictions on the frames it was trained on, which are cleaner than on
  new frames; its probabilities are not calibrated.
"""
