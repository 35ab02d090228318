"""Study mode: a trainee watches a case with its labels hidden, marks the phase transitions (optionally the
instruments at chosen moments and when the critical view of safety is reached) and is scored.

Layout only: scoring and storage are library.teaching (analysis.study), charts analysis.teaching_charts.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.moments import clock
from analysis.study import segments_from_marks
from analysis.teaching_charts import timelines_on_one_axis, transition_errors
from app.teaching import (
    marks_frame,
    marks_of,
    next_in_set,
    open_teaching_page,
    phase_choices,
    tool_choices,
    tool_marks_of,
)
from app.widgets import parse_clock
from library import LibraryError
from library.teaching import AttemptRecord, Teaching
from models.taxonomy import display_name

SOURCE_TEXT = {"educator": "the educator's corrected phase labels",
               "model": "the model's phase recognition (no educator has corrected this case yet)"}

lib, case, done, cols = open_teaching_page("Study mode", "study_case")
teaching = Teaching(lib)
trainee = cols[2].text_input("Your display name", key="study_trainee", placeholder="e.g. Trainee A",
                             help="No account: the name your attempts are kept under on this machine.")
try:
    reference = teaching.reference(case.id)
except LibraryError as exc:
    st.error(f"The results of this case cannot be read ({exc}).")
    st.stop()
duration = float(case.duration_s or 0.0)
st.caption(f"{clock(duration)} long. Your marks are compared with {SOURCE_TEXT[reference.source]}. "
           "The phase labels stay hidden until you submit.")
if not reference.segments:
    st.warning("This case has no phase timeline to compare with: choose another case.")
    st.stop()

video = lib.case_results(case.id).playable_video(case.video_path)
left, right = st.columns([3, 2])
with left:
    if Path(video).exists():
        st.video(str(video))
    else:
        st.error("The video file of this case is missing from the library folder.")

phases = phase_choices()
seed_key, version_key = f"study_seed_{case.id}", f"study_version_{case.id}"
st.session_state.setdefault(seed_key, [(0.0, next(iter(phases.values())))])
st.session_state.setdefault(version_key, 0)
with right:
    st.markdown("**Phase transitions**: the time each phase starts (m:ss) and the phase")
    marks_table = st.data_editor(
        marks_frame(st.session_state[seed_key]), key=f"study_marks_{case.id}_{st.session_state[version_key]}",
        num_rows="dynamic", hide_index=True,
        column_config={"time": st.column_config.TextColumn("starts at (m:ss)", required=True),
                       "phase": st.column_config.SelectboxColumn("phase", options=list(phases), required=True)})
    add = st.columns([1, 2, 1], vertical_alignment="bottom")
    add_at = add[0].text_input("Add at (m:ss)", key="study_add_at", placeholder="e.g. 2:15")
    add_phase = add[1].selectbox("phase", list(phases), key="study_add_phase")
    if add[2].button("Add", icon=":material/add:", key="study_add"):
        try:
            new_marks = [*marks_of(marks_table), (parse_clock(add_at), phases[add_phase])]
        except ValueError as exc:
            st.error(str(exc))
        else:  # the editor restarts from its rows plus the new one, in time order
            st.session_state[seed_key] = sorted(new_marks)
            st.session_state[version_key] += 1
            st.rerun()
    with st.expander("Instruments in use (optional)"):
        st.caption("Pick moments and name every instrument you see in use then.")
        tools_table = st.data_editor(
            pd.DataFrame({"time": pd.Series(dtype=str), "tools": pd.Series(dtype=object)})
            if not st.session_state.get(f"study_tool_seed_{case.id}") else
            pd.DataFrame([{"time": clock(t), "tools": [display_name(x, "tool") for x in tools]}
                          for t, tools in st.session_state[f"study_tool_seed_{case.id}"]]),
            key=f"study_tools_{case.id}", num_rows="dynamic", hide_index=True,
            column_config={"time": st.column_config.TextColumn("at (m:ss)"),
                           "tools": st.column_config.MultiselectColumn("instruments", options=list(tool_choices()))})
    cvs_text = st.text_input("Critical view of safety reached at (m:ss, optional)", key=f"study_cvs_{case.id}")
    submit = st.button("Submit and see my score", icon=":material/grading:", type="primary", key="study_submit")

if submit:
    try:
        marks = marks_of(marks_table)
        tool_marks = tool_marks_of(tools_table)
        cvs_s = parse_clock(cvs_text) if cvs_text.strip() else None
        attempt = teaching.submit_attempt(case.id, trainee, marks, tool_marks, cvs_s)
    except (LibraryError, ValueError) as exc:
        st.error(str(exc))
    else:
        st.session_state["study_attempt"] = attempt.id


def results(attempt: AttemptRecord) -> None:
    score = attempt.score
    st.subheader("Your score")
    st.caption(f"Compared with {SOURCE_TEXT[attempt.reference_source]}.")
    cols = st.columns(4)
    error = score.get("mean_abs_error_s")
    cols[0].metric("Mean timing error", "–" if error is None else f"{error:.1f} s",
                   help="Each reference transition against your nearest mark into the same phase")
    cols[1].metric("Missed transitions", f"{score['missed_transitions']} of {len(score['transitions'])}")
    cols[2].metric("Mean segment Jaccard", f"{score['mean_jaccard']:.2f}" if score.get("mean_jaccard") is not None else "–",
                   help="Per phase: seconds you and the reference both gave it / seconds either gave it")
    f1 = score.get("tool_f1")
    cols[3].metric("Instrument F1", "not marked" if f1 is None else f"{f1:.2f}")
    if score.get("cvs_error_s") is not None:
        st.caption(f"Critical view of safety: you marked it {score['cvs_error_s']:+.0f} s from the model's estimate.")
    elif attempt.cvs_s is not None:
        st.caption("Critical view of safety: this case has no CVS estimate to compare with.")
    ref_segments = score.get("reference_segments") or list(teaching.reference(attempt.case_id).segments)
    mine = segments_from_marks(attempt.marks, duration)
    reference_lane = "Reference (educator)" if attempt.reference_source == "educator" else "Reference (model)"
    st.plotly_chart(timelines_on_one_axis({reference_lane: ref_segments, "You": mine}, duration,
                                          "Your timeline against the reference", marks={"You": [t for t, _ in attempt.marks]}),
                    key="study_timelines", config={"displaylogo": False})
    cols = st.columns(2)
    with cols[0]:
        if score["transitions"]:
            st.plotly_chart(transition_errors(score["transitions"]), key="study_errors", config={"displaylogo": False})
            st.dataframe(pd.DataFrame([{"phase entered": display_name(t["phase"], "phase"),
                                        "reference": clock(t["reference_s"]),
                                        "you": "missed" if t["trainee_s"] is None else clock(t["trainee_s"]),
                                        "error (s)": t["error_s"]} for t in score["transitions"]]), hide_index=True)
        else:
            st.caption("The reference has a single phase: no transition to time.")
    with cols[1]:
        st.markdown("**Segment Jaccard per phase**")
        st.dataframe(pd.DataFrame([{"phase": display_name(p, "phase"), "Jaccard": v,
                                    "in the reference": p in score["reference_phases"]}
                                   for p, v in score["jaccard"].items()]), hide_index=True,
                     column_config={"Jaccard": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1)})


shown = st.session_state.get("study_attempt")
attempt = next((a for a in teaching.attempts(case_id=case.id) if a.id == shown), None) if shown else None
if attempt is not None:
    results(attempt)
    following = next_in_set(lib, "study_case", case, done)
    if following is not None:
        def go_next(case_id: int = following) -> None:
            st.session_state["study_case"] = case_id
            st.session_state["study_attempt"] = None

        st.button("Next case in the teaching set", icon=":material/skip_next:", key="study_next", on_click=go_next)

if trainee.strip():
    try:
        history = teaching.attempts(trainee)
    except LibraryError:
        history = []
    if history:
        titles = {c.id: c.title for c in lib.list_cases()}
        st.subheader(f"Attempts of {history[0].trainee}")
        st.dataframe(pd.DataFrame([{"when": a.created_at.strftime("%Y-%m-%d %H:%M"), "case": titles.get(a.case_id, ""),
                                    "against": a.reference_source, "timing error (s)": a.mean_abs_error_s,
                                    "Jaccard": a.mean_jaccard, "instrument F1": a.tool_f1} for a in history[::-1]]),
                     hide_index=True)
        st.caption("Progress over attempts is charted on the Analytics page (Study tab).")
