"""Models page: the shipped models (metadata, model card) and the evaluations found for them.

Layout only: models come from models.registry, evaluation files from app.resources, charts from analysis.charts.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from analysis.charts import evaluation_figures
from app.resources import Evaluation, evaluations
from app.state import init_state
from models.headline import card_headlines, file_size
from models.registry import MODELS_DIR, ModelEntry, list_models

HEADLINES = {"accuracy": "accuracy", "mAP50": "mAP@0.5", "mAP50_95": "mAP@0.5:0.95", "mAP": "mAP", "n": "images"}

init_state()
st.title("Models")
st.caption(f"Shipped models live in `{MODELS_DIR.relative_to(MODELS_DIR.parents[1])}/<name>/`: one weights file, "
           "metadata.json and MODEL_CARD.md each. Nothing is downloaded at run time.")


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The few top-level numbers of an evaluation or a metadata `metrics` block."""
    flat = {**report, **(report.get("metrics") or {})}
    return {label: flat[key] for key, label in HEADLINES.items() if isinstance(flat.get(key), (int, float))}


def show_evaluation(evaluation: Evaluation, key: str) -> None:
    numbers = headline(evaluation.report)
    if numbers:
        cols = st.columns(len(numbers))
        for col, (label, value) in zip(cols, numbers.items()):
            col.metric(label, f"{value:.3f}" if isinstance(value, float) else value)
    figures = evaluation_figures(evaluation.report)
    for i, fig in enumerate(figures):
        st.plotly_chart(fig, key=f"{key}_{i}", config={"displaylogo": False})
    if not figures:
        st.caption("No curve, matrix or per-class table in this file.")


def show_model(entry: ModelEntry, found: list[Evaluation], index: int) -> None:
    meta = entry.metadata
    with st.container(border=True):
        st.subheader(meta.get("name", entry.name))
        st.caption(" · ".join(str(x) for x in (entry.kind, meta.get("architecture"), f"version {meta.get('version', '?')}") if x))
        cols = st.columns(3)
        cols[0].metric("Input size", f"{meta['input_size']} px" if meta.get("input_size") else "–")
        cols[1].metric("Classes", len(entry.classes))
        cols[2].metric("Weights", file_size(entry.weights.stat().st_size) if entry.weights.exists() else "missing")
        if entry.classes:
            st.markdown("**Classes:** " + ", ".join(entry.classes))
        numbers = card_headlines(meta)
        if numbers:
            st.markdown("**Card numbers** (metadata.json `evaluation`, written by our own evaluation)")
            st.dataframe([h.to_dict() for h in numbers], hide_index=True, key=f"card_{index}",
                         column_config={"evaluated on": st.column_config.TextColumn(width="large")})
        else:
            st.caption("No evaluation recorded in metadata.json.")
        training = meta.get("training") or {}
        if training.get("data"):
            data = training["data"]
            st.markdown(f"**Training data:** {', '.join(map(str, data)) if isinstance(data, list) else data}")
        if meta.get("licence"):
            st.caption(f"Licence: {meta['licence']}")
        with st.expander("metadata.json"):
            st.json(meta, expanded=False)
        if entry.card:
            with st.expander("Model card"):
                st.markdown(entry.card.read_text(encoding="utf-8"))
        for j, evaluation in enumerate(found):
            with st.expander(f"Evaluation: {evaluation.path}"):
                show_evaluation(evaluation, f"eval_{index}_{j}")


try:
    models = list_models()
except (OSError, ValueError) as exc:
    st.error(f"The model folder cannot be read: {exc}")
    st.stop()
found = evaluations(tuple(str(m.weights.parent) for m in models))
names = {m.metadata.get("name", m.name) for m in models} | {m.name for m in models}
if not models:
    st.info(f"No model folder under {MODELS_DIR.name}/.")
for i, entry in enumerate(models):
    own = [e for e in found if e.model in {entry.name, entry.metadata.get("name")}
           or e.folder == str(entry.weights.parent.resolve())]
    show_model(entry, own, i)

folders = {str(m.weights.parent.resolve()) for m in models}
others = [e for e in found if e.model not in names and e.folder not in folders]
if others:
    st.subheader("Other evaluations")
    st.caption("Evaluation files under runs/ for models that are not shipped (experiments, candidates).")
    for j, evaluation in enumerate(others):
        with st.expander(f"{evaluation.model or 'unnamed model'}: {evaluation.path}"):
            show_evaluation(evaluation, f"other_{j}")
