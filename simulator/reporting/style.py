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
    fig, axes = figures(1, 1, width, height)
    return fig, axes[0]


def figures(rows: int, cols: int, width: float = 7.5, height: float = 4.2):
    """A figure of rows x cols panels, sharing the look: (figure, flat list of axes)."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.grid(True, alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def show_in_jupyter() -> None:
    """Let IPython display the figures coldsim returns. They are made without pyplot (no
    global state, no GUI), so unless `%matplotlib inline` is on, Jupyter would print their
    repr instead of the image; a PNG formatter for Figure fixes that."""
    import sys

    if "IPython" not in sys.modules:  # not in IPython: nothing to do, nothing imported
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
    except KeyError:  # nobody displays figures yet
        png.for_type(Figure, _png)


def _png(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


#: Quantiles drawn per CDF curve: enough for the eye, cheap for millions of rows.
CDF_POINTS = 2000


#: Where a log-scale CDF draws latencies of 0 ms (a log axis has no 0).
ZERO_MS = 0.01


def cdf(ax, latency_ms: np.ndarray, label: str = "", weights=None, **line) -> int:
    """Draw the empirical CDF of latencies (NaN: requests that never ran, left out) as a step
    curve for a log axis; `weights`: how many requests each value stands for (a sketch's
    bins), else one each. Every request is drawn: those of 0 ms at ZERO_MS, which the label
    says. Returns how many were drawn."""
    lat = np.asarray(latency_ms, dtype=float)
    w = np.ones(len(lat)) if weights is None else np.asarray(weights, dtype=float)
    finite = np.isfinite(lat)
    lat, w = lat[finite], w[finite]
    n = int(round(w.sum()))
    zeros = int(round(w[lat <= 0].sum()))
    if n:
        lat = np.maximum(lat, ZERO_MS)
        q = np.linspace(0, 1, min(CDF_POINTS, n))
        if weights is None:
            x = np.quantile(lat, q)
        else:  # the value at each rank q (n - 1), as the sketch's percentiles are read
            order = np.argsort(lat, kind="stable")
            cum = np.cumsum(w[order])
            x = lat[order][np.minimum(np.searchsorted(cum, q * (n - 1), side="right"),
                                      len(cum) - 1)]  # fmt: skip
        note = f"; {zeros:,} at 0 ms, drawn at {ZERO_MS:g}" if zeros else ""
        ax.step(x, q, where="post", label=f"{label} (n={n:,}{note})", **line)
    return n


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    return paths
