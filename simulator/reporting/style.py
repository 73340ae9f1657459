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


def cdf(ax, latency_ms: np.ndarray, label: str = "", **line) -> int:
    """Draw the empirical CDF of latencies (NaN: requests that never ran, left out) as a step
    curve for a log axis. Every request is drawn: those of 0 ms at ZERO_MS, which the label
    says. Returns how many were drawn."""
    lat = np.asarray(latency_ms, dtype=float)
    lat = lat[np.isfinite(lat)]
    zeros = int(np.count_nonzero(lat <= 0))
    if len(lat):
        lat = np.maximum(lat, ZERO_MS)
        q = np.linspace(0, 1, min(CDF_POINTS, len(lat)))
        note = f"; {zeros:,} at 0 ms, drawn at {ZERO_MS:g}" if zeros else ""
        ax.step(np.quantile(lat, q), q, where="post", label=f"{label} (n={len(lat):,}{note})",
                **line)  # fmt: skip
    return len(lat)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    return paths
