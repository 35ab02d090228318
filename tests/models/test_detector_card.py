"""The shipped detector's card numbers reproduce with our eval code on the named real data."""
import json

import pytest

from models.registry import MODELS_DIR
from tests.conftest import shared_path

META = MODELS_DIR / "detector" / "metadata.json"


@pytest.fixture(scope="module")
def evaluation():
    meta = json.loads(META.read_text())
    if "evaluation" not in meta:
        pytest.fail("assets/models/detector/metadata.json has no evaluation block: run the command in its MODEL_CARD.md")
    return meta["evaluation"]


def test_box_map_on_m2cai16_test_reproduces(evaluation):
    from models.eval_detector import evaluate_detector_voc

    result = evaluate_detector_voc(None, shared_path("m2cai16-tool-locations"), "test")
    assert result["metrics"]["mAP50"] == pytest.approx(evaluation["m2cai16_test_boxes"]["mAP50"], abs=0.01)
    assert result["metrics"]["mAP50_95"] == pytest.approx(evaluation["m2cai16_test_boxes"]["mAP50_95"], abs=0.01)


def test_presence_map_on_cholect50_reproduces(evaluation):
    from models.datasets.cholect50 import presence_frames
    from models.eval_detector import evaluate_presence

    result = evaluate_presence(None, presence_frames(shared_path("cholect50-val")))
    assert result["metrics"]["mAP"] == pytest.approx(evaluation["cholect50_presence"]["mAP"], abs=0.01)


def test_card_quotes_the_metadata_numbers(evaluation):
    card = (MODELS_DIR / "detector" / "MODEL_CARD.md").read_text()
    assert f"{100 * evaluation['m2cai16_test_boxes']['mAP50']:.1f}" in card
    assert evaluation["command"] in card
