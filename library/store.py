"""The case library: ingest, cases, teaching data (metadata, tags, comments, collections) and search.

`Library` is the one object the dashboard and the CLI use. It is thread-safe (one engine, a new
session per call) and returns frozen records (library/records.py), never live ORM objects, so pages
can cache them. Analysis itself never runs here: `ingest` and `requeue` queue a job that a separate
`surglens worker` process takes (library/worker.py).

Privacy decisions
-----------------
- The original file name of an upload is never stored anywhere: not in the database, not in the
  stored file's name (`videos/<sha256>.<ext>`), not in logs, not in exports. Only its extension is
  used, as the stored file's extension when it is a usual video one (else one is taken from the
  container the probe found). Whether a file is a video is decided by its content alone. A case is shown as a pseudonymous title, "Case <id>" (editable).
- Of the probe only technical stream fields are kept (`PROBE_FIELDS`: container, codec, pixel
  format, size, fps, frame count, duration, rotation, audio flag, bitrate, file size). Container
  metadata such as creation time, device or GPS is never read into the library, shown or exported.
- The stored video is a stream-copied remux of the upload without its container and stream
  metadata (title, creation time, GPS, chapters, subtitle/data tracks: video.remux.strip_metadata):
  the same frames and timestamps, no re-encode. Its content hash is the case's identity and makes
  re-uploads open the existing case. It stays on this machine: exports contain results, annotated
  clips re-encoded by SurgLens and teaching data, never the source video, its hash or path.
- Uploads are streamed to `data_dir/tmp` in 8 MiB chunks, never held whole in memory; a file on
  this machine can be imported by path (`import_file`: copied, never moved or deleted). A file the
  dashboard streamed to `data_dir/tmp` itself (its large-recording uploader) is ingested in place and
  then deleted (`ingest_staged`); nothing outside `data_dir/tmp` is ever deleted.
- Surgeon ids are pseudonyms: a short token without spaces (e.g. "S03"), never a name.
- Nothing here talks to the network.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence, TypeVar

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from analysis.results import CaseResult, CaseResultError, partial_folder
from library import db
from library.config import Settings
from library.db import Status
from library.errors import IngestError, LibraryError, NotFoundError
from library.jobs import JobQueue
from library.records import CaseFilter, CaseRecord, CollectionRecord, CommentRecord, FilterOptions, JobRecord
from models.taxonomy import canonical_name

PROBE_FIELDS = ("container", "codec", "pix_fmt", "width", "height", "fps", "is_vfr", "frame_count", "duration_s",
                "rotation", "has_audio", "bitrate", "file_size")
SURGEON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_COMMENT_CHARS = 5000
MAX_TAG_CHARS = 64
CASE_ORDERS = ("newest", "oldest", "title", "duration", "operation_date")
_CHUNK = 8 << 20  # uploads are copied in 8 MiB chunks
_PLAIN_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")
# FFmpeg demuxer name -> the usual file extension, for uploads without a usual video extension.
_CONTAINER_EXTENSIONS = {"mov": "mp4", "mpegts": "ts", "mpeg": "mpg", "matroska": "mkv", "mpegvideo": "m2v",
                         "asf": "wmv", "ogg": "ogv", "yuv4mpegpipe": "y4m"}
_UNSET: Any = object()

ProbeFn = Callable[[Path], Any]  # returns an object with to_dict(), like video.probe
RemuxFn = Callable[[Path, Path, str], "Path | str"]  # (src, folder, container) -> the metadata-free copy


_Row = TypeVar("_Row")


def get_row(s: Session, model: type[_Row], row_id: int, what: str) -> _Row:
    """The `model` row with primary key `row_id`; NotFoundError ("no `what` with id ...") when there is none."""
    row = s.get(model, row_id)
    if row is None:
        raise NotFoundError(f"no {what} with id {row_id!r}")
    return row


def _default_probe(path: Path) -> Any:
    from video import probe

    return probe(path, content_hash=False)  # ingest hashes while copying


_REAL_PROBE = _default_probe


def _default_remux(src: Path, folder: Path, container: str) -> Path:
    """A metadata-free stream copy of `src` in `folder`, in its own container family (else Matroska)."""
    import av

    from video.remux import FALLBACK, remux_format, strip_metadata

    muxer, ext = remux_format(container)
    fd, name = tempfile.mkstemp(dir=folder, prefix="remux-", suffix=f".{ext}")
    os.close(fd)
    dst = Path(name)
    try:
        return strip_metadata(src, dst, muxer)
    except av.error.FFmpegError:  # a codec this container's muxer refuses: Matroska holds any codec
        dst.unlink(missing_ok=True)
        if muxer == FALLBACK[0]:
            raise
        dst = dst.with_suffix(f".{FALLBACK[1]}")
        return strip_metadata(src, dst, FALLBACK[0])
    except BaseException:
        dst.unlink(missing_ok=True)
        raise


class Library:
    """The case library in `settings.data_dir` and `settings.database_url`.

    `probe` replaces video.probe (tests inject a fake one). `remux` replaces the metadata-stripping
    remux (video.remux); with an injected probe and no `remux` the files are fakes and are stored as
    received.
    """

    def __init__(self, settings: Settings | None = None, *, probe: ProbeFn | None = None,
                 remux: RemuxFn | None = None):
        self.settings = settings or Settings.from_env()
        for folder in (self.settings.videos_dir, self.settings.cases_dir, self.settings.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.engine = db.make_engine(self.settings.database_url)
        db.create_schema(self.engine)
        self._sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self._probe = probe or _default_probe
        # The remux needs real video files: with a replaced probe (tests' fake files) it is off unless given.
        self._remux = remux if remux is not None else (_default_remux if self._probe is _REAL_PROBE else None)
        self.jobs = JobQueue(self._sessions, self.settings)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- ingest

    def ingest(
        self,
        source: str | Path | BinaryIO,
        ext: str | None = None,
        *,
        config: Mapping[str, Any] | Any | None = None,
        title: str | None = None,
    ) -> tuple[CaseRecord, bool]:
        """Store a video once and queue its analysis; returns (case, created).

        `source` is a path or a binary file object (e.g. Streamlit's UploadedFile); `ext` is the
        extension ("mp4" or ".mp4"), taken from the path or the object's `.name` when omitted; it
        names the stored file but does not decide acceptance: any file the probe reads as a video
        is accepted (MPEG-TS, MPEG-PS, ... whatever its name). The upload is checked (size, probe)
        in `data_dir/tmp` before anything enters the library; a rejected file raises `IngestError` and leaves no row and no file. A file already
        in the library (same content hash) returns the existing case with created=False.
        `config` is an analysis.analyze.AnalysisConfig or a dict of its fields. `title` names a new
        case (default "Case <id>"); a duplicate keeps its own title.
        """
        return self._ingest(source, ext, config=config, title=title, limit_bytes=self.settings.max_upload_bytes)

    def import_file(
        self,
        path: str | Path,
        *,
        config: Mapping[str, Any] | Any | None = None,
        title: str | None = None,
    ) -> tuple[CaseRecord, bool]:
        """Ingest a video file on this machine by its path (for recordings too large to upload).

        The file is read (copied and remuxed), never moved, changed or deleted. It must be a regular
        file outside the library folder; the upload size limit does not apply, but the library's
        disk must have room for a copy of it. Otherwise like `ingest`.
        """
        raw = str(path or "").strip()
        if not raw:
            raise IngestError("no path given")
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            raise IngestError(f"give the full path of the file (starting with /), got {raw!r}")
        if candidate.is_dir():
            raise IngestError(f"{raw!r} is a folder; give the path of one video file")
        if not candidate.is_file():
            raise IngestError(f"no such file: {raw!r}")
        resolved = candidate.resolve()
        if resolved.is_relative_to(self.settings.data_dir):
            raise IngestError(f"{raw!r} is inside the library folder; import files from elsewhere")
        size = resolved.stat().st_size
        free = shutil.disk_usage(self.settings.tmp_dir).free
        if size * 2 + (256 << 20) > free:  # the copy and its remux exist together for a moment
            raise IngestError(f"the file is {size / 2**30:.1f} GB and the library's disk has only "
                              f"{free / 2**30:.1f} GB free; make room first")
        return self._ingest(resolved, resolved.suffix, config=config, title=title, limit_bytes=None)

    def ingest_staged(
        self,
        path: str | Path,
        ext: str | None = None,
        *,
        config: Mapping[str, Any] | Any | None = None,
        title: str | None = None,
    ) -> tuple[CaseRecord, bool]:
        """Ingest a file SurgLens itself wrote under `data_dir/tmp` (a streamed upload), then delete it.

        The same checks as `ingest` (the upload limit, probe by content, metadata-free remux, dedupe by
        hash), without a copy: the file is moved into the check and is gone afterwards, whatever the
        outcome. Only a regular file inside `data_dir/tmp` is taken; anything else raises IngestError
        and is left untouched. `ext` as for `ingest` (default the file's own).
        """
        staged = self._staged_file(path)
        try:
            return self._ingest(staged, staged.suffix if ext is None else ext, config=config, title=title,
                                limit_bytes=self.settings.max_upload_bytes, staged=True)
        finally:
            staged.unlink(missing_ok=True)  # e.g. an invalid title or config refused it before the move

    def _staged_file(self, path: str | Path) -> Path:
        """`path` when it is a regular file (not a link) inside data_dir/tmp, else IngestError."""
        candidate = Path(str(path or ""))
        tmp_dir = self.settings.tmp_dir.resolve()
        if not candidate.is_absolute() or candidate.is_symlink() or not candidate.is_file():
            raise IngestError(f"not a staged upload: {str(path)!r}")
        resolved = candidate.resolve()
        if resolved == tmp_dir or not resolved.is_relative_to(tmp_dir):
            raise IngestError(f"not a staged upload (outside the library's tmp folder): {str(path)!r}")
        return resolved

    def _ingest(self, source: str | Path | BinaryIO, ext: str | None, *, config: Mapping[str, Any] | Any | None,
                title: str | None, limit_bytes: int | None, staged: bool = False) -> tuple[CaseRecord, bool]:
        title = _title(title) if title is not None and title.strip() else None
        ext = self._extension(source, ext)
        config_dict = self._analysis_config(config)
        if staged:
            tmp, sha256 = self._take_staged(Path(str(source)), ext, limit_bytes)
        else:
            tmp, sha256 = self._receive(source, ext, limit_bytes)
        remuxed: Path | None = None
        try:
            if self._remux is None:  # stored as received: the upload's own hash is the identity
                existing = self._case_by_sha(sha256)
                if existing is not None:
                    return existing, False
            probe = self._probe_upload(tmp)  # checks the upload itself (a video, in an allowed container)
            if self._remux is not None:
                remuxed = self._strip_metadata(tmp, probe)
                tmp.unlink(missing_ok=True)
                from video import file_sha256

                sha256 = file_sha256(remuxed)
                existing = self._case_by_sha(sha256)
                if existing is not None:
                    return existing, False
                probe = self._probe_upload(remuxed)
                stored_ext = remuxed.suffix.lstrip(".")
                source_file = remuxed
            else:
                stored_ext = self._stored_extension(ext, probe)
                source_file = tmp
            dest = self.settings.videos_dir / f"{sha256}.{stored_ext}"
            os.replace(source_file, dest)
        finally:
            tmp.unlink(missing_ok=True)
            if remuxed is not None:
                remuxed.unlink(missing_ok=True)
        try:
            with self._sessions.begin() as s:
                case = db.Case(sha256=sha256, video_path=dest.relative_to(self.settings.data_dir).as_posix(),
                               probe=probe, analysis_config=config_dict, duration_s=probe.get("duration_s"))
                s.add(case)
                s.flush()
                case.title = title or f"Case {case.id}"
                self.jobs.enqueue(s, case)
                s.flush()
                record = CaseRecord.from_row(case, self.settings.data_dir)
        except IntegrityError:  # the same file was ingested concurrently: the other upload won
            winner = self._case_by_sha(sha256)
            if winner is None or winner.video_path != dest:
                dest.unlink(missing_ok=True)
            if winner is None:
                raise
            return winner, False
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return record, True

    @staticmethod
    def _extension(source: str | Path | BinaryIO, ext: str | None) -> str:
        """The upload's extension, lower-case without the dot ("" when absent or not a plain token)."""
        if ext is None:
            name = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "")
            ext = Path(name).suffix if name else ""
        ext = (ext or "").lower().lstrip(".")
        return ext if _PLAIN_EXTENSION.match(ext) else ""

    def _stored_extension(self, ext: str, probe: Mapping[str, Any]) -> str:
        """The upload's own extension when it is a usual video one, else one named after the probed container."""
        if ext in self.settings.video_extensions:
            return ext
        container = str(probe.get("container") or "").split(",")[0].lower()
        name = _CONTAINER_EXTENSIONS.get(container, container)
        return name if _PLAIN_EXTENSION.match(name) else "video"

    def _analysis_config(self, config: Mapping[str, Any] | Any | None) -> dict[str, Any]:
        if config is None:
            return {"sample_fps": self.settings.sample_fps}
        from analysis.analyze import AnalysisConfig

        given = dict(config.to_dict() if hasattr(config, "to_dict") else config)
        unknown = sorted(set(given) - {f.name for f in fields(AnalysisConfig)})
        if unknown:
            raise LibraryError(f"unknown analysis option(s) {unknown}")
        return AnalysisConfig(**{"sample_fps": self.settings.sample_fps, **given}).to_dict()

    def _strip_metadata(self, tmp: Path, probe: Mapping[str, Any]) -> Path:
        try:
            return Path(self._remux(tmp, self.settings.tmp_dir, str(probe.get("container") or "")))
        except Exception as exc:  # noqa: BLE001 - any failure refuses the file, with its reason
            message = str(exc).replace(str(tmp), "the file") or type(exc).__name__
            raise IngestError(f"the video could not be stored without its metadata: {message}") from None

    def _receive(self, source: str | Path | BinaryIO, ext: str, limit: int | None) -> tuple[Path, str]:
        """Copy the upload into data_dir/tmp in chunks while hashing it; checks emptiness and the size limit (None: none)."""
        limit_text = f"{self.settings.max_upload_mb:g} MB"
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise IngestError(f"no such file: {str(path)!r}")
            size = path.stat().st_size
            if size == 0:
                raise IngestError("the file is empty (0 bytes)")
            if limit is not None and size > limit:
                raise IngestError(f"the file is {size / 2**20:.1f} MB, over the upload limit of {limit_text}")
            stream: BinaryIO = open(path, "rb")
        else:
            stream = source
            if hasattr(stream, "seek"):
                stream.seek(0)
        self.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.settings.tmp_dir, prefix="upload-", suffix=f".{ext}" if ext else "")
        tmp = Path(name)
        hasher, total = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    total += len(chunk)
                    if limit is not None and total > limit:
                        raise IngestError(f"the file is over the upload limit of {limit_text}")
                    hasher.update(chunk)
                    out.write(chunk)
            if total == 0:
                raise IngestError("the file is empty (0 bytes)")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if stream is not source:
                stream.close()
        return tmp, hasher.hexdigest()

    def _take_staged(self, path: Path, ext: str, limit: int | None) -> tuple[Path, str]:
        """`_receive` for a file SurgLens wrote in data_dir/tmp: moved (renamed) into a check file, not copied.

        Its hash is read only when it is stored as received (no remux): the remux's hash is the identity otherwise.
        """
        fd, name = tempfile.mkstemp(dir=self.settings.tmp_dir, prefix="upload-", suffix=f".{ext}" if ext else "")
        os.close(fd)
        tmp = Path(name)
        try:
            os.replace(path, tmp)  # claims it: a second ingest of the same staged file finds nothing
            size = tmp.stat().st_size
            if size == 0:
                raise IngestError("the file is empty (0 bytes)")
            if limit is not None and size > limit:
                raise IngestError(f"the file is {size / 2**20:.1f} MB, over the upload limit of "
                                  f"{self.settings.max_upload_mb:g} MB")
            if self._remux is not None:
                return tmp, ""
            hasher = hashlib.sha256()
            with open(tmp, "rb") as stream:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
            return tmp, hasher.hexdigest()
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            raise IngestError("the staged upload is gone (already taken)") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _probe_upload(self, tmp: Path) -> dict[str, Any]:
        try:
            info = self._probe(tmp)
        except Exception as exc:  # any probe failure rejects the file; the message names the problem
            message = str(exc).replace(str(tmp), "the file") or type(exc).__name__
            raise IngestError(f"not a readable video: {message}") from None
        raw = info.to_dict() if hasattr(info, "to_dict") else dict(info)
        probe = {k: raw.get(k) for k in PROBE_FIELDS if k in raw}
        if not probe.get("width") or not probe.get("height"):
            raise IngestError("not a readable video: no picture in the file")
        return probe

    def _case_by_sha(self, sha256: str) -> CaseRecord | None:
        with self._sessions() as s:
            row = s.scalar(self._case_query().where(db.Case.sha256 == sha256))
            return CaseRecord.from_row(row, self.settings.data_dir) if row else None

    # ----------------------------------------------------------------- cases

    @staticmethod
    def _case_query():
        return select(db.Case).options(selectinload(db.Case.tags), selectinload(db.Case.features))

    def _case_row(self, s: Session, case_id: int) -> db.Case:
        return get_row(s, db.Case, case_id, "case")

    def get_case(self, case_id: int) -> CaseRecord:
        """One case (raises NotFoundError)."""
        with self._sessions() as s:
            row = s.scalar(self._case_query().where(db.Case.id == case_id))
            if row is None:
                raise NotFoundError(f"no case with id {case_id!r}")
            return CaseRecord.from_row(row, self.settings.data_dir)

    def list_cases(self, filters: CaseFilter | None = None, /, **criteria: Any) -> list[CaseRecord]:
        """Cases matching `filters` (a CaseFilter) or keyword criteria of the same names."""
        f = replace(filters or CaseFilter(), **criteria)
        for name in ("tags", "phases", "tools", "statuses"):  # a lone string means one value, not its letters
            if isinstance(getattr(f, name), str):
                f = replace(f, **{name: (getattr(f, name),)})
        q = self._case_query()
        if f.text and f.text.strip():
            text = f.text.strip()
            q = q.where(or_(
                db.Case.title.icontains(text, autoescape=True),
                db.Case.procedure.icontains(text, autoescape=True),
                db.Case.notes.icontains(text, autoescape=True),
                db.Case.surgeon_id.icontains(text, autoescape=True),
                db.Case.tags.any(db.Tag.name.icontains(text, autoescape=True)),
                db.Case.comments.any(db.Comment.text.icontains(text, autoescape=True)),
                db.Case.features.any(db.CaseFeature.name.icontains(text, autoescape=True)),
                db.Case.features.any(db.CaseFeature.name.in_(_taxonomy_matches(text))),
            ))
        for tag in f.tags:
            q = q.where(db.Case.tags.any(db.Tag.name == _tag_name(tag)))
        for kind, names in (("phase", f.phases), ("tool", f.tools)):
            for name in names:
                q = q.where(db.Case.features.any(
                    (db.CaseFeature.kind == kind) & (db.CaseFeature.name == canonical_name(name, kind))))
        if f.statuses:
            bad = sorted(set(f.statuses) - set(db.CASE_STATUSES))
            if bad:
                raise LibraryError(f"unknown status(es) {bad}; known: {list(db.CASE_STATUSES)}")
            q = q.where(db.Case.status.in_(list(f.statuses)))
        if f.min_duration_s is not None:
            q = q.where(db.Case.duration_s >= f.min_duration_s)
        if f.max_duration_s is not None:
            q = q.where(db.Case.duration_s <= f.max_duration_s)
        if f.date_from is not None:
            q = q.where(db.Case.operation_date >= _as_date(f.date_from))
        if f.date_to is not None:
            q = q.where(db.Case.operation_date <= _as_date(f.date_to))
        if f.surgeon_id:
            q = q.where(db.Case.surgeon_id == f.surgeon_id.strip())
        if f.procedure:
            q = q.where(db.Case.procedure == f.procedure.strip())
        if f.min_difficulty is not None:
            q = q.where(db.Case.difficulty >= f.min_difficulty)
        if f.max_difficulty is not None:
            q = q.where(db.Case.difficulty <= f.max_difficulty)
        orders = {
            "newest": (db.Case.created_at.desc(), db.Case.id.desc()),
            "oldest": (db.Case.created_at.asc(), db.Case.id.asc()),
            "title": (db.Case.title.asc(), db.Case.id.asc()),
            "duration": (db.Case.duration_s.desc().nulls_last(), db.Case.id.desc()),
            "operation_date": (db.Case.operation_date.desc().nulls_last(), db.Case.id.desc()),
        }
        if f.order not in orders:
            raise LibraryError(f"unknown order {f.order!r}; known: {list(CASE_ORDERS)}")
        q = q.order_by(*orders[f.order]).offset(f.offset)
        if f.limit is not None:
            q = q.limit(f.limit)
        with self._sessions() as s:
            return [CaseRecord.from_row(row, self.settings.data_dir) for row in s.scalars(q)]

    def filter_options(self) -> FilterOptions:
        """Tags, phases, tools, procedures, surgeon ids present in the library, for filter widgets."""
        with self._sessions() as s:
            def names(column, *where) -> tuple[str, ...]:
                return tuple(s.scalars(select(column).distinct().where(column.is_not(None), *where).order_by(column)))

            return FilterOptions(
                tags=tuple(s.scalars(select(db.Tag.name).where(db.Tag.cases.any()).order_by(db.Tag.name))),
                phases=_taxonomy_order(names(db.CaseFeature.name, db.CaseFeature.kind == "phase"), "phase"),
                tools=_taxonomy_order(names(db.CaseFeature.name, db.CaseFeature.kind == "tool"), "tool"),
                procedures=names(db.Case.procedure),
                surgeon_ids=names(db.Case.surgeon_id),
                max_duration_s=s.scalar(select(func.max(db.Case.duration_s))),
                status_counts=dict(s.execute(select(db.Case.status, func.count()).group_by(db.Case.status)).all()),
            )

    def update_metadata(
        self,
        case_id: int,
        *,
        title: str = _UNSET,
        procedure: str | None = _UNSET,
        operation_date: date | str | None = _UNSET,
        surgeon_id: str | None = _UNSET,
        difficulty: int | None = _UNSET,
        notes: str | None = _UNSET,
    ) -> CaseRecord:
        """Set the given teaching metadata (None clears a field; omitted fields stay)."""
        values: dict[str, Any] = {}
        if title is not _UNSET:
            values["title"] = _title(title)
        if procedure is not _UNSET:
            values["procedure"] = _optional_text(procedure, 200, "procedure")
        if operation_date is not _UNSET:
            values["operation_date"] = None if operation_date in (None, "") else _as_date(operation_date)
        if surgeon_id is not _UNSET:
            surgeon_id = _optional_text(surgeon_id, 32, "surgeon_id")
            if surgeon_id is not None and not SURGEON_ID.match(surgeon_id):
                raise LibraryError(f"surgeon_id must be a pseudonym of letters, digits, '.', '_' or '-' "
                                   f"(no spaces, at most 32), got {surgeon_id!r}")
            values["surgeon_id"] = surgeon_id
        if difficulty is not _UNSET:
            if difficulty is not None and (isinstance(difficulty, bool) or difficulty not in range(1, 6)):
                raise LibraryError(f"difficulty must be 1-5 or None, got {difficulty!r}")
            values["difficulty"] = difficulty
        if notes is not _UNSET:
            values["notes"] = _optional_text(notes, 20000, "notes")
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            for key, value in values.items():
                setattr(row, key, value)
        return self.get_case(case_id)

    def set_mask_regions(self, case_id: int, regions) -> CaseRecord:
        """Set the rectangles blacked out in every picture made from the case's video (video.mask).

        Regions are (x0, y0, x1, y1) in fractions of the frame; [] removes the mask. Annotated clips
        already cut and the Library thumbnail are deleted (made again, masked); the whole annotated video of the
        analysis is masked from the next analysis on (the mask goes into the case's analysis config).
        """
        from video.mask import parse_regions

        try:
            parsed = [list(r) for r in parse_regions(regions)]
        except ValueError as exc:
            raise LibraryError(str(exc)) from None
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            row.mask_regions = parsed
            row.analysis_config = {**(row.analysis_config or {}), "mask_regions": parsed}
        try:
            CaseResult.load(self.case_dir(case_id)).drop_derived_pictures()  # made again lazily, masked
        except CaseResultError:
            pass  # not analysed yet: nothing was made from the video
        return self.get_case(case_id)

    def case_dir(self, case_id: int) -> Path:
        """The folder of the case's analysis results (exists once the case is done)."""
        return self.settings.cases_dir / str(case_id)

    def case_results(self, case_id: int) -> CaseResult:
        """The analysed results of a case (raises LibraryError when it has none yet)."""
        case = self.get_case(case_id)
        try:
            return CaseResult.load(self.case_dir(case_id))
        except CaseResultError:
            raise LibraryError(f"case {case_id} has no results (status {case.status!r})") from None

    def requeue(self, case_id: int, config: Mapping[str, Any] | Any | None = None) -> CaseRecord:
        """Analyse the case again (e.g. after a failure or with new settings); `config` replaces its config."""
        config_dict = None if config is None else self._analysis_config(config)
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            if row.status in (Status.QUEUED, Status.RUNNING):
                raise LibraryError(f"case {case_id} is already {row.status}")
            if config_dict is not None:
                row.analysis_config = config_dict
            if row.mask_regions:  # the case's mask holds whatever the new config says
                row.analysis_config = {**(row.analysis_config or {}), "mask_regions": list(row.mask_regions)}
            self.jobs.enqueue(s, row)
        return self.get_case(case_id)

    def delete_case(self, case_id: int) -> None:
        """Remove a case, its video, results, comments, tags and collection entries.

        A worker analysing it notices (its job is gone) and discards its results.
        """
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            video = self.settings.data_dir / row.video_path
            collections = {item.collection for item in row.collection_items}
            s.delete(row)
            s.flush()
            for collection in collections:
                s.refresh(collection, ["items"])
                _renumber(collection.items)
        video.unlink(missing_ok=True)
        for folder in (self.case_dir(case_id), partial_folder(self.case_dir(case_id))):
            shutil.rmtree(folder, ignore_errors=True)

    def queue(self) -> list[JobRecord]:
        """Running and queued jobs, oldest first (running ones first)."""
        jobs = self.jobs.list_jobs((Status.QUEUED, Status.RUNNING))
        return sorted(jobs, key=lambda j: (j.status != Status.RUNNING, j.id))

    # ----------------------------------------------------------------- tags

    def add_tag(self, case_id: int, name: str) -> CaseRecord:
        """Tag a case (names are trimmed and lower-cased; adding twice is a no-op)."""
        name = _tag_name(name)
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            if name not in (t.name for t in row.tags):
                tag = s.scalar(select(db.Tag).where(db.Tag.name == name)) or db.Tag(name=name)
                row.tags.append(tag)
        return self.get_case(case_id)

    def remove_tag(self, case_id: int, name: str) -> CaseRecord:
        """Remove a tag from a case (no-op when absent); unused tags disappear."""
        name = _tag_name(name)
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            for tag in [t for t in row.tags if t.name == name]:
                row.tags.remove(tag)
                s.flush()
                if not s.scalar(select(func.count()).select_from(db.case_tags).where(db.case_tags.c.tag_id == tag.id)):
                    s.delete(tag)
        return self.get_case(case_id)

    # ----------------------------------------------------------------- comments

    def add_comment(self, case_id: int, timestamp_s: float, text: str, kind: str = "comment",
                    author: str | None = None, parent_id: int | None = None) -> CommentRecord:
        """Pin a comment or bookmark (kind "bookmark") at `timestamp_s` seconds into the video.

        `parent_id` makes it an answer to that comment of the same case (a reply to a reply answers
        the thread's first comment); an answer is a comment at its parent's time.
        """
        kind = _comment_kind(kind)
        text = _comment_text(text)
        author = _optional_text(author, 64, "author")
        with self._sessions.begin() as s:
            row = self._case_row(s, case_id)
            if parent_id is not None:
                parent = s.get(db.Comment, parent_id)
                if parent is None or parent.case_id != case_id:
                    raise NotFoundError(f"no comment with id {parent_id!r} in case {case_id!r}")
                parent_id = parent.parent_id or parent.id
                timestamp_s, kind = parent.timestamp_s, "comment"
            comment = db.Comment(case=row, timestamp_s=_timestamp(timestamp_s, row.duration_s), text=text, kind=kind,
                                 author=author, parent_id=parent_id)
            s.add(comment)
            s.flush()
            return CommentRecord.from_row(comment)

    def update_comment(self, comment_id: int, *, text: str | None = None, timestamp_s: float | None = None,
                       kind: str | None = None) -> CommentRecord:
        """Edit a comment's text, time or kind."""
        with self._sessions.begin() as s:
            comment = get_row(s, db.Comment, comment_id, "comment")
            if text is not None:
                comment.text = _comment_text(text)
            if timestamp_s is not None:
                comment.timestamp_s = _timestamp(timestamp_s, comment.case.duration_s)
                for reply in s.scalars(select(db.Comment).where(db.Comment.parent_id == comment_id)):
                    reply.timestamp_s = comment.timestamp_s  # answers stay with their comment
            if kind is not None:
                comment.kind = _comment_kind(kind)
            s.flush()
            return CommentRecord.from_row(comment)

    def list_comments(self, case_id: int, kind: str | None = None) -> list[CommentRecord]:
        """A case's comments and bookmarks by time (only one kind when `kind` is given)."""
        q = select(db.Comment).where(db.Comment.case_id == case_id).order_by(db.Comment.timestamp_s, db.Comment.id)
        if kind is not None:
            q = q.where(db.Comment.kind == _comment_kind(kind))
        with self._sessions() as s:
            self._case_row(s, case_id)
            return [CommentRecord.from_row(c) for c in s.scalars(q)]

    def delete_comment(self, comment_id: int) -> None:
        """Remove a comment or bookmark and the answers to it."""
        with self._sessions.begin() as s:
            get_row(s, db.Comment, comment_id, "comment")
            # one statement: the database's ON DELETE CASCADE and the ORM must not both delete the answers
            s.execute(delete(db.Comment).where(or_(db.Comment.id == comment_id, db.Comment.parent_id == comment_id))
                      .execution_options(synchronize_session=False))

    # ----------------------------------------------------------------- collections

    def _collection_row(self, s: Session, collection_id: int) -> db.Collection:
        return get_row(s, db.Collection, collection_id, "collection")

    def _unique_name(self, s: Session, name: str, collection_id: int | None = None) -> str:
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise LibraryError(f"collection name must be 1-200 characters, got {name!r}")
        other = s.scalar(select(db.Collection.id).where(db.Collection.name == name))
        if other is not None and other != collection_id:
            raise LibraryError(f"a collection named {name!r} already exists")
        return name

    def create_collection(self, name: str, description: str = "") -> CollectionRecord:
        """A new, empty teaching set (names are unique)."""
        try:
            with self._sessions.begin() as s:
                row = db.Collection(name=self._unique_name(s, name), description=(description or "").strip())
                s.add(row)
                s.flush()
                return CollectionRecord.from_row(row)
        except IntegrityError:
            raise LibraryError(f"a collection named {name.strip()!r} already exists") from None

    def get_collection(self, collection_id: int) -> CollectionRecord:
        with self._sessions() as s:
            return CollectionRecord.from_row(self._collection_row(s, collection_id))

    def list_collections(self) -> list[CollectionRecord]:
        """Every collection, by name."""
        with self._sessions() as s:
            q = select(db.Collection).options(selectinload(db.Collection.items)).order_by(db.Collection.name)
            return [CollectionRecord.from_row(c) for c in s.scalars(q)]

    def collections_of_case(self, case_id: int) -> list[CollectionRecord]:
        """The collections a case belongs to, by name."""
        with self._sessions() as s:
            q = (select(db.Collection).where(db.Collection.items.any(db.CollectionItem.case_id == case_id))
                 .options(selectinload(db.Collection.items)).order_by(db.Collection.name))
            return [CollectionRecord.from_row(c) for c in s.scalars(q)]

    def collection_cases(self, collection_id: int) -> list[CaseRecord]:
        """The cases of a collection, in its order."""
        with self._sessions() as s:
            ids = list(CollectionRecord.from_row(self._collection_row(s, collection_id)).case_ids)
            rows = {r.id: r for r in s.scalars(self._case_query().where(db.Case.id.in_(ids)))}
            return [CaseRecord.from_row(rows[i], self.settings.data_dir) for i in ids]

    def update_collection(self, collection_id: int, *, name: str | None = None,
                          description: str | None = None) -> CollectionRecord:
        try:
            with self._sessions.begin() as s:
                row = self._collection_row(s, collection_id)
                if name is not None:
                    row.name = self._unique_name(s, name, collection_id)
                if description is not None:
                    row.description = description.strip()
                s.flush()
                return CollectionRecord.from_row(row)
        except IntegrityError:
            raise LibraryError(f"a collection named {name!r} already exists") from None

    def delete_collection(self, collection_id: int) -> None:
        """Remove a collection (its cases stay in the library)."""
        with self._sessions.begin() as s:
            s.delete(self._collection_row(s, collection_id))

    def add_to_collection(self, collection_id: int, case_id: int, position: int | None = None) -> CollectionRecord:
        """Add a case at `position` (0-based; default: the end). A case already in it is moved there."""
        with self._sessions.begin() as s:
            row = self._collection_row(s, collection_id)
            self._case_row(s, case_id)
            items = list(row.items)
            item = next((i for i in items if i.case_id == case_id), None)
            if item is None:
                item = db.CollectionItem(case_id=case_id, position=len(items))
                row.items.append(item)
            else:
                items.remove(item)
            index = len(items) if position is None else _clamp(position, len(items))
            items.insert(index, item)
            _renumber(items)
            s.flush()
            s.refresh(row, ["items"])
            return CollectionRecord.from_row(row)

    def remove_from_collection(self, collection_id: int, case_id: int) -> CollectionRecord:
        """Take a case out of a collection (no-op when absent); the others close the gap."""
        with self._sessions.begin() as s:
            row = self._collection_row(s, collection_id)
            for item in [i for i in row.items if i.case_id == case_id]:
                row.items.remove(item)
            _renumber(row.items)
            s.flush()
            return CollectionRecord.from_row(row)

    def move_item(self, collection_id: int, case_id: int, new_position: int) -> CollectionRecord:
        """Move a case to `new_position` (0-based, clamped) within its collection."""
        with self._sessions.begin() as s:
            row = self._collection_row(s, collection_id)
            items = list(row.items)
            item = next((i for i in items if i.case_id == case_id), None)
            if item is None:
                raise NotFoundError(f"case {case_id!r} is not in collection {collection_id!r}")
            items.remove(item)
            items.insert(_clamp(new_position, len(items)), item)
            _renumber(items)
            s.flush()
            s.refresh(row, ["items"])
            return CollectionRecord.from_row(row)


# --------------------------------------------------------------------- helpers


def _renumber(items: Sequence[db.CollectionItem]) -> None:
    for index, item in enumerate(items):
        item.position = index


def _clamp(position: int, n: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int):
        raise LibraryError(f"position must be an integer, got {position!r}")
    return max(0, min(position, n))


def _title(title: str | None) -> str:
    clean = (title or "").strip()
    if not clean or len(clean) > 200:
        raise LibraryError(f"title must be 1-200 characters, got {clean!r}")
    return clean


def _taxonomy_matches(text: str) -> list[str]:
    """Taxonomy names of the phases and tools whose name, display name or alias contains `text`."""
    from models.taxonomy import load_taxonomy

    key = " ".join(text.lower().split())
    tax = load_taxonomy()
    return [label.name for label in (*tax.phases, *tax.tools)
            if any(key in n.lower() for n in (label.name, label.display, *label.aliases))]


def _tag_name(name: str) -> str:
    clean = " ".join(str(name or "").split()).lower()
    if not clean or len(clean) > MAX_TAG_CHARS:
        raise LibraryError(f"tag must be 1-{MAX_TAG_CHARS} characters, got {name!r}")
    return clean


def _comment_kind(kind: str) -> str:
    if kind not in db.COMMENT_KINDS:
        raise LibraryError(f"comment kind must be one of {list(db.COMMENT_KINDS)}, got {kind!r}")
    return kind


def _comment_text(text: str) -> str:
    clean = (text or "").strip()
    if not clean:
        raise LibraryError("comment text is empty")
    if len(clean) > MAX_COMMENT_CHARS:
        raise LibraryError(f"comment is {len(clean)} characters, over the limit of {MAX_COMMENT_CHARS}")
    return clean


def _timestamp(value: float, duration_s: float | None) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise LibraryError(f"timestamp must be a number of seconds, got {value!r}") from None
    if not (t >= 0 and t != float("inf")):
        raise LibraryError(f"timestamp must be >= 0 seconds, got {value!r}")
    if duration_s is not None and t > duration_s + 1.0:
        raise LibraryError(f"timestamp {t:g} s is after the end of the video ({duration_s:g} s)")
    return t


def _optional_text(value: str | None, limit: int, what: str) -> str | None:
    if value is None:
        return None
    clean = str(value).strip()
    if len(clean) > limit:
        raise LibraryError(f"{what} is over {limit} characters")
    return clean or None


def _as_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise LibraryError(f"date must be YYYY-MM-DD, got {value!r}") from None


def _taxonomy_order(names: Sequence[str], kind: str) -> tuple[str, ...]:
    from models.taxonomy import load_taxonomy

    tax = load_taxonomy()
    order = tax.phase_names if kind == "phase" else tax.tool_names
    return tuple(sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n)))
