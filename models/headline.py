"""The headline numbers of a model's card, read from its metadata.json `evaluation` block.

Each model kind writes its own nesting (written by our own eval commands):
- detector: `{<data set>: {mAP50, mAP50_95, images, per_class}, <tracking set>: {<tracker>: {mota, idf1, ...}}}`;
- temporal phase model: `{<scheme>: {<variant>: {strict: {mean, std}, relaxed: {mean, std}}}}` for the
  schemes `real_frames_folds`, `clips` and `label_level_41_80`;
- the older phase model: `{mean_over_videos: {<variant>: {strict: {accuracy: {mean, std}, macro: ...}, relaxed: ...}}}`;
- classifiers and segmenters: `accuracy`/`n`, or `{<split>: {mean_dice, mean_iou, n}}`.
Anything else falls back to its numeric leaves, each named by its path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

MAX_GENERIC_ROWS = 8
PHASE_SCHEMES = {
    "real_frames_folds": "real frames, each operation scored by a fold model that never saw it",
    "clips": "the six shared 32 s clips (real video)",
    "label_level_41_80": "Cholec80 41-80, label level (official split)",
    "mean_over_videos": "leave-one-video-out, mean over videos",
}
METRIC_NAMES = {
    "mAP50": "mAP@0.5", "mAP50_95": "mAP@0.5:0.95", "mAP": "mAP", "accuracy": "accuracy",
    "mean_dice": "mean Dice", "mean_iou": "mean IoU", "dice": "Dice", "iou": "IoU", "mota": "MOTA", "idf1": "IDF1",
    "macro_f1": "macro F1", "auc": "AUC",
}
COUNT_NAMES = {"images": "images", "frames": "frames", "n": "images", "videos": "videos"}
DATA_NAMES = {
    "m2cai16_test_boxes": "m2cai16-tool-locations test split (boxes)",
    "cholect50_presence": "CholecT50 tool presence (other surgeons' operations)",
    "m2cai16_track_v10": "m2cai16 tracking clip (video 10)",
    "held_out": "held-out images",
    "leave_one_out": "leave-one-out",
    "training_images": "training images (not a generalisation estimate)",
}
_SKIP = {"per_class", "per_image", "per_video", "per_phase", "protocol", "confusion_matrix", "roc", "command"}


@dataclass(frozen=True)
class Headline:
    """One number of a model card: on what data, which measure, and its value as shown."""

    data: str
    measure: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"evaluated on": self.data, "measure": self.measure, "value": self.value}


def card_headlines(metadata: Mapping[str, Any]) -> list[Headline]:
    """The headline numbers of a model's metadata (`evaluation`, else a legacy `metrics` block); [] when none."""
    evaluation = metadata.get("evaluation")
    if not isinstance(evaluation, Mapping):
        evaluation = metadata.get("metrics")
    if not isinstance(evaluation, Mapping):
        return []
    return _phase_rows(evaluation) or _known_rows(evaluation) or _leaf_rows(evaluation)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spread(value: Any) -> str | None:
    """'80.0 ± 8.2 %' of {mean, std} (or of {accuracy: {mean, std}}), None for anything else."""
    if isinstance(value, Mapping) and "accuracy" in value and "mean" not in value:
        value = value["accuracy"]
    if not isinstance(value, Mapping) or not _number(value.get("mean")):
        return None
    std = value.get("std")
    return f"{100 * value['mean']:.1f}" + (f" ± {100 * std:.1f}" if _number(std) else "") + " %"


def _phase_rows(evaluation: Mapping[str, Any]) -> list[Headline]:
    rows = []
    for scheme, label in PHASE_SCHEMES.items():
        variants = evaluation.get(scheme)
        if not isinstance(variants, Mapping):
            continue
        variants = variants.get("mean_over_videos", variants)  # a full evaluation.json nests once more
        if "strict" in variants:  # one model, no variants
            variants = {"auto": variants}
        for variant, m in variants.items():
            if not isinstance(m, Mapping):
                continue
            strict, relaxed = _spread(m.get("strict")), _spread(m.get("relaxed"))
            if strict is None:
                continue
            measure = f"{variant}: accuracy, strict" + (" / relaxed (10 s)" if relaxed else "")
            rows.append(Headline(label, measure, strict + (f" / {relaxed}" if relaxed else "")))
    return rows


def _counted(label: str, block: Mapping[str, Any]) -> str:
    counts = [f"{block[k]:,} {name}" for k, name in COUNT_NAMES.items() if _number(block.get(k))]
    return label + (f" ({counts[0]})" if counts else "")


def _known_rows(evaluation: Mapping[str, Any], path: tuple[str, ...] = (), depth: int = 0) -> list[Headline]:
    """The known metrics (METRIC_NAMES) at the top and up to two levels down, named by their data."""
    rows = []
    label = " / ".join(DATA_NAMES.get(p, p.replace("_", " ")) for p in path) or "evaluation"
    for key, name in METRIC_NAMES.items():
        if _number(evaluation.get(key)):
            rows.append(Headline(_counted(label, evaluation), name, f"{evaluation[key]:.3f}"))
    if depth < 2:
        for key, value in evaluation.items():
            if isinstance(value, Mapping) and key not in _SKIP:
                rows += _known_rows(value, (*path, str(key)), depth + 1)
    return rows


def _leaf_rows(evaluation: Mapping[str, Any]) -> list[Headline]:
    """Numeric leaves (lists and per-class blocks left out), each named by its path, at most MAX_GENERIC_ROWS."""
    rows: list[Headline] = []

    def walk(block: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in block.items():
            if len(rows) >= MAX_GENERIC_ROWS or key in _SKIP:
                continue
            if isinstance(value, Mapping):
                walk(value, (*path, str(key)))
            elif _number(value):
                rows.append(Headline(" / ".join(path) or "evaluation", str(key),
                                     f"{value:.3f}" if isinstance(value, float) else f"{value:,}"))

    walk(evaluation, ())
    return rows


def file_size(n_bytes: int) -> str:
    """A weights file's size: 6.4 KB, 5.2 MB."""
    if n_bytes < 2**20:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / 2**20:.1f} MB"
