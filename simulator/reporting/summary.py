"""The summary of a run: event logs -> summary metrics (overall and per function).

Statistics cover invocations that arrived in the stats window [warmup_s, duration_s); time
averages (mean_*_instances, *_gb_s) integrate exactly over that window. Percentiles use linear
interpolation between order statistics (numpy's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..engine.eventlog import EndReason, Kind, Outcome, Status, ThrottleReason, categories
from ..scenario.prices import MB_PER_GB
from ..scenario.schema import Scenario
from .connections import connection_summary
from .intervals import (
    _union,
    _weighted_integral,
    _weighted_peaks,
    busy_intervals,
    multi_request_functions,
    on_instances,
    overlap,
)
from .logs import function_codes
from .pricing import costs
from .quantiles import exact_stats


def summarize(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    throttles: pd.DataFrame,
    scenario: Scenario,
) -> dict[str, Any]:
    """Overall metrics plus `per_function.<name>` with the same keys.

    User requests only, unless named otherwise: `invocations` counts those that arrived in the
    window (whatever became of them), `cold_start_rate` is per served request, `throttled`
    counts sync throttles, dropped async requests and requests dropped for lack of host memory
    (`dropped_no_memory` counts those alone). Busy time counts every execution (user
    and warmer) and every init, provisioned ones included."""
    functions = [f.name for f in scenario.functions]
    n_fn = len(functions)
    w0, w1 = scenario.warmup_s, scenario.duration_s
    width = w1 - w0
    gb = np.array([f.memory_mb for f in scenario.functions], dtype=float) / MB_PER_GB

    codes = function_codes(invocations)
    counted = invocations["counted"].to_numpy()
    user = invocations["kind"].cat.codes.to_numpy() == Kind.USER
    served = invocations["status"].cat.codes.to_numpy() == Status.SERVED
    cold = invocations["cold"].to_numpy()
    pc_served = invocations["provisioned"].to_numpy()
    latency = invocations["latency_ms"].to_numpy()
    mine = counted & user  # the requests the statistics are about
    ok = mine & served

    # Busy time: from the request's start on a warm instance, or from the instance's creation
    # on a cold start (init counts as busy), to the end of execution; plus provisioned inits.
    inst_codes = function_codes(instances)
    created = instances["created_s"].to_numpy()
    iid = invocations["instance_id"].to_numpy()
    begin = invocations["start_s"].to_numpy().copy()
    ahead = instances["provisioned"].to_numpy() | instances["prewarmed"].to_numpy()
    on_demand_cold = cold & ~on_instances(ahead, iid)  # init on the request's path
    begin[on_demand_cold] = created[iid[on_demand_cold]]
    run_s = overlap(begin, invocations["end_s"].to_numpy(), w0, w1)
    shared = multi_request_functions(scenario)[function_codes(instances)]
    if shared.any():  # overlapping requests on one instance: it is busy once, not N times
        on_shared = on_instances(shared, iid)
        run_s[on_shared] = 0.0
        b, e, i = _union(begin[on_shared], invocations["end_s"].to_numpy()[on_shared],
                         iid[on_shared])  # fmt: skip
        run_s = np.concatenate([run_s, overlap(b, e, w0, w1)])
        codes_run = np.concatenate([codes, inst_codes[i]])
    else:
        codes_run = codes
    del begin
    busy_s = _by_function(run_s, codes_run, n_fn)
    del run_s, codes_run
    ready = instances["ready_s"].to_numpy()
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

    # Provisioned concurrency: spill-over (served on demand while some was configured) and
    # utilisation (∫ min(busy provisioned, configured) dt / ∫ configured dt, so surplus
    # instances finishing after a scale-down do not count).
    count = lambda mask: np.bincount(codes[mask], minlength=n_fn)  # noqa: E731
    pc_s = np.zeros(n_fn)
    pc_busy_s = np.zeros(n_fn)
    n_spill = np.zeros(n_fn, dtype=np.int64)
    dispatched = (
        invocations["arrival_s"].to_numpy() + invocations["queue_delay_ms"].to_numpy() / 1000
    )
    for k, f in enumerate(scenario.functions):
        steps = [st for st in f.provisioned_schedule() if st.at_s < w1]
        if not steps:
            continue
        at = np.array([st.at_s for st in steps])
        counts = np.array([0] + [st.count for st in steps])
        pc_s[k] = _schedule_integral(steps, w0, w1)
        rows = np.flatnonzero((codes == k) & ok & ~pc_served)
        n_spill[k] = np.count_nonzero(counts[np.searchsorted(at, dispatched[rows], side="right")])
        rows = np.flatnonzero((codes == k) & pc_served & served)
        pc_busy_s[k] = _capped_integral(
            invocations["start_s"].to_numpy()[rows], invocations["end_s"].to_numpy()[rows],
            at, counts[1:], w0, w1,
        )  # fmt: skip
    del dispatched

    n_inv, n_ok, n_cold = count(mine), count(ok), count(ok & cold)
    n_warm_pings = count(counted & ~user & served)
    n_warm_failed = count(counted & ~user & ~served)
    thr_counted = (throttles["arrival_s"].to_numpy() >= w0) & (
        throttles["kind"].cat.codes.to_numpy() == Kind.USER
    )
    thr_codes = function_codes(throttles)
    retried = throttles["outcome"].cat.codes.to_numpy() == Outcome.RETRY
    n_retry = np.bincount(thr_codes[thr_counted & retried], minlength=n_fn)
    no_memory = (throttles["reason"].cat.codes.to_numpy() == ThrottleReason.MEMORY) & ~retried
    n_no_memory = np.bincount(thr_codes[thr_counted & no_memory], minlength=n_fn)
    memory_wait = invocations["memory_wait_ms"].to_numpy()
    waited = ok & (memory_wait > 0)
    wait_stats = _latency_stats(memory_wait, codes, waited, n_fn)
    n_waited = count(waited)
    # Instance ends in the window, by reason (pressure: evicted to make room on a host).
    reasons = instances["end_reason"].cat.codes.to_numpy()
    ended_in = (ended >= w0) & (ended < w1)
    ends_by = {
        name: np.bincount(inst_codes[ended_in & (reasons == code)], minlength=n_fn)
        for name, code in zip(categories(EndReason), range(len(EndReason)), strict=True)
        if code != EndReason.ALIVE
    }
    is_async = np.array([f.invocation == "async" for f in scenario.functions])
    queue = invocations["queue_delay_ms"].to_numpy()
    lat_all = _latency_stats(latency, codes, ok, n_fn)
    lat_cold = _latency_stats(latency, codes, ok & cold, n_fn)
    lat_warm = _latency_stats(latency, codes, ok & ~cold, n_fn)
    q_stats = _latency_stats(queue, codes, ok & is_async[codes], n_fn) if is_async.any() else None
    cost = costs(invocations, instances, scenario, counted)

    def block(k: int | None) -> dict[str, Any]:
        at = -1 if k is None else k
        total = (lambda a: a.sum()) if k is None else (lambda a: a[k])  # noqa: E731
        inv, n_served, cs = int(total(n_inv)), int(total(n_ok)), int(total(n_cold))
        busy, idle = float(total(busy_s)), float(total(idle_s))
        throttled = inv - n_served
        configured_s = float(total(pc_s))
        return {
            "invocations": inv,
            "served": n_served,
            "cold_starts": cs,
            "cold_start_rate": cs / n_served if n_served else None,
            "latency_ms": lat_all[at],
            "latency_ms_cold": lat_cold[at],
            "latency_ms_warm": lat_warm[at],
            "throttled": throttled,
            "throttle_rate": throttled / inv if inv else None,
            "retries": int(total(n_retry)),
            "async_queue_delay_ms": {
                key: q_stats[at][key] if q_stats else None for key in ("p50", "p99", "max")
            },
            "dropped_no_memory": int(total(n_no_memory)),
            "memory_wait_ms": {
                "waited": int(total(n_waited)),
                **{key: wait_stats[at][key] for key in ("p50", "p99", "max")},
            },
            "instances_ended": {name: int(total(n)) for name, n in ends_by.items()},
            "instances_created": int(total(n_created)),
            "mean_instances": (busy + idle) / width,
            "mean_busy_instances": busy / width,
            "mean_idle_instances": idle / width,
            "peak_instances": int(peaks[at]),
            "idle_gb_s": float(total(idle_s * gb)),
            "busy_gb_s": float(total(busy_s * gb)),
            "provisioned_utilisation": float(total(pc_busy_s)) / configured_s
            if configured_s
            else None,
            "spillover_invocations": int(total(n_spill)),
            "warmer_invocations": int(total(n_warm_pings)),
            "warmer_throttled": int(total(n_warm_failed)),
            "cost_usd": {key: float(total(v)) for key, v in cost.items()},
        }

    out = block(None)
    out["hosts"] = host_summary(invocations, instances, scenario)
    out["connections"] = connection_summary(invocations, instances, scenario)
    out["per_function"] = {name: block(k) for k, name in enumerate(functions)}
    return out


def host_summary(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario: Scenario
) -> dict[str, Any] | None:
    """Memory on hosts over the stats window (None without platform.hosts): time-average MB
    held (used), held by busy or initialising instances (busy) and by idle ones (idle, the
    wasted memory), the highest any host held at once, and utilisation (used / capacity)
    overall and of the least and most used host."""
    spec = scenario.platform.hosts
    if spec is None:
        return None
    table = per_host(invocations, instances, scenario)
    w0, w1 = scenario.warmup_s, scenario.duration_s
    capacity = spec.count * spec.memory_mb
    used, busy = table["mean_used_mb"].sum(), table["mean_busy_mb"].sum()
    return {
        "count": spec.count,
        "memory_mb": spec.memory_mb,
        "mean_used_mb": float(used),
        "mean_busy_mb": float(busy),
        "mean_idle_mb": float(used - busy),
        "peak_used_mb": float(table["peak_used_mb"].max()),
        "utilisation": float(used / capacity),
        "busy_utilisation": float(busy / capacity),
        "utilisation_min": float(table["utilisation"].min()),
        "utilisation_max": float(table["utilisation"].max()),
        "wasted_gb_s": float((used - busy) * (w1 - w0) / MB_PER_GB),
    }


def per_host(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario: Scenario
) -> pd.DataFrame:
    """One row per host over the stats window: mean_used_mb, mean_busy_mb, mean_idle_mb,
    peak_used_mb, utilisation (mean used / memory), instances placed and evicted there."""
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
    return pd.DataFrame({
        "host": np.arange(spec.count),
        "mean_used_mb": used,
        "mean_busy_mb": busy,
        "mean_idle_mb": used - busy,
        "peak_used_mb": _weighted_peaks(s[inside], e[inside], mb[inside], host[inside],
                                        spec.count),
        "utilisation": used / spec.memory_mb,
        "instances_placed": count(placed),
        "instances_evicted": count(evicted),
    })  # fmt: skip


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
    used = np.zeros((n_hosts, len(width)))
    busy = np.zeros((n_hosts, len(width)))
    placed = host >= 0
    for h in np.unique(host[placed]):
        mine = host == h
        used[h] = np.diff(_weighted_integral(created[mine], ends[mine], mb[mine], edges)) / width
        on_h = host[iid] == h
        busy[h] = np.diff(_weighted_integral(begin[on_h], end[on_h], mb[iid[on_h]], edges)) / width
    return used, busy


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


def _capped_integral(begin, end, at, counts, w0, w1) -> float:
    """∫ over [w0, w1) of min(#{i: begin_i <= t < end_i}, configured(t)) dt, where the
    configured count is counts[j] from at[j] (0 before at[0])."""
    times = np.concatenate([begin, end, at, [w0, w1]])
    times = np.unique(np.clip(times, w0, w1))
    if len(times) < 2:
        return 0.0
    mid = (times[:-1] + times[1:]) / 2
    busy = np.searchsorted(np.sort(begin), mid, side="right") - np.searchsorted(
        np.sort(end), mid, side="right"
    )
    idx = np.searchsorted(at, mid, side="right")
    configured = np.where(idx > 0, np.concatenate([[0], counts])[idx], 0)
    return float(np.sum(np.minimum(busy, configured) * np.diff(times)))


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


def _latency_stats(latency, codes, mask, n_fn) -> list[dict[str, float | None]]:
    """Latency statistics per function, then overall (last element)."""
    lat, cd = latency[mask], codes[mask]
    order = np.lexsort((lat, cd))
    lat_sorted, cd_sorted = lat[order], cd[order]
    del order
    bounds = np.searchsorted(cd_sorted, np.arange(n_fn + 1))
    stats = [exact_stats(lat_sorted[bounds[k] : bounds[k + 1]]) for k in range(n_fn)]
    lat_sorted.sort()
    stats.append(exact_stats(lat_sorted))
    return stats


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


