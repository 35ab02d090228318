"""Streamlit pieces of the teaching pages (Study, Assessment, Corrections, Side by side): choosing an analysed
case (or a teaching set's case) and the phase/tool names the editors offer."""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import streamlit as st

from analysis.moments import clock
from app.widgets import parse_clock
from library import CaseRecord, Library
from library.db import Status
from models.taxonomy import display_name, load_taxonomy

ALL_CASES = 0  # the "no teaching set" choice of the set picker


def phase_choices() -> dict[str, str]:
    """Display name -> taxonomy name of every phase, in surgical order."""
    return {p.display: p.name for p in load_taxonomy().phases}


def tool_choices() -> dict[str, str]:
    return {t.display: t.name for t in load_taxonomy().tools}


def pick_case(lib: Library, done: Sequence[CaseRecord], key: str, label: str = "Case",
              with_sets: bool = True) -> CaseRecord:
    """A picker of the analysed cases, optionally narrowed to a teaching set first; ?case= preselects."""
    ids = [c.id for c in done]
    cases = list(done)
    if with_sets:
        sets = [s for s in lib.list_collections() if set(s.case_ids) & set(ids)]
        if sets:
            names = {ALL_CASES: "all analysed cases", **{s.id: s.name for s in sets}}
            chosen = st.selectbox("Teaching set", list(names), key=f"{key}_set", format_func=names.get)
            if chosen != ALL_CASES:
                order = next(s.case_ids for s in sets if s.id == chosen)
                cases = [c for i in order for c in done if c.id == i]
    param = st.query_params.get("case")
    if param and param.isdigit() and int(param) in [c.id for c in cases] and key not in st.session_state:
        st.session_state[key] = int(param)
    if st.session_state.get(key) not in [c.id for c in cases]:
        st.session_state[key] = cases[0].id
    titles = {c.id: c.title for c in cases}
    chosen_id = st.selectbox(label, list(titles), key=key, format_func=titles.get)
    return next(c for c in cases if c.id == chosen_id)


def open_teaching_page(title: str, key: str) -> tuple[Library, CaseRecord, list[CaseRecord], Any]:
    """The opening every teaching page shares: the library, its title, the analysed cases (or a pointer to
    the Library page when there are none) and the picked case; returns (library, case, done, columns)."""
    from app.state import init_state
    from app.widgets import LIBRARY, library_or_stop

    init_state()
    lib = library_or_stop()
    st.title(title)
    done = lib.list_cases(statuses=(Status.DONE,), order="oldest")
    if not done:
        st.info("No analysed case yet. Upload and analyse a video on the Library page first.")
        st.page_link(LIBRARY, label="Go to the library", icon=":material/video_library:")
        st.stop()
    cols = st.columns([2, 2, 2], vertical_alignment="bottom")
    with cols[0]:
        case = pick_case(lib, done, key)
    return lib, case, done, cols


def marks_frame(marks: Sequence[tuple[float, str]]) -> pd.DataFrame:
    """(time_s, phase) marks as the editor's rows: time m:ss, phase display name."""
    return pd.DataFrame({"time": [clock(t) for t, _ in marks], "phase": [display_name(p, "phase") for _, p in marks]},
                        columns=["time", "phase"])


def marks_of(table: pd.DataFrame) -> list[tuple[float, str]]:
    """The editor's rows as (time_s, phase name); rows without a time or phase are skipped, bad times raise."""
    choices = phase_choices()
    out = []
    for _, row in table.iterrows():
        time, phase = row.get("time"), row.get("phase")
        if _blank(time) or _blank(phase):
            continue
        out.append((parse_clock(str(time)), choices.get(str(phase), str(phase))))
    return out


def tool_marks_of(table: pd.DataFrame) -> list[tuple[float, list[str]]]:
    """The instrument editor's rows as (time_s, [tool names]); rows without a time are skipped."""
    choices = tool_choices()
    out = []
    for _, row in table.iterrows():
        time, tools = row.get("time"), row.get("tools")
        if _blank(time):
            continue
        names = [choices.get(str(t), str(t)) for t in (list(tools) if tools is not None and not _blank(tools) else [])]
        out.append((parse_clock(str(time)), names))
    return out


BOX_COLUMNS = ["instrument", "x1", "y1", "x2", "y2", "wrong", "confidence"]


def boxes_frame(boxes: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Boxes {x1, y1, x2, y2, label[, confidence]} as the box editor's rows (instrument display names)."""
    rows = [{"instrument": display_name(b["label"], "tool"), **{k: float(b[k]) for k in ("x1", "y1", "x2", "y2")},
             "wrong": False, "confidence": b.get("confidence")} for b in boxes]
    table = pd.DataFrame(rows, columns=BOX_COLUMNS)
    return table.astype({"x1": float, "y1": float, "x2": float, "y2": float, "wrong": bool, "confidence": float})


def boxes_of(table: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The box editor's rows as (kept boxes, boxes marked wrong); a row lacking an instrument or a
    coordinate raises ValueError naming it (fill it in or delete it)."""
    choices = tool_choices()
    kept, wrong = [], []
    for number, (_, row) in enumerate(table.iterrows(), start=1):
        values = [row.get(k) for k in ("instrument", "x1", "y1", "x2", "y2")]
        if all(_blank(v) for v in values):
            continue
        if any(_blank(v) for v in values):
            raise ValueError(f"box {number} is incomplete: give its instrument and x1, y1, x2, y2, or delete the row")
        box = {"label": choices.get(str(values[0]), str(values[0])),
               **{k: float(v) for k, v in zip(("x1", "y1", "x2", "y2"), values[1:])}}
        (wrong if bool(row.get("wrong")) and not _blank(row.get("wrong")) else kept).append(box)
    return kept, wrong


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple)):
        return False
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):
        return False
    return not str(value).strip()


def next_in_set(lib: Library, key: str, case: CaseRecord, done: Sequence[CaseRecord]) -> int | None:
    """The analysed case after `case` in the teaching set chosen with `pick_case(..., key)`, if any."""
    chosen = st.session_state.get(f"{key}_set", ALL_CASES)
    if chosen in (None, ALL_CASES):
        return None
    ready = {c.id for c in done}
    order = [i for i in next((s.case_ids for s in lib.list_collections() if s.id == chosen), ()) if i in ready]
    return order[order.index(case.id) + 1] if case.id in order and order.index(case.id) + 1 < len(order) else None
