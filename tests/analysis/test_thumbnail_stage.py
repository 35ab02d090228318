import numpy as np
import pytest
from PIL import Image

from analysis.pipeline import run_pipeline
from analysis.results import THUMBNAIL, CaseResult
from analysis.stages.thumbnail import ThumbnailStage
from analysis.thumbnail import THUMBNAIL_WIDTH, make_thumbnail, thumbnail_jpeg, write_thumbnail


def test_the_analysis_writes_a_small_thumbnail_at_a_tenth_of_the_video(make_video, tmp_path):
    src = make_video("case.mp4", n_frames=100, fps=25, size=(640, 360))  # 4 s
    case = run_pipeline(src, tmp_path / "case", [ThumbnailStage(mask=[[0, 0, 0.5, 0.5]])], sample_fps=5.0)
    summary = case.summary("thumbnail")
    assert summary["thumbnail"] == THUMBNAIL and summary["time_s"] == pytest.approx(0.4)
    result = CaseResult.load(tmp_path / "case")
    path = result.thumbnail()
    assert path == tmp_path / "case" / THUMBNAIL
    image = Image.open(path)
    assert image.format == "JPEG" and image.size == (THUMBNAIL_WIDTH, 180)
    assert np.asarray(image)[:80, :150].max() < 20  # the masked quarter is black
    assert path.stat().st_size < 30_000


def test_an_older_case_gets_its_thumbnail_made_once_from_the_video(make_video, tmp_path):
    src = make_video("old.mp4", n_frames=50, size=(96, 64))
    run_pipeline(src, tmp_path / "case", [])  # analysed before the thumbnail stage existed
    result = CaseResult.load(tmp_path / "case")
    assert result.thumbnail() is None  # no video given: nothing made
    path = result.thumbnail(src)
    assert path.is_file() and Image.open(path).size == (96, 64)
    stamp = path.stat().st_mtime_ns
    assert result.thumbnail(src).stat().st_mtime_ns == stamp  # kept, not made again
    assert not list(path.parent.glob(".thumbnail-*"))  # the temporary file of the atomic write is gone


def test_a_missing_or_unreadable_video_gives_no_thumbnail_and_no_error(make_video, tmp_path):
    src = make_video("gone.mp4", n_frames=20)
    run_pipeline(src, tmp_path / "case", [])
    result = CaseResult.load(tmp_path / "case")
    assert result.thumbnail(tmp_path / "missing.mp4") is None
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    assert result.thumbnail(broken) is None
    assert not (tmp_path / "case" / THUMBNAIL).exists()


def test_write_thumbnail_replaces_atomically(tmp_path):
    dst = tmp_path / THUMBNAIL
    write_thumbnail(np.zeros((10, 20, 3), np.uint8), dst)
    write_thumbnail(np.full((10, 20, 3), 255, np.uint8), dst)
    assert np.asarray(Image.open(dst)).min() > 200
    assert [p.name for p in tmp_path.iterdir()] == [THUMBNAIL]


@pytest.mark.parametrize("frame", [np.zeros((10, 10), np.uint8), np.zeros((0, 0, 3), np.uint8), "frame"])
def test_a_bad_frame_is_refused(frame):
    with pytest.raises(ValueError, match="a thumbnail needs an HxWx3 frame"):
        thumbnail_jpeg(frame)


def test_make_thumbnail_names_a_missing_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="no video at"):
        make_thumbnail(tmp_path / "none.mp4", tmp_path / THUMBNAIL, 10.0)
