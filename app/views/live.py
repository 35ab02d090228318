"""Live page: instruments, tracks and the phase while a video plays, the session kept as a case when it stops.

The source is a library video or a file on this machine (played at its own frame rate), a camera
or a stream URL typed here. The analysis is analysis.live.LiveSession; this page only draws it.
"""
from __future__ import annotations

import time
from datetime import datetime

import streamlit as st

from analysis import live as live_core
from analysis.live_charts import live_phase_timeline
from analysis.moments import clock
from app.state import init_state
from app.widgets import library_or_stop, open_case
from library import LibraryError
from library.live import keep_recording, live_title
from models.annotators import InstrumentAnnotator, trace_length_for
from models.taxonomy import display_name, load_taxonomy

DISPLAY_FPS = 8.0  # frames sent to the browser per second at most; the analysis runs faster
TIMELINE_S = 120.0
MEDIA_SWEEP_S = 20.0  # how often the images the browser has already replaced are freed
UNWATCHED_S = 60.0  # a session nobody has watched for this long (the viewer left) stops; it is kept on return
SOURCES = ("Library video", "File on this machine", "Camera", "Stream URL")

init_state()
lib = library_or_stop()
st.title("Live")


def _models() -> tuple:
    """This browser session's detector and phase model (a detector is not shared between threads)."""
    models = st.session_state.get("_live_models")
    if models is None:
        models = (live_core.load_live_detector(), live_core.load_live_phase_model())
        st.session_state["_live_models"] = models
    return models


def _keep(session: live_core.LiveSession) -> None:
    """Stop the session and keep its recording as a library case queued for analysis."""
    started = st.session_state.get("_live_started")
    try:
        result = session.finish()
        if result.recording is None:
            st.session_state["live_kept"] = {"error": "no frame was read from the source, so there is nothing to keep"}
        else:
            case, created = keep_recording(lib, result.recording, title=live_title(started))
            st.session_state["live_kept"] = {"case_id": case.id, "title": case.title, "created": created,
                                             "stats": result.stats.to_dict(), "seconds": len(result.phases)}
    except (LibraryError, OSError, ValueError, RuntimeError) as exc:
        session.abort()
        st.session_state["live_kept"] = {"error": str(exc)}
    st.session_state["live_session"] = None


def _free_replaced_images() -> None:
    """Frames the browser no longer shows stay in Streamlit's media store until the run ends: free them now."""
    from streamlit.runtime import Runtime

    if Runtime.exists():
        Runtime.instance().media_file_mgr.remove_orphaned_files()


session: live_core.LiveSession | None = st.session_state["live_session"]

if session is None:
    kept = st.session_state["live_kept"]
    if kept and kept.get("error"):
        st.error(f"The live session could not be kept: {kept['error']}")
    elif kept:
        stats = kept.get("stats") or {}
        st.success(f"Kept as {kept['title']}: queued for the full analysis. "
                   f"{stats.get('frames_read', 0)} frames recorded, analysed live at "
                   f"{stats.get('mean_processed_fps', 0):.1f} fps ({stats.get('skipped_share', 0):.0%} skipped).")
        if st.button(f"Open {kept['title']} in Case review", icon=":material/movie:", key="live_open_case"):
            open_case(kept["case_id"])

    kind = st.radio("Source", SOURCES, horizontal=True, key="live_kind")
    source = None
    if kind == "Library video":
        cases = lib.list_cases(order="newest")
        if not cases:
            st.info("The library has no video yet: upload one on the Library page, or choose another source.")
        else:
            chosen = st.selectbox("Video", [c.id for c in cases], format_func={c.id: c.title for c in cases}.get,
                                  key="live_case")
            source = str(next(c.video_path for c in cases if c.id == chosen))
    elif kind == "File on this machine":
        source = st.text_input("Full path of the video file", key="live_path",
                               placeholder="/work/shared/data/cholec-clips/clip.mp4",
                               help="Played at its own frame rate, as if it came from the theatre.").strip() or None
    elif kind == "Camera":
        source = int(st.number_input("Capture device index", min_value=0, max_value=63, value=0, step=1,
                                     key="live_device", help="0 is the first camera or capture card of this server"))
    else:
        source = st.text_input("Stream URL", key="live_url", placeholder="rtsp://10.0.0.5:554/stream1",
                               help="rtsp://, rtmp:// or http(s):// only; it is opened only because you typed it "
                                    "here").strip() or None
    limit = st.number_input("Stop after (seconds of video, 0: at the end or on Stop)", min_value=0, value=0, step=10,
                            key="live_seconds")
    st.caption("Every frame is recorded; when the session stops the recording becomes a library case and gets the "
               "full analysis. Frames the analysis cannot keep up with are shown but not analysed.")
    if st.button("Start", type="primary", icon=":material/play_arrow:", disabled=source is None, key="live_start"):
        try:
            with st.spinner("Loading the models and opening the source..."):
                detector, phase = _models()
                session = live_core.LiveSession(source, detector=detector, tracker="bytetrack", phase_model=phase,
                                                max_seconds=float(limit) or None, timeline_s=TIMELINE_S,
                                                stop_unwatched_s=UNWATCHED_S)
                session.start()
        except (ValueError, OSError, RuntimeError) as exc:
            st.error(f"The live session could not start: {exc}")
        else:
            st.session_state["live_session"] = session
            st.session_state["live_kept"] = None
            st.session_state["_live_started"] = datetime.now()
            st.rerun()
    st.stop()

# ------------------------------------------------------------------ running
if st.button("Stop", type="primary", icon=":material/stop:", key="live_stop"):
    with st.spinner("Stopping and keeping the recording..."):
        _keep(session)
    st.rerun()

source_info = session.source
st.caption(f"{source_info.kind.capitalize()} {source_info.label}: {source_info.fps:g} fps, "
           f"{source_info.size[0]}×{source_info.size[1]}")
view, side = st.columns([3, 1])
image = view.empty()
with side:
    phase_box, tools_box, rate_box = st.empty(), st.empty(), st.empty()
timeline_box = st.empty()

tax = load_taxonomy()
names = list(session.class_names)
colours = [tax.tools[tax.tool_id(n)].colour if n in tax.tool_names else "#b0b0b0" for n in names]
annotator = InstrumentAnnotator(names, colours, trace_length=trace_length_for(4.0, DISPLAY_FPS))
last_draw = last_sweep = 0.0
charts = 0
while True:
    update = session.step(timeout=0.5)
    if update is None:
        if session.running:  # no frame for 0.5 s (a stalled stream): an element update lets Stop interrupt
            rate_box.caption("Waiting for frames from the source...")
            continue
        break
    now = time.monotonic()
    if now - last_draw >= 1.0 / DISPLAY_FPS:
        last_draw = now
        image.image(annotator.annotate(update.frame.rgb, update.detections),
                    caption=f"{clock(update.timestamp_s)}", width="stretch")
        tools = ", ".join(display_name(t, "tool") for t in update.tools) or "none"
        tools_box.markdown(f"**Tools in view**  \n{tools}")
        stats = update.stats
        rate_box.caption(f"Analysed {stats.processed_fps:.1f} of {stats.source_fps:g} fps "
                         f"({stats.skipped_share:.0%} of frames skipped)")
    if update.phase_updated or charts == 0:
        phase = update.phase
        phase_box.metric("Phase", display_name(phase.phase, "phase") if phase else "–",
                         f"{phase.probability:.0%} probability" if phase else "after the first second",
                         delta_color="off")
        charts += 1
        timeline_box.plotly_chart(live_phase_timeline(update.timeline, TIMELINE_S, update.timestamp_s),
                                  key=f"live_timeline_{charts}", config={"displaylogo": False})
    if now - last_sweep >= MEDIA_SWEEP_S:
        last_sweep = now
        _free_replaced_images()

# The source ended (or reached its time limit): keep the session as a case.
with st.spinner("Keeping the recording as a case..."):
    _keep(session)
st.rerun()
