"""Teaching workflows on the library: reference labels (educator corrections), study attempts, OSATS/GOALS.

`Teaching(lib)` works on the same database as `Library` (tables in library/db.py) and hands out frozen
records. The model's output in the case folder is never changed: an educator's corrected phase timeline is
stored beside it as the case's reference, and study mode scores against it when present.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import select

from analysis.moments import phase_segments
from analysis.study import StudyScore, clean_marks, score_attempt, tools_shown
from library import db
from library.errors import LibraryError
from library.store import Library, get_row
from models.taxonomy import label_of, load_taxonomy

# The standard items (each rated 1-5) of the two structured assessment forms.
OSATS_ITEMS = ("Respect for tissue", "Time and motion", "Instrument handling", "Knowledge of instruments",
               "Flow of operation", "Use of assistants", "Knowledge of specific procedure")
GOALS_ITEMS = ("Depth perception", "Bimanual dexterity", "Efficiency", "Tissue handling", "Autonomy")
FORMS = {"OSATS": OSATS_ITEMS, "GOALS": GOALS_ITEMS}
CVS_THRESHOLD = 0.5
CORRECTION_VIDEO_OFFSET = 1000  # exported corrections are video1001, ...: clear of Cholec80's video01-80
_NAME = re.compile(r"^\S(.{0,62}\S)?$")


@dataclass(frozen=True)
class ReferenceRecord:
    """The reference phase timeline of a case; `source` "educator" (corrected) or "model"."""

    case_id: int
    source: str
    segments: tuple[dict[str, Any], ...]
    author: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class FrameBoxes:
    """The instrument boxes of one frame: `source` "educator" (a stored correction) or "model" (its detections).

    Boxes are dicts {x1, y1, x2, y2, label} (plus the model's `confidence`) in pixels of the upright video frame
    (`width` x `height`), whatever size the analysis ran at.
    """

    case_id: int
    timestamp_s: float
    frame_index: int
    width: int
    height: int
    boxes: tuple[dict[str, Any], ...]
    source: str
    author: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: db.BoxCorrection) -> "FrameBoxes":
        return cls(row.case_id, row.timestamp_s, row.frame_index, row.width, row.height,
                   tuple(dict(b) for b in row.boxes or []), "educator", row.author, row.updated_at)


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    case_id: int
    trainee: str
    reference_source: str
    marks: tuple[tuple[float, str], ...]
    tool_marks: tuple[tuple[float, tuple[str, ...]], ...]
    cvs_s: float | None
    score: dict[str, Any]
    mean_abs_error_s: float | None
    mean_jaccard: float | None
    tool_f1: float | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: db.StudyAttempt) -> "AttemptRecord":
        return cls(row.id, row.case_id, row.trainee, row.reference_source,
                   tuple((float(t), str(p)) for t, p in row.marks or []),
                   tuple((float(t), tuple(tools)) for t, tools in row.tool_marks or []),
                   row.cvs_s, dict(row.score or {}), row.mean_abs_error_s, row.mean_jaccard, row.tool_f1,
                   row.created_at)


@dataclass(frozen=True)
class AssessmentRecord:
    id: int
    case_id: int
    form: str
    trainee: str | None
    assessor: str | None
    scores: dict[str, int]
    total: int
    notes: str | None
    created_at: datetime

    @property
    def max_total(self) -> int:
        return 5 * len(FORMS[self.form])

    @classmethod
    def from_row(cls, row: db.Assessment) -> "AssessmentRecord":
        return cls(row.id, row.case_id, row.form, row.trainee, row.assessor, dict(row.scores or {}), row.total,
                   row.notes, row.created_at)


def display_name_of(name: str | None, what: str = "trainee", required: bool = True) -> str | None:
    """A trimmed display name (1-64 characters); empty means None unless `required`."""
    clean = " ".join(str(name or "").split())
    if not clean:
        if required:
            raise LibraryError(f"{what} name is empty: enter a display name")
        return None
    if not _NAME.match(clean):
        raise LibraryError(f"{what} name must be 1-64 characters, got {clean!r}")
    return clean


def check_segments(segments: Iterable[Mapping[str, Any]], duration_s: float | None) -> list[dict[str, Any]]:
    """Segments sorted, with taxonomy phase names, positive length, no overlap and inside the video."""
    out = []
    for seg in sorted(segments, key=lambda s: float(s["start_s"])):
        start, end = float(seg["start_s"]), float(seg["end_s"])
        label = label_of(str(seg["label"]), "phase")
        if label is None:
            raise LibraryError(f"unknown phase {seg['label']!r}")
        if not (0 <= start < end) or not math.isfinite(end):
            raise LibraryError(f"a segment must have 0 <= start < end, got {start:g}-{end:g} s")
        if duration_s is not None and end > duration_s + 1.0:
            raise LibraryError(f"a segment ends at {end:g} s, after the end of the video ({duration_s:g} s)")
        if out and start < out[-1]["end_s"] - 1e-9:
            raise LibraryError(f"segments overlap at {start:g} s")
        if out and out[-1]["label"] == label.name and abs(out[-1]["end_s"] - start) < 1e-9:
            out[-1]["end_s"] = end  # two touching segments of one phase are one
            continue
        out.append({"start_s": start, "end_s": end, "label": label.name})
    if not out:
        raise LibraryError("the timeline has no segment")
    return out


def check_boxes(boxes: Iterable[Mapping[str, Any]], width: int, height: int) -> list[dict[str, Any]]:
    """Boxes {x1, y1, x2, y2, label} with a taxonomy instrument and 0 <= x1 < x2 <= width (y likewise); sorted."""
    out = []
    for i, box in enumerate(boxes, start=1):
        missing = [k for k in ("x1", "y1", "x2", "y2", "label") if k not in box or box[k] is None]
        if missing:
            raise LibraryError(f"box {i} lacks {missing}, got {dict(box)!r}")
        label = label_of(str(box["label"]), "tool")
        if label is None:
            raise LibraryError(f"box {i}: unknown instrument {box['label']!r}; known: {load_taxonomy().tool_names}")
        try:
            x1, y1, x2, y2 = (float(box[k]) for k in ("x1", "y1", "x2", "y2"))
        except (TypeError, ValueError):
            raise LibraryError(f"box {i}: coordinates must be numbers, got "
                               f"{[box[k] for k in ('x1', 'y1', 'x2', 'y2')]!r}") from None
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or not (x1 < x2 and y1 < y2):
            raise LibraryError(f"box {i} must have x1 < x2 and y1 < y2, got ({x1:g}, {y1:g}, {x2:g}, {y2:g})")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise LibraryError(f"box {i} ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is outside the {width}x{height} frame")
        out.append({"x1": round(x1, 1), "y1": round(y1, 1), "x2": round(x2, 1), "y2": round(y2, 1),
                    "label": label.name})
    return sorted(out, key=lambda b: (b["x1"], b["y1"], b["label"]))


class Teaching:
    """Reference labels, study attempts and structured assessments of the cases of `library`."""

    def __init__(self, library: Library):
        self.lib = library
        self._sessions = library._sessions

    # ------------------------------------------------------------- reference labels

    def model_segments(self, case_id: int) -> list[dict[str, Any]]:
        """The model's phase timeline of an analysed case (raises LibraryError without results)."""
        return phase_segments(self.lib.case_results(case_id))

    def reference(self, case_id: int) -> ReferenceRecord:
        """The educator's corrected timeline when one is stored, else the model's."""
        with self._sessions() as s:
            row = s.get(db.ReferenceLabels, case_id)
            if row is not None:
                return ReferenceRecord(case_id, "educator", tuple(dict(x) for x in row.segments), row.author,
                                       row.updated_at)
        return ReferenceRecord(case_id, "model", tuple(self.model_segments(case_id)))

    def save_reference(self, case_id: int, segments: Iterable[Mapping[str, Any]],
                       author: str | None = None) -> ReferenceRecord:
        """Store an educator's corrected phase timeline as the case's reference (the model output stays)."""
        case = self.lib.get_case(case_id)
        clean = check_segments(segments, case.duration_s)
        author = display_name_of(author, "author", required=False)
        with self._sessions.begin() as s:
            row = s.get(db.ReferenceLabels, case_id)
            if row is None:
                s.add(db.ReferenceLabels(case_id=case_id, segments=clean, author=author))
            else:
                row.segments, row.author = clean, author
        return self.reference(case_id)

    def clear_reference(self, case_id: int) -> None:
        """Drop the correction: the model's timeline is the reference again."""
        with self._sessions.begin() as s:
            row = s.get(db.ReferenceLabels, case_id)
            if row is not None:
                s.delete(row)

    def corrected_case_ids(self) -> list[int]:
        with self._sessions() as s:
            return list(s.scalars(select(db.ReferenceLabels.case_id).order_by(db.ReferenceLabels.case_id)))

    def write_reference_cholec80(self, case_id: int, path: str | Path) -> Path:
        """The reference timeline as a Cholec80 phase file, one line per frame at the video's own fps."""
        from models.datasets.cholec80 import write_cholec80_phases
        from models.taxonomy import load_taxonomy

        case = self.lib.get_case(case_id)
        fps = float(case.probe.get("fps") or 0)
        if fps <= 0:
            raise LibraryError(f"case {case_id} has no frame rate in its probe, got {case.probe.get('fps')!r}")
        frames = int(case.probe.get("frame_count") or round(float(case.duration_s or 0) * fps))
        segments = self.reference(case_id).segments
        if not segments:
            raise LibraryError(f"case {case_id} has no phase timeline to export")
        ids = load_taxonomy().phase_names
        return write_cholec80_phases(path, [s["start_s"] for s in segments], [ids.index(s["label"]) for s in segments],
                                     fps, frames)

    def reference_cholec80_text(self, case_id: int) -> str:
        """The reference's Cholec80 phase file as text (for a download)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self.write_reference_cholec80(case_id, Path(tmp) / "phase.txt").read_text()

    def export_corrections(self, out_dir: str | Path, include: str | Path | None = None,
                           case_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Every corrected case (of `case_ids` when given) as a cholec80-labels folder that `surglens train-phase
        --data` reads, with the corrected instrument boxes and their frames beside it (`export_boxes`: yolo/ for
        `surglens train-detector --corrections`, coco/).

        `out_dir/phase_annotations/video<1000+id>-phase.txt` holds the reference phases and
        `tool_annotations/video<1000+id>-tool.txt` the model's per-second tool presence (a tool counts
        as present in a second it was detected). Frame numbers count at 25 fps, the rate the
        cholec80-labels reader uses for every file of such a folder, whatever the video's own rate.
        `include` (e.g. the official cholec80-labels) links that folder's annotation files in too, so one
        folder trains on both. Caveat: train-phase's label-level benchmark takes every video number above
        40 as Cholec80 41-80, so these (1001, ...) join that test split until it stops at 80.
        Returns one entry per exported case with a corrected phase timeline (also written to corrections.json,
        with the box frames under "box_frames").
        """
        import json
        import os
        import shutil

        from models.datasets.cholec80 import write_cholec80_phases
        from models.phase.sequences import CHOLEC80_FPS, is_label_root
        from models.taxonomy import load_taxonomy

        out = Path(out_dir)
        phase_dir, tool_dir = out / "phase_annotations", out / "tool_annotations"
        if include is not None and not is_label_root(include):
            raise LibraryError("--include must be a cholec80-labels folder (phase_annotations/ + "
                               f"tool_annotations/), got {str(include)!r}")
        phase_dir.mkdir(parents=True, exist_ok=True)
        tool_dir.mkdir(parents=True, exist_ok=True)
        taxonomy = load_taxonomy()
        entries = []
        for case_id in self.corrected_case_ids():
            if case_ids is not None and case_id not in case_ids:
                continue
            case = self.lib.get_case(case_id)
            segments = self.reference(case_id).segments
            duration = float(case.duration_s or max(s["end_s"] for s in segments))
            name = f"video{CORRECTION_VIDEO_OFFSET + case_id}"
            frames = int(math.ceil(duration * CHOLEC80_FPS))
            write_cholec80_phases(phase_dir / f"{name}-phase.txt", [s["start_s"] for s in segments],
                                  [taxonomy.phase_names.index(s["label"]) for s in segments], CHOLEC80_FPS, frames)
            presence = self.lib.case_results(case_id).tool_presence()
            lines = ["Frame\t" + "\t".join(taxonomy.tool_names)]
            for second in range(int(math.ceil(duration))):
                shown = tools_shown(presence, float(second))
                lines.append("\t".join([str(int(second * CHOLEC80_FPS))] +
                                        ["1" if t in shown else "0" for t in taxonomy.tool_names]))
            (tool_dir / f"{name}-tool.txt").write_text("\n".join(lines) + "\n")
            entries.append({"video": name, "case_id": case_id, "title": case.title,
                            "author": self.reference(case_id).author, "duration_s": duration,
                            "frame_numbering_fps": CHOLEC80_FPS, "video_fps": case.probe.get("fps")})
        if include is not None:
            for sub in ("phase_annotations", "tool_annotations"):
                for file in sorted((Path(include) / sub).glob("video*.txt")):
                    target = out / sub / file.name
                    if target.exists() or target.is_symlink():
                        continue
                    try:
                        os.symlink(file.resolve(), target)
                    except OSError:
                        shutil.copyfile(file, target)
        frames = self.export_boxes(out, case_ids=case_ids)
        (out / "corrections.json").write_text(json.dumps(
            {"source": "SurgLens educator corrections", "included": None if include is None else str(include),
             "cases": entries, "box_frames": frames}, indent=2))
        return entries

    # ------------------------------------------------------------- instrument boxes

    def analysed_times(self, case_id: int) -> list[float]:
        """The times of the case's analysed frames (every sampling interval from 0 to the end of the video)."""
        interval, _ = self._rate(case_id)
        duration = self._duration(case_id)
        return [round(k * interval, 6) for k in range(max(1, int(math.ceil(duration / interval - 1e-9))))]

    def frame_time(self, case_id: int, time_s: float) -> float:
        """`time_s` checked to lie inside the video, moved to the nearest analysed frame."""
        duration = self._duration(case_id)
        try:
            t = float(time_s)
        except (TypeError, ValueError):
            raise LibraryError(f"frame time must be a number of seconds, got {time_s!r}") from None
        if not math.isfinite(t) or not 0 <= t < duration:
            raise LibraryError(f"frame time {time_s!r} s is outside the video (0-{duration:g} s)")
        interval, _ = self._rate(case_id)
        return min(round(round(t / interval) * interval, 6), self.analysed_times(case_id)[-1])

    def model_boxes(self, case_id: int, time_s: float) -> FrameBoxes:
        """The model's detections on the analysed frame nearest `time_s`, in video pixels (clipped to the frame)."""
        from analysis.clips import class_names_of

        t = self.frame_time(case_id, time_s)
        result = self.lib.case_results(case_id)
        interval, (aw, ah) = self._rate(case_id)
        width, height, fps = self._frame_geometry(case_id)
        table = result.detections()
        boxes = []
        if not table.empty:
            names = class_names_of(table)
            near = table[(table["timestamp_s"] - t).abs() < interval / 2 - 1e-9].sort_values("x1")
            sx, sy = (width / aw if aw else 1.0), (height / ah if ah else 1.0)
            for row in near.itertuples(index=False):
                label = label_of(names[int(row.class_id)], "tool")
                if label is None:
                    continue
                x1, x2 = (min(max(float(v) * sx, 0.0), width) for v in (row.x1, row.x2))
                y1, y2 = (min(max(float(v) * sy, 0.0), height) for v in (row.y1, row.y2))
                if x2 > x1 and y2 > y1:
                    boxes.append({"x1": round(x1, 1), "y1": round(y1, 1), "x2": round(x2, 1), "y2": round(y2, 1),
                                  "label": label.name, "confidence": round(float(row.confidence), 3)})
        return FrameBoxes(case_id, t, int(round(t * fps)), width, height, tuple(boxes), "model")

    def frame_boxes(self, case_id: int, time_s: float) -> FrameBoxes:
        """The educator's boxes of the analysed frame nearest `time_s` when stored, else the model's."""
        stored = self._box_row(case_id, self.frame_time(case_id, time_s))
        return stored if stored is not None else self.model_boxes(case_id, time_s)

    def save_boxes(self, case_id: int, time_s: float, boxes: Iterable[Mapping[str, Any]],
                   author: str | None = None) -> FrameBoxes:
        """Store the corrected boxes of a frame (all of them: what is left out is wrong); the detections stay."""
        t = self.frame_time(case_id, time_s)
        width, height, fps = self._frame_geometry(case_id)
        clean = check_boxes(boxes, width, height)
        author = display_name_of(author, "author", required=False)
        index = int(round(t * fps))
        with self._sessions.begin() as s:
            row = s.scalar(select(db.BoxCorrection).where(db.BoxCorrection.case_id == case_id,
                                                          db.BoxCorrection.frame_index == index))
            if row is None:
                s.add(db.BoxCorrection(case_id=case_id, timestamp_s=t, frame_index=index, width=width, height=height,
                                       boxes=clean, author=author))
            else:
                row.timestamp_s, row.width, row.height, row.boxes, row.author = t, width, height, clean, author
        return self._box_row(case_id, t)

    def clear_boxes(self, case_id: int, time_s: float) -> None:
        """Drop a frame's correction: the model's boxes are its boxes again."""
        t = self.frame_time(case_id, time_s)
        _, _, fps = self._frame_geometry(case_id)
        with self._sessions.begin() as s:
            row = s.scalar(select(db.BoxCorrection).where(db.BoxCorrection.case_id == case_id,
                                                          db.BoxCorrection.frame_index == int(round(t * fps))))
            if row is not None:
                s.delete(row)

    def box_corrections(self, case_id: int | None = None) -> list[FrameBoxes]:
        """Every corrected frame (of one case when given), by case then time."""
        q = select(db.BoxCorrection).order_by(db.BoxCorrection.case_id, db.BoxCorrection.frame_index)
        if case_id is not None:
            q = q.where(db.BoxCorrection.case_id == case_id)
        with self._sessions() as s:
            return [FrameBoxes.from_row(r) for r in s.scalars(q)]

    def export_boxes(self, out_dir: str | Path, case_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """The corrected frames as a YOLO set (`yolo/`: images/, labels/, data.yaml) and COCO (`coco/`: images/,
        annotations/instances.json), frames decoded from each case's video at the corrected times.

        Class names and ids are the taxonomy's tools (COCO category id = class index + 1). Frames are named
        `video<1000+case id>_<frame index>.jpg` (frame index at the video's own fps, as in the phase export);
        the case's mask regions (burned-in text) are blacked out. Returns one entry per frame.
        """
        import os
        import shutil

        import cv2
        import numpy as np
        import yaml

        from analysis.clips import representative_frame
        from models.datasets.coco import write_coco
        from models.datasets.voc import BoxAnnotation
        from models.datasets.yolo import write_yolo_labels
        from models.taxonomy import load_taxonomy

        out = Path(out_dir)
        yolo, coco = out / "yolo", out / "coco"
        for folder in (yolo / "images", yolo / "labels", coco / "images"):
            folder.mkdir(parents=True, exist_ok=True)
        names = load_taxonomy().tool_names
        annotations, extras, entries = [], [], []
        wanted = None if case_ids is None else set(case_ids)
        for frame in self.box_corrections():
            if wanted is not None and frame.case_id not in wanted:
                continue
            case = self.lib.get_case(frame.case_id)
            try:
                rgb = representative_frame(case.video_path, frame.timestamp_s, mask=case.mask_regions)
            except (OSError, ValueError, RuntimeError) as exc:
                raise LibraryError(f"cannot decode the frame at {frame.timestamp_s:g} s of case {case.id}: {exc}") from None
            h, w = rgb.shape[:2]
            sx, sy = w / frame.width, h / frame.height  # the stored size is the probe's; the decoded frame rules
            stem = f"video{CORRECTION_VIDEO_OFFSET + case.id}_{frame.frame_index:06d}"
            image = yolo / "images" / f"{stem}.jpg"
            if not cv2.imwrite(str(image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise LibraryError(f"could not write {str(image)!r}")
            twin = coco / "images" / image.name
            twin.unlink(missing_ok=True)
            try:
                os.link(image, twin)
            except OSError:
                shutil.copyfile(image, twin)
            xyxy = np.array([[b["x1"] * sx, b["y1"] * sy, b["x2"] * sx, b["y2"] * sy] for b in frame.boxes],
                            dtype=np.float32).reshape(-1, 4)
            labels = tuple(b["label"] for b in frame.boxes)
            write_yolo_labels(BoxAnnotation(image, w, h, xyxy, labels), names, yolo / "labels" / f"{stem}.txt")
            annotations.append(BoxAnnotation(twin, w, h, xyxy, labels))
            extra = {"case_id": case.id, "timestamp_s": frame.timestamp_s, "frame_index": frame.frame_index}
            extras.append(extra)
            entries.append({"image": image.name, **extra, "boxes": len(labels), "author": frame.author})
        (yolo / "data.yaml").write_text(yaml.safe_dump(
            {"path": str(yolo.resolve()), "train": "images", "val": "images", "names": dict(enumerate(names))},
            sort_keys=False))
        write_coco(annotations, names, coco / "annotations" / "instances.json", coco / "images",
                   info={"description": "SurgLens educator box corrections", "frames": len(annotations)},
                   image_extra=extras)
        return entries

    def corrections_zip(self, case_ids: Sequence[int] | None = None) -> bytes:
        """`export_corrections` of the given cases (all when None) as the bytes of a zip, for a download."""
        import tempfile
        import zipfile

        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "corrections"
            self.export_corrections(root, case_ids=case_ids)
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
                for file in sorted(root.rglob("*")):
                    if file.is_file():
                        zf.write(file, file.relative_to(root.parent).as_posix())
        return buffer.getvalue()

    def _oldest_first(self, model: Any, record: Any, **equal: Any) -> list[Any]:
        """The `model` rows, oldest first, whose columns equal the given values (None: any), as `record`s."""
        q = select(model).order_by(model.created_at, model.id)
        for column, value in equal.items():
            if value is not None:
                q = q.where(getattr(model, column) == value)
        with self._sessions() as s:
            return [record.from_row(r) for r in s.scalars(q)]

    def _box_row(self, case_id: int, t: float) -> FrameBoxes | None:
        _, _, fps = self._frame_geometry(case_id)
        with self._sessions() as s:
            row = s.scalar(select(db.BoxCorrection).where(db.BoxCorrection.case_id == case_id,
                                                          db.BoxCorrection.frame_index == int(round(t * fps))))
            return None if row is None else FrameBoxes.from_row(row)

    def _rate(self, case_id: int) -> tuple[float, tuple[int, int]]:
        """(seconds between analysed frames, (width, height) of the analysed frames) of an analysed case."""
        result = self.lib.case_results(case_id)
        return result.sampling.frame_interval_s, result.sampling.frame_size

    def _duration(self, case_id: int) -> float:
        case = self.lib.get_case(case_id)
        duration = float(case.duration_s or 0)
        if duration <= 0:
            raise LibraryError(f"case {case_id} has no duration in its probe, got {case.duration_s!r}")
        return duration

    def _frame_geometry(self, case_id: int) -> tuple[int, int, float]:
        """(width, height, fps) of the case's upright video frames, from its probe."""
        probe = self.lib.get_case(case_id).probe
        width, height, fps = int(probe.get("width") or 0), int(probe.get("height") or 0), float(probe.get("fps") or 0)
        if width <= 0 or height <= 0 or fps <= 0:
            raise LibraryError(f"case {case_id} has no frame size or rate in its probe, got "
                               f"{width}x{height} at {probe.get('fps')!r} fps")
        return width, height, fps

    # ------------------------------------------------------------- study attempts

    def reference_cvs_s(self, case_id: int) -> float | None:
        """When the case's anatomy analysis first shows all three CVS criteria (None when it did not run)."""
        result = self.lib.case_results(case_id)
        table = result.anatomy()
        if table is None or table.empty:
            return None
        cvs = [c for c in table.columns if c.startswith("cvs_c")]
        if not cvs:
            return None
        reached = table[(table[cvs] >= CVS_THRESHOLD).all(axis=1)]
        return None if reached.empty else float(reached["timestamp_s"].iloc[0])

    def score(self, case_id: int, marks: Sequence[tuple[float, str]],
              tool_marks: Sequence[tuple[float, Iterable[str]]] = (), cvs_s: float | None = None) -> StudyScore:
        """Score marks against the case's reference (educator's when stored, else the model's); not saved."""
        case = self.lib.get_case(case_id)
        reference = self.reference(case_id)
        if not reference.segments:
            raise LibraryError(f"case {case_id} has no phase timeline to compare with")
        duration = float(case.duration_s or max(s["end_s"] for s in reference.segments))
        marks = [(t, _phase_name(p)) for t, p in marks]
        if not marks:
            raise LibraryError("mark at least one phase (its start time and phase)")
        presence = None
        if tool_marks:
            presence = self.lib.case_results(case_id).tool_presence()
        try:
            return score_attempt(
                list(reference.segments), marks, duration, reference.source,
                tool_marks=[(float(t), [_tool_name(x) for x in tools]) for t, tools in tool_marks],
                reference_tools_at=(lambda t: tools_shown(presence, t)) if tool_marks else None,
                cvs_s=cvs_s, reference_cvs_s=self.reference_cvs_s(case_id) if cvs_s is not None else None)
        except ValueError as exc:
            raise LibraryError(str(exc)) from None

    def submit_attempt(self, case_id: int, trainee: str, marks: Sequence[tuple[float, str]],
                       tool_marks: Sequence[tuple[float, Iterable[str]]] = (),
                       cvs_s: float | None = None) -> AttemptRecord:
        """Score a trainee's marks and store the attempt."""
        trainee = display_name_of(trainee)
        score = self.score(case_id, marks, tool_marks, cvs_s)
        reference = [dict(seg) for seg in self.reference(case_id).segments]  # what was compared, kept with the score
        duration = self.lib.get_case(case_id).duration_s
        try:
            stored_marks = [[t, p] for t, p in clean_marks([(t, _phase_name(p)) for t, p in marks], duration)]
        except ValueError as exc:
            raise LibraryError(str(exc)) from None
        row = db.StudyAttempt(
            case_id=case_id, trainee=trainee, reference_source=score.reference_source, marks=stored_marks,
            tool_marks=[[float(t), sorted(_tool_name(x) for x in tools)] for t, tools in tool_marks],
            cvs_s=None if cvs_s is None else float(cvs_s), score={**score.to_dict(), "reference_segments": reference},
            mean_abs_error_s=score.to_dict()["mean_abs_error_s"], mean_jaccard=score.to_dict()["mean_jaccard"],
            tool_f1=score.to_dict()["tool_f1"])
        with self._sessions.begin() as s:
            s.add(row)
            s.flush()
            return AttemptRecord.from_row(row)

    def attempts(self, trainee: str | None = None, case_id: int | None = None) -> list[AttemptRecord]:
        """Stored attempts, oldest first (only one trainee's or one case's when given)."""
        trainee = None if trainee is None else display_name_of(trainee)
        return self._oldest_first(db.StudyAttempt, AttemptRecord, trainee=trainee, case_id=case_id)

    def trainees(self) -> list[str]:
        """Every display name with an attempt or an assessment, sorted."""
        with self._sessions() as s:
            names = set(s.scalars(select(db.StudyAttempt.trainee).distinct()))
            names |= {n for n in s.scalars(select(db.Assessment.trainee).distinct()) if n}
        return sorted(names, key=str.lower)

    # ------------------------------------------------------------- OSATS / GOALS

    def save_assessment(self, case_id: int, form: str, scores: Mapping[str, int], trainee: str | None = None,
                        assessor: str | None = None, notes: str | None = None) -> AssessmentRecord:
        """Store an OSATS or GOALS rating: every item of the form scored 1-5."""
        if form not in FORMS:
            raise LibraryError(f"form must be one of {list(FORMS)}, got {form!r}")
        items = FORMS[form]
        unknown = sorted(set(scores) - set(items))
        if unknown:
            raise LibraryError(f"unknown {form} item(s) {unknown}; known: {list(items)}")
        missing = [i for i in items if i not in scores]
        if missing:
            raise LibraryError(f"{form} needs a score for every item; missing {missing}")
        for item in items:
            value = scores[item]
            if isinstance(value, bool) or value not in range(1, 6):
                raise LibraryError(f"{item!r} must be scored 1-5, got {value!r}")
        self.lib.get_case(case_id)
        row = db.Assessment(case_id=case_id, form=form, trainee=display_name_of(trainee, required=False),
                            assessor=display_name_of(assessor, "assessor", required=False),
                            scores={i: int(scores[i]) for i in items}, total=sum(int(scores[i]) for i in items),
                            notes=(notes or "").strip() or None)
        with self._sessions.begin() as s:
            s.add(row)
            s.flush()
            return AssessmentRecord.from_row(row)

    def assessments(self, case_id: int | None = None, trainee: str | None = None,
                    form: str | None = None) -> list[AssessmentRecord]:
        """Stored assessments, oldest first, optionally of one case, trainee or form."""
        trainee = None if trainee is None else display_name_of(trainee)
        return self._oldest_first(db.Assessment, AssessmentRecord, case_id=case_id, trainee=trainee, form=form)

    def delete_assessment(self, assessment_id: int) -> None:
        with self._sessions.begin() as s:
            s.delete(get_row(s, db.Assessment, assessment_id, "assessment"))

    def assessments_csv(self, case_id: int | None = None, trainee: str | None = None) -> str:
        """Assessments as CSV: one row each, with the case's title, every item of both forms, total and maximum."""
        records = self.assessments(case_id=case_id, trainee=trainee)
        titles = {c.id: c.title for c in self.lib.list_cases()}
        items = [*OSATS_ITEMS, *GOALS_ITEMS]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "case_id", "case", "form", "trainee", "assessor", "created_at", *items, "total",
                         "max_total", "notes"])
        for r in records:
            writer.writerow([r.id, r.case_id, titles.get(r.case_id, ""), r.form, r.trainee or "", r.assessor or "",
                             r.created_at.isoformat(), *(r.scores.get(i, "") for i in items), r.total, r.max_total,
                             r.notes or ""])
        return out.getvalue()


def _phase_name(name: str) -> str:
    label = label_of(str(name), "phase")
    if label is None:
        raise LibraryError(f"unknown phase {name!r}")
    return label.name


def _tool_name(name: str) -> str:
    label = label_of(str(name), "tool")
    if label is None:
        raise LibraryError(f"unknown instrument {name!r}")
    return label.name
