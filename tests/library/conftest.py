"""Library fixtures: a library in tmp_path with a fake probe, fake videos and a fake analysis.

Every test that uses `settings` (and so `lib`, `make_case`) runs on each backend: SQLite in
tmp_path, and PostgreSQL when SURGLENS_TEST_PG_URL names a server (e.g.
postgresql+psycopg://postgres@/postgres?host=/tmp/pg); each PostgreSQL test gets a database of its
own, created before and dropped after it. Without the URL the PostgreSQL variant is skipped, or
fails when SURGLENS_REQUIRE_POSTGRES=1 (.ci/run starts a server and sets both).
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import Progress
from analysis.results import (
    ANNOTATED, CASE_SCHEMA_VERSION, DETECTIONS, TOOL_PRESENCE, CaseResult, CaseWriter, MotionReport,
)
from library import Library, Settings
from library.worker import Worker

BACKENDS = ("sqlite", "postgresql")
PG_URL_ENV = "SURGLENS_TEST_PG_URL"

FAKE_MAGIC = b"\x00\x00\x00\x18ftypisom"  # what the fake probe accepts as a video


@dataclass
class FakeInfo:
    container: str = "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str = "h264"
    width: int = 854
    height: int = 480
    fps: float = 25.0
    frame_count: int = 800
    duration_s: float = 32.0
    rotation: int = 0
    has_audio: bool = False
    bitrate: int = 500_000
    file_size: int = 0
    sha256: str = ""
    is_vfr: bool = False
    # Fields a probe must never let into the library:
    creation_time: str = "2024-03-01T10:00:00Z"
    device: str = "EndoCam 3000"
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fake_probe(path: Path) -> FakeInfo:
    data = Path(path).read_bytes()
    if not data.startswith(FAKE_MAGIC):
        raise ValueError(f"no video stream in {str(path)!r}")
    return FakeInfo(file_size=len(data), path=str(path))


def fake_video(tmp_path: Path, name: str = "clip.mp4", payload: bytes = b"frames") -> Path:
    path = tmp_path / name
    path.write_bytes(FAKE_MAGIC + payload)
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request) -> str | None:
    """None for SQLite in the data folder, else the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    server = os.environ.get(PG_URL_ENV)
    if not server:
        reason = f"PostgreSQL variant: set {PG_URL_ENV}=postgresql+psycopg://... to run it (.ci/run starts a server)"
        if os.environ.get("SURGLENS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SURGLENS_REQUIRE_POSTGRES=1 but {PG_URL_ENV} is not set")
        pytest.skip(reason)
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"surglens_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:  # FORCE: engines a test left open must not keep it alive
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def settings(db_url: str | None, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", db_url=db_url, heartbeat_s=0.05, stale_after_s=30)


@pytest.fixture
def lib(settings: Settings):
    library = Library(settings, probe=fake_probe)
    yield library
    library.close()


@pytest.fixture
def make_case(lib: Library, tmp_path: Path) -> Callable[..., int]:
    """Ingest a distinct fake video; returns the case id."""
    counter = iter(range(10_000))

    def make(payload: bytes | None = None) -> int:
        n = next(counter)
        case, created = lib.ingest(fake_video(tmp_path, f"v{n}.mp4", payload or f"video {n}".encode()))
        assert created
        return case.id

    return make


@pytest.fixture
def analysed(lib: Library, make_case) -> int:
    """A case of the fake probe (854x480, 25 fps, 32 s) analysed by `fake_analyze`: Preparation 0-12 s, Calot
    triangle dissection 12-32 s, a Grasper boxed at 1 s."""
    case_id = make_case()
    Worker(lib, fake_analyze).run_once()
    return case_id


def run_together(task: Callable[[], None], n: int) -> list[BaseException]:
    """Run `task` in `n` threads at once (released together by a barrier); returns what they raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            task()
        except BaseException as exc:  # collected for the caller to assert on
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def write_fake_results(out_dir: Path, phases: list[tuple[float, float, str]] | None = None,
                       tools: dict[str, list[int]] | None = None, duration_s: float = 32.0) -> CaseResult:
    """A plausible case, written and published through the case writer like the pipeline does."""
    phases = phases if phases is not None else [(0, 12, "Preparation"), (12, 32, "carlot-triangle-dissection")]
    tools = tools if tools is not None else {"Grasper": [1, 2, 3, 4], "Hook": [5, 6]}
    writer = CaseWriter(out_dir)
    seconds = np.arange(int(duration_s))
    presence = pd.DataFrame({"second": seconds})
    for name in ("Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator", "SpecimenBag"):
        col = np.zeros(len(seconds), dtype=np.float32)
        col[tools.get(name, [])] = 0.9
        presence[name] = col
    writer.write_table(TOOL_PRESENCE, presence)
    writer.write_table(DETECTIONS, pd.DataFrame({
        "x1": [1.0], "y1": [2.0], "x2": [30.0], "y2": [40.0], "confidence": [0.9], "class_id": [0], "tracker_id": [1],
        "frame_index": [25], "timestamp_s": [1.0]}))
    writer.write_segments([{"start_s": a, "end_s": b, "label": label, "confidence": 0.8} for a, b, label in phases])
    writer.write_motion(MotionReport.from_dict({"per_tool": {}}))
    writer.file(ANNOTATED).write_bytes(b"annotated-mp4")
    case = {
        "schema_version": CASE_SCHEMA_VERSION,
        "video": FakeInfo(duration_s=duration_s).to_dict(),
        "sampling": {"sample_fps": 1.0, "frames_analysed": int(duration_s), "resize": None},
        "stages": {"motion": {"summary": {"per_tool": {"Grasper": {"time_on_screen_s": 4.0, "path_length_norm": 0.5,
                                                                    "mean_speed_norm_s": 0.1, "idle_fraction": 0.2}}}}},
    }
    result = writer.publish(CaseResult.from_dict(writer.path, case))
    clip = result.clip_file(0.0, 2.0)  # one annotated clip cut on demand
    clip.parent.mkdir()
    clip.write_bytes(b"clip-mp4")
    return result


def fake_analyze(video_path: Path, out_dir: Path, config, progress) -> CaseResult:
    """Reports progress for 4 batches, then writes a case folder."""
    assert video_path.exists()
    for done in (8, 16, 24, 32):
        progress(Progress("frames", done, 32, (32 - done) / 10))
    return write_fake_results(out_dir)
