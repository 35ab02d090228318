"""Streamlit pieces more than one page uses: the library handle, opening a case, analysis progress."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import NoReturn

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from analysis.moments import clock
from app.resources import get_library
from library import CaseRecord, Library

CASE_REVIEW = "views/case_review.py"  # relative to app/main.py, as st.switch_page wants
LIBRARY = "views/library.py"
POLL_S = 2.0  # how often progress bars re-read the database
STALLED_S = 30.0  # a queue this old with nothing running probably has no worker
STAGE_TEXT = {
    "starting": "starting",
    "frames": "analysing frames",
    "quality": "measuring image quality",
    "detection": "finishing instrument detection",
    "phase": "recognising phases",
    "motion": "measuring motion",
    "annotate": "writing the annotated video",
    "done": "saving results",
}


def library_or_stop() -> Library:
    """The case library, or a clear error (and the page stops) when it cannot be opened."""
    try:
        return get_library()
    except (ValueError, OSError, SQLAlchemyError) as exc:
        st.error(f"The case library cannot be opened: {exc}. Check SURGLENS_DATA_DIR and SURGLENS_DB_URL.")
        st.stop()


def open_case(case_id: int) -> NoReturn:
    """Show the case in Case review from its start."""
    st.session_state["case_id"] = int(case_id)
    st.session_state["seek_s"] = 0.0
    st.switch_page(CASE_REVIEW, query_params={"case": str(int(case_id))})


def progress_of(case: CaseRecord) -> tuple[float, str]:
    """(fraction 0..1, one line) describing a queued or running analysis."""
    p = case.progress
    if case.status == "queued":
        return 0.0, f"{case.title}: waiting for the analysis worker"
    stage = STAGE_TEXT.get(p.stage or "starting", p.stage or "starting")
    frames = f" {p.done}/{p.total} frames" if p.stage == "frames" and p.total else ""
    eta = f" · about {clock(p.eta_s)} left" if p.eta_s is not None and p.eta_s > 0 else ""
    return (p.fraction or 0.0), f"{case.title}: {stage}{frames}{eta}"


def _active(lib: Library, case_id: int | None) -> list[CaseRecord]:
    cases = lib.list_cases(statuses=("running", "queued"), order="oldest")
    return [c for c in cases if case_id is None or c.id == case_id]


def _stalled(cases: list[CaseRecord]) -> bool:
    if not cases or any(c.status == "running" for c in cases):
        return False
    queued_since = min(c.updated_at for c in cases)
    return (datetime.now(timezone.utc) - queued_since).total_seconds() > STALLED_S


def analysis_progress(lib: Library, case_id: int | None = None) -> list[CaseRecord]:
    """Progress bars (stage and ETA) of queued and running analyses, or only `case_id`'s.

    The bars re-read the database every POLL_S seconds, so they survive reloads and show the same in
    every tab; when one of them finishes or a new one appears, the whole page reruns.
    Returns the active cases drawn.
    """
    active = _active(lib, case_id)
    st.session_state["watching"] = tuple(c.id for c in active)
    if not active:
        return active

    @st.fragment(run_every=POLL_S)
    def bars() -> None:
        cases = _active(lib, case_id)
        if tuple(c.id for c in cases) != st.session_state["watching"]:
            st.rerun()
        for case in cases:
            fraction, text = progress_of(case)
            st.progress(fraction, text=text)
        if _stalled(cases):
            st.caption("Nothing has started for a while: is the analysis worker running? "
                       "`make run` (or `surglens serve`) starts it beside the dashboard; `surglens worker` alone also works.")

    bars()
    return active
