"""Patient data in the container: the stored video is a metadata-free stream copy, and imports by path."""
from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from library import IngestError, Library
from tests.conftest import flat_frames, mux_frames
from video import probe

SECRET = "Patient Jane Doe"


def _tagged_video(path: Path, fmt: str = "mp4", codec: str = "libx264", n_frames: int = 15, rate: int = 30) -> Path:
    """A tiny video whose container and stream carry a patient name, a creation time and a location."""
    with av.open(str(path), mode="w", format=fmt) as out:
        out.metadata.update({"title": SECRET, "creation_time": "2024-03-01T10:00:00Z",
                             "location": "+48.8577+002.2950/", "comment": "MRN 123456",
                             "service_name": SECRET})  # MPEG-TS keeps only its service name
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["handler_name"] = "Jane Doe camera"
        mux_frames(out, stream, flat_frames(n_frames, step=8))
    return path


def _tags(path: Path) -> dict[str, str]:
    with av.open(str(path)) as container:
        tags = dict(container.metadata)
        for stream in container.streams:
            tags.update({f"{stream.index}:{k}": v for k, v in stream.metadata.items()})
    return tags


def _timestamps(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(p.pts for p in container.demux(stream) if p.pts is not None)


@pytest.mark.parametrize(("fmt", "codec", "name"), [("mp4", "libx264", "op.mp4"), ("matroska", "libx264", "op.mkv"),
                                                     ("mpegts", "mpeg2video", "op.ts")])
def test_stored_copy_has_no_metadata_and_the_same_frames(settings, tmp_path, fmt, codec, name):
    original = _tagged_video(tmp_path / name, fmt, codec)
    assert SECRET.encode() in original.read_bytes()  # the fixture does carry the name
    before = probe(original)
    with Library(settings) as lib:
        case, created = lib.ingest(original)
        stored = case.video_path
        assert created and stored.exists()
        tags = _tags(stored)
        assert not any("Jane" in v or "123456" in v for v in tags.values()), tags
        assert not any(k.split(":")[-1] in ("title", "creation_time", "location", "comment") for k in tags), tags
        assert b"Jane Doe" not in stored.read_bytes() and b"2024-03-01" not in stored.read_bytes()
        after = probe(stored)
        assert (after.frame_count, after.fps, after.width, after.height) == \
               (before.frame_count, before.fps, before.width, before.height) == (15, 30.0, 64, 48)
        assert after.codec == before.codec  # stream copy, not re-encoded
        assert _timestamps(stored) == _timestamps(original) or len(_timestamps(stored)) == 15
        assert case.sha256 == __import__("hashlib").sha256(stored.read_bytes()).hexdigest()  # the copy is hashed
        assert list(lib.settings.tmp_dir.iterdir()) == []
        # the same recording again (an upload without a name) opens the same case
        again, created_again = lib.ingest(io.BytesIO(original.read_bytes()), None)
        assert not created_again and again.id == case.id
    assert SECRET.encode() in original.read_bytes()  # the user's file is untouched


def test_mp4_timestamps_are_kept_exactly(settings, tmp_path):
    original = _tagged_video(tmp_path / "op.mp4")
    with Library(settings) as lib:
        case, _ = lib.ingest(original)
        assert _timestamps(case.video_path) == _timestamps(original)


def test_import_by_path_copies_and_never_moves(settings, tmp_path):
    original = _tagged_video(tmp_path / "big recording.mp4")
    data = original.read_bytes()
    with Library(settings) as lib:
        case, created = lib.import_file(str(original))
        assert created and case.probe["frame_count"] == 15
        assert original.read_bytes() == data  # not moved, not changed
        again, created_again = lib.import_file(original)
        assert not created_again and again.id == case.id


@pytest.mark.parametrize(("given", "match"), [
    ("", "no path given"),
    ("relative/file.mp4", "full path"),
    ("{tmp}", "is a folder"),
    ("{tmp}/gone.mp4", "no such file"),
    ("{data}/videos/x.mp4", "inside the library folder"),
])
def test_import_by_path_refuses_bad_paths(settings, tmp_path, given, match):
    with Library(settings) as lib:
        (lib.settings.videos_dir / "x.mp4").write_bytes(b"x")
        with pytest.raises(IngestError, match=match):
            lib.import_file(given.format(tmp=tmp_path, data=lib.settings.data_dir))


def test_two_simultaneous_uploads_of_different_files_and_of_the_same_file(settings, tmp_path):
    import threading

    first = _tagged_video(tmp_path / "a.mp4", n_frames=15)
    second = _tagged_video(tmp_path / "b.mp4", n_frames=20)
    with Library(settings) as lib:
        def race(paths):
            barrier, results, errors = threading.Barrier(len(paths)), [], []

            def upload(path):
                barrier.wait()
                try:
                    with open(path, "rb") as fh:  # an upload: a file object, no name
                        results.append(lib.ingest(fh, "mp4"))
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=upload, args=(p,)) for p in paths]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            return results

        different = race([first, second])
        assert sorted(created for _, created in different) == [True, True]
        assert len({case.id for case, _ in different}) == 2
        same = race([first, first])
        assert [created for _, created in same] == [False, False]  # both find the case stored above
        third = _tagged_video(tmp_path / "c.mp4", n_frames=25)
        new = race([third, third])
        assert sorted(created for _, created in new) == [False, True] and len({c.id for c, _ in new}) == 1
        assert len(lib.list_cases()) == 3 and len(lib.queue()) == 3
        stored = sorted(p.name for p in lib.settings.videos_dir.iterdir())
        assert stored == sorted(c.video_path.name for c in lib.list_cases())  # one file per case, none left over
        assert list(lib.settings.tmp_dir.iterdir()) == []
