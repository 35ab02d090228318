"""3D surfaces of a Volume: marching cubes (scikit-image) of a HU range or an organ label, smoothed and decimated.

Vertices are patient coordinates in mm on DICOM's LPS axes (x to the patient's left, y to posterior,
z to superior), so surfaces of one volume line up with each other and with the scanner's frame.
Each mask is padded by one empty voxel before marching cubes, so a structure cut by the edge of the
scan still gets a closed (watertight) surface. Smoothing is Taubin's (it keeps volume, unlike plain
Laplacian smoothing); decimation is quadric (fast-simplification through trimesh). GLB files are
written Y-up (glTF's convention: superior up, anterior toward the viewer); STL and PLY keep LPS (Z-up).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.diagnosis.volume import LabelMap, Volume, label_colour, label_name

# Iso-surface HU ranges (inclusive). "soft tissue" spans fat-free soft tissue and organs; "bone" starts above
# contrast-enhanced blood (~150-300 HU in portal-venous CT), so dense contrast can still show up in it.
HU_RANGES: dict[str, tuple[float, float]] = {"bone": (300.0, 3000.0), "soft tissue": (-100.0, 300.0)}
HU_COLOURS = {"bone": (235, 225, 200), "soft tissue": (220, 150, 130)}
DEFAULT_MAX_FACES = 100_000
MAX_MARCHING_VOXELS = 40_000_000  # larger masks are subsampled before marching cubes (memory, time)
EXPORT_FORMATS = ("glb", "stl", "ply")
# LPS (Z-up) -> glTF (Y-up, +Z toward a viewer in front of the patient): (x, y, z) -> (x, z, -y).
_GLTF_FROM_LPS = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float)


@dataclass
class SurfaceMesh:
    """A triangle surface in LPS mm with what it was made from and whether it is closed."""

    name: str
    vertices: np.ndarray  # (n, 3) float32
    faces: np.ndarray  # (m, 3) int32
    colour: tuple[int, int, int]
    source: str  # "label 5" or "HU 300..3000"
    voxels: int  # voxels in the mask
    voxel_volume_ml: float  # voxels x voxel volume
    faces_before_decimation: int
    watertight: bool
    why_not_watertight: str | None = None
    subsampled: int = 1  # marching cubes ran on every n-th voxel

    @property
    def n_faces(self) -> int:
        return int(len(self.faces))

    def to_trimesh(self):
        import trimesh

        mesh = trimesh.Trimesh(self.vertices, self.faces, process=False)
        mesh.visual.face_colors = np.array([*self.colour, 255], dtype=np.uint8)
        return mesh

    def mesh_volume_ml(self) -> float | None:
        """The enclosed volume in mL (closed surfaces only)."""
        return float(abs(self.to_trimesh().volume)) / 1000.0 if self.watertight else None

    def export(self, path: str | Path) -> Path:
        """Write STL, PLY or GLB (by suffix; GLB is Y-up, see the module docstring)."""
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"mesh format must be one of {EXPORT_FORMATS}, got {path.suffix!r} ({str(path)!r})")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(self.to_bytes(fmt))
        tmp.replace(path)
        return path

    def to_bytes(self, fmt: str) -> bytes:
        """The mesh as STL, PLY or GLB bytes."""
        fmt = fmt.lower().lstrip(".")
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"mesh format must be one of {EXPORT_FORMATS}, got {fmt!r}")
        mesh = self.to_trimesh()
        if fmt == "glb":
            mesh.apply_transform(_GLTF_FROM_LPS)
        return mesh.export(file_type=fmt)

    def to_dict(self) -> dict:
        volume = self.mesh_volume_ml()
        return {
            "name": self.name, "source": self.source, "vertices": int(len(self.vertices)), "faces": self.n_faces,
            "faces_before_decimation": self.faces_before_decimation, "watertight": self.watertight,
            "why_not_watertight": self.why_not_watertight, "voxels": self.voxels,
            "voxel_volume_ml": round(self.voxel_volume_ml, 3),
            "mesh_volume_ml": None if volume is None else round(volume, 3), "subsampled": self.subsampled,
        }


class SurfaceBuilder:
    """mask -> SurfaceMesh: marching cubes at the real spacing, Taubin smoothing, quadric decimation."""

    def __init__(self, max_faces: int = DEFAULT_MAX_FACES, smooth_iterations: int = 10,
                 min_component_ml: float = 0.0, max_marching_voxels: int = MAX_MARCHING_VOXELS):
        if max_faces < 100:
            raise ValueError(f"max_faces must be at least 100, got {max_faces!r}")
        if smooth_iterations < 0:
            raise ValueError(f"smooth_iterations must be >= 0, got {smooth_iterations!r}")
        self.max_faces = int(max_faces)
        self.smooth_iterations = int(smooth_iterations)
        self.min_component_ml = float(min_component_ml)
        self.max_marching_voxels = int(max_marching_voxels)

    def __call__(self, volume: Volume, mask: np.ndarray, name: str, colour: tuple[int, int, int],
                 source: str) -> SurfaceMesh | None:
        """The surface of `mask` (bool, the volume's shape), or None when the mask is empty."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != volume.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the volume's {volume.shape}")
        if self.min_component_ml > 0:
            mask = _drop_small_components(mask, self.min_component_ml * 1000.0 / volume.voxel_volume_mm3)
        voxels = int(mask.sum())
        if voxels == 0:
            return None
        # Crop to the mask (one voxel of margin, so the padded surface closes), subsample huge masks.
        idx = np.argwhere(mask)
        lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
        crop = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        step = max(1, int(np.ceil((crop.size / self.max_marching_voxels) ** (1 / 3))))
        # Heavy quadric decimation can leave edges shared by more than two faces; then marching cubes is rerun
        # on a coarser grid (every 2nd, 3rd voxel), which needs less decimation, keeping the first closed result.
        for attempt in range(3):
            step += 1 if attempt else 0
            mesh, before = self._surface(volume, crop, lo, step)
            watertight, why = _closed(mesh)
            if watertight or before <= self.max_faces:  # closed, or open without decimation: coarser won't help
                break
        return SurfaceMesh(
            name=name, vertices=np.asarray(mesh.vertices, np.float32), faces=np.asarray(mesh.faces, np.int32),
            colour=tuple(int(c) for c in colour), source=source, voxels=voxels,
            voxel_volume_ml=voxels * volume.voxel_volume_mm3 / 1000.0, faces_before_decimation=before,
            watertight=watertight, why_not_watertight=why, subsampled=step,
        )

    def _surface(self, volume: Volume, crop: np.ndarray, lo: np.ndarray, step: int):
        """Marching cubes of a cropped mask on every `step`-th voxel, smoothed and decimated; (mesh, faces before)."""
        import trimesh
        from skimage.measure import marching_cubes

        padded = np.pad(crop[::step, ::step, ::step], 1).astype(np.float32)
        spacing = tuple(s * step for s in volume.spacing_mm)
        # Lorensen's table, not Lewiner's: on binary CT masks skimage's Lewiner output has edges shared by
        # more than two faces (thin bone, touching organs), Lorensen's was closed on all shared-data masks.
        verts, faces, _normals, _values = marching_cubes(padded, level=0.5, spacing=spacing, method="lorensen",
                                                         allow_degenerate=False)
        # (z, y, x) mm in the padded crop -> voxel indices (x, y, z) of the volume -> LPS mm.
        zyx_index = verts / np.array(volume.spacing_mm) - step + lo
        ras = np.c_[zyx_index[:, ::-1], np.ones(len(verts))] @ volume.affine.T
        lps = ras[:, :3] * np.array([-1.0, -1.0, 1.0])
        mesh = trimesh.Trimesh(lps, faces, process=True)
        # The LPS frame is right-handed, but marching cubes on (z, y, x) arrays winds faces for a mirrored one.
        if mesh.volume < 0:
            mesh.invert()
        before = int(len(mesh.faces))
        if self.smooth_iterations:
            trimesh.smoothing.filter_taubin(mesh, iterations=self.smooth_iterations)
        if len(mesh.faces) > self.max_faces:
            mesh = _decimate(mesh, self.max_faces)
        return mesh, before


def hu_surface(volume: Volume, hu_range: str | tuple[float, float], builder: SurfaceBuilder | None = None,
               name: str | None = None) -> SurfaceMesh | None:
    """The iso-surface of the voxels within a HU range (a HU_RANGES name or (low, high), inclusive)."""
    if isinstance(hu_range, str):
        if hu_range not in HU_RANGES:
            raise ValueError(f"HU range must be one of {sorted(HU_RANGES)} or (low, high), got {hu_range!r}")
        label, (low, high) = hu_range, HU_RANGES[hu_range]
    else:
        low, high = (float(v) for v in hu_range)
        label = f"HU {low:g}..{high:g}"
    if not low < high:
        raise ValueError(f"HU range needs low < high, got ({low!r}, {high!r})")
    colour = HU_COLOURS.get(label, (200, 200, 200))
    # Specks under 0.1 mL in a HU surface are noise and calcifications, not anatomy worth a mesh.
    builder = builder or SurfaceBuilder(min_component_ml=0.1)
    mask = (volume.voxels >= low) & (volume.voxels <= high)
    return builder(volume, mask, name or label, colour, f"HU {low:g}..{high:g}")


def label_surfaces(volume: Volume, labels: LabelMap, builder: SurfaceBuilder | None = None,
                   only: list[int] | None = None) -> list[SurfaceMesh]:
    """One surface per label present (or per label in `only`), in label order."""
    builder = builder or SurfaceBuilder()
    present = [int(v) for v in np.unique(labels.labels) if v != 0]
    wanted = present if only is None else [v for v in present if v in set(only)]
    out = []
    for value in wanted:
        mesh = builder(volume, labels.labels == value, label_name(value, labels.names),
                       label_colour(value, labels.names), f"label {value}")
        if mesh is not None:
            out.append(mesh)
    return out


def _drop_small_components(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    from scipy import ndimage

    components, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(components.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[components]


def _decimate(mesh, max_faces: int):
    """Quadric decimation to at most `max_faces`; without fast-simplification, vertex clustering."""
    try:
        out = mesh.simplify_quadric_decimation(face_count=max_faces)
    except ImportError:  # fast-simplification missing: merge vertices on a grid coarse enough to fit
        out = mesh.copy()
        pitch = float(np.sqrt(mesh.area / max_faces)) * 1.5
        while len(out.faces) > max_faces:
            out = mesh.copy()
            out.vertices = np.round(out.vertices / pitch) * pitch
            out.merge_vertices()
            out.update_faces(out.nondegenerate_faces())
            out.update_faces(out.unique_faces())
            pitch *= 1.3
    out.merge_vertices()
    out.update_faces(out.nondegenerate_faces())
    out.remove_unreferenced_vertices()
    return out


def _closed(mesh) -> tuple[bool, str | None]:
    """Whether the surface is watertight, and why not when it is not."""
    if mesh.is_watertight:
        return True, None
    import trimesh

    edges = mesh.edges_sorted
    groups = trimesh.grouping.group_rows(edges, require_count=None)
    counts = np.array([len(g) for g in groups])
    open_edges, shared = int((counts == 1).sum()), int((counts > 2).sum())
    parts = []
    if open_edges:
        parts.append(f"{open_edges} open edge(s) (holes)")
    if shared:
        parts.append(f"{shared} edge(s) shared by more than two faces")
    if not mesh.is_winding_consistent:
        parts.append("inconsistent face winding")
    return False, "; ".join(parts) or "not a closed manifold"
