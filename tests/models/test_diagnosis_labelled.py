"""Labelled folders, our grouped split, training on them, and the eval-classifier/eval-segmenter CLIs with --split."""
import csv
import json
import math

import cv2
import numpy as np
import pytest

from metrics.classification import auc_interval, balanced_accuracy, bootstrap_interval, macro_auc
from app.cli import main
from models.diagnosis import fit
from models.diagnosis.evaluation import blank_centre, centre_crop, classification_metrics
from models.diagnosis.labelled import group_split, read_labelled, select_rows
from models.registry import resolve_model


def write_labelled(root, rows, masks=False, size=40):
    """rows: (stem, label, split, group); images are solid colours per label (+ a white square mask)."""
    (root / "images").mkdir(parents=True)
    if masks:
        (root / "masks").mkdir()
    colours = {"a": (200, 40, 40), "b": (40, 40, 200), "polyp": (180, 90, 60)}
    rng = np.random.default_rng(0)
    for stem, label, _split, _group in rows:
        img = np.full((size, size + 8, 3), colours[label], np.uint8)
        img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((size, size + 8), np.uint8)
        mask[8:24, 10:30] = 255
        if masks:
            img[mask > 0] = (250, 250, 250)
            cv2.imwrite(str(root / "masks" / f"{stem}.png"), mask)
        cv2.imwrite(str(root / "images" / f"{stem}.png"), img)
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["stem", "label", "split", "patientid"])
        w.writerows(rows)
    return root


@pytest.fixture
def binary_folder(tmp_path):
    rows = [(f"img{i:02d}", "a" if i % 2 else "b", "train", f"p{i // 2}") for i in range(40)]
    return write_labelled(tmp_path / "binary", rows)


def test_group_split_keeps_groups_together_and_is_fixed(binary_folder):
    rows = read_labelled(binary_folder, "patientid")
    first, again = group_split(rows, seed=0), group_split(rows, seed=0)
    assert first == again
    by_group = {}
    for r in rows:
        by_group.setdefault(r.group, set()).add(first[r.stem])
    assert all(len(s) == 1 for s in by_group.values())
    counts = {s: sum(v == s for v in first.values()) for s in ("train", "val", "test")}
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0


def test_split_fixed_in_labels_csv_is_kept(tmp_path):
    rows = [(f"x{i}", "a", "test" if i == 0 else "", f"g{i}") for i in range(10)]
    folder = write_labelled(tmp_path / "fixed", rows)
    assert group_split(read_labelled(folder, "patientid"))["x0"] == "test"


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.3, -0.1), (0.5, 0.2, 0.2)])
def test_bad_fractions_are_refused(binary_folder, fractions):
    with pytest.raises(ValueError, match="fractions must be three"):
        group_split(read_labelled(binary_folder), fractions)


def test_bad_folders_are_explained(tmp_path, binary_folder):
    with pytest.raises(FileNotFoundError, match="must hold images/ and labels.csv"):
        read_labelled(tmp_path)
    with pytest.raises(ValueError, match="no grouping column 'lesion_id'"):
        read_labelled(binary_folder, "lesion_id")
    (binary_folder / "images" / "img00.png").unlink()
    with pytest.raises(ValueError, match="without image files"):
        read_labelled(binary_folder)


def test_select_rows_falls_back_to_the_models_split(binary_folder):
    rows = read_labelled(binary_folder)
    meta = {"split": {"assignment": {"img00": "test", "img01": "val"}}}
    chosen, source = select_rows(rows, "test", meta)
    assert [r.stem for r in chosen] == ["img00"] and source == "model metadata"
    assert select_rows(rows, "train", meta)[1] == "labels.csv"
    with pytest.raises(ValueError, match="no rows of split 'holdout'"):
        select_rows(rows, "holdout", meta)


def test_metric_helpers():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert balanced_accuracy(y, np.array([0, 1, 1, 1, 2, 0]), 3) == pytest.approx((0.5 + 1 + 0.5) / 3)
    probs = np.eye(3)[y] * 0.8 + 0.2 / 3
    assert macro_auc(y, probs) == pytest.approx(1.0)
    assert macro_auc(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])) == pytest.approx(1.0)
    lo, hi = auc_interval([0, 0, 1, 1, 0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.5, 0.7], n_boot=200)
    assert 0 <= lo <= hi <= 1
    assert all(math.isnan(v) for v in bootstrap_interval(lambda a: math.nan, np.ones(4), n_boot=5))
    with pytest.raises(ValueError, match="level must lie"):
        bootstrap_interval(np.mean, np.ones(4), level=1.5)
    m = classification_metrics(np.array([0, 1, 1, 0]), np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8], [0.45, 0.55]]),
                               ["a", "b"], {"positive": "b", "threshold": 0.58}, n_boot=50)
    assert m["auc"] == 1.0 and m["sensitivity"] == 1.0 and m["specificity"] == 1.0 and m["ece"] >= 0


def test_bias_check_crops():
    img = np.zeros((100, 200, 3), np.uint8)
    assert centre_crop(img).shape == (70, 140, 3)
    assert (blank_centre(img)[50, 100] == 128).all() and (blank_centre(img)[0, 0] == 0).all()


def test_train_and_eval_classifier_on_our_split(binary_folder, tmp_path, capsys):
    model = fit.train_labelled_classifier(binary_folder, tmp_path / "clf", group_by="patientid", input_size=32, epochs=2,
                                          batch_size=8, positive="a", checkpoint_dir=tmp_path / "ckpt", log=lambda m: None)
    meta = model.metadata
    assert meta["split"]["group_by"] == "patientid" and set(meta["split"]["assignment"].values()) == {"train", "val", "test"}
    assert meta["decision"]["positive"] == "a" and 0 <= meta["decision"]["threshold"] <= 1
    assert meta["temperature"] > 0 and meta["cam_layer"] == "stages.3"
    assert (tmp_path / "ckpt" / "last.pt").exists() and (tmp_path / "ckpt" / "best.pt").exists()
    out = tmp_path / "eval.json"
    assert main(["eval-classifier", str(tmp_path / "clf"), str(binary_folder), "--split", "test", "--json", str(out), "--card"]) == 0
    report = json.loads(out.read_text())
    n_test = sum(v == "test" for v in meta["split"]["assignment"].values())
    assert report["n"] == n_test and report["split_source"] == "model metadata"
    for key in ("auc", "balanced_accuracy", "sensitivity", "specificity", "per_class_auc", "auc_ci95", "ece"):
        assert key in report
    card = (tmp_path / "clf" / "MODEL_CARD.md").read_text()
    assert "held-out test split" in card and "ROC AUC" in card and "--split test" in card
    assert resolve_model(tmp_path / "clf").metadata["evaluation"]["test"]["n"] == n_test


def test_multiclass_eval_reports_per_class(tmp_path):
    rows = [(f"m{i:02d}", "ab"[i % 2], "train", f"p{i}") for i in range(30)]
    folder = write_labelled(tmp_path / "multi", rows)
    fit.train_labelled_classifier(folder, tmp_path / "clf", group_by="patientid", input_size=32, epochs=1, batch_size=8,
                                  log=lambda m: None)
    from models.diagnosis.evaluation import evaluate_labelled_classifier

    report = evaluate_labelled_classifier(tmp_path / "clf", folder, None)
    assert report["split"] == "all" and report["n"] == 30
    assert set(report["per_class_auc"]) == {"a", "b"}


def test_train_and_eval_segmenter_on_our_split(tmp_path, capsys):
    rows = [(f"s{i:02d}", "polyp", "train", "") for i in range(20)]
    folder = write_labelled(tmp_path / "seg", rows, masks=True)
    model = fit.train_labelled_segmenter(folder, tmp_path / "segm", classes=("background", "polyp"), input_size=32, epochs=2,
                                         batch_size=4, log=lambda m: None)
    assert model.metadata["decision"]["positive"] == "polyp"
    assert main(["eval-segmenter", str(tmp_path / "segm"), str(folder), "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == model.metadata["split"]["counts"]["test"]
    assert 0 <= report["dice"] <= 1 and 0 <= report["iou"] <= report["dice"] + 1e-9
    assert len(report["per_image"]) == report["n"]


def test_split_needs_a_labelled_folder(tmp_path, capsys):
    (tmp_path / "plain" / "a").mkdir(parents=True)
    assert main(["eval-classifier", "image-modality", str(tmp_path / "plain"), "--split", "test"]) == 2
    assert "need a folder with labels.csv" in capsys.readouterr().err


def test_centre_crop_model_sees_and_explains_only_the_centre(binary_folder, tmp_path):
    from models.diagnosis.classifier import ImageClassifier

    fit.train_labelled_classifier(binary_folder, tmp_path / "crop", group_by="patientid", input_size=32, epochs=1,
                                  batch_size=8, positive="a", centre_crop=0.5, erase=False, min_scale=0.6, log=lambda m: None)
    clf = ImageClassifier(tmp_path / "crop")
    assert clf.centre_crop == 0.5 and clf.crop_box((40, 80)) == (10, 30, 20, 60)
    heat = clf(np.full((40, 80, 3), 120, np.uint8)).heatmap
    assert heat.shape == (40, 80) and heat[:10].max() == 0 and heat[:, :20].max() == 0
