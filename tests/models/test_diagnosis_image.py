"""Still-image readers: ordinary formats, DICOM (windowing, MONOCHROME1, multi-frame, JPEG 2000),
de-identification of the stored copy, and clear errors for bad input."""
import io
import struct
import zlib

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageOps
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from models.diagnosis.deid import PHI_KEYWORDS, deidentify
from models.diagnosis.image import (
    CT_WINDOW_PRESETS, CorruptImageError, ImageReadError, ImageTooLargeError, NoPixelDataError,
    UnsupportedImageError, Window, deidentified_bytes, read_image, write_deidentified,
)
from tests.conftest import dicom_dataset, shared_path

CT = get_testdata_file("CT_small.dcm")
MR = get_testdata_file("MR_small.dcm")


def encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def cv2_encode(arr: np.ndarray, ext: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, arr)
    assert ok
    return buf.tobytes()


# --- ordinary images --------------------------------------------------------------------------------

def test_png_8bit_grey_and_colour_keep_values():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    img = read_image(encode(grey, "PNG"), name="g.png")
    assert img.source_format == "png" and not img.is_colour and img.bits_stored == 8
    assert np.array_equal(img.pixels[0], grey) and np.array_equal(img.to_rgb()[..., 1], grey)
    rgb = np.random.default_rng(0).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    img = read_image(encode(rgb, "PNG"), name="c.png")
    assert img.is_colour and np.array_equal(img.to_rgb(), rgb)


@pytest.mark.parametrize("ext, fmt", [(".png", "png"), (".tif", "tiff")])
def test_16bit_grey_and_colour_keep_full_depth(ext, fmt):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 65535, (10, 12), dtype=np.uint16)
    img = read_image(cv2_encode(grey, ext), name="g" + ext)
    assert img.source_format == fmt and img.bits_stored == 16 and np.array_equal(img.pixels[0], grey)
    assert img.window.center == pytest.approx((int(grey.min()) + int(grey.max())) / 2)  # deep data: own range
    bgr = rng.integers(0, 65535, (10, 12, 3), dtype=np.uint16)
    img = read_image(cv2_encode(bgr, ext), name="c" + ext)
    assert img.is_colour and img.bits_stored == 16
    assert np.array_equal(img.pixels[0], bgr[..., ::-1])  # RGB order, 16 bits kept


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    arr = np.zeros((20, 30, 3), dtype=np.uint8)
    arr[:5, :10] = (255, 0, 0)  # a red block at the top left makes every flip/rotation distinct
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(arr, "JPEG", exif=exif, quality=100)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    img = read_image(data, name="o.jpg")
    assert np.array_equal(img.to_rgb(), expected)
    assert (orientation != 1) == any("EXIF orientation" in n for n in img.notes)


def test_metadata_is_dropped_and_listed():
    exif = Image.Exif()
    exif[0x013B] = "Dr. Jane Doe"  # Artist
    exif[0x0132] = "2024:01:02 10:00:00"  # DateTime
    img = read_image(encode(np.zeros((4, 4, 3), np.uint8), "JPEG", exif=exif), name="x.jpg")
    assert "EXIF Artist" in img.removed_phi and "EXIF DateTime" in img.removed_phi
    data, suffix = deidentified_bytes(img)
    assert suffix == ".png" and b"Jane Doe" not in data
    assert not Image.open(io.BytesIO(data)).getexif()


def test_real_chest_xray_dermoscopy_and_kvasir():
    chest = read_image(shared_path("medical-images", "chest-xray", "00000001_000.png"))
    assert (chest.width, chest.height, chest.is_colour) == (512, 512, False)
    derm = read_image(shared_path("medical-images", "dermoscopy", "ISIC_0024306.jpg"))
    assert derm.is_colour and derm.to_rgb().shape == (450, 600, 3)
    kv = shared_path("medical-images", "kvasir-seg", "images")
    assert all(read_image(p).is_colour for p in sorted(kv.iterdir()))


# --- DICOM -----------------------------------------------------------------------------------------

def test_ct_rescale_to_hounsfield_units_and_spacing():
    raw = pydicom.dcmread(CT)
    img = read_image(CT)
    hu = raw.pixel_array.astype(np.float32) * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    assert img.modality == "CT" and np.array_equal(img.pixels[0], hu)
    assert img.pixel_spacing_mm == pytest.approx((0.661468, 0.661468))
    assert img.pixel_area_mm2() == pytest.approx(0.661468 ** 2)


def test_ct_window_presets_and_windowing():
    img = read_image(CT)
    presets = img.window_presets()
    assert {"default", "full range", "lung", "bone", "soft tissue", "brain"} <= set(presets)
    assert "lung" not in read_image(MR).window_presets()  # HU presets only for CT
    soft = CT_WINDOW_PRESETS["soft tissue"]  # 40 ± 200 HU
    out = soft.apply(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]))
    assert out.tolist() == [0, 0, 128, 255, 255]
    rgb = img.to_rgb(window=presets["lung"])
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8


def test_mr_window_from_file():
    img = read_image(MR)
    ds = pydicom.dcmread(MR)
    assert img.window == Window(float(ds.WindowCenter), float(ds.WindowWidth), "LINEAR")  # the DICOM default function


def test_monochrome1_is_inverted_for_display(tmp_path):
    ds = pydicom.dcmread(CT)
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    normal, inverted = read_image(CT), read_image(path)
    assert inverted.inverted and not normal.inverted
    assert np.array_equal(inverted.pixels, normal.pixels)  # values keep their meaning
    assert np.array_equal(inverted.to_rgb(), 255 - normal.to_rgb())


def test_multiframe_colour_dicom():
    img = read_image(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    assert img.n_frames == 2 and img.is_colour
    assert img.to_rgb(frame=1).shape == (100, 100, 3)
    with pytest.raises(IndexError, match="frame 2 out of range"):
        img.to_rgb(frame=2)


def test_jpeg2000_dicom_decodes_like_uncompressed():
    j2k = read_image(get_testdata_file("MR_small_jp2klossless.dcm"))
    assert np.array_equal(j2k.pixels, read_image(MR).pixels)


def test_real_chest_dicom_and_compressed_ct_series():
    chest = read_image(next(shared_path("medical-images", "chest-xray").glob("*.dcm")))
    assert chest.modality == "CR" and chest.pixel_spacing_mm == pytest.approx((0.168, 0.168))
    assert (chest.width, chest.height) == (1024, 1024)
    ct = read_image(sorted(shared_path("volumes", "ct-abdomen-dicom").glob("*.dcm"))[0])  # JPEG 2000 lossless
    assert ct.modality == "CT" and ct.pixels.min() >= -1024 and ct.pixel_spacing_mm == pytest.approx((0.977, 0.977), abs=1e-3)


# --- de-identification -----------------------------------------------------------------------------

def assert_no_phi(ds: Dataset) -> None:
    for elem in ds.iterall():
        assert not elem.tag.is_private, f"private tag {elem.tag} kept"
        if elem.keyword in PHI_KEYWORDS:
            assert elem.is_empty, f"{elem.keyword} kept its value {elem.value!r}"


def test_stored_copy_of_ct_has_no_phi(tmp_path):
    original = pydicom.dcmread(CT)
    assert original.PatientName and any(e.tag.is_private for e in original)
    img = read_image(CT)
    assert "PatientName (emptied)" in img.removed_phi and "PatientID (emptied)" in img.removed_phi
    assert any("private tag" in r for r in img.removed_phi)
    stored = pydicom.dcmread(write_deidentified(img, tmp_path / "copy.dcm"))
    assert_no_phi(stored)
    assert stored.PatientIdentityRemoved == "YES"
    assert stored.StudyInstanceUID != original.StudyInstanceUID
    assert stored.file_meta.MediaStorageSOPInstanceUID == stored.SOPInstanceUID
    assert np.array_equal(stored.pixel_array, original.pixel_array)  # the image itself is untouched
    assert pydicom.dcmread(CT).PatientName == original.PatientName  # the source file is not modified


def test_real_chest_dicom_copy_has_no_phi(tmp_path):
    path = next(shared_path("medical-images", "chest-xray").glob("*.dcm"))
    img = read_image(path)
    assert {"PatientName (emptied)", "PatientID (emptied)", "PatientAge (removed)"} <= set(img.removed_phi)
    stored = pydicom.dcmread(write_deidentified(img, tmp_path / "chest.dcm"))
    assert_no_phi(stored)
    assert "16d7f894" not in str(stored)


def test_phi_inside_sequences_is_removed():
    item = dicom_dataset(PatientName="Doe^John", InstitutionName="General Hospital", StudyInstanceUID="1.2.3.4")
    ds = dicom_dataset(PatientName="Doe^John", ReferencedStudySequence=Sequence([item]), StudyInstanceUID="1.2.3.4")
    log = deidentify(ds)
    assert ds.ReferencedStudySequence[0].PatientName in ("", None)
    assert "InstitutionName" not in ds.ReferencedStudySequence[0]
    assert ds.ReferencedStudySequence[0].StudyInstanceUID == ds.StudyInstanceUID != "1.2.3.4"  # consistent
    assert "InstitutionName" in log.removed and "StudyInstanceUID" in log.replaced_uids


def test_every_phi_keyword_is_a_dicom_keyword():
    from pydicom.datadict import tag_for_keyword

    assert [k for k in PHI_KEYWORDS if tag_for_keyword(k) is None] == []


# --- bad input ---------------------------------------------------------------------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size but holds no pixels: the guard must refuse it before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def cmyk_jpeg(colour=(0, 50, 100, 0), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), colour).save(buf, "JPEG", **save)
    return buf.getvalue()


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def grey_cmyk_profile() -> bytes:
    """A minimal ICC v2 CMYK printer profile whose A2B0 table maps every ink mix to one dark grey."""
    text = b"test grey CMYK\x00"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 78
    wtpt = b"XYZ " + b"\0" * 4 + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    identity = bytes(range(256))
    lut = (b"mft1" + b"\0" * 4 + bytes([4, 3, 2, 0]) + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + identity * 4 + bytes([128, 128, 128]) * 2 ** 4 + identity * 3)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    return header + table + body


def test_cmyk_jpeg_is_converted_to_rgb_with_a_note():
    img = read_image(cmyk_jpeg(), name="print.jpg")
    assert img.is_colour and img.pixels.shape == (1, 8, 8, 3)
    assert tuple(img.pixels[0, 0, 0]) == (255.0, 205.0, 155.0)  # 0% cyan, 50% magenta, 100% yellow: orange
    assert len(img.notes) == 1 and "converted from CMYK to RGB with the standard conversion" in img.notes[0]


def test_cmyk_jpeg_with_an_embedded_profile_is_converted_through_it():
    profile = grey_cmyk_profile()
    img = read_image(cmyk_jpeg((0, 0, 0, 0), icc_profile=profile), name="print.jpg")
    assert img.pixels[0, 0, 0].max() < 200  # the profile's grey, not the standard formula's white for 0% ink
    assert "embedded colour profile (test grey CMYK)" in img.notes[0]
    assert "icc_profile" not in " ".join(img.removed_phi)


def test_cmyk_jpeg_with_an_unusable_profile_falls_back_and_says_so():
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # an RGB profile in a CMYK file
    img = read_image(cmyk_jpeg(icc_profile=srgb), name="print.jpg")
    assert tuple(img.pixels[0, 0, 0]) == (255.0, 205.0, 155.0)
    assert "standard conversion" in img.notes[0] and "embedded colour profile could not be used" in img.notes[0]


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, "GIF")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, name, error, match",
    [
        (b"\x00" * 128 + b"DICM" + b"\xff" * 64, "broken.dcm", CorruptImageError, "not a readable DICOM"),
        (b"hello, this is a text file" * 4, "notes.dcm", CorruptImageError, "'notes.dcm' is not a readable DICOM"),
        (open(get_testdata_file("MR_truncated.dcm"), "rb").read(), "truncated.dcm", CorruptImageError, "pixel data could not be decoded"),
        (open(get_testdata_file("rtplan.dcm"), "rb").read(), "plan.dcm", NoPixelDataError, "without pixel data"),
        (png_header_only(12_000, 12_000), "big.png", ImageTooLargeError, "12000x12000 pixels .* over the limit of 50,000,000"),
        (png_header_only(100_000, 100_000), "bomb.png", ImageTooLargeError, "100000x100000 pixels"),
        (b"patient notes, not an image", "notes.txt", UnsupportedImageError, "'notes.txt' is not a readable image"),
        (gif(), "anim.gif", UnsupportedImageError, "'anim.gif' is a GIF file; supported"),
        (b"", "empty.png", UnsupportedImageError, "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cut.png", ImageReadError, "'cut.png'"),
    ],
)
def test_bad_input_raises_named_errors(data, name, error, match):
    with pytest.raises(error, match=match):
        read_image(data, name=name)


def test_pixel_limit_is_configurable():
    data = encode(np.zeros((100, 100), np.uint8), "PNG")
    assert read_image(data, name="ok.png", max_pixels=10_000).width == 100
    with pytest.raises(ImageTooLargeError, match="= 10,000, over the limit of 9,999"):
        read_image(data, name="big.png", max_pixels=9_999)
    with pytest.raises(ImageTooLargeError, match="limit of 1,000"):
        read_image(CT, max_pixels=1_000)


def test_reader_does_not_depend_on_pillow_open_patches():
    """ultralytics replaces PIL.Image.open process-wide; bad files must still give our errors."""
    from models._ultralytics import load_ultralytics

    load_ultralytics()
    with pytest.raises(UnsupportedImageError, match="not a readable image"):
        read_image(b"plain text", name="x.png")
    with pytest.raises(CorruptImageError, match="'cut.png' could not be decoded"):
        read_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, name="cut.png")
