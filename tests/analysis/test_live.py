"""LiveSession on a tiny file played at its real rate, with a stub detector (fast) and a stub phase model."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from analysis.live import LiveSession, PhaseSecond, parse_source, redact_url
from models.taxonomy import load_taxonomy
from tests.analysis.live_stubs import TOOLS, StubDetector, StubPhaseModel
from tests.conftest import shared_path
from video import probe

PHASES = load_taxonomy().phase_names


@pytest.fixture(scope="module")
def clip(make_video) -> Path:
    """3 s at 10 fps (30 frames), 96x64."""
    return make_video("live_3s_10fps.mp4", n_frames=30, fps=10)


def run(session: LiveSession):
    session.start()  # loads models and warms them up: not part of the real-time run
    t0 = time.monotonic()
    updates = list(session)
    result = session.finish()
    return updates, result, time.monotonic() - t0


def test_real_rate_phase_per_second_and_recording(clip: Path, tmp_path: Path):
    model = StubPhaseModel()
    session = LiveSession(clip, detector=StubDetector(), tracker=None, phase_model=model,
                          record_to=tmp_path / "rec.mp4")
    updates, result, wall = run(session)
    assert session.source.fps == pytest.approx(10.0)  # read from the file
    # Real rate: the last frame is due at 2.9 s of wall time after the first.
    assert 2.7 <= wall <= 4.5, wall
    stamps = [u.timestamp_s for u in updates]
    first_wall = result.stats.elapsed_s
    assert first_wall == pytest.approx(2.9, abs=0.4)
    assert stamps == sorted(stamps)
    assert result.stats.frames_read == 30
    assert result.stats.skipped_share < 0.2  # a fast detector keeps up with every (or nearly every) frame
    # One phase output per second of video, in order, each from that second's evidence.
    assert [p.second for p in result.phases] == [0, 1, 2]
    assert all(isinstance(p, PhaseSecond) and p.phase == "CalotTriangleDissection" for p in result.phases)
    assert len(model.evidence) == 3
    assert model.evidence[0][TOOLS.index("Grasper")] == pytest.approx(0.9)
    assert sum(u.phase_updated for u in updates) == 2  # seconds 0 and 1 close during; 2 at finish()
    assert updates[-1].tools == ("Grasper",)
    assert updates[-1].timeline and updates[-1].timeline[-1].second == 1
    # The recording is every frame read, at the source's rate.
    assert result.recording == tmp_path / "rec.mp4" and result.frames_recorded == 30
    info = probe(result.recording, content_hash=False)
    assert info.frame_count == 30 and info.fps == pytest.approx(10.0) and (info.width, info.height) == (96, 64)


def test_slow_detector_skips_frames_and_keeps_real_time(clip: Path, tmp_path: Path):
    session = LiveSession(clip, detector=StubDetector(delay=0.25), tracker="bytetrack", phase_model=StubPhaseModel(),
                          record_to=tmp_path / "rec.mp4")
    updates, result, wall = run(session)
    assert wall <= 4.5, wall  # never falls behind the video: it skips instead
    stats = result.stats
    assert stats.frames_read == 30
    assert 6 <= stats.frames_processed <= 16, stats  # about 4 per second at 0.25 s each
    assert 0.45 <= stats.skipped_share <= 0.8
    assert 2.5 <= stats.mean_processed_fps <= 4.5
    assert [p.second for p in result.phases] == [0, 1, 2]
    assert result.frames_recorded == 30  # every frame is recorded, analysed or not
    # Tracked: the moving grasper keeps one id.
    ids = {int(t) for u in updates for t in u.detections.tracker_id}
    assert ids == {1}


def test_max_seconds_stop_and_no_phase(clip: Path, tmp_path: Path):
    session = LiveSession(clip, detector=StubDetector(), tracker=None, phase_model=None, max_seconds=1.5,
                          record_to=tmp_path / "rec.mp4")
    updates, result, _ = run(session)
    assert result.stats.frames_read == 15
    assert result.phases == [] and all(u.phase is None for u in updates)
    assert probe(result.recording, content_hash=False).frame_count == 15


def test_stop_from_another_thread(clip: Path, tmp_path: Path):
    import threading

    session = LiveSession(clip, detector=StubDetector(), tracker=None, phase_model=None, record_to=tmp_path / "r.mp4")
    session.start()
    threading.Timer(0.8, session.stop).start()
    updates = list(session)
    result = session.finish()
    assert 4 <= result.stats.frames_read <= 12
    assert updates and result.recording.exists()


@pytest.mark.parametrize("source, kind", [(0, "device"), ("2", "device"), ("rtsp://cam.local/live", "stream"),
                                          ("https://example.org/s.m3u8", "stream")])
def test_parse_source(source, kind):
    assert parse_source(source)[0] == kind


@pytest.mark.parametrize("source, match", [
    ("", "a live source"), (-1, "0 or more"), ("ftp://host/x.mp4", "stream URLs must use"),
    ("file:///etc/passwd", "stream URLs must use"), ("/no/such/video.mp4", "no such video file"), (True, "a live source"),
])
def test_bad_sources(source, match):
    with pytest.raises(ValueError, match=match):
        LiveSession(source, detector=StubDetector(), phase_model=None)


def test_url_credentials_are_not_shown():
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/stream1?token=x") == "rtsp://10.0.0.5:554/stream1"


def test_shipped_models_on_a_real_clip(tmp_path: Path):
    """The shipped detector at 320 px, ByteTrack and the shipped causal phase model, 5 s of a real clip."""
    clips = sorted(shared_path("cholec-clips").glob("*.mp4"))
    if not clips:
        pytest.skip("shared cholec-clips are not available")
    session = LiveSession(clips[0], max_seconds=5, record_to=tmp_path / "rec.mp4")
    updates, result, wall = run(session)
    assert wall <= 8.0
    assert [p.second for p in result.phases] == [0, 1, 2, 3, 4]
    assert all(p.phase in PHASES for p in result.phases)
    assert result.frames_recorded == 125 and result.stats.frames_processed >= 5
    assert any(len(u.detections) for u in updates)
    print("real clip live:", result.stats.to_dict())


def test_an_unwatched_session_stops_reading(clip: Path, tmp_path: Path):
    session = LiveSession(clip, detector=StubDetector(), tracker=None, phase_model=None, stop_unwatched_s=0.5,
                          record_to=tmp_path / "r.mp4")
    session.start()
    time.sleep(1.5)  # nobody calls step(): the viewer left
    assert session.unwatched
    assert session.step() is not None and session.step() is None  # the newest frame read, then the end
    assert not session.running
    result = session.finish()
    assert 3 <= result.frames_recorded <= 10  # what was read before it stopped is still kept


@pytest.fixture
def http_folder(tmp_path: Path):
    """A loopback HTTP server over tmp_path/www (a stand-in for a camera's stream URL)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_stream_url_typed_explicitly(clip: Path, tmp_path: Path, http_folder):
    root, base = http_folder
    (root / "cam.mp4").write_bytes(clip.read_bytes())
    session = LiveSession(f"{base}/cam.mp4", detector=StubDetector(), tracker=None, phase_model=None,
                          record_to=tmp_path / "r.mp4")
    updates, result, _ = run(session)
    assert session.source.kind == "stream" and session.source.fps == pytest.approx(10.0)
    assert result.frames_recorded == 30 and updates


def test_a_stream_cannot_reach_local_files(tmp_path: Path, http_folder):
    root, base = http_folder
    (root / "list.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    session = LiveSession(f"{base}/list.m3u8", detector=StubDetector(), tracker=None, phase_model=None,
                          record_to=tmp_path / "r.mp4")
    with pytest.raises(ValueError, match="cannot be opened|no video|gives no frames"):
        session.start()


class FakeCapture:
    """cv2.VideoCapture(index) stand-in: 20 frames at 20 fps, no frame rate reported (as many webcams)."""

    def __init__(self, index):
        self.index, self.left = index, 20

    def isOpened(self):
        return self.index == 0

    def get(self, prop):
        return 0.0

    def read(self):
        if not self.left:
            return False, None
        self.left -= 1
        time.sleep(0.05)
        return True, np.full((48, 64, 3), 40, np.uint8)

    def release(self):
        pass


def test_capture_device_rate_is_measured(monkeypatch, tmp_path: Path):
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    session = LiveSession(0, detector=StubDetector(), tracker=None, phase_model=None, record_to=tmp_path / "r.mp4")
    updates, result, _ = run(session)
    assert session.source.kind == "device" and session.source.label == "camera 0"
    assert session.source.fps == pytest.approx(20, rel=0.3)  # measured on the first frames, never assumed
    assert result.frames_recorded == 20 and updates
    with pytest.raises(ValueError, match="capture device 3 cannot be opened"):
        LiveSession(3, detector=StubDetector(), tracker=None, phase_model=None).start()


def test_reset_runs_the_same_settings_again(clip: Path, tmp_path: Path):
    model = StubPhaseModel()
    session = LiveSession(clip, detector=StubDetector(), tracker="bytetrack", phase_model=model, max_seconds=1.2,
                          record_to=tmp_path / "r.mp4")
    first = run(session)[1]
    session.reset()
    assert session.phases == [] and session.source is None
    second = run(session)[1]
    assert [p.second for p in first.phases] == [p.second for p in second.phases] == [0, 1]
    assert second.stats.frames_read == 12 and second.stats.lag_s < 0.5


@pytest.mark.parametrize("settings, match", [
    ({"max_seconds": 0}, "max_seconds must be a positive number, got 0"),
    ({"max_seconds": True}, "max_seconds must be a positive number, got True"),
    ({"stop_unwatched_s": -1.0}, "stop_unwatched_s must be a positive number, got -1.0"),
    ({"imgsz": 8}, "imgsz must be a whole number of pixels of at least 32, got 8"),
    ({"timeline_s": 0}, "timeline_s must be positive, got 0"),
])
def test_bad_settings(clip: Path, settings, match):
    with pytest.raises(ValueError, match=match):
        LiveSession(clip, detector=StubDetector(), phase_model=None, **settings)
