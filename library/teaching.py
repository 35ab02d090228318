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

from analysis.moments import phase_segments, taxonomy_label
from analysis.results import TOOL_PRESENCE
from analysis.study import StudyScore, clean_marks, score_attempt, tools_shown
from library import db
from library.errors import LibraryError, NotFoundError
from library.store import Library

# The standard items (each rated 1-5) of the two structured assessment forms.
OSATS_ITEMS = ("Respect for tissue", "Time and motion", "Instrument handling", "Knowledge of instruments",
               "Flow of operation", "Use of assistants", "Knowledge of specific procedure")
GOALS_ITEMS = ("Depth perception", "Bimanual dexterity", "Efficiency", "Tissue handling", "Autonomy")
FORMS = {"OSATS": OSATS_ITEMS, "GOALS": GOALS_ITEMS}
ANATOMY_TABLE = "anatomy.parquet"  # written by the anatomy stage when it ran: cvs_c1..cvs_c3 per second
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
        label = taxonomy_label(str(seg["label"]), "phase")
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

    def export_corrections(self, out_dir: str | Path, include: str | Path | None = None) -> list[dict[str, Any]]:
        """Every corrected case as a cholec80-labels folder that `surglens train-phase --data` reads.

        `out_dir/phase_annotations/video<1000+id>-phase.txt` holds the reference phases and
        `tool_annotations/video<1000+id>-tool.txt` the model's per-second tool presence (a tool counts
        as present in a second it was detected). Frame numbers count at 25 fps, the rate the
        cholec80-labels reader uses for every file of such a folder, whatever the video's own rate.
        `include` (e.g. the official cholec80-labels) links that folder's annotation files in too, so one
        folder trains on both. Caveat: train-phase's label-level benchmark takes every video number above
        40 as Cholec80 41-80, so these (1001, ...) join that test split until it stops at 80.
        Returns one entry per exported case (also written to corrections.json).
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
            case = self.lib.get_case(case_id)
            segments = self.reference(case_id).segments
            duration = float(case.duration_s or max(s["end_s"] for s in segments))
            name = f"video{CORRECTION_VIDEO_OFFSET + case_id}"
            frames = int(math.ceil(duration * CHOLEC80_FPS))
            write_cholec80_phases(phase_dir / f"{name}-phase.txt", [s["start_s"] for s in segments],
                                  [taxonomy.phase_names.index(s["label"]) for s in segments], CHOLEC80_FPS, frames)
            presence = self.lib.case_results(case_id).table(TOOL_PRESENCE)
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
        (out / "corrections.json").write_text(json.dumps(
            {"source": "SurgLens educator corrections", "included": None if include is None else str(include),
             "cases": entries}, indent=2))
        return entries

    # ------------------------------------------------------------- study attempts

    def reference_cvs_s(self, case_id: int) -> float | None:
        """When the case's anatomy analysis first shows all three CVS criteria (None when it did not run)."""
        result = self.lib.case_results(case_id)
        table = result.table(ANATOMY_TABLE) if result.has(ANATOMY_TABLE) else None
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
            presence = self.lib.case_results(case_id).table(TOOL_PRESENCE)
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
        q = select(db.StudyAttempt).order_by(db.StudyAttempt.created_at, db.StudyAttempt.id)
        if trainee is not None:
            q = q.where(db.StudyAttempt.trainee == display_name_of(trainee))
        if case_id is not None:
            q = q.where(db.StudyAttempt.case_id == case_id)
        with self._sessions() as s:
            return [AttemptRecord.from_row(r) for r in s.scalars(q)]

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
        q = select(db.Assessment).order_by(db.Assessment.created_at, db.Assessment.id)
        if case_id is not None:
            q = q.where(db.Assessment.case_id == case_id)
        if trainee is not None:
            q = q.where(db.Assessment.trainee == display_name_of(trainee))
        if form is not None:
            q = q.where(db.Assessment.form == form)
        with self._sessions() as s:
            return [AssessmentRecord.from_row(r) for r in s.scalars(q)]

    def delete_assessment(self, assessment_id: int) -> None:
        with self._sessions.begin() as s:
            row = s.get(db.Assessment, assessment_id)
            if row is None:
                raise NotFoundError(f"no assessment with id {assessment_id!r}")
            s.delete(row)

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
    label = taxonomy_label(str(name), "phase")
    if label is None:
        raise LibraryError(f"unknown phase {name!r}")
    return label.name


def _tool_name(name: str) -> str:
    label = taxonomy_label(str(name), "tool")
    if label is None:
        raise LibraryError(f"unknown instrument {name!r}")
    return label.name
