"""Keeping a live session (analysis.live) as a library case: its recording is ingested and queued for analysis."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from library.records import CaseRecord
from library.store import Library


def live_title(started: datetime | None = None) -> str:
    """The case title of a live session: when it was recorded (never the source's name, which may name the patient)."""
    return f"Live session {(started or datetime.now()).strftime('%Y-%m-%d %H:%M')}"


def keep_recording(library: Library, recording: str | Path, *, title: str | None = None,
                   config: Mapping[str, Any] | Any | None = None, remove: bool = True) -> tuple[CaseRecord, bool]:
    """Ingest a live recording as a case queued for the normal analysis; returns (case, created).

    `remove`: delete the recording (and its temporary folder when it is the only file there) once it
    is in the library, which keeps its own copy.
    """
    recording = Path(recording).resolve()
    case, created = library.import_file(recording, title=title or live_title(), config=config)
    if remove:
        folder = recording.parent
        recording.unlink(missing_ok=True)
        if folder.name.startswith("surglens-live-") and not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
    return case, created
