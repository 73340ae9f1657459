"""Figures for one run (matplotlib). Each function returns a Figure; axes carry units.

Figures are made without pyplot, so building many of them (sweeps, notebooks) leaks no global
state; Jupyter still displays a returned Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import style
from .intervals import _integral, alive_over_time

COLD, WARM, IDLE = style.PALETTE[1], style.PALETTE[0], "#aec7e8"
PROVISIONED, PROVISIONED_IDLE = style.PALETTE[2], "#98df8a"


#: Functions drawn one by one in multi-function figures; the rest are summed as "others".
MAX_SHOWN = 9


def user_latency_ms(invocations: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Served, counted user requests and their latency in ms: for asynchronous requests from
    the moment they were dispatched (queueing under throttling is its own figure and summary
    entry, never mixed into latency)."""
    ok = (
        invocations["counted"].to_numpy()
        & (invocations["status"] == "served").to_numpy()
        & (invocations["kind"] == "user").to_numpy()
    )
    rows = invocations[ok]
    return rows, (rows["latency_ms"] - rows["queue_delay_ms"]).to_numpy()


@style.styled
def latency_cdf(stats, title: str = "", functions=None) -> Figure:
    """CDF of latency, cold vs warm starts (served, counted user requests; asynchronous ones
    from dispatch), log x axis, from a run's RowStats: exact, or from its sketch's bins
    (within 1 %). With several functions: one panel per function with requests (the busiest
    MAX_SHOWN), and no empty panel."""
    names = list(functions or [])
    served = stats.latency["cold"].count + stats.latency["warm"].count
    shown = _busiest(served, names) if len(names) > 1 else [None]
    cols = _columns(len(shown))
    nrows = -(-len(shown) // cols)
    fig, axes = style.figures(nrows, cols, width=7 if cols == 1 else 3.7 * cols,
                              height=4.2 if cols == 1 else 2.6 * nrows + 0.4)  # fmt: skip
    for ax in axes[len(shown) :]:  # a last row not filled: no empty frames
        fig.delaxes(ax)
    axes = axes[: len(shown)]
    lat = stats.latency
    warm, cold = lat.get("plot_warm", lat["warm"]), lat.get("plot_cold", lat["cold"])
    for ax, k in zip(axes, shown, strict=True):
        for label, store, color in (("warm", warm, WARM), ("cold", cold, COLD)):
            values, weights = store.distribution(k)
            style.cdf(ax, values, label=label, weights=weights, color=color)
        if not ax.lines:
            ax.text(0.5, 0.5, "no counted requests", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylim(0, 1.01)
        ax.autoscale_view()
        style.log_ticks(ax.xaxis, max_labels=6 if cols == 1 else 4)
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
        if ax.lines:
            ax.legend(loc="lower right", fontsize=style.pt(7 if k is not None else 9))
        if k is not None:
            ax.set_title(names[k], fontsize=style.pt(9))
    for i, ax in enumerate(axes):  # x labels under each column's lowest panel
        if i + cols >= len(axes):
            ax.set_xlabel("latency (ms, log scale)")
        if i % cols == 0:
            ax.set_ylabel("fraction ≤ latency")
    more = len(set(names)) - len(shown) if len(names) > 1 else 0
    note = f" (the {len(shown)} busiest of {len(set(names)):,} functions)" if more > 0 else ""
    if stats.method != "exact":
        note += "; from a DDSketch, within 1 %"
    fig.suptitle((title or "Latency CDF: cold vs warm starts") + note, fontsize=style.pt(10))
    return fig


def _columns(panels: int) -> int:
    """Columns of a grid of panels that leaves the fewest empty places (at most 3 wide; 2 in
    a paper's column)."""
    if style.current() == "paper":
        return min(panels, 2)
    if panels <= 3:
        return panels
    return 2 if panels == 4 else 3


def _busiest(counts: np.ndarray, names: list[str], n: int = MAX_SHOWN) -> list[int]:
    """The n functions (indices) with the highest counts, busiest first (ties: in order);
    those with none are left out."""
    order = np.argsort(-np.asarray(counts), kind="stable")[:n]
    return [int(k) for k in order if counts[k] > 0]


@style.styled
def instances_over_time(
    stats,
    instances: pd.DataFrame,
    duration_s: float,
    warmup_s: float = 0.0,
    title: str = "",
    memory_mb: dict[str, float] | None = None,
    host_capacity_mb: float | None = None,
) -> Figure:
    """Time-average busy (init + execution) and idle instances per bin, stacked, provisioned
    ones apart from on-demand ones, from a run's RowStats (busy time per bin) and its
    instances. A second panel stacks the memory alive instances hold, per function (the
    busiest MAX_SHOWN by requests, the rest as "others"): memory_mb maps function -> MB. With
    hosts (host_capacity_mb: the cluster's memory), that is each instance's footprint on its
    host (host_memory_mb) over the instances placed, the cluster's total, drawn against the
    cluster's memory; without hosts, Lambda's configured memory_mb, drawn for several
    functions."""
    edges = stats.edges
    bins = len(edges) - 1
    width = np.diff(edges)
    created = instances["created_s"].to_numpy()
    provisioned = instances["provisioned"].to_numpy()
    ahead = provisioned | instances["prewarmed"].to_numpy()
    ready = instances["ready_s"].to_numpy()

    def inits(mask):  # init time off the request path: busy, though no request ran
        return np.diff(_integral(created[mask], ready[mask], edges))

    pc_busy_bins = getattr(stats, "pc_busy_bins", np.zeros(bins))
    busy_pc = (pc_busy_bins + inits(provisioned)) / width
    busy_od = np.maximum((stats.busy_bins - pc_busy_bins + inits(ahead & ~provisioned)) / width,
                         0.0)  # fmt: skip
    alive_pc = np.maximum(alive_over_time(instances[provisioned], edges), busy_pc)
    alive_od = np.maximum(alive_over_time(instances[~provisioned], edges), busy_od)
    scale, unit = _time_unit(duration_s)
    x = edges / scale
    hosts = host_capacity_mb is not None
    memory = memory_mb is not None and (len(memory_mb) > 1 or hosts)
    fig, axes = style.figures(2 if memory else 1, 1, 8, 7.4 if memory else 4.2)
    ax = axes[0]
    _shade_warmup(ax, warmup_s / scale)
    base = np.zeros(bins)
    layers = []
    if provisioned.any():
        layers += [(busy_pc, PROVISIONED, "provisioned: busy"),
                   (alive_pc - busy_pc, PROVISIONED_IDLE, "provisioned: idle")]  # fmt: skip
    on_demand = "on-demand: " if provisioned.any() else ""
    layers += [(busy_od, WARM, f"{on_demand}busy (init + execution)"),
               (alive_od - busy_od, IDLE, f"{on_demand}idle (warm)")]  # fmt: skip
    for values, color, label in layers:
        ax.stairs(base + values, x, baseline=base, fill=True, color=color, label=label)
        base = base + values
    ax.set_ylabel("instances\n(time average per bin)")
    style.integer_ticks(ax.yaxis)
    _legend_beside(ax)
    ax.set_title(title or "Instances over time")
    if memory:
        ax = axes[1]
        _shade_warmup(ax, warmup_s / scale)
        everyone = list(memory_mb)
        shown = [everyone[k] for k in _busiest(stats.counts["rows"], everyone)]
        kept = instances if not hosts else instances[instances["host"].to_numpy() >= 0]
        names = kept["function"].to_numpy()
        base = np.zeros(bins)
        layers = [(f, names == f) for f in shown]
        others = ~np.isin(names, shown)
        if others.any():
            layers.append((f"others ({len(memory_mb) - len(shown)})", others))
        for i, (label, mine) in enumerate(layers):
            mb = np.array([memory_mb[f] for f in names[mine]], dtype=float)
            gb = _gb_alive(kept[mine], mb, edges)
            ax.stairs(base + gb, x, baseline=base, fill=True, color=style.color(i), label=label)
            base = base + gb
        if hosts:
            ax.axhline(host_capacity_mb / 1024.0, color="0.3", lw=1, ls="--",
                       label="the hosts' memory")  # fmt: skip
            ax.set_ylabel("memory held on hosts,\ncluster total (GB)")
            ax.set_title("Memory on the hosts (host_memory_mb), per function")
        else:
            ax.set_ylabel("memory of alive instances (GB)")
            ax.set_title("Memory of alive instances (memory_mb), per function")
        _legend_beside(ax)
    for ax in axes:
        ax.set_xlim(0, duration_s / scale)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    return fig


def _legend_beside(ax) -> None:
    """The legend where it hides no data: right of the axes, or in a paper's narrow column
    below them (clear of the tick labels and the axis label)."""
    if style.current() == "paper":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=4.2, ncol=2,
                  fontsize=style.pt(8))  # fmt: skip
        return
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              fontsize=style.pt(8))  # fmt: skip


def _gb_alive(instances: pd.DataFrame, memory_mb: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time-average GB held by the given instances (memory_mb: each one's) in each bin."""
    out = np.zeros(len(edges) - 1)
    for mb in np.unique(memory_mb):
        out += alive_over_time(instances[memory_mb == mb], edges) * mb / 1024.0
    return out


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


@style.styled
def cold_starts_over_time(
    stats, duration_s: float, warmup_s: float = 0.0, title: str = ""
) -> Figure:
    """Cold starts per bin of simulated time, bins sized to the figure (at most MAX_BINS),
    from a run's RowStats."""
    counts, width, per = stats.cold_bins, stats.cold_width, stats.cold_per
    scale, unit = _time_unit(duration_s)
    fig, ax = style.figure(8, 3.6)
    _shade_warmup(ax, warmup_s / scale)
    ax.stairs(counts, np.arange(len(counts) + 1) * width / scale, fill=True, color=COLD, alpha=0.8,
              label=f"cold starts per {per}")  # fmt: skip
    ax.set_xlim(0, duration_s / scale)
    ax.set_ylim(0, max(1, counts.max(initial=0)) * 1.08)  # the tallest bar stays in view
    style.integer_ticks(ax.yaxis)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel(f"cold starts per {per}")
    ax.grid(True, alpha=0.3)
    if warmup_s > 0:
        _legend_beside(ax)
    ax.set_title(title or f"Cold starts per {per} (total {int(counts.sum()):,})")
    return fig


def _time_unit(duration_s: float) -> tuple[float, str]:
    if duration_s >= 2 * 86400:
        return 86400.0, "days"
    if duration_s >= 3 * 3600:
        return 3600.0, "hours"
    if duration_s >= 180:
        return 60.0, "minutes"
    return 1.0, "s"


WARMUP_LABEL = "warm-up (not counted)"


def _shade_warmup(ax, warmup: float) -> None:
    """Shade the warm-up, labelled in the legend (draw it before the legend is made)."""
    if warmup > 0:
        ax.axvspan(0, warmup, color="0.85", alpha=0.6, lw=0, label=WARMUP_LABEL, zorder=0)


@style.styled
def per_bin(counts: np.ndarray, width: float, per: str, title: str = "") -> Figure:
    """Invocations per bin of a trace's time (bins of `width` s, named `per`)."""
    span_s = len(counts) * width
    scale, unit = _time_unit(span_s)
    fig, ax = style.figure(8, 3.6)
    ax.stairs(counts, np.arange(len(counts) + 1) * width / scale, fill=True, color=WARM)
    ax.set_xlim(0, span_s / scale)
    ax.set_ylim(0, max(1, counts.max(initial=0)) * 1.08)
    style.integer_ticks(ax.yaxis)
    ax.set_xlabel(f"trace time ({unit})")
    ax.set_ylabel(f"invocations per {per}")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"Invocations per {per}")
    return fig


#: Up to this many hosts, hosts.png draws a row per host; beyond, percentiles over hosts.
MAX_HOST_ROWS = 48
#: Percentiles over hosts drawn beyond MAX_HOST_ROWS hosts: the band, the middle, the top.
HOST_BAND, HOST_LINES = (10, 90), (50, 99)
#: The two time panels of hosts.png: held (all alive instances) and idle (the waste), in
#: colours that tell them apart at a glance.
HELD_CMAP, IDLE_CMAP = "viridis", "YlOrRd"
HELD_COLOR, IDLE_COLOR = style.PALETTE[0], style.PALETTE[3]

#: Steps of the ranked-hosts panel at most (beyond, ranks are averaged in equal groups: a
#: path of 100,000 steps takes seconds to draw and shows nothing more at a figure's width).
RANKED_STEPS = 2000


@style.styled
def hosts_over_time(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    scenario,
    bins: int = 200,
    title: str = "",
    dropped_no_memory: int | None = None,
) -> Figure:
    """With platform.hosts: memory held on the hosts over time, as a share of each host's
    memory, and the idle part of it (the wasted memory); then each host's time-average busy
    and idle memory over the stats window. Up to MAX_HOST_ROWS hosts, a heatmap row and a bar
    per host; beyond, percentiles over the hosts in each time bin (and the cluster's share)
    and the hosts ranked by memory held, so the figure reads the same at 10,000 hosts and
    draws a bounded number of artists."""
    from .summary import host_memory, per_host

    spec = scenario.platform.hosts
    duration_s = scenario.duration_s
    edges = np.linspace(0.0, duration_s, bins + 1)
    used, busy = host_memory(invocations, instances, scenario, edges)
    table = per_host(invocations, instances, scenario)
    capacity = np.array(spec.per_host("memory_mb"), dtype=float)
    scale, unit = _time_unit(duration_s)
    warmup = scenario.warmup_s / scale
    fig, axes = style.figures(3, 1, 9, 9.6)
    rows = spec.count <= MAX_HOST_ROWS
    panels = ((axes[0], used, "memory held", HELD_CMAP, HELD_COLOR),
              (axes[1], used - busy, "idle memory", IDLE_CMAP, IDLE_COLOR))  # fmt: skip
    for ax, values, what, cmap, color in panels:
        share = 100.0 * values / capacity[:, None]
        if rows:
            extent = (0.0, duration_s / scale, spec.count - 0.5, -0.5)
            image = ax.imshow(share, aspect="auto", extent=extent, vmin=0, vmax=100, cmap=cmap,
                              interpolation="nearest")  # fmt: skip
            fig.colorbar(image, ax=ax, label=f"{what}\n(% of the host's memory)", pad=0.01)
            ax.set_ylabel("host")
            style.integer_ticks(ax.yaxis)
            ax.grid(False)
            _mark_warmup(ax, warmup)
        else:
            _shade_warmup(ax, warmup)
            _host_percentiles(ax, edges / scale, share, color)
            cluster = 100.0 * values.sum(axis=0) / capacity.sum()
            ax.stairs(cluster, edges / scale, color="0.2", lw=1.2, ls="--",
                      label="cluster: all hosts together")  # fmt: skip
            ax.set_ylim(0, 100)
            ax.set_ylabel(f"{what}\n(% of the host's memory)")
            _legend_beside(ax)
        ax.set_xlim(0, duration_s / scale)
    evicted = int(table["instances_evicted"].sum())
    dropped = "" if dropped_no_memory is None else f"; dropped for memory: {dropped_no_memory:,}"
    per = "on each host" if rows else f"per host, over the {spec.count:,} hosts"
    axes[0].set_title(f"{title or 'Memory held on the hosts'}, {per}\n"
                      f"(evicted for memory: {evicted:,}{dropped})")  # fmt: skip
    axes[1].set_title(f"Idle instances' memory (wasted), {per}")
    axes[1].set_xlabel(f"simulated time ({unit})")
    ax = axes[2]
    if rows:
        h = table["host"].to_numpy()
        ax.bar(h, table["mean_busy_mb"], color=WARM, label="busy (init + execution)")
        ax.bar(h, table["mean_idle_mb"], bottom=table["mean_busy_mb"], color=IDLE,
               label="idle")  # fmt: skip
        ax.step(np.r_[h - 0.5, h[-1] + 0.5], np.r_[table["memory_mb"], table["memory_mb"].iloc[-1]],
                where="post", color="0.3", lw=1, ls="--", label="host memory")  # fmt: skip
        ax.set_xlabel("host" + _class_ranges(spec))
        ax.set_ylabel("time-average memory\nper host (MB)")
        ax.set_title("Each host over the stats window")
        if style.current() == "paper":
            _legend_beside(ax)
        else:
            ax.set_ylim(0, capacity.max() * 1.2)  # room for the legend above the bars
            ax.legend(loc="upper center", ncol=3, fontsize=style.pt(8))
        style.integer_ticks(ax.xaxis)
    else:  # hosts ranked by the share of their memory held: one area each for busy and idle
        held = table["mean_used_mb"].to_numpy() / capacity
        order = np.argsort(-held, kind="stable")
        busy_share = 100.0 * table["mean_busy_mb"].to_numpy()[order] / capacity[order]
        held_share = 100.0 * held[order]
        x = np.arange(spec.count + 1)
        if spec.count > RANKED_STEPS:  # ranks averaged in equal groups: a bounded path
            x = np.linspace(0, spec.count, RANKED_STEPS + 1).round().astype(np.int64)
            busy_share = np.add.reduceat(busy_share, x[:-1]) / np.diff(x)
            held_share = np.add.reduceat(held_share, x[:-1]) / np.diff(x)
        ax.stairs(busy_share, x, fill=True, color=WARM, label="busy (init + execution)")
        ax.stairs(held_share, x, baseline=busy_share, fill=True, color=IDLE,
                  label="idle")  # fmt: skip
        ax.set_xlim(0, spec.count)
        ax.set_ylim(0, 100)
        ax.set_xlabel(f"hosts, ranked by memory held (of {spec.count:,})")
        ax.set_ylabel("time-average memory\n(% of the host's memory)")
        holding = int(np.count_nonzero(held > 0))
        ax.set_title(f"Each host over the stats window, fullest first ({holding:,} of "
                     f"{spec.count:,} hosts held memory)")  # fmt: skip
        style.integer_ticks(ax.xaxis)
        _legend_beside(ax)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def _host_percentiles(ax, x: np.ndarray, share: np.ndarray, color: str) -> None:
    """Percentiles over hosts (rows of share) in each time bin: a band and lines."""
    lo, hi = np.percentile(share, HOST_BAND, axis=0)
    ax.stairs(hi, x, baseline=lo, fill=True, color=color, alpha=0.25,
              label=f"hosts' p{HOST_BAND[0]}-p{HOST_BAND[1]}")  # fmt: skip
    for q, dash in zip(HOST_LINES, ("-", ":"), strict=True):
        ax.stairs(np.percentile(share, q, axis=0), x, color=color, lw=1.4, ls=dash,
                  label=f"hosts' p{q}")  # fmt: skip
    ax.stairs(share.max(axis=0), x, color=color, lw=0.8, alpha=0.7, label="fullest host")


def _mark_warmup(ax, warmup: float) -> None:
    """On a heatmap (no legend, and a shade would hide it): a line where the warm-up ends,
    labelled."""
    if warmup > 0:
        ax.axvline(warmup, color="white", lw=1.2, ls="--")
        ax.text(warmup, 0.02, f" ← {WARMUP_LABEL}", transform=ax.get_xaxis_transform(),
                color="white", fontsize=style.pt(7), va="bottom", ha="left",
                bbox={"facecolor": "black", "alpha": 0.35, "lw": 0, "pad": 1})  # fmt: skip


def _class_ranges(spec) -> str:
    """' (0-1 big, 2-7 small)': which hosts each class holds, for an axis label."""
    if spec.classes is None:
        return ""
    parts, first = [], 0
    for c in spec.classes:
        last = first + c.count - 1
        parts.append(f"{first}-{last} {c.name}" if last > first else f"{first} {c.name}")
        first = last + 1
    return f" ({', '.join(parts)})"


@style.styled
def connections_over_time(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario, bins: int = 400,
    title: str = "",
) -> Figure:  # fmt: skip
    """Connections held to each resource of functions' global_state over time (time average
    per bin), against its declared limit."""
    from ..scenario.globalstate import resources
    from .connections import connection_intervals
    from .intervals import _weighted_integral

    names = resources(scenario.functions)
    limits = scenario.platform.connection_limits or {}
    duration_s = scenario.duration_s
    edges = np.linspace(0.0, duration_s, bins + 1)
    scale, unit = _time_unit(duration_s)
    fig, axes = style.figures(len(names), 1, 8, 3.4 * len(names))
    for ax, name in zip(axes, names, strict=True):
        start, end, weight = connection_intervals(invocations, instances, scenario, name)
        mean = np.diff(_weighted_integral(start, end, weight, edges)) / np.diff(edges)
        ax.stairs(mean, edges / scale, fill=True, color=style.PALETTE[0], alpha=0.8,
                  label="connections held (time average per bin)")  # fmt: skip
        if name in limits:
            ax.axhline(limits[name], color=style.PALETTE[1], lw=1.5, ls="--",
                       label=f"limit ({limits[name]:,})")  # fmt: skip
        _shade_warmup(ax, scenario.warmup_s / scale)
        ax.set_xlim(0, duration_s / scale)
        ax.set_ylabel(f"connections to {name}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=style.pt(8))
    axes[0].set_title(title or "Connections held over time")
    axes[-1].set_xlabel(f"simulated time ({unit})")
    return fig
