"""ingest_staged: a file the dashboard streamed to data_dir/tmp is checked like an upload, then deleted; nothing else is."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from library import IngestError, Library, LibraryError, Settings
from tests.library.conftest import FAKE_MAGIC, fake_probe


def _staged(settings: Settings, content: bytes, name: str = "1of1-0123456789abcdef.mp4") -> Path:
    folder = settings.tmp_dir / "staged" / ("a" * 24)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _left_in_tmp(settings: Settings) -> list[Path]:
    return [p for p in settings.tmp_dir.rglob("*") if p.is_file()]


def test_a_staged_upload_is_stored_queued_and_removed(lib):
    staged = _staged(lib.settings, FAKE_MAGIC + b"frames")
    case, created = lib.ingest_staged(staged, "mp4", title="Difficult Calot triangle")
    assert created and case.title == "Difficult Calot triangle" and case.status == "queued"
    assert case.video_path == lib.settings.videos_dir / f"{case.sha256}.mp4"
    assert case.video_path.read_bytes() == FAKE_MAGIC + b"frames"
    assert not staged.exists() and _left_in_tmp(lib.settings) == []


def test_the_same_file_again_is_a_duplicate_and_is_removed_too(lib):
    first, _ = lib.ingest_staged(_staged(lib.settings, FAKE_MAGIC + b"same"))
    again = _staged(lib.settings, FAKE_MAGIC + b"same", "1of1-fedcba9876543210.ts")
    case, created = lib.ingest_staged(again)
    assert not created and case.id == first.id and len(lib.list_cases()) == 1
    assert not again.exists() and _left_in_tmp(lib.settings) == []


@pytest.mark.parametrize(("content", "match"), [(b"not a video", "not a readable video"),
                                                (b"", r"empty \(0 bytes\)"),
                                                (FAKE_MAGIC + b"x" * 2_000_000, "over the upload limit of 1 MB")])
def test_a_refused_staged_file_leaves_nothing(settings, content, match):
    lib = Library(Settings(data_dir=settings.data_dir, db_url=settings.db_url, max_upload_mb=1), probe=fake_probe)
    staged = _staged(lib.settings, content)
    with pytest.raises(IngestError, match=match):
        lib.ingest_staged(staged, "mp4")
    assert lib.list_cases() == [] and _left_in_tmp(lib.settings) == [] and not any(lib.settings.videos_dir.iterdir())
    lib.close()


def test_a_bad_title_refuses_it_and_still_removes_it(lib):
    staged = _staged(lib.settings, FAKE_MAGIC + b"frames")
    with pytest.raises(LibraryError, match="title must be 1-200 characters"):
        lib.ingest_staged(staged, title="x" * 300)
    assert not staged.exists() and lib.list_cases() == []


def test_files_outside_the_tmp_folder_are_refused_and_never_deleted(lib, tmp_path):
    outside = tmp_path / "recording.mp4"
    outside.write_bytes(FAKE_MAGIC + b"mine")
    stored = lib.settings.videos_dir / ("b" * 64 + ".mp4")
    stored.write_bytes(FAKE_MAGIC + b"stored")
    link = lib.settings.tmp_dir / "link.mp4"
    os.symlink(outside, link)
    tricky = lib.settings.tmp_dir / ".." / "videos" / stored.name
    for path, match in ((outside, "outside the library's tmp folder"), (stored, "outside the library's tmp folder"),
                        (tricky, "outside the library's tmp folder"), (link, "not a staged upload"),
                        (lib.settings.tmp_dir, "not a staged upload"), ("recording.mp4", "not a staged upload"),
                        (lib.settings.tmp_dir / "missing.mp4", "not a staged upload")):
        with pytest.raises(IngestError, match=match):
            lib.ingest_staged(path)
    assert outside.read_bytes() == FAKE_MAGIC + b"mine" and stored.exists() and link.is_symlink()
    assert lib.list_cases() == []


def test_a_real_video_is_remuxed_and_the_staged_file_removed(settings, make_video):
    lib = Library(settings)  # the real probe and metadata-stripping remux
    staged = _staged(settings, make_video("staged.mp4", metadata={"title": "Patient Smith"}).read_bytes(),
                     "1of1-0123456789abcdef.mp4")
    case, created = lib.ingest_staged(staged, "mp4")
    assert created and case.probe["width"] == 96 and case.video_path.exists()
    assert b"Patient Smith" not in case.video_path.read_bytes()
    assert not staged.exists() and _left_in_tmp(settings) == []
    case_again, created_again = lib.ingest_staged(_staged(settings, make_video("staged.mp4").read_bytes()))
    assert not created_again and case_again.id == case.id
    lib.close()
