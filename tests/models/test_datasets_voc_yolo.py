import numpy as np
import pytest
import yaml

from models.datasets.voc import DatasetError, VOCDataset, read_voc_xml
from models.datasets.yolo import read_yolo_labels, voc_to_yolo
from tests.conftest import shared_path

XML = """<annotation><filename>{name}.jpg</filename><size><width>200</width><height>100</height><depth>3</depth></size>
<object><name>Grasper</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>80</ymax></bndbox></object>
<object><name>Hook</name><bndbox><xmin>100</xmin><ymin>0</ymin><xmax>200</xmax><ymax>50</ymax></bndbox></object>
</annotation>"""


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for name in ("a", "b"):
        (root / "Annotations" / f"{name}.xml").write_text(XML.format(name=name))
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(b"jpeg")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("a\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("b\n")
    (root / "class_list.txt").write_text("1 Grasper\n2 Hook\n")
    return root


def test_read_voc_xml(voc):
    ann = read_voc_xml(voc / "Annotations" / "a.xml", voc / "JPEGImages")
    assert (ann.width, ann.height, ann.labels) == (200, 100, ("Grasper", "Hook"))
    np.testing.assert_allclose(ann.xyxy, [[10, 20, 60, 80], [100, 0, 200, 50]])


def test_voc_to_yolo_round_trip(voc, tmp_path):
    data = voc_to_yolo(voc, tmp_path / "yolo", {"train": ["trainval"], "val": ["test"]})
    spec = yaml.safe_load(data.read_text())
    assert spec["names"] == {0: "Grasper", 1: "Hook"} and spec["train"] == "images/train"
    assert (tmp_path / "yolo" / "images" / "val" / "b.jpg").is_symlink()
    lines = (tmp_path / "yolo" / "labels" / "train" / "a.txt").read_text().split("\n")
    assert lines[0] == "0 0.175000 0.500000 0.250000 0.600000"
    back = read_yolo_labels(tmp_path / "yolo" / "labels" / "train" / "a.txt", 200, 100, ["Grasper", "Hook"])
    np.testing.assert_allclose(back.xyxy, [[10, 20, 60, 80], [100, 0, 200, 50]], atol=1e-3)
    assert back.labels == ("Grasper", "Hook")


@pytest.mark.parametrize(
    "setup,match",
    [
        (lambda r: (r / "Annotations" / "a.xml").write_text("<annotation>"), "cannot read VOC annotation"),
        (lambda r: (r / "class_list.txt").write_text("1 Grasper\n"), "label 'Hook'"),
    ],
)
def test_bad_voc_inputs(voc, tmp_path, setup, match):
    setup(voc)
    with pytest.raises(DatasetError, match=match):
        voc_to_yolo(voc, tmp_path / "yolo", {"train": ["trainval"]})


def test_not_a_voc_folder_and_missing_split(voc, tmp_path):
    with pytest.raises(DatasetError, match="is not a VOC dataset"):
        VOCDataset(tmp_path)
    with pytest.raises(DatasetError, match="split 'val' not found"):
        VOCDataset(voc).split_ids("val")


def test_yolo_label_file_with_wrong_columns(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("0 0.5 0.5\n")
    with pytest.raises(DatasetError, match="expected 5 columns, got 3"):
        read_yolo_labels(bad, 10, 10, ["Grasper"])


def test_real_m2cai16_splits_and_classes():
    voc = VOCDataset(shared_path("m2cai16-tool-locations"))
    assert voc.class_names() == ["Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator", "SpecimenBag"]
    assert (len(voc.split_ids("trainval")), len(voc.split_ids("test"))) == (2248, 563)
    anns = voc.read_split("test")
    assert sum(len(a.labels) for a in anns) > 563 and all(a.image_path.exists() for a in anns[:20])
