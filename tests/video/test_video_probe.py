from __future__ import annotations

import dataclasses
import os
import hashlib
import json

import av
import pytest

import video
from tests.conftest import flat_frames, mux_frames
from video import VideoInfo, file_sha256, probe


def test_probe_describes_tiny_video(tiny_video):
    info = probe(tiny_video)
    assert (info.container, info.codec, info.pix_fmt) == ("mp4", "h264", "yuv420p")
    assert (info.width, info.height, info.fps, info.frame_count) == (96, 64, 25.0, 60)
    assert info.duration_s == pytest.approx(2.4)
    assert (info.rotation, info.has_audio, info.is_vfr) == (0, False, False)
    assert info.file_size == tiny_video.stat().st_size
    assert info.sha256 == hashlib.sha256(tiny_video.read_bytes()).hexdigest() == file_sha256(tiny_video)
    assert info.bitrate and info.bitrate > 0


def test_probe_reads_real_fps_not_25(make_video):
    info = probe(make_video("ten_fps.mp4", n_frames=23, fps=10))
    assert (info.fps, info.frame_count) == (10.0, 23)
    assert info.duration_s == pytest.approx(2.3)


def test_probe_counts_packets_when_container_has_no_frame_count(make_video):
    info = probe(make_video("stream.ts", n_frames=37, fmt="mpegts"))
    assert (info.container, info.frame_count, info.fps) == ("mpegts", 37, 25.0)


def test_probe_flags_variable_frame_rate(vfr_video, tiny_video):
    assert probe(vfr_video).is_vfr and probe(vfr_video).frame_count == 12
    assert not probe(tiny_video).is_vfr


def test_probe_reports_clockwise_rotation_and_upright_size(make_video):
    info = probe(make_video("portrait.mp4", n_frames=5, rotation=90))  # 90 degrees counter-clockwise
    assert info.rotation == 270
    assert (info.width, info.height) == (64, 96)


def test_probe_without_hash(tiny_video):
    assert probe(tiny_video, content_hash=False).sha256 is None


def test_to_dict_is_json_and_keeps_no_capture_metadata(make_video):
    secret = {"creation_time": "2026-01-02T03:04:05.000000Z", "location": "+48.8584+002.2945/"}
    path = make_video("tagged.mp4", n_frames=5, metadata=secret)
    with av.open(str(path)) as container:  # the file really carries the capture time and place
        assert container.metadata["location"] == secret["location"]
        assert container.metadata["creation_time"].startswith("2026-01-02")
    info = probe(path)
    as_json = json.dumps(info.to_dict())
    assert set(info.to_dict()) == {f.name for f in dataclasses.fields(VideoInfo)}
    for value in ("2026-01-02", "48.8584", "002.2945"):
        assert value not in as_json


BAD_INPUTS = [
    ("missing", video.VideoNotFoundError, r"video file not found: '.*missing\.mp4'"),
    ("empty", video.EmptyFileError, r"empty \(0 bytes\): '.*empty\.mp4'"),
    ("text", video.NotAVideoError, r"not a video: '.*notes\.mp4' is not in any known container format"),
    ("png", video.NotAVideoError, r"not a video: '.*still\.mp4' is a still image"),
    ("no_moov", video.TruncatedVideoError, r"truncated video: '.*no_moov\.mp4' has no complete moov atom"),
    ("audio_only", video.NoVideoStreamError, r"no video stream in '.*audio\.mp4' \(1 audio stream\(s\) only\)"),
    ("unknown_codec", video.UnsupportedCodecError, r"unsupported video codec in '.*unknown_codec\.mp4'"),
]


@pytest.mark.parametrize(("name", "error", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_probe_rejects_bad_input_with_typed_error(bad_media, name, error, message):
    with pytest.raises(error, match=message) as caught:
        probe(bad_media[name])
    assert isinstance(caught.value, video.VideoError) and isinstance(caught.value, ValueError)
    assert caught.value.path == str(bad_media[name])


def test_probe_rejects_a_folder(tmp_path):
    with pytest.raises(video.VideoNotFoundError, match="video file not found"):
        probe(tmp_path)


def test_corrupt_error_carries_last_good_timestamp():
    error = video.CorruptVideoError("x.mp4", "corrupt video: 'x.mp4'", 1.5)
    assert (error.last_good_timestamp_s, error.path) == (1.5, "x.mp4")


def test_probe_real_clips_exact(cholec_clips):
    assert cholec_clips, "no clips in ../shared/data/cholec-clips"
    for clip in cholec_clips:
        info = probe(clip, content_hash=False)
        assert (info.codec, info.width, info.height, info.fps, info.frame_count) == ("h264", 854, 480, 25.0, 800), clip.name
        assert info.duration_s == pytest.approx(32.0) and not info.is_vfr


# -- containers by content; lists and playlists that point elsewhere are refused (issue 13) -----------
def _write(path, fmt: str, codec: str, n_frames: int = 10, **options: str):
    with av.open(str(path), mode="w", format=fmt, options=options) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        mux_frames(out, stream, flat_frames(n_frames, step=20))
    return path


@pytest.mark.parametrize(("name", "fmt", "codec", "container"), [
    ("tower.mpg", "mpeg", "mpeg2video", "mpeg"),
    ("tower.mpeg", "mpeg", "mpeg1video", "mpeg"),
    ("tower.ts", "mpegts", "mpeg2video", "mpegts"),
    ("tower.m2ts", "mpegts", "libx264", "mpegts"),
    ("recording.bin", "mpegts", "libx264", "mpegts"),  # judged by content, not by name
])
def test_mpeg_program_and_transport_streams_probe_and_decode(tmp_path, name, fmt, codec, container):
    from video import FrameReader

    path = _write(tmp_path / name, fmt, codec, **({"mpegts_m2ts_mode": "1"} if name.endswith(".m2ts") else {}))
    info = probe(path)
    assert (info.container, info.width, info.height, info.frame_count) == (container, 64, 48, 10)
    frames = list(FrameReader(path, sample_fps="all", backend="pyav"))
    assert len(frames) == 10 and frames[0].rgb.shape == (48, 64, 3)


HLS = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:0.4,\nseg.ts\n#EXT-X-ENDLIST\n"
LISTS = [
    ("hls.mp4", HLS, r"is an HLS playlist, a text file that points to other files or URLs"),
    ("hls.m3u8", HLS, r"is an HLS playlist"),
    ("concat.mp4", "ffconcat version 1.0\nfile seg.ts\n", r"is an FFmpeg concat list"),
    ("concat.ffconcat", "ffconcat version 1.0\nfile seg.ts\n", r"is an FFmpeg concat list"),
]


def _old_atime(path) -> float:
    os.utime(path, (1.0, path.stat().st_mtime))  # atime before mtime: the next read updates it (relatime)
    return path.stat().st_atime


@pytest.mark.parametrize(("name", "text", "message"), LISTS, ids=[n for n, _, _ in LISTS])
def test_playlists_and_concat_lists_are_refused_without_reading_what_they_name(tmp_path, name, text, message):
    from video import FrameReader

    segment = _write(tmp_path / "seg.ts", "mpegts", "mpeg2video")
    listing = tmp_path / name
    listing.write_text(text)
    _old_atime(segment)
    try:  # unrestricted FFmpeg follows the list into seg.ts: the risk being tested
        with av.open(str(listing)) as container:
            followed = bool(container.streams.video)
    except av.error.FFmpegError:
        followed = False
    atime_works = segment.stat().st_atime != 1.0
    for read in (probe, lambda p: FrameReader(p, backend="decord"), lambda p: FrameReader(p, backend="opencv")):
        before = _old_atime(segment)
        with pytest.raises(video.NotAVideoError, match=message):
            read(listing)
        if atime_works:
            assert segment.stat().st_atime == before, "the listed file was opened"
    if name.endswith((".m3u8", ".ffconcat")) or name.startswith("concat"):
        assert followed and atime_works, "control: plain av.open should have read the listed segment"


def test_open_input_allows_only_the_file_protocol_and_video_demuxers(tmp_path):
    from video.probe import INPUT_OPTIONS, open_input

    assert INPUT_OPTIONS["protocol_whitelist"] == "file"
    allowed = INPUT_OPTIONS["format_whitelist"].split(",")
    for demuxer in ("hls", "dash", "concat", "image2", "sdp", "rtsp", "lavfi", "tee", "segment", "data"):
        assert demuxer not in allowed
    odd = tmp_path / "concat:a.mp4|b.mp4"  # a name FFmpeg would read as a protocol without the file: prefix
    odd.write_bytes(_write(tmp_path / "x.ts", "mpegts", "mpeg2video").read_bytes())
    with open_input(odd) as container:
        assert container.format.name == "mpegts"
