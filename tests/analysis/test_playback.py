import pytest

from analysis.pipeline import run_pipeline
from analysis.results import PROXY, CaseResult
from analysis.stages.playback import PlaybackStage, browser_playable
from video import probe


def test_h264_mp4_needs_no_proxy(make_video, tmp_path):
    src = make_video("ok.mp4", n_frames=20)
    assert browser_playable(probe(src))
    case = run_pipeline(src, tmp_path / "case", [PlaybackStage()])
    assert case.summary("playback") == {"proxy": None}
    assert CaseResult.load(tmp_path / "case").playable_video(src) == src


@pytest.mark.parametrize("name,fmt,codec", [("old.avi", "avi", "mpeg4"), ("cam.mkv", "matroska", "libx264")])
def test_other_uploads_get_an_h264_proxy(make_video, tmp_path, name, fmt, codec):
    src = make_video(name, n_frames=20, fmt=fmt, codec=codec)
    assert not browser_playable(probe(src))
    run_pipeline(src, tmp_path / "case", [PlaybackStage()])
    proxy = CaseResult.load(tmp_path / "case").playable_video(src)
    assert proxy.name == PROXY
    info = probe(proxy)
    assert (info.codec, info.frame_count) == ("h264", 20)
