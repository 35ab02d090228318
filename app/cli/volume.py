"""`surglens volume`: a CT/MR series -> surface meshes, PNGs of the three central planes and summary.json."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the volume subcommand to the parser."""
    p = sub.add_parser("volume", help="CT/MR series (DICOM folder/zip or NIfTI) -> meshes, plane PNGs, summary.json")
    p.add_argument("series", type=Path, help="DICOM series folder, zip of one, or .nii/.nii.gz")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--labels", type=Path, default=None, help="organ label map (NIfTI) on the same grid")
    p.add_argument("--hu-range", action="append", default=None, metavar="NAME|LOW:HIGH",
                   help="HU iso-surface to mesh: bone, 'soft tissue' or LOW:HIGH; repeat for more (default: bone; CT only)")
    p.add_argument("--formats", nargs="+", default=["glb"], choices=["glb", "stl", "ply"], help="mesh files to write")
    p.add_argument("--max-faces", type=int, default=100_000, help="decimate each mesh to at most this many faces")
    p.add_argument("--smooth", type=int, default=10, help="Taubin smoothing iterations (0: none)")
    p.add_argument("--window", default=None, help="window of the plane PNGs (default: soft tissue for CT)")
    p.set_defaults(func=_volume)


def _hu_range(text: str):
    from models.diagnosis.mesh import HU_RANGES

    if text in HU_RANGES:
        return text
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*:\s*(-?\d+(?:\.\d+)?)\s*", text)
    if not match:
        raise ValueError(f"--hu-range must be one of {sorted(HU_RANGES)} or LOW:HIGH, got {text!r}")
    return float(match.group(1)), float(match.group(2))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "mesh"


def _volume(args: argparse.Namespace) -> int:
    import cv2

    from models.diagnosis.mesh import SurfaceBuilder, hu_surface, label_surfaces
    from models.diagnosis.volume import PLANES, plane_rgb, read_labels, read_volume

    volume = read_volume(args.series)
    labels = read_labels(args.labels, volume) if args.labels else None
    presets = volume.window_presets()
    window_name = args.window or ("soft tissue" if "soft tissue" in presets else "default")
    if window_name not in presets:
        raise ValueError(f"window {window_name!r} not available for this volume; choose from {list(presets)}")
    hu_ranges = [_hu_range(t) for t in (args.hu_range or (["bone"] if volume.is_ct else []))]
    out: Path = args.out
    (out / "planes").mkdir(parents=True, exist_ok=True)
    (out / "meshes").mkdir(parents=True, exist_ok=True)

    planes = {}
    for plane, index in volume.centre().items():
        rgb = plane_rgb(volume, plane, index, presets[window_name], labels.labels if labels else None,
                        names=labels.names if labels else None)
        path = out / "planes" / f"{plane}.png"
        if not cv2.imwrite(str(path), rgb[..., ::-1]):
            raise OSError(f"could not write {str(path)!r}")
        planes[plane] = {"file": str(path.relative_to(out)), "index": index, "of": volume.n_slices(plane)}
    assert set(planes) == set(PLANES)

    builder = SurfaceBuilder(max_faces=args.max_faces, smooth_iterations=args.smooth)
    hu_builder = SurfaceBuilder(max_faces=args.max_faces, smooth_iterations=args.smooth, min_component_ml=0.1)

    def write(mesh, stem: str) -> dict:
        files = [str(mesh.export(out / "meshes" / f"{stem}.{fmt}").relative_to(out)) for fmt in args.formats]
        print(f"{stem}: {mesh.n_faces} faces, watertight={mesh.watertight}", file=sys.stderr)
        return {**mesh.to_dict(), "files": files}

    hu_meshes = []
    for hu in hu_ranges:
        if not volume.is_ct:
            raise ValueError(f"--hu-range needs a CT (Hounsfield units); {volume.name!r} has modality {volume.modality!r}")
        mesh = hu_surface(volume, hu, hu_builder)
        name = hu if isinstance(hu, str) else f"HU {hu[0]:g}..{hu[1]:g}"
        hu_meshes.append(write(mesh, f"hu-{_slug(name)}") if mesh else {"name": name, "faces": 0, "note": "no voxels in range"})

    summary = {**volume.summary(), "voxel_volume_mm3": round(volume.voxel_volume_mm3, 6), "window": window_name,
               "planes": planes, "hu_surfaces": hu_meshes,
               "mesh_coordinates": "patient LPS mm (x to left, y to posterior, z to superior); GLB rotated to Y-up"}
    if labels is not None:
        meshes = {m.source: m for m in label_surfaces(volume, labels, builder)}
        rows = []
        for stat in labels.stats(volume.spacing_mm):
            mesh = meshes.get(f"label {stat.label}")
            row = stat.to_dict()
            if mesh is not None:
                row["mesh"] = write(mesh, f"label-{stat.label:03d}-{_slug(stat.name)}")
            rows.append(row)
        summary["labels"] = {"file": str(args.labels), "notes": labels.notes, "per_label": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("shape", "spacing_mm", "hu_range" if volume.is_ct else "value_range")}
                     | {"out": str(out)}, indent=2))
    return 0
