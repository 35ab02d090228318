"""Cholec80 txt and CholecT50 JSON readers, on hand-made files and on the shared CholecT50 videos."""
import json

import numpy as np
import pytest

from models.datasets.cholec80 import (
    read_cholec80_phases,
    read_cholec80_tools,
    write_cholec80_phases,
)
from models.datasets.cholect50 import presence_frames, read_cholect50, read_cholect50_labels
from models.datasets.voc import DatasetError
from models.taxonomy import load_taxonomy
from tests.conftest import shared_path

PHASE_TXT = "Frame\tPhase\n0\tPreparation\n1\tPreparation\n2\tCalotTriangleDissection\n3\tClippingCutting\n"
TOOL_TXT = (
    "Frame\tGrasper\tBipolar\tHook\tScissors\tClipper\tIrrigator\tSpecimenBag\n"
    "0\t1\t0\t0\t0\t0\t0\t0\n25\t1\t0\t1\t0\t0\t0\t0\n50\t0\t0\t0\t0\t0\t0\t1\n"
)


def test_read_cholec80_phases(tmp_path):
    path = tmp_path / "video01-phase.txt"
    path.write_text(PHASE_TXT)
    ann = read_cholec80_phases(path, fps=2.0)
    assert ann.video == "video01"
    assert ann.frame_index.tolist() == [0, 1, 2, 3]
    assert ann.phase_id.tolist() == [0, 0, 1, 2]
    np.testing.assert_allclose(ann.seconds, [0, 0.5, 1.0, 1.5])
    one_fps = ann.per_second()
    assert one_fps.frame_index.tolist() == [0, 2] and one_fps.phase_id.tolist() == [0, 1]


def test_read_cholec80_tools_in_taxonomy_order(tmp_path):
    path = tmp_path / "video01-tool.txt"
    # Columns in another order are mapped by name.
    path.write_text("Frame\tHook\tGrasper\n0\t1\t0\n25\t0\t1\n")
    ann = read_cholec80_tools(path, fps=25)
    tax = load_taxonomy()
    assert ann.tool_names == tuple(tax.tool_names)
    assert ann.presence[0, tax.tool_id("Hook")] and not ann.presence[0, tax.tool_id("Grasper")]
    assert ann.presence[1].tolist() == [True] + [False] * 6
    path.write_text(TOOL_TXT)
    ann = read_cholec80_tools(path, fps=25)
    assert ann.frame_index.tolist() == [0, 25, 50] and ann.seconds.tolist() == [0, 1, 2]
    assert ann.presence.sum(axis=0).tolist() == [2, 0, 1, 0, 0, 0, 1]


@pytest.mark.parametrize(
    "kind, text, match",
    [
        ("phase", "0\tPreparation\n", "first line must start with 'Frame'"),
        ("phase", "Frame\tPhase\nx\tPreparation\n", "line 2: frame 'x' is not an integer"),
        ("phase", "Frame\tPhase\n0\tLunch\n", "line 2: unknown phase 'Lunch'"),
        ("phase", "Frame\tPhase\n0\n", "expected 'Frame<TAB>Phase'"),
        ("phase", "", "first line must start"),
        ("tool", "Frame\tGrasper\tWrench\n", "unknown tool"),
        ("tool", "Frame\tGrasper\n0\t2\n", "tool value '2' is not 0 or 1"),
        ("tool", "Frame\tGrasper\n0\t1\t1\n", "expected 2 columns"),
    ],
)
def test_bad_annotation_files(tmp_path, kind, text, match):
    read = {"phase": read_cholec80_phases, "tool": read_cholec80_tools}[kind]
    path = tmp_path / f"video02-{kind}.txt"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        read(path, fps=25)


def test_write_then_read_cholec80_phases_uses_the_video_fps(tmp_path):
    path = tmp_path / "pred-phase.txt"
    write_cholec80_phases(path, seconds=[0, 1, 2], phase_id=[0, 1, 3], fps=4, num_frames=11)
    lines = path.read_text().splitlines()
    assert lines[0] == "Frame\tPhase" and len(lines) == 12
    back = read_cholec80_phases(path, fps=4)
    assert back.phase_id.tolist() == [0] * 4 + [1] * 4 + [3] * 3
    assert lines[5] == "4\tCalotTriangleDissection"
    # Frames before the first prediction take it; times need not be whole seconds.
    write_cholec80_phases(path, seconds=[0.5, 1.5], phase_id=[2, 4], fps=2, num_frames=4)
    assert read_cholec80_phases(path, fps=2).phase_id.tolist() == [2, 2, 2, 4]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seconds": [0, 1], "phase_id": [0], "fps": 25, "num_frames": 5}, "as many phase ids"),
        ({"seconds": [1, 0], "phase_id": [0, 1], "fps": 25, "num_frames": 5}, "strictly increasing"),
        ({"seconds": [0], "phase_id": [7], "fps": 25, "num_frames": 5}, "phase ids must lie in 0..6"),
        ({"seconds": [0], "phase_id": [0], "fps": 0, "num_frames": 5}, "fps must be positive"),
    ],
)
def test_write_bad_predictions(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_cholec80_phases(tmp_path / "x.txt", **kwargs)


def _cholect50_json(annotations: dict) -> dict:
    return {
        "video": 99,
        "fps": 1,
        "num_frames": len(annotations),
        "categories": {
            "instrument": {"0": "grasper", "1": "bipolar", "2": "hook", "3": "scissors", "4": "clipper", "5": "irrigator"},
            "phase": {"0": "preparation", "1": "carlot-triangle-dissection", "2": "clipping-and-cutting",
                      "3": "gallbladder-dissection", "4": "gallbladder-packaging",
                      "5": "cleaning-and-coagulation", "6": "gallbladder-extraction"},
        },
        "annotations": annotations,
    }


def _row(tool: int, box: tuple[float, float, float, float], phase: int) -> list[float]:
    return [0, tool, 1.0, *box, 0, 0, 1.0, -1, -1, -1, -1, phase]


@pytest.fixture
def tiny_cholect50(tmp_path):
    from PIL import Image

    (tmp_path / "labels").mkdir()
    images = tmp_path / "videos" / "VID99"
    images.mkdir(parents=True)
    annotations = {
        "3": [_row(0, (0.1, 0.2, 0.5, 0.25), 0), _row(0, (0.1, 0.2, 0.5, 0.25), 0), _row(2, (-1, -1, -1, -1), 0)],
        "1": [_row(5, (0.0, 0.0, 1.0, 1.0), 0)],
        "10": [_row(4, (0.5, 0.5, 0.25, 0.5), 2)],
    }
    (tmp_path / "labels" / "VID99.json").write_text(json.dumps(_cholect50_json(annotations)))
    for frame in (1, 3, 7, 10):  # frame 7 has no labels; the "(1)" copy is ignored
        Image.new("RGB", (200, 100)).save(images / f"{frame:06d}.jpg")
    Image.new("RGB", (200, 100)).save(images / "000003 (1).jpg")
    return tmp_path


def test_read_cholect50_hand_made(tiny_cholect50):
    (video,) = read_cholect50(tiny_cholect50)
    tax = load_taxonomy()
    assert video.name == "VID99" and video.fps == 1.0
    assert video.phases.frame_index.tolist() == [1, 3, 10]
    assert video.phases.phase_id.tolist() == [0, 0, tax.phase_id("ClippingCutting")]
    assert video.tools.tool_names == ("Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator")
    assert video.tools.presence.tolist() == [
        [False, False, False, False, False, True],
        [True, False, True, False, False, False],
        [False, False, False, False, True, False],
    ]
    assert sorted(video.images) == [1, 3, 7, 10]
    boxes = {b.image_path.name: b for b in video.box_annotations()}
    # The repeated grasper box (two triplet rows) is one box; the hook row has no box.
    assert boxes["000003.jpg"].labels == ("Grasper",)
    np.testing.assert_allclose(boxes["000003.jpg"].xyxy, [[20, 20, 120, 45]])
    np.testing.assert_allclose(boxes["000010.jpg"].xyxy, [[100, 50, 150, 100]])
    assert boxes["000010.jpg"].labels == ("Clipper",)
    frames = presence_frames(tiny_cholect50)
    assert [(p.name, t) for p, t in frames] == [
        ("000001.jpg", {"Irrigator"}), ("000003.jpg", {"Grasper", "Hook"}), ("000010.jpg", {"Clipper"})]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("categories"), "is not a CholecT50 label file"),
        (lambda d: d["annotations"].update({"5": [_row(0, (0, 0, 1, 1), 0), _row(0, (0, 0, 1, 1), 3)]}), "frame 5 has phase ids"),
        (lambda d: d["annotations"].update({"5": [_row(9, (0, 0, 1, 1), 0)]}), "unknown instrument id 9"),
        (lambda d: d["categories"]["phase"].update({"7": "coffee-break"}), "unknown phase 'coffee-break'"),
        (lambda d: d["annotations"].update({"5": []}), "frame 5 has no annotation row"),
    ],
)
def test_bad_cholect50_json(tmp_path, mutate, match):
    raw = _cholect50_json({"1": [_row(0, (0, 0, 1, 1), 0)]})
    mutate(raw)
    path = tmp_path / "VID01.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match=match):
        read_cholect50_labels(path)


def test_read_cholect50_bad_roots(tmp_path, tiny_cholect50):
    with pytest.raises(DatasetError, match="no labels/ folder"):
        read_cholect50(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"videos \['VID01'\] not in"):
        read_cholect50(tiny_cholect50, videos=["VID01"])


def test_real_cholect50_val():
    root = shared_path("cholect50-val")
    videos = read_cholect50(root)
    assert [v.name for v in videos] == ["VID68", "VID70", "VID73"]
    tax = load_taxonomy()
    for v in videos:
        assert len(v.phases) >= 150
        assert np.all(np.diff(v.phases.frame_index) > 0)
        # Every labelled frame has its image; the surgery starts in Preparation and ends in retraction.
        assert set(v.phases.frame_index.tolist()) <= set(v.images)
        assert v.phases.phase_id[0] == tax.phase_id("Preparation")
        assert v.phases.phase_id[-1] == tax.phase_id("GallbladderRetraction")
        assert set(v.phases.phase_id.tolist()) == set(range(7))
        assert v.tools.presence.any(axis=1).mean() > 0.5
    vid70 = videos[1]
    assert all(" " not in p.name for p in vid70.images.values())  # the "(1)" copies are skipped
    boxes = videos[0].box_annotations()
    assert len(boxes) == len(videos[0].phases)
    first = boxes[0]
    assert first.width == 774 and first.height == 434
    assert (first.xyxy[:, 2] <= first.width + 1).all() and first.labels == ("Grasper",) * 3
