"""Structured assessment: an educator rates a case's operator on OSATS or GOALS (standard items, 1-5), beside
the case's motion metrics; ratings are stored, exported as CSV and charted per trainee over time.

Layout only: storage and the CSV are library.teaching, tables and charts analysis.teaching_charts.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.teaching_charts import assessment_progress, motion_summary
from app.resources import motion_of
from app.teaching import open_teaching_page
from library import LibraryError
from library.teaching import FORMS, Teaching

FORM_TEXT = {"OSATS": "Objective Structured Assessment of Technical Skills",
             "GOALS": "Global Operative Assessment of Laparoscopic Skills"}
MOTION_COLUMNS = {
    "path_length_norm": st.column_config.NumberColumn("path (diagonals)", format="%.2f"),
    "time_on_screen_s": st.column_config.NumberColumn("on screen (s)", format="%.0f"),
    "idle_s": st.column_config.NumberColumn("idle (s)", format="%.0f"),
}

lib, case, done, cols = open_teaching_page("Assessment", "assess_case")
teaching = Teaching(lib)
form_name = cols[2].segmented_control("Form", list(FORMS), key="assess_form", required=True, default="OSATS")
form_name = form_name or "OSATS"

left, right = st.columns([3, 2])
with left:
    st.markdown("**Motion of the instruments in this case**")
    motion = motion_of(lib, case.id)
    per_tool = motion_summary(motion)
    if per_tool.empty:
        st.caption("No motion metrics for this case (they need instrument tracking).")
    else:
        st.dataframe(per_tool, hide_index=True, column_config=MOTION_COLUMNS, key="assess_motion_tools")
        per_phase = motion_summary(motion, by_phase=True)
        if not per_phase.empty:
            st.markdown("**Per phase**")
            st.dataframe(per_phase, hide_index=True, column_config=MOTION_COLUMNS, key="assess_motion_phases")
with right:
    st.markdown(f"**{form_name}**: {FORM_TEXT[form_name]}")
    with st.form(f"assess_{form_name}"):
        trainee = st.text_input("Operator (a display name)", key="assess_trainee")
        assessor = st.text_input("Assessor (optional)", key="assess_assessor")
        scores = {item: st.radio(item, [1, 2, 3, 4, 5], index=2, horizontal=True, key=f"assess_{form_name}_{i}")
                  for i, item in enumerate(FORMS[form_name])}
        notes = st.text_area("Notes (optional)", height=70, key="assess_notes")
        saved = st.form_submit_button("Save assessment", icon=":material/save:")
    if saved:
        try:
            record = teaching.save_assessment(case.id, form_name, scores, trainee=trainee, assessor=assessor,
                                              notes=notes)
        except LibraryError as exc:
            st.error(str(exc))
        else:
            st.success(f"{form_name} saved: {record.total} of {record.max_total}.")

titles = {c.id: c.title for c in lib.list_cases()}


def assessment_table(records) -> pd.DataFrame:
    return pd.DataFrame([{"when": r.created_at.strftime("%Y-%m-%d %H:%M"), "case": titles.get(r.case_id, ""),
                          "form": r.form, "operator": r.trainee or "", "assessor": r.assessor or "",
                          "total": f"{r.total}/{r.max_total}", **r.scores} for r in records])


st.subheader("Assessments of this case")
own = teaching.assessments(case_id=case.id)
if own:
    st.dataframe(assessment_table(own[::-1]), hide_index=True, key="assess_case_table")
else:
    st.caption("None yet.")
cols = st.columns(2)
cols[0].download_button("This case's assessments (CSV)", data=teaching.assessments_csv(case_id=case.id),
                        file_name=f"assessments-case-{case.id}.csv", mime="text/csv", icon=":material/download:",
                        disabled=not own, key="assess_csv_case")
cols[1].download_button("Every assessment (CSV)", data=teaching.assessments_csv(), file_name="assessments.csv",
                        mime="text/csv", icon=":material/download:", key="assess_csv_all")

st.subheader("A trainee's scores over time")
people = sorted({r.trainee for r in teaching.assessments() if r.trainee}, key=str.lower)
if not people:
    st.caption("Assessments with an operator's name appear here.")
else:
    who = st.selectbox("Operator", people, key="assess_who")
    records = teaching.assessments(trainee=who)
    frame = pd.DataFrame([{"created_at": r.created_at, "form": r.form, "total": r.total, "max_total": r.max_total,
                           "case": titles.get(r.case_id, "")} for r in records])
    st.plotly_chart(assessment_progress(frame), key="assess_progress", config={"displaylogo": False})
