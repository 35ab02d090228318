"""Streamlit pieces more than one page uses: the library handle, opening a case, analysis progress."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import BinaryIO, Callable, NoReturn

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from analysis.moments import clock
from app.resources import get_library
from library import CaseRecord, Library
from library.db import Status

CASE_REVIEW = "views/case_review.py"  # relative to app/main.py, as st.switch_page wants
LIBRARY = "views/library.py"
POLL_S = 2.0  # how often progress bars re-read the database
STALLED_S = 30.0  # a queue this old with nothing running probably has no worker
STAGE_TEXT = {
    "playback": "making a browser-playable copy",
    "thumbnail": "saving the thumbnail",
    "starting": "starting",
    "frames": "analysing frames",
    "quality": "measuring image quality",
    "detection": "finishing instrument detection",
    "phase": "recognising phases",
    "motion": "measuring motion",
    "annotate": "writing the annotated video",
    "done": "saving results",
}


def library_or_stop() -> Library:
    """The case library, or a clear error (and the page stops) when it cannot be opened."""
    try:
        return get_library()
    except (ValueError, OSError, SQLAlchemyError) as exc:
        from library.config import mask_password

        st.error(f"The case library cannot be opened: {mask_password(str(exc))}. "
                 "Check SURGLENS_DATA_DIR and SURGLENS_DB_URL.")
        st.stop()


def open_case(case_id: int, collection_id: int | None = None) -> NoReturn:
    """Show the case in Case review from its start; with `collection_id`, inside that teaching set."""
    st.session_state["case_id"] = int(case_id)
    st.session_state["seek_s"] = 0.0
    st.session_state["review_case"] = None  # read ?t= afresh
    params = {"case": str(int(case_id))}
    if collection_id is not None:
        params["set"] = str(int(collection_id))
    st.switch_page(CASE_REVIEW, query_params=params)


def forget_uploads(uploads) -> None:
    """Drop `uploads` (st.file_uploader's files) from Streamlit's memory once they are ingested.

    Streamlit keeps every uploaded file in the server's memory until the browser session ends; a
    file manager without `remove_file` (another Streamlit) is left as it is.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    remove = getattr(getattr(ctx, "uploaded_file_mgr", None), "remove_file", None)
    if ctx is None or remove is None:
        return
    for upload in uploads or ():
        file_id = getattr(upload, "file_id", None)
        if file_id:
            remove(ctx.session_id, file_id)


def parse_clock(text: str) -> float:
    """Seconds of "m:ss", "h:mm:ss" or a plain number of seconds ("75", "75.5")."""
    clean = str(text or "").strip()
    try:
        if ":" not in clean:
            return float(clean)
        parts = [float(p) for p in clean.split(":")]
    except ValueError:
        raise ValueError(f"a time must look like 1:05 or 65 (seconds), got {text!r}") from None
    if len(parts) > 3 or any(p < 0 for p in parts) or any(p >= 60 for p in parts[1:]):
        raise ValueError(f"a time must look like 1:05 or 1:02:05, got {text!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


# Playback tools under Case review's player. Streamlit's video element has no speed, stepping or
# position API, so this small trusted script works on the page's first <video> (the case player):
# speed and stepping stay in the browser; "comment here" sends the player's position to Python.
_PLAYER_TOOLS_HTML = """
<div class="tools">
  <button data-step="-5" title="back 5 s">-5 s</button>
  <button data-step="-frame" title="previous frame">&#9664; frame</button>
  <button data-step="frame" title="next frame">frame &#9654;</button>
  <button data-step="5" title="forward 5 s">+5 s</button>
  <span class="sep">speed</span>
  <button data-rate="0.25">0.25&times;</button><button data-rate="0.5">0.5&times;</button>
  <button data-rate="1" class="on">1&times;</button><button data-rate="1.5">1.5&times;</button>
  <button data-rate="2">2&times;</button>
  <button data-here="1" class="here" title="pin a comment at the player's position">comment here</button>
</div>
"""
_PLAYER_TOOLS_CSS = """
.tools{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center;font:14px system-ui,sans-serif}
button{border:1px solid #ccc;background:#fff;border-radius:.4rem;padding:.15rem .5rem;cursor:pointer;color:#222}
button.on{background:#222;color:#fff}button.here{margin-left:auto;border-color:#ff4b4b;color:#ff4b4b}
.sep{color:#777;margin-left:.5rem}
"""
_PLAYER_TOOLS_JS = """
export default function(component) {
  const { parentElement, data, setTriggerValue } = component;
  const video = () => document.querySelector('[data-testid="stVideo"]') || document.querySelector('video');
  const step = 1 / Math.max((data && data.fps) || 25, 1);
  parentElement.querySelectorAll('button').forEach((b) => {
    b.onclick = () => {
      const v = video();
      if (!v) return;
      if (b.dataset.rate) {
        v.playbackRate = parseFloat(b.dataset.rate);
        parentElement.querySelectorAll('button[data-rate]').forEach((o) => o.classList.toggle('on', o === b));
      } else if (b.dataset.step) {
        const s = b.dataset.step;
        if (s.endsWith('frame')) v.pause();
        const delta = s === 'frame' ? step : s === '-frame' ? -step : parseFloat(s);
        v.currentTime = Math.max(0, Math.min(v.duration || 1e9, v.currentTime + delta));
      } else if (b.dataset.here) {
        setTriggerValue('here', v.currentTime);
      }
    };
  });
}
"""


@st.cache_resource(show_spinner=False)
def _player_tools_component():
    return st.components.v2.component("surglens.player_tools", html=_PLAYER_TOOLS_HTML, css=_PLAYER_TOOLS_CSS,
                                      js=_PLAYER_TOOLS_JS)


def player_tools(fps: float, key: str = "player_tools") -> float | None:
    """Speed, stepping and "comment here" under the player; the player's position in seconds when
    "comment here" was clicked in this run, else None."""
    result = _player_tools_component()(key=key, data={"fps": float(fps or 25.0)}, on_here_change=lambda: None)
    here = getattr(result, "here", None)
    return None if here is None else float(here)


def progress_of(case: CaseRecord) -> tuple[float, str]:
    """(fraction 0..1, one line) describing a queued or running analysis."""
    p = case.progress
    if case.status == Status.QUEUED:
        return 0.0, f"{case.title}: waiting for the analysis worker"
    stage = STAGE_TEXT.get(p.stage or "starting", p.stage or "starting")
    frames = f" {p.done}/{p.total} frames" if p.stage == "frames" and p.total else ""
    eta = f" · about {clock(p.eta_s)} left" if p.eta_s is not None and p.eta_s > 0 else ""
    return (p.fraction or 0.0), f"{case.title}: {stage}{frames}{eta}"


def _active(lib: Library, case_id: int | None) -> list[CaseRecord]:
    cases = lib.list_cases(statuses=(Status.RUNNING, Status.QUEUED), order="oldest")
    return [c for c in cases if case_id is None or c.id == case_id]


def _stalled(cases: list[CaseRecord]) -> bool:
    if not cases or any(c.status == Status.RUNNING for c in cases):
        return False
    queued_since = min(c.updated_at for c in cases)
    return (datetime.now(timezone.utc) - queued_since).total_seconds() > STALLED_S


def analysis_progress(lib: Library, case_id: int | None = None) -> list[CaseRecord]:
    """Progress bars (stage and ETA) of queued and running analyses, or only `case_id`'s.

    The bars re-read the database every POLL_S seconds, so they survive reloads and show the same in
    every tab; when one of them finishes or a new one appears, the whole page reruns.
    Returns the active cases drawn.
    """
    active = _active(lib, case_id)
    st.session_state["watching"] = tuple(c.id for c in active)
    if not active:
        return active

    @st.fragment(run_every=POLL_S)
    def bars() -> None:
        cases = _active(lib, case_id)
        if tuple(c.id for c in cases) != st.session_state["watching"]:
            st.rerun()
        for case in cases:
            fraction, text = progress_of(case)
            st.progress(fraction, text=text)
        if _stalled(cases):
            st.caption("Nothing has started for a while: is the analysis worker running? "
                       "`make run` (or `surglens serve`) starts it beside the dashboard; `surglens worker` alone also works.")

    bars()
    return active


def export_controls(label: str, write: Callable[[BinaryIO], None], file_name: str, key: str, *,
                    data_dir=None, disabled: bool = False, icon: str = ":material/folder_zip:") -> None:
    """A zip export: a download and "save to a folder on this machine".

    Under `surglens serve` (the streaming route, app/video_links.py) the zip is written to a file in
    the library's tmp/exports and downloaded from disk through a signed link; otherwise Streamlit's
    download button holds it in memory while the browser fetches it.
    """
    from app import video_links
    from library import LibraryError
    from library.export import save_export, zip_to_temp_file

    cols = st.columns([3, 2], vertical_alignment="bottom")
    if video_links.ROUTES_ACTIVE and data_dir is not None and st.context.url:
        link_key = f"{key}_link"
        if cols[0].button(label, key=f"{key}_prepare", icon=icon, disabled=disabled,
                          help="Writes the zip on the server, then gives a download link (streamed from disk)"):
            try:
                with st.spinner("Writing the export..."):
                    path = save_export(write, video_links.export_folder(data_dir), file_name)
            except (LibraryError, OSError) as exc:
                st.error(str(exc))
            else:
                st.session_state[link_key] = video_links.download_url(path, data_dir, st.context.url)
        if st.session_state.get(link_key):
            cols[0].link_button(f"Download {file_name}", st.session_state[link_key], icon=":material/download:")
    else:
        cols[0].download_button(label, data=lambda: zip_to_temp_file(write), file_name=file_name,
                                mime="application/zip", icon=icon, disabled=disabled, key=f"{key}_download")
    with cols[1].popover("Save to a folder", icon=":material/save:", disabled=disabled):
        folder = st.text_input("Folder on this machine (full path)", key=f"{key}_folder",
                               placeholder="/home/me/exports",
                               help="For large exports: written straight to disk. An existing file is never "
                                    "replaced.")
        if st.button("Save", key=f"{key}_save", icon=":material/save:"):
            try:
                with st.spinner("Writing the export..."):
                    path = save_export(write, folder, file_name)
            except (LibraryError, OSError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved as {path}")
