"""Classifier/segmenter training, evaluation, inference with explanations, and the still analysis."""
import json

import cv2
import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from metrics.segmentation import dice
from models.diagnosis import still
from models.diagnosis.classifier import ImageClassifier
from models.diagnosis.data import read_mask, scan_pairs
from models.diagnosis.diagnose import STILL, analysis_choices, diagnose, load_analyzer
from models.diagnosis.image import read_image
from models.diagnosis.nets import build_network
from models.diagnosis.segmenter import ImageSegmenter
from models.diagnosis.train import evaluate_classifier, evaluate_segmenter, train_classifier, train_segmenter
from models.registry import MODELS_DIR
from tests.conftest import shared_path


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    """A two-class ImageFolder anyone can separate: reddish vs bluish noisy squares (PNG + one DICOM-free JPEG)."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for cls, channel in (("red", 0), ("blue", 2)):
        (root / cls).mkdir()
        for i in range(6):
            img = rng.integers(0, 90, (40, 48, 3), dtype=np.uint8)
            img[..., channel] += 150
            cv2.imwrite(str(root / cls / f"{i}.png"), img[..., ::-1])
    return root


@pytest.fixture(scope="module")
def colour_model(colour_folder, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("models") / "colour"
    return train_classifier(colour_folder, out, input_size=32, epochs=3, steps_per_epoch=8, batch_size=8, lr=5e-3,
                            modality="test", log=lambda m: None)


def test_trained_classifier_separates_easy_classes(colour_model, colour_folder):
    assert sorted(p.name for p in colour_model.weights.parent.iterdir()) == ["MODEL_CARD.md", "metadata.json", "weights.pt"]
    assert colour_model.metadata["classes"] == ["blue", "red"]
    report = evaluate_classifier(colour_model, colour_folder)
    json.dumps(report)
    assert report["n"] == 12 and report["accuracy"] == 1.0  # eval-mode (BatchNorm running stats) must work
    assert report["per_class"]["red"]["sensitivity"] == 1.0 and report["per_class"]["red"]["auc"] == 1.0
    assert len(report["per_class"]["red"]["roc"]["fpr"]) >= 2 and len(report["per_image"]) == 12


def test_classifier_scores_and_gradcam(colour_model, colour_folder):
    clf = ImageClassifier(colour_model)
    rgb = cv2.resize(cv2.imread(str(colour_folder / "red" / "0.png"))[..., ::-1], (70, 50))
    result = clf(rgb)
    assert result.scores.sum() == pytest.approx(1.0, abs=1e-5) and result.top_label == "red"
    assert result.heatmap.shape == (50, 70) and 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    assert "not for clinical use" in result.to_dict()["note"]


def test_transfer_from_our_weights_to_new_classes(colour_model, tmp_path):
    data = tmp_path / "data"
    for cls in ("a", "b", "c"):
        (data / cls).mkdir(parents=True)
        cv2.imwrite(str(data / cls / "x.png"), np.full((20, 20, 3), ord(cls), np.uint8))
    messages = []
    entry = train_classifier(data, tmp_path / "m", input_size=32, epochs=1, steps_per_epoch=1, batch_size=3,
                             init=colour_model.weights.parent, log=messages.append)
    assert entry.classes == ["a", "b", "c"]
    assert any(m.startswith("initialised") for m in messages)  # all but the last layer came from our weights
    assert "tensors" in entry.metadata["training"]["init"]


def test_kvasir_segmenter_end_to_end(tmp_path):
    """Train a tiny polyp segmenter for a few steps; eval reports Dice from our metric code."""
    pairs_dir = shared_path("medical-images", "kvasir-seg")
    entry = train_segmenter(pairs_dir, tmp_path / "polyp", classes=["background", "polyp"], input_size=64, epochs=1,
                            steps_per_epoch=3, batch_size=2, modality="colonoscopy", log=lambda m: None)
    report = evaluate_segmenter(entry, pairs_dir)
    polyp = report["classes"]["polyp"]
    assert polyp["n"] == 5 and 0.0 <= polyp["mean_dice"] <= 1.0
    # The reported Dice is the metric module's Dice of the model's own masks.
    seg = ImageSegmenter(entry)
    img, msk = scan_pairs(pairs_dir)[0]
    expected = dice(seg(read_image(img).to_rgb()).mask("polyp"), read_mask(msk) == 1)
    assert polyp["per_image"][0]["dice"] == pytest.approx(expected, abs=1e-6)


def test_segmenter_area_in_mm2_on_dicom(tmp_path):
    pairs = tmp_path / "pairs"
    for sub in ("images", "masks"):
        (pairs / sub).mkdir(parents=True)
    img = np.zeros((32, 32, 3), np.uint8)
    img[8:24, 8:24] = 200
    cv2.imwrite(str(pairs / "images" / "a.png"), img)
    cv2.imwrite(str(pairs / "masks" / "a.png"), (img[..., 0] > 0).astype(np.uint8) * 255)
    entry = train_segmenter(pairs, tmp_path / "seg", input_size=32, epochs=1, steps_per_epoch=1, batch_size=1, log=lambda m: None)
    image = read_image(get_testdata_file("CT_small.dcm"))
    result = diagnose(image, load_analyzer(entry.weights.parent))
    row = result.result.rows()[0]
    assert row["area_mm2"] == pytest.approx(row["area_px"] * 0.661468 ** 2, rel=1e-3)
    assert set(result.overlays) == {"mask: foreground"}
    out = result.to_dict()
    assert out["image"]["modality"] == "CT" and "PatientName (emptied)" in out["image"]["removed_phi"]
    assert "not for clinical use" in out["disclaimer"]
    assert "CT_small" not in json.dumps(out)  # file names (often UIDs) are not carried into results


def test_diagnosis_model_choices_and_kind_checks(colour_model, tmp_path):
    choices = analysis_choices(colour_model.weights.parent.parent)
    assert list(choices.values())[0] == STILL and str(colour_model.weights.parent) in choices.values()
    with pytest.raises(ValueError, match="is a 'image-classifier'"):
        ImageSegmenter(colour_model)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: build_network("image-classifier", "resnet9000", 2), "unknown image-classifier architecture 'resnet9000'"),
        (lambda: build_network("image-detector", "resnet18", 2), "unknown model kind 'image-detector'"),
        (lambda: load_analyzer("no-such-model"), "no model at 'no-such-model'"),
    ],
)
def test_bad_model_references(call, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        call()


def test_no_detector_weights_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(still, "DETECTOR_CANDIDATES", (tmp_path / "none", "no-such-shipped-model"))
    with pytest.raises(still.NoDetectorError, match="no instrument-detector weights"):
        still.find_detector_weights()


def test_surgical_still_on_real_frame(cholec_clips):
    clip = next(c for c in cholec_clips if "group_57" in c.name)  # hook dissecting the cystic artery
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 400)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    ok, png = cv2.imencode(".png", bgr)
    image = read_image(png.tobytes(), name="still.png")
    result = diagnose(image, load_analyzer(STILL))
    report = result.result
    assert {r["tool"] for r in report.tool_rows()} == set(report.class_names)
    assert report.presence[report.class_names.index("Hook")] >= 0.5
    quality = {r["measure"]: r for r in report.quality_rows()}
    assert {"blur", "haze", "dark", "out_of_body"} <= set(quality)
    assert not quality["out_of_body"]["flagged"]  # a real in-body Cholec80 frame
    anatomy = (MODELS_DIR / "anatomy" / "weights.pt").is_file()  # the still adds its mask and CVS criteria
    assert report.heatmap.shape == (480, 854)
    assert set(result.overlays) == {"detections", "explanation"} | ({"anatomy"} if anatomy else set())
    if anatomy:
        assert result.overlays["anatomy"].shape == (480, 854, 3)
        assert [r["criterion"] for r in report.cvs_rows()] == ["C1", "C2", "C3"]
        assert all(0 <= r["probability"] <= 1 for r in report.cvs_rows())
    assert result.overlays["detections"].shape == (480, 854, 3)
    json.dumps(result.to_dict())
