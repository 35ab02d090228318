from __future__ import annotations

import importlib.util
import math
import sys

import av
import numpy as np
import pytest

import video.reader
from video import CorruptVideoError, Frame, FrameReader

AVAILABLE = [b for b, module in (("decord", "decord"), ("opencv", "cv2"), ("pyav", "av")) if importlib.util.find_spec(module)]


def _rule(timestamps: list[float], fps: float) -> list[int]:
    """Reference sampling: for k = 0, 1, ... the first frame with timestamp >= k / fps."""
    picked, k = [], 0
    for i, ts in enumerate(timestamps):
        if ts >= k / fps - 1e-9:
            picked.append(i)
            k = math.floor(ts * fps + 1e-9) + 1
    return picked


def _pyav_frames(path) -> list[tuple[float, np.ndarray]]:
    """Every frame decoded straight with PyAV: the reference the reader is checked against."""
    with av.open(str(path)) as container:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_all_frames_in_order_with_timestamps(tiny_video, marker, backend):
    reader = FrameReader(tiny_video, sample_fps="all", backend=backend)
    frames = list(reader)
    assert reader.backend == backend and reader.warnings == []
    assert [f.index for f in frames] == list(range(60))
    assert [f.timestamp_s for f in frames] == pytest.approx([i / 25 for i in range(60)])
    assert [marker(f.rgb) for f in frames] == [i % 30 for i in range(60)]
    assert all(isinstance(f, Frame) and f.rgb.shape == (64, 96, 3) and f.rgb.dtype == np.uint8 for f in frames)
    reference = _pyav_frames(tiny_video)
    assert max(np.abs(f.rgb.astype(int) - ref.astype(int)).mean() for f, (_, ref) in zip(frames, reference)) < 2.0


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("sample_fps", [1.0, 3.0, 10.0, 25.0, 60.0])
def test_sampling_follows_the_timestamp_rule(tiny_video, backend, sample_fps):
    reader = FrameReader(tiny_video, sample_fps=sample_fps, backend=backend, skip_nonref=False)
    frames = list(reader)
    expected = _rule([i / 25 for i in range(60)], sample_fps)
    assert [f.index for f in frames] == expected
    assert reader.expected_count() == len(expected)


def test_default_is_one_frame_per_second(tiny_video):
    exact = list(FrameReader(tiny_video, skip_nonref=False))
    assert [(f.index, f.timestamp_s) for f in exact] == [(0, 0.0), (25, 1.0), (50, 2.0)]
    reader = FrameReader(tiny_video)  # sparse: only reference frames are decoded
    frames = list(reader)
    assert reader.skip_nonref and reader.backend == "pyav" and reader.expected_count() == 3
    assert [round(f.timestamp_s) for f in frames] == [0, 1, 2]
    assert all(0 <= f.timestamp_s - k <= 3 / 25 + 1e-6 and f.index == round(f.timestamp_s * 25)
               for k, f in enumerate(frames))


def test_skipping_non_reference_frames_serves_each_target_with_a_nearby_frame(tiny_video, marker):
    all_frames = {f.index: f for f in FrameReader(tiny_video, sample_fps="all")}
    for sample_fps in (1.0, 2.0, 5.0):
        frames = list(FrameReader(tiny_video, sample_fps=sample_fps, skip_nonref=True))
        assert len(frames) == len(_rule([i / 25 for i in range(60)], sample_fps))
        for k, f in enumerate(frames):
            assert 0 <= f.timestamp_s - k / sample_fps <= 3 / 25 + 1e-6  # a reference frame within 3 frames
            assert marker(f.rgb) == f.index % 30 and f.timestamp_s == pytest.approx(all_frames[f.index].timestamp_s)


@pytest.mark.parametrize("settings, match", [
    ({"sample_fps": 1.0, "backend": "opencv", "skip_nonref": True}, "skip_nonref needs backend 'pyav', got 'opencv'"),
])
def test_skipping_needs_pyav(tiny_video, settings, match):
    with pytest.raises(ValueError, match=match):
        FrameReader(tiny_video, **settings)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_resize_on_the_fly(tiny_video, backend):
    frames = list(FrameReader(tiny_video, sample_fps=5, resize=(48, 30), backend=backend))
    assert frames and all(f.rgb.shape == (30, 48, 3) for f in frames)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_time_window(tiny_video, backend):
    reader = FrameReader(tiny_video, sample_fps="all", backend=backend, start_s=0.5, end_s=1.0)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(13, 25))  # 0.52 s .. 0.96 s
    assert reader.expected_count() == 12


def test_variable_frame_rate_is_sampled_by_timestamp(vfr_video, marker):
    reader = FrameReader(vfr_video, sample_fps=2)
    assert reader.backend == "pyav" and reader.info.is_vfr
    frames = list(reader)
    truth = [t for t, _ in _pyav_frames(vfr_video)]
    assert [f.index for f in frames] == _rule(truth, 2) == [0, 6, 9, 10]
    assert [f.timestamp_s for f in frames] == pytest.approx([0.0, 1.0, 1.5, 2.0])
    assert [marker(f.rgb) for f in frames] == [0, 6, 9, 10]
    assert reader.expected_count() == 4


def test_forcing_a_cfr_backend_on_vfr_warns(vfr_video):
    reader = FrameReader(vfr_video, sample_fps="all", backend="opencv")
    assert len(list(reader)) == 12
    assert any("variable frame rate" in w for w in reader.warnings)


@pytest.mark.parametrize("backend", ["auto", *(b for b in AVAILABLE if b != "decord")])
def test_rotated_video_is_turned_upright(make_video, backend):
    path = make_video("portrait.mp4", n_frames=5, rotation=90)
    raw = _pyav_frames(path)[0][1]  # as stored: 64 x 96
    reader = FrameReader(path, sample_fps="all", backend=backend)
    frames = list(reader)
    assert reader.backend != "decord" and len(frames) == 5
    assert frames[0].rgb.shape == (96, 64, 3)
    assert np.abs(frames[0].rgb.astype(int) - np.rot90(raw, k=1)).mean() < 1.0  # 90 degrees counter-clockwise
    assert all(f.rgb.shape == (48, 32, 3) for f in FrameReader(path, sample_fps="all", resize=(32, 48), backend=backend))


@pytest.mark.skipif("decord" not in AVAILABLE, reason="decord not installed")
def test_decord_refuses_rotated_video(make_video):
    with pytest.raises(ValueError, match=r"backend 'decord' cannot read rotated video \(270 degrees\)"):
        FrameReader(make_video("portrait.mp4", n_frames=5, rotation=90), backend="decord")


def _last_good(message: str) -> float:
    return float(message.split("last good frame at ")[1].split(" s")[0])


@pytest.mark.parametrize("backend", AVAILABLE)
def test_corruption_yields_readable_frames_and_warns(corrupt_video, tiny_video, marker, backend):
    reader = FrameReader(corrupt_video, sample_fps="all", backend=backend)
    frames = list(reader)
    indices = [f.index for f in frames]
    assert 10 < len(frames) < 60 and indices == sorted(set(indices))
    clean = [rgb for _, rgb in _pyav_frames(tiny_video)]
    intact = next(i for i, f in enumerate(frames) if f.index != i)  # frames before the damage came through
    assert intact > 10
    assert all(np.abs(f.rgb.astype(int) - clean[f.index]).mean() < 2 for f in frames[:intact])
    assert [marker(f.rgb) for f in frames[:intact]] == [i % 30 for i in range(intact)]
    assert indices[-1] == 59  # and decoding resumed after it
    problems = [w for w in reader.warnings if w.startswith("corrupt video: damaged data")]
    assert problems and _last_good(problems[0]) == pytest.approx(frames[intact - 1].timestamp_s)


@pytest.mark.parametrize("backend", ["auto", *AVAILABLE])
def test_corruption_in_strict_mode_raises_after_the_readable_frames(corrupt_video, backend):
    reader = FrameReader(corrupt_video, sample_fps="all", backend=backend, strict=True)
    frames = []
    with pytest.raises(CorruptVideoError, match=r"corrupt video: damaged data in '.*corrupt\.mp4' from [0-9.]+ s.*last good frame at") as caught:
        for frame in reader:
            frames.append(frame)
    assert [f.index for f in frames] == list(range(len(frames))) and len(frames) > 10
    assert caught.value.last_good_timestamp_s == pytest.approx(frames[-1].timestamp_s)
    assert caught.value.path == str(corrupt_video)


def test_concealed_decoder_errors_are_reported_by_pyav(concealed_video):
    reader = FrameReader(concealed_video, sample_fps="all", backend="pyav")
    frames = list(reader)
    assert len(frames) >= 55
    assert any("damaged frame(s)" in w and "last good frame at" in w for w in reader.warnings)
    strict = FrameReader(concealed_video, sample_fps="all", strict=True)
    assert strict.backend == "pyav"  # decord and opencv would conceal the damage silently
    with pytest.raises(CorruptVideoError, match="damaged frame") as caught:
        list(strict)
    assert 0 < caught.value.last_good_timestamp_s < 2.4


@pytest.mark.parametrize("backend", AVAILABLE)
def test_file_cut_short_warns_with_last_good_timestamp(cut_short_video, backend):
    reader = FrameReader(cut_short_video, sample_fps="all", backend=backend)
    frames = list(reader)
    assert 0 < len(frames) < 60 and [f.index for f in frames] == list(range(len(frames)))
    last = frames[-1].timestamp_s
    assert any(f"ends early: nothing decodable after {last:.3f} s" in w and f"last good frame at {last:.3f} s" in w for w in reader.warnings)
    assert reader.last_good_timestamp_s == pytest.approx(last)
    with pytest.raises(CorruptVideoError, match="ends early") as caught:
        list(FrameReader(cut_short_video, sample_fps="all", backend=backend, strict=True))
    assert caught.value.last_good_timestamp_s == pytest.approx(last)


def test_auto_choice(tiny_video, vfr_video):
    # decord only when asked for: with torch in the process it costs about 1 GB more (video/reader.py)
    full_rate = "opencv" if "opencv" in AVAILABLE else "pyav"
    assert FrameReader(tiny_video, sample_fps=1.0).backend == "pyav"  # sparse: reference frames only
    assert FrameReader(tiny_video, sample_fps=6.25).skip_nonref  # every 4th frame of 25 fps
    assert FrameReader(tiny_video, sample_fps=1.0, skip_nonref=False).backend == full_rate
    assert FrameReader(tiny_video, sample_fps=12.5).backend == full_rate
    assert FrameReader(tiny_video, sample_fps="all").backend == full_rate
    assert FrameReader(tiny_video, sample_fps=20.0).backend == full_rate
    assert FrameReader(vfr_video, sample_fps=1.0).backend == "pyav"
    assert FrameReader(tiny_video, strict=True).backend == "pyav"


def test_auto_picks_opencv_for_every_frame_and_pyav_without_opencv(tiny_video, monkeypatch):
    monkeypatch.setattr(video.reader, "_decord_available", lambda: False)  # auto never picks decord anyway
    assert FrameReader(tiny_video, sample_fps="all").backend == ("opencv" if "opencv" in AVAILABLE else "pyav")
    monkeypatch.setattr(video.reader, "_opencv_available", lambda: False)
    reader = FrameReader(tiny_video, skip_nonref=False)
    assert reader.backend == "pyav" and len(list(reader)) == 3


def test_decord_backend_fails_only_when_asked_for(tiny_video, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord -> ImportError
    monkeypatch.setattr(video.reader, "_decord_available", lambda: False)
    assert FrameReader(tiny_video).backend != "decord"
    with pytest.raises(ImportError, match="backend 'decord' needs the decord package"):
        FrameReader(tiny_video, backend="decord")


BAD_SETTINGS = [
    ({"sample_fps": 0}, "sample_fps must be a positive number, 'all' or None, got 0"),
    ({"sample_fps": -2.0}, r"got -2\.0"),
    ({"sample_fps": "fast"}, "got 'fast'"),
    ({"sample_fps": float("nan")}, "got nan"),
    ({"resize": (0, 10)}, r"resize must be \(width, height\) with positive integers, got \(0, 10\)"),
    ({"resize": (64.5, 48)}, r"got \(64\.5, 48\)"),
    ({"backend": "gpu"}, "unknown backend 'gpu'"),
    ({"start_s": -1.0}, r"start_s=-1\.0"),
    ({"start_s": 2.0, "end_s": 1.0}, r"0 <= start_s < end_s, got start_s=2\.0, end_s=1\.0"),
]


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS, ids=[str(s) for s, _ in BAD_SETTINGS])
def test_bad_settings_are_rejected(tiny_video, settings, message):
    with pytest.raises(ValueError, match=message):
        FrameReader(tiny_video, **settings)


def test_real_clips_at_one_fps(cholec_clips):
    late = 0
    for clip in cholec_clips:
        reader = FrameReader(clip, sample_fps=1.0)  # reference frames only: measured at most one frame late
        stamps = [f.timestamp_s for f in reader]
        assert stamps == pytest.approx(list(range(32)), abs=1 / 25 + 1e-6), clip.name
        late += sum(s > k + 1e-6 for k, s in enumerate(stamps))
        assert reader.expected_count() == 32 and reader.warnings == []
    assert late > 0  # some targets fell on a skipped (non-reference) frame and were served by the next one


@pytest.mark.parametrize("backend", AVAILABLE)
def test_real_clip_every_frame(cholec_clips, backend):
    reader = FrameReader(cholec_clips[0], sample_fps="all", backend=backend, resize=(214, 120))
    count = 0
    for count, frame in enumerate(reader, start=1):
        assert frame.index == count - 1
    assert count == 800 == reader.expected_count()
    assert reader.backend == backend and reader.warnings == []
