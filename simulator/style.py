"""One look for every figure: sizes, palette, grid; saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

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


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    return paths
