"""`surglens volume`: meshes, plane PNGs and summary.json from a tiny NIfTI and from the shared CT series."""
import json

import cv2
import nibabel as nib
import numpy as np
import pytest
import trimesh

from app.cli import main
from tests.conftest import shared_path


@pytest.fixture
def tiny_ct(tmp_path):
    """A 24x20x12 RAS CT at 1x1x2 mm: air, a 'liver' (label 5, 60 HU), a 'bone' block (700 HU), and its label map."""
    ct = np.full((24, 20, 12), -1000, np.int16)
    ct[4:14, 4:14, 2:8] = 60
    ct[16:20, 8:12, 2:10] = 700
    labels = np.zeros(ct.shape, np.uint8)
    labels[4:14, 4:14, 2:8] = 5
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(ct, affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "organs.nii.gz")
    return tmp_path / "ct.nii.gz", tmp_path / "organs.nii.gz"


def test_volume_command_on_a_tiny_nifti(tiny_ct, tmp_path, capsys):
    ct, organs = tiny_ct
    out = tmp_path / "out"
    assert main(["volume", str(ct), "--out", str(out), "--labels", str(organs), "--formats", "glb", "stl"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["shape"] == [12, 20, 24] and printed["spacing_mm"] == [2.0, 1.0, 1.0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hu_range"] == [-1000.0, 700.0] and summary["window"] == "soft tissue"
    [liver] = summary["labels"]["per_label"]
    assert (liver["label"], liver["name"], liver["voxels"]) == (5, "liver", 600)
    assert liver["volume_ml"] == pytest.approx(600 * 2.0 / 1000.0)
    assert liver["mesh"]["files"] == ["meshes/label-005-liver.glb", "meshes/label-005-liver.stl"]
    mesh = trimesh.load(out / liver["mesh"]["files"][0], force="mesh")
    assert mesh.is_watertight and liver["mesh"]["watertight"]
    [bone] = summary["hu_surfaces"]
    assert bone["name"] == "bone" and bone["voxels"] == 4 * 4 * 8 and (out / "meshes" / "hu-bone.glb").is_file()
    # PNGs at the real aspect ratio: coronal is 12 slices x 2 mm over 24 columns x 1 mm.
    assert cv2.imread(str(out / "planes" / "axial.png")).shape == (20, 24, 3)
    assert cv2.imread(str(out / "planes" / "coronal.png")).shape == (24, 24, 3)
    assert cv2.imread(str(out / "planes" / "sagittal.png")).shape == (24, 20, 3)


@pytest.mark.parametrize("args, match", [
    (["--hu-range", "cartilage"], "--hu-range must be one of"),
    (["--window", "sunset"], "window 'sunset' not available"),
    (["--labels", "missing.nii.gz"], "cannot read"),
])
def test_volume_command_errors_are_one_line(tiny_ct, tmp_path, capsys, args, match):
    ct, _ = tiny_ct
    assert main(["volume", str(ct), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_volume_command_refuses_an_empty_folder(tmp_path, capsys):
    (tmp_path / "series").mkdir()
    assert main(["volume", str(tmp_path / "series"), "--out", str(tmp_path / "out")]) == 2
    assert "empty folder" in capsys.readouterr().err


def test_volume_command_on_the_shared_series(tmp_path, capsys):
    series = shared_path("volumes", "ct-abdomen-dicom")
    organs = shared_path("volumes", "ct-abdomen-dicom-organs.nii.gz")
    out = tmp_path / "out"
    assert main(["volume", str(series), "--out", str(out), "--labels", str(organs)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shape"] == [20, 512, 512] and summary["spacing_mm"] == [2.0, 0.9766, 0.9766]
    assert summary["hu_range"] == [-1024.0, 1839.0] and summary["removed_phi"] > 0
    rows = {r["label"]: r for r in summary["labels"]["per_label"]}
    liver = rows[5]
    assert liver["name"] == "liver" and liver["volume_ml"] == pytest.approx(liver["voxels"] * 0.9765625**2 * 2 / 1000, abs=1e-3)
    assert liver["mesh"]["faces"] <= 100_000
    mesh = trimesh.load(out / liver["mesh"]["files"][0], force="mesh")
    assert len(mesh.faces) == liver["mesh"]["faces"]
    assert mesh.is_watertight or liver["mesh"]["why_not_watertight"]
    assert rows[1]["name"] == "spleen" and rows[32]["name"] == "label 32"
    assert summary["hu_surfaces"][0]["name"] == "bone" and (out / "meshes" / "hu-bone.glb").is_file()
    assert cv2.imread(str(out / "planes" / "coronal.png")).shape == (41, 512, 3)  # 20 x 2 mm at 0.977 mm pixels
