"""Labelled folders (images/, masks/, labels.csv with stem,label,split) and our grouped hold-out splits.

The shared sets (../shared/data/medical-images/{ham10000,covid-chestxray,kvasir-seg-train}) mark every
row `split=train`, so training makes its own split: whole groups (a lesion, a patient) go to one of
train/val/test (70/15/15 by group, stratified by the group's label, fixed seed). The assignment is
stored in the model's metadata.json (`split.assignment`), and evaluation uses it for the folder the
model was trained on, or when labels.csv has no row of the requested split (see `select_rows`).
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.diagnosis.data import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


@dataclass(frozen=True)
class LabelledRow:
    """One row of labels.csv with its image (and mask) file; `group` is the grouping column's value."""

    stem: str
    label: str
    split: str
    group: str
    image: Path
    mask: Path | None = None


def read_labelled(root: str | Path, group_by: str | None = None, masks: bool = False) -> list[LabelledRow]:
    """Rows of root/labels.csv whose image exists in root/images/ (and mask in root/masks/ if `masks`)."""
    root = Path(root)
    table = root / "labels.csv"
    if not table.is_file() or not (root / "images").is_dir():
        raise FileNotFoundError(f"{str(root)!r} must hold images/ and labels.csv (columns stem,label,split)")
    with table.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        missing = [c for c in ("stem", "label") if c not in fields]
        if missing:
            raise ValueError(f"{str(table)!r} lacks column(s) {missing}; it has {fields}")
        if group_by and group_by not in fields:
            raise ValueError(f"{str(table)!r} has no grouping column {group_by!r}; it has {fields}")
        raw = list(reader)
    images = _by_stem(root / "images")
    mask_files = _by_stem(root / "masks") if masks else {}
    if masks and not (root / "masks").is_dir():
        raise FileNotFoundError(f"{str(root)!r} must hold masks/ for a segmenter")
    rows, absent = [], []
    for r in raw:
        stem = r["stem"]
        if stem not in images or (masks and stem not in mask_files):
            absent.append(stem)
            continue
        rows.append(LabelledRow(stem=stem, label=r["label"], split=(r.get("split") or "").strip(),
                                group=(r.get(group_by) or stem) if group_by else stem,
                                image=images[stem], mask=mask_files.get(stem)))
    if absent:
        raise ValueError(f"{str(table)!r} lists {len(absent)} stem(s) without {'image/mask' if masks else 'image'} files, e.g. {absent[:3]}")
    if not rows:
        raise ValueError(f"{str(table)!r} lists no images")
    return rows


def _by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def group_split(rows: Sequence[LabelledRow], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> dict[str, str]:
    """stem -> train/val/test with every group in one split, stratified by each group's majority label.

    Rows that labels.csv already marks `val` or `test` keep that split; the rest (`train` or empty) are split.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {list(fractions)!r}")
    out: dict[str, str] = {}
    groups: dict[str, list[LabelledRow]] = {}
    for r in rows:
        if r.split in ("val", "test"):  # a hold-out fixed in labels.csv stays where it is
            out[r.stem] = r.split
        else:
            groups.setdefault(r.group, []).append(r)
    by_label: dict[str, list[str]] = {}
    for g, members in sorted(groups.items()):
        labels = [m.label for m in members]
        by_label.setdefault(max(sorted(set(labels)), key=labels.count), []).append(g)
    rng = np.random.default_rng(seed)
    for label in sorted(by_label):
        names = sorted(by_label[label], key=lambda g: hashlib.md5(g.encode()).hexdigest())
        names = [names[i] for i in rng.permutation(len(names))]
        n_val = round(len(names) * fractions[1])
        n_test = round(len(names) * fractions[2])
        for i, g in enumerate(names):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            for m in groups[g]:
                out[m.stem] = split
    return out


def split_record(assignment: dict[str, str], group_by: str | None, fractions: Sequence[float], seed: int) -> dict[str, Any]:
    """The metadata.json `split` entry: how the split was made, counts, and the stem -> split map."""
    counts = {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS}
    return {"method": f"grouped by {group_by or 'image'}, stratified by label, fractions {list(fractions)}, seed {seed}",
            "group_by": group_by, "fractions": list(fractions), "seed": seed, "counts": counts,
            "assignment": dict(sorted(assignment.items()))}


def select_rows(rows: Sequence[LabelledRow], split: str | None, metadata: dict[str, Any] | None = None) -> tuple[list[LabelledRow], str]:
    """Rows of one split and where the split came from ("all", "labels.csv" or "model metadata").

    When the model's recorded split assignment covers every row (the folder it was trained on), `split`
    names our split; otherwise labels.csv's split column is used when it has rows of `split`, and the
    model's assignment for the rows it knows when it has none (the shared sets only say `train`).
    """
    if not split:
        return list(rows), "all"
    assignment = ((metadata or {}).get("split") or {}).get("assignment") or {}
    if assignment and all(r.stem in assignment for r in rows):
        chosen = [r for r in rows if assignment[r.stem] == split]
        if chosen:
            return chosen, "model metadata"
    own = [r for r in rows if r.split == split]
    if own:
        return own, "labels.csv"
    chosen = [r for r in rows if assignment.get(r.stem) == split]
    if chosen:
        return chosen, "model metadata"
    have = sorted({r.split for r in rows} | set(assignment.values()))
    raise ValueError(f"no rows of split {split!r}: labels.csv and the model's split assignment have {have}")
