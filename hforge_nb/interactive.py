"""Interactive (plotly) versions of the DFT-vs-ML figures, for exploring in the notebooks.

The publication files come from :mod:`.plotting` (matplotlib); these take
the same data and return ``plotly.graph_objects.Figure``.
"""

from __future__ import annotations

import numpy as np

from .bands import KPath
from .plotting import _symmetric_limit


def matrix_comparison(reference: np.ndarray, predicted: np.ndarray, quantity: str, unit: str):
    """DFT, ML and ML - DFT heatmaps of ``[n_orb, n_orb]`` matrices; hover shows the values."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=(f"{quantity} DFT", f"{quantity} ML", f"{quantity} ML − DFT"))
    limit, difference = _symmetric_limit(reference), predicted - reference
    for column, (matrix, scale, bar_x) in enumerate(
            ((reference, limit, None), (predicted, limit, 0.63), (difference, _symmetric_limit(difference), 1.0)), 1):
        fig.add_trace(go.Heatmap(z=matrix, zmin=-scale, zmax=scale, colorscale="RdBu_r", showscale=bar_x is not None,
                                 colorbar=dict(x=bar_x, len=0.8, title=unit) if bar_x else None), row=1, col=column)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{column}", row=1, col=column)
    fig.update_layout(height=420, width=1150)
    return fig


def band_comparison(path: KPath, reference: np.ndarray, predicted: np.ndarray, title: str, window: tuple[float, float]):
    """DFT (solid) and ML (dashed) bands ``[n_k, n_bands]`` (eV) along ``path``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for bands, name, style in ((reference, "DFT", dict(color="black")), (predicted, "ML", dict(color="red", dash="dash"))):
        for n in range(bands.shape[1]):
            fig.add_trace(go.Scatter(x=path.distance, y=bands[:, n], mode="lines", line=style, name=name,
                                     legendgroup=name, showlegend=n == 0))
    fig.update_layout(title=title, yaxis=dict(range=list(window), title="E − E_F (eV)"), height=420, width=520,
                      xaxis=dict(tickvals=list(path.label_positions), ticktext=list(path.labels)))
    return fig


def dos_comparison(grid: np.ndarray, reference: np.ndarray, predicted: np.ndarray, title: str = ""):
    """DFT and ML DOS (states/eV) on ``grid`` (eV)."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=grid, y=reference, name="DFT", fill="tozeroy", line=dict(color="gray")),
                     go.Scatter(x=grid, y=predicted, name="ML", line=dict(color="red", dash="dash"))])
    fig.update_layout(title=title, xaxis_title="E − E_F (eV)", yaxis_title="DOS (states/eV)", height=360, width=560)
    return fig
