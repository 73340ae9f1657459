"""One look for every figure: sizes, palette, grid; saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip
RC = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
      "font.size": 9, "legend.fontsize": 8, "axes.titlesize": 10}  # fmt: skip


def figure(width: float = 7.5, height: float = 4.2) -> tuple[Figure, object]:
    import matplotlib as mpl

    with mpl.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


#: Quantiles drawn per CDF curve: enough for the eye, cheap for millions of rows.
CDF_POINTS = 2000


def cdf(ax, latency_ms: np.ndarray, **line) -> int:
    """Draw the empirical CDF of positive latencies as a step curve on a log axis; returns
    how many values it drew (0: nothing drawn)."""
    lat = latency_ms[latency_ms > 0]
    if len(lat):
        q = np.linspace(0, 1, min(CDF_POINTS, len(lat)))
        ax.step(np.quantile(lat, q), q, where="post", **line)
    return len(lat)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    return paths
