"""Streamlit entry point: a thin script that declares the pages (st.navigation) and runs one."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.auth import password_gate
from app.icon import app_icon
from app.state import init_state

st.set_page_config(page_title="SurgLens", page_icon=app_icon(), layout="wide")  # drawn here: nothing fetched
if not password_gate():  # SURGLENS_PASSWORD set and this session has not given it: no page at all
    st.stop()
init_state()

# Not "pages/": a folder of that name beside the entry script switches on Streamlit's legacy multipage mode.
PAGES = Path(__file__).parent / "views"
page = st.navigation(
    {
        "Video": [
            st.Page(PAGES / "library.py", title="Library", icon=":material/video_library:", default=True),
            st.Page(PAGES / "case_review.py", title="Case review", icon=":material/movie:"),
            st.Page(PAGES / "analytics.py", title="Analytics", icon=":material/monitoring:"),
            st.Page(PAGES / "live.py", title="Live", icon=":material/videocam:"),
        ],
        "Teaching": [
            st.Page(PAGES / "study.py", title="Study mode", icon=":material/school:"),
            st.Page(PAGES / "assessment.py", title="Assessment", icon=":material/rate_review:"),
            st.Page(PAGES / "corrections.py", title="Corrections", icon=":material/edit_note:"),
            st.Page(PAGES / "compare.py", title="Side by side", icon=":material/compare:"),
        ],
        "Images": [
            st.Page(PAGES / "diagnosis.py", title="Diagnosis", icon=":material/radiology:"),
            st.Page(PAGES / "volume.py", title="CT/MR series", icon=":material/view_in_ar:"),
        ],
        "System": [st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:")],
    }
)
page.run()
