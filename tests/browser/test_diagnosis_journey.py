"""Issue 14's first check in Debian's Chromium: five real images of five kinds (a chest X-ray, a colonoscopy image,
a dermoscopy image, a CT slice, a surgical still) uploaded on the Diagnosis page, each routed to the analysis that
fits, with a finding and an explanation image (CT: the plain statement that SurgLens has no model for it); only the
surgical still gets instrument boxes.

The images are held out of the models that read them (the test split recorded in each model's metadata.json) and
copied into tmp_path. Skips when ../shared/data or /usr/bin/chromium is absent. Screenshots: runs/browser/.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.conftest import (
    SHOTS,
    _full_page,
    _no_exception,
    _offline_and_clean,
    open_app,
    serving,
    wait_until_shown,
)
from tests.conftest import REPO, shared_path

pytestmark = pytest.mark.browser

MODELS = REPO / "assets" / "models"
ROUTER = "image-modality"
RESULT_TIMEOUT_S = 300  # loading a model (the detector, the anatomy net) on two busy CPU cores


def _split(model: str) -> dict[str, str]:
    """stem -> split name of a shipped model's recorded split ({} when the model or its record is missing)."""
    path = MODELS / model / "metadata.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("split", {}).get("assignment", {}) or {}


def _held_out(images: list[Path], model: str | None, kind: str) -> Path:
    """The first of `images` in `model`'s test split that the modality router never trained on either (its
    assignment keys are `<kind>_<stem>`); the first image when no split is recorded."""
    if not images:
        pytest.skip(f"no {kind} images in ../shared/data")
    own = _split(model) if model else {}
    router = _split(ROUTER)
    for path in images:
        if (not own or own.get(path.stem) == "test") and router.get(f"{kind}_{path.stem}", "test") == "test":
            return path
    return images[0]


def chest_xray() -> Path:
    return _held_out(sorted((shared_path("medical-images", "covid-chestxray") / "images").iterdir()),
                     "chest-xray-classifier", "chest-xray")


def colonoscopy() -> Path:
    return _held_out(sorted((shared_path("medical-images", "kvasir-seg-train") / "images").glob("*.jpg")),
                     "polyp-segmenter", "colonoscopy")


def dermoscopy() -> Path:
    return _held_out(sorted((shared_path("medical-images", "ham10000") / "images").glob("*.jpg")),
                     "skin-lesion-classifier", "dermoscopy")


def ct_slice() -> Path:
    """The middle slice of the shared abdominal CT series (pydicom's CT_small.dcm without ../shared/data)."""
    try:
        series = sorted(shared_path("volumes", "ct-abdomen-dicom").glob("*.dcm"))
    except pytest.skip.Exception:
        series = []
    if series:
        return series[len(series) // 2]
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("CT_small.dcm"))


def surgical_still() -> Path:
    """An Endoscapes frame of a video the router held out (test) and the anatomy net never trained on (val)."""
    root = shared_path("endoscapes-seg50")
    val = {v["file_name"] for v in json.loads((root / "labels.json").read_text())["val"].values()}
    frames = [root / "images" / name for name in sorted(val)]
    held = [p for p in frames if _split(ROUTER).get(f"laparoscopy_endoscapes_{p.stem}") == "test"]
    return _held_out(held or frames, None, "laparoscopy")


@dataclass(frozen=True)
class Kind:
    """One kind of image: where it comes from and what the page must show for it."""

    name: str
    find: object
    label: str  # MODALITY_LABELS text in the "Kind of image" box
    analysis: str | None  # text in the "Analysis" box (None: no model for this kind)
    headline: str | None  # regex the result's subheader must match
    overlays: tuple[str, ...] = ()  # captions of the images after "image (as displayed)"
    says: tuple[str, ...] = field(default=())  # further texts on the page


KINDS = [
    Kind("chest-xray", chest_xray, "Chest X-ray", "chest-xray-classifier (classifier, chest-xray)",
         r"^Finding: (covid|non_covid) \(covid score \d\.\d\d, threshold \d\.\d\d\)$", ("explanation",),
         ("not a lesion outline", "research curiosity")),
    Kind("colonoscopy", colonoscopy, "Colonoscopy", "polyp-segmenter (segmenter, colonoscopy)",
         r"^polyp: [\d,]+ px", ("mask: polyp",), ("segmenter's mask",)),
    Kind("dermoscopy", dermoscopy, "Dermoscopy (skin lesion)", "skin-lesion-classifier (classifier, dermoscopy)",
         r"^Top class: (akiec|bcc|bkl|df|mel|nv|vasc) \(score \d\.\d\d\)$", ("explanation",), ("not a lesion outline",)),
    Kind("ct", ct_slice, "CT slice", None, None, (), ("DICOM header: Modality=CT", "no diagnostic model for CT slices")),
    Kind("surgical-still", surgical_still, "Surgical still (laparoscopy)", "Surgical still: instruments, quality",
         r"^Instruments seen: ", ("detections", "explanation"), ("not proof",)),
]


@pytest.fixture(scope="module")
def diagnosis_server(tmp_path_factory, playwright_api):
    """`surglens serve` with an empty library; yields its URL."""
    with serving(tmp_path_factory.mktemp("diagnosis-library")) as (url, _):
        yield url


def _wait_for_result(page, kind: Kind) -> None:
    """Until the page has run to its end for this upload: the JSON download with a model, the image details without."""
    done = (page.locator("button", has_text="Download result (JSON)") if kind.analysis
            else page.locator('[data-testid="stExpander"]', has_text="Image details"))
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    wait_until_shown(page, done, errors, RESULT_TIMEOUT_S, f"{kind.name}: the page's result")
    page.wait_for_timeout(1500)  # the last rerun's stale elements are gone


def _captions(page) -> list[str]:
    return [c.strip() for c in page.locator('[data-testid="stImageCaption"]').all_inner_texts()]


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_each_kind_of_image_opens_in_the_analysis_that_fits(diagnosis_server, browser, tmp_path, kind):
    source = kind.find()
    upload = tmp_path / f"{kind.name}{source.suffix}"
    shutil.copyfile(source, upload)
    page, seen = open_app(browser, diagnosis_server, "Diagnosis", width=1440, height=900,
                          timeout_ms=RESULT_TIMEOUT_S * 1000)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(upload))
    _wait_for_result(page, kind)
    _no_exception(page)
    main = page.locator('[data-testid="stMain"]')
    text = main.inner_text()

    # Routed: the kind of image is decided (and named) first, and the analysis offered is the one that fits.
    kind_box = page.get_by_role("combobox", name="Kind of image")
    routed = kind_box.input_value()
    assert routed == kind.label, f"{source.name} routed as {routed!r}: {text[:800]}"
    assert f"Kind of image: {kind.label} (" in text, text[:800]
    assert "not sure what kind of image" not in text
    analysis_box = page.get_by_role("combobox", name="Analysis")
    analysis = analysis_box.input_value() if analysis_box.count() else None
    if kind.analysis is None:
        assert analysis is None, analysis
    else:
        assert analysis and kind.analysis in analysis, f"{source.name}: analysis {analysis!r}"

    for box in (kind_box, analysis_box) if analysis else (kind_box,):  # the names are whole, not cut
        assert box.evaluate("i => i.scrollWidth <= i.clientWidth + 1"), f"cut in its box: {box.input_value()!r}"

    # A finding and an explanation image (or the plain statement that there is no model for this kind).
    headings = page.locator('[data-testid="stHeading"]').all_inner_texts()
    findings = [h.strip() for h in headings if h.strip() != "Diagnosis"]
    if kind.headline is None:
        assert findings == [], findings
    else:
        assert findings and re.search(kind.headline, findings[0]), findings
    captions = _captions(page)
    assert captions[0] == "image (as displayed)", captions
    expected = list(kind.overlays)
    if kind.name == "surgical-still" and (MODELS / "anatomy" / "weights.pt").is_file():
        expected.append("anatomy")
    assert captions[1:] == expected, captions
    for phrase in kind.says:
        assert phrase in text, f"{phrase!r} not on the page for {kind.name}"
    images = page.locator('[data-testid="stImage"] img')
    assert images.count() == len(captions)
    for i in range(images.count()):  # every image really drew
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), captions[i]

    # Instrument boxes only on the surgical still, which shows them or says that none were found.
    if kind.name == "surgical-still":
        assert "Detections" in text
        seen_tools = findings[0].removeprefix("Instruments seen: ")
        assert seen_tools.startswith("none above the detector threshold") or re.match(r"\w+ \(\d\.\d\d\)", seen_tools)
    else:
        assert "detections" not in captions and "Instruments seen" not in text and "Detections" not in text

    # 1440x900 from the analysis controls down (Streamlit scrolls inside stMain), then the whole page.
    page.locator('[data-testid="stSelectbox"]').first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / f"diagnosis_{kind.name}_1440x900.png"))
    _full_page(page, f"diagnosis_{kind.name}_full.png")
    print(f"\n{kind.name}: {source.name} -> {routed!r} / {analysis!r}: {findings[:1]} {captions}")
    _offline_and_clean(seen)
    page.close()
