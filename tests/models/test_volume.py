"""CT/MR volumes: DICOM series (folder, zip) and NIfTI reading, reorientation, refused series, label maps,
multi-planar slices, organ volumes and surface meshes, on synthetic series and the shared abdominal CT."""
import io
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import trimesh
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from models.diagnosis.deid import PHI_KEYWORDS
from models.diagnosis.mesh import SurfaceBuilder, hu_surface, label_surfaces
from models.diagnosis.volume import (
    LabelMap, SeriesError, label_stats, pixel_size_mm, plane_rgb, plane_slice, read_labels, read_volume,
)
from tests.conftest import shared_path

CT = get_testdata_file("CT_small.dcm")
STEP_MM = 5.0


def write_series(folder: Path, n: int = 6, positions: list[float] | None = None, edit=None) -> Path:
    """`n` copies of pydicom's CT_small.dcm as one series, slice i painted with value 100 * i (HU -924 + 100 i).

    Files are written in reverse position order so a reader has to sort them. `edit(i, ds)` changes a slice.
    """
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(CT)
    series_uid = generate_uid()
    z0 = float(template.ImagePositionPatient[2])
    positions = positions if positions is not None else [z0 + STEP_MM * i for i in range(n)]
    for i, z in enumerate(positions):
        ds = template.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ImagePositionPatient = [template.ImagePositionPatient[0], template.ImagePositionPatient[1], z]
        ds.InstanceNumber = i + 1
        arr = np.full((ds.Rows, ds.Columns), 100 * i, dtype=np.int16)
        arr[:4, :8] = 2000  # marks the first rows (anterior) and columns (patient right)
        ds.PixelData = arr.tobytes()
        if edit:
            edit(i, ds)
        ds.save_as(folder / f"slice{len(positions) - i:03d}.dcm", enforce_file_format=True)
    return folder


def zip_folder(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"series/{path.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def nifti_bytes(array: np.ndarray, affine: np.ndarray, gz: bool = False) -> bytes:
    data = nib.Nifti1Image(array, affine).to_bytes()
    if gz:
        import gzip

        data = gzip.compress(data)
    return data


# --- DICOM series ----------------------------------------------------------------------------------

def test_series_is_sorted_by_position_and_in_hounsfield_units(tmp_path):
    volume = read_volume(write_series(tmp_path / "s"))
    assert volume.shape == (6, 128, 128) and volume.modality == "CT" and volume.source_format == "dicom"
    assert volume.spacing_mm == pytest.approx((STEP_MM, 0.661468, 0.661468))
    # Slice i holds 100 * i stored, -1024 + 100 i HU: ascending position means ascending value here.
    assert [float(volume.voxels[k, 64, 64]) for k in range(6)] == [-1024 + 100 * k for k in range(6)]
    assert volume.voxels[0, :4, :8].min() == 2000 - 1024  # first rows anterior, first columns patient right
    assert volume.affine[2, 2] == pytest.approx(STEP_MM)  # slice axis points superior


def test_series_is_deidentified(tmp_path):
    volume = read_volume(write_series(tmp_path / "s"))
    assert "PatientName (emptied)" in volume.removed_phi
    header = volume.dataset
    assert "PixelData" not in header
    for keyword in PHI_KEYWORDS:
        assert keyword not in header or header[keyword].is_empty, keyword


def test_zip_reads_like_the_folder(tmp_path):
    folder = write_series(tmp_path / "s")
    from_zip = read_volume(zip_folder(folder, {"__MACOSX/._slice001.dcm": b"junk", "series/.DS_Store": b"x"}),
                           name="series.zip")
    np.testing.assert_array_equal(from_zip.voxels, read_volume(folder).voxels)
    assert from_zip.name == "series.zip"


def _mixed_series(folder: Path) -> Path:
    write_series(folder, n=3)
    other = write_series(folder.parent / "other", n=3, positions=[100.0, 105.0, 110.0])
    for path in other.iterdir():
        path.rename(folder / f"b_{path.name}")
    return folder


def _with_file(name: str, data: bytes):
    def make(folder: Path) -> Path:
        write_series(folder, n=3)
        (folder / name).write_bytes(data)
        return folder
    return make


def _resized(i, ds):
    if i == 2:
        ds.Rows, ds.Columns = 64, 64
        ds.PixelData = np.zeros((64, 64), np.int16).tobytes()


BAD_SERIES = {
    "mixed series": (_mixed_series, r"mixes 2 different SeriesInstanceUID"),
    "gap in positions": (lambda f: write_series(f, positions=[0.0, 5.0, 10.0, 20.0, 25.0]),
                         r"incomplete: gap in slice positions between 10.00 and 20.00 mm .*1 slice\(s\) missing"),
    "duplicate position": (lambda f: write_series(f, positions=[0.0, 5.0, 5.0, 10.0]), r"at the same position"),
    "different sizes": (lambda f: write_series(f, n=4, edit=_resized), r"mixes 2 different size"),
    "non-DICOM file": (_with_file("notes.txt", b"scanned at night"), r"notes.txt' in the series is not a DICOM file; .* only the DICOM slices"),
    "PNG in the series": (_with_file("scout.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64), r"scout.png' in the series is not a (usable )?DICOM"),
    "one slice": (lambda f: write_series(f, n=1), r"has 1 slice"),
    "empty folder": (lambda f: (f.mkdir(), f)[1], r"empty folder"),
}


@pytest.mark.parametrize("how", ["folder", "zip"])
@pytest.mark.parametrize("case", list(BAD_SERIES))
def test_bad_series_are_refused_naming_the_problem(tmp_path, case, how):
    make, message = BAD_SERIES[case]
    folder = make(tmp_path / "s")
    source = folder if how == "folder" else zip_folder(folder)
    if how == "zip" and case == "empty folder":
        message = r"empty zip"
    with pytest.raises(SeriesError, match=message):
        read_volume(source, name="upload.zip" if how == "zip" else None)


@pytest.mark.parametrize("data, name, message", [
    (b"", "x.zip", r"not a volume"),
    (b"PK\x03\x04broken", "x.zip", r"not a readable zip"),
    (b"hello", "notes.txt", r"not a volume"),
    (b"\x1f\x8bnot gzip", "v.nii.gz", r"not a readable \.nii\.gz"),
    (b"\0" * 400, "v.nii", r"not a readable NIfTI"),
])
def test_bad_files_are_refused(data, name, message):
    with pytest.raises(SeriesError, match=message):
        read_volume(data, name=name)


def test_series_over_the_voxel_limit_is_refused(tmp_path):
    with pytest.raises(SeriesError, match=r"over the limit"):
        read_volume(write_series(tmp_path / "s", n=3), max_voxels=128 * 128 * 2)


# --- NIfTI, reorientation, labels -------------------------------------------------------------------

def tiny_nifti(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A 10x8x6 RAS CT-like volume at 2x1x3 mm with a 4x4x2 'liver' (label 5, 40 HU) in air, and its label map."""
    ct = np.full((10, 8, 6), -1000, np.int16)  # indices (x, y, z) growing to the patient's right, anterior, superior
    labels = np.zeros((10, 8, 6), np.uint8)
    ct[2:6, 1:5, 1:3] = 40
    labels[2:6, 1:5, 1:3] = 5
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [-10, -4, 20]
    ct_path, lab_path = tmp_path / "ct.nii.gz", tmp_path / "ct-organs.nii"
    ct_path.write_bytes(nifti_bytes(ct, affine, gz=True))
    lab_path.write_bytes(nifti_bytes(labels, affine))
    return ct_path, lab_path, ct


def test_nifti_is_reoriented_to_lps_zyx(tmp_path):
    ct_path, lab_path, ct = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    assert volume.shape == (6, 8, 10) and volume.spacing_mm == pytest.approx((3.0, 1.0, 2.0))
    assert volume.modality == "CT" and volume.source_axcodes == ("R", "A", "S")
    # RAS x (towards patient right) and y (anterior) are flipped to LPS; z stays.
    np.testing.assert_array_equal(volume.voxels, ct.transpose(2, 1, 0)[:, ::-1, ::-1])
    # Index (x, y, z) = (0, 0, 0) is now the most right, anterior, inferior corner: RAS (8, 3, 20).
    assert volume.affine[:3, 3] == pytest.approx([8.0, 3.0, 20.0])
    labels = read_labels(lab_path, volume)
    assert labels.notes == []
    assert (labels.labels == 5).sum() == 32
    assert volume.voxels[labels.labels == 5].tolist() == [40.0] * 32


def test_label_volume_is_voxel_count_times_voxel_volume(tmp_path):
    ct_path, lab_path, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    [liver] = read_labels(lab_path, volume).stats(volume.spacing_mm)
    assert (liver.label, liver.name, liver.voxels) == (5, "liver", 32)
    assert liver.volume_ml == pytest.approx(32 * 2.0 * 1.0 * 3.0 / 1000.0)


def test_cropped_label_map_is_placed_by_its_header(tmp_path):
    ct_path, _, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    crop = np.zeros((4, 4, 2), np.uint8)
    crop[:] = 5
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [-10 + 2 * 2, -4 + 1, 20 + 3]  # the crop starts at RAS voxel (2, 1, 1)
    labels = read_labels(nifti_bytes(crop, affine), volume, name="crop.nii")
    assert "covers (2, 4, 4)" in labels.notes[0]
    assert volume.voxels[labels.labels == 5].tolist() == [40.0] * 32


def test_misplaced_labels_are_flagged(tmp_path):
    ct_path, _, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    labels = np.zeros((10, 8, 6), np.uint8)
    labels[6:10, 4:8, 3:5] = 5  # all in air
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [-10, -4, 20]
    found = read_labels(nifti_bytes(labels, affine), volume, name="shifted.nii")
    assert any("may not line up" in n and "0% of liver" in n for n in found.notes)


@pytest.mark.parametrize("shape, affine_change, message", [
    ((10, 8, 7), None, r"does not fit"),
    ((10, 8, 6), ("spacing", 1.5), r"not on the volume's grid"),
    ((10, 8, 6), ("shift", 0.5), r"fraction of a voxel"),
])
def test_labels_off_the_grid_are_refused(tmp_path, shape, affine_change, message):
    ct_path, _, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [-10, -4, 20]
    if affine_change and affine_change[0] == "spacing":
        affine[0, 0] = affine_change[1]
    if affine_change and affine_change[0] == "shift":
        affine[0, 3] += affine_change[1]
    with pytest.raises(SeriesError, match=message):
        read_labels(nifti_bytes(np.zeros(shape, np.uint8), affine), volume, name="bad.nii")


def test_non_integer_labels_are_refused(tmp_path):
    ct_path, _, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    with pytest.raises(SeriesError, match=r"non-integer"):
        read_labels(nifti_bytes(np.full((10, 8, 6), 0.5, np.float32), np.diag([2.0, 1.0, 3.0, 1.0])), volume, "p.nii")


def test_planes_and_real_aspect_ratio(tmp_path):
    ct_path, lab_path, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    labels = read_labels(lab_path, volume)
    assert plane_slice(volume.voxels, "axial", 1).shape == (8, 10)
    assert plane_slice(volume.voxels, "coronal", 0).shape == (6, 10)
    assert plane_slice(volume.voxels, "sagittal", 0).shape == (6, 8)
    assert pixel_size_mm(volume, "sagittal") == (3.0, 1.0)
    # Coronal: 6 slices of 3 mm over 10 columns of 2 mm -> 18 mm x 20 mm at 2 mm per pixel -> 9 x 10.
    assert plane_rgb(volume, "coronal", 4).shape == (9, 10, 3)
    assert plane_rgb(volume, "sagittal", 4).shape == (18, 8, 3)
    # Superior at the top: the last slice (z index 5) is the first row of a coronal view.
    np.testing.assert_array_equal(plane_slice(volume.voxels, "coronal", 2)[0], volume.voxels[5, 2])
    overlay = plane_rgb(volume, "axial", 1, volume.window_presets()["soft tissue"], labels.labels, opacity=1.0)
    assert overlay.shape == (8, 20, 3)  # 2 mm columns are stretched to 1 mm pixels
    assert tuple(overlay[5, 10]) == (196, 78, 62) and tuple(overlay[0, 0]) == (0, 0, 0)  # liver colour, air
    with pytest.raises(ValueError, match=r"plane must be one of"):
        plane_rgb(volume, "oblique", 0)
    with pytest.raises(IndexError, match=r"axial slice 6 out of range 0..5"):
        plane_slice(volume.voxels, "axial", 6)


def test_mesh_of_a_synthetic_organ_is_closed_and_has_its_volume(tmp_path):
    ct_path, lab_path, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    [mesh] = label_surfaces(volume, read_labels(lab_path, volume), SurfaceBuilder(smooth_iterations=0))
    assert mesh.name == "liver" and mesh.watertight and mesh.why_not_watertight is None
    # Marching cubes at level 0.5 cuts the corners of the 8 x 4 x 6 mm box (voxels are 2 x 1 x 3 mm).
    assert 0.5 * mesh.voxel_volume_ml < mesh.mesh_volume_ml() < mesh.voxel_volume_ml
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    assert hi - lo == pytest.approx([8.0, 4.0, 6.0], abs=1e-4)  # (x, y, z) extents in mm: the box itself
    loaded = trimesh.load(io.BytesIO(mesh.to_bytes("glb")), file_type="glb", force="mesh")
    assert loaded.is_watertight and len(loaded.faces) == mesh.n_faces
    for fmt in ("stl", "ply"):
        assert trimesh.load(io.BytesIO(mesh.to_bytes(fmt)), file_type=fmt, force="mesh").is_watertight
    with pytest.raises(ValueError, match=r"mesh format must be one of"):
        mesh.export(tmp_path / "liver.obj")


def test_hu_surface_and_builder_settings(tmp_path):
    ct_path, _, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    soft = hu_surface(volume, "soft tissue", SurfaceBuilder())
    assert soft is not None and soft.source == "HU -100..300" and soft.voxels == 32
    assert hu_surface(volume, "bone") is None  # nothing above 300 HU
    with pytest.raises(ValueError, match=r"HU range must be one of"):
        hu_surface(volume, "cartilage")
    with pytest.raises(ValueError, match=r"low < high"):
        hu_surface(volume, (300, 100))
    with pytest.raises(ValueError, match=r"max_faces must be at least 100, got 10"):
        SurfaceBuilder(max_faces=10)


def test_label_stats_refuses_negative_labels():
    with pytest.raises(ValueError, match=r"labels >= 0, got -1"):
        label_stats(np.array([[[-1, 0]]]), (1.0, 1.0, 1.0))
    assert label_stats(np.zeros((2, 2, 2), int), (1.0, 1.0, 1.0)) == []
    assert LabelMap(np.zeros((1, 1, 1), np.int32)).names[5] == "liver"


# --- the shared abdominal CT ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def abdomen():
    folder = shared_path("volumes", "ct-abdomen-dicom")
    volume = read_volume(folder)
    labels = read_labels(shared_path("volumes", "ct-abdomen-dicom-organs.nii.gz"), volume)
    return folder, volume, labels


def test_shared_series_order_spacing_and_hu(abdomen):
    folder, volume, _ = abdomen
    assert volume.shape == (20, 512, 512) and volume.modality == "CT"
    assert volume.spacing_mm == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert volume.value_range() == (-1024.0, 1839.0)
    positions = sorted(float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
                       for p in folder.glob("*.dcm"))
    # Slice k of the volume is the k-th position from inferior to superior (-804.5 .. -766.5 mm).
    z = [float((volume.affine @ [0, 0, k, 1])[2]) for k in range(20)]
    assert z == pytest.approx(positions) and z == sorted(z) and np.diff(z) == pytest.approx([2.0] * 19)
    first = min(folder.glob("*.dcm"), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    raw = pydicom.dcmread(first)
    np.testing.assert_array_equal(volume.voxels[0], raw.pixel_array.astype(np.float32) * float(raw.RescaleSlope)
                                  + float(raw.RescaleIntercept))


def test_shared_series_is_deidentified(abdomen):
    _, volume, _ = abdomen
    assert any(r.endswith("private tag(s) (removed)") for r in volume.removed_phi)
    for keyword in PHI_KEYWORDS:
        assert keyword not in volume.dataset or volume.dataset[keyword].is_empty, keyword


def test_shared_liver_lines_up_with_soft_tissue(abdomen):
    _, volume, labels = abdomen
    liver = labels.labels == 5
    assert labels.notes == []
    values = volume.voxels[liver]
    assert np.median(values) == pytest.approx(93, abs=15)  # contrast-enhanced liver parenchyma
    assert ((values > 0) & (values < 200)).mean() > 0.95
    # Flipping the map left-right or front-back puts much of the liver elsewhere: the orientation matters.
    assert ((volume.voxels[liver[:, :, ::-1]] > 0) & (volume.voxels[liver[:, :, ::-1]] < 200)).mean() < 0.8
    assert ((volume.voxels[liver[:, ::-1]] > 0) & (volume.voxels[liver[:, ::-1]] < 200)).mean() < 0.8
    # The liver lies on the patient's right (low x index), the spleen (label 1) on the left.
    assert np.nonzero(liver)[2].mean() < 256 < np.nonzero(labels.labels == 1)[2].mean()


def test_shared_liver_volume_and_mesh(abdomen, tmp_path):
    _, volume, labels = abdomen
    stats = {s.label: s for s in labels.stats(volume.spacing_mm)}
    count = int((labels.labels == 5).sum())
    assert stats[5].name == "liver" and stats[5].voxels == count
    assert stats[5].volume_ml == pytest.approx(count * 0.9765625 * 0.9765625 * 2.0 / 1000.0)
    [mesh] = label_surfaces(volume, labels, SurfaceBuilder(max_faces=100_000), only=[5])
    assert mesh.n_faces <= 100_000
    path = mesh.export(tmp_path / "liver.glb")
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.faces) == mesh.n_faces
    assert loaded.is_watertight or mesh.why_not_watertight
    if loaded.is_watertight:
        assert abs(loaded.volume) / 1000.0 == pytest.approx(stats[5].volume_ml, rel=0.05)


def test_shared_zip_of_the_series(abdomen):
    folder, volume, _ = abdomen
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.glob("*.dcm"))[::-1]:
            zf.write(path, f"CT/{path.name}")
    from_zip = read_volume(buf.getvalue(), name="ct.zip")
    np.testing.assert_array_equal(from_zip.voxels, volume.voxels)


def test_shared_pelvis_nifti_with_its_organs():
    volume = read_volume(shared_path("volumes", "ct-abdomen-pelvis.nii.gz"))
    assert volume.shape == (112, 101, 122) and volume.spacing_mm == pytest.approx((3.0, 3.0, 3.0))
    assert volume.modality == "CT" and volume.value_range()[0] < -1000
    labels = read_labels(shared_path("volumes", "ct-abdomen-pelvis-organs.nii.gz"), volume)
    assert labels.labels.shape == volume.shape
    liver = {s.label: s for s in labels.stats(volume.spacing_mm)}[5]
    assert liver.volume_ml == pytest.approx(liver.voxels * 27.0 / 1000.0)


def test_decimation_keeps_the_face_budget_without_fast_simplification(tmp_path, monkeypatch):
    ct_path, _, _ = tiny_nifti(tmp_path)
    volume = read_volume(ct_path)
    full = hu_surface(volume, "soft tissue", SurfaceBuilder(smooth_iterations=0))

    def missing(self, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'fast_simplification'")

    monkeypatch.setattr(trimesh.Trimesh, "simplify_quadric_decimation", missing)
    small = hu_surface(volume, "soft tissue", SurfaceBuilder(max_faces=100, smooth_iterations=0))
    assert full.n_faces > 100 >= small.n_faces > 0
    assert small.faces_before_decimation == full.n_faces or small.subsampled > 1
    assert small.watertight or small.why_not_watertight
