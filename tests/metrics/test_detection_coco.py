"""Our box mAP against pycocotools' COCOeval: a synthetic case always, the m2cai16 test split when present."""
import contextlib
import io

import numpy as np
import pytest

from metrics.detection import ImageBoxes, evaluate_detections
from tests.conftest import shared_path


def coco_eval(gts: list[ImageBoxes], preds: list[ImageBoxes], names: list[str]) -> tuple[float, float, np.ndarray]:
    """pycocotools' mAP50, mAP50:95 and (T, K) per-threshold per-class AP (area all, 100 detections)."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        b = np.asarray(b, float).reshape(-1, 4)
        return np.c_[b[:, :2], b[:, 2:] - b[:, :2]]

    images, annotations, results = [], [], []
    for i, (g, p) in enumerate(zip(gts, preds), start=1):
        images.append({"id": i})
        for box, c in zip(xywh(g.xyxy), g.class_id):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(c) + 1,
                                "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 0})
        for box, c, s in zip(xywh(p.xyxy), p.class_id, p.confidence):
            results.append({"image_id": i, "category_id": int(c) + 1, "bbox": box.tolist(), "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations,
                        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results) if results else COCO(), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at area "all", maxDets 100
    per_class = np.where((precision > -1).any(1), np.where(precision > -1, precision, 0).mean(1), np.nan)
    return float(ev.stats[1]), float(ev.stats[0]), per_class


def assert_same_as_coco(gts, preds, names):
    ours = evaluate_detections(gts, preds, names)
    map50, map5095, per_class = coco_eval(gts, preds, names)
    assert ours.map50 == pytest.approx(map50, abs=1e-9)
    assert ours.map50_95 == pytest.approx(map5095, abs=1e-9)
    for k, name in enumerate(names):
        if ours.support[name]:
            assert ours.ap50[name] == pytest.approx(per_class[0, k], abs=1e-9), name
            assert ours.ap50_95[name] == pytest.approx(np.nanmean(per_class[:, k]), abs=1e-9), name


def _jittered(gts: list[ImageBoxes], rng: np.random.Generator, n_classes: int) -> list[ImageBoxes]:
    """Predictions from ground truth: shifted boxes, random scores (with ties), misses, duplicates, strays."""
    preds = []
    for g in gts:
        xyxy = np.asarray(g.xyxy, float).reshape(-1, 4)
        keep = rng.random(len(xyxy)) > 0.15
        boxes = xyxy[keep] + rng.normal(0, 0.08, (int(keep.sum()), 4)) * (xyxy[keep, 2:] - xyxy[keep, :2]).repeat(2, 1)
        cls = np.asarray(g.class_id)[keep]
        dup = rng.random(len(boxes)) < 0.2
        stray = rng.uniform(0, 400, (rng.integers(0, 3), 2))
        boxes = np.r_[boxes, boxes[dup] + 3, np.c_[stray, stray + rng.uniform(10, 80, stray.shape)]]
        cls = np.r_[cls, cls[dup], rng.integers(0, n_classes, len(stray))]
        scores = np.round(rng.random(len(boxes)), 2)  # two decimals: many tied scores across images
        preds.append(ImageBoxes(boxes, cls.astype(int), scores))
    return preds


def test_map_equals_pycocotools_on_a_synthetic_set():
    rng = np.random.default_rng(0)
    names = ["Grasper", "Hook", "Clipper"]
    gts = []
    for _ in range(40):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 300, (n, 2))
        gts.append(ImageBoxes(np.c_[xy, xy + rng.uniform(15, 120, (n, 2))], rng.integers(0, 2, n)))  # no Clipper gt
    assert_same_as_coco(gts, _jittered(gts, rng, len(names)), names)


@pytest.fixture(scope="module")
def m2cai16_test():
    from models.datasets.voc import VOCDataset

    return VOCDataset(shared_path("m2cai16-tool-locations")).read_split("test")


@pytest.mark.slow
def test_map_equals_pycocotools_on_m2cai16_test_with_the_shipped_detector(m2cai16_test):
    from models.detector import Detector
    from models.eval_detector import predict_images

    detector = Detector(None, conf=0.001, iou=0.6, max_det=100, backend="torch")  # the card's settings
    names = detector.class_names
    gts = [ImageBoxes(a.xyxy, np.array([names.index(label) for label in a.labels], dtype=int)) for a in m2cai16_test]
    preds = predict_images(detector, [a.image_path for a in m2cai16_test])
    assert len(gts) == 563
    assert_same_as_coco(gts, preds, names)


def test_map_equals_pycocotools_on_m2cai16_test_ground_truth_jittered(m2cai16_test):
    from models.taxonomy import load_taxonomy

    names = load_taxonomy().tool_names
    gts = [ImageBoxes(a.xyxy, np.array([names.index(label) for label in a.labels], dtype=int)) for a in m2cai16_test]
    assert_same_as_coco(gts, _jittered(gts, np.random.default_rng(1), len(names)), names)
