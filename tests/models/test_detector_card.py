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


def test_backends_section_is_inserted_once_and_replaced_on_rerun():
    from models.detector_card import insert_backends_section

    row = {"m2cai16_test_mAP50": 0.83, "m2cai16_test_mAP50_95": 0.43, "cholect50_presence_mAP": 0.86, "ms_per_image": 20.0,
           "load_average": 1.2, "loss_vs_torch": {"a": 0.0}, "within_tolerance": True}
    result = {"rows": {"torch": row, "openvino": {**row, "loss_vs_torch": {"a": 0.02}, "within_tolerance": False}},
              "tolerance": 0.01, "cpus": 2, "images": 563, "presence_frames": 567, "command": "surglens detector-backends ..."}
    card = "# card\n\n## Tracking\ntext\n\n## Reproduce\n```\ncmd\n```\n"
    once = insert_backends_section(card, result)
    assert once.index("## Inference backends") < once.index("## Reproduce") and "| openvino | 83.0 | 43.0 | 86.0 | 2.0 | NO |" in once
    result["rows"]["openvino"]["within_tolerance"] = True
    twice = insert_backends_section(once, result)
    assert twice.count("## Inference backends") == 1 and "| NO |" not in twice and twice.endswith("cmd\n```\n")


def test_card_backend_rows_are_within_tolerance(evaluation):
    backends = evaluation.get("backends")
    if backends is None:
        pytest.skip("no backends evaluation in metadata.json (surglens detector-backends ... --write-card)")
    # The backends chosen automatically (models/detector.py) must hold; openvino-int8 is opt-in only.
    for name, row in backends["rows"].items():
        if name in ("torch", "openvino"):
            assert row["within_tolerance"], f"{name} loses more than {backends['tolerance']} against torch: {row['loss_vs_torch']}"
