import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.clips import ClipAnnotator, TimedDetections, annotated_clip, representative_frame, representative_time
from analysis.results import DETECTIONS, CaseResult
from tests.conftest import publish_case, video_info
from models.taxonomy import load_taxonomy
from video import Frame, FrameReader, probe
from models.annotators import hex_to_rgb
from video.writer import VideoWriter

SIZE = (128, 96)
FPS = 10
GRASPER = hex_to_rgb(load_taxonomy().tools[0].colour)


def boxes(rows) -> pd.DataFrame:
    """Detections table rows (timestamp_s, tracker_id, x1, class_id) with a 20 px box at x1."""
    return pd.DataFrame([dict(x1=x, y1=10.0, x2=x + 20.0, y2=30.0, confidence=0.9, class_id=c, tracker_id=tid,
                              frame_index=int(t * FPS), timestamp_s=t) for t, tid, x, c in rows])


@pytest.fixture
def black_video(tmp_path) -> Path:
    path = tmp_path / "video.mp4"
    with VideoWriter(path, fps=FPS, size=SIZE) as writer:
        for _ in range(4 * FPS):
            writer.write(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
    return path


def write_case(folder: Path, table: pd.DataFrame, analysed_size=SIZE, duration_s=4.0) -> Path:
    resize = tuple(analysed_size) if tuple(analysed_size) != SIZE else None
    publish_case(folder, video_info(FPS, SIZE, duration_s), resize=resize, tables={DETECTIONS: table},
                 segments=[{"start_s": 0, "end_s": duration_s, "label": "Preparation"}])
    return folder


def test_tracked_boxes_move_between_samples_and_others_are_held():
    table = boxes([(0.0, 1, 0.0, 0), (1.0, 1, 10.0, 0), (1.0, -1, 50.0, 3)])
    at = TimedDetections(table, interval_s=1.0)
    assert at(0.5).xyxy[:, 0].tolist() == [5.0]
    assert sorted(at(1.5).xyxy[:, 0].tolist()) == [10.0, 50.0]  # last sample held; untracked held
    assert len(at(2.0)) == 0  # one interval after the last sample
    assert len(at(-0.5)) == 0
    assert at(0.5).tracker_id.tolist() == [1]


def test_samples_far_apart_are_not_bridged():
    at = TimedDetections(boxes([(0.0, 1, 0.0, 0), (5.0, 1, 100.0, 0)]), interval_s=1.0)
    assert len(at(3.0)) == 0
    assert at(5.0).xyxy[0, 0] == 100.0


def test_no_detections_and_bad_interval():
    assert len(TimedDetections(pd.DataFrame(), 1.0)(0.0)) == 0
    with pytest.raises(ValueError, match="interval_s must be positive, got 0"):
        TimedDetections(pd.DataFrame(), 0)


def test_annotated_clip_draws_boxes_and_is_cached(tmp_path, black_video):
    folder = write_case(tmp_path / "case", boxes([(0.0, 1, 20.0, 0), (1.0, 1, 40.0, 0), (2.0, 1, 60.0, 0)]))
    clip = annotated_clip(folder, black_video, 0.5, 2.5)
    assert clip == CaseResult.load(folder).clip_file(0.5, 2.5) and clip.exists()
    info = probe(clip, content_hash=False)
    assert (info.codec, info.fps, info.frame_count) == ("h264", FPS, 2 * FPS)
    first = next(iter(FrameReader(clip, sample_fps="all"))).rgb
    # at 0.5 s the box is halfway between x1 = 20 and 40: its left edge is drawn at x = 30 in the grasper's blue
    rgb = first[14:28].astype(int)
    blue = (rgb[..., 2] > 90) & (rgb[..., 2] > rgb[..., 0] + 40)
    assert GRASPER[2] > GRASPER[0] + 40
    assert 29 <= np.flatnonzero(blue.any(axis=0)).min() <= 31
    assert first[60:80, 100:120].max() < 30  # away from boxes and captions the frame stays black
    stamp = clip.stat().st_mtime_ns
    os.utime(clip, ns=(stamp - 10**9, stamp - 10**9))
    assert annotated_clip(folder, black_video, 0.5, 2.5).stat().st_mtime_ns == stamp - 10**9  # not cut again


@pytest.mark.parametrize("start, end, message", [
    (2.0, 1.0, "must be before its end"),
    (0.0, 900.0, "longer than 600 s"),
    (3.0, 9.0, "past the end"),
])
def test_bad_clip_ranges(tmp_path, black_video, start, end, message):
    folder = write_case(tmp_path / "case", boxes([(0.0, 1, 20.0, 0)]))
    with pytest.raises(ValueError, match=message):
        annotated_clip(folder, black_video, start, end)
    assert CaseResult.load(folder).cached_clips() == []


def test_boxes_are_scaled_from_the_analysed_size(tmp_path):
    folder = write_case(tmp_path / "case", boxes([(0.0, 1, 10.0, 0)]), analysed_size=(64, 48))
    draw = ClipAnnotator(CaseResult.load(folder))
    out = draw(Frame(0, 0.0, np.zeros((SIZE[1], SIZE[0], 3), np.uint8)))
    # analysed box x 10..30, y 10..30 at half size -> 20..60, 20..60 in the full frame
    assert out[40, 19:22].max() > 100 and out[40, 9:12].max() < 30


def test_representative_time_and_frame(tmp_path, black_video):
    folder = write_case(tmp_path / "case", boxes([(0.0, 1, 0.0, 0), (2.0, 1, 0.0, 0), (2.0, 2, 50.0, 1)]))
    assert representative_time(CaseResult.load(folder)) == 2.0
    empty = write_case(tmp_path / "empty", boxes([]).reindex(columns=list(boxes([(0, 1, 0, 0)]).columns)))
    assert representative_time(CaseResult.load(empty)) == 2.0  # the middle of 4 s
    assert representative_frame(black_video, 1.0).shape == (SIZE[1], SIZE[0], 3)
    with pytest.raises(ValueError, match="no frame at 9 s"):
        representative_frame(black_video, 9.0)


def test_annotated_clip_and_frames_black_out_the_mask(tmp_path):
    """Burned-in text (a white band at the top, like a tower's name/date overlay) is black in the clip."""
    video = tmp_path / "white.mp4"
    with VideoWriter(video, fps=FPS, size=SIZE) as writer:
        for _ in range(2 * FPS):
            writer.write(np.full((SIZE[1], SIZE[0], 3), 255, np.uint8))
    folder = write_case(tmp_path / "case", boxes([]))
    mask = [(0.0, 0.0, 1.0, 0.2)]
    clip = annotated_clip(folder, video, 0.0, 1.0, mask=mask)
    first = next(iter(FrameReader(clip, sample_fps="all"))).rgb
    assert first[:15].max() < 40  # the top fifth is black
    assert first[40:60, 40:90].min() > 200  # the rest of the picture is kept
    still = representative_frame(video, 0.5, mask=mask)
    assert still[:19].max() == 0 and still[40:60].min() > 200
