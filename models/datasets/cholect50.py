"""CholecT50 (official JSON format): per-frame phase, tool presence and tool-TIP boxes.

A root holds `labels/VIDxx.json` and `videos/VIDxx/NNNNNN.jpg` (NNNNNN = frame index at the JSON's
`fps`, 1 fps in the release, i.e. seconds into the surgery). The JSON's `annotations` map a frame to
rows `[triplet, tool, tool_score, x, y, w, h, verb, target, target_score, tx, ty, tw, th, phase]`;
boxes are normalised top-left [x, y, w, h] around the instrument tip, -1 where there is none.
Only frames listed in `annotations` carry labels; other images of the folder are unlabelled.
Instrument and phase names go through the taxonomy (CholecT50 ids 0-5 are not our tool ids).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.datasets.cholec80 import PhaseAnnotation, ToolAnnotation
from models.datasets.voc import BoxAnnotation, DatasetError
from models.taxonomy import load_taxonomy

_FRAME_FILE = re.compile(r"(\d+)\.(jpg|jpeg|png)", re.IGNORECASE)


@dataclass(frozen=True)
class CholecT50Video:
    """The labels of one CholecT50 video and its frame images."""

    name: str
    fps: float
    phases: PhaseAnnotation  # labelled frames only, in time order
    tools: ToolAnnotation  # same frames as `phases`
    tip_boxes: dict[int, tuple[np.ndarray, tuple[str, ...]]]  # frame -> (normalised xywh (K, 4), tool names)
    images: dict[int, Path] = field(default_factory=dict)  # frame -> image, labelled or not

    @property
    def annotated_tools(self) -> tuple[str, ...]:
        """Tools this dataset labels (CholecT50 has no specimen bag)."""
        return self.tools.tool_names

    def box_annotations(self) -> list[BoxAnnotation]:
        """Tip boxes of the labelled frames that have an image, in pixels (reads image sizes)."""
        from PIL import Image

        out = []
        for frame in self.phases.frame_index.tolist():
            image = self.images.get(frame)
            if image is None:
                continue
            with Image.open(image) as im:
                width, height = im.size
            xywh, labels = self.tip_boxes.get(frame, (np.zeros((0, 4), np.float32), ()))
            scale = np.array([width, height, width, height], dtype=np.float32)
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1) * scale
            out.append(BoxAnnotation(image, width, height, xyxy.astype(np.float32), labels))
        return out


def read_cholect50_labels(json_path: str | Path, images_dir: str | Path | None = None) -> CholecT50Video:
    """Read one `labels/VIDxx.json`; `images_dir` (default `../videos/VIDxx`) lists the frame images."""
    json_path = Path(json_path)
    try:
        raw = json.loads(json_path.read_text())
        categories = raw["categories"]
        instruments = {int(k): v for k, v in categories["instrument"].items()}
        phase_names = {int(k): v for k, v in categories["phase"].items()}
        annotations = raw["annotations"]
        fps = float(raw.get("fps", 1))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DatasetError(f"{str(json_path)!r} is not a CholecT50 label file: {exc!r}") from exc
    taxonomy = load_taxonomy()
    try:
        tool_map = {k: taxonomy.tool_id(v) for k, v in instruments.items()}
        phase_map = {k: taxonomy.phase_id(v) for k, v in phase_names.items()}
    except KeyError as exc:
        raise DatasetError(f"{str(json_path)!r}: {exc.args[0]}") from None
    name = json_path.stem

    frames = sorted(int(k) for k in annotations)
    phase_id = np.zeros(len(frames), dtype=np.int64)
    presence = np.zeros((len(frames), len(taxonomy.tools)), dtype=bool)
    boxes: dict[int, tuple[np.ndarray, tuple[str, ...]]] = {}
    for i, frame in enumerate(frames):
        rows = annotations[str(frame)] if str(frame) in annotations else annotations[f"{frame:06d}"]
        if not rows:
            raise DatasetError(f"{str(json_path)!r}: frame {frame} has no annotation row (no phase)")
        phases = {int(r[14]) for r in rows}
        if len(phases) != 1 or not phases <= phase_map.keys():
            raise DatasetError(f"{str(json_path)!r}: frame {frame} has phase ids {sorted(phases)}")
        phase_id[i] = phase_map[phases.pop()]
        seen: list[tuple[int, tuple[float, ...]]] = []
        for r in rows:
            tool = int(r[1])
            if tool < 0:
                continue  # a null triplet: no instrument
            if tool not in tool_map:
                raise DatasetError(f"{str(json_path)!r}: frame {frame} has unknown instrument id {tool}")
            presence[i, tool_map[tool]] = True
            box = tuple(float(v) for v in r[3:7])
            if box[0] >= 0 and box[2] > 0 and box[3] > 0 and (tool, box) not in seen:
                seen.append((tool, box))  # one instance can appear in several triplet rows
        boxes[frame] = (
            np.asarray([b for _, b in seen], dtype=np.float32).reshape(-1, 4),
            tuple(taxonomy.tools[tool_map[t]].name for t, _ in seen),
        )
    images_dir = Path(images_dir) if images_dir is not None else json_path.parent.parent / "videos" / name
    images = _frame_images(images_dir)
    index = np.asarray(frames, dtype=np.int64)
    annotated = sorted(set(tool_map.values()))
    tools = ToolAnnotation(index, presence[:, annotated], tuple(taxonomy.tools[t].name for t in annotated), fps, name)
    return CholecT50Video(name, fps, PhaseAnnotation(index, phase_id, fps, name), tools, boxes, images)


def _frame_images(folder: Path) -> dict[int, Path]:
    """Frame number -> image; names that are not a bare number (e.g. 'x (1).jpg' copies) are ignored."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.iterdir()):
        match = _FRAME_FILE.fullmatch(path.name)
        if match:
            out[int(match.group(1))] = path
    return out


def read_cholect50(root: str | Path, videos: list[str] | None = None) -> list[CholecT50Video]:
    """Every video of a CholecT50 root (labels/ + videos/), or the named ones, sorted by name."""
    root = Path(root)
    label_dir = root / "labels"
    if not label_dir.is_dir():
        raise DatasetError(f"{str(root)!r} is not a CholecT50 root (no labels/ folder)")
    files = {p.stem: p for p in sorted(label_dir.glob("*.json"))}
    if not files:
        raise DatasetError(f"no label files in {str(label_dir)!r}")
    if videos is not None:
        unknown = [v for v in videos if v not in files]
        if unknown:
            raise DatasetError(f"videos {unknown} not in {str(label_dir)!r}; available: {sorted(files)}")
        files = {v: files[v] for v in videos}
    return [read_cholect50_labels(files[v], root / "videos" / v) for v in sorted(files)]


def presence_frames(root: str | Path) -> list[tuple[Path, set[str]]]:
    """(image, names of tools present) for every labelled frame with an image (tool-presence scoring)."""
    out = []
    for video in read_cholect50(root):
        for frame, row in zip(video.tools.frame_index.tolist(), video.tools.presence):
            if frame in video.images:
                out.append((video.images[frame], {n for n, p in zip(video.tools.tool_names, row) if p}))
    return out
