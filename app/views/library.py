"""Library page: upload videos, follow their analysis, search the cases, build teaching sets.

Ordinary files go through st.file_uploader (held in memory, so capped at ORDINARY_UPLOAD_MB and dropped
from memory once ingested); large recordings through the large-recording uploader, which streams them
to disk under `surglens serve` (app/upload_links.py), or by their path on this machine.

Layout only: storage, probing, the job queue, search and collections live in library/.
"""
from __future__ import annotations

import math
from datetime import date

import streamlit as st

from analysis.charts import report_figures
from analysis.moments import clock, display_name
from app import upload_links, video_links
from app.resources import case_thumbnail, version_of
from app.state import init_state
from app.widgets import POLL_S, analysis_progress, export_controls, forget_uploads, library_or_stop, open_case
from library import CaseFilter, CaseRecord, Library, LibraryError
from library.db import Status
from library.export import export_collection, export_file_name
from library.store import CASE_ORDERS

PAGE_SIZE = 25
ORDINARY_UPLOAD_MB = 200.0  # st.file_uploader's cap: Streamlit keeps an upload in memory for the whole session
STATUS_ICON = {Status.QUEUED: ":material/schedule:", Status.RUNNING: ":material/autorenew:",
               Status.DONE: ":material/check_circle:", Status.FAILED: ":material/error:"}

init_state()
lib = library_or_stop()
settings = lib.settings
st.title("Case library")

# ------------------------------------------------------------------ upload

# The smallest of the library's limit, the server's (`surglens serve` makes them equal; a bare `streamlit run`
# elsewhere has Streamlit's default) and ORDINARY_UPLOAD_MB, so the browser refuses a larger file with this
# number: Streamlit holds an uploaded file in memory for the whole session, larger ones go to the disk-streamed
# large-recording uploader or the import by path.
upload_mb = min(settings.max_upload_mb, float(st.get_option("server.maxUploadSize")), ORDINARY_UPLOAD_MB)
upload_title = st.text_input(
    "Name the case (optional)", key=f"upload_title_{st.session_state['upload_key']}", max_chars=200,
    placeholder="e.g. Difficult Calot triangle, teaching case 3; without a name it is \"Case <number>\"",
    help="Shown instead of \"Case <number>\". Several videos at once are numbered: name 1, name 2, ...")
uploads = st.file_uploader(
    "Upload laparoscopic videos (" + ", ".join(settings.video_extensions)
    + f" or any other video file; up to {upload_mb:g} MB each; larger recordings: the large-recording "
      "uploader below, or import from this machine)",
    type=None,  # any name: the content decides (MPEG-TS, MPEG-PS, ... from recording towers)
    accept_multiple_files=True,
    max_upload_size=max(1, math.ceil(upload_mb)),
    key=f"upload_{st.session_state['upload_key']}",
    help="Each video is stored once (by content), analysed in the background, and never leaves this machine. "
         "File names are not kept.",
)
if uploads:
    st.session_state["upload_key"] += 1  # the next run shows an empty uploader: nothing is ingested twice
    received, errors = [], []
    with st.spinner("Checking the video..." if len(uploads) == 1 else f"Checking {len(uploads)} videos..."):
        for number, upload in enumerate(uploads, 1):
            name = upload_title.strip() and (upload_title.strip() if len(uploads) == 1 else f"{upload_title.strip()} {number}")
            try:
                received.append(lib.ingest(upload, title=name or None))
            except (LibraryError, OSError) as exc:
                errors.append(str(exc) if len(uploads) == 1 else f"video {number} of {len(uploads)}: {exc}")
        forget_uploads(uploads)  # ingested (or refused): Streamlit need not keep them in memory
    st.session_state["upload_error"] = errors
    st.session_state["last_upload"] = [(case.id, created) for case, created in received]
    if len(uploads) == 1 and received and not received[0][1]:
        st.session_state["notice"] = (f"This video is a duplicate: it is already in the library as "
                                      f"{received[0][0].title}, opened here. Nothing new was stored.")
        open_case(received[0][0].id)
    st.rerun()

st.markdown(f"**Large recording** (up to {settings.max_upload_mb:g} MB each, streamed to this machine's disk)")
if not video_links.ROUTES_ACTIVE:
    st.info("The large-recording uploader needs `surglens serve` (it streams the file to disk instead of "
            "memory). Started otherwise, import a large recording by its path: \"Import a video file from this "
            "machine\" below.", icon=":material/info:")
else:
    if st.session_state["upload_token"] is None:  # once a session: remove what dead uploads left behind
        upload_links.sweep(settings.tmp_dir)
    st.session_state["upload_token"] = upload_links.page_token(st.session_state["upload_token"])
    # The same HTML on every rerun, so the frame (and an upload in it) is never reloaded.
    st.iframe(upload_links.uploader_html(st.session_state["upload_token"], settings.max_upload_bytes,
                                         f"{settings.max_upload_mb:g} MB"),
              height="content", alt="Large-recording uploader")

    @st.fragment(run_every=POLL_S)
    def ingest_large_uploads() -> None:
        """Ingests what the large-recording uploader has streamed to this page's staging folder."""
        batch = upload_links.verify(st.session_state["upload_token"])
        staged = upload_links.staged_files(settings.tmp_dir, batch) if batch else []
        if not staged:
            return
        title = str(st.session_state.get(f"upload_title_{st.session_state['upload_key']}") or "").strip()
        with st.spinner("Checking the video..." if len(staged) == 1 else f"Checking {len(staged)} videos..."):
            for item in staged:
                if item.number == 1:  # the first of the files chosen together: a new upload's messages
                    st.session_state["last_upload"], st.session_state["upload_error"] = [], []
                name = title and (title if item.count == 1 else f"{title} {item.number}")
                try:
                    case, created = lib.ingest_staged(item.path, item.ext, title=name or None)
                except (LibraryError, OSError) as exc:
                    error = str(exc) if item.count == 1 else f"video {item.number} of {item.count}: {exc}"
                    st.session_state["upload_error"] = [*(st.session_state["upload_error"] or ()), error]
                else:  # recorded at once: a rerun asked for meanwhile stops this run at its next element
                    st.session_state["last_upload"] = [*(e for e in st.session_state["last_upload"] or ()
                                                         if e[0] != case.id), (case.id, created)]
                if item.number == item.count:
                    st.session_state["upload_key"] += 1  # all of them are in: the name field starts empty again
        st.rerun()  # the whole page: the banners below, the queue

    ingest_large_uploads()

with st.expander("Import a video file from this machine (for recordings too large to upload)",
                 icon=":material/drive_folder_upload:"):
    import_path = st.text_input(
        "Full path of the video file", placeholder="/media/tower-disk/2025/recording.mts",
        key=f"import_path_{st.session_state['upload_key']}",
        help="The file is copied into the library (without its metadata); it is never moved, changed or "
             "deleted. No upload size limit; the library's disk needs room for a copy.")
    if st.button("Import", icon=":material/download:", key="import_path_button", disabled=not import_path.strip()):
        try:
            with st.spinner("Copying and checking the video..."):
                case, created = lib.import_file(import_path, title=upload_title.strip() or None)
        except (LibraryError, OSError) as exc:
            st.session_state["upload_error"] = [str(exc)]
        else:
            st.session_state["upload_key"] += 1  # an empty path field (and uploader) next time
            st.session_state["upload_error"] = []
            st.session_state["last_upload"] = [(case.id, created)]
        st.rerun()

for error in st.session_state["upload_error"] or ():
    st.error(f"Upload rejected: {error}. Nothing was stored.")
if st.session_state["flash"]:
    st.info(st.session_state["flash"])
    st.session_state["flash"] = None


def probe_summary(case: CaseRecord) -> None:
    """The technical properties of the stored video (never its name or capture metadata)."""
    p = case.probe
    cols = st.columns(6)  # the codec and the size apart: one short value per box, never cut
    cols[0].metric("Duration", clock(p["duration_s"]) if p.get("duration_s") is not None else "?")
    cols[1].metric("Picture", f"{p.get('width')}×{p.get('height')}")
    cols[2].metric("Frame rate", f"{p.get('fps', 0):.3g} fps")
    cols[3].metric("Frames", f"{p.get('frame_count', 0):,}")
    cols[4].metric("Codec", str(p.get("codec") or "?"))
    cols[5].metric("File size", f"{p.get('file_size', 0) / 2**20:.1f} MB")


still_shown = []
for case_id, created in st.session_state["last_upload"] or ():
    try:
        uploaded = lib.get_case(case_id)
    except LibraryError:
        continue
    if created and uploaded.status == Status.DONE:  # analysed: the banner has done its job, the case is in the list
        continue
    still_shown.append((case_id, created))
    with st.container(border=True):
        if created:
            st.success(f"{uploaded.title} stored and queued for analysis.", icon=":material/upload:")
        else:
            st.info(f"Already in the library as {uploaded.title}.", icon=":material/content_copy:")
        probe_summary(uploaded)
st.session_state["last_upload"] = still_shown

# ------------------------------------------------------------------ queue and failures

if analysis_progress(lib):
    st.caption("Analyses run in the background worker: closing or reloading this page does not stop them.")

for failed in lib.list_cases(statuses=(Status.FAILED,)):
    with st.container(border=True):
        cols = st.columns([5, 1])
        cols[0].error(f"**{failed.title}**: analysis failed. {failed.error or 'No reason was recorded.'}")
        if cols[1].button("Retry", key=f"retry_{failed.id}", icon=":material/refresh:"):
            try:
                lib.requeue(failed.id)
            except LibraryError as exc:
                st.error(str(exc))
            else:
                st.rerun()


# ------------------------------------------------------------------ cases and teaching sets


def case_card(case: CaseRecord, key: str, collection_id: int | None = None) -> None:
    """One case: title, status, metadata, what was found, and an Open button (inside its teaching set)."""
    with st.container(border=True):
        cols = st.columns([1.1, 5, 1], vertical_alignment="center")
        thumb = thumbnail_of(case)
        if thumb is not None:
            cols[0].image(thumb, width="stretch")
        else:
            cols[0].caption(":material/hourglass_top:" if case.status in (Status.QUEUED, Status.RUNNING) else ":material/movie:")
        cols = cols[1:]
        facts = [case.status, clock(case.duration_s) if case.duration_s else None,
                 case.operation_date.isoformat() if case.operation_date else None, case.procedure,
                 f"surgeon {case.surgeon_id}" if case.surgeon_id else None,
                 f"difficulty {case.difficulty}/5" if case.difficulty else None]
        cols[0].markdown(f"{STATUS_ICON.get(case.status, '')} **{case.title}** · " + " · ".join(f for f in facts if f))
        found = []
        if case.phases_present:
            found.append("Phases: " + ", ".join(display_name(p, "phase") for p in case.phases_present))
        if case.tools_present:
            found.append("Instruments: " + ", ".join(display_name(t, "tool") for t in case.tools_present))
        if case.tags:
            found.append("Tags: " + ", ".join(f"`{t}`" for t in case.tags))
        if found:
            cols[0].caption("  \n".join(found))
        with cols[1]:
            if st.button("Open", key=f"open_{key}_{case.id}", type="primary", width="stretch",
                         help="Open in Case review" + (" inside this teaching set" if collection_id else "")):
                open_case(case.id, collection_id)
            if collection_id is None:
                delete_case_button(case)


def thumbnail_of(case: CaseRecord) -> bytes | None:
    """The case's thumbnail JPEG (None before its analysis, or when its video cannot be read)."""
    if case.status != Status.DONE:
        return None
    return case_thumbnail(str(lib.case_dir(case.id)), str(case.video_path), version_of(case), case.mask_regions)


def delete_case_button(case: CaseRecord) -> None:
    """Delete, behind a confirmation: the video, results, comments and teaching-set entries go."""
    with st.popover("", icon=":material/delete:", help="Delete this case"):
        st.markdown(f"Delete **{case.title}**? Its video, results, comments and teaching-set entries are "
                    "removed from this machine. This cannot be undone.")
        if st.button("Delete the case", key=f"delete_case_{case.id}", type="primary", icon=":material/delete_forever:"):
            try:
                lib.delete_case(case.id)
            except LibraryError as exc:
                st.error(str(exc))
            else:
                st.session_state["flash"] = f"{case.title} was deleted."
                st.rerun()


def case_filters(lib: Library) -> CaseFilter:
    """Search and filter widgets -> the library's CaseFilter."""
    opts = lib.filter_options()
    text = st.text_input("Search", placeholder="title, instrument or phase found, procedure, notes, surgeon id, "
                                               "tags or comments", key="filter_text")
    with st.expander("Filters", icon=":material/filter_list:"):
        c1, c2, c3 = st.columns(3)
        tags = c1.multiselect("Tags", opts.tags, key="filter_tags")
        phases = c2.multiselect("Phases (all of)", opts.phases, format_func=lambda p: display_name(p, "phase"),
                                key="filter_phases")
        tools = c3.multiselect("Instruments (all of)", opts.tools, format_func=lambda t: display_name(t, "tool"),
                               key="filter_tools")
        c1, c2, c3 = st.columns(3)
        statuses = c1.multiselect("Status", list(opts.status_counts) or [Status.DONE.value], key="filter_status",
                                  format_func=lambda s: f"{s} ({opts.status_counts.get(s, 0)})")
        longest = max(1, math.ceil((opts.max_duration_s or 60) / 60))
        minutes = c2.slider("Duration (minutes)", 0, longest, (0, longest), key="filter_minutes")
        dates = c3.date_input("Operation date", value=(), key="filter_dates", max_value=date(2100, 1, 1))
        order = st.selectbox("Order", CASE_ORDERS, key="filter_order")
    date_from, date_to = (tuple(dates) + (None, None))[:2] if isinstance(dates, tuple) else (dates, dates)
    return CaseFilter(
        text=text or None, tags=tags, phases=phases, tools=tools, statuses=statuses,
        min_duration_s=minutes[0] * 60 if minutes[0] > 0 else None,
        max_duration_s=minutes[1] * 60 if minutes[1] < longest else None,
        date_from=date_from, date_to=date_to, order=order,
    )


def cases_tab(lib: Library) -> None:
    try:
        cases = lib.list_cases(case_filters(lib))
    except LibraryError as exc:
        st.error(str(exc))
        return
    if not cases:
        st.info("No cases match. Upload a video above to start the library." if not lib.list_cases(limit=1)
                else "No case matches these filters.")
        return
    shown = st.session_state["cases_shown"]
    st.caption(f"{len(cases)} case(s)")
    for case in cases[:shown]:
        case_card(case, "list")
    if len(cases) > shown and st.button(f"Show {min(PAGE_SIZE, len(cases) - shown)} more"):
        st.session_state["cases_shown"] = shown + PAGE_SIZE
        st.rerun()


def teaching_sets_tab(lib: Library) -> None:
    with st.popover("New teaching set", icon=":material/add:"):
        with st.form("new_collection", clear_on_submit=True, border=False):
            name = st.text_input("Name")
            description = st.text_area("Description", height=80)
            if st.form_submit_button("Create"):
                try:
                    st.session_state["collection_id"] = lib.create_collection(name, description).id
                except LibraryError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
    collections = lib.list_collections()
    if not collections:
        st.info("No teaching sets yet. A teaching set is an ordered list of cases to study together.")
        return
    ids = [c.id for c in collections]
    current = st.session_state["collection_id"] if st.session_state["collection_id"] in ids else ids[0]
    chosen = st.selectbox("Teaching set", ids, index=ids.index(current),
                          format_func=lambda i: next(c.name for c in collections if c.id == i))
    st.session_state["collection_id"] = chosen
    collection = lib.get_collection(chosen)
    if collection.description:
        st.caption(collection.description)
    members = lib.collection_cases(chosen)
    for position, case in enumerate(members):
        cols = st.columns([0.5, 9, 0.7, 0.7, 0.7], vertical_alignment="center")
        cols[0].markdown(f"**{position + 1}.**")
        with cols[1]:
            case_card(case, f"set{chosen}", collection_id=chosen)
        if cols[2].button("", key=f"up_{chosen}_{case.id}", icon=":material/arrow_upward:", disabled=position == 0,
                          help="Move up"):
            lib.move_item(chosen, case.id, position - 1)
            st.rerun()
        if cols[3].button("", key=f"down_{chosen}_{case.id}", icon=":material/arrow_downward:",
                          disabled=position == len(members) - 1, help="Move down"):
            lib.move_item(chosen, case.id, position + 1)
            st.rerun()
        if cols[4].button("", key=f"remove_{chosen}_{case.id}", icon=":material/close:", help="Remove from the set"):
            lib.remove_from_collection(chosen, case.id)
            st.rerun()
    if not members:
        st.caption("This set is empty: add cases below.")
    others = [c for c in lib.list_cases(order="title") if c.id not in collection.case_ids]
    cols = st.columns([4, 1])
    to_add = cols[0].selectbox("Add a case", [c.id for c in others], index=None, placeholder="choose a case",
                               format_func=lambda i: next(c.title for c in others if c.id == i))
    if cols[1].button("Add", disabled=to_add is None, icon=":material/playlist_add:"):
        lib.add_to_collection(chosen, to_add)
        st.rerun()
    export_controls("Export teaching set (zip)", lambda f: export_collection(lib, chosen, f, figures=report_figures),
                    export_file_name(collection.name, "teaching-set"), key=f"set_export_{chosen}",
                    disabled=not members, icon=":material/download:", data_dir=lib.settings.data_dir)
    with st.popover("Delete this teaching set", icon=":material/delete:"):
        st.markdown(f"Delete the teaching set **{collection.name}**? Its {len(members)} case(s) stay in the library.")
        if st.button("Delete the set", key=f"delete_set_{chosen}", type="primary", icon=":material/delete_forever:"):
            lib.delete_collection(chosen)
            st.session_state["collection_id"] = None
            st.session_state["flash"] = f"Teaching set {collection.name} deleted."
            st.rerun()


cases_view, sets_view = st.tabs(["Cases", "Teaching sets"])
with cases_view:
    cases_tab(lib)
with sets_view:
    teaching_sets_tab(lib)
