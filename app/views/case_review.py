"""Case review page: the video with its phase timeline, instruments, motion, key moments, comments and clips.

Layout only: results are read through app.resources, charts come from analysis.charts, clips from
analysis.clips, teaching data and exports from library/.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import streamlit as st

from analysis.charts import motion_phase_table, motion_tool_table, phase_durations, report_figures
from analysis.clips import annotated_clip
from analysis.moments import clock, display_name, review_these
from analysis.results import CaseResultError
from app import resources
from app.player_overlay import player_overlay
from app.resources import (
    CaseData,
    anatomy_model,
    anatomy_still,
    case_data,
    frame_at,
    motion_figures,
    overlay_data,
    timeline_figure,
    version_of,
)
from app.state import init_state
from app.video_links import player_source
from app.widgets import LIBRARY, analysis_progress, export_controls, library_or_stop, parse_clock, player_tools
from library import CaseRecord, CollectionRecord, Library, LibraryError, NotFoundError
from library.db import Status
from library.export import annotated_matches_mask, export_case, html_report, slug
from video import VideoError
from video.mask import apply_mask, parse_region_text

KIND_ICON = {"comment": ":material/chat:", "bookmark": ":material/bookmark:"}
DEFAULT_CLIP_S = 10.0
ALL_TOOLS = "*"  # the heatmap of every instrument (a string, so the selector has no "clear" cross)
METRIC_COLUMNS = {
    "time_on_screen_s": st.column_config.NumberColumn("on screen (s)", format="%.0f"),
    "path_length_norm": st.column_config.NumberColumn("path (diagonals)", format="%.2f"),
    "mean_speed_norm_s": st.column_config.NumberColumn("mean speed (diag/s)", format="%.3f"),
    "peak_speed_norm_s": st.column_config.NumberColumn("peak speed (diag/s)", format="%.3f"),
    "idle_fraction": st.column_config.ProgressColumn("idle", format="percent", min_value=0, max_value=1),
    "working_area_norm": st.column_config.NumberColumn("working area (frame share)", format="%.3f"),
    "appearances": st.column_config.NumberColumn("appearances"),
}

init_state()
lib = library_or_stop()


def seek_to(start_s: float, end_s: float | None = None) -> None:
    """Callback: start the player at `start_s` (also the time of the next comment); a span also becomes the clip range."""
    st.session_state["seek_s"] = max(float(start_s), 0.0)
    st.session_state["comment_at"] = clock(st.session_state["seek_s"])
    if end_s is not None and end_s > start_s:
        st.session_state["clip_slider"] = (float(start_s), float(end_s))


def go_to_case(case_id: int) -> None:
    """Callback of the case picker and of previous/next in a teaching set: that case, from its start."""
    st.session_state["case_id"] = int(case_id)
    st.query_params["case"] = str(int(case_id))
    st.query_params.pop("t", None)


def timeline_clicked() -> None:
    """Callback of the timeline: every clickable mark carries [start_s, end_s, ...] as customdata."""
    points = st.session_state["timeline"]["selection"]["points"]
    data = points[0].get("customdata") if points else None
    if data:
        seek_to(data[0], data[1])


def choose_case(cases: list[CaseRecord]) -> CaseRecord:
    """The case to show: ?case= in the URL, else the session's, else the newest; the picker switches."""
    ids = [c.id for c in cases]
    param = st.query_params.get("case")
    if param and param.isdigit() and int(param) in ids:
        st.session_state["case_id"] = int(param)
    if st.session_state["case_id"] not in ids:
        st.session_state["case_id"] = next((c.id for c in cases if c.status == Status.DONE), ids[0])
    titles = {c.id: f"{c.title} ({c.status})" for c in cases}
    st.session_state["case_picker"] = st.session_state["case_id"]
    chosen = st.selectbox("Open another case", ids, key="case_picker", format_func=titles.get,
                          on_change=lambda: go_to_case(st.session_state["case_picker"]))
    st.session_state["case_id"] = chosen
    st.query_params["case"] = str(chosen)
    return next(c for c in cases if c.id == chosen)


def url_seconds(name: str) -> float:
    """A non-negative number of seconds from the URL (?t=75), 0 when absent or not a number."""
    try:
        return max(float(st.query_params.get(name, 0)), 0.0)
    except ValueError:
        return 0.0


def teaching_set(lib: Library, case: CaseRecord) -> CollectionRecord | None:
    """The teaching set of ?set= when it holds the case: its name, the case's place, previous and next."""
    param = st.query_params.get("set")
    if not (param and param.isdigit()):
        return None
    try:
        collection = lib.get_collection(int(param))
    except NotFoundError:
        st.query_params.pop("set", None)
        return None
    if case.id not in collection.case_ids:
        return None
    ids = list(collection.case_ids)
    i = ids.index(case.id)
    cols = st.columns([6, 1, 1], vertical_alignment="center")
    cols[0].markdown(f":material/school: Teaching set **{collection.name}** · case {i + 1} of {len(ids)}")
    cols[1].button("Previous", icon=":material/skip_previous:", disabled=i == 0, key="set_previous",
                   on_click=go_to_case, args=(ids[max(i - 1, 0)],), width="stretch")
    cols[2].button("Next", icon=":material/skip_next:", disabled=i == len(ids) - 1, key="set_next",
                   on_click=go_to_case, args=(ids[min(i + 1, len(ids) - 1)],), width="stretch")
    return collection


def moment_link(case: CaseRecord, collection: CollectionRecord | None) -> str:
    """A link that reopens this case (in its teaching set) at the player's start time."""
    params = {"case": case.id, **({"set": collection.id} if collection else {})}
    if st.session_state["seek_s"] > 0:
        params["t"] = int(st.session_state["seek_s"])
    url = st.context.url
    base = "case_review"
    if url:
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return f"{base}?{urlencode(params)}"


def header(case: CaseRecord) -> None:
    p = case.probe
    facts = [clock(case.duration_s or 0), f"{p.get('width')}×{p.get('height')} at {p.get('fps', 0):.3g} fps",
             case.procedure, case.operation_date.isoformat() if case.operation_date else None,
             f"surgeon {case.surgeon_id}" if case.surgeon_id else None,
             f"difficulty {case.difficulty}/5" if case.difficulty else None,
             ("tags: " + ", ".join(case.tags)) if case.tags else None]
    st.caption(" · ".join(f for f in facts if f))


def not_ready(lib: Library, case: CaseRecord) -> None:
    """A case without results: its progress, or its failure with a retry."""
    if case.status in (Status.QUEUED, Status.RUNNING):
        st.info("This case is being analysed in the background; the page fills in when it is done.",
                icon=":material/hourglass_top:")
        analysis_progress(lib, case.id)
    else:
        st.error(f"The analysis of this case failed: {case.error or 'no reason was recorded'}.")
        if st.button("Analyse again", icon=":material/refresh:"):
            lib.requeue(case.id)
            st.rerun()
    st.page_link(LIBRARY, label="Back to the library", icon=":material/arrow_back:")


def player(case: CaseRecord, data: CaseData) -> None:
    options = ["Original", "Annotated"] if data.annotated else ["Original"]
    if st.session_state["video_source"] not in options:
        st.session_state["video_source"] = "Original"
    cols = st.columns([1, 2], vertical_alignment="center")
    with cols[0]:
        source = st.segmented_control("Video", options, key="video_source", label_visibility="collapsed",
                                      required=True,
                                      help="Annotated: the analysed frames with instruments, track ids and trails")
    boxes = cols[1].toggle("Boxes on the original", value=True, key="overlay_boxes", disabled=source != "Original",
                           help="Instruments and track ids drawn over the original video at its own frame rate, "
                                "moved smoothly between the analysed frames")
    # Uploads browsers cannot play (avi, mkv, other codecs) have an H.264 proxy made by the analysis.
    path = data.annotated if source == "Annotated" else data.result.playable_video(case.video_path)
    if not Path(path).exists():
        st.error("The video file of this case is missing from the library folder.")
        return
    if source == "Annotated" and not annotated_matches_mask(data.result, case):
        st.warning("This annotated video was made before the case's current mask: analyse the case again to "
                   "black out the masked regions in it (clips and exports already use the mask).",
                   icon=":material/hide_source:")
    # Through the streaming route when it runs (app/server.py): the browser reads the file by ranges.
    st.video(player_source(path, lib.settings.data_dir, st.context.url), start_time=float(st.session_state["seek_s"]))
    player_overlay(overlay_data(str(data.case_dir), version_of(case)), boxes=boxes and source == "Original")
    here = player_tools(float(case.probe.get("fps") or 25.0) if source == "Original" else 1.0)
    if here is not None:  # "comment here": the player's own position, for the comment form
        st.session_state["comment_at"] = clock(here)
        st.session_state["side_tab_wanted"] = "Comments"
    st.caption(f"Starts at {clock(st.session_state['seek_s'])}. Click the timeline, a key moment or a comment to jump.")


def mask_panel(lib: Library, case: CaseRecord) -> None:
    """Rectangles of burned-in text (a tower's name and date overlay), blacked out in everything made from the video."""
    label = f"Mask burned-in text ({len(case.mask_regions)})" if case.mask_regions else "Mask burned-in text"
    with st.expander(label, icon=":material/hide_source:"):
        st.caption("One rectangle per line as x0, y0, x1, y1 in fractions of the picture (0,0 is the top left; "
                   "0, 0, 0.35, 0.08 covers a name at the top left). Clips, report frames, exports and the "
                   "next analysis' annotated video are blacked out there.")
        text = st.text_area("Rectangles", "\n".join(", ".join(f"{v:g}" for v in r) for r in case.mask_regions),
                            key=f"mask_text_{case.id}", height=90, label_visibility="collapsed",
                            placeholder="0, 0, 0.35, 0.08")
        try:
            regions = [parse_region_text(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            st.error(str(exc))
            return
        frame = frame_at(str(case.video_path), float(st.session_state["seek_s"]), 480)
        if frame is not None:
            st.image(apply_mask(frame, regions), caption="Preview at the player's start time", width=320)
        if st.button("Save the mask", key=f"mask_save_{case.id}", icon=":material/save:",
                     disabled=regions == list(case.mask_regions)):
            try:
                lib.set_mask_regions(case.id, regions)
            except LibraryError as exc:
                st.error(str(exc))
            else:
                st.session_state["flash"] = "Mask saved." if regions else "Mask removed."
                st.rerun()


def moments_panel(data: CaseData) -> None:
    if not data.moments:
        st.caption("No key moments: no phase change and no instrument was found.")
    with st.container(height=330, border=False):
        review = review_these(data.moments, data.segments)
        if review:  # where the model is least sure first: the educator's minutes go there (Teaching › Corrections)
            st.markdown(f"**Review these** ({len(review)}, least confident first)")
            for i, (m, confidence) in enumerate(review):
                st.button(f"{clock(m.time_s)}–{clock(m.end_s or m.time_s)}  {display_name(m.label, 'phase')} "
                          f"({confidence:.0%})", key=f"review_{i}", on_click=seek_to, args=(m.time_s, m.end_s),
                          icon=":material/flag:", type="tertiary")
            st.markdown("**All key moments**")
        for i, m in enumerate(data.moments):
            st.button(f"{clock(m.time_s)}  {m.text}", key=f"moment_{i}", on_click=seek_to, args=(m.time_s, m.end_s),
                      type="tertiary")
        notes = list(dict.fromkeys(m.note for m in data.moments if m.note))
        for note in notes:  # the CVS moments' caveat, once
            st.caption(f":material/warning: CVS moments: {note}.")


def comments_panel(lib: Library, case: CaseRecord, comments: list) -> None:
    if not st.session_state.get("comment_at"):
        st.session_state["comment_at"] = clock(st.session_state["seek_s"])
    with st.form("add_comment", clear_on_submit=True):
        cols = st.columns([1, 1])
        at_text = cols[0].text_input(
            "At (m:ss)", key="comment_at",
            help="The last jump (timeline, key moment, comment), or where the player is after \"comment here\" "
                 "under the player. Type any other time, e.g. 12:05.")
        kind = cols[1].radio("Kind", ["comment", "bookmark"], horizontal=True)
        text = st.text_area("Comment", height=80, placeholder="What should a trainee notice here?")
        author = st.text_input("Author (optional, a pseudonym)")
        if st.form_submit_button("Add", icon=":material/add_comment:"):
            try:
                at = parse_clock(at_text)
                lib.add_comment(case.id, at, text, kind=kind, author=author or None)
            except (LibraryError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.session_state["flash"] = f"{kind.capitalize()} added at {clock(at)}."
                st.session_state["side_tab_wanted"] = "Comments"  # stay on the comments after the rerun
                st.rerun()
    threads = [c for c in comments if c.parent_id is None]
    replies = {c.id: [r for r in comments if r.parent_id == c.id] for c in threads}
    with st.container(height=300, border=False):
        for c in threads:
            comment_row(lib, c, replies[c.id])
        if not threads:
            st.caption("No comments or bookmarks yet.")


def comment_row(lib: Library, c, answers: list) -> None:
    """One comment: its full time (a jump), text, author, answers; edit, answer and delete."""
    with st.container(border=True):
        cols = st.columns([3, 2], vertical_alignment="center")
        cols[0].button(clock(c.timestamp_s) + (f" · {c.author}" if c.author else ""), key=f"seek_comment_{c.id}",
                       on_click=seek_to, args=(c.timestamp_s,), icon=KIND_ICON[c.kind], type="tertiary",
                       help="Play from here")
        with cols[1].container(horizontal=True, horizontal_alignment="right", gap="small"):
            with st.popover("", icon=":material/reply:", help="Answer"):
                with st.form(f"reply_{c.id}", clear_on_submit=True, border=False):
                    answer = st.text_area("Answer", height=80, key=f"reply_text_{c.id}")
                    who = st.text_input("Author (optional, a pseudonym)", key=f"reply_author_{c.id}")
                    if st.form_submit_button("Answer", key=f"reply_submit_{c.id}"):
                        comment_action(lambda: lib.add_comment(c.case_id, c.timestamp_s, answer, author=who or None,
                                                               parent_id=c.id), "Answer added.")
            with st.popover("", icon=":material/edit:", help="Edit"):
                with st.form(f"edit_{c.id}", border=False):
                    new_text = st.text_area("Text", c.text, height=80, key=f"edit_text_{c.id}")
                    new_at = st.text_input("At (m:ss)", clock(c.timestamp_s), key=f"edit_at_{c.id}")
                    if st.form_submit_button("Save", key=f"edit_submit_{c.id}"):
                        comment_action(lambda: lib.update_comment(c.id, text=new_text, timestamp_s=parse_clock(new_at)),
                                       "Comment saved.")
            if st.button("", key=f"delete_comment_{c.id}", icon=":material/delete:", help="Delete (with its answers)"):
                comment_action(lambda: lib.delete_comment(c.id), "Deleted.")
        st.markdown(c.text)
        for a in answers:
            cols = st.columns([12, 1], vertical_alignment="center")
            cols[0].markdown(f":material/subdirectory_arrow_right: {a.text}" + (f"  \n*{a.author}*" if a.author else ""))
            if cols[1].button("", key=f"delete_comment_{a.id}", icon=":material/close:", help="Delete this answer",
                              type="tertiary"):
                comment_action(lambda a=a: lib.delete_comment(a.id), "Answer deleted.")


def comment_action(action, done: str) -> None:
    """Run an edit of the comments; on success stay on the Comments tab and rerun, else say why."""
    try:
        action()
    except (LibraryError, ValueError) as exc:
        st.error(str(exc))
    else:
        st.session_state["flash"] = done
        st.session_state["side_tab_wanted"] = "Comments"
        st.rerun()


def motion_section(case: CaseRecord, data: CaseData) -> None:
    tools = list(data.motion.get("per_tool") or {})
    n_tracks = len(data.motion.get("per_track") or [])
    cols = st.columns(2, vertical_alignment="bottom")
    by_track = cols[0].toggle(f"Each track ({n_tracks})", key="motion_tracks",
                              help="Off: one path per instrument (all its tracks). On: one path per track.")
    tool = cols[1].selectbox("Heatmap of", [ALL_TOOLS, *tools], key="heatmap_tool",
                             format_func=lambda t: "all instruments" if t == ALL_TOOLS else display_name(t, "tool"))
    path_fig, heat_fig = motion_figures(str(data.case_dir), version_of(case), str(case.video_path),
                                        "track" if by_track else "tool", None if tool == ALL_TOOLS else tool,
                                        mask=case.mask_regions)
    cols = st.columns(2)
    cols[0].plotly_chart(path_fig, key="trajectories", config={"displaylogo": False})
    cols[1].plotly_chart(heat_fig, key="heatmap", config={"displaylogo": False})
    st.markdown("**Motion per instrument**")
    st.dataframe(motion_tool_table(data.motion), hide_index=True, column_config=METRIC_COLUMNS)
    st.markdown("**Motion per phase**")
    per_phase = motion_phase_table(data.motion)
    if per_phase.empty:
        st.caption("Needs phase recognition for this case.")
    else:
        st.dataframe(per_phase, hide_index=True, column_config=METRIC_COLUMNS)
    if data.segments:
        st.plotly_chart(phase_durations(data.segments), key="phase_durations", config={"displaylogo": False})


def anatomy_section(case: CaseRecord, data: CaseData) -> None:
    """The anatomy model on the frame at the player's start time or at a key moment: mask and the three CVS criteria."""
    from models.anatomy.model import NOTE

    ref = resources.ANATOMY_MODEL
    model, why = anatomy_model(ref)
    if model is None:
        st.info(f"No anatomy model is installed, so there are no anatomy masks or CVS criteria ({why}).",
                icon=":material/info:")
        return
    times = {float(st.session_state["seek_s"]): f"player's start time ({clock(st.session_state['seek_s'])})"}
    for m in data.moments:
        times.setdefault(float(m.time_s), f"{clock(m.time_s)}  {m.text}")
    at = st.selectbox("Frame at", list(times), format_func=times.get, key="anatomy_at")
    still = anatomy_still(str(case.video_path), float(at), case.mask_regions, ref)
    if still is None:
        st.error("The frame at this time cannot be read from the video.")
        return
    cols = st.columns([3, 2])
    cols[0].image(still.overlay, caption=f"Anatomy at {clock(at)}", width="stretch")
    with cols[1]:
        st.markdown("**Critical view of safety**")
        labels = {"C1": "C1 two structures", "C2": "C2 triangle cleared", "C3": "C3 cystic plate"}
        for c, p in still.cvs.items():
            st.metric(labels.get(c, c), "n/a" if p != p else f"{p:.2f}",
                      None if p != p else ("holds" if p >= 0.5 else "not yet"), delta_color="off", delta_arrow="off")
        if any(p != p for p in still.cvs.values()):
            st.caption("This anatomy model has no CVS head: criteria are not assessed.")
        st.dataframe([{"structure": k.replace("_", " "), "share of frame": round(v, 3)} for k, v in still.areas.items()],
                     hide_index=True)
    st.caption(f":material/warning: {NOTE}.")


def clip_section(case: CaseRecord, data: CaseData) -> None:
    duration = max(float(data.duration_s), 1.0)
    presets = {"": None}
    presets.update({f"{display_name(s['label'], 'phase')} {clock(s['start_s'])}–{clock(s['end_s'])}": (s["start_s"], s["end_s"])
                    for s in data.segments})
    presets.update({f"{m.text} ({clock(m.time_s)})": (m.time_s, m.end_s) for m in data.moments if m.end_s})

    def use_preset() -> None:
        span = presets.get(st.session_state["clip_preset"])
        if span:
            st.session_state["clip_slider"] = (float(span[0]), float(min(span[1], duration)))

    cols = st.columns([2, 3])
    cols[0].selectbox("Segment", list(presets), key="clip_preset", on_change=use_preset,
                      format_func=lambda k: k or "choose a phase or instrument use, or set the range")
    start, end = cols[1].slider("Range (seconds)", 0.0, duration, step=1.0, key="clip_slider", format="%.0f s")
    if st.button("Make annotated clip", icon=":material/movie_edit:", type="primary", disabled=end <= start):
        try:
            with st.spinner(f"Drawing the instruments on {clock(start)}–{clock(end)}..."):
                path = annotated_clip(data.case_dir, case.video_path, start, end, mask=case.mask_regions)
        except (ValueError, OSError, RuntimeError, VideoError) as exc:
            st.error(f"The clip could not be made: {exc}")
        else:
            st.session_state["clip_path"] = str(path)
    made = {p.as_posix(): (a, b) for a, b, p in data.result.cached_clips()}
    if st.session_state["clip_path"] not in made:
        st.session_state["clip_path"] = next(iter(made), None)
    if not made:
        st.caption("No clip yet. A clip has the instruments drawn on every frame of the original video.")
        return
    current = st.selectbox("Clips of this case", list(made), index=list(made).index(st.session_state["clip_path"]),
                           format_func=lambda p: f"{clock(made[p][0])}–{clock(made[p][1])}")
    st.session_state["clip_path"] = current
    a, b = made[current]
    with st.columns([3, 2])[0]:
        st.video(player_source(current, lib.settings.data_dir, st.context.url), autoplay=True, muted=True)
    st.download_button("Download this clip (H.264 mp4)", data=lambda: Path(current).read_bytes(),
                       file_name=f"{slug(case.title)}_{int(a)}-{int(b)}s.mp4", mime="video/mp4",
                       icon=":material/download:")


def details_section(lib: Library, case: CaseRecord) -> None:
    all_tags = sorted(set(lib.filter_options().tags) | set(case.tags))
    with st.form("metadata"):
        title = st.text_input("Title", case.title)
        cols = st.columns(3)
        procedure = cols[0].text_input("Procedure", case.procedure or "")
        operation_date = cols[1].date_input("Operation date", case.operation_date, min_value=date(1990, 1, 1))
        surgeon = cols[2].text_input("Surgeon (pseudonymous id, e.g. S03)", case.surgeon_id or "")
        difficulty = st.select_slider("Difficulty", [None, 1, 2, 3, 4, 5], value=case.difficulty,
                                      format_func=lambda d: "not rated" if d is None else str(d))
        tags = st.multiselect("Tags", all_tags, default=list(case.tags), accept_new_options=True)
        notes = st.text_area("Notes", case.notes or "", height=100)
        if st.form_submit_button("Save", icon=":material/save:"):
            try:
                lib.update_metadata(case.id, title=title, procedure=procedure or None, operation_date=operation_date,
                                    surgeon_id=surgeon or None, difficulty=difficulty, notes=notes or None)
                for tag in set(case.tags) - set(tags):
                    lib.remove_tag(case.id, tag)
                for tag in tags:
                    lib.add_tag(case.id, tag)
            except LibraryError as exc:
                st.error(str(exc))
            else:
                st.session_state["flash"] = "Case details saved."
                st.rerun()
    sets = lib.list_collections()
    member = [c.name for c in sets if case.id in c.case_ids]
    st.caption("In teaching sets: " + (", ".join(member) if member else "none"))
    others = [c for c in sets if case.id not in c.case_ids]
    if others:
        cols = st.columns([3, 1])
        target = cols[0].selectbox("Add to teaching set", [c.id for c in others],
                                   format_func=lambda i: next(c.name for c in others if c.id == i))
        if cols[1].button("Add", icon=":material/playlist_add:"):
            lib.add_to_collection(target, case.id)
            st.rerun()
    mask_panel(lib, case)


def export_section(lib: Library, case: CaseRecord) -> None:
    st.caption("Exports hold the results, charts, comments and annotated clips; never the source video, "
               "its file name, its capture metadata, the operation date or any file path. Masked regions are black.")
    export_controls("Case (zip: JSON, CSV, Cholec80 phases, clips, report)",
                    lambda f: export_case(lib, case.id, f, figures=report_figures), f"{slug(case.title)}.zip",
                    key=f"case_export_{case.id}", data_dir=lib.settings.data_dir)
    st.download_button(
        "HTML report", icon=":material/description:", data=lambda: html_report(lib, case.id, figures=report_figures),
        file_name=f"{slug(case.title)}.html", mime="text/html")


cases = lib.list_cases(order="newest")
if not cases:
    st.title("Case review")
    st.info("The library is empty. Upload a video on the Library page.")
    st.page_link(LIBRARY, label="Go to the library", icon=":material/video_library:")
    st.stop()

title_area, picker_area = st.columns([3, 1], vertical_alignment="bottom")
with picker_area:
    case = choose_case(cases)
title_area.title(case.title)
if st.session_state["review_case"] != case.id:  # a new case starts at 0:00, or at ?t= of a link
    st.session_state["review_case"] = case.id
    st.session_state["seek_s"] = min(url_seconds("t"), float(case.duration_s or 0.0))
    st.session_state["comment_at"] = clock(st.session_state["seek_s"])
    st.session_state["clip_path"] = None
    st.session_state.pop("clip_slider", None)
collection = teaching_set(lib, case)
if st.session_state["seek_s"] > 0:
    st.query_params["t"] = str(int(st.session_state["seek_s"]))
else:
    st.query_params.pop("t", None)
# Widget state is dropped while another page shows, so the clip range is set again when missing.
st.session_state.setdefault("clip_slider", (0.0, min(DEFAULT_CLIP_S, float(case.duration_s or DEFAULT_CLIP_S))))
header(case)
if st.session_state["notice"]:
    st.info(st.session_state["notice"], icon=":material/content_copy:")
    st.session_state["notice"] = None
if st.session_state["flash"]:
    st.toast(st.session_state["flash"])
    st.session_state["flash"] = None
if case.status != Status.DONE:
    not_ready(lib, case)
    st.stop()
try:
    data = case_data(str(lib.case_dir(case.id)), version_of(case))
except (CaseResultError, OSError, ValueError) as exc:
    st.error(f"The results of this case cannot be read ({exc}). Analyse it again to rebuild them.")
    if st.button("Analyse again", icon=":material/refresh:"):
        lib.requeue(case.id)
        st.rerun()
    st.stop()

comments = lib.list_comments(case.id)
top_level = tuple(c for c in comments if c.parent_id is None)  # answers share their comment's marker
left, right = st.columns([3, 2])
with left:
    player(case, data)
    with st.popover("Link to this moment", icon=":material/link:"):
        st.caption("Opens this case" + (" in its teaching set" if collection else "")
                   + f" at {clock(st.session_state['seek_s'])}:")
        st.code(moment_link(case, collection), language=None)
with right:
    side_tabs = [f"Key moments ({len(data.moments)})", f"Comments ({len(top_level)})"]
    # The labels carry counts, so the open tab is kept by its first word across a new comment.
    wanted = st.session_state.pop("side_tab_wanted", None) or str(st.session_state.get("side_tab") or "")
    st.session_state["side_tab"] = side_tabs[1] if wanted.startswith("Comments") else side_tabs[0]
    moments_tab, comments_tab = st.tabs(side_tabs, key="side_tab", on_change="rerun")
    if moments_tab.open:
        with moments_tab:
            moments_panel(data)
    if comments_tab.open:
        with comments_tab:
            comments_panel(lib, case, comments)

st.plotly_chart(
    timeline_figure(str(data.case_dir), version_of(case), top_level, float(st.session_state["seek_s"])),
    key="timeline", on_select=timeline_clicked, selection_mode="points",
    config={"displayModeBar": False},
)
# Lazy tabs: only the open one runs and is sent, so the page opens with one section's charts, not four.
sections = {"Motion": lambda: motion_section(case, data), "Anatomy": lambda: anatomy_section(case, data),
            "Annotated clip": lambda: clip_section(case, data),
            "Case details": lambda: details_section(lib, case), "Export": lambda: export_section(lib, case)}
for tab, draw in zip(st.tabs(list(sections), key="review_tab", on_change="rerun"), sections.values()):
    if tab.open:
        with tab:
            draw()
