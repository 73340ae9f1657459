"""Side-by-side comparison of runs (result folders or scenarios) or of a sweep's points."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from ..reporting import plots, style
from ..reporting.intervals import occupancy
from ..reporting.logs import read_requests
from ..reporting.output import check_output_dir, write_folder
from ..reporting.result import Result
from ..scenario.loading import load_scenario

KEY_METRICS = ["cold_start_rate", "latency_ms.p99", "idle_gb_s", "cost_usd.total"]
LABELS = {
    "cold_start_rate": "cold-start rate",
    "latency_ms.p99": "p99 latency (ms)",
    "idle_gb_s": "idle memory (GB-s)",
    "cost_usd.total": "cost (USD)",
}


@dataclass
class Run:
    name: str
    summary: dict[str, Any]
    invocations: pd.DataFrame
    instances: pd.DataFrame
    duration_s: float


def load_runs(
    items: list[str | Path | Result],
    allow_import: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Run]:
    """Result objects, result folders (written by `coldsim run`) or scenario files (run now;
    `allow_import` as for load_scenario). progress(done, total) after each."""
    from ..simulation import simulate

    runs = []
    for item in items:
        if progress:
            progress(len(runs), len(items))
        if isinstance(item, Result):
            res = item
        elif Path(item).is_dir():
            folder = Path(item)
            summary = json.loads((folder / "summary.json").read_text())
            runs.append(
                Run(
                    summary["scenario"],
                    summary,
                    read_requests(folder, "compare"),
                    pd.read_parquet(folder / "instances.parquet"),
                    summary["duration_s"],
                )
            )
            continue
        else:
            res = simulate(load_scenario(item, allow_import=allow_import))
        runs.append(
            Run(
                res.scenario.name,
                res.summary,
                res.invocations,
                res.instances,
                res.scenario.duration_s,
            )
        )
    names = [r.name for r in runs]
    for i, r in enumerate(runs):  # tell same-named runs apart
        if names.count(r.name) > 1:
            r.name = f"{r.name}#{i + 1}"
    return runs


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    from scipy import stats  # imported on use: plain runs need not load scipy

    if n == 0:
        return math.nan, math.nan
    z = stats.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def runs_table(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for r in runs:
        s = r.summary
        lo, hi = wilson(s["cold_starts"], s.get("served", s["invocations"]))
        rows.append(
            {
                "run": r.name,
                "invocations": s["invocations"],
                "cold_starts": s["cold_starts"],
                "cold_start_rate": s["cold_start_rate"],
                "cold_start_rate_ci_low": lo,
                "cold_start_rate_ci_high": hi,
                # As the figures: from dispatch for async requests (no queueing).
                **_latency_percentiles(r.invocations),
                "mean_instances": s["mean_instances"],
                "idle_gb_s": s["idle_gb_s"],
                "cost_usd.total": s.get("cost_usd", {}).get("total"),
            }
        )
        window_h = (r.duration_s - s.get("warmup_s", 0.0)) / 3600.0
        rows[-1]["window_h"] = window_h
        for key in ("cold_starts", "idle_gb_s", "cost_usd.total"):
            value = rows[-1][key]
            rows[-1][f"{key}_per_hour"] = None if value is None else value / window_h
    table = pd.DataFrame(rows)
    if table["window_h"].nunique() > 1:
        warnings.warn(
            "the runs cover different spans ("
            + ", ".join(f"{n}: {h:g} h" for n, h in zip(table["run"], table["window_h"],
                                                         strict=True))
            + "): totals are not comparable; the figures use rates per hour",
            stacklevel=2,
        )  # fmt: skip
    return table


def _latency_percentiles(invocations: pd.DataFrame) -> dict[str, float]:
    _, lat = plots.user_latency_ms(invocations)
    if not len(lat):
        return {"latency_ms.p50": math.nan, "latency_ms.p99": math.nan}
    p50, p99 = np.percentile(lat, [50, 99])
    return {"latency_ms.p50": float(p50), "latency_ms.p99": float(p99)}


def pareto(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of points no other point beats on both x and y (lower is better)."""
    return pareto_ci(x, x, x, y, y, y)


def pareto_ci(x, x_low, x_high, y, y_low, y_high) -> np.ndarray:
    """Mask of points that no other point beats clearly: j beats i when it is no worse on
    either axis (its means at or below i's) and better beyond the CIs on one (its CI wholly
    below i's; lower is better). With no intervals (low = high = value) it is the plain
    Pareto frontier."""
    x, x_low, x_high, y, y_low, y_high = (np.asarray(a, dtype=float) for a in
                                          (x, x_low, x_high, y, y_low, y_high))  # fmt: skip
    keep = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        beats = (x <= x[i]) & (y <= y[i]) & ((x_high < x_low[i]) | (y_high < y_low[i]))
        keep[i] = not np.any(beats)
    return keep


def value_text(value: Any) -> str:
    """A knob value as a person writes it: 5, not 5.0; 0.25; mappings compactly."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def knob_label(knob: str) -> str:
    """A short name for a dotted knob: its last one or two parts (functions.0.memory_mb ->
    memory_mb; platform.keep_alive.idle_s -> keep_alive.idle_s)."""
    parts = [p for p in knob.split(".") if not p.isdigit()]
    if len(parts) > 1 and parts[-1] in ("idle_s", "policy"):  # too vague alone
        return ".".join(parts[-2:])
    return parts[-1] if parts else knob


#: A knob whose values span this ratio (two decades) or more is drawn on a log axis.
LOG_SPAN = 100.0


def knob_scale(values: np.ndarray) -> tuple[str, float | None]:
    """How to draw a numeric knob's axis: ('log', None) when its values are positive and span
    LOG_SPAN or more; ('symlog', linear threshold) when they also hold 0 (a log axis has no
    0: linear up to the smallest positive value); else ('linear', None)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    positive = v[v > 0]
    if len(positive) < 2 or (v < 0).any() or positive.max() / positive.min() < LOG_SPAN:
        return "linear", None
    if (v == 0).any():
        return "symlog", float(positive.min())
    return "log", None


def knob_axis(ax, values: np.ndarray) -> None:
    """Scale and ticks of the x axis of a numeric knob (see knob_scale); whole-number knobs
    get whole-number ticks."""
    scale, threshold = knob_scale(values)
    whole = all(float(v).is_integer() for v in values if np.isfinite(v))
    if scale == "log":
        ax.set_xscale("log")
        ax.autoscale_view()
        style.log_ticks(ax.xaxis)
    elif scale == "symlog":
        ax.set_xscale("symlog", linthresh=threshold, linscale=0.5)
    elif whole:
        style.integer_ticks(ax.xaxis)


@style.styled
def compare_runs(runs: list[Run], out: Path) -> pd.DataFrame:
    table = runs_table(runs)
    files = {"compare.csv": table}
    figs = {}
    # Latency CDFs.
    fig, ax = style.figure()
    for i, r in enumerate(runs):
        inv = r.invocations
        ok = inv["counted"] & (inv["status"] == "served" if "status" in inv else True)
        if "kind" in inv:
            ok &= inv["kind"] == "user"
        lat = (inv.loc[ok, "latency_ms"] - inv.loc[ok, "queue_delay_ms"]).to_numpy()
        style.cdf(ax, lat, color=style.color(i), label=r.name, **_line_style(i))
    ax.set_xscale("log")
    ax.set(
        xlabel="latency (ms, log scale)",
        ylabel="fraction of requests ≤ latency",
        title="Latency CDF",
    )
    ax.legend()
    figs["latency_cdf"] = fig
    # Cold-start rate with 95% CIs.
    fig, ax = style.figure()
    x = np.arange(len(runs))
    rate = table["cold_start_rate"].astype(float).to_numpy()
    err = np.vstack(
        [rate - table["cold_start_rate_ci_low"], table["cold_start_rate_ci_high"] - rate]
    )
    ax.bar(x, rate, color=[style.color(i) for i in x])
    ax.errorbar(x, rate, yerr=err, fmt="none", ecolor="black", capsize=4)
    ax.set_xticks(x, table["run"], rotation=20, ha="right")
    ax.set(ylabel="cold-start rate (95% Wilson CI)", title="Cold-start rate")
    figs["cold_start_rate"] = fig
    # Cost vs p99 with the Pareto frontier (per hour when the runs' spans differ).
    per_hour = table["window_h"].nunique() > 1
    cost_key = "cost_usd.total_per_hour" if per_hour else "cost_usd.total"
    cost = table[cost_key].astype(float).to_numpy()
    p99 = table["latency_ms.p99"].astype(float).to_numpy()
    figs["cost_vs_p99"] = _pareto_figure(
        (cost, cost, cost), (p99, p99, p99), list(table["run"]),
        xlabel="cost (USD per hour)" if per_hour else "cost (USD)",
    )  # fmt: skip
    # Instances and cold starts over time, bins sized to the figure; one time axis for all.
    span = max(r.duration_s for r in runs)
    scale, unit = plots._time_unit(span)
    width, per = plots.time_bins(span)
    fig, ax = style.figure()
    fig2, ax2 = style.figure(height=3.6)
    for i, r in enumerate(runs):
        edges = np.linspace(0, r.duration_s, 301)
        _, alive = occupancy(r.invocations, r.instances, edges)
        ax.stairs(alive, edges / scale, color=style.color(i), label=r.name, **_line_style(i))
        cold_t = r.invocations.loc[r.invocations["cold"], "arrival_s"].to_numpy()
        counts = plots.counts_over_time(cold_t, span)[0]
        ax2.stairs(counts, np.arange(len(counts) + 1) * width / scale, color=style.color(i),
                   label=r.name, **_line_style(i))  # fmt: skip
    ax.set(xlabel=f"simulated time ({unit})", ylabel="instances alive (time average per bin)",
           title="Instances over time")  # fmt: skip
    style.integer_ticks(ax.yaxis)
    style.integer_ticks(ax2.yaxis)
    ax.legend()
    ax2.set(
        xlabel=f"simulated time ({unit})",
        ylabel=f"cold starts per {per}",
        title=f"Cold starts per {per}",
    )
    ax2.legend()
    figs["instances_over_time"], figs["cold_starts_over_time"] = fig, fig2
    _write(out, files, figs)
    return table


@style.styled
def compare_sweep(folder: Path, out: Path, labels: list[str] | None = None) -> pd.DataFrame:
    table = pd.read_parquet(folder / "sweep.parquet")
    knobs = [
        c
        for c in table.columns
        if not c.endswith(("_mean", "_ci_low", "_ci_high")) and c != "replications"
    ]
    figs = {}
    first = knobs[0]
    others = knobs[1:]
    series = table.groupby(others, sort=True).ngroups if others else 1
    if labels is not None and len(labels) != series:
        raise ScenarioError(
            f"--label: {len(labels)} label(s) for {series} series; a sweep over {first} draws "
            + (f"one curve per value of {', '.join(others)}" if others else "one curve")
            + ", in increasing order"
        )
    for metric in KEY_METRICS:
        if f"{metric}_mean" not in table:
            continue
        fig, ax = style.figure()
        groups = table.groupby(others, sort=True) if others else [((), table)]
        categories = None
        if not pd.api.types.is_numeric_dtype(table[first]):  # strings, mappings: positions
            categories = list(dict.fromkeys(map(str, table[first])))
        for i, (key, rows) in enumerate(groups):
            if categories is None:
                rows = rows.sort_values(first)
                x = rows[first].to_numpy(dtype=float)
            else:
                x = np.array([categories.index(str(v)) for v in rows[first]], dtype=float)
                rows, x = rows.iloc[np.argsort(x)], np.sort(x)
            label = labels[i] if labels is not None else ", ".join(
                f"{knob_label(k)}={value_text(v)}"
                for k, v in zip(others, np.atleast_1d(key), strict=False)
            ) or None  # fmt: skip
            mean = rows[f"{metric}_mean"].to_numpy(dtype=float)
            low = rows[f"{metric}_ci_low"].to_numpy(dtype=float)
            high = rows[f"{metric}_ci_high"].to_numpy(dtype=float)
            # Markers and dashes differ per series, so coinciding series stay visible.
            ax.errorbar(
                x, mean, yerr=np.vstack([mean - low, high - mean]), color=style.color(i),
                marker=MARKERS[i % len(MARKERS)], linestyle=DASHES[i % len(DASHES)],
                markersize=8 - 2 * (i % 3), markerfacecolor="none", capsize=3, label=label,
            )  # fmt: skip
            ax.fill_between(x, low, high, color=style.color(i), alpha=0.15)
        if categories is not None:
            ticks = [value_text(v) for v in dict.fromkeys(table[first])]
            ax.set_xticks(range(len(categories)), ticks, rotation=15, ha="right",
                          fontsize=style.pt(7))  # fmt: skip
        else:
            knob_axis(ax, table[first].to_numpy(dtype=float))
        ax.set(xlabel=first, ylabel=LABELS[metric], title=f"{LABELS[metric]} vs {first} (95% CI)")
        if others or labels is not None:
            ax.legend()
        figs[f"{metric.replace('.', '_')}_vs_knob"] = fig
    if len(knobs) == 2:
        for metric in ("cold_start_rate", "cost_usd.total"):
            keyed = table.assign(
                **{
                    k: table[k].astype(str)
                    for k in knobs
                    if not pd.api.types.is_numeric_dtype(table[k])
                }
            )
            grid = keyed.pivot(index=knobs[1], columns=knobs[0], values=f"{metric}_mean")
            fig, ax = style.figure(6, 4.5)
            im = ax.imshow(
                grid.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis"
            )
            ax.set_xticks(range(grid.shape[1]), [value_text(v) for v in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [value_text(v) for v in grid.index])
            ax.set(xlabel=knobs[0], ylabel=knobs[1], title=f"{LABELS[metric]} (mean)")
            ax.grid(False)
            fig.colorbar(im, ax=ax)
            figs[f"heatmap_{metric.replace('.', '_')}"] = fig
    if {"cost_usd.total_mean", "latency_ms.p99_mean"} <= set(table):
        labels = [
            ", ".join(f"{knob_label(k)}={value_text(row[k])}" for k in knobs)
            for _, row in table.iterrows()
        ]
        figs["cost_vs_p99"] = _pareto_figure(
            *(tuple(table[f"{m}{end}"].to_numpy(float) for end in ("_mean", "_ci_low", "_ci_high"))
              for m in ("cost_usd.total", "latency_ms.p99")),
            labels,
        )  # fmt: skip
    _write(out, {"compare.csv": table}, figs)
    return table


#: Label at most this many points of a Pareto plot (all of them on the frontier).
MAX_LABELS = 12
MARKERS = "osD^vP*X"
DASHES = ["-", "--", ":", "-."]


def _line_style(i: int) -> dict[str, Any]:
    """Lines of run i: dashes differ, and earlier runs are drawn wider, so that runs that
    coincide stay visible under one another."""
    return {"linestyle": DASHES[i % len(DASHES)], "linewidth": 1.2 + 0.8 * (3 - i % 4)}


def _pareto_figure(cost, p99, labels: list[str], xlabel: str = "cost (USD)"):
    """Cost against p99, each with its 95% CI where there are replications (mean, low,
    high). The frontier (the points no other point beats by more than the CIs) is marked only
    when some point is beaten beyond the CIs: otherwise no point stands out and none is
    marked. Labels are placed where they overprint nothing and stay inside the axes; any
    that find no such place are left off, and the figure says how many."""
    (c, c_lo, c_hi), (y, y_lo, y_hi) = cost, p99
    fig, ax = style.figure()
    ok = np.isfinite(c) & np.isfinite(y)
    c_lo, c_hi = np.where(np.isfinite(c_lo), c_lo, c), np.where(np.isfinite(c_hi), c_hi, c)
    y_lo, y_hi = np.where(np.isfinite(y_lo), y_lo, y), np.where(np.isfinite(y_hi), y_hi, y)
    front = np.zeros(len(c), dtype=bool)
    front[ok] = pareto_ci(c[ok], c_lo[ok], c_hi[ok], y[ok], y_lo[ok], y_hi[ok])
    marked = ok & ~front
    if marked.any():
        groups = ((ok & ~front, "0.6", "beaten beyond the CIs"),
                  (front, style.color(1), "frontier (beaten by none beyond the CIs)"))
    else:  # every point within the others' CIs: no frontier to speak of
        groups = ((ok, style.color(0), "no point beaten beyond the CIs"),)  # fmt: skip
    for mask, color, label in groups:
        if mask.any():
            ax.errorbar(
                c[mask], y[mask],
                xerr=np.vstack([c[mask] - c_lo[mask], c_hi[mask] - c[mask]]),
                yerr=np.vstack([y[mask] - y_lo[mask], y_hi[mask] - y[mask]]),
                fmt="o", color=color, capsize=3, label=label, zorder=3 if color != "0.6" else 2,
            )  # fmt: skip
    if marked.any():
        order = np.argsort(c[front])
        ax.plot(c[front][order], y[front][order], color=style.color(1), lw=1, alpha=0.6,
                gid="frontier")  # fmt: skip
    title = "Cost vs p99 latency (95% CI where replicated)"
    ax.set(xlabel=xlabel, ylabel="p99 latency (ms)", title=title)
    ax.margins(0.12)  # room for labels beside the outermost points
    ax.legend(loc="best")
    named = np.flatnonzero(ok & (front | (ok.sum() <= MAX_LABELS)))
    named = named[np.lexsort((c[named], ~front[named]))]  # the frontier's first
    args = ([labels[i] for i in named], c[named], y[named])
    placed, left_off = place_labels(ax, *args)
    if left_off:  # say so in the title: again, with room made for its second line
        for label in placed:
            label.remove()
        fig.set_layout_engine("constrained")
        ax.set_title(f"{title}\n(some labels left off for lack of room: see compare.csv)")
        placed, left_off = place_labels(ax, *args)
        ax.set_title(f"{title}\n({left_off} label(s) left off for lack of room: see compare.csv)")
    return fig


#: Where place_labels tries a label, in points from its point: beside it first, then farther.
_OFFSETS = [(dx * r, dy * r) for r in (1, 2, 3.5, 5) for dx, dy in
            ((5, 4), (5, -4), (-5, 4), (-5, -4), (0, 7), (0, -7), (8, 0), (-8, 0))]  # fmt: skip


def place_labels(ax, texts: list[str], x: np.ndarray, y: np.ndarray) -> tuple[list, int]:
    """Annotate point i with texts[i] where the label lies inside the axes and overlaps no
    other label, no marker and the legend (tried beside the point, then farther, with a
    leader line). The figure's layout is settled first and then frozen, so what was checked
    is what is saved. Returns the labels placed, and how many found no place (left off)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    if not texts:
        return [], 0
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)  # the layout engine places the axes
    fig.set_layout_engine("none")
    inside = ax.get_window_extent(renderer).shrunk(0.995, 0.995)
    taken = [_marker_box(ax, px, py) for px, py in zip(x, y, strict=True)]
    legend = ax.get_legend()
    if legend is not None:  # it stays where "best" put it, labels or not
        box = legend.get_window_extent(renderer)
        legend.set_loc(tuple(ax.transAxes.inverted().transform((box.x0, box.y0))))
        taken.append(box)
    placed, left_off = [], 0
    for text, px, py in zip(texts, x, y, strict=True):
        for dx, dy in _OFFSETS:
            far = abs(dx) > 8 or abs(dy) > 7
            label = ax.annotate(
                text, (px, py), xytext=(dx, dy), textcoords="offset points",
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                fontsize=style.pt(7), annotation_clip=False,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"} if far else None,
            )  # fmt: skip
            label.set_in_layout(False)
            box = label.get_window_extent(renderer)
            if _contains(inside, box) and not any(box.overlaps(t) for t in taken):
                taken.append(box)
                placed.append(label)
                break
            label.remove()
        else:
            left_off += 1
    return placed, left_off


def _marker_box(ax, x: float, y: float):
    """The window area of a point's marker (about 6 points across)."""
    from matplotlib.transforms import Bbox

    cx, cy = ax.transData.transform((x, y))
    half = 3.0 * ax.figure.dpi / 72.0
    return Bbox.from_extents(cx - half, cy - half, cx + half, cy + half)


def _contains(outer, inner) -> bool:
    return (outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0
            and inner.y1 <= outer.y1)  # fmt: skip


def _write(out: Path, tables: dict[str, pd.DataFrame], figs: dict) -> None:
    """Write the tables (CSV) and figures (PNG and SVG); compare() checked `out` may go."""

    def fill(tmp: Path) -> None:
        for name, table in tables.items():
            table.to_csv(tmp / name, index=False)
        for stem, fig in figs.items():
            style.save(fig, tmp / stem)

    write_folder(out.resolve(), "compare", fill)


def compare(
    items: list[str | Path | Result],
    out: str | Path,
    *,
    allow_import: bool = False,
    progress: Callable[[int, int], None] | None = None,
    labels: list[str] | None = None,
    figure_style: str | None = None,
) -> pd.DataFrame:
    """Compare runs (Result objects, result folders, scenario files), or the points of one
    sweep (a folder holding sweep.parquet). `out` must be new, empty or an earlier comparison,
    and must not hold an input. `allow_import` as for load_scenario. `labels`: the series'
    names (one per run; for a sweep, one per curve, a curve per value of its other knobs),
    in the table and the figures. `figure_style`: default or paper (see reporting.style)."""
    if not items:
        raise ScenarioError("nothing to compare: give result folders, scenarios or a sweep")
    if figure_style is not None and figure_style not in style.STYLES:
        raise ScenarioError(f"figure style {figure_style!r}: expected one of "
                            f"{', '.join(style.STYLES)}")  # fmt: skip
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
            raise ScenarioError(f"--label: labels must be distinct and not blank, got {labels}")
    out = check_output_dir(out, "compare")
    paths = [Path(i).resolve() for i in items if not isinstance(i, Result)]
    for path in paths:
        if path == out or out in path.parents or path in out.parents:
            raise ScenarioError(f"the output folder {out} would overwrite the input {path}")
        if path.is_dir() and not (
            (path / "summary.json").is_file() or (path / "sweep.parquet").is_file()
        ):
            raise ScenarioError(
                "not a run (no summary.json) nor a sweep (no sweep.parquet)", file=str(path)
            )
    sweeps = [p for p in paths if p.is_dir() and (p / "sweep.parquet").is_file()]
    if sweeps:
        if len(items) != 1:
            raise ScenarioError("compare takes one sweep folder, or any number of runs")
        with style.using(figure_style):
            return compare_sweep(sweeps[0], out, labels)
    if labels is not None and len(labels) != len(items):
        raise ScenarioError(f"--label: {len(labels)} label(s) for {len(items)} runs; give one "
                            "per run, in the order of the runs")  # fmt: skip
    runs = load_runs(items, allow_import, progress)
    for run, label in zip(runs, labels or [], strict=False):
        run.name = label
    with style.using(figure_style):
        return compare_runs(runs, out)
