"""Corrections: an educator fixes a case's phase timeline (move a boundary, set a segment's phase); the result is
the case's reference for study mode and exports, stored beside the model's output, which is never changed.

Layout only: storage and the Cholec80 export are library.teaching, the review list analysis.moments.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.moments import clock, display_name, review_these
from analysis.study import marks_from_segments, segments_from_marks
from analysis.teaching_charts import timelines_on_one_axis
from app.resources import case_data, version_of
from app.teaching import marks_frame, marks_of, open_teaching_page, phase_choices

from library import LibraryError
from library.export import slug
from library.teaching import Teaching

lib, case, done, cols = open_teaching_page("Corrections", "correct_case")
teaching = Teaching(lib)
author = cols[2].text_input("Educator (optional, a display name)", key="correct_author")
data = case_data(str(lib.case_dir(case.id)), version_of(case))
duration = float(case.duration_s or data.duration_s)
reference = teaching.reference(case.id)
model = list(data.segments)
if reference.source == "educator":
    st.caption(f"Corrected by {reference.author or 'an educator'} on {reference.updated_at:%Y-%m-%d %H:%M}. "
               "Study mode scores against this correction; the model's output is kept beside it.")
else:
    st.caption("Not corrected yet: the model's phases are the reference. Saving makes your timeline the reference.")
if not model and reference.source == "model":
    st.warning("This case has no phase recognition. Enter its phases below to give it a reference.")

seek_key = f"correct_seek_{case.id}"
st.session_state.setdefault(seek_key, 0.0)
left, right = st.columns([3, 2])
with left:
    video = lib.case_results(case.id).playable_video(case.video_path)
    if Path(video).exists():
        st.video(str(video), start_time=float(st.session_state[seek_key]))
with right:
    review = review_these(data.moments, model)
    st.markdown(f"**Review these** ({len(review)}): where the model is least sure, least confident first")
    if not review:
        st.caption("No phase stretch under 50 % confidence.")
    for i, (m, confidence) in enumerate(review):
        st.button(f"{clock(m.time_s)}–{clock(m.end_s or m.time_s)}  {display_name(m.label, 'phase')} ({confidence:.0%})",
                  key=f"correct_review_{i}", icon=":material/flag:", type="tertiary",
                  on_click=lambda t=m.time_s: st.session_state.__setitem__(seek_key, float(t)))

phases = phase_choices()
st.markdown("**Phase timeline**: each row is where a phase starts (m:ss); it lasts until the next row. "
            "Change a time to move a boundary, a phase to relabel a segment; add or delete rows.")
version = reference.updated_at.isoformat() if reference.updated_at else "model"
start = st.session_state.get(f"correct_seed_{case.id}") or marks_from_segments(reference.segments) or [(0.0, "Preparation")]
table = st.data_editor(
    marks_frame(start), key=f"correct_rows_{case.id}_{version}", num_rows="dynamic", hide_index=True,
    column_config={"time": st.column_config.TextColumn("starts at (m:ss)", required=True),
                   "phase": st.column_config.SelectboxColumn("phase", options=list(phases), required=True)})
try:
    edited = segments_from_marks(marks_of(table), duration)
    problem = None if edited else "the timeline is empty: add a row"
except ValueError as exc:
    edited, problem = [], str(exc)
if problem:
    st.error(problem)

lanes = {"Model": model, "Reference (educator)" if reference.source == "educator" else "Reference (model)":
         list(reference.segments)}
if edited and edited != [{k: s[k] for k in ("start_s", "end_s", "label")} for s in reference.segments]:
    lanes["Your edit (not saved)"] = edited
st.plotly_chart(timelines_on_one_axis(lanes, duration, "Model, reference and your edit"), key="correct_timelines",
                config={"displaylogo": False})

cols = st.columns(3)
if cols[0].button("Save as the reference", icon=":material/save:", type="primary", disabled=not edited,
                  key="correct_save"):
    try:
        teaching.save_reference(case.id, edited, author=author or None)
    except LibraryError as exc:
        st.error(str(exc))
    else:
        st.session_state.pop(f"correct_seed_{case.id}", None)
        st.session_state["flash"] = "Saved: this timeline is now the case's reference."
        st.rerun()
if cols[1].button("Back to the model's phases", icon=":material/undo:", disabled=reference.source != "educator",
                  key="correct_clear"):
    teaching.clear_reference(case.id)
    st.session_state.pop(f"correct_seed_{case.id}", None)
    st.session_state["flash"] = "The correction was removed: the model's phases are the reference again."
    st.rerun()
if reference.segments and case.probe.get("fps"):
    cols[2].download_button(
        "Reference phases (Cholec80 txt)", data=lambda: teaching.reference_cholec80_text(case.id),
        file_name=f"{slug(case.title)}-phase.txt", mime="text/plain", icon=":material/download:", key="correct_export",
        help=f"One line per frame at the video's {float(case.probe['fps']):.3g} fps")
if st.session_state["flash"]:
    st.toast(st.session_state["flash"])
    st.session_state["flash"] = None
