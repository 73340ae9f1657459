"""The summary of a run: the requests' statistics (`rowstats`) and the instances -> summary
metrics (overall and per function).

Statistics cover invocations that arrived in the stats window [warmup_s, duration_s); time
averages (mean_*_instances, *_gb_s) integrate exactly over that window. Percentiles use linear
interpolation between order statistics (numpy's default) while the latencies fit the memory
kept for them, and a DDSketch (1 % relative accuracy) beyond (`percentiles` says which).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..engine.eventlog import EndReason, categories
from ..scenario.prices import MB_PER_GB
from ..scenario.schema import Scenario
from .connections import connection_summary
from .intervals import (
    _weighted_peaks,
    busy_intervals,
    grouped_integral,
    multi_request_functions,
    overlap,
)
from .logs import app_codes, function_codes
from .pricing import costs
from .quantiles import FUNCTION_EXACT_LIMIT, FunctionQuantiles
from .rowstats import RowStats, frame_facts, frame_rows, throttle_rows


def summarize(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    throttles: pd.DataFrame,
    scenario: Scenario,
) -> dict[str, Any]:
    """The summary of logs held in memory (see report)."""
    return report(row_stats(invocations, instances, throttles, scenario), instances, scenario,
                  invocations)  # fmt: skip


def row_stats(
    invocations: pd.DataFrame, instances: pd.DataFrame, throttles: pd.DataFrame,
    scenario: Scenario,
) -> RowStats:  # fmt: skip
    """The RowStats of logs held in memory: all their rows as one block."""
    stats = RowStats(scenario)
    stats.add(frame_rows(invocations), frame_facts(instances))
    stats.add_throttles(throttle_rows(throttles))
    return stats


def report(
    stats: RowStats, instances: pd.DataFrame, scenario: Scenario, kept: pd.DataFrame
) -> dict[str, Any]:
    """Overall metrics plus `per_function.<name>` with the same keys, from the requests'
    statistics (`stats`), the instances, and `kept`: the request rows of at least the
    functions in rowstats.functions_kept (hosts and connections are summarised from them).

    User requests only, unless named otherwise: `invocations` counts those that arrived in the
    window (whatever became of them), `cold_start_rate` is per served request, `throttled`
    counts sync throttles, dropped async requests and requests dropped for lack of host memory
    (`dropped_no_memory` counts those alone). Busy time counts every execution (user
    and warmer) and every init, provisioned ones included. `percentiles` says how the
    percentiles were computed: exact, or ddsketch (within 1 % of the value at the rank)."""
    functions = [f.name for f in scenario.functions]
    n_fn = len(functions)
    w0, w1 = scenario.warmup_s, scenario.duration_s
    width = w1 - w0
    gb = np.array([f.memory_mb for f in scenario.functions], dtype=float) / MB_PER_GB
    footprint_gb = np.array([f.footprint_mb() for f in scenario.functions]) / MB_PER_GB
    c = stats.counts

    inst_codes = function_codes(instances)
    created = instances["created_s"].to_numpy()
    ready = instances["ready_s"].to_numpy()
    ahead = instances["provisioned"].to_numpy() | instances["prewarmed"].to_numpy()
    busy_s = stats.sums["busy_s"].copy()
    # Inits off the request path (provisioned, pre-warmed) are busy time too.
    busy_s += _by_function(overlap(created, ready, w0, w1) * ahead, inst_codes, n_fn)
    ended = instances["ended_s"].to_numpy()
    alive_s = _by_function(
        overlap(created, np.where(np.isnan(ended), np.inf, ended), w0, w1), inst_codes, n_fn
    )
    idle_s = np.maximum(alive_s - busy_s, 0.0)
    peaks = _peak_alive(created, ended, inst_codes, n_fn, w0, w1)
    unplaced = instances["end_reason"].cat.codes.to_numpy() == EndReason.UNPLACED
    new = (created >= w0) & (created < w1) & ~unplaced  # pre-warms that never ran: not created
    n_created = np.bincount(inst_codes[new], minlength=n_fn)

    # Provisioned concurrency utilisation: ∫ min(busy provisioned, configured) dt /
    # ∫ configured dt, so surplus instances finishing after a scale-down do not count.
    pc_s = np.zeros(n_fn)
    for k, f in enumerate(scenario.functions):
        steps = [st for st in f.provisioned_schedule() if st.at_s < w1]
        if steps:
            pc_s[k] = _schedule_integral(steps, w0, w1)
    pc_busy_s = stats.sums["pc_busy_s"]

    # Instance ends in the window, by reason (pressure: evicted to make room on a host).
    reasons = instances["end_reason"].cat.codes.to_numpy()
    ended_in = (ended >= w0) & (ended < w1)
    ends_by = {
        name: np.bincount(inst_codes[ended_in & (reasons == code)], minlength=n_fn)
        for name, code in zip(categories(EndReason), range(len(EndReason)), strict=True)
        if code != EndReason.ALIVE
    }
    lat = {name: stats.latency_of(name).stats() for name in ("all", *stats.latency)}
    q_stats = lat.get("queue")
    cost = costs(stats, instances, scenario, kept)

    def block(k: int | None) -> dict[str, Any]:
        at = -1 if k is None else k
        total = (lambda a: a.sum()) if k is None else (lambda a: a[k])  # noqa: E731
        inv, n_served = int(total(c["invocations"])), int(total(c["served"]))
        cs = int(total(c["cold_starts"]))
        busy, idle = float(total(busy_s)), float(total(idle_s))
        throttled = inv - n_served
        configured_s = float(total(pc_s))
        return {
            "invocations": inv,
            "served": n_served,
            "cold_starts": cs,
            "cold_start_rate": cs / n_served if n_served else None,
            "latency_ms": lat["all"][at],
            "latency_ms_cold": lat["cold"][at],
            "latency_ms_warm": lat["warm"][at],
            "throttled": throttled,
            "throttle_rate": throttled / inv if inv else None,
            "retries": int(total(c["retries"])),
            "async_queue_delay_ms": {
                key: q_stats[at][key] if q_stats else None for key in ("p50", "p99", "max")
            },
            "dropped_no_memory": int(total(c["dropped_no_memory"])),
            "memory_wait_ms": {
                "waited": int(total(c["memory_waited"])),
                **{key: lat["memory_wait"][at][key] for key in ("p50", "p99", "max")},
            },
            **({"instance_wait_ms": {  # only where requests may queue behind instances
                "waited": int(total(c["instance_waited"])),
                **{key: lat["instance_wait"][at][key] for key in ("p50", "p99", "max")},
            }} if "instance_wait" in lat else {}),
            "instances_ended": {name: int(total(n)) for name, n in ends_by.items()},
            "instances_created": int(total(n_created)),
            "mean_instances": (busy + idle) / width,
            "mean_busy_instances": busy / width,
            "mean_idle_instances": idle / width,
            "peak_instances": int(peaks[at]),
            "idle_gb_s": float(total(idle_s * gb)),
            "idle_footprint_gb_s": float(total(idle_s * footprint_gb)),
            "busy_gb_s": float(total(busy_s * gb)),
            "provisioned_utilisation": float(total(pc_busy_s)) / configured_s
            if configured_s
            else None,
            "spillover_invocations": int(total(c["spillover"])),
            "warmer_invocations": int(total(c["warmer_invocations"])),
            "warmer_throttled": int(total(c["warmer_throttled"])),
            "cost_usd": {key: float(total(v)) for key, v in cost.items()},
        }

    out = block(None)
    out["percentiles"] = stats.method
    out["hosts"] = host_summary(kept, instances, scenario)
    out["connections"] = connection_summary(kept, instances, scenario)
    out["per_function"] = {name: block(k) for k, name in enumerate(functions)}
    in_apps = any(f.app for f in scenario.functions)
    out["app_cold_pct"], per_app = app_report(stats, scenario, idle_s, gb, footprint_gb, in_apps)
    if in_apps:
        out["per_app"] = per_app
    if "chain" in lat:  # per entry function (it calls others and has traffic of its own):
        # its requests from outside, end to end
        roots, cold_roots = c["chain_roots"], c["chain_cold_roots"]
        out["chains"] = {
            name: {
                "requests": int(roots[k]),
                "chain_cold_rate": float(cold_roots[k] / roots[k]) if roots[k] else None,
                "latency_ms": lat["chain"][k],
            }
            for k, name in enumerate(functions)
            if scenario.functions[k].calls and scenario.functions[k].arrivals.process != "none"
        }
    return out


def host_summary(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario: Scenario
) -> dict[str, Any] | None:
    """Memory on hosts over the stats window (None without platform.hosts), each figure named
    by its aggregate: `cluster_*` over all hosts together (time-average MB held (used), held
    by busy or initialising instances (busy) and by idle ones (idle, the wasted memory); the
    most held at once), `host_*` per host (the mean over hosts of each host's time average;
    the most any one host held at once); utilisation (used / capacity) of the cluster and of
    the least and most used host; wasted_gb_s over the cluster."""
    spec = scenario.platform.hosts
    if spec is None:
        return None
    table = per_host(invocations, instances, scenario)
    w0, w1 = scenario.warmup_s, scenario.duration_s
    capacity = table["memory_mb"].sum()
    used, busy = table["mean_used_mb"].sum(), table["mean_busy_mb"].sum()
    created, ended, host, mb = _instance_memory(instances, scenario)
    s = np.maximum(created, w0)
    e = np.minimum(np.where(np.isnan(ended), np.inf, ended), w1)
    inside = (s < e) & (host >= 0)
    cluster_peak = _weighted_peaks(s[inside], e[inside], mb[inside],
                                   np.zeros(int(inside.sum()), dtype=np.int64), 1)[0]  # fmt: skip
    out = {
        "count": spec.count,
        "memory_mb": spec.memory_mb,
        "cluster_mean_used_mb": float(used),
        "cluster_mean_busy_mb": float(busy),
        "cluster_mean_idle_mb": float(used - busy),
        "cluster_peak_used_mb": float(cluster_peak),
        "host_mean_used_mb": float(used / spec.count),
        "host_mean_busy_mb": float(busy / spec.count),
        "host_mean_idle_mb": float((used - busy) / spec.count),
        "host_peak_used_mb": float(table["peak_used_mb"].max()),
        "utilisation": float(used / capacity),
        "busy_utilisation": float(busy / capacity),
        "utilisation_min": float(table["utilisation"].min()),
        "utilisation_max": float(table["utilisation"].max()),
        "wasted_gb_s": float((used - busy) * (w1 - w0) / MB_PER_GB),
    }
    if spec.classes is not None:  # per class: memory and CPU use, and what the hosts cost
        hours = (w1 - w0) / 3600.0
        out["classes"] = {}
        for c in spec.classes:
            mine = table[table["class"] == c.name]
            cores = mine["cpus"].sum() if c.cpus is not None else None
            out["classes"][c.name] = {
                "count": c.count,
                "memory_mb": c.memory_mb,
                "cpus": c.cpus,
                "speed": c.speed,
                "utilisation": float(mine["mean_used_mb"].sum() / mine["memory_mb"].sum()),
                "busy_utilisation": float(mine["mean_busy_mb"].sum() / mine["memory_mb"].sum()),
                "cpu_utilisation": float((mine["cpu_utilisation"] * mine["cpus"]).sum() / cores)
                if cores else None,
                "host_hours": c.count * hours,
                "cost_usd": c.count * hours * c.price_per_hour,
            }
        out["cost_usd"] = float(sum(v["cost_usd"] for v in out["classes"].values()))
    return out


def per_host(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario: Scenario
) -> pd.DataFrame:
    """One row per host over the stats window: mean_used_mb, mean_busy_mb, mean_idle_mb,
    peak_used_mb, utilisation (mean used / memory), instances placed and evicted there; with
    host classes also each host's class, cores and CPU utilisation (the time-average share of
    its cores running requests)."""
    spec = scenario.platform.hosts
    w0, w1 = scenario.warmup_s, scenario.duration_s
    used, busy = host_memory(invocations, instances, scenario, np.array([w0, w1]))
    used, busy = used[:, 0], busy[:, 0]
    created, ended, host, mb = _instance_memory(instances, scenario)
    ends = np.where(np.isnan(ended), np.inf, ended)
    s, e = np.maximum(created, w0), np.minimum(ends, w1)
    inside = s < e
    reasons = instances["end_reason"].cat.codes.to_numpy()
    count = lambda mask: np.bincount(host[mask], minlength=spec.count)  # noqa: E731
    placed = (host >= 0) & (created >= w0) & (created < w1)
    evicted = (host >= 0) & (reasons == EndReason.PRESSURE) & (ended >= w0) & (ended < w1)
    capacity = np.array(spec.per_host("memory_mb"), dtype=float)
    classes = {}
    if spec.classes is not None:
        cpus = np.array([np.nan if c is None else c for c in spec.per_host("cpus")], dtype=float)
        classes = {
            "class": spec.per_host("name"),
            "memory_mb": capacity,
            "cpus": cpus,
            "cpu_utilisation": _cpu_utilisation(invocations, instances, cpus, w0, w1),
        }
    return pd.DataFrame({
        "host": np.arange(spec.count),
        **({"class": classes.pop("class")} if classes else {}),
        "memory_mb": capacity,
        "mean_used_mb": used,
        "mean_busy_mb": busy,
        "mean_idle_mb": used - busy,
        "peak_used_mb": _weighted_peaks(s[inside], e[inside], mb[inside], host[inside],
                                        spec.count),
        "utilisation": used / capacity,
        "instances_placed": count(placed),
        "instances_evicted": count(evicted),
        **{c: v for c, v in classes.items() if c != "memory_mb"},
    })  # fmt: skip


def _cpu_utilisation(invocations, instances, cpus, w0, w1) -> np.ndarray:
    """Per host: the time-average share of its cores running requests over [w0, w1): with
    n requests running on c cores, min(n, c) are busy (nan where cores are not given)."""
    served = invocations[invocations["status"] == "served"]
    host = instances["host"].to_numpy()[served["instance_id"].to_numpy()]
    begin = np.clip(served["start_s"].to_numpy(), w0, w1)
    end = np.clip(served["end_s"].to_numpy(), w0, w1)
    inside = end > begin
    host, begin, end = host[inside], begin[inside], end[inside]
    # Every host's starts (+1) and ends (-1) in one sort: by host, time, ends first at a tie.
    hosts = np.concatenate([host, host])
    times = np.concatenate([begin, end])
    steps = np.concatenate([np.ones(len(begin)), -np.ones(len(end))])
    order = np.lexsort((steps, times, hosts))
    hosts, times, steps = hosts[order], times[order], steps[order]
    out = np.full(len(cpus), np.nan)
    bounds = np.searchsorted(hosts, np.arange(len(cpus) + 1))
    for h in np.flatnonzero(~np.isnan(cpus)):
        a, b = bounds[h], bounds[h + 1]
        running = np.cumsum(steps[a:b])
        busy = np.minimum(running[:-1], cpus[h]) * np.diff(times[a:b])
        out[h] = float(busy.sum()) / (cpus[h] * (w1 - w0)) if w1 > w0 else np.nan
    return out


def host_memory(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario: Scenario, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-average MB held on each host in each bin [edges[i], edges[i+1]): (used, busy),
    arrays of shape (hosts, bins). Busy: instances initialising or executing, as in
    occupancy()."""
    n_hosts = scenario.platform.hosts.count
    created, ended, host, mb = _instance_memory(instances, scenario)
    ends = np.where(np.isnan(ended), np.inf, ended)
    begin, end, iid = busy_intervals(invocations, instances, multi_request_functions(scenario))
    width = np.diff(edges)
    placed = host >= 0  # (a pre-warm that found no host held no memory)
    used = grouped_integral(created[placed], ends[placed], mb[placed], host[placed], n_hosts,
                            edges)  # fmt: skip
    on = placed[iid]
    busy = grouped_integral(begin[on], end[on], mb[iid[on]], host[iid[on]], n_hosts, edges)
    return np.diff(used, axis=1) / width, np.diff(busy, axis=1) / width


def _instance_memory(instances: pd.DataFrame, scenario: Scenario):
    from ..engine.hosts import footprint_mb

    fp = np.array([footprint_mb(f.footprint_mb()) for f in scenario.functions])
    return (
        instances["created_s"].to_numpy(),
        instances["ended_s"].to_numpy(),
        instances["host"].to_numpy(),
        fp[function_codes(instances)],
    )


def _schedule_integral(steps, w0: float, w1: float) -> float:
    """∫ configured count dt over [w0, w1)."""
    total = 0.0
    for i, st in enumerate(steps):
        begin = max(st.at_s, w0)
        end = min(steps[i + 1].at_s if i + 1 < len(steps) else w1, w1)
        if end > begin:
            total += st.count * (end - begin)
    return total


def app_report(
    stats: RowStats, scenario: Scenario, idle_s: np.ndarray, gb: np.ndarray,
    footprint_gb: np.ndarray, with_apps: bool = True,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:  # fmt: skip
    """ATC'20's view by application (a function's `app`, else the function itself): the
    distribution over apps of their cold-start percentage (`app_cold_pct`: p50, p75 (the
    paper's trade-off measure), p90 and the number of apps with served requests), and per app
    its requests, cold starts, latency percentiles and idle GB-s (configured memory and
    footprint); the latter only `with_apps` (it merges every latency anew)."""
    apps, codes = app_codes(scenario)
    n = len(apps)
    c = stats.counts

    def by_app(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    served, cold, arrived = by_app(c["served"]), by_app(c["cold_starts"]), by_app(c["invocations"])
    idle, idle_fp = by_app(idle_s * gb), by_app(idle_s * footprint_gb)
    functions = np.bincount(codes, minlength=n)
    has = served > 0
    pct = 100.0 * cold[has] / served[has]
    dist = {
        "apps": int(has.sum()),
        **{f"p{q}": float(np.percentile(pct, q)) if len(pct) else None for q in (50, 75, 90)},
    }
    if not with_apps:
        return dist, {}
    every = stats.latency_of("all")
    latency = FunctionQuantiles(n, max(FUNCTION_EXACT_LIMIT, every._held))  # exact if it is
    latency.merge(every, codes)
    lat = latency.stats()
    per_app = {
        app: {
            "functions": int(functions[a]),
            "invocations": int(arrived[a]),
            "served": int(served[a]),
            "cold_starts": int(cold[a]),
            "cold_start_rate": float(cold[a] / served[a]) if served[a] else None,
            "latency_ms": lat[a],
            "idle_gb_s": float(idle[a]),
            "idle_footprint_gb_s": float(idle_fp[a]),
        }
        for a, app in enumerate(apps)
    }
    return dist, per_app


def cold_start_percent_by_app(invocations: pd.DataFrame, scenario: Scenario) -> pd.Series:
    """Per application (a function's `app`, else the function itself): the percentage of its
    served, counted user requests that started cold. The measure of "Serverless in the Wild"
    (its trade-off plots the 75th percentile across applications)."""
    app_of = {f.name: f.app or f.name for f in scenario.functions}
    ok = (
        invocations["counted"].to_numpy()
        & (invocations["status"] == "served").to_numpy()
        & (invocations["kind"] == "user").to_numpy()
    )
    rows = invocations.loc[ok, ["function", "cold"]]
    apps = rows["function"].astype(str).map(app_of)
    return rows["cold"].groupby(apps).mean() * 100.0


def _by_function(values: np.ndarray, codes: np.ndarray, n_fn: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=n_fn).astype(float)


def _peak_alive(created, ended, codes, n_fn, w0, w1) -> np.ndarray:
    """Most instances alive at once within [w0, w1), per function then overall (last)."""
    ends = np.where(np.isnan(ended), np.inf, ended)
    peaks = np.zeros(n_fn + 1, dtype=np.int64)
    for k, (s, e) in enumerate(_groups(created, ends, codes, n_fn)):
        peaks[k] = _peak(s, e, w0, w1)
    peaks[-1] = _peak(created, ends, w0, w1)
    return peaks


def _groups(created, ends, codes, n_fn):
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_fn + 1))
    for k in range(n_fn):
        idx = order[bounds[k] : bounds[k + 1]]
        yield created[idx], ends[idx]


def _peak(start: np.ndarray, end: np.ndarray, w0: float, w1: float) -> int:
    """Peak count of half-open intervals [start, end) over [w0, w1)."""
    base = int(np.count_nonzero((start <= w0) & (end > w0)))
    s = start[(start > w0) & (start < w1)]
    e = end[(end > w0) & (end < w1)]
    if len(s) == 0:
        return base
    times = np.concatenate([e, s])
    deltas = np.concatenate([-np.ones(len(e), np.int64), np.ones(len(s), np.int64)])
    order = np.lexsort((deltas, times))  # at equal times, ends (-1) before starts
    return int(max(base, base + np.cumsum(deltas[order]).max()))


