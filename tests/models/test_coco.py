"""COCO JSON reader: hand-made file and the real TBX11K sample."""
import json

import numpy as np
import pytest

from models.datasets.coco import read_coco
from models.datasets.voc import DatasetError
from tests.conftest import shared_path


def _coco() -> dict:
    return {
        "images": [{"id": 7, "file_name": "a/x.png", "width": 100, "height": 50},
                   {"id": 8, "file_name": "y.png", "width": 20, "height": 20}],
        "categories": [{"id": 1, "name": "Grasper"}, {"id": 3, "name": "Hook"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 30, 20]},
                        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1.5, 2]}],
    }


def test_read_coco_hand_made(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_coco()))
    first, second = read_coco(path, tmp_path / "imgs")
    assert first.image_path == tmp_path / "imgs" / "a" / "x.png"
    assert (first.width, first.height) == (100, 50)
    np.testing.assert_allclose(first.xyxy, [[10, 5, 40, 25], [0, 0, 1.5, 2]])
    assert first.labels == ("Hook", "Grasper")
    assert second.xyxy.shape == (0, 4) and second.labels == ()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("images"), r"lack \['images'\]"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image id 99"),
        (lambda d: d["annotations"][0].update(category_id=5), "unknown category id 5"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2]), r"no \[x, y, w, h\] bbox"),
    ],
)
def test_bad_coco(tmp_path, mutate, match):
    raw = _coco()
    mutate(raw)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match=match):
        read_coco(path, tmp_path)


def test_not_json(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text("{nope")
    with pytest.raises(DatasetError, match="cannot read COCO annotations"):
        read_coco(path, tmp_path)
    path.write_text("[]")
    with pytest.raises(DatasetError, match="not a JSON object"):
        read_coco(path, tmp_path)


def test_real_tbx11k_sample():
    root = shared_path("medical-images", "chest-xray", "tbx11k_test_data")
    anns = read_coco(root / "annotations" / "json" / "TBX11K_train.json", root / "imgs")
    assert len(anns) == 3
    assert all(a.image_path.exists() for a in anns)
    tb = anns[0]
    assert tb.labels == ("ActiveTuberculosis",)
    np.testing.assert_allclose(tb.xyxy[0, 2:] - tb.xyxy[0, :2], [40.2369, 44.5658], atol=1e-3)
    assert anns[2].labels == ()  # the healthy image has no box
