"""The detection stage streams its table in chunks, equal to the whole-table output it replaced;
detection every k-th frame keeps track ids; the motion stage reads the table back from its file."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.motion import motion_report, tool_presence_per_second
from analysis.pipeline import run_pipeline
from analysis.results import DETECTIONS, MOTION, TOOL_PRESENCE
from analysis.stages.detection import DetectionStage, detections_template
from analysis.stages.motion import MotionStage
from analysis.stream import ParquetStream
from models.detections import Detections
from tests.conftest import marker_index

NAMES = ["Grasper", "Bipolar", "Hook"]


class FakeDetector:
    """Boxes from the frame's painted index: a Grasper moving right always, a Hook on odd frames."""

    class_names = NAMES
    backend, backend_note = "fake", None
    entry = SimpleNamespace(name="fake", weights=SimpleNamespace(name="fake.pt"))
    metadata = {"version": "0"}

    def __init__(self):
        self.calls = 0
        self.remembered = None

    def __call__(self, frames, indices=None):
        self.calls += len(frames)
        out = []
        for rgb, index in zip(frames, indices or [-1] * len(frames)):
            i = marker_index(rgb)
            boxes, cls = [[2 + 2 * i, 20, 30 + 2 * i, 40]], [0]
            if i % 2:
                boxes.append([60, 5, 90, 25]); cls.append(2)
            out.append(Detections(boxes, [0.5 + 0.01 * i] * len(cls), cls, frame_index=[index] * len(cls)))
        return out

    def remember(self, frames, detections):
        self.remembered = (len(frames), len(detections))


def old_detection_table(latest_per_frame, names, folder):
    """What the detection stage wrote before streaming (per-frame DataFrames concatenated at the end), read back."""
    parts = [pd.DataFrame({**det.to_columns(), "timestamp_s": ts}) for ts, det in latest_per_frame if len(det)]
    empty = pd.DataFrame({**Detections.empty().to_columns(), "timestamp_s": np.zeros(0)})
    table = pd.concat(parts, ignore_index=True) if parts else empty
    table["class_name"] = pd.Categorical([names[i] for i in table["class_id"]], categories=names)
    table.to_parquet(folder / "old.parquet", index=False)
    return pd.read_parquet(folder / "old.parquet")


class Keeper(DetectionStage):
    """Records every frame's output, to rebuild the old table from."""

    def reset(self):
        super().reset()
        self.kept = []

    def __call__(self, frames):
        super().__call__(frames)
        self.kept += [(f.timestamp_s, self.latest[f.index]) for f in frames]


@pytest.mark.parametrize("rows_per_group", [1, 3, 10_000])
def test_table_written_in_chunks_equals_the_old_output(tiny_video, tmp_path, rows_per_group):
    stage = Keeper(detector=FakeDetector(), rows_per_group=rows_per_group)
    case = run_pipeline(tiny_video, tmp_path / "case", [stage, MotionStage()], sample_fps=5, batch_size=4)
    written = pd.read_parquet(tmp_path / "case" / DETECTIONS)
    old = old_detection_table(stage.kept, NAMES, tmp_path)
    assert len(written) > 10
    pd.testing.assert_frame_equal(written, old)
    presence = pd.read_parquet(tmp_path / "case" / TOOL_PRESENCE)
    pd.testing.assert_frame_equal(presence, tool_presence_per_second(old, NAMES, case.video.duration_s))
    summary = case.summary("detection")
    assert summary["boxes"] == len(old) and summary["tracks"] == old.loc[old.tracker_id >= 0, "tracker_id"].nunique()
    assert summary["boxes_per_tool"] == {"Grasper": int((old.class_id == 0).sum()), "Bipolar": 0, "Hook": int((old.class_id == 2).sum())}
    assert summary["tools_present"] == ["Grasper", "Hook"]
    # The motion stage reads the same table from the file: the report the in-memory table gave.
    report = json.loads((tmp_path / "case" / MOTION).read_text())
    expected = motion_report(old, NAMES, (96, 64), 0.2, None, "centre")
    assert json.loads(json.dumps(expected)) == report


def test_no_boxes_gives_the_old_empty_table(tiny_video, tmp_path):
    class Blind(FakeDetector):
        def __call__(self, frames, indices=None):
            return [Detections.empty() for _ in frames]

    run_pipeline(tiny_video, tmp_path / "case", [DetectionStage(detector=Blind())], sample_fps=2)
    written = pd.read_parquet(tmp_path / "case" / DETECTIONS)
    pd.testing.assert_frame_equal(written, old_detection_table([], NAMES, tmp_path))


def test_parquet_stream_keeps_one_bounded_buffer(tmp_path):
    stream = ParquetStream(tmp_path / "t.parquet", detections_template(NAMES), rows_per_group=4)
    det = Detections([[0, 0, 1, 1]] * 3, [0.5] * 3, [0, 1, 2], frame_index=[7] * 3)
    for _ in range(5):
        stream.write({**det.to_columns(), "timestamp_s": np.zeros(3), "class_name": det.class_id})
        assert stream._buffered < 4  # flushed as soon as a group is full
    stream.close()
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups == 3 and stream.rows == 15  # 6 + 6 + 3
    with pytest.raises(ValueError, match="every column"):
        ParquetStream(tmp_path / "u.parquet", detections_template(NAMES)).write({"x1": np.zeros(1)})
    with pytest.raises(ValueError, match="rows_per_group must be a positive integer, got 0"):
        ParquetStream(tmp_path / "v.parquet", detections_template(NAMES), rows_per_group=0)


def test_detect_every_k_runs_the_detector_on_every_kth_frame_and_keeps_ids(make_video, tmp_path):
    video = make_video("thirty.mp4", n_frames=30)  # painted indices wrap at 30: one smooth motion
    every = Keeper(detector=FakeDetector())
    run_pipeline(video, tmp_path / "every", [every], sample_fps=None, batch_size=8)
    detector = FakeDetector()
    sparse = Keeper(detector=detector, detect_every=3)
    case = run_pipeline(video, tmp_path / "sparse", [sparse], sample_fps=None, batch_size=8)
    assert detector.calls == 10 and case.summary("detection")["frames_detected"] == 10  # 30 frames / 3
    assert detector.remembered == (6, 6)  # the last batch (30 = 3 * 8 + 6): served to a sharing stage
    grasper = [(ts, det[det.class_id == 0]) for ts, det in sparse.kept]
    assert all(len(d) == 1 for _, d in grasper)  # the Grasper is boxed on every frame, detected or not
    assert len({int(d.tracker_id[0]) for _, d in grasper}) == 1  # ... with one id throughout
    # Predicted boxes follow the motion: on the skipped frames, close to where the detector would be.
    truth = {round(ts, 3): det[det.class_id == 0].xyxy[0] for ts, det in every.kept}
    errors = [np.abs(d.xyxy[0] - truth[round(ts, 3)]).max() for ts, d in grasper[6:]]
    assert max(errors) < 3.0


@pytest.mark.parametrize("bad, match", [(0, "detect_every must be a positive integer, got 0"),
                                        (1.5, "detect_every must be a positive integer, got 1.5"),
                                        (True, "detect_every must be a positive integer, got True")])
def test_bad_detect_every(bad, match):
    with pytest.raises(ValueError, match=match):
        DetectionStage(detector=FakeDetector(), detect_every=bad)


def test_detect_every_needs_tracking():
    with pytest.raises(ValueError, match="detect_every=2 needs tracking"):
        DetectionStage(detector=FakeDetector(), track=False, detect_every=2)


class TwoClassDetector(FakeDetector):
    """One instrument read as two classes on every frame (a Hook box and, nearly the same, a Bipolar one)."""

    def __call__(self, frames, indices=None):
        self.calls += len(frames)
        return [Detections([[20, 20, 60, 60], [21, 20, 60, 61], [70, 5, 90, 25]], [0.55, 0.8, 0.6], [2, 1, 0],
                           frame_index=[index] * 3) for index in (indices or [-1] * len(frames))]


@pytest.mark.parametrize("suppress_iou, classes, suppressed", [(0.7, {"Bipolar", "Grasper"}, 1), (None, set(NAMES), 0)])
def test_one_instrument_read_as_two_classes_is_stored_once(tiny_video, tmp_path, suppress_iou, classes, suppressed):
    stage = DetectionStage(detector=TwoClassDetector(), suppress_iou=suppress_iou)
    case = run_pipeline(tiny_video, tmp_path / "case", [stage], sample_fps=5.0)
    table = case.detections()
    frames = table["frame_index"].nunique()
    assert set(table["class_name"]) == classes and len(table) == frames * len(classes)
    assert case.summary("detection")["duplicates_suppressed"] == suppressed * frames
    presence = case.tool_presence()
    assert (presence["Hook"] > 0).any() == (suppress_iou is None)  # no false Hook second when suppressed


@pytest.mark.parametrize("iou", [0, 1.5])
def test_bad_suppress_iou(iou):
    with pytest.raises(ValueError, match=f"suppress_iou must be in \\(0, 1\\] or None, got {iou}"):
        DetectionStage(detector=FakeDetector(), suppress_iou=iou)
