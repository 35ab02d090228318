"""Analytics page: phase durations, instruments and motion across the library, and one case against them.

Layout only: the tables come from app.resources, the charts from analysis.charts.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.charts import MOTION_METRICS, library_distribution
from analysis.moments import clock
from analysis.teaching_charts import study_progress
from app.resources import library_tables, version_of
from app.state import init_state
from app.widgets import LIBRARY, library_or_stop
from library.db import Status
from library.teaching import Teaching
from models.taxonomy import display_name, load_taxonomy

init_state()
lib = library_or_stop()
st.title("Analytics")

done = lib.list_cases(statuses=(Status.DONE,), order="oldest")
if not done:
    st.info("No analysed case yet. Upload videos on the Library page; their statistics appear here.")
    st.page_link(LIBRARY, label="Go to the library", icon=":material/video_library:")
    st.stop()

tables = library_tables(lib, tuple(done), (str(lib.settings.data_dir), tuple((c.id, version_of(c)) for c in done)))
ids = [c.id for c in done]
titles = {c.id: c.title for c in done}
current = st.session_state["case_id"] if st.session_state["case_id"] in ids else ids[-1]
highlight = st.selectbox("Highlight a case", ids, index=ids.index(current), format_func=titles.get,
                         help="Shown as a red diamond against the library's distribution")

durations = tables.cases["duration_s"].dropna()
cols = st.columns(4)
cols[0].metric("Analysed cases", len(done))
cols[1].metric("Video analysed", clock(durations.sum()))
cols[2].metric("Median case length", clock(durations.median()) if len(durations) else "–")
cols[3].metric("This case", clock(next(c.duration_s or 0 for c in done if c.id == highlight)))

phase_view, tool_view, motion_view, table_view, study_view = st.tabs(
    ["Phases", "Instruments", "Motion", "Cases", "Study progress"])
with phase_view:
    if tables.phases.empty:
        st.caption("No case has phase recognition yet.")
    else:
        unit = st.radio("Show", ["seconds", "share"], horizontal=True, key="analytics_phase_unit",
                        format_func=lambda u: "seconds per phase" if u == "seconds" else "share of the case")
        st.plotly_chart(
            library_distribution(tables.phases, unit, "phase", highlight, "Phase durations across the library",
                                 "seconds" if unit == "seconds" else "share of the case", kind="phase"),
            key="analytics_phases", config={"displaylogo": False})
with tool_view:
    if tables.tools.empty:
        st.caption("No instrument was detected in any case yet.")
    else:
        st.plotly_chart(
            library_distribution(tables.tools, "seconds", "tool", highlight,
                                 "Instrument time on screen across the library", "seconds on screen", kind="tool"),
            key="analytics_tools", config={"displaylogo": False})
with motion_view:
    available = [m for m in MOTION_METRICS if m in tables.motion.columns]
    if not available:
        st.caption("No case has motion metrics yet (they need instrument tracking).")
    else:
        metric = st.selectbox("Metric", available, format_func=MOTION_METRICS.get, key="analytics_metric")
        st.plotly_chart(
            library_distribution(tables.motion, metric, "tool", highlight,
                                 f"{MOTION_METRICS[metric].capitalize()} per instrument", MOTION_METRICS[metric],
                                 kind="tool"),
            key="analytics_motion", config={"displaylogo": False})
with table_view:
    wide = tables.cases.copy()
    if not tables.phases.empty:
        pivot = tables.phases.pivot_table(index="case_id", columns="phase", values="seconds", aggfunc="sum")
        order = load_taxonomy().phase_names  # surgical order; a phase a case never reached took 0 s
        pivot = pivot[sorted(pivot.columns, key=lambda c: (order.index(c) if c in order else len(order), c))]
        pivot.columns = [display_name(c, "phase") for c in pivot.columns]
        wide = wide.join(pivot, on="case_id")
        wide[list(pivot.columns)] = wide[list(pivot.columns)].fillna(0.0)
    # Metadata nobody entered is an empty cell, not "None".
    if "difficulty" in wide:
        wide["difficulty"] = wide["difficulty"].map(lambda d: "" if pd.isna(d) else str(int(d)))
    text_columns = [c for c in wide.columns if wide[c].dtype == object]
    wide[text_columns] = wide[text_columns].astype(object).where(wide[text_columns].notna(), "")
    st.dataframe(wide, hide_index=True,
                 column_config={"case_id": st.column_config.NumberColumn("case"),
                                "duration_s": st.column_config.NumberColumn("duration (s)", format="%.0f")})
with study_view:  # study-mode attempts of one trainee (app/views/study.py)
    teaching = Teaching(lib)
    trainees = sorted({a.trainee for a in teaching.attempts()}, key=str.lower)
    if not trainees:
        st.caption("No study-mode attempt yet (Teaching › Study mode).")
    else:
        who = st.selectbox("Trainee", trainees, key="analytics_trainee")
        attempts = teaching.attempts(who)
        all_titles = {c.id: c.title for c in lib.list_cases()}
        frame = pd.DataFrame([{"created_at": a.created_at, "case": all_titles.get(a.case_id, ""),
                               "mean_jaccard": a.mean_jaccard, "mean_abs_error_s": a.mean_abs_error_s,
                               "tool_f1": a.tool_f1, "against": a.reference_source} for a in attempts])
        st.plotly_chart(study_progress(frame), key="analytics_study", config={"displaylogo": False})
