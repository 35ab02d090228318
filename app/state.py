"""Session state: every key the pages use, initialised in one place."""
from __future__ import annotations

import streamlit as st

DEFAULTS: dict[str, object] = {
    "case_id": None,  # the case open in Case review
    "seek_s": 0.0,  # where the player starts
    "diagnosis_upload_key": 0,
}


def init_state() -> None:
    """Set missing session-state keys to their defaults."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
