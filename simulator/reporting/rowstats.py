"""What the summary and the figures need of the request rows, accumulated block by block.

A run's request rows arrive in blocks (all at once for a run held in memory; as the engine
hands them over for a streamed run). `RowStats.add` folds a block into per-function counts,
busy seconds, costs, latency statistics (`FunctionQuantiles`: exact while they fit, a DDSketch
beyond) and time-binned series for the figures, so nothing here grows with the request
count. What needs several rows at once (the union of an instance's overlapping requests,
an init paid once by the requests that joined it, provisioned utilisation) is computed
within a block: a streamed run keeps the rows of the functions that need it
(`functions_kept`) and adds them as one block at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..engine.eventlog import Kind, Status
from ..runtimes import CUSTOM_RUNTIMES
from ..scenario.schema import Scenario
from .intervals import _integral, _union, multi_request_functions, overlap
from .pricing import _round_up as round_up
from .pricing import pays_init
from .quantiles import FUNCTION_EXACT_LIMIT, FunctionQuantiles

#: Bins of the busy-instances figure over [0, duration_s].
OCCUPANCY_BINS = 400
#: Per-function counts (of rows in the stats window unless named otherwise).
COUNTS = (
    "rows",  # every row, in the window or not, user or warmer (the busiest functions)
    "invocations", "served", "cold_starts", "warmer_invocations", "warmer_throttled",
    "memory_waited", "spillover", "retries", "dropped_no_memory",
)  # fmt: skip
#: Per-function sums over the stats window.
SUMS = ("busy_s", "pc_busy_s", "fees_usd", "compute_usd", "init_usd", "warmers_usd")

#: facts(instance ids) -> (created_s, ahead, prewarmed, function) of those instances.
InstanceFacts = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def functions_kept(scenario: Scenario) -> np.ndarray:
    """Per function: must a streamed run keep its rows to summarise them (see the module)?
    Every function's with hosts (memory per host over time) or when instances shared across
    an app serve several requests at once."""
    fs = scenario.functions
    multi = multi_request_functions(scenario)
    if scenario.platform.hosts is not None or (
        scenario.platform.instance_scope == "app" and multi.any()
    ):
        return np.ones(len(fs), dtype=bool)
    per_request = np.array([
        any(not item.cached and item.connections for item in f.global_state) for f in fs
    ], dtype=bool)  # fmt: skip
    kept = (
        multi
        | np.array([f.billing == "busy-instance" for f in fs], dtype=bool)
        | np.array([bool(f.provisioned_schedule()) for f in fs], dtype=bool)
        | per_request
    )
    if scenario.platform.instance_scope == "app" and kept.any():
        # An app's functions run on each other's instances: keep the whole app.
        apps = np.array([f.app or f.name for f in fs], dtype=object)
        kept = np.isin(apps, apps[kept])
    return kept


class RowStats:
    """Additive statistics of request rows (see the module). `add` a block of rows (engine
    columns: codes for function, kind and status), `add_throttles` a block of throttled
    attempts, `merge` another's (a shard's)."""

    def __init__(self, scenario: Scenario, exact_limit: int = FUNCTION_EXACT_LIMIT):
        from .plots import time_bins

        fs = scenario.functions
        n = self.functions = len(fs)
        self.w0, self.w1 = scenario.warmup_s, scenario.duration_s
        self.counts = {name: np.zeros(n, dtype=np.int64) for name in COUNTS}
        self.sums = {name: np.zeros(n) for name in SUMS}
        self.is_async = np.array([f.invocation == "async" for f in fs], dtype=bool)
        # (the latency of all requests is the union of cold and warm: latency_of("all"))
        names = ["cold", "warm", "memory_wait"]
        #: Requests may queue behind busy instances (routing): their waits are summarised.
        self.instance_waits = scenario.platform.routing.routes()
        if self.instance_waits:
            names.append("instance_wait")
            self.counts["instance_waited"] = np.zeros(n, dtype=np.int64)
        #: Functions whose requests call others (chains start there): their requests that
        #: came from outside, end to end.
        self.entries = np.array([bool(f.calls) for f in fs], dtype=bool)
        if self.entries.any():
            names.append("chain")
            for name in ("chain_roots", "chain_cold_roots"):
                self.counts[name] = np.zeros(n, dtype=np.int64)
        if self.is_async.any():  # queueing, and the figure's latency from dispatch
            names += ["queue", "plot_cold", "plot_warm"]
        self.latency = {name: FunctionQuantiles(n, exact_limit) for name in names}
        self.cold_width, self.cold_per = time_bins(self.w1)
        self.cold_bins = np.zeros(max(1, int(np.ceil(self.w1 / self.cold_width))), np.int64)
        self.edges = np.linspace(0.0, self.w1, OCCUPANCY_BINS + 1)
        self.busy_bins = np.zeros(OCCUPANCY_BINS)  # busy instance-seconds per bin
        self.pc_busy_bins = np.zeros(OCCUPANCY_BINS)  # of them, provisioned instances'
        self.multi = multi_request_functions(scenario)
        self._steps = []  # (function, step times, counts from 0) of provisioned schedules
        for k, f in enumerate(fs):
            steps = [st for st in f.provisioned_schedule() if st.at_s < self.w1]
            if steps:
                at = np.array([st.at_s for st in steps])
                self._steps.append((k, at, np.array([0] + [st.count for st in steps])))
        self._pricing(scenario)

    def _pricing(self, scenario: Scenario) -> None:
        pricing = scenario.platform.pricing
        fs = scenario.functions
        gb = np.array([pricing.billed_gb(f.memory_mb) for f in fs], dtype=float)
        prices = [getattr(pricing, f.architecture) for f in fs]
        self.od_ms = np.array([p.gb_s_usd for p in prices]) * gb / 1000.0  # per billed ms
        self.pc_ms = np.array([p.provisioned_exec_gb_s_usd for p in prices]) * gb / 1000.0
        self.request_usd = pricing.request_usd
        self.granularity_ms = pricing.billing_granularity_ms
        self.min_billed_ms = pricing.min_billed_ms
        # INIT is billed on demand since Aug 2025; custom runtimes (provided.*) always paid it.
        # SnapStart: a cold start's Billed Restore Duration, billed whatever bill_init says.
        self.restore_ms = np.array([
            f.snapstart.billed_ms(f.global_state) if f.snapstart is not None else np.nan
            for f in fs
        ])  # fmt: skip
        self.snap = ~np.isnan(self.restore_ms)
        self.bills_init = (
            np.array([pricing.bill_init or f.runtime in CUSTOM_RUNTIMES for f in fs]) | self.snap
        )

    def latency_of(self, name: str) -> FunctionQuantiles:
        """A latency statistic by name: all (cold and warm together), cold, warm,
        memory_wait; with async functions queue, plot_cold, plot_warm."""
        if name == "all":
            return FunctionQuantiles.union(self.latency["cold"], self.latency["warm"])
        return self.latency[name]

    @property
    def method(self) -> str:
        """How the latency percentiles were computed: exact, or ddsketch (1 % relative)."""
        sketched = any(q.method != "exact" for q in self.latency.values())
        return "ddsketch" if sketched else "exact"

    # -- adding -----------------------------------------------------------------------------

    def add(self, rows: dict[str, np.ndarray], facts: InstanceFacts) -> None:
        """Fold in a block of request rows (see the module for what a block must hold)."""
        n, w0, w1 = self.functions, self.w0, self.w1
        codes = rows["function"].astype(np.int64)
        if not len(codes):
            return
        arrival, start, end = rows["arrival_s"], rows["start_s"], rows["end_s"]
        iid = rows["instance_id"].astype(np.int64)
        counted = arrival >= w0
        user = rows["kind"] == Kind.USER
        served = rows["status"] == Status.SERVED
        cold, pc_served = rows["cold"], rows["provisioned"]
        latency = (end - arrival) * 1000.0
        mine = counted & user  # the requests the statistics are about
        ok = mine & served
        count = lambda mask: np.bincount(codes[mask], minlength=n)  # noqa: E731
        c = self.counts
        c["rows"] += np.bincount(codes, minlength=n)

        # Busy time: from the request's start on a warm instance, or from the instance's
        # creation on an on-demand cold start (init counts as busy), to the end of execution.
        cold_rows = np.flatnonzero(cold)
        created, ahead, prewarmed, _ = facts(iid[cold_rows])
        begin = start.copy()
        on_demand = cold_rows[~ahead]  # init on the request's path
        begin[on_demand] = created[~ahead]
        run_s = overlap(begin, end, w0, w1)
        # (the instance's function decides: under instance_scope app, not always the row's)
        shared = np.zeros(len(codes), dtype=bool)
        if self.multi.any():
            on = np.flatnonzero(iid >= 0)
            shared[on] = self.multi[facts(iid[on])[3]]
        codes_run = codes
        on_pc = pc_served.astype(bool)  # busy time of provisioned instances, for the figure
        if shared.any():  # overlapping requests on one instance: it is busy once, not N times
            run_s[shared] = 0.0
            b, e, i = _union(begin[shared], end[shared], iid[shared])
            run_s = np.concatenate([run_s, overlap(b, e, w0, w1)])
            codes_run = np.concatenate([codes, facts(i)[3]])
            begin = np.concatenate([np.where(shared, np.nan, begin), b])
            end = np.concatenate([end, e])
            on_pc = np.concatenate([on_pc, np.isin(i, iid[shared & on_pc])])
        self.sums["busy_s"] += np.bincount(codes_run, weights=run_s, minlength=n).astype(float)
        del run_s, codes_run
        ran = np.isfinite(begin)
        self.busy_bins += np.diff(_integral(begin[ran], end[ran], self.edges))
        pc = ran & on_pc
        if pc.any():
            self.pc_busy_bins += np.diff(_integral(begin[pc], end[pc], self.edges))
        del begin, ran, pc
        t = arrival[cold_rows]
        t = t[t < len(self.cold_bins) * self.cold_width]
        self.cold_bins += np.bincount((t // self.cold_width).astype(np.int64),
                                      minlength=len(self.cold_bins))  # fmt: skip

        # Provisioned concurrency: spill-over (served on demand while some was configured) and
        # utilisation (∫ min(busy provisioned, configured) dt / ∫ configured dt).
        if self._steps:
            present = np.bincount(codes, minlength=n) > 0
            dispatched = arrival + rows["queue_delay_ms"] / 1000
            for k, at, counts in self._steps:
                if not present[k]:
                    continue
                spill = np.flatnonzero((codes == k) & ok & ~pc_served)
                c["spillover"][k] += np.count_nonzero(
                    counts[np.searchsorted(at, dispatched[spill], side="right")]
                )
                busy = np.flatnonzero((codes == k) & pc_served & served)
                self.sums["pc_busy_s"][k] += _capped_integral(
                    start[busy], end[busy], at, counts[1:], w0, w1
                )

        c["invocations"] += count(mine)
        c["served"] += count(ok)
        c["cold_starts"] += count(ok & cold)
        c["warmer_invocations"] += count(counted & ~user & served)
        c["warmer_throttled"] += count(counted & ~user & ~served)
        memory_wait = rows["memory_wait_ms"]
        waited = ok & (memory_wait > 0)
        c["memory_waited"] += count(waited)
        lat = self.latency
        lat["cold"].add(codes[ok & cold], latency[ok & cold])
        lat["warm"].add(codes[ok & ~cold], latency[ok & ~cold])
        lat["memory_wait"].add(codes[waited], memory_wait[waited])
        if "chain" in lat:  # requests of calling functions that came from outside
            roots = ok & (rows["parent_request_id"] < 0) & self.entries[codes]
            c["chain_roots"] += count(roots)
            c["chain_cold_roots"] += count(roots & rows["chain_cold"])
            lat["chain"].add(codes[roots], latency[roots])
        if self.instance_waits:
            instance_wait = rows["instance_wait_ms"]
            waited = ok & (instance_wait > 0)
            c["instance_waited"] += count(waited)
            lat["instance_wait"].add(codes[waited], instance_wait[waited])
        if "queue" in lat:
            queue = rows["queue_delay_ms"]
            queued = ok & self.is_async[codes]
            lat["queue"].add(codes[queued], queue[queued])
            dispatch = latency - queue
            lat["plot_cold"].add(codes[ok & cold], dispatch[ok & cold])
            lat["plot_warm"].add(codes[ok & ~cold], dispatch[ok & ~cold])
        self._add_costs(rows, codes, iid, counted & served, user, cold_rows, prewarmed)

    def _add_costs(self, rows, codes, iid, served, user, cold_rows, prewarmed) -> None:
        """By AWS's billing rules (see pricing.costs): request fees, billed duration (at the
        provisioned execution price on provisioned instances), and on a cold start the init
        billed on top (round_up(init + handler) - round_up(handler)): once per instance, not
        for pre-warmed ones (billed with the instance)."""
        n, g = self.functions, self.granularity_ms
        on_pc = rows["provisioned"]
        dur, init = rows["duration_ms"], rows["init_ms"]
        cold = np.zeros(len(codes), dtype=bool)
        cold[cold_rows[~prewarmed]] = True
        if self.multi.any():
            cold &= pays_init(cold, iid, init)

        def billed_ms(mask: np.ndarray) -> np.ndarray:  # per function
            ms = round_up(dur[mask], g)
            if self.min_billed_ms:
                ms = np.maximum(ms, self.min_billed_ms)
            return np.bincount(codes[mask], weights=ms, minlength=n)

        def init_ms(mask: np.ndarray) -> np.ndarray:  # the extra billed for init, per function
            at = np.flatnonzero(mask & cold)
            paid = init[at]
            if self.snap.any():
                paid = np.where(self.snap[codes[at]], self.restore_ms[codes[at]], paid)
            low = self.min_billed_ms  # an execution is billed at least this, init included
            with_init = np.maximum(round_up(dur[at] + paid, g), low)
            extra = with_init - np.maximum(round_up(dur[at], g), low)
            return np.bincount(codes[at], weights=extra, minlength=n) * self.bills_init

        def group(kind: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            mask = served & kind
            fees = np.bincount(codes[mask], minlength=n) * self.request_usd
            compute = billed_ms(mask & ~on_pc) * self.od_ms + billed_ms(mask & on_pc) * self.pc_ms
            return fees, compute, init_ms(mask & ~on_pc) * self.od_ms

        fees, compute, init_usd = group(user)
        s = self.sums
        s["fees_usd"] += fees
        s["compute_usd"] += compute
        s["init_usd"] += init_usd
        s["warmers_usd"] += sum(group(~user)) + np.zeros(n)

    def add_throttles(self, throttles: dict[str, np.ndarray]) -> None:
        """Fold in a block of throttled attempts (engine columns)."""
        from ..engine.eventlog import Outcome, ThrottleReason

        codes = throttles["function"].astype(np.int64)
        if not len(codes):
            return
        counted = (throttles["arrival_s"] >= self.w0) & (throttles["kind"] == Kind.USER)
        retried = throttles["outcome"] == Outcome.RETRY
        no_memory = (throttles["reason"] == ThrottleReason.MEMORY) & ~retried
        n = self.functions
        self.counts["retries"] += np.bincount(codes[counted & retried], minlength=n)
        self.counts["dropped_no_memory"] += np.bincount(codes[counted & no_memory], minlength=n)

    def merge(self, other: RowStats, functions: np.ndarray | None = None) -> None:
        """Add another's statistics; `functions`: this one's index of each of the other's
        functions (a shard's), else the same functions."""
        at = np.arange(other.functions) if functions is None else np.asarray(functions)
        for name in self.counts:
            if name in other.counts:  # (a shard without calls has no chain counts)
                self.counts[name][at] += other.counts[name]
        for name in SUMS:
            self.sums[name][at] += other.sums[name]
        for name, q in self.latency.items():
            if name in other.latency:
                q.merge(other.latency[name], at)
            elif name.startswith("plot_"):  # no async function there: from dispatch is all
                q.merge(other.latency[name.removeprefix("plot_")], at)
        self.cold_bins += other.cold_bins
        self.busy_bins += other.busy_bins
        self.pc_busy_bins += other.pc_busy_bins


def frame_rows(invocations: pd.DataFrame) -> dict[str, np.ndarray]:
    """A request log (DataFrame) as the engine's columns, for RowStats.add."""
    cols = ("arrival_s", "start_s", "end_s", "instance_id", "cold", "provisioned", "init_ms",
            "duration_ms", "queue_delay_ms", "memory_wait_ms")  # fmt: skip
    rows = {c: invocations[c].to_numpy() for c in cols}
    for c in ("instance_wait_ms", "parent_request_id", "chain_cold"):
        if c in invocations:
            rows[c] = invocations[c].to_numpy()
    for c in ("function", "kind", "status"):
        rows[c] = invocations[c].cat.codes.to_numpy()
    return rows


def throttle_rows(throttles: pd.DataFrame) -> dict[str, np.ndarray]:
    """A throttle log (DataFrame) as the engine's columns, for RowStats.add_throttles."""
    rows = {"arrival_s": throttles["arrival_s"].to_numpy()}
    for c in ("function", "kind", "reason", "outcome"):
        rows[c] = throttles[c].cat.codes.to_numpy()
    return rows


def frame_facts(instances: pd.DataFrame) -> InstanceFacts:
    """InstanceFacts from an instance log."""
    created = instances["created_s"].to_numpy()
    prewarmed = instances["prewarmed"].to_numpy()
    ahead = instances["provisioned"].to_numpy() | prewarmed
    fn = instances["function"].cat.codes.to_numpy()
    return lambda iid: (created[iid], ahead[iid], prewarmed[iid], fn[iid])


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
