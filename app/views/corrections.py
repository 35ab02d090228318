"""Corrections: an educator fixes a case's phase timeline (move a boundary, set a segment's phase) and the
instrument boxes of analysed frames (mark a box wrong, change its instrument, add a missing one); the result is
the case's reference for study mode and exports, stored beside the model's output, which is never changed.

Layout only: storage and the exports (Cholec80, YOLO, COCO) are library.teaching, the review list
analysis.moments, the frame with its boxes analysis.teaching_charts.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.moments import clock, display_name, review_these
from analysis.study import marks_from_segments, segments_from_marks
from analysis.teaching_charts import boxes_on_frame, timelines_on_one_axis
from app.resources import case_data, frame_at, version_of
from app.teaching import (
    boxes_frame,
    boxes_of,
    marks_frame,
    marks_of,
    open_teaching_page,
    phase_choices,
    tool_choices,
)
from library import LibraryError
from library.export import slug
from library.teaching import Teaching, check_boxes

lib, case, done, cols = open_teaching_page("Corrections", "correct_case")
teaching = Teaching(lib)
author = cols[2].text_input("Educator (optional, a display name)", key="correct_author")
data = case_data(str(lib.case_dir(case.id)), version_of(case))
duration = float(case.duration_s or data.duration_s)
reference = teaching.reference(case.id)
model = list(data.segments)
times = teaching.analysed_times(case.id)  # the analysed frames, whose boxes can be corrected
if reference.source == "educator":
    st.caption(f"Corrected by {reference.author or 'an educator'} on {reference.updated_at:%Y-%m-%d %H:%M}. "
               "Study mode scores against this correction; the model's output is kept beside it.")
else:
    st.caption("Not corrected yet: the model's phases are the reference. Saving makes your timeline the reference.")
if not model and reference.source == "model":
    st.warning("This case has no phase recognition. Enter its phases below to give it a reference.")

seek_key, box_key = f"correct_seek_{case.id}", f"correct_box_time_{case.id}"
st.session_state.setdefault(seek_key, 0.0)
st.session_state.setdefault(box_key, 0.0)


def _look_at(t: float) -> None:
    """A review-these stretch: play it and put its first analysed frame in the box editor."""
    st.session_state[seek_key] = float(t)
    st.session_state[box_key] = float(t)


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
                  on_click=_look_at, args=(min(float(m.time_s), times[-1]),))

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

st.divider()
st.subheader("Instrument boxes on a frame")
interval = times[1] - times[0] if len(times) > 1 else 1.0
corrected = teaching.box_corrections(case.id)
pick, jump = st.columns([1, 3], vertical_alignment="bottom")
pick.number_input("Frame at (s)", min_value=0.0, max_value=float(times[-1]), step=float(interval), format="%.1f",
                  key=box_key, help=f"An analysed frame: one every {interval:g} s (the nearest one is taken)")
if corrected:
    with jump:
        st.caption("Corrected frames:")
        for i, fb in enumerate(corrected):
            st.button(f"{clock(fb.timestamp_s)} ({len(fb.boxes)} box{'es' * (len(fb.boxes) != 1)})",
                      key=f"correct_box_frame_{i}", type="tertiary", icon=":material/crop_free:",
                      on_click=lambda t=fb.timestamp_s: st.session_state.__setitem__(box_key, float(t)))
t = teaching.frame_time(case.id, st.session_state[box_key])
current = teaching.frame_boxes(case.id, t)
if current.source == "educator":
    st.caption(f"Frame {current.frame_index} at {clock(t)}: boxes corrected by {current.author or 'an educator'} on "
               f"{current.updated_at:%Y-%m-%d %H:%M}; the model's detections are kept beside them.")
else:
    st.caption(f"Frame {current.frame_index} at {clock(t)}: the model's {len(current.boxes)} box"
               f"{'es' * (len(current.boxes) != 1)}. Tick **wrong** to remove a box, change its instrument, or add "
               "a missing one (the + under the table; coordinates in pixels of the video frame).")
tools = tool_choices()
box_version = current.updated_at.isoformat() if current.updated_at else "model"
box_table = st.data_editor(
    boxes_frame(current.boxes), key=f"correct_boxes_{case.id}_{current.frame_index}_{box_version}",
    num_rows="dynamic", hide_index=True,
    column_config={
        "instrument": st.column_config.SelectboxColumn("instrument", options=list(tools), required=True),
        **{k: st.column_config.NumberColumn(k, min_value=0.0, max_value=float(current.width if k[0] == "x"
                                                                              else current.height), format="%.0f")
           for k in ("x1", "y1", "x2", "y2")},
        "wrong": st.column_config.CheckboxColumn("wrong", help="the model boxed something that is not this "
                                                               "instrument: remove the box", default=False),
        "confidence": st.column_config.NumberColumn("model confidence", disabled=True, format="%.2f")})
try:
    kept, removed = boxes_of(box_table)
    kept = check_boxes(kept, current.width, current.height)
    box_problem = None
except (ValueError, LibraryError) as exc:
    kept, removed, box_problem = [], [], str(exc)
if box_problem:
    st.error(box_problem)
image = frame_at(str(case.video_path), t, mask=case.mask_regions)
st.plotly_chart(boxes_on_frame(image, kept, (current.width, current.height),
                               f"{clock(t)}: {len(kept)} box{'es' * (len(kept) != 1)}"
                               + (f", {len(removed)} marked wrong (dashed)" if removed else ""), dashed=removed),
                key="correct_frame_boxes", config={"displaylogo": False})
cols = st.columns(3)
if cols[0].button("Save the boxes of this frame", icon=":material/save:", type="primary",
                  disabled=box_problem is not None, key="correct_boxes_save"):
    try:
        teaching.save_boxes(case.id, t, kept, author=author or None)
    except LibraryError as exc:
        st.error(str(exc))
    else:
        st.session_state["flash"] = f"Saved: {len(kept)} box{'es' * (len(kept) != 1)} on the frame at {clock(t)}."
        st.rerun()
if cols[1].button("Back to the model's boxes", icon=":material/undo:", disabled=current.source != "educator",
                  key="correct_boxes_clear"):
    teaching.clear_boxes(case.id, t)
    st.session_state["flash"] = f"The box correction at {clock(t)} was removed: the model's boxes are back."
    st.rerun()
if corrected or reference.source == "educator":
    cols[2].download_button(
        "Corrections of this case (zip)", data=lambda: teaching.corrections_zip([case.id]),
        file_name=f"{slug(case.title)}-corrections.zip", mime="application/zip", icon=":material/download:",
        key="correct_export_all", help="Cholec80 phase and tool txt, the corrected frames with YOLO labels "
                                       "(data.yaml for train-detector --corrections) and COCO instances.json")

if st.session_state["flash"]:
    st.toast(st.session_state["flash"])
    st.session_state["flash"] = None
