"""Reading still images for diagnosis: PNG/JPEG/TIFF/BMP and DICOM, into one `MedicalImage`.

Everything a user brings goes through `read_image`. DICOM headers are de-identified (deid.py) before
the image object exists, and ordinary images keep no metadata at all (EXIF, text chunks), so nothing
downstream can store PHI. Pixels keep their real values (Hounsfield units for CT after rescale
slope/intercept, 16-bit values for 16-bit files); `to_rgb()` turns them into a display image
through a window.
"""
from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image

from models.diagnosis.deid import deidentify

DEFAULT_MAX_PIXELS = 50_000_000  # all frames together; one float32 copy of 50 Mpx is 200 MB
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff", "BMP": "bmp"}
# PNG info keys that are rendering parameters, not metadata about the person or the capture.
_TECHNICAL_INFO = {"dpi", "gamma", "transparency", "aspect", "compression", "jfif", "jfif_version", "jfif_unit",
                   "jfif_density", "progressive", "progression", "adobe", "adobe_transform", "icc_profile",
                   "exif", "srgb", "chromaticity", "resolution", "interlace", "mp", "mpoffset", "photoshop",
                   "loop", "duration", "planar_configuration"}


class ImageReadError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""


class UnsupportedImageError(ImageReadError):
    """Not an image, or a format the reader does not handle."""


class CorruptImageError(ImageReadError):
    """A recognised format whose content cannot be decoded."""


class NoPixelDataError(ImageReadError):
    """A DICOM object without an image in it (a report, a plan, a structure set)."""


class ImageTooLargeError(ImageReadError):
    """More pixels than the configured limit (decompression-bomb guard)."""


class UnsupportedColourError(ImageReadError):
    """A colour space the reader refuses rather than guesses (CMYK is converted, with a note, not refused)."""


VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class Window:
    """A display window (DICOM VOI): values around `center` over `width` map to black..white.

    `function` is the DICOM VOI LUT Function. Our own windows (presets, full range) are
    LINEAR_EXACT: center ± width/2 is exactly black..white. A window read from a DICOM file keeps
    the file's function (LINEAR, the standard's default, when the file names none).
    """

    center: float
    width: float
    function: str = "LINEAR_EXACT"

    def __post_init__(self) -> None:
        if self.function not in VOI_FUNCTIONS:
            raise ValueError(f"VOI LUT function must be one of {VOI_FUNCTIONS}, got {self.function!r}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Values -> uint8 display grey levels, by pydicom's `apply_voi_lut` (DICOM PS3.3 C.11.2)."""
        from pydicom.dataset import Dataset
        from pydicom.pixels import apply_voi_lut

        # An 8-bit unsigned output range, so pydicom's result is the grey level itself (its output
        # is linear in that range, so this equals windowing into the file's range and rescaling).
        ds = Dataset()
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsStored, ds.PixelRepresentation = 8, 0
        ds.VOILUTFunction = self.function
        ds.WindowCenter = float(self.center)
        ds.WindowWidth = max(float(self.width), 1.0 if self.function == "LINEAR" else 1e-6)
        grey = apply_voi_lut(np.asarray(values, dtype=np.float32), ds)
        return (np.clip(grey, 0.0, 255.0) + 0.5).astype(np.uint8)


# Common CT windows in Hounsfield units (center, width).
CT_WINDOW_PRESETS: dict[str, Window] = {
    "soft tissue": Window(40, 400),
    "lung": Window(-600, 1500),
    "bone": Window(400, 1800),
    "brain": Window(40, 80),
}


@dataclass
class MedicalImage:
    """A decoded, de-identified still image (one or more frames).

    `pixels` is float32 (frames, H, W) for greyscale or (frames, H, W, 3) RGB, in the modality's
    units. `window` is the default display window (from the file, else the full data range).
    `pixel_spacing_mm` is (row spacing, column spacing) when the file states it. `removed_phi`
    lists the identifying elements that were dropped; `notes` carry caveats for the reader.
    """

    pixels: np.ndarray
    source_format: str
    modality: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    window: Window | None = None
    inverted: bool = False
    bits_stored: int = 8
    removed_phi: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    name: str = ""
    dataset: object | None = field(default=None, repr=False)  # the de-identified pydicom Dataset

    def __post_init__(self) -> None:
        if self.window is None:
            self.window = self.full_range_window()

    @property
    def n_frames(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def is_colour(self) -> bool:
        return self.pixels.ndim == 4

    @property
    def height(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[2])

    def full_range_window(self) -> Window:
        """8-bit images: 0..255 unchanged; deeper data: its own min..max."""
        if self.bits_stored <= 8 and self.source_format != "dicom":
            return Window(127.5, 255.0)
        lo, hi = float(self.pixels.min()), float(self.pixels.max())
        return Window((lo + hi) / 2.0, max(hi - lo, 1.0))

    def window_presets(self) -> dict[str, Window]:
        """Named windows offered for this image: the default, the full range, CT presets for CT.

        8-bit photographs get only their default (nothing to window)."""
        if self.source_format != "dicom" and self.bits_stored <= 8:
            return {"default": self.window}
        presets = {"default": self.window, "full range": self.full_range_window()}
        if self.modality == "CT":
            presets.update(CT_WINDOW_PRESETS)
        return presets

    def to_rgb(self, frame: int = 0, window: Window | None = None) -> np.ndarray:
        """(H, W, 3) uint8 display image of one frame through a window (the default if None)."""
        if not 0 <= frame < self.n_frames:
            raise IndexError(f"frame {frame} out of range: {self.name!r} has {self.n_frames} frame(s)")
        grey = (window or self.window).apply(self.pixels[frame])
        if self.inverted:
            grey = 255 - grey
        return grey if self.is_colour else np.repeat(grey[..., None], 3, axis=2)

    def pixel_area_mm2(self) -> float | None:
        """Area of one pixel in mm² when the spacing is known."""
        if self.pixel_spacing_mm is None:
            return None
        return float(self.pixel_spacing_mm[0] * self.pixel_spacing_mm[1])


def read_image(
    source: str | Path | bytes | BinaryIO, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> MedicalImage:
    """Read a PNG/JPEG/TIFF/BMP or DICOM file (path, bytes or binary file object) into a MedicalImage.

    Raises an `ImageReadError` subclass naming the problem for anything that cannot be used.
    """
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ImageReadError(f"cannot read {str(source)!r}: {exc.strerror or exc}") from exc
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read()
    name = name or "<upload>"
    if not data:
        raise UnsupportedImageError(f"{name!r} is empty (0 bytes)")
    if _looks_like_dicom(data, name):
        return _read_dicom(data, name, max_pixels)
    return _read_pillow(data, name, max_pixels)


def _looks_like_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom"))


# --- ordinary images -------------------------------------------------------------------------------

def _read_pillow(data: bytes, name: str, max_pixels: int) -> MedicalImage:
    try:
        im = _open_pillow(data, name)
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        if isinstance(exc, ImageReadError):
            raise
        raise CorruptImageError(f"{name!r} could not be decoded as {_sniff(data)}: {_plain_reason(exc)}") from exc
    try:
        with im:
            return _from_pillow(im, data, name, max_pixels)
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        if isinstance(exc, ImageReadError):
            raise
        raise CorruptImageError(f"{name!r} could not be decoded: {_plain_reason(exc)}") from exc


def _plain_reason(exc: BaseException) -> str:
    """A decoder's exception in plain words (the raw text only when it is not one of the known cases)."""
    import re

    text = str(exc)
    if "Decompressed data too large" in text or type(exc).__name__ == "DecompressionBombError":
        return ("it holds a compressed block that would expand to far more data than an image of its size needs "
                "(a 'decompression bomb'), so it is refused for safety; re-save the image normally and try again")
    short = re.search(r"less than expected \((\d+) vs (\d+) bytes\)", text)
    if short:
        got, want = (int(v) for v in short.groups())
        return (f"the file is cut short: it holds {got:,} of the {want:,} bytes of pixel data its header announces "
                "(an interrupted copy or download?)")
    if (isinstance(exc, (struct.error, EOFError)) or "unpack" in text
            or any(w in text.lower() for w in ("truncated", "broken png", "incomplete"))):
        return "the file is cut short or its internal structure is damaged (an interrupted copy or download?)"
    return text


# File signatures -> Pillow plugin. Formats are recognised here rather than by `PIL.Image.open`, which
# tries every plugin (and which ultralytics replaces process-wide with a version that reaches for an
# optional HEIF package on unknown files). The pixel limit is checked from the header before decoding.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"),
)
_OTHER_SIGNATURES = ((b"GIF8", "GIF"), (b"%PDF", "PDF"), (b"RIFF", "RIFF (WebP/AVI)"), (b"PK\x03\x04", "ZIP"))


def _sniff(data: bytes) -> str | None:
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    return None


def _open_pillow(data: bytes, name: str) -> Image.Image:
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

    fmt = _sniff(data)
    if fmt is None:
        other = next((f for magic, f in _OTHER_SIGNATURES if data.startswith(magic)), None)
        if other:
            raise UnsupportedImageError(f"{name!r} is a {other} file; supported: PNG, JPEG, TIFF, BMP, DICOM")
        raise UnsupportedImageError(f"{name!r} is not a readable image (expected PNG, JPEG, TIFF, BMP or DICOM)")
    plugin = {"PNG": PngImagePlugin.PngImageFile, "JPEG": JpegImagePlugin.JpegImageFile,
              "TIFF": TiffImagePlugin.TiffImageFile, "BMP": BmpImagePlugin.BmpImageFile}[fmt]
    return plugin(io.BytesIO(data))


def _from_pillow(im: Image.Image, data: bytes, name: str, max_pixels: int) -> MedicalImage:
    fmt = IMAGE_FORMATS[im.format]
    w, h = im.size
    frames = getattr(im, "n_frames", 1)
    _check_size(name, w, h, frames, max_pixels)
    # Read the decoder's raw mode before anything loads the image (loading clears `tile`).
    tile_args = im.tile[0][3] if im.tile else ""
    deep_colour = im.mode == "RGB" and ";16" in str(tile_args[0] if isinstance(tile_args, tuple) else tile_args)
    notes: list[str] = []
    removed = _pillow_metadata(im)
    orientation = int(im.getexif().get(ExifTags.Base.Orientation, 1) or 1)
    if im.mode in ("CMYK", "YCCK"):
        im, note = _cmyk_to_rgb(im)
        notes.append(note)
    pixels, bits = _pillow_pixels(im, data, name, deep_colour)
    pixels = _orient(pixels, orientation)
    if orientation != 1:
        notes.append(f"rotated/flipped upright from EXIF orientation {orientation}")
    if frames > 1:
        notes.append(f"{frames} pages in the file; only the first is read")
    return MedicalImage(
        pixels=pixels[None].astype(np.float32), source_format=fmt, bits_stored=bits,
        removed_phi=removed, notes=notes, name=name,
    )


def _cmyk_to_rgb(im: Image.Image) -> tuple[Image.Image, str]:
    """A CMYK (print) image as sRGB, through its embedded ICC profile when it has a usable one; and a note saying how."""
    from PIL import ImageCms

    mode, icc = im.mode, im.info.get("icc_profile")
    problem = ""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            described = (ImageCms.getProfileDescription(source) or "").strip() or "unnamed"
            return rgb, (f"converted from {mode} to sRGB with the file's embedded colour profile ({described}); "
                         "colours on screen may differ slightly from the original")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            problem = f"; its embedded colour profile could not be used ({exc})"
    if mode == "YCCK":
        im = im.convert("CMYK")
    return im.convert("RGB"), (f"converted from {mode} to RGB with the standard conversion (no usable colour "
                               f"profile{problem}); colours may differ from the original, judge colour with care")


def _pillow_pixels(im: Image.Image, data: bytes, name: str, deep_colour: bool) -> tuple[np.ndarray, int]:
    """(H, W) or (H, W, 3) array and its bit depth; 16-bit colour is decoded by OpenCV (Pillow drops to 8 bit)."""
    if deep_colour:
        import cv2

        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None or arr.ndim != 3:
            raise CorruptImageError(f"{name!r}: 16-bit colour data could not be decoded")
        return np.ascontiguousarray(arr[..., 2::-1]), 16
    im.load()
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16), 16
    if im.mode in ("I", "F"):
        return np.asarray(im), 32
    if im.mode in ("1", "L", "LA"):
        return np.asarray(im.convert("L")), 8
    # RGB, RGBA, LA, P, PA, YCbCr...: alpha is dropped, palettes expanded.
    return np.asarray(im.convert("RGB")), 8


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) so the array is upright."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(arr))


def _pillow_metadata(im: Image.Image) -> list[str]:
    """Names of the metadata that is dropped with the file (EXIF tags, text chunks)."""
    exif = im.getexif()
    names = [f"EXIF {ExifTags.TAGS.get(tag, hex(tag))}" for tag in exif if tag != ExifTags.Base.Orientation]
    names += [f"EXIF GPS {ExifTags.GPSTAGS.get(t, hex(t))}" for t in exif.get_ifd(ExifTags.IFD.GPSInfo)]
    names += [f"EXIF {ExifTags.TAGS.get(t, hex(t))}" for t in exif.get_ifd(ExifTags.IFD.Exif)]
    names += [f"text chunk {key}" for key in im.info if key.lower() not in _TECHNICAL_INFO]
    return sorted(set(names))


def _check_size(name: str, w: int, h: int, frames: int, max_pixels: int) -> None:
    total = int(w) * int(h) * max(int(frames), 1)
    if total > max_pixels:
        raise ImageTooLargeError(
            f"{name!r} has {w}x{h} pixels x {frames} frame(s) = {total:,}, over the limit of {max_pixels:,} "
            "(max_pixels); downsample it first or raise the limit"
        )


# --- DICOM -----------------------------------------------------------------------------------------

def _read_dicom(data: bytes, name: str, max_pixels: int) -> MedicalImage:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pydicom warns on every oddity; failures raise below
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            for _ in ds.iterall():  # parse every element now, so a damaged header fails here
                pass
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptImageError(f"{name!r} is not a readable DICOM file: {exc}") from exc
    if not any(k in ds for k in ("SOPClassUID", "Modality", "Rows", "PixelData")):
        raise CorruptImageError(f"{name!r} is not a readable DICOM file: no DICOM image or object header found")
    log = deidentify(ds)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        sop = getattr(ds.get("SOPClassUID"), "name", "") or ""
        if "Image Storage" in sop:  # an image's header with its pixels missing: a cut-off file
            raise CorruptImageError(f"{name!r} is cut short: the header of a {sop.replace(' Storage', '')} is there but "
                                    "its pixel data is missing (an interrupted copy or download?)")
        raise NoPixelDataError(
            f"{name!r} is a DICOM {ds.get('Modality', 'object')} without pixel data (SOP class "
            f"{getattr(ds.get('SOPClassUID'), 'name', 'unknown')}); it holds no image to show"
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if rows <= 0 or cols <= 0:
        raise CorruptImageError(f"{name!r}: DICOM Rows/Columns missing or zero ({rows}x{cols})")
    _check_size(name, cols, rows, frames, max_pixels)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    try:
        arr = ds.pixel_array
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
    except Exception as exc:  # pydicom raises many types for truncated data and missing decoders
        raise CorruptImageError(f"{name!r}: DICOM pixel data could not be decoded: {_plain_reason(exc)}") from exc
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1 or photometric == "PALETTE COLOR"
    if frames == 1:
        arr = arr[None]
    if not colour:
        arr = apply_modality_lut(arr, ds)
    notes = []
    if log.burned_in_annotation:
        notes.append("BurnedInAnnotation=YES: the pixels may show identifying text that de-identification cannot remove")
    spacing = _dicom_spacing(ds, notes)
    image = MedicalImage(
        pixels=np.asarray(arr, dtype=np.float32),
        source_format="dicom",
        modality=str(ds.get("Modality", "")) or None,
        pixel_spacing_mm=spacing,
        window=_dicom_window(ds) if not colour else None,
        inverted=photometric == "MONOCHROME1",
        bits_stored=int(ds.get("BitsStored", 8) or 8),
        removed_phi=log.summary(),
        notes=notes,
        name=name,
        dataset=ds,
    )
    return image


def _dicom_window(ds) -> Window | None:
    """The file's first VOI window, with its VOI LUT Function (LINEAR when absent or unknown)."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    first = lambda v: float(v[0]) if hasattr(v, "__len__") and not isinstance(v, str) else float(v)  # noqa: E731
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    try:
        return Window(first(center), max(first(width), 1.0), function if function in VOI_FUNCTIONS else "LINEAR")
    except (TypeError, ValueError, IndexError):
        return None


def _dicom_spacing(ds, notes: list[str]) -> tuple[float, float] | None:
    for keyword, caveat in (
        ("PixelSpacing", None),
        ("ImagerPixelSpacing", "spacing is at the detector (ImagerPixelSpacing), not corrected for magnification"),
    ):
        value = ds.get(keyword)
        if value is not None and len(value) == 2 and float(value[0]) > 0 and float(value[1]) > 0:
            if caveat:
                notes.append(caveat)
            return float(value[0]), float(value[1])
    return None


def deidentified_bytes(image: MedicalImage) -> tuple[bytes, str]:
    """The de-identified copy in memory and its suffix: DICOM for DICOM input, else a metadata-free PNG."""
    if image.dataset is not None:
        buf = io.BytesIO()
        image.dataset.save_as(buf, enforce_file_format=False)
        return buf.getvalue(), ".dcm"
    import cv2

    dtype = np.uint16 if image.bits_stored > 8 else np.uint8
    arr = np.clip(image.pixels[0], 0, np.iinfo(dtype).max).astype(dtype)
    ok, buf = cv2.imencode(".png", arr[..., ::-1] if arr.ndim == 3 else arr)
    if not ok:
        raise ImageReadError(f"could not encode {image.name!r} as PNG")
    return buf.tobytes(), ".png"


def write_deidentified(image: MedicalImage, path: str | Path) -> Path:
    """Write the de-identified copy (see `deidentified_bytes`) atomically to `path`."""
    data, _suffix = deidentified_bytes(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
