"""CaseResult: the case format's one owner -- written through CaseWriter, published atomically, read back typed."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis.formats import coco_categories, coco_results, mot_text
from analysis.results import (
    CASE_JSON, CASE_SCHEMA_VERSION, PARTIAL_MARKER, CaseResult, CaseResultError, CaseWriter, MotionReport,
    OutputFolderError, Sampling, StageRecord, partial_folder,
)
from models.phase.timeline import PhaseProbabilities
from models.taxonomy import load_taxonomy
from video import VideoInfo

VIDEO = VideoInfo(path="", container="mov,mp4", codec="h264", width=320, height=240, fps=29.97, frame_count=300,
                  duration_s=10.01, rotation=0, has_audio=False, bitrate=None, file_size=1000, sha256=None, is_vfr=False)
NAMES = tuple(load_taxonomy().phase_names)


def _detections() -> pd.DataFrame:
    return pd.DataFrame({"x1": [10.0, 12.0, 50.0], "y1": [20.0, 22.0, 60.0], "x2": [40.0, 44.0, 80.0],
                         "y2": [60.0, 64.0, 90.0], "confidence": [0.9, 0.8, 0.4], "class_id": [2, 2, 0],
                         "tracker_id": [3, 3, -1], "frame_index": [0, 30, 30], "timestamp_s": [0.0, 1.001, 1.001]})


def _probs() -> PhaseProbabilities:
    ids = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    probs = np.full((10, len(NAMES)), 0.05, np.float32)
    probs[np.arange(10), ids] = 1 - 0.05 * (len(NAMES) - 1)
    return PhaseProbabilities(np.arange(10), probs, ids, NAMES)


def _publish(out, sample_fps=1.0, resize=None) -> CaseResult:
    writer = CaseWriter(out)
    writer.write_table("detections.parquet", _detections())
    probs = _probs()
    writer.write_phases(probs, probs.segments(), VIDEO.fps, VIDEO.frame_count)
    writer.write_motion(MotionReport("centre", 1.0, [], {"Hook": {"time_on_screen_s": 2.0}}, []))
    sampling = Sampling.of(VIDEO, sample_fps, 10, resize)
    return writer.publish(CaseResult(writer.path, VIDEO, sampling, {"phase": StageRecord("1", 0.5, {"seconds": 10})}))


def test_a_published_case_reads_back_typed(tmp_path):
    case = _publish(tmp_path / "case", resize=(160, 120))
    assert case.path == tmp_path / "case" and not partial_folder(case.path).exists()
    assert case.schema_version == CASE_SCHEMA_VERSION and case.video.fps == 29.97 and case.video.path == ""
    assert case.sampling.analysed_fps == 1.0 and case.sampling.frame_interval_s == 1.0 and case.sampling.frame_size == (160, 120)
    assert case.summary("phase") == {"seconds": 10} and case.summary("motion") == {}
    assert [(s.start_s, s.end_s, s.label) for s in case.segments()] == [
        (0, 3, NAMES[0]), (3, 7, NAMES[1]), (7, 10, NAMES[2])]
    phases = case.phases()
    assert phases is not None and phases.phase_names == NAMES and phases.probs.shape == (10, len(NAMES))
    assert case.motion().per_tool == {"Hook": {"time_on_screen_s": 2.0}}
    assert len(case.detections()) == 3 and list(case.detections(["timestamp_s"]).columns) == ["timestamp_s"]
    assert case.tool_presence().empty and case.anatomy().empty and case.annotated_video is None
    assert case.cholec80_phases is not None and len(case.cholec80_phases.read_text().splitlines()) == 301
    assert dict(case.documents()).keys() == {"motion.json", "phase_segments.json"}
    assert [name for name, _ in case.tables()] == ["detections", "phase_probs"]
    assert "path" not in json.loads((case.path / CASE_JSON).read_text())["video"]


def test_every_frame_analysed_is_the_video_rate_never_a_default(tmp_path):
    case = _publish(tmp_path / "case", sample_fps=None)
    assert case.sampling.analysed_fps == pytest.approx(29.97) and case.sampling.frame_size == (320, 240)
    assert _publish(tmp_path / "fast", sample_fps=60).sampling.analysed_fps == pytest.approx(29.97)  # never above the video


def test_schema_1_cases_are_read(tmp_path):
    """A case written before the analysed rate was stored: derived from the video, as version 1 did."""
    folder = tmp_path / "old"
    folder.mkdir()
    video = {k: v for k, v in VIDEO.to_dict().items() if k != "path"}
    (folder / CASE_JSON).write_text(json.dumps({"schema_version": 1, "video": video,
                                                "sampling": {"sample_fps": 5, "frames_analysed": 50, "resize": None},
                                                "stages": {"detection": {"version": "1", "seconds": 2.5,
                                                                         "summary": {"boxes": 3}}}}))
    (folder / "phase_segments.json").write_text(json.dumps([{"start_s": 0, "end_s": 4, "label": "preparation"},
                                                            {"start_s": 4, "end_s": 4, "label": "Preparation"}]))
    case = CaseResult.load(folder)
    assert case.schema_version == 1 and case.sampling.analysed_fps == 5 and case.sampling.frame_size == (320, 240)
    assert case.stages["detection"] == StageRecord("1", 2.5, {"boxes": 3})
    ((seg,),) = [case.segments()]  # aliases become taxonomy names; empty segments are dropped
    assert (seg.label, seg.confidence) == ("Preparation", None)
    assert case.motion() is None and case.phases() is None
    again = CaseResult.from_dict(folder, case.to_dict())  # re-written in the current schema, it reads back the same
    assert again.schema_version == CASE_SCHEMA_VERSION and again.sampling == case.sampling and again.video == case.video


def test_segments_come_from_the_probabilities_when_no_list_was_written(tmp_path):
    case = _publish(tmp_path / "case")
    (case.path / "phase_segments.json").unlink()
    assert [(s.start_s, s.end_s, s.label) for s in case.segments()] == [(s.start_s, s.end_s, s.label)
                                                                      for s in _probs().segments()]


@pytest.mark.parametrize("content, match", [
    ({"schema_version": 99, "video": {}}, r"case schema version 99 is not one of \(1, 2\)"),
    ({"video": {}}, "case schema version None"),
    ({"schema_version": 1}, "case.json has no video"),
    ({"schema_version": 1, "video": {"fps": 25}}, "case.json's video lacks"),
    ({"schema_version": 2, "video": {**{k: v for k, v in VIDEO.to_dict().items() if k != "path"}, "fps": 0}},
     r"frame rate is unknown \(0\)"),
])
def test_unreadable_cases_are_named(tmp_path, content, match):
    (tmp_path / CASE_JSON).write_text(json.dumps(content))
    with pytest.raises(CaseResultError, match=match):
        CaseResult.load(tmp_path)


def test_missing_or_broken_case_json(tmp_path):
    with pytest.raises(CaseResultError, match=r"no analysed case in .*case\.json missing"):
        CaseResult.load(tmp_path)
    (tmp_path / CASE_JSON).write_text("{not json")
    with pytest.raises(CaseResultError, match="is not readable JSON"):
        CaseResult.load(tmp_path)


def test_the_writer_works_in_a_marked_partial_folder_and_discards_it(tmp_path):
    writer = CaseWriter(tmp_path / "case")
    assert writer.path == tmp_path / "case.partial" and (writer.path / PARTIAL_MARKER).is_file()
    with pytest.raises(ValueError, match="'notes.txt' is not a case table"):
        writer.write_table("notes.txt", pd.DataFrame())
    with pytest.raises(ValueError, match="'case.json' is not a streamed case file"):
        writer.file("case.json")
    writer.discard()
    assert not writer.path.exists() and not (tmp_path / "case").exists()


def test_the_writer_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("years of work")
    with pytest.raises(OutputFolderError, match="nothing was deleted"):
        CaseWriter(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.docx").read_text() == "years of work"


def test_clips_are_found_by_their_times(tmp_path):
    case = _publish(tmp_path / "case")
    clip = case.clip_file(1.5, 12.0)
    clip.parent.mkdir()
    clip.write_bytes(b"mp4")
    (clip.parent / "segment_000.mp4").write_bytes(b"other")  # not ours: ignored
    assert case.cached_clips() == [(1.5, 12.0, clip)]


def test_standard_formats_of_the_detections():
    table = _detections()
    results = coco_results(table)
    assert results[0] == {"image_id": 0, "category_id": 3, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.9}
    assert [r["image_id"] for r in results] == [0, 30, 30]
    assert coco_categories(["Grasper", "Bipolar"])[1] == {"id": 2, "name": "Bipolar", "supercategory": "instrument"}
    lines = mot_text(table).splitlines()
    assert lines == ["1,3,10.00,20.00,30.00,40.00,0.9000,-1,-1,-1", "31,3,12.00,22.00,32.00,42.00,0.8000,-1,-1,-1"]
    assert coco_results(pd.DataFrame()) == [] and mot_text(pd.DataFrame()) == ""
    with pytest.raises(ValueError, match=r"lacks columns \['frame_index'\]"):
        coco_results(table.drop(columns="frame_index"))
