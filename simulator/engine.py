"""The SimPy engine: arrivals, cold and warm starts, limits, provisioned concurrency, warmers.

SimPy processes drive what happens at given times: one per function walks its arrival times,
one per provisioned-concurrency schedule, one per warmer. Everything else is computed rather
than scheduled. A request's end time is known when it starts, so finished instances are moved
to their idle pools lazily (a heap of end times, drained up to the current time before any
decision); an idle instance's eviction time is decided by the keep-alive policy when it goes
idle and logged then; pools drop expired entries when they meet them. Throttled asynchronous
requests are the only per-request events: a retry timer each.
"""

from __future__ import annotations

import heapq
import itertools
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import simpy

from .rng import Buffered, stream
from .scenario import Scenario
from .selection import make_pool

#: Codes of the categorical columns (the order is the code).
END_REASONS = ("idle", "lifetime", "deprovisioned", "alive")
STATUSES = ("served", "throttled", "dropped")
KINDS = ("user", "warmer")
THROTTLE_REASONS = ("reserved", "account", "scaling")
OUTCOMES = ("retry", "throttled", "dropped")
IDLE, LIFETIME, DEPROVISIONED, ALIVE = range(4)
SERVED, THROTTLED, DROPPED = range(3)
USER, WARMER = range(2)
RESERVED, ACCOUNT, SCALING = range(3)
RETRY = 0

#: Invocation columns written for every request...
DENSE_TYPES = {
    "function": "i", "request_id": "i", "arrival_s": "d", "start_s": "d", "end_s": "d",
    "instance_id": "i", "duration_ms": "d",
}  # fmt: skip
#: ...and the rare facts, as (row, ...) entries; the rest of such a column is its default.
SPARSE_TYPES = {
    "cold": {"row": "q"},
    "provisioned": {"row": "q"},
    "warmer": {"row": "q"},
    "retried": {"row": "q", "status": "b", "attempts": "i", "queue_delay_ms": "d"},
}
THROTTLE_TYPES = {
    "function": "i", "kind": "b", "request_id": "i", "arrival_s": "d", "time_s": "d",
    "attempt": "i", "reason": "b", "outcome": "b",
}  # fmt: skip


@dataclass
class EventLog:
    """What the engine produces: columns of numpy arrays."""

    functions: list[str]
    invocations: dict[str, np.ndarray]  # one row per request (served, throttled or dropped)
    instances: dict[str, np.ndarray]  # one row per instance
    throttles: dict[str, np.ndarray]  # one row per throttled attempt
    horizon_s: float  # when the last request finished (>= duration_s)
    events: int  # SimPy events processed


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        progress: Callable[[float], None] | None = None,
    ):
        self.scenario = sc = scenario
        self.seed = sc.seed if seed is None else seed
        self.progress = progress
        self.env = simpy.Environment()
        platform = sc.platform
        n = len(sc.functions)
        # Instance columns (instances are few next to invocations: Python lists are fine).
        self._inst_fn: list[int] = []  # the function that created it
        self._inst_user: list[int] = []  # the function of its current (or last) request
        self._inst_created: list[float] = []
        self._inst_init_ms: list[float] = []
        self._inst_pc: list[bool] = []
        self._inst_retire: list[float] = []  # created (ready, if provisioned) + max lifetime
        self._inst_expiry: list[float] = []  # end of its current idle period, or its end
        self._inst_reason: list[int] = []  # why it ends at expiry
        self._busy: list[tuple[float, int]] = []  # (end_s, instance_id) of busy instances
        # Per function. Idle pools are per function, or per application with instance_scope
        # app (an app's functions share warm instances, as on Azure Functions).
        self._pools = []
        by_app: dict[str, object] = {}
        for f in sc.functions:
            app = f.app if platform.instance_scope == "app" else None
            if app is not None and app in by_app:
                self._pools.append(by_app[app])
                continue
            pool = make_pool(
                platform.idle_selection, self._inst_expiry, self._stream(f, "selection")
            )
            if app is not None:
                by_app[app] = pool
            self._pools.append(pool)
        self._keep_alive = [
            platform.keep_alive.build(self._stream(f, "keep_alive")) for f in sc.functions
        ]
        self._init = [self._sampler(f.init, self._stream(f, "init")) for f in sc.functions]
        life = platform.max_lifetime_s
        if life is None:
            self._lifetime = [lambda: math.inf] * n
        elif isinstance(life, float | int):
            self._lifetime = [lambda: float(life)] * n
        else:
            self._lifetime = [
                Buffered(partial(life.sample, self._stream(f, "lifetime"))).next
                for f in sc.functions
            ]
        self._pc_heap: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self._pc_target = [0] * n
        self._pc_excess = [0] * n  # provisioned instances to retire when they next go idle
        self._od_busy = [0] * n  # busy on-demand instances of functions with reserved concurrency
        self._reserved = [f.reserved_concurrency for f in sc.functions]
        limit = platform.concurrency_limit
        reserved = sum(r or 0 for r in self._reserved)
        self._unreserved_cap = math.inf if limit is None else limit - reserved
        self._used = [0]  # busy on-demand + configured provisioned of unreserved functions
        scaling = platform.scaling
        self._bucket_cap = math.inf if scaling is None else float(scaling.instances)
        self._bucket_rate = math.inf if scaling is None else scaling.instances / scaling.per_s
        self._tokens = [self._bucket_cap] * n
        self._token_t = [0.0] * n
        self._retry = platform.async_retry
        self._inv = {c: array(t) for c, t in DENSE_TYPES.items()}
        self._sparse = {
            name: {c: array(t) for c, t in cols.items()} for name, cols in SPARSE_TYPES.items()
        }
        self._rid = itertools.count()
        self._thr = {c: array(t) for c, t in THROTTLE_TYPES.items()}
        self._events = 0
        self._release = self._releaser()
        self._dispatch = self._dispatcher()

    def _stream(self, f, purpose: str) -> np.random.Generator:
        return stream(self.seed, f.name, purpose)

    @staticmethod
    def _sampler(dist, rng) -> Callable[[], float]:
        return Buffered(partial(dist.sample, rng)).next

    # -- public -----------------------------------------------------------------------------

    def run(self) -> EventLog:
        env = self.env
        for k, f in enumerate(self.scenario.functions):
            env.process(self._arrivals(k, f))
            if f.provisioned_schedule():
                env.process(self._provisioning(k, f))
            if f.warmer is not None:
                env.process(self._warmer(k, f))
        if self.progress is not None:
            env.process(self._ticker())
        env.run()
        self._release(math.inf)
        return self._event_log()

    # -- processes --------------------------------------------------------------------------

    def _arrivals(self, k: int, f):
        """The function's requests, in arrival order."""
        self._events += 2  # the process's start and end
        env, timeout, dispatch, next_rid = (
            self.env,
            self.env.timeout,
            self._dispatch,
            self._rid.__next__,
        )
        duration_rng = self._stream(f, "duration")
        factor = f.duration_factor()  # handler CPU follows memory, if asked
        batches = f.arrivals.batches_with_durations(
            self._stream(f, "arrivals"), self.scenario.duration_s
        )
        for times, durations in batches:
            if durations is None:
                durations = f.duration.sample(duration_rng, len(times))
            if factor != 1.0:
                durations = durations * factor
            self._events += len(times)
            for t, d_ms in zip(times.tolist(), durations.tolist(), strict=True):
                delay = t - env.now
                yield timeout(delay if delay > 0.0 else 0.0)
                dispatch(k, t, d_ms, t, 1, USER, next_rid())

    def _provisioning(self, k: int, f):
        """Apply the provisioned-concurrency schedule. Steps at or after duration_s are not
        applied: the configuration is what it was at the end of the span."""
        self._events += 2
        for step in f.provisioned_schedule():
            if step.at_s >= self.scenario.duration_s:
                break
            delay = step.at_s - self.env.now
            yield self.env.timeout(delay if delay > 0.0 else 0.0)
            self._events += 1
            self._set_provisioned(k, step.count, step.at_s)

    def _warmer(self, k: int, f):
        """Scheduled pings: `concurrency` simultaneous short invocations every interval_s."""
        self._events += 2
        w = f.warmer
        n = max(0, math.ceil((self.scenario.duration_s - w.offset_s) / w.interval_s))
        for j in range(n):
            t = w.offset_s + j * w.interval_s
            delay = t - self.env.now
            yield self.env.timeout(delay if delay > 0.0 else 0.0)
            self._events += 1
            for _ in range(w.concurrency):
                self._dispatch(k, t, w.duration_ms, t, 1, WARMER, next(self._rid))

    def _ticker(self):
        """Progress reports; not counted in `events`, which must not depend on them."""
        for i in range(1, 101):
            yield self.env.timeout(self.scenario.duration_s / 100)
            self.progress(i / 100)

    # -- requests ---------------------------------------------------------------------------

    def _dispatcher(self) -> Callable[..., None]:
        """dispatch(k, t, d_ms, arrival, attempt, kind, rid) serves a request at time t (its
        arrival, or a retry): on an idle provisioned instance, else on an idle on-demand one,
        else on a new one; or throttles it. A closure over the engine's state, because it runs
        once per request and locals are the cheapest state Python has."""
        busy, pc_heap, reserved_of = self._busy, self._pc_heap, self._reserved
        take = [pool.take for pool in self._pools]
        od_busy, pc_target, pc_excess = self._od_busy, self._pc_target, self._pc_excess
        used, cap = self._used, self._unreserved_cap
        init_of, user_of = self._inst_init_ms, self._inst_user
        release, pc_take, take_token = self._release, self._pc_take, self._take_token
        new_instance, throttle, heappush = self._new_instance, self._throttle, heapq.heappush
        inv, sparse, row = self._inv, self._sparse, self._row
        a_fn, a_rid, a_arr, a_start, a_end, a_iid, a_dur = (inv[c].append for c in DENSE_TYPES)
        a_cold, a_pc, a_warmer = (
            sparse[c]["row"].append for c in ("cold", "provisioned", "warmer")
        )

        def dispatch(k, t, d_ms, arrival, attempt, kind, rid):
            if busy and busy[0][0] <= t:
                release(t)
            iid = pc_take(k, t) if pc_heap[k] else -1
            if iid >= 0:
                a_pc(row())
                start = t
            else:
                reserved = reserved_of[k]
                if reserved is None:
                    if used[0] >= cap:
                        return throttle(k, t, d_ms, arrival, attempt, kind, rid, ACCOUNT)
                elif od_busy[k] + pc_target[k] + pc_excess[k] >= reserved:
                    return throttle(k, t, d_ms, arrival, attempt, kind, rid, RESERVED)
                iid = take[k](t)
                if iid < 0:  # a new instance: the request waits for its init, paid once
                    if not take_token(k, t):
                        return throttle(k, t, d_ms, arrival, attempt, kind, rid, SCALING)
                    iid = new_instance(k, t, False)
                    a_cold(row())
                    start = t + init_of[iid] / 1000.0
                else:
                    start = t
                    user_of[iid] = k  # with instance_scope app, maybe another function's
                if reserved is None:
                    used[0] += 1
                else:
                    od_busy[k] += 1
            end = start + d_ms / 1000.0
            heappush(busy, (end, iid))
            if kind != USER:
                a_warmer(row())
            if attempt != 1:
                self._note_retried(SERVED, attempt, t - arrival)
            a_fn(k)
            a_rid(rid)
            a_arr(arrival)
            a_start(start)
            a_end(end)
            a_iid(iid)
            a_dur(d_ms)

        return dispatch

    def _row(self) -> int:
        """Index of the invocation row about to be written."""
        return len(self._inv["arrival_s"])

    def _note_retried(self, status: int, attempts: int, waited_s: float) -> None:
        retried = self._sparse["retried"]
        for col, value in zip(
            retried.values(), (self._row(), status, attempts, waited_s * 1000.0), strict=True
        ):
            col.append(value)

    def _throttle(self, k, t, d_ms, arrival, attempt, kind, rid, reason) -> None:
        f = self.scenario.functions[k]
        if f.invocation == "async":
            doublings = min(attempt - 1, 60)  # the cap is reached long before; no overflow
            delay = min(self._retry.first_delay_s * 2.0**doublings, self._retry.max_delay_s)
            retry_at = t + delay
            if retry_at - arrival <= f.max_event_age_s:
                self._log_throttle(k, kind, rid, arrival, t, attempt, reason, RETRY)
                ev = self.env.timeout(delay)
                ev.callbacks.append(
                    lambda _ev: self._dispatch(k, retry_at, d_ms, arrival, attempt + 1, kind, rid)
                )
                self._events += 1
                return
            outcome = DROPPED
        else:
            outcome = THROTTLED
        self._log_throttle(k, kind, rid, arrival, t, attempt, reason, outcome)
        if kind != USER:
            self._sparse["warmer"]["row"].append(self._row())
        self._note_retried(outcome, attempt, t - arrival)
        nan = math.nan
        for col, value in zip(
            self._inv.values(), (k, rid, arrival, nan, nan, -1, d_ms), strict=True
        ):
            col.append(value)

    def _log_throttle(self, k, kind, rid, arrival, t, attempt, reason, outcome) -> None:
        thr = self._thr
        for col, value in (("function", k), ("kind", kind), ("request_id", rid),
                           ("arrival_s", arrival), ("time_s", t), ("attempt", attempt),
                           ("reason", reason), ("outcome", outcome)):  # fmt: skip
            thr[col].append(value)

    def _take_token(self, k: int, t: float) -> bool:
        """The scaling-rate token bucket: refilled continuously, one token per new instance."""
        cap = self._bucket_cap
        if cap == math.inf:
            return True
        tokens = min(cap, self._tokens[k] + (t - self._token_t[k]) * self._bucket_rate)
        self._token_t[k] = t
        if tokens < 1.0 - 1e-9:  # slack for float noise in the refill (0.29 s x 100/s)
            self._tokens[k] = tokens
            return False
        self._tokens[k] = max(0.0, tokens - 1.0)
        return True

    # -- instance lifecycle -----------------------------------------------------------------

    def _new_instance(
        self, k: int, created: float, provisioned: bool, ready: float | None = None
    ) -> int:
        """Log a new instance; a provisioned one may be created ahead of `ready`."""
        iid = len(self._inst_created)
        init_ms = self._init[k]()
        if ready is not None:
            created = ready - init_ms / 1000.0
        self._inst_fn.append(k)
        self._inst_user.append(k)
        self._inst_created.append(created)
        self._inst_init_ms.append(init_ms)
        self._inst_pc.append(provisioned)
        life = self._lifetime[k]()
        born = created + init_ms / 1000.0 if provisioned else created
        self._inst_retire.append(born + life)
        self._inst_expiry.append(math.inf)
        self._inst_reason.append(ALIVE)
        return iid

    def _releaser(self) -> Callable[[float], None]:
        """release(now): every instance whose request (or provisioned init) ended by `now`
        goes idle, or is retired: past its lifetime, or surplus to a lowered provisioned
        count. A closure, like dispatch: it runs about once per request."""
        busy, retire_at, expiry, reason = (
            self._busy,
            self._inst_retire,
            self._inst_expiry,
            self._inst_reason,
        )
        fn_of, user_of, is_pc = self._inst_fn, self._inst_user, self._inst_pc
        od_busy, used = self._od_busy, self._used
        unreserved = [r is None for r in self._reserved]
        expiry_of = [policy.expiry_s for policy in self._keep_alive]
        put = [pool.put for pool in self._pools]
        pc_idle, heappop = self._pc_idle, heapq.heappop

        def release(now):
            while busy and busy[0][0] <= now:
                end, iid = heappop(busy)
                k = fn_of[iid]
                if is_pc[iid]:
                    pc_idle(k, iid, end)
                    continue
                u = user_of[iid]  # the concurrency it held was its request's function's
                if unreserved[u]:
                    used[0] -= 1
                else:
                    od_busy[u] -= 1
                retire = retire_at[iid]
                if end >= retire:
                    expiry[iid], reason[iid] = end, LIFETIME
                    continue
                evict_at = expiry_of[k](end)
                if evict_at > retire:
                    expiry[iid], reason[iid] = retire, LIFETIME
                else:
                    expiry[iid], reason[iid] = evict_at, IDLE
                put[k](iid, end)

        return release

    # -- provisioned concurrency ------------------------------------------------------------

    def _set_provisioned(self, k: int, count: int, t: float) -> None:
        """Configured provisioned instances hold concurrency; surplus ones keep holding it
        until they retire (busy ones finish their request first)."""
        if self._busy and self._busy[0][0] <= t:
            self._release(t)
        delta = count - self._pc_target[k]
        self._pc_target[k] = count
        if delta > 0:
            kept = min(delta, self._pc_excess[k])  # surplus not yet gone: keep it instead
            self._pc_excess[k] -= kept
            self._hold(k, delta - kept)
            for _ in range(delta - kept):  # new ones initialise now, ready after init
                iid = self._new_instance(k, t, True)
                ready = self._inst_created[iid] + self._inst_init_ms[iid] / 1000.0
                heapq.heappush(self._busy, (ready, iid))
        elif delta < 0:
            surplus = -delta
            while surplus:
                iid = self._pc_take(k, t, replace=False)
                if iid < 0:
                    break
                self._inst_expiry[iid], self._inst_reason[iid] = t, DEPROVISIONED
                surplus -= 1
            self._hold(k, -(-delta - surplus))
            self._pc_excess[k] += surplus  # busy or initialising ones go when they free up

    def _hold(self, k: int, units: int) -> None:
        """Provisioned instances take (or give back) units of the unreserved pool."""
        if self._reserved[k] is None:
            self._used[0] += units

    def _retire_surplus(self, k: int) -> None:
        self._pc_excess[k] -= 1
        self._hold(k, -1)

    def _pc_idle(self, k: int, iid: int, end: float) -> None:
        """A provisioned instance is free at `end`: retire it if surplus; replace it if past
        its lifetime (the replacement initialised ahead, ready now); else keep it idle."""
        if self._pc_excess[k]:
            self._retire_surplus(k)
            self._inst_expiry[iid], self._inst_reason[iid] = end, DEPROVISIONED
            return
        if end >= self._inst_retire[iid]:
            self._inst_expiry[iid], self._inst_reason[iid] = end, LIFETIME
            iid = self._new_instance(k, end, True, ready=end)
        self._inst_expiry[iid], self._inst_reason[iid] = self._inst_retire[iid], LIFETIME
        heapq.heappush(self._pc_heap[k], (-iid, iid))

    def _pc_take(self, k: int, t: float, replace: bool = True) -> int:
        """The newest idle provisioned instance. Those retired while idle are replaced by a
        successor ready at their retirement time (unless surplus, or `replace` is off: then
        they are simply gone)."""
        heap, expiry = self._pc_heap[k], self._inst_expiry
        while heap:
            iid = heapq.heappop(heap)[1]
            if t < expiry[iid]:
                return iid
            if self._pc_excess[k]:  # retired, and no longer wanted
                self._retire_surplus(k)
                continue
            if not replace:
                continue
            at = expiry[iid]
            new = self._new_instance(k, at, True, ready=at)
            expiry[new], self._inst_reason[new] = self._inst_retire[new], LIFETIME
            heapq.heappush(heap, (-new, new))
        return -1

    def _pc_finish(self, horizon: float) -> None:
        """Replace idle provisioned instances retired before the horizon, for the log."""
        for k, heap in enumerate(self._pc_heap):
            for _, iid in list(heap):
                while self._inst_expiry[iid] <= horizon:
                    at = self._inst_expiry[iid]
                    iid = self._new_instance(k, at, True, ready=at)
                    self._inst_expiry[iid], self._inst_reason[iid] = (
                        self._inst_retire[iid],
                        LIFETIME,
                    )

    # -- output -----------------------------------------------------------------------------

    def _event_log(self) -> EventLog:
        inv = {c: np.frombuffer(col, dtype=col.typecode) for c, col in self._inv.items()}
        n = len(inv["arrival_s"])
        sparse = {
            name: {c: np.frombuffer(col, dtype=col.typecode) for c, col in cols.items()}
            for name, cols in self._sparse.items()
        }
        for name in ("cold", "provisioned"):
            inv[name] = np.zeros(n, dtype=bool)
            inv[name][sparse[name]["row"]] = True
        inv["kind"] = np.full(n, USER, dtype=np.int8)
        inv["kind"][sparse["warmer"]["row"]] = WARMER
        retried = sparse["retried"]
        inv["status"] = np.full(n, SERVED, dtype=np.int8)
        inv["status"][retried["row"]] = retried["status"]
        inv["attempts"] = np.ones(n, dtype=np.int32)
        inv["attempts"][retried["row"]] = retried["attempts"]
        inv["queue_delay_ms"] = np.zeros(n)
        inv["queue_delay_ms"][retried["row"]] = retried["queue_delay_ms"]
        inv["init_ms"] = np.zeros(n)
        cold_rows = sparse["cold"]["row"]
        inv["init_ms"][cold_rows] = np.asarray(self._inst_init_ms)[inv["instance_id"][cold_rows]]
        if n and (np.diff(inv["request_id"]) < 0).any():
            order = np.argsort(inv["request_id"], kind="stable")  # retried rows came late
            inv = {c: v[order] for c, v in inv.items()}
        ends = inv["end_s"][np.isfinite(inv["end_s"])]
        horizon = max(self.scenario.duration_s, float(ends.max()) if len(ends) else 0.0)
        self._pc_finish(horizon)
        created = np.array(self._inst_created, dtype=float)
        init_ms = np.array(self._inst_init_ms, dtype=float)
        pc = np.array(self._inst_pc, dtype=bool)
        expiry = np.array(self._inst_expiry, dtype=float)
        alive = expiry > horizon
        reason = np.where(alive, ALIVE, np.array(self._inst_reason, dtype=np.int8)).astype(np.int8)
        served = inv["instance_id"][inv["instance_id"] >= 0]
        inst = {
            "instance_id": np.arange(len(created), dtype=np.int64),
            "function": np.array(self._inst_fn, dtype=np.int32),
            "provisioned": pc,
            "created_s": created,
            "ready_s": created + init_ms / 1000.0,
            "init_ms": init_ms,
            "ended_s": np.where(alive, np.nan, expiry),
            "end_reason": reason,
            "invocations": np.bincount(served, minlength=len(created)).astype(np.int64),
        }
        thr = {c: np.frombuffer(col, dtype=col.typecode) for c, col in self._thr.items()}
        return EventLog(
            functions=[f.name for f in self.scenario.functions],
            invocations=inv,
            instances=inst,
            throttles=thr,
            horizon_s=horizon,
            events=self._events,
        )
