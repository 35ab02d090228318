"""Side by side: two analysed cases (e.g. a trainee's operation and a reference one), their phase timelines on
one time axis and aligned by phase, and their motion metrics per phase and per instrument.

Layout only: the reference timelines come from library.teaching, charts and tables from analysis.teaching_charts.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.moments import clock
from analysis.teaching_charts import (
    motion_per_phase,
    motion_summary,
    phase_aligned,
    phase_duration_bars,
    phase_order,
    phase_seconds,
    timelines_on_one_axis,
)
from app.resources import motion_of
from app.state import init_state
from app.widgets import LIBRARY, library_or_stop
from library.db import Status
from library.teaching import Teaching
from models.taxonomy import display_name

init_state()
lib = library_or_stop()
teaching = Teaching(lib)
st.title("Side by side")

done = lib.list_cases(statuses=(Status.DONE,), order="oldest")
if len(done) < 2:
    st.info("Side by side needs two analysed cases. Upload and analyse videos on the Library page.")
    st.page_link(LIBRARY, label="Go to the library", icon=":material/video_library:")
    st.stop()

titles = {c.id: c.title for c in done}
ids = list(titles)
cols = st.columns(2)
first_id = cols[0].selectbox("Case A (e.g. the trainee's)", ids, index=len(ids) - 1, key="compare_a",
                             format_func=titles.get)
second_id = cols[1].selectbox("Case B (e.g. the reference operation)", ids, index=0, key="compare_b",
                              format_func=titles.get)
if first_id == second_id:
    st.warning("Choose two different cases.")
    st.stop()
cases = {c.id: c for c in done}
names = {first_id: f"A: {titles[first_id]}", second_id: f"B: {titles[second_id]}"}
references = {i: teaching.reference(i) for i in (first_id, second_id)}
timelines = {names[i]: list(r.segments) for i, r in references.items()}
sources = ", ".join(f"{names[i]} {'educator-corrected' if r.source == 'educator' else 'model'} phases"
                    for i, r in references.items())
st.caption(f"Phases: {sources}.")

st.plotly_chart(phase_aligned(timelines), key="compare_aligned", config={"displaylogo": False})
longest = max(float(cases[i].duration_s or 0.0) for i in (first_id, second_id))
st.plotly_chart(timelines_on_one_axis(timelines, longest, "In real time"), key="compare_timelines",
                config={"displaylogo": False})

order = phase_order(*timelines.values())
seconds = {lane: phase_seconds(segs) for lane, segs in timelines.items()}
motions = {names[i]: motion_of(lib, i) for i in (first_id, second_id)}
per_phase = {lane: motion_per_phase(m).set_index("phase") for lane, m in motions.items()}
rows = []
for phase in order:
    shown = display_name(phase, "phase")
    row = {"phase": shown}
    for lane, tag in zip(timelines, ("A", "B")):
        row[f"{tag} time"] = clock(seconds[lane].get(phase, 0.0))
        table = per_phase[lane]
        # a phase the case never reached took 0 s, with no instrument motion in it; no motion table: unknown
        absent = None if table.empty else 0.0
        row[f"{tag} path (diagonals)"] = float(table.loc[shown, "path_length_norm"]) if shown in table.index else absent
        row[f"{tag} idle (s)"] = float(table.loc[shown, "idle_s"]) if shown in table.index else absent
    rows.append(row)
left, right = st.columns([3, 2])
with left:
    st.markdown("**Per phase** (time in the phase, instruments' path length and idle time)")
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.2f" if "path" in c else "%.0f")
                                for r in rows[:1] for c in r if "path" in c or "idle" in c})
with right:
    st.plotly_chart(phase_duration_bars(timelines), key="compare_durations", config={"displaylogo": False})

st.markdown("**Per instrument, whole case**")
tools = []
for lane, tag in zip(timelines, ("A", "B")):
    table = motion_summary(motions[lane])
    table.insert(0, "case", tag)
    tools.append(table)
st.dataframe(pd.concat(tools, ignore_index=True), hide_index=True,
             column_config={"path_length_norm": st.column_config.NumberColumn("path (diagonals)", format="%.2f"),
                            "time_on_screen_s": st.column_config.NumberColumn("on screen (s)", format="%.0f"),
                            "idle_s": st.column_config.NumberColumn("idle (s)", format="%.0f")})
