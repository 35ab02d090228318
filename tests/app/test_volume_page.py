"""The CT/MR series page in Streamlit's AppTest: a tiny NIfTI with labels, the shared DICOM series zip, bad input."""
import io
import zipfile

import nibabel as nib
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import MAIN, figures, run_page, texts, upload_to
from tests.conftest import shared_path

pytestmark = pytest.mark.usefixtures("fresh_caches")


def nifti(array: np.ndarray, affine: np.ndarray) -> bytes:
    import gzip

    return gzip.compress(nib.Nifti1Image(array, affine).to_bytes())


def tiny_pair() -> tuple[bytes, bytes]:
    ct = np.full((24, 20, 12), -1000, np.int16)
    ct[4:14, 4:14, 2:8] = 60
    labels = np.zeros(ct.shape, np.uint8)
    labels[4:14, 4:14, 2:8] = 5
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    return nifti(ct, affine), nifti(labels, affine)


def upload(series: tuple[str, bytes], labels: tuple[str, bytes] | None = None) -> AppTest:
    """The page with the series (and the labels) uploaded."""
    return upload_to("volume", *((*file, "application/octet-stream") for file in (series, labels) if file))


def test_page_waits_for_a_series():
    at = run_page("volume")
    assert not at.error
    assert "Upload a CT or MR series" in at.info[0].value
    assert "not for clinical use" in at.warning[0].value


def test_tiny_nifti_with_labels_shows_planes_legend_and_liver_surface():
    ct, labels = tiny_pair()
    at = upload(("ct.nii.gz", ct), ("organs.nii.gz", labels))
    assert not at.error
    captions = [img.captions[0] for img in at.get("image")]
    assert [c.split(" ")[0] for c in captions] == ["axial", "coronal", "sagittal"]
    assert "coronal 11/20 (1 x 2 mm pixels)" in captions[1]
    assert [s.label for s in at.slider][-3:] == ["Axial slice", "Coronal slice", "Sagittal slice"]
    assert at.selectbox[0].label == "Window" and at.selectbox[0].value == "soft tissue"
    assert "rgb(196,78,62)" in texts(at) and "liver" in texts(at)  # the legend chip
    assert at.multiselect[0].value == ["liver (label 5)"]
    [fig] = figures(at).values()
    assert [t.type for t in fig.data] == ["mesh3d"] and fig.data[0].name == "liver"
    volumes = at.dataframe[0].value
    assert volumes.loc[0, "name"] == "liver" and volumes.loc[0, "volume_ml"] == pytest.approx(1.2)
    assert at.dataframe[1].value.loc[0, "watertight"]


def test_moving_a_slider_and_switching_the_overlay_off():
    ct, labels = tiny_pair()
    at = upload(("ct.nii.gz", ct), ("organs.nii.gz", labels))
    at.slider(key="volume_axial").set_value(0)
    at.toggle[0].set_value(False)
    at.multiselect[0].set_value(["bone (HU 300..3000)", "liver (label 5)"])
    at.run()
    assert not at.exception, at.exception
    assert at.get("image")[0].captions[0].startswith("axial 1/12")
    assert any("no voxels, no surface" in i.value for i in at.info)  # no bone in the tiny CT
    [fig] = figures(at).values()
    assert [t.name for t in fig.data] == ["liver"]


@pytest.mark.parametrize("name, data, message", [
    ("series.zip", b"PK\x03\x04broken", "not a readable zip"),
    ("notes.gz", b"\x1f\x8bnope", "not a readable .nii.gz"),
])
def test_bad_series_upload_shows_the_problem(name, data, message):
    at = upload((name, data))
    assert message in at.error[0].value


def test_labels_on_another_grid_are_refused_but_the_volume_still_shows():
    ct, _ = tiny_pair()
    other = nifti(np.zeros((5, 5, 5), np.uint8), np.eye(4))
    at = upload(("ct.nii.gz", ct), ("organs.nii.gz", other))
    assert "not on the volume's grid" in at.error[0].value
    assert len(at.get("image")) == 3


def test_shared_series_zip_with_organs():
    folder = shared_path("volumes", "ct-abdomen-dicom")
    organs = shared_path("volumes", "ct-abdomen-dicom-organs.nii.gz").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.glob("*.dcm")):
            zf.write(path, path.name)
    at = upload(("ct-abdomen.zip", buf.getvalue()), ("organs.nii.gz", organs))
    assert not at.error
    captions = [img.captions[0] for img in at.get("image")]
    assert captions[0].startswith("axial 11/20") and captions[1].startswith("coronal 257/512")
    assert "liver" in texts(at) and "spleen" in texts(at)
    volumes = at.dataframe[0].value.set_index("label")
    assert volumes.loc[5, "volume_ml"] == pytest.approx(volumes.loc[5, "voxels"] * 0.9765625**2 * 2 / 1000, abs=1e-3)
    [fig] = figures(at).values()
    assert fig.data[0].name == "liver" and len(fig.data[0].i) <= 150_000
    assert "removed on import" in at.expander[-1].label
    assert {"25 private tag(s) (removed)", "AcquisitionDate (removed)"} <= set(at.dataframe[-1].value["removed"])


def test_page_is_in_the_navigation():
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page("views/volume.py")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "CT/MR series"
