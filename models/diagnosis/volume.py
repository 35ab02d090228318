"""CT/MR volumes: a DICOM series (folder or zip) or a NIfTI file into one `Volume`, plus multi-planar slices.

Every volume is reoriented to one layout, so slicing, overlays and meshes never ask where a file came from:
`voxels[z, y, x]` with z from inferior to superior, y from anterior to posterior and x from the patient's
right to left (DICOM's LPS axes, nearest-axis reorientation with nibabel). Axial slices then show the
patient in the radiological convention (patient right on the image left, anterior at the top).

DICOM slices go through `read_image`, so each header is de-identified (deid.py) before anything else reads
it, and CT values are Hounsfield units (rescale slope/intercept). A series is refused with a `SeriesError`
naming the problem when it mixes series, sizes or orientations, or when slice positions have a gap.
Label maps (NIfTI, e.g. TotalSegmentator) must lie on the volume's grid; `read_labels` checks that.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from models.diagnosis.image import (
    CT_WINDOW_PRESETS,
    ImageReadError,
    MedicalImage,
    UnsupportedImageError,
    Window,
    read_image,
)

DEFAULT_MAX_VOXELS = 200_000_000  # one float32 copy is 800 MB
MAX_ARCHIVE_BYTES = 4 * 1024**3  # uncompressed zip/gzip content; a decompression-bomb guard
TARGET_AXCODES = ("L", "P", "S")  # nibabel codes of array axes (x, y, z): the direction each index grows to
PLANES = ("axial", "coronal", "sagittal")
# Files an operating system or a DICOM export adds beside the slices; skipped without complaint.
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "dicomdir"}
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
GAP_TOLERANCE = 0.2  # a step may differ from the series' typical step by this fraction

# TotalSegmentator v2 "total" task (117 classes) names for the labels this project has checked against the
# shared CT (label 5 = liver per the data notes); other labels are shown as "label N".
# Sides were checked on the shared scans (e.g. 69 lies on the patient's left, 2 on the right).
TOTALSEGMENTATOR_NAMES: dict[int, str] = {
    1: "spleen", 2: "kidney right", 3: "kidney left", 4: "gallbladder", 5: "liver", 6: "stomach", 7: "pancreas",
    8: "adrenal gland right", 20: "colon", 52: "aorta", 63: "inferior vena cava", 64: "portal and splenic vein",
    69: "humerus left", 70: "humerus right", 79: "spinal cord", 86: "autochthon left", 87: "autochthon right",
}
# Solid organs whose CT values are soft tissue; most of their voxels outside this range means misplaced labels.
SOLID_ORGANS = (1, 2, 3, 5)
SOFT_TISSUE_HU = (-50.0, 300.0)
MIN_SOFT_TISSUE_SHARE = 0.7
# Display colours (RGB) for named organs; other labels take a colour from PALETTE by label number.
ORGAN_COLOURS: dict[str, tuple[int, int, int]] = {
    "liver": (196, 78, 62), "spleen": (130, 60, 160), "kidney right": (230, 160, 40), "kidney left": (240, 190, 60),
    "gallbladder": (60, 170, 80), "stomach": (240, 120, 160), "pancreas": (250, 220, 120), "aorta": (220, 30, 30),
    "inferior vena cava": (50, 90, 210), "spinal cord": (250, 250, 180),
}
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120), (152, 223, 138),
           (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (219, 219, 141), (158, 218, 229)]


class SeriesError(ImageReadError):
    """A series or volume that cannot be used: mixed, incomplete, empty or unreadable; the message says which."""


@dataclass
class Volume:
    """A de-identified 3D image in the layout described in the module docstring.

    `voxels` is float32 (z, y, x) in the modality's units (HU for CT). `spacing_mm` is (z, y, x).
    `affine` maps voxel indices (x, y, z) = (column, row, slice) to RAS millimetres, the NIfTI
    convention, so `voxels.transpose(2, 1, 0)` with it is a valid NIfTI image. `source_axcodes` is
    the orientation the data had on disk. `removed_phi` lists the identifying elements dropped from
    any slice; `dataset` is the first slice's de-identified header without its pixels.
    """

    voxels: np.ndarray
    spacing_mm: tuple[float, float, float]
    affine: np.ndarray
    source_format: str
    modality: str | None = None
    name: str = ""
    source_axcodes: tuple[str, str, str] = TARGET_AXCODES
    window: Window | None = None
    removed_phi: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dataset: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.window is None:
            self.window = self.full_range_window()

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.voxels.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing_mm))

    @property
    def is_ct(self) -> bool:
        return (self.modality or "").upper() == "CT"

    def value_range(self) -> tuple[float, float]:
        return float(self.voxels.min()), float(self.voxels.max())

    def full_range_window(self) -> Window:
        lo, hi = self.value_range()
        return Window((lo + hi) / 2.0, max(hi - lo, 1.0))

    def window_presets(self) -> dict[str, Window]:
        """Named display windows: the default, the full range, and the CT presets for CT."""
        presets = {"default": self.window, "full range": self.full_range_window()}
        if self.is_ct:
            presets.update(CT_WINDOW_PRESETS)
        return presets

    def centre(self) -> dict[str, int]:
        """The central slice index of each plane."""
        nz, ny, nx = self.shape
        return {"axial": nz // 2, "coronal": ny // 2, "sagittal": nx // 2}

    def n_slices(self, plane: str) -> int:
        return {"axial": self.shape[0], "coronal": self.shape[1], "sagittal": self.shape[2]}[_plane(plane)]

    def summary(self) -> dict:
        """JSON-ready facts about the volume (no PHI)."""
        lo, hi = self.value_range()
        return {
            "name": self.name, "source_format": self.source_format, "modality": self.modality,
            "shape": list(self.shape), "axes": "z (inferior->superior), y (anterior->posterior), x (right->left)",
            "spacing_mm": [round(s, 4) for s in self.spacing_mm], "source_orientation": "".join(self.source_axcodes),
            "hu_range" if self.is_ct else "value_range": [round(lo, 2), round(hi, 2)],
            "removed_phi": len(self.removed_phi), "notes": list(self.notes),
        }


# --- reading ---------------------------------------------------------------------------------------

def read_volume(
    source: str | Path | bytes | BinaryIO, name: str | None = None, max_voxels: int = DEFAULT_MAX_VOXELS
) -> Volume:
    """Read a DICOM series (folder, zip path or zip bytes) or a NIfTI file (.nii/.nii.gz, path or bytes).

    Raises `SeriesError` (a ValueError) naming the problem for anything that cannot be used.
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return read_dicom_series(_folder_files(Path(source)), name=name or Path(source).name, max_voxels=max_voxels)
    data, name = _bytes_of(source, name)
    if _is_zip(data):
        return read_dicom_series(_zip_files(data, name), name=name, max_voxels=max_voxels)
    if _is_nifti(data, name):
        return _read_nifti_volume(data, name, max_voxels)
    raise SeriesError(
        f"{name!r} is not a volume: expected a folder or zip of DICOM slices, or a NIfTI file (.nii, .nii.gz)"
    )


def read_dicom_series(
    files: list[tuple[str, bytes]], name: str = "<series>", max_voxels: int = DEFAULT_MAX_VOXELS
) -> Volume:
    """Stack (file name, bytes) DICOM slices of one series into a Volume, ordered by ImagePositionPatient."""
    if not files:
        raise SeriesError(f"{name!r} holds no DICOM files")
    slices = [_read_slice(data, fname) for fname, data in files]
    first = slices[0]
    _check_one_series(slices, name)
    n = len(slices)
    rows, cols = first.height, first.width
    if n < 2:
        raise SeriesError(f"{name!r} has 1 slice ({first.name!r}); a volume needs at least 2 (open one image in Diagnosis)")
    if n * rows * cols > max_voxels:
        raise SeriesError(f"{name!r} has {cols}x{rows}x{n} = {n * rows * cols:,} voxels, over the limit of {max_voxels:,}")
    ds0 = first.dataset
    iop = _orientation(ds0, first.name)
    row_dir, col_dir = iop[:3], iop[3:]  # direction of increasing column index, of increasing row index
    normal = np.cross(row_dir, col_dir)
    positions = [_position(s.dataset, s.name) for s in slices]
    along = np.array([float(np.dot(p, normal)) for p in positions])
    order = np.argsort(along, kind="stable")
    slices = [slices[i] for i in order]
    along, positions = along[order], [positions[i] for i in order]
    step = _check_steps(along, [s.name for s in slices], name)
    if first.pixel_spacing_mm is None:
        raise SeriesError(f"{name!r}: slice {first.name!r} has no PixelSpacing; the volume's size is unknown")
    dr, dc = first.pixel_spacing_mm  # DICOM PixelSpacing = (between rows, between columns)
    # voxel (col, row, slice) -> LPS mm; then to RAS, nibabel's convention.
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = row_dir * dc, col_dir * dr
    lps[:3, 2] = (positions[-1] - positions[0]) / (n - 1)
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    stack = np.stack([s.pixels[0] for s in slices])  # (slice, row, col)
    notes = []
    if any(s.notes for s in slices):
        notes += sorted({note for s in slices for note in s.notes})
    removed = sorted({r for s in slices for r in s.removed_phi})
    header = ds0.copy()
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in header:
            del header[keyword]
    notes.append(f"{n} slices, {abs(step):.3g} mm apart")
    return _canonical(stack.transpose(2, 1, 0), affine, source_format="dicom", modality=first.modality, name=name,
                      window=first.window, removed_phi=removed, notes=notes, dataset=header)


@dataclass
class LabelMap:
    """An organ label map on a volume's grid: int32 (z, y, x), 0 = background; `names` label -> organ."""

    labels: np.ndarray
    name: str = ""
    names: dict[int, str] = field(default_factory=lambda: dict(TOTALSEGMENTATOR_NAMES))
    notes: list[str] = field(default_factory=list)

    def stats(self, spacing_mm: tuple[float, float, float]) -> list["LabelStats"]:
        return label_stats(self.labels, spacing_mm, self.names)


def read_labels(source: str | Path | bytes | BinaryIO, volume: Volume, name: str | None = None) -> LabelMap:
    """A NIfTI label map placed on `volume`'s grid by its header (orientation, spacing and origin).

    A map covering part of the grid (same axes and spacing, whole-voxel offset: a crop) is placed into
    a zero map of the volume's size, with a note; anything else is refused with `SeriesError`.
    """
    data, name = _bytes_of(source, name)
    if not _is_nifti(data, name):
        raise SeriesError(f"{name!r} is not a NIfTI label map (.nii or .nii.gz)")
    image = _nifti_image(data, name)
    values = np.asarray(image.dataobj)
    if values.ndim == 4 and values.shape[3] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise SeriesError(f"{name!r}: a label map must be 3D, got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.allclose(values, np.round(values)):
            raise SeriesError(f"{name!r} holds non-integer values; a label map has one whole number per voxel")
        values = np.round(values)
    if values.min() < 0:
        raise SeriesError(f"{name!r} holds negative labels (min {values.min()}); labels are 0 (background) or more")
    labels, affine = _reorient(values.astype(np.int32), image.affine)
    placed, notes = _on_grid(labels, affine, volume, name)
    label_map = LabelMap(placed, name=name, notes=notes)
    label_map.notes += alignment_warnings(volume, label_map)
    return label_map


def soft_tissue_share(volume: Volume, mask: np.ndarray) -> float:
    """The share of the mask's voxels within SOFT_TISSUE_HU."""
    values = volume.voxels[mask]
    if values.size == 0:
        return float("nan")
    return float(((values >= SOFT_TISSUE_HU[0]) & (values <= SOFT_TISSUE_HU[1])).mean())


def alignment_warnings(volume: Volume, labels: LabelMap) -> list[str]:
    """Warnings when a CT's solid organs (liver, spleen, kidneys) are mostly not soft tissue: the header lies."""
    if not volume.is_ct:
        return []
    out = []
    for value in SOLID_ORGANS:
        mask = labels.labels == value
        if mask.sum() >= 20:  # too few voxels say nothing (partial-volume edges)
            share = soft_tissue_share(volume, mask)
            if share < MIN_SOFT_TISSUE_SHARE:
                out.append(f"the label map may not line up with the volume: only {share:.0%} of "
                           f"{label_name(value, labels.names)} (label {value}) is soft tissue "
                           f"({SOFT_TISSUE_HU[0]:g}..{SOFT_TISSUE_HU[1]:g} HU)")
    return out


def _read_slice(data: bytes, fname: str) -> MedicalImage:
    only = "a series folder or zip must hold only the DICOM slices of one series"
    try:
        image = read_image(data, name=fname)
    except UnsupportedImageError as exc:
        raise SeriesError(f"{fname!r} in the series is not a DICOM file; {only}") from exc
    except ImageReadError as exc:
        raise SeriesError(f"{fname!r} in the series is not a usable DICOM slice: {exc}") from exc
    if image.source_format != "dicom":
        raise SeriesError(f"{fname!r} in the series is a {image.source_format.upper()} image, not DICOM; {only}")
    if image.is_colour:
        raise SeriesError(f"{fname!r} is a colour DICOM; a CT/MR series must be greyscale")
    if image.n_frames != 1:
        raise SeriesError(f"{fname!r} is a multi-frame DICOM ({image.n_frames} frames); only single-frame series are read")
    return image


def _check_one_series(slices: list[MedicalImage], name: str) -> None:
    def groups(key) -> dict:
        out: dict = {}
        for s in slices:
            out.setdefault(key(s), []).append(s.name)
        return out

    checks = (
        ("SeriesInstanceUID", lambda s: str(s.dataset.get("SeriesInstanceUID", ""))),
        ("size (columns x rows)", lambda s: f"{s.width}x{s.height}"),
        ("ImageOrientationPatient", lambda s: tuple(np.round(_orientation(s.dataset, s.name), 3))),
        ("PixelSpacing", lambda s: tuple(np.round(s.pixel_spacing_mm, 4)) if s.pixel_spacing_mm else None),
        ("Modality", lambda s: s.modality),
    )
    for what, key in checks:
        found = groups(key)
        if len(found) > 1:
            detail = "; ".join(f"{value!s}: {len(names)} file(s), e.g. {names[0]!r}" for value, names in
                               list(found.items())[:3])
            raise SeriesError(f"{name!r} mixes {len(found)} different {what} values ({detail}); give one series")


def _orientation(ds, fname: str) -> np.ndarray:
    value = ds.get("ImageOrientationPatient")
    if value is None or len(value) != 6:
        raise SeriesError(f"{fname!r} has no ImageOrientationPatient; slices cannot be placed in 3D")
    iop = np.asarray([float(v) for v in value])
    return np.concatenate([iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])])


def _position(ds, fname: str) -> np.ndarray:
    value = ds.get("ImagePositionPatient")
    if value is None or len(value) != 3:
        raise SeriesError(f"{fname!r} has no ImagePositionPatient; slices cannot be ordered")
    return np.asarray([float(v) for v in value])


def _check_steps(along: np.ndarray, names: list[str], name: str) -> float:
    """The slice step (mm); duplicate positions and gaps are refused."""
    steps = np.diff(along)
    same = np.flatnonzero(np.abs(steps) < 1e-3)
    if same.size:
        i = int(same[0])
        raise SeriesError(f"{name!r}: slices {names[i]!r} and {names[i + 1]!r} are at the same position "
                          f"({along[i]:.2f} mm); duplicates or two series in one")
    typical = float(np.median(steps))
    bad = np.flatnonzero(np.abs(steps - typical) > GAP_TOLERANCE * typical)
    if bad.size:
        i = int(bad[0])
        kind = "gap" if steps[i] > typical else "uneven spacing"
        raise SeriesError(
            f"{name!r} is incomplete: {kind} in slice positions between {along[i]:.2f} and {along[i + 1]:.2f} mm "
            f"({steps[i]:.2f} mm step where the series steps {typical:.2f} mm; about "
            f"{max(round(steps[i] / typical) - 1, 0)} slice(s) missing)"
        )
    return typical


def _reorient(array_xyz: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An (x, y, z)-indexed array with a RAS affine -> the (z, y, x) array of the module's layout and its affine."""
    from nibabel import orientations as ornt

    transform = ornt.ornt_transform(ornt.io_orientation(affine), ornt.axcodes2ornt(TARGET_AXCODES))
    data = ornt.apply_orientation(array_xyz, transform)
    new_affine = affine @ ornt.inv_ornt_aff(transform, array_xyz.shape)
    return np.ascontiguousarray(data.transpose(2, 1, 0)), new_affine


def _canonical(array_xyz: np.ndarray, affine: np.ndarray, **fields) -> Volume:
    import nibabel as nib

    zyx, new_affine = _reorient(array_xyz, affine)
    spacing = tuple(float(s) for s in np.linalg.norm(new_affine[:3, :3], axis=0)[::-1])
    return Volume(voxels=zyx.astype(np.float32, copy=False), spacing_mm=spacing, affine=new_affine,
                  source_axcodes=tuple(nib.aff2axcodes(affine)), **fields)


def _on_grid(labels: np.ndarray, affine: np.ndarray, volume: Volume, name: str) -> tuple[np.ndarray, list[str]]:
    shape = labels.shape
    if not np.allclose(affine[:3, :3], volume.affine[:3, :3], atol=1e-3 * max(volume.spacing_mm)):
        raise SeriesError(f"{name!r} is not on the volume's grid: its voxel axes/spacing differ "
                          f"({_spacing_text(affine)} vs {_spacing_text(volume.affine)} mm); resample it first")
    # Where the label map's first voxel lies in the volume's voxel indices (x, y, z).
    offset_xyz = np.linalg.solve(volume.affine[:3, :3], affine[:3, 3] - volume.affine[:3, 3])
    offset = np.round(offset_xyz[::-1]).astype(int)  # (z, y, x)
    if np.abs(offset_xyz[::-1] - offset).max() > 0.1:
        raise SeriesError(f"{name!r} is shifted by a fraction of a voxel from the volume ({offset_xyz.round(2)} voxels); "
                          "resample it onto the volume's grid first")
    if tuple(shape) == volume.shape and not offset.any():
        return labels, []
    end = offset + np.array(shape)
    if (offset < 0).any() or (end > np.array(volume.shape)).any():
        raise SeriesError(f"{name!r} has shape {tuple(shape)} (z, y, x) at voxel offset {tuple(offset)}, which does not "
                          f"fit the volume's {volume.shape}; it must lie on the same grid")
    full = np.zeros(volume.shape, dtype=np.int32)
    full[offset[0]:end[0], offset[1]:end[1], offset[2]:end[2]] = labels
    note = (f"{name!r} covers {tuple(shape)} of the volume's {volume.shape} voxels (z, y, x), placed at offset "
            f"{tuple(int(o) for o in offset)} by its header; outside it nothing is labelled")
    return full, [note]


def _spacing_text(affine: np.ndarray) -> str:
    return "x".join(f"{s:.3g}" for s in np.linalg.norm(affine[:3, :3], axis=0))


def _read_nifti_volume(data: bytes, name: str, max_voxels: int) -> Volume:
    image = _nifti_image(data, name)
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise SeriesError(f"{name!r}: expected a 3D NIfTI volume, got shape {image.shape}")
    if min(shape) < 2:
        raise SeriesError(f"{name!r} has shape {shape}; a volume needs at least 2 voxels along each axis")
    if int(np.prod(shape)) > max_voxels:
        raise SeriesError(f"{name!r} has {int(np.prod(shape)):,} voxels, over the limit of {max_voxels:,}")
    values = np.asarray(image.get_fdata(dtype=np.float32)).reshape(shape)  # applies scl_slope/scl_inter
    # NIfTI has no modality field: a CT is recognised by its air at about -1000 HU.
    modality = "CT" if float(values.min()) <= -900 else None
    notes = ["NIfTI has no modality; taken as CT (air near -1000), values read as HU" if modality
             else "NIfTI has no modality; values shown as stored"]
    return _canonical(values, image.affine, source_format="nifti", modality=modality, name=name, notes=notes)


def _nifti_image(data: bytes, name: str):
    import nibabel as nib

    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
                data = fh.read(MAX_ARCHIVE_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise SeriesError(f"{name!r} is not a readable .nii.gz: {exc}") from exc
        if len(data) > MAX_ARCHIVE_BYTES:
            raise SeriesError(f"{name!r} unpacks to more than {MAX_ARCHIVE_BYTES:,} bytes")
    try:
        klass = nib.Nifti2Image if data[:4] in (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c") else nib.Nifti1Image
        return klass.from_bytes(data)
    except Exception as exc:  # nibabel raises HeaderDataError, ValueError, struct errors...
        raise SeriesError(f"{name!r} is not a readable NIfTI file: {exc}") from exc


def _bytes_of(source, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
        try:
            return Path(source).read_bytes(), name
        except OSError as exc:
            raise SeriesError(f"cannot read {str(source)!r}: {exc.strerror or exc}") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<upload>"
    return source.read(), name or "<upload>"


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06"


def _is_nifti(data: bytes, name: str) -> bool:
    return name.lower().endswith(_NIFTI_SUFFIXES) or name.lower().endswith(".gz") or data[344:348] in (b"n+1\x00", b"n+2\x00")


def _skipped(rel: str) -> bool:
    parts = rel.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1].lower() in _JUNK_NAMES or parts[-1].startswith("._")


def _folder_files(folder: Path) -> list[tuple[str, bytes]]:
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not _skipped(str(p.relative_to(folder))))
    if not paths:
        raise SeriesError(f"{str(folder)!r} is an empty folder: no DICOM slices in it")
    return [(str(p.relative_to(folder)), p.read_bytes()) for p in paths]


def _zip_files(data: bytes, name: str) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir() and not _skipped(m.filename)]
        total = sum(m.file_size for m in members)
        if total > MAX_ARCHIVE_BYTES:
            raise SeriesError(f"{name!r} unpacks to {total:,} bytes, over the limit of {MAX_ARCHIVE_BYTES:,}")
        files = [(m.filename, archive.read(m)) for m in sorted(members, key=lambda m: m.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
        raise SeriesError(f"{name!r} is not a readable zip file: {exc}") from exc
    if not files:
        raise SeriesError(f"{name!r} is an empty zip: no DICOM slices in it")
    return files


# --- multi-planar slices ---------------------------------------------------------------------------

def _plane(plane: str) -> str:
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {PLANES}, got {plane!r}")
    return plane


def plane_slice(array: np.ndarray, plane: str, index: int) -> np.ndarray:
    """One 2D slice of a (z, y, x) array as displayed: axial with anterior up and patient right on the left,
    coronal and sagittal with superior up (sagittal: anterior on the left)."""
    plane = _plane(plane)
    n = {"axial": array.shape[0], "coronal": array.shape[1], "sagittal": array.shape[2]}[plane]
    if not 0 <= index < n:
        raise IndexError(f"{plane} slice {index} out of range 0..{n - 1}")
    if plane == "axial":
        return array[index]
    if plane == "coronal":
        return array[::-1, index, :]
    return array[::-1, :, index]


def pixel_size_mm(volume: Volume, plane: str) -> tuple[float, float]:
    """(height, width) of one displayed pixel of `plane` in mm."""
    dz, dy, dx = volume.spacing_mm
    return {"axial": (dy, dx), "coronal": (dz, dx), "sagittal": (dz, dy)}[_plane(plane)]


def label_name(label: int, names: dict[int, str] | None = None) -> str:
    """The organ name of a label number when known, else "label N"."""
    return (names or TOTALSEGMENTATOR_NAMES).get(int(label), f"label {int(label)}")


def label_colour(label: int, names: dict[int, str] | None = None) -> tuple[int, int, int]:
    """The display colour (RGB) of a label: the organ's colour when named, else one from PALETTE."""
    return ORGAN_COLOURS.get(label_name(label, names), PALETTE[int(label) % len(PALETTE)])


def plane_rgb(
    volume: Volume, plane: str, index: int, window: Window | None = None, labels: np.ndarray | None = None,
    opacity: float = 0.45, names: dict[int, str] | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 slice through a window, labels blended in colour, resampled to the real aspect ratio.

    The finer in-plane spacing is kept; the coarser axis is stretched (linear for the image, nearest for labels).
    """
    import cv2

    grey = (window or volume.window).apply(plane_slice(volume.voxels, plane, index))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    lab = None
    if labels is not None:
        if labels.shape != volume.shape:
            raise ValueError(f"labels shape {labels.shape} differs from the volume's {volume.shape}")
        lab = plane_slice(labels, plane, index)
        present = [v for v in np.unique(lab) if v != 0]
        if present:
            lut = np.zeros((int(max(present)) + 1, 3), np.float32)
            for v in present:
                lut[v] = label_colour(v, names)
            inside = lab > 0
            colours = lut[lab[inside]]
            rgb = rgb.astype(np.float32)
            rgb[inside] = (1 - opacity) * rgb[inside] + opacity * colours
            rgb = (rgb + 0.5).astype(np.uint8)
    h_mm, w_mm = pixel_size_mm(volume, plane)
    unit = min(h_mm, w_mm)
    height, width = grey.shape
    size = (max(int(round(width * w_mm / unit)), 1), max(int(round(height * h_mm / unit)), 1))
    if size != (width, height):
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR if lab is None else cv2.INTER_NEAREST)
    return np.ascontiguousarray(rgb)


# --- label statistics ------------------------------------------------------------------------------

@dataclass
class LabelStats:
    """One label of a label map: voxels and volume (voxel count x voxel volume)."""

    label: int
    name: str
    voxels: int
    volume_ml: float

    def to_dict(self) -> dict:
        return {"label": self.label, "name": self.name, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 3)}


def label_stats(labels: np.ndarray, spacing_mm: tuple[float, float, float],
                names: dict[int, str] | None = None) -> list[LabelStats]:
    """Every non-zero label present, in label order, with its volume in mL."""
    labels = np.asarray(labels)
    if labels.min() < 0:
        raise ValueError(f"label maps hold labels >= 0, got {int(labels.min())}")
    counts = np.bincount(labels.ravel())
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    return [LabelStats(int(v), label_name(v, names), int(c), float(c) * voxel_ml)
            for v, c in enumerate(counts) if v and c]
