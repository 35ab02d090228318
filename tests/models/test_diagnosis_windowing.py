"""DICOM windowing goes through pydicom's apply_voi_lut: files made in tmp_path, compared with pydicom directly."""
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from models.diagnosis.image import Window, read_image


def make_ct(path, center="40", width="400", function=None, signed=True):
    """A 32x48 16-bit CT slice with a rescale to HU and a VOI window; returns the path."""
    rng = np.random.default_rng(0)
    stored = rng.integers(-1024 if signed else 0, 3000, (32, 48)).astype(np.int16 if signed else np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = int(signed)
    ds.RescaleSlope, ds.RescaleIntercept = "1.5", "-100"
    ds.WindowCenter, ds.WindowWidth = center, width
    if function:
        ds.VOILUTFunction = function
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def pydicom_display(path) -> np.ndarray:
    """pydicom's own pipeline: modality LUT, then apply_voi_lut, its output range scaled to 0..255."""
    ds = pydicom.dcmread(path)
    voi = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    half = 2 ** (ds.BitsStored - 1)
    lo, hi = (-half, half - 1) if ds.PixelRepresentation else (0, 2 ** ds.BitsStored - 1)
    lo, hi = (v * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for v in (lo, hi))
    return ((voi - lo) / (hi - lo) * 255.0 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("function", [None, "LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("signed", [True, False])
def test_file_window_displays_as_pydicom_windows_it(tmp_path, function, signed):
    path = make_ct(tmp_path / "ct.dcm", function=function, signed=signed)
    image = read_image(path)
    assert image.window == Window(40.0, 400.0, function or "LINEAR")
    rgb = image.to_rgb()
    assert rgb.shape == (32, 48, 3)
    np.testing.assert_array_equal(rgb[..., 0], pydicom_display(path))


def test_first_of_several_windows_is_the_default(tmp_path):
    image = read_image(make_ct(tmp_path / "ct.dcm", center=["40", "-600"], width=["400", "1500"]))
    assert image.window == Window(40.0, 400.0, "LINEAR")


def test_linear_and_linear_exact_differ_as_the_standard_says():
    values = np.array([-161.0, -160.0, -159.5, 40.0, 239.0, 240.0])
    exact = Window(40, 400).apply(values)  # center ± width/2 is exactly black..white
    linear = Window(40, 400, "LINEAR").apply(values)  # PS3.3 C.11.2.1.2: center - 0.5, width - 1
    assert exact.tolist() == [0, 0, 0, 128, 254, 255]
    assert linear.tolist() == [0, 0, 0, 128, 255, 255]


def test_our_full_range_window_leaves_8_bit_values_unchanged():
    values = np.arange(256, dtype=np.float32)
    assert Window(127.5, 255.0).apply(values).tolist() == list(range(256))


def test_unknown_file_function_falls_back_to_linear(tmp_path):
    assert read_image(make_ct(tmp_path / "ct.dcm", function="GAMMA")).window.function == "LINEAR"


def test_bad_function_raises():
    with pytest.raises(ValueError, match="VOI LUT function must be one of .* got 'CUBIC'"):
        Window(40, 400, "CUBIC")
