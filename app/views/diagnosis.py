"""Diagnosis page: one still image -> a model's findings with an explanation overlay.

Layout only: reading, de-identification, models and overlays live in models.diagnosis.
"""
from __future__ import annotations

import json

import streamlit as st

from app.state import init_state
from models.diagnosis import diagnose as core
from models.diagnosis.image import ImageReadError, deidentified_bytes, read_image
from models.registry import ModelNotFoundError

UPLOAD_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "dcm", "dicom"]
HEATMAP_CAVEAT = (
    "The heatmap shows where the network's features respond (Grad-CAM for classifiers, EigenCAM for the "
    "instrument detector): red areas raised the score of the shown finding most. It is a hint for review, "
    "not proof of why the model decided, not a lesion outline and not a measure of certainty."
)
MASK_CAVEAT = (
    "The green area is the segmenter's mask (pixels it labels as the class), outlined. It is a model output "
    "for review, not a confirmed lesion boundary."
)


@st.cache_resource(show_spinner="Loading model...")
def get_analyzer(ref: str) -> core.Analyzer:
    return core.load_analyzer(ref)


@st.cache_resource(show_spinner="Loading modality classifier...")
def get_router():
    return core.load_router()


@st.cache_data(max_entries=4, show_spinner="Reading image...")
def get_image(data: bytes, name: str):
    return read_image(data, name=name)


init_state()
st.title("Diagnosis")
st.warning(core.DISCLAIMER, icon=":material/warning:")

upload = st.file_uploader(
    "Image: a surgical still (PNG/JPEG/TIFF) or a medical image (DICOM, X-ray, dermoscopy, endoscopy)",
    type=UPLOAD_TYPES,
    key=f"diagnosis_upload_{st.session_state['diagnosis_upload_key']}",
)
if upload is None:
    st.info("Upload an image to analyse it. Identifying DICOM elements and image metadata are removed on import.")
    st.stop()

try:
    image = get_image(upload.getvalue(), upload.name)
except ImageReadError as exc:
    st.error(str(exc))
    st.stop()

# The kind of image is decided first; only the analyses that fit it are offered.
try:
    decision = core.decide_modality(image, get_router())
except (ModelNotFoundError, ValueError, RuntimeError, OSError) as exc:
    decision = core.ModalityDecision(None, None, f"modality classifier failed: {exc}")
kinds = list(core.MODALITY_LABELS)
controls = st.columns([2, 3, 1, 1])
kind = controls[0].selectbox(
    "Kind of image", kinds, index=kinds.index(decision.modality) if decision.confident else None,
    format_func=core.MODALITY_LABELS.get, placeholder="Choose the kind of image",
    key=f"diagnosis_kind_{st.session_state['diagnosis_upload_key']}_{upload.name}",
)
if decision.confident and kind and kind != decision.modality:
    st.warning(f"You chose {core.MODALITY_LABELS[kind]}, but this image reads as {decision.label} ({decision.source}). The "
               f"{core.MODALITY_LABELS[kind]} model was trained only on such images: its output on another kind of "
               "image means nothing.")
elif decision.confident:
    st.caption(decision.text() + ". Change the kind above if it is wrong.")
else:
    guess = f" (best guess: {decision.label}, score {decision.confidence:.2f})" if decision.confidence is not None else ""
    st.warning(f"SurgLens is not sure what kind of image this is{guess}. Choose the kind of image above to continue.")
presets = image.window_presets()
window_name = controls[2].selectbox("Window", list(presets), key="diagnosis_window") if len(presets) > 1 else "default"
frame = controls[3].slider("Frame", 0, image.n_frames - 1, 0) if image.n_frames > 1 else 0
choices = core.modality_choices(kind) if kind else {}
choice = controls[1].selectbox("Analysis", list(choices), key="diagnosis_analysis") if choices else None
if choice is None:
    if kind:
        st.info(core.no_model_text(kind))
    st.image(image.to_rgb(frame, presets[window_name]), caption="image (as displayed)", width="stretch")
    analyzer = result = None
else:
    try:
        analyzer = get_analyzer(choices[choice])
        result = core.diagnose(image, analyzer, frame=frame, window=presets[window_name])
    except (ModelNotFoundError, ValueError, RuntimeError, OSError) as exc:
        st.error(f"{choice}: {exc}")
        st.stop()

if result is not None:
    st.subheader(result.result.headline())
    st.caption(result.result.note)
    caution = getattr(analyzer, "metadata", {}).get("caution") if not isinstance(analyzer, core.StillAnalyzer) else None
    if caution:
        st.warning(caution, icon=":material/report:")
    views = st.columns(1 + len(result.overlays))
    views[0].image(result.rgb, caption="image (as displayed)", width="stretch")
    for column, (name, overlay) in zip(views[1:], result.overlays.items()):
        column.image(overlay, caption=name, width="stretch")
    if "explanation" in result.overlays:
        st.caption(HEATMAP_CAVEAT)
    if any(name.startswith("mask: ") for name in result.overlays):
        st.caption(MASK_CAVEAT)

    for title, rows in result.result.tables().items():
        st.markdown(f"**{title}**")
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch")
        else:
            st.caption("Nothing to show.")

summary = core.image_summary(image, frame, presets[window_name])
with st.expander(f"De-identification: {len(image.removed_phi)} item(s) removed on import", expanded=bool(image.removed_phi)):
    if image.removed_phi:
        st.dataframe([{"removed": r} for r in image.removed_phi], hide_index=True, width="stretch")
    else:
        st.caption("The file carried no identifying metadata.")
    data, suffix = deidentified_bytes(image)
    st.download_button("Download de-identified copy", data, file_name=f"deidentified{suffix}")
for note in image.notes:
    st.info(note)
with st.expander("Image details"):
    st.json({k: v for k, v in summary.items() if k not in ("removed_phi", "notes")})
if result is None:
    st.stop()
card = core.model_card(analyzer)
if card:
    with st.expander("About this model (model card)"):
        st.markdown(card)
st.download_button("Download result (JSON)", json.dumps({**result.to_dict(), "kind_of_image": kind}, indent=2),
                   file_name="diagnosis.json", mime="application/json")
