"""Ingest: bad files leave nothing behind, good files are stored once, privacy of what is kept."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from library import IngestError, Library, Settings, db
from tests.library.conftest import FAKE_MAGIC, fake_probe, fake_video


def _row_counts(lib: Library) -> dict[str, int]:
    with lib.engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in db.Base.metadata.sorted_tables}


def _stored_files(settings: Settings) -> list[Path]:
    return [p for d in (settings.videos_dir, settings.cases_dir, settings.tmp_dir) for p in d.rglob("*")]


def _assert_nothing_written(lib: Library) -> None:
    assert all(n == 0 for n in _row_counts(lib).values()), _row_counts(lib)
    assert _stored_files(lib.settings) == []


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("notes.mp4", b"this is a text file, not a video\n" * 10, "not a readable video"),
        ("empty.mp4", b"", r"empty \(0 bytes\)"),
        ("big.mp4", FAKE_MAGIC + b"x" * 2_000_000, "over the upload limit of 1 MB"),
    ],
)
def test_bad_file_is_rejected_and_nothing_is_written(settings, tmp_path, name, content, match):
    settings = Settings(data_dir=settings.data_dir, db_url=settings.db_url, max_upload_mb=1)
    lib = Library(settings, probe=fake_probe)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError, match=match):
        lib.ingest(path)
    _assert_nothing_written(lib)
    with pytest.raises(IngestError, match=match):  # the same through a file object (an upload)
        lib.ingest(io.BytesIO(content), Path(name).suffix or None)
    _assert_nothing_written(lib)
    lib.close()


@pytest.mark.parametrize(("name", "stored"), [("recording.txt", "mp4"), ("recording", "mp4"), ("tower.TS", "ts"),
                                              ("x.m3u8", "mp4"), ("a.b/../c", "mp4")])
def test_any_name_is_accepted_when_the_content_is_a_video(lib, tmp_path, name, stored):
    """The content decides; the stored file keeps a usual video extension or one named after the container."""
    case, created = lib.ingest(io.BytesIO(FAKE_MAGIC + name.encode()), Path(name).suffix or None)
    assert created and case.video_path.name == f"{case.sha256}.{stored}"
    assert case.video_path.parent == lib.settings.videos_dir


def _pyav_video(path: Path, fmt: str, codec: str, n_frames: int = 12, **options: str) -> Path:
    import av
    import numpy as np

    with av.open(str(path), mode="w", format=fmt, options=options) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n_frames):
            rgb = np.full((48, 64, 3), 10 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize(("name", "fmt", "codec", "options", "container", "stored"), [
    ("tower.ts", "mpegts", "libx264", {}, "mpegts", "ts"),
    # stored as the metadata-free remux (video.remux): the extension of the container it is remuxed into
    ("tower.m2ts", "mpegts", "mpeg2video", {"mpegts_m2ts_mode": "1"}, "mpegts", "ts"),
    ("tower.mts", "mpegts", "libx264", {}, "mpegts", "ts"),
    ("tower.mpg", "mpeg", "mpeg2video", {}, "mpeg", "mpg"),
    ("tower.mpeg", "mpeg", "mpeg1video", {}, "mpeg", "mpg"),
    ("tower.dat", "mpegts", "mpeg2video", {}, "mpegts", "ts"),  # an odd name: judged by content
])
def test_real_mpeg_ts_and_ps_recordings_are_ingested(settings, tmp_path, name, fmt, codec, options, container, stored):
    video = _pyav_video(tmp_path / name, fmt, codec, **options)
    with Library(settings) as lib:  # the real probe
        case, created = lib.ingest(video)
        assert created and case.video_path.name == f"{case.sha256}.{stored}"
        assert case.probe["container"] == container and case.probe["frame_count"] == 12
        assert (case.probe["width"], case.probe["height"]) == (64, 48)
        again, created_again = lib.ingest(io.BytesIO(video.read_bytes()), None)  # an upload without a name
        assert not created_again and again.id == case.id


@pytest.mark.parametrize(("name", "text", "match"), [
    ("playlist.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.5,\nseg.ts\n#EXT-X-ENDLIST\n", "an HLS playlist"),
    ("playlist.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.5,\nseg.ts\n#EXT-X-ENDLIST\n", "an HLS playlist"),
    ("list.mp4", "ffconcat version 1.0\nfile seg.ts\n", "an FFmpeg concat list"),
])
def test_playlists_and_lists_are_refused_by_the_real_probe(settings, tmp_path, name, text, match):
    _pyav_video(tmp_path / "seg.ts", "mpegts", "mpeg2video")  # what the list points to: a readable video
    (tmp_path / name).write_text(text)
    with Library(settings) as lib:
        with pytest.raises(IngestError, match=f"not a readable video: .*{match}"):
            lib.ingest(tmp_path / name)
        _assert_nothing_written(lib)


def test_missing_file(lib, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        lib.ingest(tmp_path / "gone.mp4")
    _assert_nothing_written(lib)


def test_probe_message_does_not_show_the_temporary_path(lib, tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"junk")
    with pytest.raises(IngestError) as err:
        lib.ingest(path)
    assert str(lib.settings.tmp_dir) not in str(err.value)
    assert "the file" in str(err.value)


def test_ingest_stores_once_and_queues(lib, tmp_path):
    case, created = lib.ingest(fake_video(tmp_path, "Smith_John_2024-03-01.MP4"))
    assert created and case.status == "queued" and case.title == f"Case {case.id}"
    assert case.video_path == lib.settings.videos_dir / f"{case.sha256}.mp4" and case.video_path.exists()
    assert case.duration_s == 32.0 and case.probe["fps"] == 25.0
    assert case.analysis_config == {"sample_fps": lib.settings.sample_fps}
    assert [j.status for j in lib.queue()] == ["queued"]
    assert list(lib.settings.tmp_dir.iterdir()) == []

    again, created_again = lib.ingest(io.BytesIO(case.video_path.read_bytes()), "mov")  # same content, other name
    assert not created_again and again.id == case.id
    assert len(lib.list_cases()) == 1 and len(lib.queue()) == 1
    assert sorted(p.name for p in lib.settings.videos_dir.iterdir()) == [f"{case.sha256}.mp4"]
    assert list(lib.settings.tmp_dir.iterdir()) == []


def test_upload_file_object_takes_extension_from_its_name(lib):
    upload = io.BytesIO(FAKE_MAGIC + b"uploaded")
    upload.name = "theatre-recording.WebM"
    case, created = lib.ingest(upload)
    assert created and case.video_path.suffix == ".webm"


def test_original_name_and_video_metadata_are_kept_nowhere(lib, tmp_path):
    name = "Patient_Doe_Hospital_X.mp4"
    case, _ = lib.ingest(fake_video(tmp_path, name))
    assert set(case.probe) == {"container", "codec", "width", "height", "fps", "frame_count", "duration_s",
                               "rotation", "has_audio", "bitrate", "file_size", "is_vfr"}  # the fake has no pix_fmt
    db_bytes = b"".join(p.read_bytes() for p in lib.settings.data_dir.glob("library.db*"))
    for secret in (b"Patient_Doe", b"Hospital_X", b"EndoCam", b"2024-03-01T10"):
        assert secret not in db_bytes
    assert not any("Doe" in str(p) for p in lib.settings.data_dir.rglob("*"))


def test_analysis_config_is_validated(lib, tmp_path):
    with pytest.raises(ValueError, match=r"unknown analysis option\(s\) \['speed'\]"):
        lib.ingest(fake_video(tmp_path), config={"speed": 2})
    _assert_nothing_written(lib)
    case, _ = lib.ingest(fake_video(tmp_path), config={"phase": False})
    assert case.analysis_config["phase"] is False and case.analysis_config["sample_fps"] == lib.settings.sample_fps


def test_ids_are_not_reused_after_delete(lib, make_case):
    first = make_case()
    lib.delete_case(first)
    assert make_case() > first


def test_delete_case_removes_rows_and_files(lib, make_case, tmp_path):
    case_id = make_case()
    lib.add_tag(case_id, "teaching")
    lib.add_comment(case_id, 3.0, "look here")
    coll = lib.create_collection("Set A")
    lib.add_to_collection(coll.id, case_id)
    other = make_case()
    lib.add_to_collection(coll.id, other)
    lib.case_dir(case_id).mkdir()
    lib.delete_case(case_id)
    assert [c.id for c in lib.list_cases()] == [other]
    assert lib.get_collection(coll.id).case_ids == (other,)
    assert not lib.case_dir(case_id).exists()
    assert len(list(lib.settings.videos_dir.iterdir())) == 1
    counts = _row_counts(lib)
    assert counts["comments"] == 0 and counts["case_tags"] == 0 and counts["jobs"] == 1
