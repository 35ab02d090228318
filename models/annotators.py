"""Annotators: small callables that draw one kind of thing on a frame, all with `annotate(scene, detections)`.

`BoxAnnotator` (boxes), `LabelAnnotator` (instrument name, track id, confidence), `TraceAnnotator`
(fading trails of tracked boxes; stateful, `reset()` between videos) and `MaskAnnotator` (a label map
of anatomy classes, the `detections` of a segmenter). Each returns the scene it drew on (a copy when
`copy=True` was asked of `InstrumentAnnotator`, which chains the first three after removing duplicate
boxes). Scenes are RGB uint8 arrays.
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

import cv2
import numpy as np

from models.detections import Detections

DUPLICATE_IOU = 0.7  # boxes overlapping more than this are one instrument read as two classes
# Anatomy classes (models.anatomy.data.CLASSES) -> colour; background is not drawn.
ANATOMY_COLOURS = {
    "cystic_plate": "#9467bd", "hepatocystic_triangle": "#17becf", "cystic_artery": "#d62728",
    "cystic_duct": "#2ca02c", "gallbladder": "#ffbf00", "tool": "#7f7f7f",
}
_FALLBACK = ("#1f77b4", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22")


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """'#1f77b4' -> (31, 119, 180)."""
    c = colour.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def distinct_boxes(xyxy: np.ndarray, confidence: np.ndarray, iou: float = DUPLICATE_IOU) -> np.ndarray:
    """Which boxes to draw: class-agnostic suppression, so one tool boxed as both Hook and Scissors shows
    once, as the more confident class. Returns a boolean mask in the boxes' order."""
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1], got {iou!r}")
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    keep = np.zeros(len(boxes), dtype=bool)
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    for i in np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable"):
        kept = np.flatnonzero(keep)
        if len(kept):
            w = np.clip(np.minimum(boxes[kept, 2], boxes[i, 2]) - np.maximum(boxes[kept, 0], boxes[i, 0]), 0, None)
            h = np.clip(np.minimum(boxes[kept, 3], boxes[i, 3]) - np.maximum(boxes[kept, 1], boxes[i, 1]), 0, None)
            inter = w * h
            union = area[kept] + area[i] - inter
            if np.any(inter > iou * np.where(union > 0, union, np.inf)):
                continue
        keep[i] = True
    return keep


def _scale(scene: np.ndarray) -> float:
    return max(scene.shape[0] / 480, 0.5)


def _colours(colours: Sequence[str]) -> list[tuple[int, int, int]]:
    return [hex_to_rgb(c) for c in colours]


class BoxAnnotator:
    """Draws each box in its class colour (`colours[class_id]`, '#rrggbb')."""

    def __init__(self, colours: Sequence[str], thickness: int = 2):
        self.colours, self.thickness = _colours(colours), thickness

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        width = max(1, int(self.thickness * _scale(scene)))
        for (x1, y1, x2, y2), cid in zip(detections.xyxy.astype(int), detections.class_id):
            cv2.rectangle(scene, (x1, y1), (x2, y2), self.colours[int(cid)], width, cv2.LINE_AA)
        return scene


class LabelAnnotator:
    """Writes "name #track confidence" on a filled tag at each box's top-left corner."""

    def __init__(self, class_names: Sequence[str], colours: Sequence[str], text_scale: float = 0.45):
        if len(colours) < len(class_names):
            raise ValueError(f"{len(class_names)} classes but only {len(colours)} colours")
        self.class_names, self.colours, self.text_scale = list(class_names), _colours(colours), text_scale

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        fs = self.text_scale * _scale(scene)
        for (x1, y1, _, _), cid, tid, conf in zip(detections.xyxy.astype(int), detections.class_id,
                                                  detections.tracker_id, detections.confidence):
            label = f"{self.class_names[int(cid)]}" + (f" #{tid}" if tid >= 0 else "") + f" {conf:.2f}"
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
            ty = max(y1, th + base + 2)
            cv2.rectangle(scene, (x1, ty - th - base - 2), (x1 + tw + 4, ty), self.colours[int(cid)], -1)
            cv2.putText(scene, label, (x1 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
        return scene


class TraceAnnotator:
    """Fading trails of tracked boxes' centres over the last `trace_length` annotated frames (one call a frame)."""

    def __init__(self, colours: Sequence[str], trace_length: int = 30, thickness: int = 2, opacity: float = 0.8):
        if not isinstance(trace_length, (int, np.integer)) or trace_length < 2:
            raise ValueError(f"trace_length must be an integer >= 2 frames, got {trace_length!r}")
        self.colours, self.trace_length, self.thickness, self.opacity = _colours(colours), int(trace_length), thickness, opacity
        self.reset()

    def reset(self) -> None:
        self._frame = 0
        self._trails: dict[int, deque[tuple[int, int, int]]] = {}  # track -> (frame, x, y)
        self._track_class: dict[int, int] = {}

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        now = self._frame
        self._frame += 1
        for (x1, y1, x2, y2), cid, tid in zip(detections.xyxy, detections.class_id, detections.tracker_id):
            if tid >= 0:
                self._track_class[int(tid)] = int(cid)
                self._trails.setdefault(int(tid), deque()).append((now, int((x1 + x2) / 2), int((y1 + y2) / 2)))
        for tid, trail in list(self._trails.items()):
            while trail and now - trail[0][0] >= self.trace_length:
                trail.popleft()
            if not trail:
                del self._trails[tid]
                self._track_class.pop(tid, None)
        if not any(len(t) > 1 for t in self._trails.values()):
            return scene
        overlay = scene.copy()
        width = max(1, int(self.thickness * _scale(scene)))
        for tid, trail in self._trails.items():
            colour = self.colours[self._track_class[tid]]
            for (f0, xa, ya), (_, xb, yb) in zip(trail, list(trail)[1:]):
                fade = 1.0 - (now - f0) / self.trace_length
                c = tuple(int(v * fade + 255 * (1 - fade) * 0.3) for v in colour)
                cv2.line(overlay, (xa, ya), (xb, yb), c, width, cv2.LINE_AA)
        cv2.addWeighted(overlay, self.opacity, scene, 1 - self.opacity, 0, dst=scene)
        return scene


class InstrumentAnnotator:
    """What SurgLens draws for instruments: duplicate boxes removed (`suppress_iou`, None keeps all), then
    trails, boxes and labels. `annotate` returns an annotated copy; `reset()` clears the trails."""

    def __init__(self, class_names: Sequence[str], colours: Sequence[str], trace_length: int = 30,
                 thickness: int = 2, suppress_iou: float | None = DUPLICATE_IOU):
        if len(colours) < len(class_names):
            raise ValueError(f"{len(class_names)} classes but only {len(colours)} colours")
        self.suppress_iou = suppress_iou
        self.trace = TraceAnnotator(colours, trace_length, thickness)
        self.boxes = BoxAnnotator(colours, thickness)
        self.labels = LabelAnnotator(class_names, colours)

    def reset(self) -> None:
        self.trace.reset()

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        out = np.ascontiguousarray(scene.copy())
        if self.suppress_iou is not None and len(detections) > 1:
            detections = detections[distinct_boxes(detections.xyxy, detections.confidence, self.suppress_iou)]
        for annotator in (self.trace, self.boxes, self.labels):
            out = annotator.annotate(out, detections)
        return out


class MaskAnnotator:
    """Draws a label map (H, W class ids) over a frame: semi-transparent class colours and a small legend.

    `class_names[k]` names label k; names in `skip` (the background) are left undrawn. `colours` maps a
    name to '#rrggbb' (default ANATOMY_COLOURS); `note` is written under the legend.
    """

    def __init__(self, class_names: Sequence[str], colours: dict[str, str] | None = None, alpha: float = 0.45,
                 skip: Sequence[str] = ("background",), legend: bool = True, note: str | None = None):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        colours = {**ANATOMY_COLOURS, **(colours or {})}
        self.class_names = list(class_names)
        self.alpha, self.legend, self.note = float(alpha), legend, note
        self.drawn = [k for k, n in enumerate(self.class_names) if n not in skip]
        self.lut = np.zeros((max(len(self.class_names), 1), 3), dtype=np.uint8)
        for i, k in enumerate(self.drawn):
            self.lut[k] = hex_to_rgb(colours.get(self.class_names[k], _FALLBACK[i % len(_FALLBACK)]))
        # The last label map drawn and what it paints: a map is shown on several frames (the caller never edits it).
        self._cache: tuple[np.ndarray, tuple[np.ndarray, np.ndarray, list[int]]] | None = None

    def annotate(self, scene: np.ndarray, detections: np.ndarray | None) -> np.ndarray:
        """A copy of the RGB frame with the label map `detections` drawn over it (None: the frame unchanged)."""
        out = np.ascontiguousarray(scene.copy())
        if detections is None:
            return out
        labels = np.asarray(detections)
        if labels.shape != out.shape[:2]:
            raise ValueError(f"label map must have the frame's shape {out.shape[:2]}, got {labels.shape}")
        valid, colour, present = self._painted(labels)
        if present:
            blend = cv2.addWeighted(out, 1 - self.alpha, colour, self.alpha, 0)
            np.copyto(out, blend, where=valid[..., None])
        if self.legend:
            self._legend(out, present)
        return out

    def _painted(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(drawn pixels, their colours, classes on screen) of a label map; kept for the next frames, which
        usually show the same map (the anatomy stage segments about once a second)."""
        if self._cache is not None and self._cache[0] is labels:
            return self._cache[1]
        valid = np.isin(labels, self.drawn)
        colour = self.lut[np.where(valid, labels, 0).astype(np.intp)]
        present = sorted(set(np.unique(labels[valid]).tolist())) if valid.any() else []
        self._cache = (labels, (valid, colour, present))
        return self._cache[1]

    def _legend(self, out: np.ndarray, present: list[int]) -> None:
        """Names of the classes on screen (top right), and the note under them."""
        scale = _scale(out)
        fs, pad = 0.4 * scale, max(2, int(4 * scale))
        lines = [(self.class_names[k].replace("_", " "), tuple(int(v) for v in self.lut[k])) for k in present]
        if self.note:
            lines.append((self.note, (255, 255, 255)))
        if not lines:
            return
        sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)[0] for text, _ in lines]
        line_h = max(h for _, h in sizes) + pad
        box_w = max(w for w, _ in sizes) + 3 * pad + line_h
        x0 = max(out.shape[1] - box_w - pad, 0)
        y0 = pad
        region = out[y0:y0 + line_h * len(lines) + pad, x0:x0 + box_w]
        region[:] = (region.astype(np.float32) * 0.4).astype(np.uint8)  # darkened backing, legible on any scene
        for i, (text, colour) in enumerate(lines):
            y = y0 + (i + 1) * line_h
            if i < len(present):
                cv2.rectangle(out, (x0 + pad, y - line_h + pad), (x0 + pad + line_h - pad, y), colour, -1)
            cv2.putText(out, text, (x0 + 2 * pad + line_h, y - 1), cv2.FONT_HERSHEY_SIMPLEX, fs, colour, 1, cv2.LINE_AA)


def trace_length_for(trail_s: float, rate_fps: float, minimum: int = 4) -> int:
    """Frames of trail for `trail_s` seconds at `rate_fps` annotated frames a second (at least `minimum`)."""
    if trail_s <= 0 or rate_fps <= 0:
        raise ValueError(f"trail_s and rate_fps must be positive, got {trail_s!r} and {rate_fps!r}")
    return max(minimum, int(round(trail_s * rate_fps)))
