"""Classification metrics on hand-worked cases."""
import json
import math

import numpy as np
import pytest

from metrics.classification import (
    auc,
    classification_report,
    confusion_matrix,
    roc_curve,
    sensitivity_specificity,
)


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    cm = confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_sensitivity_specificity_one_vs_rest():
    # binary: TP=3 FN=1 FP=2 TN=4
    cm = np.array([[4, 2], [1, 3]])
    sens, spec = sensitivity_specificity(cm)
    assert sens[1] == pytest.approx(3 / 4) and spec[1] == pytest.approx(4 / 6)
    assert sens[0] == pytest.approx(4 / 6) and spec[0] == pytest.approx(3 / 4)


def test_undefined_rates_are_nan_not_zero():
    sens, spec = sensitivity_specificity(np.array([[5, 0], [0, 0]]))
    assert math.isnan(sens[1]) and spec[1] == 1.0


def test_roc_curve_and_auc_by_hand():
    # scores 0.9(+) 0.8(-) 0.7(+) 0.1(-): pairs ranked right 3 of 4 -> AUC 0.75
    roc = roc_curve([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    assert roc.tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert roc.fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert roc.auc == pytest.approx(0.75)


def test_tied_scores_form_one_point():
    roc = roc_curve([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5])
    assert roc.tpr.tolist() == [0, 1] and roc.fpr.tolist() == [0, 1]
    assert roc.auc == pytest.approx(0.5)


def test_perfect_and_inverted_rankings():
    assert roc_curve([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]).auc == pytest.approx(1.0)
    assert roc_curve([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]).auc == pytest.approx(0.0)


def test_auc_undefined_with_one_class():
    assert math.isnan(roc_curve([1, 1, 1], [0.2, 0.5, 0.9]).auc)
    assert math.isnan(auc(np.array([0.0]), np.array([0.0])))


def test_report_multiclass_and_json():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    report = classification_report([0, 1, 2, 1], probs, ["a", "b", "c"])
    assert report.confusion.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert report.accuracy == pytest.approx(0.75)
    d = report.to_dict()
    json.dumps(d)  # NaN-free, serialisable
    assert d["per_class"]["b"]["sensitivity"] == pytest.approx(0.5)
    assert d["per_class"]["a"]["specificity"] == pytest.approx(2 / 3)
    assert d["per_class"]["c"]["auc"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: confusion_matrix([0, 1], [0], 2), "2 labels, y_pred has 1"),
        (lambda: confusion_matrix([0, 3], [0, 1], 2), "outside 0..1"),
        (lambda: classification_report([0], np.ones((1, 3)), ["a", "b"]), r"must be \(N, 2\)"),
        (lambda: roc_curve([1, 0], [0.3]), "scores has 1"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_roc_matches_scikit_learn_and_ignores_tie_order():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = np.round(rng.random(300), 1)  # many ties
    roc = roc_curve(y, s)
    assert roc.auc == pytest.approx(roc_auc_score(y, s))
    assert len(roc.thresholds) == len(np.unique(s)) + 1  # one point per distinct score
    order = rng.permutation(300)
    assert roc_curve(y[order], s[order]).auc == pytest.approx(roc.auc)


def test_roc_with_one_class_keeps_the_other_rate():
    roc = roc_curve([0, 0, 0], [0.2, 0.5, 0.5])
    assert np.isnan(roc.tpr).all()
    assert roc.fpr.tolist() == pytest.approx([0, 2 / 3, 1])
    assert roc.thresholds[0] == np.inf
