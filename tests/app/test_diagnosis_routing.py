"""The Diagnosis page decides the kind of image first and offers only the analyses that fit it (real shipped models)."""
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from streamlit.testing.v1 import AppTest

from models.diagnosis import diagnose as core
from models.registry import MODELS_DIR
from tests.app.conftest import texts, upload_to
from tests.conftest import shared_path

pytestmark = pytest.mark.usefixtures("fresh_caches")


def shipped(name: str) -> None:
    if not (MODELS_DIR / name / "metadata.json").exists():
        pytest.skip(f"shipped model {name} is not installed")


def upload(name: str, data: bytes, mime: str = "application/octet-stream") -> AppTest:
    return upload_to("diagnosis", (name, data, mime), timeout=180)


def captions(at: AppTest) -> list[str]:
    return [img.captions[0] for img in at.get("image")]


def analysis(at: AppTest) -> str | None:
    boxes = [s for s in at.selectbox if s.key == "diagnosis_analysis"]
    return boxes[0].value if boxes else None


def test_chest_xray_png_gets_the_chest_classifier_and_no_instrument_boxes():
    shipped("chest-xray-classifier")
    path = shared_path("medical-images", "chest-xray") / "00000001_000.png"
    at = upload("chest.png", path.read_bytes(), "image/png")
    assert not at.error
    assert at.selectbox[0].value == "chest-xray"
    assert "chest-xray" in analysis(at) and "Surgical still" not in analysis(at)
    assert at.subheader[0].value.startswith("Finding:")
    assert "detections" not in captions(at) and captions(at)[1:] == ["explanation"]
    assert "Instruments seen" not in texts(at)
    assert "not proof" in texts(at) and "not a lesion outline" in texts(at)
    assert any("research curiosity" in w.value for w in at.warning)  # the card's caution, shown with the finding


def test_choosing_another_kind_than_the_image_reads_as_is_warned():
    shipped("chest-xray-classifier")
    shipped("skin-lesion-classifier")
    path = shared_path("medical-images", "chest-xray") / "00000001_000.png"
    at = upload("chest.png", path.read_bytes(), "image/png")
    assert at.selectbox[0].value == "chest-xray" and not any("You chose" in w.value for w in at.warning)
    at.selectbox[0].set_value("dermoscopy").run(timeout=180)
    assert "skin-lesion" in analysis(at)
    (warned,) = [w.value for w in at.warning if "You chose" in w.value]
    assert "reads as Chest X-ray" in warned and "means nothing" in warned


def test_dermoscopy_image_gets_the_skin_lesion_classifier():
    shipped("skin-lesion-classifier")
    path = sorted(shared_path("medical-images", "dermoscopy").glob("*.jpg"))[0]
    at = upload(path.name, path.read_bytes(), "image/jpeg")
    assert not at.error
    assert at.selectbox[0].value == "dermoscopy"
    assert "skin-lesion" in analysis(at)
    assert at.subheader[0].value.startswith("Top class:")
    assert {r for r in at.dataframe[0].value["class"]} == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert "detections" not in captions(at)


def test_colonoscopy_image_gets_the_polyp_mask():
    shipped("polyp-segmenter")
    path = sorted((shared_path("medical-images", "kvasir-seg") / "images").glob("*.jpg"))[0]
    at = upload(path.name, path.read_bytes(), "image/jpeg")
    assert not at.error
    assert at.selectbox[0].value == "colonoscopy" and "polyp" in analysis(at)
    assert captions(at)[1:] == ["mask: polyp"] and "segmenter's mask" in texts(at)


def test_ct_dicom_says_there_is_no_model():
    at = upload("ct.dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes(), "application/dicom")
    assert not at.error
    assert at.selectbox[0].value == "ct" and "Modality=CT" in texts(at)
    assert analysis(at) is None
    assert "no diagnostic model for CT slices" in texts(at)
    assert captions(at) == ["image (as displayed)"] and not at.subheader


def test_surgical_still_gets_the_still_analysis(cholec_clips):
    shipped("image-modality")
    cap = cv2.VideoCapture(str(cholec_clips[2]))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 400)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    at = upload("still.png", cv2.imencode(".png", bgr)[1].tobytes(), "image/png")
    assert at.selectbox[0].value == "laparoscopy"
    assert analysis(at).startswith("Surgical still")


def test_low_confidence_asks_the_user_to_choose(monkeypatch):
    monkeypatch.setattr(core, "decide_modality", lambda image, router=None, frame=0:
                        core.ModalityDecision("dermoscopy", 0.41, "fake router"))
    img = cv2.imencode(".png", np.full((64, 64, 3), 90, np.uint8))[1].tobytes()
    at = upload("unclear.png", img, "image/png")
    assert at.selectbox[0].value is None and analysis(at) is None
    assert "not sure what kind of image" in at.warning[-1].value and "0.41" in at.warning[-1].value
    at.selectbox[0].set_value("ct").run()
    assert not at.exception and "no diagnostic model for CT" in texts(at)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png() -> bytes:
    """A tiny PNG with a text chunk that inflates to 50 MB."""
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    bomb = b"Comment\x00\x00" + zlib.compress(b"a" * 50_000_000, 9)
    idat = zlib.compress(b"\x00" * (8 * 3 + 1) * 8)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"zTXt", bomb) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _huge_png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + _png_chunk(b"IEND", b"")


CT = Path(get_testdata_file("CT_small.dcm")).read_bytes()


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("bomb.png", _bomb_png(), "decompression bomb"),
        ("huge.png", _huge_png(), "over the limit"),
        ("cut.dcm", CT[:-5000], "the file is cut short"),
        ("header-only.dcm", CT[:3000], "is cut short: the header of a CT Image"),
        ("cut.png", _huge_png()[:30], "cut short or its internal structure is damaged"),
    ],
)
def test_bad_images_get_plain_words(name, data, message):
    at = upload(name, data)
    assert len(at.error) == 1 and message in at.error[0].value
    for jargon in ("unpack_from", "MAX_TEXT_CHUNK", "group 0028", "transfer syntax"):
        assert jargon not in at.error[0].value
