from __future__ import annotations

import av
import numpy as np
import pytest

from video import Frame, FrameReader, cut_clip, probe
from video.probe import _top_level_boxes


def _markers(path, marker) -> list[int]:
    with av.open(str(path)) as container:
        return [marker(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _faststart(path) -> bool:
    boxes = [kind for kind, *_ in _top_level_boxes(path)]
    return boxes.index(b"moov") < boxes.index(b"mdat")


def test_copy_starts_at_the_keyframe_before_start(tiny_video, tmp_path, marker):
    out = cut_clip(tiny_video, tmp_path / "copy.mp4", 1.0, 1.6)  # keyframes every 10 frames (0.4 s)
    assert out == tmp_path / "copy.mp4"
    info = probe(out)
    assert (info.codec, info.pix_fmt, info.fps) == ("h264", "yuv420p", 25.0) and _faststart(out)
    markers = _markers(out, marker)
    assert markers[:20] == [i % 30 for i in range(20, 40)] and 20 <= len(markers) <= 23
    reader = FrameReader(out, sample_fps="all", strict=True)
    assert [f.timestamp_s for f in reader][0] == 0.0 and reader.warnings == []


def test_reencode_is_frame_exact(tiny_video, tmp_path, marker):
    out = cut_clip(tiny_video, tmp_path / "exact.mp4", 1.0, 1.6, reencode=True)
    info = probe(out)
    assert (info.codec, info.frame_count, info.fps) == ("h264", 15, 25.0) and _faststart(out)
    assert _markers(out, marker) == [i % 30 for i in range(25, 40)]


def test_transform_gets_source_frames_and_may_resize(tiny_video, tmp_path):
    seen: list[tuple[int, float]] = []

    def crop_and_mark(frame: Frame) -> np.ndarray:
        seen.append((frame.index, frame.timestamp_s))
        out = frame.rgb[:, :80].copy()
        out[-8:, -8:] = (255, 0, 0)
        return out

    out = cut_clip(tiny_video, tmp_path / "annotated.mp4", 0.4, 0.8, transform=crop_and_mark)
    assert seen == [(i, pytest.approx(i / 25)) for i in range(10, 20)]
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (80, 64, 10)
    with av.open(str(out)) as container:
        corner = next(container.decode(video=0)).to_ndarray(format="rgb24")[-6:, -6:].mean(axis=(0, 1))
    assert corner[0] > 200 and corner[1] < 60


def test_non_h264_source_is_reencoded(make_video, tmp_path, marker):
    source = make_video("legacy.avi", n_frames=30, fmt="avi", codec="mpeg4")
    out = cut_clip(source, tmp_path / "from_avi.mp4", 0.2, 0.6)
    info = probe(out)
    assert (info.codec, info.container, info.frame_count) == ("h264", "mp4", 10)
    assert _markers(out, marker) == list(range(5, 15))


def test_failing_transform_leaves_no_file(tiny_video, tmp_path):
    def broken(frame: Frame) -> np.ndarray:
        if frame.index > 12:
            raise RuntimeError("overlay failed")
        return frame.rgb

    with pytest.raises(RuntimeError, match="overlay failed"):
        cut_clip(tiny_video, tmp_path / "half.mp4", 0.4, 1.2, transform=broken)
    assert list(tmp_path.iterdir()) == []


BAD_WINDOWS = [
    ((-0.5, 1.0), {}, r"clip start_s must be >= 0, got -0\.5"),
    ((1.0, 1.0), {}, r"clip start_s \(1\.0\) must be before end_s \(1\.0\)"),
    ((1.5, 0.5), {}, r"clip start_s \(1\.5\) must be before end_s \(0\.5\)"),
    ((1.0, 9.0), {}, r"clip end_s \(9\.0\) is past the end of '.*tiny\.mp4' \(2\.400 s\)"),
    ((0.0, 1.0), {"reencode": False, "transform": lambda f: f.rgb}, "a transform needs re-encoding"),
]


@pytest.mark.parametrize(("window", "options", "message"), BAD_WINDOWS, ids=[m[:24] for *_, m in BAD_WINDOWS])
def test_bad_windows_are_rejected(tiny_video, tmp_path, window, options, message):
    with pytest.raises(ValueError, match=message):
        cut_clip(tiny_video, tmp_path / "x.mp4", *window, **options)
    assert list(tmp_path.iterdir()) == []


def test_clip_onto_its_source_is_rejected(tiny_video):
    with pytest.raises(ValueError, match="must differ from its source"):
        cut_clip(tiny_video, tiny_video, 0.0, 1.0)


def test_real_clip_copy(cholec_clips, tmp_path):
    out = cut_clip(cholec_clips[0], tmp_path / "real.mp4", 12.0, 14.0)
    info = probe(out)
    assert (info.codec, info.width, info.height, info.fps) == ("h264", 854, 480, 25.0) and _faststart(out)
    assert info.duration_s >= 2.0
    reader = FrameReader(out, sample_fps="all", strict=True, resize=(214, 120))
    assert sum(1 for _ in reader) == info.frame_count and reader.warnings == []
