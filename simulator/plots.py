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


def cold_starts_per_minute(
    invocations: pd.DataFrame, duration_s: float, warmup_s: float = 0.0, title: str = ""
) -> Figure:
    """Cold starts in each minute of simulated time (each hour, for runs over two days)."""
    bin_s, per = (60.0, "minute") if duration_s <= 2 * 86400 else (3600.0, "hour")
    bins = max(1, int(np.ceil(duration_s / bin_s)))
    t = invocations.loc[invocations["cold"], "arrival_s"].to_numpy()
    counts = np.bincount((t // bin_s).astype(np.int64), minlength=bins)[:bins]
    scale, unit = _time_unit(duration_s)
    fig, ax = style.figure(8, 3.6)
    ax.stairs(counts, np.arange(bins + 1) * bin_s / scale, fill=True, color=COLD, alpha=0.8)
    _shade_warmup(ax, warmup_s / scale)
    ax.set_xlim(0, duration_s / scale)
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


def per_minute(counts: np.ndarray, title: str = "") -> Figure:
    """Invocations in each minute of a trace."""
    counts = np.asarray(counts)
    duration_s = 60.0 * max(1, len(counts))
    scale, unit = _time_unit(duration_s)
    fig, ax = style.figure(8, 3.6)
    ax.stairs(counts, np.arange(len(counts) + 1) * 60.0 / scale, fill=True, color=WARM)
    ax.set_xlim(0, duration_s / scale)
    ax.set_xlabel(f"trace time ({unit})")
    ax.set_ylabel("invocations per minute")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Invocations per minute")
    return fig
