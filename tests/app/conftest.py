"""Dashboard fixtures: a library in tmp_path (through SURGLENS_DATA_DIR) with tiny real videos and fake analyses.

No model runs here: `fake_analyze` writes a plausible case folder (tracks, presence, phases, motion,
annotated video) the way the pipeline does, and the real worker records it.
"""
from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from analysis.motion import motion_report, tool_presence_per_second
from analysis.results import ANNOTATED, DETECTIONS, TOOL_PRESENCE, CaseResult, CaseWriter, MotionReport, Sampling
from library import Library, Settings
from library.worker import Worker
from models.taxonomy import load_taxonomy
from tests.conftest import REPO
from video import probe
from video.writer import VideoWriter

MAIN = str(REPO / "app" / "main.py")
SIZE = (96, 64)
FPS = 10
DURATION_S = 6.0
PHASES = [(0.0, 2.0, "Preparation"), (2.0, 6.0, "CalotTriangleDissection")]


def make_video(path: Path, seconds: float = DURATION_S, fps: int = FPS, size: tuple[int, int] = SIZE, seed: int = 0) -> Path:
    """A tiny real H.264 mp4 whose frames differ (so every file has its own hash)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    with VideoWriter(path, fps=fps, size=size) as writer:
        for i in range(int(seconds * fps)):
            writer.write(np.roll(base, i, axis=1))
    return path


def fake_tracks(duration_s: float = DURATION_S) -> pd.DataFrame:
    """A grasper moving right for the whole video (track 1) and a clipper at 3-4 s (track 2), at 1 fps."""
    names = load_taxonomy().tool_names
    rows = []
    for t in np.arange(0.0, duration_s, 1.0):
        rows.append(dict(x1=10 + 8 * t, y1=20, x2=30 + 8 * t, y2=40, confidence=0.9, class_id=0, tracker_id=1, timestamp_s=t))
        if 3 <= t <= 4:
            rows.append(dict(x1=50, y1=10, x2=70, y2=30, confidence=0.8, class_id=names.index("Clipper"), tracker_id=2,
                             timestamp_s=t))
    table = pd.DataFrame(rows)
    table["frame_index"] = (table["timestamp_s"] * FPS).astype(int)
    return table.astype({"class_id": "int64", "tracker_id": "int64"})


def write_case(out_dir: Path, video_path: Path, phases: list[tuple[float, float, str]] = PHASES,
               tables: dict[str, pd.DataFrame] | None = None, segments: list[dict[str, Any]] | None = None) -> CaseResult:
    """A case like analysis.analyze writes it, at 1 fps, published through the case writer.

    `tables` adds case tables (e.g. anatomy.parquet); `segments` replaces the segments made from `phases`."""
    info = probe(video_path, content_hash=False)
    writer = CaseWriter(out_dir)
    names = load_taxonomy().tool_names
    tracks = fake_tracks(info.duration_s)
    writer.write_table(DETECTIONS, tracks)
    writer.write_table(TOOL_PRESENCE, tool_presence_per_second(tracks, names, info.duration_s))
    segments = segments or [{"start_s": a, "end_s": b, "label": label, "confidence": 0.8} for a, b, label in phases]
    writer.write_segments(segments)
    for name, table in (tables or {}).items():
        writer.write_table(name, table)
    writer.write_motion(MotionReport.from_dict(motion_report(tracks, names, (info.width, info.height), 1.0, segments)))
    make_video(writer.file(ANNOTATED), seconds=info.duration_s, fps=1)
    sampling = Sampling.of(info, 1.0, int(info.duration_s), None)
    return writer.publish(CaseResult(writer.path, replace(info, path=""), sampling, stages={}))


def fake_analyze(video_path: Path, out_dir: Path, config, progress) -> CaseResult:
    return write_case(out_dir, video_path)


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Library:
    """The library the pages open (SURGLENS_DATA_DIR in tmp_path), with empty Streamlit caches."""
    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SURGLENS_DB_URL", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    lib = Library(Settings.from_env(heartbeat_s=0.05))
    yield lib
    lib.close()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def add_case(library: Library, tmp_path: Path) -> Callable[..., int]:
    """Ingest a new tiny video and, unless `analyse=False`, analyse it with `analyze` (default fake_analyze)."""
    counter = iter(range(1000))

    def add(analyse: bool = True, analyze: Callable = fake_analyze, name: str = "Patient_Smith_2024-03-01.mp4") -> int:
        n = next(counter)
        folder = tmp_path / f"upload{n}"
        folder.mkdir()
        case, created = library.ingest(make_video(folder / name, seed=n))
        assert created
        if analyse:
            Worker(library, analyze=analyze, poll_s=0.01).run(once=True)
        return case.id

    return add


def open_page(page: str, **state: Any) -> AppTest:
    """Run the app (app/main.py, st.navigation) on `page` ("library", "case_review", ...) with session `state`."""
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Empty Streamlit caches (cached models and data) before the test, and no cached model after it."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()


def run_page(page: str, timeout: float = 60) -> AppTest:
    """app/views/`page`.py run on its own (not through app/main.py), checked to raise nothing."""
    at = AppTest.from_file(str(REPO / "app" / "views" / f"{page}.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def upload_to(page: str, *files: tuple[str, bytes, str], timeout: float = 120) -> AppTest:
    """`run_page` with `files` ((name, data, mime) each) put into the page's file uploaders in order."""
    at = run_page(page, timeout)
    for uploader, file in enumerate(files):
        at.file_uploader[uploader].set_value(file)
    at.run()
    assert not at.exception, at.exception
    return at


def figures(at: AppTest) -> dict[str, go.Figure]:
    """The page's plotly charts by widget key (charts without a key by their element id)."""
    out = {}
    for chart in at.get("plotly_chart"):
        key = chart.proto.id.rsplit("-", 1)[-1] if "-" in chart.proto.id else chart.proto.id
        out[key] = go.Figure(_decoded(json.loads(chart.proto.spec)), skip_invalid=True)
    return out


def _decoded(value: Any) -> Any:
    """Plotly's JSON with its base64 arrays ({"dtype", "bdata", "shape"}) turned back into lists."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            return array.reshape([int(n) for n in str(shape).split(",")] if shape else -1).tolist()
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def texts(at: AppTest) -> str:
    """Every text the page shows (titles, markdown, captions, alerts, button labels, metric labels)."""
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "success", "warning", "error", "toast"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [str(b.label) for b in at.button]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)
