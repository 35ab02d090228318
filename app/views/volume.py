"""CT/MR series page: axial, coronal and sagittal planes with organ overlays, and 3D surfaces.

Layout only: reading, de-identification, slicing and meshes live in models.diagnosis.volume and .mesh,
the 3D figure in analysis.volume_charts.
"""
from __future__ import annotations

import hashlib
import json

import streamlit as st

from analysis.volume_charts import mesh_figure
from app.state import init_state
from models.diagnosis import mesh as meshes
from models.diagnosis.volume import (
    PLANES,
    LabelMap,
    SeriesError,
    Volume,
    label_colour,
    pixel_size_mm,
    plane_rgb,
    read_labels,
    read_volume,
)

DISCLAIMER = "Research and teaching software: not a medical device and not for clinical use."
FACE_BUDGET = 150_000  # all shown surfaces together; plotly draws this smoothly in a browser
TRANSLUCENT = {"bone": 0.35, "soft tissue": 0.2}


@st.cache_resource(max_entries=2, show_spinner="Reading series...")
def get_volume(digest: str, _data: bytes, name: str) -> Volume:
    return read_volume(_data, name=name)


@st.cache_resource(max_entries=2, show_spinner="Reading segmentation...")
def get_labels(digest: str, volume_digest: str, _data: bytes, name: str, _volume: Volume) -> LabelMap:
    return read_labels(_data, _volume, name=name)


@st.cache_resource(max_entries=16, show_spinner="Building surface...")
def get_surface(volume_digest: str, labels_digest: str | None, choice: str, max_faces: int,
                _volume: Volume, _labels: LabelMap | None) -> meshes.SurfaceMesh | None:
    builder = meshes.SurfaceBuilder(max_faces=max_faces)
    if choice in meshes.HU_RANGES:
        return meshes.hu_surface(_volume, choice, meshes.SurfaceBuilder(max_faces=max_faces, min_component_ml=0.1))
    value = int(choice.rsplit("#", 1)[1])
    found = meshes.label_surfaces(_volume, _labels, builder, only=[value])
    return found[0] if found else None


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def legend_html(rows: list[dict], labels: LabelMap) -> str:
    chips = []
    for row in rows:
        r, g, b = label_colour(row["label"], labels.names)
        chips.append(f'<span style="white-space:nowrap;margin-right:1em"><span style="display:inline-block;width:0.9em;'
                     f'height:0.9em;background:rgb({r},{g},{b});border-radius:2px;vertical-align:middle"></span> '
                     f'{row["name"]}</span>')
    return " ".join(chips)


init_state()
st.title("CT/MR series")
st.warning(DISCLAIMER, icon=":material/warning:")

uploads = st.columns(2)
series = uploads[0].file_uploader("Series: a zip of one DICOM series, or a NIfTI volume (.nii, .nii.gz)",
                                  type=["zip", "nii", "gz"], key="volume_series")
segmentation = uploads[1].file_uploader("Organ segmentation (optional): a NIfTI label map on the same grid",
                                        type=["nii", "gz"], key="volume_labels")
if series is None:
    st.info("Upload a CT or MR series to view its planes and 3D surfaces. Identifying DICOM elements are removed "
            "on import.")
    st.stop()

series_data = series.getvalue()
series_digest = digest(series_data)
try:
    volume = get_volume(series_digest, series_data, series.name)
except SeriesError as exc:
    st.error(str(exc))
    st.stop()

labels = None
labels_digest = None
if segmentation is not None:
    labels_data = segmentation.getvalue()
    labels_digest = digest(labels_data)
    try:
        labels = get_labels(labels_digest, series_digest, labels_data, segmentation.name, volume)
    except SeriesError as exc:
        st.error(str(exc))
    else:
        for note in labels.notes:
            st.warning(note)

nz, ny, nx = volume.shape
dz, dy, dx = volume.spacing_mm
st.caption(f"{volume.name}: {volume.modality or 'unknown modality'}, {nx} x {ny} x {nz} voxels, "
           f"{dx:.3g} x {dy:.3g} x {dz:.3g} mm, values {volume.value_range()[0]:.0f}..{volume.value_range()[1]:.0f}"
           f"{' HU' if volume.is_ct else ''}")

presets = volume.window_presets()
controls = st.columns([2, 1, 1])
default_window = list(presets).index("soft tissue") if "soft tissue" in presets else 0
window_name = controls[0].selectbox("Window", list(presets), index=default_window)
overlay = controls[1].toggle("Organ overlay", value=True, disabled=labels is None)
opacity = controls[2].slider("Overlay opacity", 0.1, 1.0, 0.45, 0.05, disabled=labels is None)

centre = volume.centre()
columns = st.columns(3)
for column, plane in zip(columns, PLANES):
    n = volume.n_slices(plane)
    index = column.slider(f"{plane.capitalize()} slice", 0, n - 1, centre[plane], key=f"volume_{plane}")
    rgb = plane_rgb(volume, plane, index, presets[window_name], labels.labels if labels is not None and overlay else None,
                    opacity=opacity, names=labels.names if labels is not None else None)
    h_mm, w_mm = pixel_size_mm(volume, plane)
    column.image(rgb, caption=f"{plane} {index + 1}/{n} ({w_mm:.3g} x {h_mm:.3g} mm pixels)", width="stretch")
st.caption("Axial: patient right on the image left, anterior at the top. Coronal and sagittal: superior at the top.")

stats = [s.to_dict() for s in labels.stats(volume.spacing_mm)] if labels is not None else []
if labels is not None:
    st.markdown(legend_html(stats, labels), unsafe_allow_html=True)
    with st.expander(f"Organ volumes ({len(stats)} labels)"):
        st.dataframe(stats, hide_index=True, width="stretch")

st.subheader("3D surfaces")
choices = {f"{name} (HU {lo:g}..{hi:g})": name for name, (lo, hi) in meshes.HU_RANGES.items()} if volume.is_ct else {}
choices.update({f"{row['name']} (label {row['label']})": f"label#{row['label']}" for row in stats})
default = [k for k, v in choices.items() if v == "label#5"] or [k for k, v in choices.items() if v == "bone"]
picked = st.multiselect("Surfaces", list(choices), default=default[:1],
                        help="Marching cubes at the real spacing, smoothed and decimated for the browser")
if not picked:
    st.caption("Pick a surface to build it in 3D." if choices else "No surfaces: this volume is not a CT and has no labels.")
else:
    budget = max(FACE_BUDGET // len(picked), 5_000)
    surfaces = []
    for key in picked:
        surface = get_surface(series_digest, labels_digest, choices[key], budget, volume, labels)
        if surface is None:
            st.info(f"{key}: no voxels, no surface")
        else:
            surfaces.append(surface)
    st.plotly_chart(mesh_figure(surfaces, {s.name: TRANSLUCENT.get(s.name, 1.0) for s in surfaces}), key="volume_3d")
    st.dataframe([{k: v for k, v in s.to_dict().items() if k not in ("subsampled",)} for s in surfaces],
                 hide_index=True, width="stretch")
    fmt = st.selectbox("Mesh format", list(meshes.EXPORT_FORMATS), help="GLB is Y-up (glTF); STL and PLY keep LPS, Z-up")
    downloads = st.columns(max(len(surfaces), 1))
    for column, surface in zip(downloads, surfaces):
        column.download_button(f"Download {surface.name} ({fmt.upper()})", surface.to_bytes(fmt),
                               file_name=f"{surface.name.replace(' ', '_')}.{fmt}", key=f"volume_dl_{surface.name}")

with st.expander(f"De-identification: {len(volume.removed_phi)} item(s) removed on import",
                 expanded=bool(volume.removed_phi)):
    if volume.removed_phi:
        st.dataframe([{"removed": r} for r in volume.removed_phi], hide_index=True, width="stretch")
    else:
        st.caption("The file carried no identifying metadata." if volume.source_format == "dicom"
                   else "NIfTI headers carry no patient fields.")
for note in volume.notes:
    st.info(note)
summary = {**volume.summary(), "labels": stats}
st.download_button("Download summary (JSON)", json.dumps(summary, indent=2), file_name="volume.json", mime="application/json")
