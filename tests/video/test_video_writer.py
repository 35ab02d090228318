from __future__ import annotations

import av
import numpy as np
import pytest

from video import VideoWriter, probe
from video.probe import _top_level_boxes


def _frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    w, h = size
    ramp = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    return [np.ascontiguousarray(np.broadcast_to(np.roll(ramp, 3 * i, axis=1), (h, w, 3))) for i in range(n)]


def _decode(path) -> list[np.ndarray]:
    """Read back with PyAV directly, independently of video.FrameReader."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_writes_browser_playable_h264(tmp_path):
    path = tmp_path / "out" / "clip.mp4"
    frames = _frames(30, (128, 96))
    with VideoWriter(path, fps=15, size=(128, 96)) as writer:
        for rgb in frames:
            writer.write(rgb)
    info = probe(path)
    assert (info.codec, info.pix_fmt, info.container) == ("h264", "yuv420p", "mp4")
    assert (info.width, info.height, info.fps, info.frame_count) == (128, 96, 15.0, 30)
    boxes = [kind for kind, *_ in _top_level_boxes(path)]
    assert boxes.index(b"moov") < boxes.index(b"mdat")  # faststart: playable while downloading
    decoded = _decode(path)
    assert len(decoded) == 30
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(decoded, frames)) < 4.0


def test_fractional_fps(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, fps=30000 / 1001, size=(64, 48)) as writer:
        for rgb in _frames(10, (64, 48)):
            writer.write(rgb)
    assert probe(path).fps == pytest.approx(29.97, abs=0.001)


def test_odd_size_is_cropped_to_even(tmp_path):
    path = tmp_path / "odd.mp4"
    frames = _frames(5, (65, 49))
    with VideoWriter(path, fps=10, size=(65, 49)) as writer:
        for rgb in frames:
            writer.write(rgb)
    assert writer.size == (64, 48)
    info = probe(path)
    assert (info.width, info.height, info.frame_count) == (64, 48, 5)
    assert np.abs(_decode(path)[0].astype(int) - frames[0][:48, :64]).mean() < 4.0


def test_error_inside_the_block_leaves_nothing_behind(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="stage failed"):
        with VideoWriter(path, fps=10, size=(64, 48)) as writer:
            writer.write(_frames(1, (64, 48))[0])
            raise RuntimeError("stage failed")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_only_on_success(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous version")
    with pytest.raises(ValueError, match="frame must be"):
        with VideoWriter(path, fps=10, size=(64, 48)) as writer:
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert path.read_bytes() == b"previous version" and len(list(tmp_path.iterdir())) == 1
    with VideoWriter(path, fps=10, size=(64, 48)) as writer:
        writer.write(_frames(1, (64, 48))[0])
    assert probe(path).frame_count == 1


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((48, 64), np.uint8), r"frame must be \(48, 64, 3\) uint8 RGB for '.*x\.mp4', got shape \(48, 64\)"),
        (np.zeros((48, 64, 3), np.float32), "dtype float32"),
        (np.zeros((64, 48, 3), np.uint8), r"got shape \(64, 48, 3\)"),
        ([[0, 0, 0]], "got list"),
    ],
)
def test_bad_frames_are_rejected(tmp_path, frame, message):
    writer = VideoWriter(tmp_path / "x.mp4", fps=10, size=(64, 48))
    with pytest.raises(ValueError, match=message):
        writer.write(frame)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fps": 0}, "fps must be a positive number, got 0"),
        ({"fps": float("inf")}, "got inf"),
        ({"size": (1, 48)}, r"size must be \(width, height\) with integers >= 2, got \(1, 48\)"),
        ({"size": (64.0, 48)}, r"got \(64\.0, 48\)"),
        ({"crf": 60}, "crf must be within 0..51"),
    ],
)
def test_bad_settings_are_rejected(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        VideoWriter(tmp_path / "x.mp4", **{"fps": 10, "size": (64, 48), **settings})
    assert list(tmp_path.iterdir()) == []


def test_closing_without_frames_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"no frames were written to '.*empty\.mp4'"):
        with VideoWriter(tmp_path / "empty.mp4", fps=10, size=(64, 48)):
            pass
    assert list(tmp_path.iterdir()) == []
