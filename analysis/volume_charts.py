"""Plotly figures of CT/MR surfaces (models.diagnosis.mesh). Pure: meshes in, figure out, no Streamlit."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from models.diagnosis.mesh import SurfaceMesh

AXIS_TITLES = ("x: right → left (mm)", "y: anterior → posterior (mm)", "z: inferior → superior (mm)")


def mesh_figure(meshes: Sequence[SurfaceMesh], opacity: float | dict[str, float] = 1.0, height: int = 600) -> go.Figure:
    """One Mesh3d trace per surface (its colour, a legend entry each) at true proportions (aspectmode "data").

    `opacity` is one value for all or {mesh name: value}; a bone or skin surface often wants 0.3.
    """
    fig = go.Figure()
    for mesh in meshes:
        alpha = opacity.get(mesh.name, 1.0) if isinstance(opacity, dict) else float(opacity)
        x, y, z = mesh.vertices.T
        i, j, k = mesh.faces.T
        r, g, b = mesh.colour
        fig.add_trace(go.Mesh3d(
            x=x, y=y, z=z, i=i, j=j, k=k, name=mesh.name, color=f"rgb({r},{g},{b})", opacity=alpha,
            showlegend=True, flatshading=False, hovertemplate=f"{mesh.name}<extra>{mesh.source}</extra>",
            lighting=dict(ambient=0.45, diffuse=0.8, specular=0.15, roughness=0.6),
        ))
    # Looking at the patient from the front (anterior, -y), superior up, like a coronal view.
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=30, b=0), legend=dict(itemsizing="constant"),
        scene=dict(aspectmode="data", xaxis_title=AXIS_TITLES[0], yaxis_title=AXIS_TITLES[1],
                   zaxis_title=AXIS_TITLES[2], camera=dict(eye=dict(x=0.0, y=-2.0, z=0.3), up=dict(x=0, y=0, z=1))),
    )
    if not meshes:
        fig.add_annotation(text="no surface to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig
