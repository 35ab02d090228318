"""Exports of a case or a collection (zip) and a self-contained HTML report.

A case zip holds, under one folder named after the case's pseudonymous title:
`case.json` (without the source file's path, hash or container metadata, or the decoder's
warnings, which may quote storage paths), every Parquet table as
`tables/<name>.csv`, the other result JSON files, the Cholec80-format phase file when present, `standard/` (detections as COCO results JSON with
`coco_categories.json`, tracks as MOTChallenge txt), the annotated video and clips, `teaching.json` (metadata, tags, comments and bookmarks) and
`report.html`. No export carries the operation date (the case's or the container's), the
analysis date, or any file path (a custom weights path is reduced to its file name). The case's
mask regions (burned-in text, video/mask.py) are black in the report's key frames and the clips; an
annotated video made before the current mask was set is left out (analyse again to include it).
A collection zip holds `collection.json` and one numbered folder per case, in the
collection's order. Nothing in an export loads anything from the internet: the report inlines
plotly.js (include_plotlyjs=True), never a CDN link.
"""
from __future__ import annotations

import html
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from analysis.moments import clock, phase_segments
from analysis.results import CaseResult
from library.db import Status
from library.errors import LibraryError
from library.records import CaseRecord, CommentRecord
from library.store import PROBE_FIELDS, Library
from models.taxonomy import display_name

# Chart builders plug in here: (case, results or None, comments) -> plotly figures for the report.
FigureBuilder = Callable[[CaseRecord, CaseResult | None, list[CommentRecord]], Sequence[Any]]


def slug(text: str, fallback: str = "case") -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or fallback


def export_file_name(name: str, fallback: str = "case") -> str:
    """The zip name of a case or teaching-set export: the title or set name, made safe ("Calot 2025" -> calot-2025.zip)."""
    return f"{slug(name, fallback)}.zip"


def public_case_json(case: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """case.json for export: technical probe fields only, no decoder warnings and no path into the library."""
    out = dict(case)
    video = out.get("video") or {}
    out["video"] = {k: video[k] for k in PROBE_FIELDS if k in video}
    decode = dict(out.get("decode") or {})
    if "warnings" in decode:  # FFmpeg's messages quote file paths: only how many there were
        decode["warnings"] = len(decode["warnings"] or ())
    out["decode"] = decode
    return _scrub(out, str(data_dir))


def public_teaching_case(record: CaseRecord) -> dict[str, Any]:
    """The case's teaching data for export: no operation or analysis date, no weights path."""
    out = record.teaching_dict()
    out.pop("operation_date", None)
    out.pop("analysed_at", None)
    config = dict(out.get("analysis_config") or {})
    for key in ("detector_weights", "phase_weights"):
        if config.get(key):
            config[key] = Path(str(config[key])).name
    out["analysis_config"] = config
    return out


def _scrub(value: Any, data_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace(data_dir, "<library>")
    if isinstance(value, dict):
        return {k: _scrub(v, data_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, data_dir) for v in value]
    return value


def _teaching_json(library: Library, record: CaseRecord, comments: list[CommentRecord]) -> str:
    return json.dumps({
        "case": public_teaching_case(record),
        "comments": [c.to_dict() for c in comments if c.kind == "comment"],
        "bookmarks": [c.to_dict() for c in comments if c.kind == "bookmark"],
        "collections": [c.name for c in library.collections_of_case(record.id)],
    }, indent=2)


def _write_standard_formats(zf: zipfile.ZipFile, result: CaseResult, root: str) -> None:
    """Detections as COCO results JSON (with its categories) and tracks as MOTChallenge txt."""
    from analysis.clips import class_names_of
    from analysis.formats import coco_categories, coco_results, mot_text

    table = result.detections()
    if table.empty:
        return
    zf.writestr(f"{root}/standard/detections_coco_results.json", json.dumps(coco_results(table)))
    zf.writestr(f"{root}/standard/coco_categories.json", json.dumps(coco_categories(class_names_of(table))))
    zf.writestr(f"{root}/standard/tracks_mot.txt", mot_text(table))


def _write_reference(zf: zipfile.ZipFile, library: Library, case_id: int, root: str) -> None:
    """An educator's corrected phases (library.teaching), as JSON and a Cholec80 file, beside the model's."""
    from library.teaching import Teaching

    teaching = Teaching(library)
    reference = teaching.reference(case_id)
    if reference.source != "educator":
        return
    zf.writestr(f"{root}/reference_phases.json", json.dumps(
        {"source": "educator", "author": reference.author, "segments": list(reference.segments)}, indent=2))
    try:
        zf.writestr(f"{root}/reference_phase_cholec80.txt", teaching.reference_cholec80_text(case_id))
    except LibraryError:  # no frame rate known: the JSON is still there
        pass


def _write_case(zf: zipfile.ZipFile, library: Library, case_id: int, root: str, figures: FigureBuilder | None) -> None:
    record = library.get_case(case_id)
    comments = library.list_comments(case_id)
    zf.writestr(f"{root}/teaching.json", _teaching_json(library, record, comments))
    result = _results_or_none(library, record)
    zf.writestr(f"{root}/report.html", _report(record, result, comments, figures))
    if result is None:
        return
    zf.writestr(f"{root}/case.json", json.dumps(public_case_json(result.to_dict(), library.settings.data_dir), indent=2))
    for stem, table in result.tables():
        zf.writestr(f"{root}/tables/{stem}.csv", table.to_csv(index=False))
    for name, document in result.documents():
        zf.writestr(f"{root}/{name}", json.dumps(document))
    if result.cholec80_phases is not None:
        zf.write(result.cholec80_phases, f"{root}/{result.cholec80_phases.name}")
    _write_standard_formats(zf, result, root)
    _write_reference(zf, library, case_id, root)
    videos = [result.annotated_video] if result.annotated_video and _masked_as_set(result, record) else []
    videos += [path for _, _, path in result.cached_clips()]
    for file in videos:  # already compressed: store, do not deflate again
        zf.write(file, f"{root}/{file.relative_to(result.path).as_posix()}", compress_type=zipfile.ZIP_STORED)


def _masked_as_set(result: CaseResult, record: CaseRecord) -> bool:
    """Whether the analysis's annotated video was made with the case's current mask regions."""
    summary = result.summary("annotate")
    used = [tuple(float(v) for v in r) for r in summary.get("mask_regions") or ()]
    return used == [tuple(r) for r in record.mask_regions]


def _results_or_none(library: Library, record: CaseRecord) -> CaseResult | None:
    if record.status != Status.DONE:
        return None
    try:
        return library.case_results(record.id)
    except LibraryError:
        return None


def export_case(library: Library, case_id: int, dest: str | Path | BinaryIO, *,
                figures: FigureBuilder | None = None) -> None:
    """Write a case's zip to `dest` (a path or a binary file such as io.BytesIO)."""
    record = library.get_case(case_id)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _write_case(zf, library, case_id, slug(record.title), figures)


def export_collection(library: Library, collection_id: int, dest: str | Path | BinaryIO, *,
                      figures: FigureBuilder | None = None) -> None:
    """Write a collection's zip to `dest`: collection.json and one numbered folder per case, in order."""
    collection = library.get_collection(collection_id)
    cases = library.collection_cases(collection_id)
    root = slug(collection.name, "collection")
    width = max(2, len(str(len(cases))))
    folders = [f"{i + 1:0{width}d}-{slug(c.title)}" for i, c in enumerate(cases)]
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{root}/collection.json", json.dumps({
            "name": collection.name,
            "description": collection.description,
            "cases": [{"position": i + 1, "title": c.title, "folder": folder}
                      for i, (c, folder) in enumerate(zip(cases, folders, strict=True))],
        }, indent=2))
        for case, folder in zip(cases, folders, strict=True):
            _write_case(zf, library, case.id, f"{root}/{folder}", figures)


def zip_to_temp_file(write: Callable[[BinaryIO], None], folder: str | Path | None = None) -> BinaryIO:
    """An export written to an anonymous temporary file (flat memory), rewound for reading.

    The file disappears when closed (or when the process ends); pass it to a download button or
    copy it with shutil.copyfileobj. `folder` is where it is written (default: the system's).
    """
    import tempfile

    out = tempfile.TemporaryFile(dir=folder)
    try:
        write(out)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def save_export(write: Callable[[BinaryIO], None], folder: str | Path, file_name: str) -> Path:
    """Write an export straight into `folder` on this machine (flat memory, for exports with long videos).

    `folder` must be an existing folder given by its full path; an existing file is never
    replaced (" (2)", " (3)", ... is added). Written atomically: the file appears complete or not at all.
    """
    raw = str(folder or "").strip()
    target = Path(raw).expanduser()
    if not raw or not target.is_absolute():
        raise LibraryError(f"give the full path of a folder (starting with /), got {raw!r}")
    if not target.is_dir():
        raise LibraryError(f"no such folder: {raw!r}")
    name = Path(file_name).name
    stem, suffix = Path(name).stem, Path(name).suffix
    dest, n = target / name, 1
    while dest.exists():
        n += 1
        dest = target / f"{stem} ({n}){suffix}"
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        with open(tmp, "wb") as out:
            write(out)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def annotated_matches_mask(result: CaseResult, record: CaseRecord) -> bool:
    """Whether the analysis's annotated video was made with the case's current mask regions."""
    return _masked_as_set(result, record)


def zip_bytes(write: Callable[[BinaryIO], None]) -> bytes:
    """The bytes of an export, for a download button: `zip_bytes(lambda f: export_case(lib, 3, f))`."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def html_report(library: Library, case_id: int, figures: FigureBuilder | None = None) -> str:
    """A self-contained HTML report of a case: summary, phases, tools, motion, comments and charts."""
    record = library.get_case(case_id)
    comments = library.list_comments(case_id)
    return _report(record, _results_or_none(library, record), comments, figures)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p class='muted'>None.</p>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}.muted{color:#777}h1{margin-bottom:.2rem}
td.reply{padding-left:1.6rem;color:#444}
.frames{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:.8rem;margin:.5rem 0 1.5rem}
.frames figure{margin:0}.frames img{width:100%;border-radius:4px;display:block}
.frames figcaption{font-size:.85rem;color:#444;margin-top:.2rem}
.chart{margin:0 0 1.2rem}
@page{size:A4;margin:12mm}
@media print{
  body{margin:0;max-width:none;padding:0;font-size:11pt}
  h2{break-after:avoid}
  table,figure,.chart{break-inside:avoid}
  .chart{zoom:.7}.modebar{display:none!important}
  .frames{grid-template-columns:repeat(3,1fr)}
  a{color:inherit;text-decoration:none}
}
"""
# Human names of the motion metrics in the report (motion.json keys otherwise).
MOTION_COLUMNS = {"time_on_screen_s": "On screen (s)", "path_length_norm": "Path (frame diagonals)",
                  "mean_speed_norm_s": "Mean speed (diagonals/s)", "idle_fraction": "Idle share"}
THUMB_WIDTH = 320


def _key_frames(record: CaseRecord, result: CaseResult | None) -> list[tuple[str, str]]:
    """(caption, JPEG data URI) of one frame per phase: the middle of its longest segment. [] when unreadable."""
    if result is None or not record.video_path.exists():
        return []
    from analysis.clips import representative_frame

    longest: dict[str, dict[str, Any]] = {}
    for seg in phase_segments(result):
        best = longest.get(seg["label"])
        if best is None or seg["end_s"] - seg["start_s"] > best["end_s"] - best["start_s"]:
            longest[seg["label"]] = seg
    out = []
    for label, seg in sorted(longest.items(), key=lambda kv: kv[1]["start_s"]):
        middle = (seg["start_s"] + seg["end_s"]) / 2
        try:
            rgb = representative_frame(record.video_path, middle, mask=record.mask_regions)
        except (OSError, ValueError, RuntimeError):
            return []
        caption = f"{display_name(label, 'phase')}, {clock(seg['start_s'])}–{clock(seg['end_s'])} (frame at {clock(middle)})"
        out.append((caption, _jpeg_uri(rgb)))
    return out


def _jpeg_uri(rgb: Any) -> str:
    import base64

    from PIL import Image

    image = Image.fromarray(rgb)
    if image.width > THUMB_WIDTH:
        image = image.resize((THUMB_WIDTH, round(image.height * THUMB_WIDTH / image.width)))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _comment_rows(comments: list[CommentRecord]) -> str:
    """Comments by time, each followed by its answers (indented)."""
    if not comments:
        return "<p class='muted'>None.</p>"
    e = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("Time", "Kind", "Author", "Text"))
    rows = []
    for c in (c for c in comments if c.parent_id is None):
        rows.append(f"<tr><td>{clock(c.timestamp_s)}</td><td>{e(c.kind)}</td><td>{e(c.author or '')}</td>"
                    f"<td>{e(c.text)}</td></tr>")
        rows += [f"<tr><td></td><td>answer</td><td>{e(a.author or '')}</td><td class='reply'>↳ {e(a.text)}</td></tr>"
                 for a in comments if a.parent_id == c.id]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _report(record: CaseRecord, result: CaseResult | None, comments: list[CommentRecord],
            figures: FigureBuilder | None) -> str:
    e = html.escape
    probe = record.probe
    summary_rows = [
        ("Status", record.status + (f" ({record.error})" if record.error else "")),
        ("Duration", clock(record.duration_s) if record.duration_s is not None else "unknown"),
        ("Video", f"{probe.get('width')}x{probe.get('height')}, {probe.get('fps')} fps, {probe.get('codec')}"),
        ("Procedure", record.procedure or ""),
        ("Surgeon (pseudonym)", record.surgeon_id or ""),
        ("Difficulty (1-5)", record.difficulty or ""),
        ("Tags", ", ".join(record.tags)),
        ("Notes", record.notes or ""),
    ]
    parts = [f"<h1>{e(record.title)}</h1><p class='muted'>SurgLens case report</p>",
             "<h2>Summary</h2>", _table(("Field", "Value"), summary_rows),
             "<h2>Phases</h2>",
             _table(("Phase", "Duration"),
                    [(display_name(k, "phase"), clock(v)) for k, v in record.phase_seconds.items()]),
             "<h2>Instruments</h2>",
             _table(("Instrument", "Seconds on screen"),
                    [(display_name(k, "tool"), f"{v:g}") for k, v in record.tool_seconds.items()])]
    frames = _key_frames(record, result)
    if frames:
        parts += ["<h2>Key frames per phase</h2><div class='frames'>"]
        parts += [f"<figure><img src='{uri}' alt='{e(caption)}'><figcaption>{e(caption)}</figcaption></figure>"
                  for caption, uri in frames]
        parts.append("</div>")
    motion = result.summary("motion").get("per_tool") if result else None
    if not motion and result is not None and (report := result.motion()) is not None:
        motion = report.per_tool
    if motion:
        parts += ["<h2>Motion per instrument</h2>",
                  _table(("Instrument", *MOTION_COLUMNS.values()),
                         [(display_name(tool, "tool"), *(_number(v.get(m)) for m in MOTION_COLUMNS))
                          for tool, v in motion.items()])]
    parts += ["<h2>Comments and bookmarks</h2>", _comment_rows(comments)]
    charts = list(figures(record, result, comments)) if figures else []
    if charts:
        parts.append("<h2>Charts</h2>")
        for i, fig in enumerate(charts):
            # plotly.js is inlined once (first chart); never a CDN link, so the report works offline.
            parts.append("<div class='chart'>" + fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                                                             config={"displaylogo": False}) + "</div>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{e(record.title)}: SurgLens report</title><style>{_STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>")
