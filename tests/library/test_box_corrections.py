"""Instrument box corrections: an educator's boxes on an analysed frame, stored beside the model's detections,
and their export with the frames as YOLO and COCO (decoded from the case's video at the corrected times)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from library import Library, LibraryError
from library.teaching import Teaching
from library.worker import Worker
from models.taxonomy import load_taxonomy

MODEL_BOX = {"x1": 1.0, "y1": 2.0, "x2": 30.0, "y2": 40.0, "label": "Grasper", "confidence": 0.9}  # the fake analysis


def test_the_model_boxes_of_a_frame_and_a_correction_beside_them(lib, analysed):
    teaching = Teaching(lib)
    model = teaching.model_boxes(analysed, 1.0)
    assert (model.source, model.width, model.height, model.frame_index) == ("model", 854, 480, 25)
    assert model.boxes == (MODEL_BOX,)
    assert teaching.model_boxes(analysed, 5.0).boxes == ()
    corrected = [{"x1": 1, "y1": 2, "x2": 30, "y2": 40, "label": "hook"},  # relabelled (an alias)
                 {"x1": 400, "y1": 100.04, "x2": 854, "y2": 480, "label": "Clipper"}]  # a missing one added
    saved = teaching.save_boxes(analysed, 1.01, corrected, author=" E01 ")  # the nearest analysed frame (25 fps)
    assert (saved.source, saved.author, saved.timestamp_s, saved.frame_index) == ("educator", "E01", 1.0, 25)
    assert [(b["label"], b["y1"]) for b in saved.boxes] == [("Hook", 2.0), ("Clipper", 100.0)]
    assert teaching.frame_boxes(analysed, 1.0) == saved
    assert teaching.model_boxes(analysed, 1.0).boxes == (MODEL_BOX,)  # the model's output is kept
    assert (lib.case_dir(analysed) / "detections.parquet").exists()
    again = teaching.save_boxes(analysed, 1.0, [], author="E02")  # no instrument on the frame: all boxes wrong
    assert again.boxes == () and [f.author for f in teaching.box_corrections(analysed)] == ["E02"]
    teaching.clear_boxes(analysed, 1.0)
    assert teaching.frame_boxes(analysed, 1.0).source == "model" and teaching.box_corrections() == []


BOX = {"x1": 10, "y1": 10, "x2": 50, "y2": 60, "label": "Grasper"}


@pytest.mark.parametrize(("time_s", "boxes", "match"), [
    (1.0, [{**BOX, "label": "Scalpel"}], "box 1: unknown instrument 'Scalpel'"),
    (1.0, [BOX, {**BOX, "x2": 900}], r"box 2 \(10, 10, 900, 60\) is outside the 854x480 frame"),
    (1.0, [{**BOX, "y1": -3}], r"box 1 \(10, -3, 50, 60\) is outside the 854x480 frame"),
    (1.0, [{**BOX, "x1": 50}], r"x1 < x2 and y1 < y2, got \(50, 10, 50, 60\)"),
    (1.0, [{**BOX, "x2": float("nan")}], "x1 < x2 and y1 < y2"),
    (1.0, [{"x1": 1, "y1": 1, "x2": 5, "label": "Hook"}], r"box 1 lacks \['y2'\]"),
    (1.0, [{**BOX, "x1": "left"}], r"coordinates must be numbers, got \['left', 10, 50, 60\]"),
    (40.0, [BOX], r"frame time 40.0 s is outside the video \(0-32 s\)"),
    (-1, [BOX], r"frame time -1 s is outside the video"),
    ("soon", [BOX], "frame time must be a number of seconds, got 'soon'"),
])
def test_bad_box_corrections_are_refused(lib, analysed, time_s, boxes, match):
    teaching = Teaching(lib)
    with pytest.raises(LibraryError, match=match):
        teaching.save_boxes(analysed, time_s, boxes)
    assert teaching.box_corrections() == []


def test_deleting_a_case_removes_its_box_corrections(lib, analysed):
    teaching = Teaching(lib)
    teaching.save_boxes(analysed, 1.0, [BOX])
    lib.delete_case(analysed)
    assert teaching.box_corrections() == []


# -- exports with the frames: a real tiny video (96x64, 10 fps, 6 s) analysed at 1 fps by the AppTest fake ---------
@pytest.fixture
def real_case(settings, tmp_path):
    """(library with the real probe, case id): the AppTest fake tracks (a Grasper moving right; a Clipper at 3-4 s)."""
    from tests.app.conftest import make_video, write_case

    library = Library(settings)
    case, _ = library.ingest(make_video(tmp_path / "clip.mp4"), title="Box clip")
    Worker(library, analyze=lambda video, out, config, progress: write_case(out, video), poll_s=0.01).run(once=True)
    yield library, case.id
    library.close()


def test_the_export_holds_the_frames_with_yolo_and_coco_boxes(real_case, tmp_path):
    from analysis.clips import representative_frame
    from models.datasets.coco import read_coco
    from models.datasets.yolo import read_yolo_labels

    lib, case_id = real_case
    teaching = Teaching(lib)
    model = teaching.model_boxes(case_id, 3.0)
    assert [b["label"] for b in model.boxes] == ["Grasper", "Clipper"] and model.frame_index == 30
    boxes = [{**model.boxes[0]}, {**model.boxes[1], "label": "Scissors"},  # the clipper was scissors
             {"x1": 70, "y1": 40, "x2": 96, "y2": 64, "label": "Hook"}]  # and a hook was missed
    teaching.save_boxes(case_id, 3.0, boxes, author="E01")
    teaching.save_boxes(case_id, 5.0, [])  # a frame the model boxed wrongly: no instrument at all
    teaching.save_reference(case_id, [{"start_s": 0, "end_s": 3, "label": "Preparation"},
                                      {"start_s": 3, "end_s": 6, "label": "ClippingCutting"}])
    out = tmp_path / "export"
    entries = teaching.export_corrections(out)
    stem = f"video{1000 + case_id}"
    assert [e["video"] for e in entries] == [stem]
    assert (out / "phase_annotations" / f"{stem}-phase.txt").exists()

    names = load_taxonomy().tool_names
    spec = yaml.safe_load((out / "yolo" / "data.yaml").read_text())
    assert spec["names"] == dict(enumerate(names)) and spec["train"] == "images"
    images = sorted(p.name for p in (out / "yolo" / "images").iterdir())
    assert images == [f"{stem}_000030.jpg", f"{stem}_000050.jpg"]  # frame index at the video's 10 fps
    label = read_yolo_labels(out / "yolo" / "labels" / f"{stem}_000030.txt", 96, 64, names)
    assert label.labels == ("Grasper", "Scissors", "Hook")
    np.testing.assert_allclose(label.xyxy, [[b[k] for k in ("x1", "y1", "x2", "y2")] for b in boxes], atol=0.01)
    assert (out / "yolo" / "labels" / f"{stem}_000050.txt").read_text() == ""

    import cv2

    frame = cv2.cvtColor(cv2.imread(str(out / "yolo" / "images" / f"{stem}_000030.jpg")), cv2.COLOR_BGR2RGB)
    decoded = representative_frame(lib.get_case(case_id).video_path, 3.0)
    assert frame.shape == decoded.shape == (64, 96, 3)
    assert np.abs(frame.astype(int) - decoded.astype(int)).mean() < 8  # the frame at 3 s (JPEG-close)
    other = representative_frame(lib.get_case(case_id).video_path, 0.0)
    assert np.abs(frame.astype(int) - other.astype(int)).mean() > 20  # not some other frame

    coco = read_coco(out / "coco" / "annotations" / "instances.json", out / "coco" / "images")
    assert [(a.image_path.name, a.labels) for a in coco] == [(f"{stem}_000030.jpg", ("Grasper", "Scissors", "Hook")),
                                                             (f"{stem}_000050.jpg", ())]
    np.testing.assert_allclose(coco[0].xyxy, label.xyxy, atol=0.02)
    assert all(a.image_path.exists() for a in coco)
    raw = json.loads((out / "coco" / "annotations" / "instances.json").read_text())
    assert raw["categories"][0] == {"id": 1, "name": "Grasper", "supercategory": "instrument"}
    assert raw["images"][0]["timestamp_s"] == 3.0 and raw["images"][0]["case_id"] == case_id
    summary = json.loads((out / "corrections.json").read_text())
    assert [(f["image"], f["boxes"], f["author"]) for f in summary["box_frames"]] == [
        (f"{stem}_000030.jpg", 3, "E01"), (f"{stem}_000050.jpg", 0, None)]


def test_the_exported_frames_are_masked(real_case, tmp_path):
    import cv2

    lib, case_id = real_case
    lib.set_mask_regions(case_id, [(0.0, 0.0, 0.5, 0.25)])  # burned-in text in the top-left corner
    Teaching(lib).save_boxes(case_id, 2.0, [{"x1": 60, "y1": 30, "x2": 90, "y2": 60, "label": "Hook"}])
    Teaching(lib).export_boxes(tmp_path / "export")
    (image,) = (tmp_path / "export" / "yolo" / "images").iterdir()
    frame = cv2.imread(str(image))
    assert frame[:14, :46].max() < 30 and frame[20:, 50:].mean() > 40


def test_the_corrections_zip_and_the_command(real_case, tmp_path, capsys):
    import io
    import zipfile

    from app.cli import main

    lib, case_id = real_case
    teaching = Teaching(lib)
    teaching.save_boxes(case_id, 4.0, [{"x1": 50, "y1": 10, "x2": 70, "y2": 30, "label": "Clipper"}])
    names = set(zipfile.ZipFile(io.BytesIO(teaching.corrections_zip([case_id]))).namelist())
    stem = f"video{1000 + case_id}"
    assert {"corrections/yolo/data.yaml", f"corrections/yolo/images/{stem}_000040.jpg",
            f"corrections/yolo/labels/{stem}_000040.txt", "corrections/coco/annotations/instances.json",
            f"corrections/coco/images/{stem}_000040.jpg", "corrections/corrections.json"} <= names
    assert not any(n.startswith("corrections/yolo/images/") for n in
                   zipfile.ZipFile(io.BytesIO(teaching.corrections_zip([case_id + 1]))).namelist())
    where = ["--data-dir", str(lib.settings.data_dir)] + (["--db-url", lib.settings.db_url] if lib.settings.db_url else [])
    assert main(["library", "export-corrections", str(tmp_path / "labels"), *where]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["cases"], printed["box_frames"], printed["boxes"]) == ([], 1, 1)
    assert Path(printed["yolo"]).exists() and Path(printed["coco"]).exists()


@pytest.mark.parametrize(("image", "label", "match"), [
    ("images/a.jpg", "Scalpel", r"label 'Scalpel' of .* is not one of \['Grasper', 'Hook'\]"),
    ("elsewhere/a.jpg", "Hook", "is not inside"),
])
def test_the_coco_writer_refuses_bad_annotations(tmp_path, image, label, match):
    from models.datasets.coco import write_coco
    from models.datasets.voc import BoxAnnotation, DatasetError

    ann = BoxAnnotation(tmp_path / image, 96, 64, np.array([[1, 2, 30, 40]], np.float32), (label,))
    with pytest.raises(DatasetError, match=match):
        write_coco([ann], ["Grasper", "Hook"], tmp_path / "instances.json", tmp_path / "images")
