"""The library on real laparoscopic video (../shared/data/cholec-clips) with the real probe and pipeline."""
from __future__ import annotations

import io

import pytest

from library import IngestError, Library, Settings
from library.worker import Worker


@pytest.fixture
def real_lib(tmp_path):
    library = Library(Settings(data_dir=tmp_path / "data", heartbeat_s=0.2))
    yield library
    library.close()


def test_ingest_real_clip_with_real_probe(real_lib, cholec_clips, tmp_path):
    clip = cholec_clips[0]
    case, created = real_lib.ingest(clip)
    assert created and case.status == "queued"
    assert (case.probe["width"], case.probe["height"], case.probe["frame_count"]) == (854, 480, 800)
    assert case.probe["fps"] == pytest.approx(25.0) and case.duration_s == pytest.approx(32.0, abs=0.1)
    assert case.probe["codec"] == "h264" and "path" not in case.probe and "sha256" not in case.probe
    # stored as a metadata-free stream copy: the same packets, not the same bytes
    assert case.video_path.suffix == ".mp4" and case.video_path.stat().st_size <= clip.stat().st_size + 4096
    with clip.open("rb") as upload:  # the same file uploaded again opens the existing case
        again, created_again = real_lib.ingest(upload, "mp4")
    assert not created_again and again.id == case.id


def test_real_probe_rejects_a_truncated_clip_and_a_text_file(real_lib, cholec_clips):
    head = cholec_clips[0].read_bytes()[:200_000]  # an mp4 cut short: no usable index
    with pytest.raises(IngestError, match="not a readable video"):
        real_lib.ingest(io.BytesIO(head), "mp4")
    with pytest.raises(IngestError, match="not a readable video"):
        real_lib.ingest(io.BytesIO(b"hello, I am text\n" * 100), "mp4")
    assert real_lib.list_cases() == []
    assert [p for d in ("videos", "cases", "tmp") for p in (real_lib.settings.data_dir / d).iterdir()] == []


def test_worker_runs_the_real_pipeline_on_a_real_clip(real_lib, cholec_clips):
    # Model stages off: this checks the worker, the real decoder and the atomic case folder, not the models.
    case, _ = real_lib.ingest(cholec_clips[1], config={"detect": False, "track": False, "phase": False,
                                                        "quality": False, "annotate": False, "anatomy": False})
    assert Worker(real_lib).run(once=True) == 1
    done = real_lib.get_case(case.id)
    assert done.status == "done", done.error
    result = real_lib.case_results(case.id)
    assert result.sampling.frames_analysed == 32
    assert done.progress.done == done.progress.total == 32
    assert sorted(p.name for p in real_lib.settings.cases_dir.iterdir()) == [str(case.id)]
