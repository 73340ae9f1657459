"""Figures for one run (matplotlib). Each function returns a Figure; axes carry units.

Figures are made without pyplot, so building many of them (sweeps, notebooks) leaks no global
state; Jupyter still displays a returned Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import style
from .report import occupancy

COLD, WARM, IDLE = style.PALETTE[1], style.PALETTE[0], "#aec7e8"


def latency_cdf(invocations: pd.DataFrame, title: str = "") -> Figure:
    """Empirical CDF of latency for cold and warm starts (counted invocations), log x axis."""
    fig, ax = style.figure(7, 4.2)
    counted = invocations[invocations["counted"]]
    for label, mask, color in (("warm", ~counted["cold"], WARM), ("cold", counted["cold"], COLD)):
        lat = counted.loc[mask, "latency_ms"].to_numpy()
        style.cdf(ax, lat, color=color, label=f"{label} (n={np.count_nonzero(lat > 0):,})")
    if not ax.lines:
        ax.text(0.5, 0.5, "no counted requests", ha="center", va="center", transform=ax.transAxes)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests ≤ latency")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower right")
    ax.set_title(title or "Latency CDF: cold vs warm starts")
    return fig


def instances_over_time(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    duration_s: float,
    warmup_s: float = 0.0,
    bins: int = 400,
    title: str = "",
) -> Figure:
    """Time-average busy (init + execution) and idle instances per bin, stacked."""
    edges = np.linspace(0.0, duration_s, bins + 1)
    busy, alive = occupancy(invocations, instances, edges)
    alive = np.maximum(alive, busy)
    scale, unit = _time_unit(duration_s)
    x = edges / scale
    fig, ax = style.figure(8, 4.2)
    ax.stairs(busy, x, fill=True, color=WARM, label="busy (init + execution)")
    ax.stairs(alive, x, baseline=busy, fill=True, color=IDLE, label="idle (warm)")
    _shade_warmup(ax, warmup_s / scale)
    ax.set_xlim(0, duration_s / scale)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("instances (time average per bin)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    ax.set_title(title or "Instances over time")
    return fig


#: Bin widths for counts over time, and how they are named: the smallest that keeps a plot
#: under MAX_BINS bars is used, so work and memory follow the figure, not the span.
BIN_WIDTHS = (
    (1.0, "second"), (10.0, "10 s"), (60.0, "minute"), (300.0, "5 min"), (900.0, "15 min"),
    (3600.0, "hour"), (6 * 3600.0, "6 h"), (86400.0, "day"), (7 * 86400.0, "week"),
    (30 * 86400.0, "30 days"), (365 * 86400.0, "365 days"),
)  # fmt: skip
MAX_BINS = 240


def time_bins(span_s: float) -> tuple[float, str]:
    """(width in s, name) of the bins for counts over a span: at most MAX_BINS of them."""
    for width, name in BIN_WIDTHS:
        if span_s / width <= MAX_BINS:
            return width, name
    width = float(np.ceil(span_s / MAX_BINS / BIN_WIDTHS[-1][0])) * BIN_WIDTHS[-1][0]
    return width, f"{width / 86400:,.0f} days"


def counts_over_time(times_s: np.ndarray, span_s: float) -> tuple[np.ndarray, float, str]:
    """Counts of `times_s` in bins over [0, span_s): (counts, bin width s, bin name)."""
    width, name = time_bins(span_s)
    bins = max(1, int(np.ceil(span_s / width)))
    t = np.asarray(times_s, dtype=float)
    t = t[(t >= 0) & (t < bins * width)]
    counts = np.bincount((t // width).astype(np.int64), minlength=bins)[:bins]
    return counts, width, name


def cold_starts_over_time(
    invocations: pd.DataFrame, duration_s: float, warmup_s: float = 0.0, title: str = ""
) -> Figure:
    """Cold starts per bin of simulated time, bins sized to the figure (at most MAX_BINS)."""
    t = invocations.loc[invocations["cold"], "arrival_s"].to_numpy()
    counts, width, per = counts_over_time(t, duration_s)
    scale, unit = _time_unit(duration_s)
    fig, ax = style.figure(8, 3.6)
    ax.stairs(counts, np.arange(len(counts) + 1) * width / scale, fill=True, color=COLD, alpha=0.8)
    _shade_warmup(ax, warmup_s / scale)
    ax.set_xlim(0, duration_s / scale)
    ax.set_ylim(0, max(1, counts.max(initial=0)) * 1.08)  # the tallest bar stays in view
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel(f"cold starts per {per}")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"Cold starts per {per} (total {len(t):,})")
    return fig


def _time_unit(duration_s: float) -> tuple[float, str]:
    if duration_s >= 2 * 86400:
        return 86400.0, "days"
    if duration_s >= 3 * 3600:
        return 3600.0, "hours"
    if duration_s >= 180:
        return 60.0, "minutes"
    return 1.0, "s"


def _shade_warmup(ax, warmup: float) -> None:
    if warmup > 0:
        ax.axvspan(0, warmup, color="0.85", alpha=0.6, lw=0, label="warm-up (not counted)")


def per_bin(times_s: np.ndarray, span_s: float, title: str = "") -> Figure:
    """Invocations per bin of a trace's time, bins sized to the figure."""
    counts, width, per = counts_over_time(times_s, span_s)
    scale, unit = _time_unit(max(span_s, width))
    fig, ax = style.figure(8, 3.6)
    ax.stairs(counts, np.arange(len(counts) + 1) * width / scale, fill=True, color=WARM)
    ax.set_xlim(0, len(counts) * width / scale)
    ax.set_ylim(0, max(1, counts.max(initial=0)) * 1.08)
    ax.set_xlabel(f"trace time ({unit})")
    ax.set_ylabel(f"invocations per {per}")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"Invocations per {per}")
    return fig
