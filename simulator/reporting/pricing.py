"""The billing rules: what a run costs, per function, at the scenario's prices (`prices`).

Sources (docs/sources.md): aws-pricing for the prices (arm64 provisioned concurrency is
derived, ~20% below x86: AWS's page lists it per Region, not checked here); aws-init-billing
for INIT billed on demand since 1 Aug 2025. Free tier off: capacity planning compares
marginal costs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..scenario.prices import MB_PER_GB
from .intervals import busy_intervals, overlap
from .logs import function_codes

if TYPE_CHECKING:
    from ..scenario.schema import Scenario

def costs(stats, instances: pd.DataFrame, scenario: Scenario, kept: pd.DataFrame) -> dict:
    """Cost per function (USD) of what happened in the stats window, by AWS's billing rules:
    a fee per served request; duration rounded up to the billing granularity, at the
    provisioned execution price on provisioned instances; on a cold start the billed duration
    is round_up(init + handler), and the extra over round_up(handler) is the `init` cost;
    configured provisioned concurrency per GB-s, each constant stretch rounded up to 5 min.
    Warmer pings pay all of these too, reported under `warmers` only. A pre-warmed instance's
    whole init is billed once, under `init` of the function whose policy asked for it, when
    it starts in the window, whether or not a request (or a warmer's ping) takes it; an
    instance's init once however many requests joined it. With SnapStart, a cold start bills
    its Billed Restore Duration instead of init, and `snapstart` holds the cache and restore
    fees. Functions billed per instance (busy-instance, alive-instance) pay request fees and
    `instances` (their instances' time at the instance prices) instead of compute and init.

    The requests' part comes from `stats` (a RowStats: fees, compute, init, warmers), the
    rest from the instances; `kept` holds the rows of the functions billed per busy
    instance (at least)."""
    pricing = scenario.platform.pricing
    n_fn = len(scenario.functions)
    gb = np.array([pricing.billed_gb(f.memory_mb) for f in scenario.functions], dtype=float)
    prices = [getattr(pricing, f.architecture) for f in scenario.functions]
    od_ms = np.array([p.gb_s_usd for p in prices]) * gb / 1000.0  # per billed ms
    pc_gb_s = np.array([p.provisioned_gb_s_usd for p in prices]) * gb
    g = pricing.billing_granularity_ms
    fees = stats.sums["fees_usd"]
    compute = stats.sums["compute_usd"].copy()
    warmers = stats.sums["warmers_usd"].copy()
    snap, restore_ms, bills_init = stats.snap, stats.restore_ms, stats.bills_init
    prewarmed = instances["prewarmed"].to_numpy()
    created = instances["created_s"].to_numpy()
    ahead = prewarmed & (created >= scenario.warmup_s) & (created < scenario.duration_s)
    inst_codes = function_codes(instances)[ahead]
    prewarm_ms = instances["init_ms"].to_numpy()[ahead]
    if snap.any():
        prewarm_ms = np.where(snap[inst_codes], restore_ms[inst_codes], prewarm_ms)
    prewarm_ms = _round_up(prewarm_ms, g)
    prewarm_usd = np.bincount(inst_codes, weights=prewarm_ms, minlength=n_fn) * od_ms
    init_usd = stats.sums["init_usd"] + prewarm_usd * bills_init
    by_instance = np.array([f.billing != "per-request" for f in scenario.functions])
    instance_usd = np.zeros(n_fn)
    if by_instance.any():  # no duration charge: the instances' time is billed instead
        compute[by_instance] = init_usd[by_instance] = 0.0
        warmers[by_instance] = (
            stats.counts["warmer_invocations"][by_instance] * pricing.request_usd
        )
        instance_usd = _instance_time_usd(kept, instances, scenario)
    out = {
        "requests": fees,
        "compute": compute,
        "init": init_usd + np.zeros(n_fn),
        "provisioned": _billed_provisioned(scenario) * pc_gb_s,
        "instances": instance_usd,
        "snapstart": _snapstart_usd(instances, scenario),
        "warmers": warmers,
    }
    out["total"] = sum(out.values())
    return out


def pays_init(cold: np.ndarray, iid: np.ndarray, init: np.ndarray) -> np.ndarray:
    """Per row: does its bill carry its instance's init? One cold row per instance: the one
    that waited longest (the request that started it); others joined it during its init."""
    rows = np.flatnonzero(cold)
    if not len(rows):
        return np.ones(len(cold), dtype=bool)
    order = rows[np.lexsort((-init[rows], iid[rows]))]  # per instance, longest wait first
    first = np.r_[True, iid[order][1:] != iid[order][:-1]]
    pays = np.ones(len(cold), dtype=bool)
    pays[rows] = False
    pays[order[first]] = True
    return pays


def _snapstart_usd(instances: pd.DataFrame, scenario: Scenario) -> np.ndarray:
    """Per function: SnapStart's cache over the stats window and its restores in it (Python
    and .NET; Java pays neither). The cache's 3-hour minimum per published version is not
    added: a run is one version's stretch of traffic."""
    from ..engine.eventlog import EndReason
    from ..scenario.snapstart import priced

    pricing = scenario.platform.pricing
    w0, w1 = scenario.warmup_s, scenario.duration_s
    n_fn = len(scenario.functions)
    gb = np.array([f.memory_mb for f in scenario.functions], dtype=float) / MB_PER_GB
    on = np.array([f.snapstart is not None and priced(f.runtime) for f in scenario.functions])
    if not on.any():
        return np.zeros(n_fn)
    created = instances["created_s"].to_numpy()
    ran = instances["end_reason"].cat.codes.to_numpy() != EndReason.UNPLACED
    restored = (created >= w0) & (created < w1) & ran & ~instances["provisioned"].to_numpy()
    restores = np.bincount(function_codes(instances)[restored], minlength=n_fn)
    cache = gb * (w1 - w0) * pricing.snapstart_cache_gb_s_usd
    return (cache + restores * gb * pricing.snapstart_restore_gb_usd) * on


def _instance_time_usd(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario: Scenario
) -> np.ndarray:
    """Per function: its instances' billed time in the stats window at the instance prices:
    time alive (alive-instance), or time serving at least one request, inits included, each
    busy stretch rounded up to the billing granularity (busy-instance)."""
    prices = scenario.platform.pricing.instances
    w0, w1 = scenario.warmup_s, scenario.duration_s
    n_fn = len(scenario.functions)
    per_hour = np.array([
        (f.vcpus() * prices.vcpu_hour_usd + f.memory_mb / MB_PER_GB * prices.gb_hour_usd)
        * (1.0 + prices.management_fee)
        for f in scenario.functions
    ])  # fmt: skip
    fn_of = function_codes(instances)
    alive = np.array([f.billing == "alive-instance" for f in scenario.functions])
    ended = instances["ended_s"].to_numpy()
    alive_s = overlap(
        instances["created_s"].to_numpy(), np.where(np.isnan(ended), np.inf, ended), w0, w1
    )
    seconds = np.bincount(fn_of, weights=alive_s, minlength=n_fn) * alive
    busy = np.array([f.billing == "busy-instance" for f in scenario.functions])
    if busy.any():
        begin, end, iid = busy_intervals(invocations, instances, busy)
        mine = busy[fn_of[iid]]
        # Each busy stretch billed in whole billing units (Cloud Run: 100 ms).
        spans_ms = _round_up(overlap(begin[mine], end[mine], w0, w1) * 1000.0,
                             scenario.platform.pricing.billing_granularity_ms)  # fmt: skip
        seconds += np.bincount(fn_of[iid[mine]], weights=spans_ms / 1000.0, minlength=n_fn)
    return seconds / 3600.0 * per_hour


def _round_up(ms: np.ndarray, granularity_ms: float) -> np.ndarray:
    # The tiny slack keeps float noise (e.g. 100.00000000001) from billing a whole extra unit.
    return np.ceil(ms / granularity_ms - 1e-9) * granularity_ms


def _billed_provisioned(scenario: Scenario) -> np.ndarray:
    """Billed provisioned instance-seconds per function in the stats window. Each unit is
    billed from when it is enabled to when it is disabled (or the end of the span), rounded
    up to `provisioned_rounding_s`; the part of that billed span from warmup_s on counts."""
    rounding = scenario.platform.pricing.provisioned_rounding_s
    w0, end = scenario.warmup_s, scenario.duration_s
    out = np.zeros(len(scenario.functions))
    for k, f in enumerate(scenario.functions):
        steps = [st for st in f.provisioned_schedule() if st.at_s < end]
        top = max((st.count for st in steps), default=0)
        for level in range(1, top + 1):  # unit `level` is on while count >= level
            on = None
            for st, nxt in zip(steps, [*steps[1:], None], strict=True):
                if st.count >= level and on is None:
                    on = st.at_s
                off = nxt.at_s if nxt is not None else end
                if on is not None and (nxt is None or nxt.count < level):
                    span = off - on
                    if rounding:
                        span = math.ceil(span / rounding - 1e-9) * rounding
                    out[k] += max(0.0, on + span - max(on, w0))
                    on = None
    return out
