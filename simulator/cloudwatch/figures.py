"""The fit report's figure: what the logs show, at a glance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..reporting import style
from ..reporting.plots import counts_over_time
from .fit import Fit, requests


def fit_figure(fit: Fit, parsed) -> Figure:
    """Init and handler times, requests over time, environment ages, and the idle gaps that
    bound the keep-alive (reused after the gap: it lived longer; ended: it was gone)."""
    inv = requests(parsed)
    fig, axes = style.figures(2, 2, 11, 7.4)
    ax = axes[0]
    cold = inv["init_ms"].dropna().to_numpy()
    low = max(0.1, float(inv["duration_ms"].min()))
    high = max(1.0, float(inv["duration_ms"].max()), float(cold.max(initial=1.0)))
    bins = np.logspace(np.log10(low), np.log10(high * 1.01), 60)
    ax.hist(inv["duration_ms"], bins=bins, color=style.PALETTE[0], alpha=0.7, label="handler")
    if len(cold):
        ax.hist(cold, bins=bins, color=style.PALETTE[1], alpha=0.7, label="init (cold starts)")
    ax.set_xscale("log")
    ax.set_yscale("log")  # cold starts are few next to requests
    ax.set_xlabel("time (ms, log scale)")
    ax.set_ylabel("invocations (log scale)")
    ax.set_title(f"Handler and init times ({len(inv):,} invocations, {len(cold):,} cold)")
    ax.legend()
    ax = axes[1]
    t = inv["arrival_s"].to_numpy() - fit.t0_epoch_s
    span = max(1.0, float(t.max()))
    counts, width, per = counts_over_time(t, span)
    ax.stairs(counts, np.arange(len(counts) + 1) * width / 3600.0, fill=True,
              color=style.PALETTE[0])  # fmt: skip
    colds, _, _ = counts_over_time(t[inv["cold"].to_numpy()], span)
    cold_ax = ax.twinx()  # far fewer than invocations: their own scale
    cold_ax.stairs(colds, np.arange(len(colds) + 1) * width / 3600.0, color=style.PALETTE[1],
                   lw=1.5, label="cold starts (right axis)")  # fmt: skip
    cold_ax.set_ylabel(f"cold starts per {per}")
    cold_ax.set_ylim(0, max(1, colds.max(initial=0)) * 1.1)
    ax.set_xlabel("time from the first request (hours)")
    ax.set_ylabel(f"invocations per {per}")
    ax.set_title("Invocations and cold starts over time")
    cold_ax.legend(loc="upper left")
    ax = axes[2]
    ages = fit.environments["age_s"].dropna().to_numpy() / 60.0 if len(fit.environments) else []
    ax.hist(ages, bins=40, color=style.PALETTE[2])
    life = fit.report["lifetime"].get("quantiles_s")  # only when estimated
    if life:
        low, high = life[5] / 60.0, max(life[95], life[5] * 1.002) / 60.0
        label = f"recycling estimate (5-95%): {low:.0f}-{high:.0f} min"
        ax.axvspan(low, high, color="0.3", alpha=0.25, label=label)
        ax.legend(fontsize=7)
    ax.set_xlabel("environment age at its last request (min)")
    ax.set_ylabel("environments (log streams)")
    ax.set_title(f"Environment lifetimes ({len(ages):,})")
    ax = axes[3]
    idle = fit.idle
    reused = idle.loc[idle["kind"] == "reused", "lower_s"].to_numpy()
    ended = idle.loc[idle["kind"] == "ended", "upper_s"].to_numpy()
    top = max(1.0, float(np.max(np.concatenate([reused, ended, [1.0]]))))
    bins = np.logspace(-1, np.log10(top * 1.05), 60)
    ax.hist(np.maximum(reused, 0.1), bins=bins, color=style.PALETTE[0], alpha=0.7,
            label="gap, then reused (kept at least this long)")  # fmt: skip
    ax.hist(np.maximum(ended, 0.1), bins=bins, color=style.PALETTE[1], alpha=0.7,
            label="idle until the next cold start (gone by then)")  # fmt: skip
    q = fit.report["keep_alive"].get("quantiles_s")
    if q:
        ax.axvspan(q[5], max(q[95], q[5] * 1.01), color="0.3", alpha=0.25,
                   label=f"keep-alive estimate (5-95%): {q[5]:.0f}-{q[95]:.0f} s")  # fmt: skip
    ax.set_xscale("log")
    if len(reused) or len(ended):  # (no log streams in the logs: no idle periods to count)
        ax.set_yscale("log")
    ax.set_xlabel("idle time (s, log scale)")
    ax.set_ylabel("idle periods")
    ax.set_title("Idle gaps: reused vs ended")
    ax.legend(fontsize=7)
    for a in axes:
        a.grid(True, alpha=0.3)
    return fig
