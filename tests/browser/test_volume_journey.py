"""The shared abdominal CT series in Debian's Chromium: uploaded as a zip with its organ labels, three planes with
the liver overlay, and a 3D liver surface drawn (issue 17's check).

Skips like tests/browser/test_dashboard.py when the browser or ../shared/data is absent. Screenshot: runs/browser/.
"""
from __future__ import annotations

import zipfile

import pytest

from tests.browser.conftest import _full_page, _no_exception, _offline_and_clean, open_app, serving
from tests.conftest import shared_path

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def volume_server(tmp_path_factory, playwright_api):
    """`surglens serve` with an empty library; yields its URL."""
    with serving(tmp_path_factory.mktemp("volume-library")) as (url, _):
        yield url


def test_ct_series_planes_liver_overlay_and_surface(volume_server, browser, tmp_path):
    series = shared_path("volumes", "ct-abdomen-dicom")
    labels = shared_path("volumes", "ct-abdomen-dicom-organs.nii.gz")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(p for p in series.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(series))
    page, seen = open_app(browser, volume_server, "CT/MR series", width=1440, timeout_ms=120_000)
    uploaders = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploaders.nth(0).set_input_files(str(archive))
    page.get_by_text("512 x 512 x 20 voxels").wait_for()
    uploaders.nth(1).set_input_files(str(labels))
    page.get_by_text("liver", exact=False).first.wait_for()
    images = page.locator('[data-testid="stImage"]')
    for plane in ("axial", "coronal", "sagittal"):
        page.get_by_text(plane, exact=False).first.wait_for()
    assert images.count() >= 3
    chart = page.locator('[data-testid="stPlotlyChart"]')
    chart.first.wait_for()
    page.wait_for_timeout(3000)
    assert page.locator(".js-plotly-plot .gl-container, .js-plotly-plot canvas").count() >= 1  # the 3D scene drew
    _no_exception(page)
    _full_page(page, "ct_series_1440.png")
    _offline_and_clean(seen)
