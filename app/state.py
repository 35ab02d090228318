"""Session state: every key the pages use, initialised in one place."""
from __future__ import annotations

import streamlit as st

DEFAULTS: dict[str, object] = {
    "case_id": None,  # the case open in Case review
    "seek_s": 0.0,  # where the player starts
    "diagnosis_upload_key": 0,
    "upload_key": 0,  # bumped after each ingest so the uploader empties and a rerun never ingests twice
    "last_upload": None,  # [(case_id, created)] of the last upload on the Library page
    "upload_error": None,  # [why each rejected file of the last upload was refused]
    "upload_token": None,  # the Library page's large-recording upload token (app/upload_links.py)
    "flash": None,  # a one-time toast for the next page shown (e.g. "Comment added")
    "notice": None,  # a one-time banner for the next page shown (e.g. "already in the library")
    "watching": (),  # ids of the queued/running cases the page last drew; a change reruns the page
    "review_case": None,  # the case Case review last drew; a new one resets seek and clip range
    "video_source": "Original",  # Case review player: Original | Annotated
    "clip_range": None,  # (start_s, end_s) of the clip to cut in Case review
    "clip_path": None,  # the annotated clip shown in Case review
    "collection_id": None,  # the teaching set open on the Library page
    "cases_shown": 25,  # how many case cards the Library page lists (grows with "Show more")
    "live_session": None,  # the Live page's running analysis.live.LiveSession
    "live_kept": None,  # {"case_id", "title"} or {"error"} of the last live session that stopped
}


def init_state() -> None:
    """Set missing session-state keys to their defaults."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
