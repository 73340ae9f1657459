"""The fit report's figure: what the logs show, at a glance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..reporting import style
from ..reporting.plots import counts_over_time
from .fit import Fit, requests


def keep_alive_bands(keep: dict) -> list[tuple[float, float, str]]:
    """(low_s, high_s, label) of each band the idle-gap panel shades for the fitted keep-alive,
    from the same figures as fit.json's `summary` and the printed line."""
    policy, iv = keep.get("policy"), keep.get("interval_s")
    if policy is None or iv is None:
        return []
    check = keep.get("consistency", {"consistent": True})
    if policy["policy"] == "load":
        out = []
        for name in ("quiet", "busy"):
            d = policy[f"{name}_idle_s"]
            low, high = (d["low_s"], d["high_s"]) if "low_s" in d else (d["value_s"],) * 2
            out.append((low, high, f"keep-alive when {name}: {_span(low, high)}"))
        return out
    grid = keep.get("sweep_grid")
    values = next(iter(grid.values())) if grid else None
    if values and not check["consistent"]:
        return [(values[0], values[-1], f"one keep-alive does not explain the logs: "
                 f"swept over {_span(values[0], values[-1])}")]  # fmt: skip
    if values:  # not pinned down: the range the scenario sweeps
        return [(values[0], values[-1],
                 f"keep-alive not pinned down: swept over {_span(values[0], values[-1])}")]
    if "not pinned down" in keep.get("summary", ""):  # unbounded above
        low = iv["50" if policy["policy"] == "fixed" else "5"][0]
        return [(low, max(low * 2, 1.0), f"keep-alive not pinned down: {_span(low, None)}")]
    if policy["policy"] == "fixed":
        low, high = iv["50"]
        value = policy["idle_s"]
        return [(low, high, f"keep-alive fixed {value:,.1f} s (95% interval "
                            f"{low:,.1f}-{high:,.1f} s)")]  # fmt: skip
    d = policy["idle_s"]
    return [(d["low_s"], d["high_s"], f"keep-alive uniform {_span(d['low_s'], d['high_s'])}")]


def _span(low: float, high: float | None) -> str:
    if high is None:
        return f"at least {low:,.0f} s"
    return f"{low:,.0f} s" if round(low) == round(high) else f"{low:,.0f}-{high:,.0f} s"


def fit_figure(fit: Fit, parsed) -> Figure:
    """Init (or SnapStart restore) and handler times, requests over time, environment ages,
    and the idle gaps that bound the keep-alive (reused after the gap: it lived longer;
    ended: it was gone), with the fitted keep-alive as fit.json and the printed line give it."""
    inv = requests(parsed)
    fig, axes = style.figures(2, 2, 11, 7.4)
    ax = axes[0]
    init = inv["init_ms"].dropna().to_numpy()
    restore = inv["restore_ms"].dropna().to_numpy()
    low = max(0.1, float(inv["duration_ms"].min()))
    high = max(1.0, float(inv["duration_ms"].max()), float(init.max(initial=1.0)),
               float(restore.max(initial=1.0)))  # fmt: skip
    bins = np.logspace(np.log10(low), np.log10(high * 1.01), 60)
    ax.hist(inv["duration_ms"], bins=bins, color=style.PALETTE[0], alpha=0.7, label="handler")
    if len(init):
        ax.hist(init, bins=bins, color=style.PALETTE[1], alpha=0.7, label="init (cold starts)")
    if len(restore):
        ax.hist(restore, bins=bins, color=style.PALETTE[3], alpha=0.7,
                label="restore (SnapStart cold starts)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")  # cold starts are few next to requests
    ax.set_xlabel("time (ms, log scale)")
    ax.set_ylabel("invocations (log scale)")
    cold = int(inv["cold"].sum())
    kinds = [f"{n:,} {what}" for n, what in ((len(init), "init"), (len(restore), "restored"))
             if n]  # fmt: skip
    detail = f": {', '.join(kinds)}" if len(kinds) > 1 or len(restore) else ""
    ax.set_title(f"Handler and start times ({len(inv):,} invocations, {cold:,} cold{detail})")
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
    style.integer_ticks(cold_ax.yaxis)  # counts: whole numbers
    style.integer_ticks(ax.yaxis)
    ax.set_xlabel("time from the first request (hours)")
    ax.set_ylabel(f"invocations per {per}")
    ax.set_title("Invocations and cold starts over time")
    cold_ax.legend(loc="upper left")
    ax = axes[2]
    ages = fit.environments["age_s"].dropna().to_numpy() / 60.0 if len(fit.environments) else []
    ax.hist(ages, bins=40, color=style.PALETTE[2])
    life = fit.report["lifetime"]
    value = life.get("max_lifetime_s")  # only when estimated
    if value is not None:  # the fitted lifetime, as fit.json's summary and the printed line
        if isinstance(value, dict):
            low, high = value["low_s"], value["high_s"]
        else:
            low, high = life["interval_s"]["50"]
            high = high if high is not None else low * 2
        ax.axvspan(low / 60.0, max(high, low * 1.002) / 60.0, color="0.3", alpha=0.25,
                   label=f"recycling: {life['summary']}")  # fmt: skip
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
    for i, (low, high, label) in enumerate(keep_alive_bands(fit.report["keep_alive"])):
        # (at least 1% wide on the log axis, so a pinned-down value still shows)
        ax.axvspan(low, max(high, low * 1.01), color=("0.3", "0.55")[i % 2], alpha=0.25,
                   label=label)  # fmt: skip
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
