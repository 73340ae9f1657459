"""The event loop and request dispatch.

Arrivals come from one stream of all functions' arrivals (`arrival_stream`), walked in a plain
loop in SimPy's order; SimPy drives what is scheduled: one process per provisioned-concurrency
schedule, one per warmer, retry and memory-queue timers. Everything else is computed rather
than scheduled. A request's end time is known when it starts (on an instance whose CPU is
shared: its next departure, rescheduled as requests come and go), so finished instances are
moved to their idle pools lazily (a heap of end times, drained up to the current time before
any decision); an idle instance's eviction time is decided by the keep-alive policy when it
goes idle and logged then; pools drop expired entries when they meet them. Throttled
asynchronous requests are the only per-request events: a retry timer each.

The components, one module each: `instances` (the instance table), `limits` (concurrency and
scaling rate), `provisioned` (provisioned concurrency), `routing` and `sharing` (multi-request
instances), `hosts` (memory), `eventlog` (what is recorded and handed over), and the
policy families `keepalive` and `selection`.

Glossary of the short names in the hot paths: k the function's index, t the time a request is
placed (its arrival, or a retry), d_ms its handler time, rid its request id, iid an instance
id, busy the heap of (end_s, iid) of instances running or initialising, pc provisioned
concurrency, od on-demand, a_<column> the append of an invocation column.
"""

from __future__ import annotations

import functools
import gc
import heapq
import inspect
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial, wraps
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from ..policies.base import PolicyError, guarded
from ..policies.controllers import Controller, defines
from ..policies.eviction import EvictionPolicy, FunctionFacts, checked_choose
from ..policies.eviction import checked as checked_eviction
from ..policies.keepalive import Invocation, checked, overrides
from ..policies.keepalive import KeepAlivePolicy as _KeepAlive
from ..policies.placement import checked as checked_placement
from ..policies.routing import DROP, NEW, BusyInstance
from ..policies.routing import checked as checked_route
from ..policies.selection import checked as checked_pool
from ..policies.timing import PluginClock, timing
from ..rng import Buffered, LazyStream, stream
from ..scenario.globalstate import extra_init_ms, extra_request_ms
from ..scenario.schema import Scenario
from ..workload.arrivals.base import checked as checked_batches
from .arrival_stream import CHUNK, ArrivalStream
from .context import Census, Context
from .eventlog import (
    Columns,
    EndReason,
    EventLog,
    Kind,
    Outcome,
    Status,
    ThrottleReason,
    categories,
)
from .hosts import Hosts
from .instances import BUSY, Instances
from .limits import Limits
from .provisioned import Provisioned
from .routing import Router
from .sharing import CpuSharing, HostCpus
from .waiting import Waiting, WaitingLine

# Codes as plain ints: the hot path compares them per request.
USER, WARMER = int(Kind.USER), int(Kind.WARMER)
SERVED, THROTTLED, DROPPED = int(Status.SERVED), int(Status.THROTTLED), int(Status.DROPPED)
RESERVED, ACCOUNT, SCALING, MEMORY, ROUTING = map(int, ThrottleReason)
IDLE, LIFETIME = int(EndReason.IDLE), int(EndReason.LIFETIME)
KIND_NAMES = categories(Kind)
BLOCKED = object()  # dispatch's answer for the queue's head that still finds no room


def _hook(policy: _KeepAlive, method: str) -> Callable[..., Any] | None:
    """A keep-alive policy's optional hook (observe, prewarm) if its class defines it: a
    user's behind the plug-in error guard, a built-in's as it is; else None."""
    if not overrides(policy, method):
        return None
    hook = getattr(policy, method)
    return hook if policy.builtin() else guarded(policy, method, hook)


class _Chain:
    """A request of a calling function, its calls under way."""

    __slots__ = ("k", "iid", "rid", "row", "start", "cold", "next")

    def __init__(self, k: int, iid: int, rid: int, row: int, start: float, cold: bool):
        self.k, self.iid, self.rid, self.row, self.start, self.cold = k, iid, rid, row, start, cold
        self.next = 0  # the next call to make


def _all_of(hooks: list) -> Callable[..., None] | None:
    """One hook calling each of `hooks` (Nones left out) in turn; None if there are none."""
    hooks = [h for h in hooks if h is not None]
    if len(hooks) <= 1:
        return hooks[0] if hooks else None

    def each(*args) -> None:
        for hook in hooks:
            hook(*args)

    return each


def _timer_error(label: str, err: Exception) -> PolicyError:
    """A PolicyError for an exception raised in a policy's timer or tick."""
    import traceback

    frame = traceback.extract_tb(err.__traceback__)[-1]
    return PolicyError(f"{label}: raised {type(err).__name__}: {err} "
                       f"({frame.filename}:{frame.lineno})")  # fmt: skip


def _plus(draw: Callable[[], float], extra_ms: float) -> Callable[[], float]:
    """draw, plus a constant (global state built in init); draw itself when it is 0."""
    return draw if not extra_ms else (lambda: draw() + extra_ms)


def _clocked(method):
    """The engine's method with its plug-in clock current: users' hooks wrapped meanwhile
    (as the engine is built, and as its run sets up its hot paths) are timed on it."""

    @wraps(method)
    def with_clock(self, *args, **kwargs):
        clock = self.__dict__.setdefault("plugin_clock", PluginClock())
        with timing(clock):
            return method(self, *args, **kwargs)

    return with_clock


class Engine:
    @_clocked
    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        progress: Callable[[float], None] | None = None,
        horizon_floor_s: float = 0.0,
    ):
        """horizon_floor_s: the log's horizon is at least this (a shard of a sharded run is
        closed at the whole run's horizon: instances alive then, provisioned replacements)."""
        self.scenario = sc = scenario
        self.horizon_floor_s = horizon_floor_s
        self.seed = sc.seed if seed is None else seed
        self.progress = progress
        self._report = reporter(progress)
        self.env = simpy.Environment()
        platform = sc.platform
        n = len(sc.functions)
        life = platform.max_lifetime_s
        if life is None:
            lifetime = [lambda: math.inf] * n
        elif isinstance(life, float | int):
            lifetime = [lambda: float(life)] * n
        else:
            lifetime = [
                Buffered(partial(life.sample, self._stream(f, "lifetime", lazy=True))).next
                for f in sc.functions
            ]
        init = [  # a cold start's init, or with SnapStart its restore and hooks
            _plus(Buffered(partial(f.init.sample, self._stream(f, "init", lazy=True))).next,
                  extra_init_ms(f.global_state))
            if f.snapstart is None else
            _plus(Buffered(partial(f.snapstart.restore.sample,
                                   self._stream(f, "init", lazy=True))).next,
                  f.snapstart.hooks_ms(f.global_state))
            for f in sc.functions
        ]  # fmt: skip
        self.instances = Instances(init, lifetime)
        self.busy: list[tuple[float, int]] = []  # (end_s, instance_id) of busy instances
        self.limits = Limits(
            [f.reserved_concurrency for f in sc.functions],
            platform.concurrency_limit,
            platform.scaling,
        )
        self.provisioned = Provisioned(
            n, self.instances, self.limits, self.busy, platform.provisioned_allocation
        )
        self.names = [f.name for f in sc.functions]
        self.built = False  # policies may act once the engine is built (not in their start)
        #: The policies' context, made when the first policy asks for one (see `_start`).
        self._context: Context | None = None
        self._moments: dict[int, Context] = {}  # id(policy) -> its context, if it took one
        self.timers = 0  # policies' timers scheduled (they count as events when they fire)
        #: Instances a policy keeps warm till a time (ctx.extend): no idle period that starts
        #: before then ends before it.
        self._floors: dict[int, float] = {}
        # Idle pools are per function, or per application with instance_scope app (an app's
        # functions share warm instances, as on Azure Functions). Pre-warmed instances still
        # initialising wait beside their pool, soonest ready first.
        self.pool_put, self.pool_take, self.warming = [], [], []
        by_app: dict[str, tuple] = {}
        for f in sc.functions:
            app = f.app if platform.instance_scope == "app" else None
            if app is None or app not in by_app:
                pool = platform.idle_selection.model_copy()
                self._start(pool, f"idle-selection policy {pool.policy}", self.instances.expiry,
                            self._stream(f, "selection", pool.builtin()))  # fmt: skip
                if pool.builtin():
                    entry = (pool.put, pool.take, [])
                else:  # a user's pool: its answers are checked
                    entry = (*checked_pool(pool, self.instances.expiry), [])
                if app is not None:
                    by_app[app] = entry
            else:
                entry = by_app[app]
            self.pool_put.append(entry[0])
            self.pool_take.append(entry[1])
            self.warming.append(entry[2])
        # Multi-request instances: a router per function over its instances with room.
        self.routers = [
            Router(platform.routing.instance_rule(), f.instance_concurrency, self.instances.active,
                   self.instances.retire, take, self.instances.ready_s)
            if f.instance_concurrency > 1 else None
            for f, take in zip(sc.functions, self.pool_take, strict=True)
        ]  # fmt: skip
        #: Functions whose platform starts instances ahead of requests.
        self._scales_ahead = [f.scale_target < 1 or f.min_instances > 0 for f in sc.functions]
        for k, router in enumerate(self.routers):
            if router is not None:  # it counts its idle instances (for scaling ahead)
                self.pool_put[k] = self._put_counted(
                    k, self.pool_put[k], router, sc.functions[k].min_instances
                )
        capacity = [f.requests_at_full_speed() for f in sc.functions]
        self.sharing = CpuSharing(capacity) if any(c is not None for c in capacity) else None
        # One keep-alive policy copy per function, or per application with scope app (it
        # learns from all the app's requests, as the ATC'20 policy does; started with the
        # app's first function's name and stream).
        self.keep_alive: list[_KeepAlive] = []
        policy_of_app: dict[str, _KeepAlive] = {}
        scope = platform.keep_alive.scope or platform.instance_scope
        for f in sc.functions:
            app = f.app if scope == "app" else None
            policy = policy_of_app.get(app) if app is not None else None
            if policy is None:
                policy = platform.keep_alive.model_copy()
                self._start(policy, f"keep-alive policy {policy.policy} ({f.name!r})", f.name,
                            self._stream(f, "keep_alive", policy.builtin()))  # fmt: skip
                if app is not None:
                    policy_of_app[app] = policy
            self.keep_alive.append(policy)
        #: Per function: the keep-alive window of an instance going idle, window(end_s, iid).
        self._window_of = [
            self._at_moment(policy, policy.keep_alive_s if policy.builtin()
                            else checked(policy, f.name))  # (a built-in without ctx: as is)
            for f, policy in zip(sc.functions, self.keep_alive, strict=True)
        ]  # fmt: skip
        self.retry = platform.async_retry
        self.hosts = self._hosts() if platform.hosts is not None else None
        #: Host classes: each host's speed (None: all 1), and its shared cores (cpu: shared).
        self._speed = self.host_cpus = None
        if platform.hosts is not None:
            speeds = platform.hosts.per_host("speed")
            self._speed = speeds if any(s != 1.0 for s in speeds) else None
            if platform.hosts.cpu == "shared":
                self.host_cpus = HostCpus(platform.hosts.per_host("cpus"))
        self.controllers = self._controllers()
        #: Pre-warmed instances waiting for their init to start, to be placed on a host then:
        #: a heap of (created_s, instance_id) (with hosts only).
        self._pending: list[tuple[float, int]] = []
        #: Requests waiting for memory (on_full queue).
        self._queue = WaitingLine()
        self._wake = [math.inf]  # when the queue is next looked at
        #: While the queue is served: 1 for its head (which may take memory), 2 for a request
        #: that may only take an instance of its own function; else 0.
        self._draining = [0]
        #: The run's horizon, known once every request was placed (the final release): no
        #: pre-warm starts after it.
        self._closing_at = math.inf
        self._cancelled: set[int] = set()  # pre-warms that found no room: they never ran
        #: pre-warmed instance -> its window once ready (None: the keep-alive policy's then)
        self._prewarm_keep: dict[int, float | None] = {}
        self._stale: dict[int, float] = {}  # taken pre-warmed instance -> its outdated ready time
        self.columns = Columns()
        self._routing()
        self._chains_setup()
        #: Requests under way whose row is not written yet (an async retry pending, waiting
        #: for host memory, running on a shared CPU): rows are handed over in request-id
        #: order, so none from the smallest of these on.
        self._unfinished: set[int] = set()
        self._blocks: list[dict[str, np.ndarray]] = []  # invocation rows handed over
        self._throttle_blocks: list[dict[str, np.ndarray]] = []
        self.handovers = 0  # blocks of invocation rows handed over
        #: Rows held before they are handed over as a block (None: all at the end). Blocks
        #: go to the sink when there is one; else the run's own log holds every row.
        self.flush_rows: int | None = None
        #: A streamed run's consumer of blocks: sink.rows(block, instances, before) for
        #: request rows (each block in request-id order; rows of requests numbered from
        #: `before` on may still come), sink.throttles(block) for throttled attempts. The
        #: run's log then holds no request rows.
        self.sink = None
        self._served = np.zeros(0, dtype=np.int64)  # requests served per instance, so far
        self._latest_end = 0.0  # of the requests handed over
        self.chunk_arrivals = CHUNK  # arrivals merged at a time (rows are handed over between)
        self.next_request_id = itertools.count().__next__
        #: Per function: the SimPy event id of its next arrival (see _serve_arrivals).
        self._eid = [0] * n
        self.events = 0
        self.built = True

    # -- policies' context, timers and controllers ------------------------------------------

    def _start(self, policy, label: str, *args) -> None:
        """policy.start(*args), with a context as `ctx` if its start takes one (then its
        `tick`, if it has one and a `tick_s`, is scheduled)."""
        if not _takes_ctx(type(policy)):
            (policy.start if policy.builtin() else guarded(policy, "start", policy.start))(*args)
            return
        ctx = self._context_for(label, policy)
        self._moments[id(policy)] = ctx
        if policy.builtin():  # (the load keep-alive: trusted, unguarded)
            policy.start(*args, ctx=ctx)
        else:
            guarded(policy, "start", partial(policy.start, ctx=ctx))(*args)
        self._ticks(policy, ctx, label)

    def _context_for(self, label: str, policy) -> Context:
        """The context of `policy` (the callbacks it gives ctx.call_at are timed if it is a
        user's)."""
        if self._context is None:
            self._context = Context(self, Census(self), label)
        return self._context.for_policy(label, policy)

    def _at_moment(self, policy, hook, at: int = 0, acts: bool = True, moment: bool = True):
        """A user's hook whose argument `at` is the moment it is called for: the policy's
        context tells that moment as `now` while it runs (unless not `moment`); without
        `acts`, its actions are refused (an eviction policy's hooks run while a host's
        tables are mid-update). The hook itself without a context (or None)."""
        ctx = self._moments.get(id(policy))
        if hook is None or ctx is None:
            return hook

        def hook_at_moment(*args):
            if moment:
                ctx.moment = args[at]
            if not acts:
                ctx.frozen = f"{policy.family}'s hooks"
            try:
                return hook(*args)
            finally:
                ctx.moment = None
                ctx.frozen = None

        return hook_at_moment

    def _ticks(self, policy, ctx: Context, label: str) -> None:
        """Call policy.tick(now) every tick_s from tick_s on, if it defines both."""
        tick_s = getattr(policy, "tick_s", None)
        if tick_s is None or not callable(getattr(policy, "tick", None)):
            return
        if not (isinstance(tick_s, int | float) and 0 < tick_s < math.inf):
            raise PolicyError(f"{label}: tick_s {tick_s!r} is not a number of seconds > 0")
        tick = policy.tick if policy.builtin() else guarded(policy, "tick", policy.tick)

        def step(now: float) -> None:
            tick(now)
            self.call_at(now + tick_s, step, label)

        self.call_at(float(tick_s), step, label)

    def call_at(self, t: float, callback: Callable[[float], None], label: str) -> None:
        """callback(t) at time t, after the instances that freed by then went idle; not at
        or after duration_s (nothing is decided for a span the run does not cover)."""
        if t >= self.scenario.duration_s:
            return
        self.timers += 1
        ctx_error = partial(_timer_error, label)
        # A hook called for a past moment (release is lazy) may ask for a time the engine
        # has passed: the timer fires at the engine's clock, and says so.
        t = max(t, self.env.now)

        def fire(_event) -> None:
            self.events += 1
            self.release(t)
            try:
                callback(t)
            except PolicyError:
                raise
            except Exception as err:
                raise ctx_error(err) from err

        self.env.timeout(max(0.0, t - self.env.now)).callbacks.append(fire)

    def _controllers(self) -> list:
        """The platform's controllers, started with their contexts (their ticks scheduled)."""
        out = []
        for i, spec in enumerate(self.scenario.platform.controllers):
            controller = spec.model_copy()
            label = f"controller {controller.policy}"
            if getattr(controller, "tick_s", None) is None:
                raise PolicyError(f"{label}: defines tick but no tick_s (how often to call it)")
            ctx = self._context_for(label, controller)
            rng = stream(self.seed, str(i), "controller")  # keyed by its place in the list
            if controller.builtin():
                controller.start(ctx, rng)
            else:
                self._moments[id(controller)] = ctx
                guarded(controller, "start", controller.start)(ctx, rng)
            self._ticks(controller, ctx, label)
            out.append(controller)
        return out

    def _routing(self) -> None:
        """The routing policy, if it decides for requests that find no idle instance (then
        one-request functions' busy instances are tracked: the requests each runs and those
        queued behind)."""
        policy = self.scenario.platform.routing.model_copy()
        #: Per function: whether its requests may queue behind its busy instances.
        self._queues_at = [False] * len(self.scenario.functions)
        #: Busy tracked instance -> (start, end) of its requests not ended yet, in order.
        self._lines: dict[int, deque[tuple[float, float]]] = {}
        #: Multi-request instances: a heap of when each of its instance_concurrency slots is
        #: free (a queued request takes the first to free).
        self._slots: dict[int, list[float]] = {}
        self._busy_of: list[set[int]] = [set() for _ in self.scenario.functions]
        self._route = None
        if not policy.routes():
            return
        label = f"routing policy {policy.policy}"
        ctx = self._context_for(label, policy)
        rng = stream(self.seed, "", "routing")
        if policy.builtin():
            policy.start(ctx, rng)
            self._route = policy.route
        else:
            self._moments[id(policy)] = ctx
            guarded(policy, "start", policy.start)(ctx, rng)
            self._route = self._at_moment(policy, checked_route(policy), 1)
        # (not where requests share an instance's CPU: a queued request's start follows ends
        # known in advance)
        self._queues_at = [
            self.sharing is None or self.sharing.capacity_of[k] is None
            for k in range(len(self.routers))
        ]  # fmt: skip
        self.columns.instance_waits = True

    def _chains_setup(self) -> None:
        """Function chains (functions[].calls): per caller its calls as (callee, sync,
        probability); the callees' handler times and the callers' draws, each from its own
        stream."""
        sc = self.scenario
        index = {f.name: k for k, f in enumerate(sc.functions)}
        self._calls = [
            [(index[c.function], c.mode == "sync", c.probability) for c in f.calls] or None
            for f in sc.functions
        ]  # fmt: skip
        #: Requests whose end someone waits for (a sync caller): rid -> callback(end, cold).
        self._waiters: dict[int, Callable[[float, bool], None]] = {}
        #: Chain requests under way (their calls not all returned): rid -> _Chain.
        self._chains: dict[int, _Chain] = {}
        self._cold_waited: dict[int, bool] = {}  # waited-for requests on shared CPUs: cold?
        #: Calls made whose row is not written yet: request -> its caller's request.
        self._parent_of: dict[int, int] = {}
        if not sc.chained():
            return
        callees = {index[c.function] for f in sc.functions for c in f.calls}
        self._call_ms = {}
        for k in callees:
            f = sc.functions[k]
            rng = self._stream(f, "call_durations")
            factor, extra = f.duration_factor(), extra_request_ms(f.global_state)
            self._call_ms[k] = Buffered(
                lambda n, f=f, rng=rng, factor=factor, extra=extra:
                f.duration.sample(rng, n) * factor + extra
            ).next  # fmt: skip
        self._call_draw = [
            Buffered(self._stream(f, "call_draws").random).next if f.calls else None
            for f in sc.functions
        ]  # fmt: skip
        self.columns.chains = True
        # A caller's end waits for its calls: requests of callers queue behind no instance.
        self._queues_at = [q and not f.calls for q, f in zip(self._queues_at, sc.functions,
                                                              strict=True)]  # fmt: skip

    def _chain_start(self, k: int, iid: int, rid: int, start: float, handler_end: float,
                     cold: bool) -> float:  # fmt: skip
        """A request of a calling function started: its calls begin when its handler ends;
        its end (and row) waits for its sync calls. NaN: its end, not known yet."""
        chain = _Chain(k, iid, rid, self.columns.row(), start, cold)
        self._chains[rid] = chain
        self._unfinished.add(rid)
        self._later(handler_end, lambda: self._call_next(chain, handler_end))
        return math.nan

    def _later(self, t: float, action: Callable[[], None]) -> None:
        self.events += 1
        self.env.timeout(max(0.0, t - self.env.now)).callbacks.append(lambda _ev: action())

    def _call_next(self, chain: _Chain, t: float) -> None:
        """Make the chain's next calls at t: async ones at once, up to the next sync one
        (the chain goes on when it returns); the chain ends when none is left."""
        self.release(t)
        calls = self._calls[chain.k]
        draw = self._call_draw[chain.k]
        while chain.next < len(calls):
            callee, sync, p = calls[chain.next]
            chain.next += 1
            if p < 1.0 and draw() >= p:
                continue
            child = self.next_request_id()
            self._parent_of[child] = chain.rid  # (logged with the call's row)
            if sync:
                self._waiters[child] = lambda end, cold: self._returned(chain, end, cold)
            self.dispatch(callee, t, self._call_ms[callee](), t, 1, USER, child)
            if sync:
                return
        self._chain_done(chain, t)

    def _returned(self, chain: _Chain, end: float, cold: bool) -> None:
        """A sync call of the chain returned at `end` (or failed then)."""
        chain.cold |= cold
        self._later(end, lambda: self._call_next(chain, end))

    def _chain_done(self, chain: _Chain, end: float) -> None:
        """Every call made and the sync ones returned: the request ends at `end`, its
        instance busy (and billed) until then."""
        cols = self.columns
        inv, at = cols.invocations, chain.row - cols.offset  # (an unfinished row is held)
        inv["end_s"][at] = end
        inv["duration_ms"][at] = (end - chain.start) * 1000.0
        if chain.cold:  # (the row's own cold flag covers a cold start of its own)
            cols.cold_down_the_chain.add(chain.row)
        del self._chains[chain.rid]
        self._unfinished.discard(chain.rid)
        heapq.heappush(self.busy, (end, chain.iid))
        if self.hosts is not None and self._queue.count and end < self._wake[0]:
            self._arm(end)
        self._ended(chain.rid, end, chain.cold)

    def _link_call(self, rid: int) -> None:
        """If rid is a call, its row (written next) names its caller."""
        parent = self._parent_of.pop(rid, None)
        if parent is not None:
            link = self.columns.sparse["parent"]
            link["row"].append(self.columns.row())
            link["request_id"].append(parent)

    def _ended(self, rid: int, end: float, cold: bool) -> None:
        """Request rid's end is known (or its failure's time): tell a caller waiting for it."""
        self._cold_waited.pop(rid, None)
        waiter = self._waiters.pop(rid, None)
        if waiter is not None:
            waiter(end, cold)

    def _queue_behind(self, k: int, t: float) -> int:
        """A busy instance of function k for a request at t to queue behind, as the routing
        policy decides, or -1 (a new instance)."""
        inst, lines = self.instances, self._lines
        if self.routers[k] is None:
            offered = [
                BusyInstance(iid, line[0][0], len(line) - 1)
                for iid in sorted(self._busy_of[k])
                if (line := lines[iid]) and inst.retire[iid] > line[-1][1]
            ]  # fmt: skip (not one past its lifetime: it retires when it has finished)
        else:  # every instance is full: the oldest request each runs, and those waiting
            offered = []
            for iid in sorted(self._busy_of[k]):
                line = lines[iid]
                while line and line[0][1] <= t:
                    line.popleft()  # (ended: requests end out of order, the oldest matters)
                first_free = self._slots[iid][0]  # (past t: full; not recycled by then)
                if line and t < first_free < inst.retire[iid]:
                    offered.append(BusyInstance(iid, line[0][0],
                                                sum(1 for s, _ in line if s > t)))  # fmt: skip
        if not offered:
            return -1
        return self._route(k, t, offered)

    def _replace_at(self, k: int, when: float) -> None:
        """Start what function k's minimum lacks at `when` (an instance started for it is
        recycled then); the replacement is ready after its init. Scheduled as the instance
        starts: whether it is still kept then is known only then."""

        def replace(_event) -> None:
            self.release(when)
            self._scale_ahead(k, when)

        self.events += 1
        self.env.timeout(max(0.0, when - self.env.now)).callbacks.append(replace)

    def _put_counted(self, k: int, put: Callable[[int, float], None], router: Router, least: int):
        """put(iid, end_s) into an idle pool, telling the router till when it is idle. While
        fewer than `least` idle instances are kept for the function's minimum, this one is
        kept too, until it is recycled (or a request takes it; busy ones need no keeping)."""
        inst = self.instances
        expiry, reason, retire, went_idle = inst.expiry, inst.reason, inst.retire, router.went_idle
        pinned = router.pinned

        def put_counted(iid: int, end_s: float) -> None:
            put(iid, end_s)
            if least:  # the minimum is held by idle instances kept till recycled
                for other in [i for i in pinned if expiry[i] <= end_s]:
                    pinned.discard(other)  # recycled (or evicted) since
                if len(pinned) < least:
                    pinned.add(iid)
                    expiry[iid], reason[iid] = retire[iid], LIFETIME
            went_idle(iid, expiry[iid])

        return put_counted

    def _stream(self, f, purpose: str, lazy: bool = False) -> np.random.Generator:
        """Function f's stream for `purpose`; lazy: made when first drawn from (for
        coldsim's own code only)."""
        if lazy:
            return LazyStream(self.seed, f.name, purpose)  # type: ignore[return-value]
        return stream(self.seed, f.name, purpose)

    def _hosts(self) -> Hosts:
        sc, spec = self.scenario, self.scenario.platform.hosts
        names = [f.name for f in sc.functions]
        placement = spec.placement.model_copy()
        self._start(placement, f"placement policy {placement.policy}", spec.count,
                    spec.memory_mb, names, stream(self.seed, "", "placement"))
        order = placement.order if placement.builtin() else checked_placement(placement, spec.count)
        eviction = sc.platform.eviction.model_copy()
        facts = [FunctionFacts(f.name, f.footprint_mb(), f.init.expected()) for f in sc.functions]
        self._start(eviction, f"eviction policy {eviction.policy}", facts, spec.count,
                    stream(self.seed, "", "eviction"))
        choose = None
        if eviction.builtin():
            priority, evicted = eviction.priority, eviction.evicted
            if eviction.chooses():
                choose = eviction.choose
        else:
            priority, evicted = checked_eviction(eviction)
            priority = self._at_moment(eviction, priority, 3, acts=False)
            evicted = self._at_moment(eviction, evicted, 3, acts=False, moment=False)
            if eviction.chooses():
                choose = self._at_moment(eviction, checked_choose(eviction), 3, acts=False)
        departed = None
        if "departed" in vars(eviction) or type(eviction).departed is not EvictionPolicy.departed:
            departed = eviction.departed if eviction.builtin() else guarded(
                eviction, "departed", eviction.departed)  # fmt: skip
        if any(router is not None for router in self.routers):
            evicted = self._forgotten_when(evicted)
        return Hosts(
            spec.count, spec.per_host("memory_mb"), [f.footprint_mb() for f in sc.functions],
            order, priority, evicted, self.instances, choose, departed,
        )  # fmt: skip

    def _forgotten_when(self, evicted: Callable[..., None]) -> Callable[..., None]:
        """The eviction policy's `evicted`, also telling a multi-request function's router
        that the instance is gone (an evicted instance kept for the minimum included:
        memory pressure overrides it)."""
        routers = self.routers

        def evicted_and_forgotten(iid: int, k: int, h: int, priority: float) -> None:
            evicted(iid, k, h, priority)
            if routers[k] is not None:
                routers[k].forget(iid)

        return evicted_and_forgotten

    # -- public -----------------------------------------------------------------------------

    @_clocked
    def run(self) -> EventLog:
        # The hot paths are closures over state that no longer changes shape from here on.
        self.release = self._releaser()
        self.dispatch = self._dispatcher()
        for k, f in enumerate(self.scenario.functions):
            if f.min_instances:  # set up with the function: their inits start at 0 s
                self._scale_ahead(k, 0.0)
        env, stream = self.env, ArrivalStream(self.chunk_arrivals)
        # Each function's arrivals start as its own SimPy process would have (an urgent event
        # at 0 s, in this order among the provisioning and warmer processes): one start event
        # for each run of functions up to one that has such processes.
        group: list[int] = []
        last = len(self.scenario.functions) - 1
        for k, f in enumerate(self.scenario.functions):
            group.append(k)
            if f.provisioned_schedule() or f.warmer is not None or k == last:
                self._start_arrivals(group, stream)
                group = []
            if f.provisioned_schedule():
                env.process(self._provisioning(k, f))
            if f.warmer is not None:
                env.process(self._warmer(k, f))
        if self.progress is not None:
            env.process(self._ticker())
        self._serve_arrivals(stream)
        env.run()
        self._closing_at = max(self.scenario.duration_s, self._last_end())
        if self.sharing is not None:  # requests still running on shared CPUs end after these
            self._closing_at = max(self._closing_at, self.sharing.last_departure())
        if self.host_cpus is not None:
            self._closing_at = max(self._closing_at, self.host_cpus.last_departure())
        self.release(math.inf)
        log = self._event_log()
        if self.progress is not None:
            self._report(1.0, self.columns.offset)
        return log

    # -- arrivals ---------------------------------------------------------------------------

    def _start_arrivals(self, functions: list[int], stream: ArrivalStream) -> None:
        """At 0 s (urgent, as a process's start): the functions' arrivals join the stream,
        each taking the event id its first timeout would have had."""
        env, eid = self.env, self._eid

        def start(_event) -> None:
            for k in functions:
                self.events += 2  # a process's start and end, as counted before
                if stream.start(k, self._arrival_batches(k, self.scenario.functions[k])):
                    eid[k] = next(env._eid)

        event = simpy.Event(env)
        event._ok, event._value = True, None
        event.callbacks.append(start)
        env.schedule(event, URGENT)

    def _arrival_batches(self, k: int, f) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Function k's arrival times and handler times (ms), in numpy batches."""
        duration_rng = self._stream(f, "duration", lazy=True)
        factor = f.duration_factor()  # handler CPU follows memory, if asked
        per_request = extra_request_ms(f.global_state)  # state built in every request
        batches = f.arrivals.batches_with_durations(
            self._stream(f, "arrivals"), self.scenario.duration_s
        )
        if not f.arrivals.builtin():
            window = f.arrivals.window(self.scenario.duration_s)
            batches = checked_batches(f.arrivals, batches, *window)
        for times, durations in batches:
            if durations is None:
                durations = f.duration.sample(duration_rng, len(times))
            if factor != 1.0:
                durations = durations * factor
            if per_request:
                durations = durations + per_request
            self.events += len(times)
            yield times, durations

    def _serve_arrivals(self, stream: ArrivalStream) -> None:
        """Dispatch every arrival, in SimPy's order among the scheduled events: an event comes
        first if its (time, priority, id) is below the arrival's (key, NORMAL, id); an
        arrival's id is taken when its function's previous arrival was served."""
        env = self.env
        queue, step, next_eid, eid = env._queue, env.step, env._eid.__next__, self._eid
        dispatch, next_rid = self.dispatch, self.next_request_id
        while queue and queue[0][0] == 0.0 and queue[0][1] == URGENT:
            step()  # processes' starts (the arrivals' among them)
        while (chunk := stream.next_chunk()) is not None:
            keys, times, durations, functions = (
                chunk.keys, chunk.times, chunk.durations, chunk.functions,
            )  # fmt: skip
            if self.flush_rows is not None and self.columns.held() >= self.flush_rows:
                self._flush()
            for first, end, tied in chunk.segments:
                if tied:
                    self._serve_tied(chunk, first, end)
                    continue
                for key, t, d_ms, k in zip(
                    keys[first:end], times[first:end], durations[first:end],
                    functions[first:end], strict=True,
                ):  # fmt: skip
                    if queue and queue[0][0] <= key:
                        while queue and (queue[0][0] < key or queue[0][0] == key and (
                                queue[0][1] < NORMAL or queue[0][2] < eid[k])):  # fmt: skip
                            step()
                    env._now = key
                    dispatch(k, t, d_ms, t, 1, USER, next_rid())
                    eid[k] = next_eid()

    def _serve_tied(self, chunk, first: int, end: int) -> None:
        """Arrivals at one key: in the order of their event ids, the scheduled events at that
        key among them; a function's next arrival takes its id when its previous is served."""
        env = self.env
        queue, step, next_eid, eid = env._queue, env.step, env._eid.__next__, self._eid
        mine: dict[int, deque[int]] = {}  # function -> its positions in the run, in order
        for i in range(first, end):
            mine.setdefault(chunk.functions[i], deque()).append(i)
        ready = [(eid[k], k) for k in mine]
        heapq.heapify(ready)
        key = chunk.keys[first]
        while ready:
            _, k = heapq.heappop(ready)
            while queue and (queue[0][0] < key or queue[0][0] == key and (
                    queue[0][1] < NORMAL or queue[0][2] < eid[k])):  # fmt: skip
                step()
            i = mine[k].popleft()
            env._now = key
            t = chunk.times[i]
            self.dispatch(k, t, chunk.durations[i], t, 1, USER, self.next_request_id())
            eid[k] = next_eid()
            if mine[k]:
                heapq.heappush(ready, (eid[k], k))

    # -- processes --------------------------------------------------------------------------

    def _provisioning(self, k: int, f):
        """Apply the provisioned-concurrency schedule. Steps at or after duration_s are not
        applied: the configuration is what it was at the end of the span."""
        self.events += 2
        for step in f.provisioned_schedule():
            if step.at_s >= self.scenario.duration_s:
                break
            delay = step.at_s - self.env.now
            yield self.env.timeout(delay if delay > 0.0 else 0.0)
            self.events += 1
            if self.busy and self.busy[0][0] <= step.at_s:
                self.release(step.at_s)
            self.provisioned.configure(k, step.count, step.at_s)

    def _warmer(self, k: int, f):
        """Scheduled pings: `concurrency` simultaneous short invocations every interval_s."""
        self.events += 2
        w = f.warmer
        n = max(0, math.ceil((self.scenario.duration_s - w.offset_s) / w.interval_s))
        for j in range(n):
            t = w.offset_s + j * w.interval_s
            delay = t - self.env.now
            yield self.env.timeout(delay if delay > 0.0 else 0.0)
            self.events += 1
            for _ in range(w.concurrency):
                self.dispatch(k, t, w.duration_ms, t, 1, WARMER, self.next_request_id())

    def _ticker(self):
        """Progress reports, up to 99% at duration_s (requests in flight and async retries
        may run on after it; run() reports 100% at the end). Not counted in `events`, which
        must not depend on them."""
        for i in range(1, 100):
            yield self.env.timeout(self.scenario.duration_s / 100)
            self._report(i / 100, self.columns.row())

    # -- requests ---------------------------------------------------------------------------

    def _dispatcher(self) -> Callable[..., None]:
        """dispatch(k, t, d_ms, arrival, attempt, kind, rid) serves a request at time t (its
        arrival, or a retry): on an idle provisioned instance, else on an idle on-demand one,
        else on a pre-warmed one not ready yet, else on a new one; or throttles it.

        A closure, because it runs once per request and locals are the cheapest state Python
        has; everything it binds is fixed once the engine is built."""
        busy, limits, inst, pc = self.busy, self.limits, self.instances, self.provisioned
        pc_idle, pc_take = pc.idle, pc.take
        reserved_of, od_busy, used, cap = (
            limits.reserved, limits.od_busy, limits.used, limits.unreserved_cap,
        )  # fmt: skip
        pc_target, pc_excess = pc.target, pc.excess
        init_of, user_of, ready_s = inst.init_ms, inst.user, inst.ready_s
        # Multi-request functions take through their router (negative codes: see _routed).
        routers, ahead = self.routers, self._scales_ahead
        take = [
            self.pool_take[k] if router is None else self._routed(k)
            for k, router in enumerate(routers)
        ]
        share_of = [None] * len(routers)
        if self.sharing is not None:
            share_of = [
                self._shared_start if c is not None else None for c in self.sharing.capacity_of
            ]
        scale_ahead = self._scale_ahead
        full_throttles = [f.when_full == "throttle" for f in self.scenario.functions]
        warming = self.warming
        release, take_token, new_instance = self.release, limits.take_token, inst.new
        throttle, claim, heappush = self._throttle, self._claim_prewarmed, heapq.heappush
        hosts, pending, queue = self.hosts, self._pending, self._queue
        hosted = hosts is not None
        if hosted:
            place, taken, host_of = hosts.place, hosts.taken, inst.host
            give_back, no_room = limits.give_back, self._no_room
            wake, draining, arm = self._wake, self._draining, self._arm
        cols = self.columns
        row = cols.row
        inv, sparse = cols.invocations, cols.sparse
        a_fn, a_rid, a_arr, a_start = (
            inv[c].append for c in ("function", "request_id", "arrival_s", "start_s")
        )
        a_end, a_iid, a_dur = (inv[c].append for c in ("end_s", "instance_id", "duration_ms"))
        a_cold, a_pc, a_warmer = (
            sparse[c]["row"].append for c in ("cold", "provisioned", "warmer")
        )
        reason_of = inst.reason
        names = [f.name for f in self.scenario.functions]
        unfinished = self._unfinished
        routed, queue_behind, lines, busy_of = (
            self._queues_at, self._queue_behind, self._lines, self._busy_of,
        )  # fmt: skip
        queueing = any(routed)
        pc_of = inst.provisioned
        calls, chain_start, waiters, ended = (
            self._calls, self._chain_start, self._waiters, self._ended,
        )  # fmt: skip
        chained = any(c is not None for c in calls)
        parent_of = self._parent_of
        a_parent_row, a_parent = (sparse["parent"][c].append for c in ("row", "request_id"))
        speed_of, host_cpus, host_start = self._speed, self.host_cpus, self._host_start
        on_host = inst.host
        a_iwait, iwaits = (sparse["instance_wait"][c].append for c in ("row", "wait_ms"))
        slots_of, heapreplace = self._slots, heapq.heapreplace
        observers = [_hook(policy, "observe") for policy in self.keep_alive]
        watchers = [  # controllers that see every request
            c.observe if c.builtin() else guarded(c, "observe", c.observe)
            for c in self.controllers if defines(c, "observe", Controller)
        ]
        if watchers:
            observers = [_all_of([own, *watchers]) for own in observers]
        observing = any(observers)
        new_invocation = tuple.__new__

        plain = speed_of is None and host_cpus is None and not chained and not queueing

        def special_start(k, iid, t, start, d_ms, rid, cold, kind):
            """A request's end (NaN: logged when it comes) and handler time where hosts have
            speeds or shared cores, functions call others, or requests may queue."""
            if speed_of is not None:  # a faster or slower host runs the handler
                d_ms = d_ms / speed_of[on_host[iid]]
            if host_cpus is not None:  # its end depends on who else runs on the host
                end = host_start(iid, t, start, d_ms, rid)
            elif chained and calls[k] is not None and kind == USER:  # it calls others
                end = chain_start(k, iid, rid, start, start + d_ms / 1000.0, cold)
            elif share_of[k] is None:
                end = start + d_ms / 1000.0
                heappush(busy, (end, iid))
                if queueing and routed[k] and not pc_of[iid]:  # what it runs, in order
                    line = lines.get(iid)
                    if line is None:
                        lines[iid] = line = deque()
                        busy_of[k].add(iid)
                    line.append((start, end))
                    if routers[k] is not None:  # the slot it takes frees at its end
                        slots = slots_of.get(iid)
                        if slots is None:
                            slots = slots_of[iid] = [-math.inf] * routers[k].capacity
                        heapreplace(slots, end)
                if hosted and queue.count and end < wake[0]:
                    arm(end)  # an instance freed then may take a queued request
            else:  # its end depends on who else runs: logged as it comes
                end = share_of[k](k, iid, t, start, d_ms, rid)
            if chained and rid in parent_of:  # a call: its row names its caller
                a_parent_row(row())
                a_parent(parent_of.pop(rid))
            if chained and rid in waiters:  # a sync caller waits for it
                if end == end:  # (not NaN: known now)
                    ended(rid, end, cold)
                else:  # on a shared CPU: its end comes at its departure
                    self._cold_waited[rid] = cold
            return end, d_ms

        def dispatch(k, t, d_ms, arrival, attempt, kind, rid):
            if busy and busy[0][0] <= t or pending and pending[0][0] <= t:
                release(t)
            iid = pc_take(k, t) if pc_idle[k] else -1
            if iid >= 0:
                a_pc(row())
                start = t
                cold = False
            else:
                reserved = reserved_of[k]
                if reserved is None:
                    if used[0] >= cap:
                        return throttle(k, t, d_ms, arrival, attempt, kind, rid, ACCOUNT)
                elif od_busy[k] + pc_target[k] + pc_excess[k] >= reserved:
                    return throttle(k, t, d_ms, arrival, attempt, kind, rid, RESERVED)
                iid = take[k](t)
                if iid >= 0:
                    start = t
                    cold = False
                    user_of[iid] = k  # with instance_scope app, maybe another function's
                    if hosted:
                        taken(iid)
                elif iid < -1:  # it joins a multi-request instance still initialising
                    iid = -2 - iid
                    start = ready_s(iid)
                    cold = True
                    a_cold(row())
                    sparse["prewarm_wait"]["row"].append(row())
                    sparse["prewarm_wait"]["init_ms"].append((start - t) * 1000.0)
                elif full_throttles[k]:  # no cold start on the request's path
                    scale_ahead(k, t, 1)
                    return throttle(k, t, d_ms, arrival, attempt, kind, rid, SCALING)
                elif warming[k] and (iid := claim(k, t)) >= 0:
                    start = ready_s(iid)  # waits for (the rest of) its init
                    cold = True
                    if routers[k] is not None:
                        routers[k].joined(iid)
                        if ahead[k]:
                            scale_ahead(k, t)
                elif routed[k] and busy_of[k] and (iid := queue_behind(k, t)) != NEW:
                    if iid == DROP:  # the routing policy turns it away
                        return throttle(k, t, d_ms, arrival, attempt, kind, rid, ROUTING)
                    if routers[k] is None:  # when it has run what it runs and what queued
                        start = lines[iid][-1][1]
                    else:  # when one of its slots frees
                        start = slots_of[iid][0]
                        routers[k].joined(iid)
                    cold = False
                    if start > t:
                        a_iwait(row())
                        iwaits((start - t) * 1000.0)
                else:  # a new instance: the request waits for its init, paid once
                    if not take_token(k, t):
                        return throttle(k, t, d_ms, arrival, attempt, kind, rid, SCALING)
                    if hosted:  # memory goes to waiting requests first, in order
                        h = place(k, t) if draining[0] == 1 or not queue.count else -1
                        if h < 0:
                            give_back(k)
                            return no_room(k, t, d_ms, arrival, attempt, kind, rid)
                    iid = new_instance(k, t, False)
                    if hosted:
                        host_of[iid] = h
                    if routers[k] is not None:
                        routers[k].joined(iid)
                        if ahead[k]:
                            scale_ahead(k, t)
                    a_cold(row())
                    start = t + init_of[iid] / 1000.0
                    cold = True
                if reserved is None:
                    used[0] += 1
                else:
                    od_busy[k] += 1
            reason_of[iid] = BUSY  # until release says how its next idle period ends
            if plain:  # (no host speeds or cores, calls or queueing: the common path)
                if share_of[k] is None:
                    end = start + d_ms / 1000.0
                    heappush(busy, (end, iid))
                    if hosted and queue.count and end < wake[0]:
                        arm(end)  # an instance freed then may take a queued request
                else:  # its end depends on who else runs: logged as it comes
                    end = share_of[k](k, iid, t, start, d_ms, rid)
            else:
                end, d_ms = special_start(k, iid, t, start, d_ms, rid, cold, kind)
            if kind != USER:
                a_warmer(row())
            if attempt != 1:
                cols.note_retried(SERVED, attempt, t - arrival)
                if end == end:  # (a NaN end comes later: the request stays unfinished)
                    unfinished.discard(rid)
            if observing and observers[k] is not None:  # (the end without CPU sharing)
                observers[k](new_invocation(Invocation, (  # a NamedTuple, built as a tuple
                    rid, names[k], arrival, start, start + d_ms / 1000.0, cold, iid,
                    KIND_NAMES[kind])))  # fmt: skip
            a_fn(k)
            a_rid(rid)
            a_arr(arrival)
            a_start(start)
            a_end(end)
            a_iid(iid)
            a_dur(d_ms)

        return dispatch

    def _routed(self, k: int) -> Callable[[float], int]:
        """take(t) for a multi-request function: an instance with room that is ready (its
        id), or still initialising (-2 - its id), or -1; the request is counted on it, and
        instances are started ahead if it is short of them."""
        pick, ready_s = self.routers[k].pick, self.instances.ready_s
        ahead, scale_ahead = self._scales_ahead[k], self._scale_ahead
        taken = self.hosts.taken if self.hosts is not None else None

        def take(t: float) -> int:
            iid, was_idle = pick(t)
            if iid < 0:
                return -1
            if was_idle and taken is not None:
                taken(iid)  # not evictable by the instances started next (dispatch: no-op)
            if ahead:
                scale_ahead(k, t)
            return iid if ready_s(iid) <= t else -2 - iid

        return take

    def _shared_start(
        self, k: int, iid: int, t: float, start: float, d_ms: float, rid: int
    ) -> float:
        """A request starts on an instance whose CPU it shares: its departure is scheduled
        (and rescheduled as others come and go); its end, unknown yet, is logged as NaN."""
        self._unfinished.add(rid)  # its row is written now, its end when it departs
        due = self.sharing.start(k, iid, t, start, d_ms / 1000.0, self.columns.row())
        if due is None:  # its next departure did not move
            return math.nan
        heapq.heappush(self.busy, (due, iid))
        if self.hosts is not None and self._queue.count:  # the instance's departure moved
            self._wake[0] = math.inf  # (a look armed at the old one would find nothing)
            self._arm(self._next_change())
        return math.nan

    def _host_start(self, iid: int, t: float, start: float, d_ms: float, rid: int) -> float:
        """A request on a host whose cores its requests share: it joins the host's running
        requests when its handler starts (after its instance's init); its end is logged when
        it departs (NaN until then)."""
        self._unfinished.add(rid)
        row, h = self.columns.row(), self.instances.host[iid]
        if start > t:  # (departures due by then first: the host's clock must be current)
            self._later(start, lambda: (self.release(start),
                                        self._host_join(h, iid, start, d_ms / 1000.0, row)))
        else:
            self._host_join(h, iid, t, d_ms / 1000.0, row)
        return math.nan

    def _host_join(self, h: int, iid: int, t: float, work_s: float, row: int) -> None:
        moved = self.host_cpus.start(h, iid, t, work_s, row)
        if moved is not None:
            self._departs(moved)

    def _departs(self, departure: tuple[float, int]) -> None:
        heapq.heappush(self.busy, departure)
        if self._queue.count:  # the host's departures moved: look again when one frees
            self._wake[0] = math.inf
            self._arm(self._next_change())

    def _host_end(self, iid: int, end: float) -> bool:
        """A departure from a host with shared cores: True if it is the request of iid that
        ends now (its row completed; the host's next departure scheduled), False if stale."""
        done = self.host_cpus.finish(self.instances.host[iid], end, iid)
        if done is None:
            return False
        row, following = done
        cols = self.columns
        inv, at = cols.invocations, row - cols.offset  # (an unfinished row is held)
        inv["end_s"][at] = end
        inv["duration_ms"][at] = (end - inv["start_s"][at]) * 1000.0
        self._unfinished.discard(int(inv["request_id"][at]))
        if following is not None:
            self._departs(following)
        return True

    def _scale_ahead(self, k: int, t: float, waiting: int = 0) -> None:
        """Start the instances function k lacks for its requests in flight (and `waiting`
        ones turned away) to stay within scale_target of capacity, and for min_instances to
        be alive: their init starts now, in the background (a new instance takes a scaling
        token, and memory with hosts); ready, they idle under the keep-alive policy until a
        request comes."""
        router, f = self.routers[k], self.scenario.functions[k]
        for _ in range(router.missing(f.scale_target, t, f.min_instances, waiting)):
            if not self.limits.take_token(k, t):
                return
            h = -1
            if self.hosts is not None:
                h = self.hosts.place(k, t) if not self._queue.count else -1
                if h < 0:
                    self.limits.give_back(k)
                    return
            inst = self.instances
            iid = inst.new_prewarmed(k, t, t)
            inst.host[iid] = h
            self._prewarm_keep[iid] = None  # the keep-alive policy's window, once ready
            ready = inst.ready_s(iid)
            heapq.heappush(self.busy, (ready, iid))
            heapq.heappush(self.warming[k], (ready, iid))
            router.starting.add(iid)
            if f.min_instances and inst.retire[iid] < self.scenario.duration_s:
                self._replace_at(k, inst.retire[iid])  # (none after the arrivals end)

    def _claim_prewarmed(self, k: int, t: float) -> int:
        """The pre-warmed instance of k's pool that will be ready soonest, not ready at t
        (those ready by t went idle in the pool already), or -1. The request is a cold start:
        it waits for the rest of the init, or for a whole init started now if the instance's
        init had not begun. With hosts, one whose init has not begun must find memory now
        (and may not take it before requests waiting for memory); else a later one already
        on a host serves."""
        heap, inst, hosts = self.warming[k], self.instances, self.hosts
        skipped: list[tuple[float, int]] = []
        try:
            while heap:
                ready, iid = heapq.heappop(heap)
                if iid not in inst.warming or ready <= t:
                    continue
                if hosts is not None and inst.host[iid] < 0:  # its init has not begun
                    may_place = self._draining[0] == 1 or not self._queue
                    h = hosts.place(inst.fn[iid], t) if may_place else -1
                    if h < 0:
                        skipped.append((ready, iid))
                        continue
                    inst.host[iid] = h
                return self._claimed(k, iid, ready, t)
            return -1
        finally:
            for entry in skipped:
                heapq.heappush(heap, entry)

    def _claimed(self, k: int, iid: int, ready: float, t: float) -> int:
        inst = self.instances
        inst.warming.discard(iid)
        inst.user[iid] = k
        del self._prewarm_keep[iid]
        self._stale[iid] = ready  # its queued init end no longer holds
        cols = self.columns
        cols.sparse["cold"]["row"].append(cols.row())
        if inst.created[iid] > t:
            inst.start_init_now(iid, t)
        else:
            wait = cols.sparse["prewarm_wait"]
            wait["row"].append(cols.row())
            wait["init_ms"].append((ready - t) * 1000.0)
        return iid

    def _throttle(self, k, t, d_ms, arrival, attempt, kind, rid, reason) -> None:
        f = self.scenario.functions[k]
        cols = self.columns
        if f.invocation == "async":
            doublings = min(attempt - 1, 60)  # the cap is reached long before; no overflow
            delay = min(self.retry.first_delay_s * 2.0**doublings, self.retry.max_delay_s)
            retry_at = t + delay
            if retry_at - arrival <= f.max_event_age_s:
                self._log_throttle(k, kind, rid, arrival, t, attempt, reason, Outcome.RETRY)
                self._unfinished.add(rid)
                ev = self.env.timeout(delay)
                ev.callbacks.append(
                    lambda _ev: self.dispatch(k, retry_at, d_ms, arrival, attempt + 1, kind, rid)
                )
                self.events += 1
                return
            outcome = DROPPED
        else:
            outcome = THROTTLED
        self._log_throttle(k, kind, rid, arrival, t, attempt, reason, outcome)
        self._unfinished.discard(rid)
        if kind != USER:
            cols.sparse["warmer"]["row"].append(cols.row())
        cols.note_retried(outcome, attempt, t - arrival)
        self._link_call(rid)
        cols.unserved(k, rid, arrival)
        if self._waiters:
            self._ended(rid, t, False)  # a sync caller gets the error at once

    def _log_throttle(self, k, kind, rid, arrival, t, attempt, reason, outcome) -> None:
        self.columns.throttle(
            function=k, kind=kind, request_id=rid, arrival_s=arrival, time_s=t,
            attempt=attempt, reason=reason, outcome=outcome,
        )  # fmt: skip

    # -- instance lifecycle -----------------------------------------------------------------

    def _releaser(self) -> Callable[[float], None]:
        """release(now): every instance whose request (or init, if provisioned or pre-warmed)
        ended by `now` goes idle, or is retired: past its lifetime, or surplus to a lowered
        provisioned count. A closure, like dispatch: it runs about once per request."""
        inst = self.instances
        busy, retire_at, expiry, reason = self.busy, inst.retire, inst.expiry, inst.reason
        fn_of, user_of, special = inst.fn, inst.user, inst.special
        multi = [router is not None for router in self.routers]
        multi_end = self._multi_end
        od_busy, used = self.limits.od_busy, self.limits.used
        unreserved = [r is None for r in self.limits.reserved]
        window_of = self._window_of
        floors = self._floors
        queueing, lines, busy_of = any(self._queues_at), self._lines, self._busy_of
        slots_of = self._slots
        host_cpus, host_end = self.host_cpus, self._host_end
        prewarm_of = [self._at_moment(policy, _hook(policy, "prewarm"))
                      for policy in self.keep_alive]  # fmt: skip
        prewarming = any(prewarm_of)
        put = self.pool_put
        special_release, prewarm, heappop = self._special_release, self._prewarm, heapq.heappop
        hosts, pending, start_pending = self.hosts, self._pending, self._start_pending
        hosted = hosts is not None
        if hosted:
            went_idle, leaves = hosts.went_idle, hosts.leaves

        def release(now):
            while busy and busy[0][0] <= now:
                if pending and pending[0][0] < busy[0][0]:
                    start_pending()  # a pre-warm's init starts before that instance is free
                    continue
                end, iid = heappop(busy)
                k = fn_of[iid]
                if special[iid] and special_release(k, iid, end):
                    continue
                if multi[k] and multi_end(k, iid, end):
                    continue  # it still serves other requests (or a stale departure)
                if host_cpus is not None and not host_end(iid, end):
                    continue  # a departure rescheduled since
                u = user_of[iid]  # the concurrency it held was its request's function's
                if unreserved[u]:
                    used[0] -= 1
                else:
                    od_busy[u] -= 1
                if queueing and (line := lines.get(iid)) is not None:
                    if not multi[k]:
                        line.popleft()
                        if line:  # a request queued behind the one that ended runs next
                            continue
                    else:  # (a multi-request instance here serves none: all ended)
                        slots_of.pop(iid, None)
                    del lines[iid]
                    busy_of[k].discard(iid)
                retire = retire_at[iid]
                if end >= retire:
                    expiry[iid], reason[iid] = end, LIFETIME
                    if hosted:
                        leaves(iid, end)
                    continue
                evict_at = end + window_of[k](end, iid)
                if floors and iid in floors:  # a policy keeps it warm till then
                    evict_at = self._floored(iid, end, evict_at)
                if evict_at > retire:
                    expiry[iid], reason[iid] = retire, LIFETIME
                else:
                    expiry[iid], reason[iid] = evict_at, IDLE
                put[k](iid, end)
                if hosted:
                    went_idle(iid, k, end, expiry[iid])
                if prewarming and prewarm_of[k] is not None:
                    ask = prewarm_of[k](end, iid)
                    if ask is not None:
                        prewarm(k, iid, end, ask)
            while pending and pending[0][0] <= now:
                start_pending()

        return release

    def _multi_end(self, k: int, iid: int, end: float) -> bool:
        """A departure at `end` from a multi-request instance: True if handled here (a stale
        CPU-sharing departure, or the instance still serves others: its request's
        concurrency is given back here), False when the instance is now idle."""
        sharing = self.sharing
        if sharing is not None and sharing.capacity_of[k] is not None:
            done = sharing.finish(k, iid, end)
            if done is None:
                return True  # rescheduled since
            row, due = done
            cols = self.columns
            inv, at = cols.invocations, row - cols.offset  # (an unfinished row is held)
            inv["end_s"][at] = end
            inv["duration_ms"][at] = (end - inv["start_s"][at]) * 1000.0
            rid = int(inv["request_id"][at])
            self._unfinished.discard(rid)
            if self._waiters:
                self._ended(rid, end, self._cold_waited.pop(rid, False))
            if due < math.inf:
                heapq.heappush(self.busy, (due, iid))
                if self.hosts is not None and self._queue.count:
                    self._arm(due)  # the others sped up: one may leave sooner
        if not self.routers[k].left(iid, end):
            return False
        limits, u = self.limits, self.instances.user[iid]
        if limits.reserved[u] is None:
            limits.used[0] -= 1
        else:
            limits.od_busy[u] -= 1
        return True

    def _special_release(self, k: int, iid: int, end: float) -> bool:
        """A provisioned instance freed, or a pre-warmed one's init ended; True when handled
        here, False when it goes idle like any on-demand instance."""
        inst = self.instances
        if inst.provisioned[iid]:
            self.provisioned.went_idle(k, iid, end)
            return True
        if self.hosts is not None and inst.host[iid] < 0 and iid in inst.warming:
            self._place_prewarm(iid)  # init 0: it starts as it is ready
        if iid in self._cancelled:  # a pre-warm that never found room
            self._cancelled.discard(iid)
            return True
        stale = self._stale.get(iid)
        if stale is not None:  # a request took it while it was warming
            if end != stale:
                return False  # that request's end (its init started early): idle as usual
            del self._stale[iid]
            inst.special[iid] = False  # from now on an ordinary instance
            return True
        # Ready and untaken: idle for its pre-warm keep-alive window, within its lifetime.
        inst.warming.discard(iid)
        inst.special[iid] = False
        retire = inst.retire[iid]
        keep = self._prewarm_keep.pop(iid)
        if keep is None:  # started ahead by scaling: it idles like any instance
            keep = self._window_of[k](end, iid)
        evict_at = end + keep
        if iid in self._floors:
            evict_at = self._floored(iid, end, evict_at)
        if end >= retire:  # its lifetime ran out during its init: gone as it is ready
            inst.end(iid, end, EndReason.LIFETIME)
            if self.hosts is not None:
                self.hosts.leaves(iid, end)
            if self.routers[k] is not None:
                self.routers[k].starting.discard(iid)
            return True
        if evict_at > retire:
            inst.end(iid, retire, EndReason.LIFETIME)
        else:
            inst.end(iid, evict_at, EndReason.IDLE)
        self.pool_put[k](iid, end)
        if self.hosts is not None:
            self.hosts.went_idle(iid, k, end, inst.expiry[iid])
        return True

    def _prewarm(self, k: int, iid: int, end: float, ask) -> None:
        """The keep-alive policy asked for a pre-warmed instance when `iid` went idle (`ask`,
        not None: release calls this only then)."""
        try:
            ready_at, keep_s = (float(x) for x in ask)
        except (TypeError, ValueError):
            ready_at = keep_s = math.nan
        if not (math.isfinite(ready_at) and keep_s >= 0.0):
            raise PolicyError(
                f"keep-alive policy {self.keep_alive[k].policy} returned {ask!r} from prewarm: "
                "need None or Prewarm(ready_at_s, keep_alive_s) with a finite ready_at_s and "
                "keep_alive_s >= 0"
            )
        self.start_prewarm(k, end, ready_at, keep_s)

    def start_prewarm(self, k: int, now: float, ready_at: float, keep_s: float | None) -> int:
        """A pre-warmed instance of function k, asked for at `now`: ready at `ready_at` (its
        init starts then less its init time, not before now), kept idle keep_s once ready
        (None: the keep-alive policy's window then). No concurrency or scaling token."""
        inst = self.instances
        new = inst.new_prewarmed(k, now, max(ready_at, now))
        ready = inst.ready_s(new)
        self._prewarm_keep[new] = keep_s
        if self.routers[k] is not None:  # its router counts it as starting (scaling ahead)
            self.routers[k].starting.add(new)
        heapq.heappush(self.busy, (ready, new))
        heapq.heappush(self.warming[k], (ready, new))
        if self.hosts is not None:  # it takes memory when its init starts
            heapq.heappush(self._pending, (inst.created[new], new))
        return new

    def retire_idle(self, iid: int, now: float) -> None:
        """A policy ends an idle on-demand instance at `now` (the context checked it is)."""
        inst, k = self.instances, self.instances.fn[iid]
        inst.end(iid, now, EndReason.IDLE)
        if self.hosts is not None:
            self.hosts.moved(iid, now)
        if self.routers[k] is not None:
            self.routers[k].forget(iid)

    def _floored(self, iid: int, end: float, evict_at: float) -> float:
        """The end of an idle period from `end`, at least the instance's floor."""
        floor = self._floors[iid]
        if floor <= end:
            del self._floors[iid]  # over
            return evict_at
        return max(evict_at, floor)

    def keep_until(self, iid: int, until: float, idle: bool) -> None:
        """A policy keeps an instance warm at least until `until` (within its lifetime): its
        window now if it is idle, and that of every idle period it starts before then."""
        self._floors[iid] = max(self._floors.get(iid, until), until)
        if idle:
            self._extend_idle(iid, until)

    def _extend_idle(self, iid: int, until: float) -> None:
        inst = self.instances
        retire = inst.retire[iid]
        at, reason = (retire, EndReason.LIFETIME) if until >= retire else (until, EndReason.IDLE)
        if at <= inst.expiry[iid]:
            return
        inst.end(iid, at, reason)
        if self.hosts is not None:
            self.hosts.moved(iid, at)
        router = self.routers[inst.fn[iid]]
        if router is not None:
            router.went_idle(iid, at)

    def _start_pending(self) -> None:
        """The next pre-warm's init starts: it goes on a host, or is given up."""
        created, iid = heapq.heappop(self._pending)
        inst = self.instances
        if inst.host[iid] >= 0 or iid not in inst.warming:
            return  # a request took it and started its init earlier, or it went with 0 init
        self._place_prewarm(iid)

    def _place_prewarm(self, iid: int) -> None:
        """Put a pre-warm on a host as its init starts, or give it up (it never runs): when
        no host can make room, when requests wait for memory (they come first), or when it
        would start after the run's horizon (nobody would use it)."""
        inst, hosts = self.instances, self.hosts
        created = inst.created[iid]
        h = -1
        if not self._queue.count and created < self._closing_at:
            h = hosts.place(inst.fn[iid], created)
        if h >= 0:
            inst.host[iid] = h
            return
        inst.warming.discard(iid)
        del self._prewarm_keep[iid]
        if self.routers[inst.fn[iid]] is not None:
            self.routers[inst.fn[iid]].starting.discard(iid)
        inst.init_ms[iid] = 0.0
        inst.end(iid, created, EndReason.UNPLACED)
        self._cancelled.add(iid)

    # -- memory pressure --------------------------------------------------------------------

    def _no_room(self, k, t, d_ms, arrival, attempt, kind, rid):
        """No memory for a new instance for this request: it waits in line (or stays there:
        BLOCKED, while the line is served), or is dropped."""
        spec = self.scenario.platform.hosts
        if self._draining[0]:
            return BLOCKED
        if spec.on_full == "queue":
            deadline = t + spec.max_wait_s
            f = self.scenario.functions[k]
            if f.invocation == "async":  # Lambda drops events older than their maximum age
                deadline = min(deadline, arrival + f.max_event_age_s)
            if deadline > t:
                self._queue.add(Waiting(deadline, t, k, d_ms, arrival, attempt, kind, rid))
                self._unfinished.add(rid)
                self._arm(self._next_change())
                return None
        self._drop(k, t, arrival, attempt, kind, rid, t)
        return None

    def _drop(self, k, t, arrival, attempt, kind, rid, queued_at) -> None:
        """A request that found no memory (and waited from queued_at to t) is dropped."""
        cols = self.columns
        self._log_throttle(k, kind, rid, arrival, t, attempt, MEMORY, Outcome.DROPPED)
        if kind != USER:
            cols.sparse["warmer"]["row"].append(cols.row())
        if t > queued_at:
            wait = cols.sparse["memory_wait"]
            wait["row"].append(cols.row())
            wait["wait_ms"].append((t - queued_at) * 1000.0)
        # queue_delay_ms: only the async queueing before it met the memory shortage
        cols.note_retried(DROPPED, attempt, queued_at - arrival)
        self._link_call(rid)
        cols.unserved(k, rid, arrival)
        self._unfinished.discard(rid)
        if self._waiters:
            self._ended(rid, t, False)

    def _next_change(self) -> float:
        """The next moment a waiting request might be served: an instance freed or leaving,
        a pre-warm starting, or the earliest deadline (the head's)."""
        head, busy, sharing = self._queue.head(), self.busy, self.sharing
        if sharing is not None:  # departures rescheduled since are no change
            inst = self.instances  # (a pre-warm's ready time is one, clock or not)
            while (busy and not inst.special[busy[0][1]]
                   and sharing.superseded(inst.fn[busy[0][1]], *busy[0])):  # fmt: skip
                heapq.heappop(busy)
        return min(
            busy[0][0] if busy else math.inf,
            self.hosts.next_departure(),
            self._pending[0][0] if self._pending else math.inf,
            head.deadline if head is not None else math.inf,
        )

    def _arm(self, when: float) -> None:
        """Look at the queue at `when` (unless an earlier look is due)."""
        if when >= self._wake[0]:
            return
        self._wake[0] = when
        self.events += 1
        ev = self.env.timeout(max(0.0, when - self.env.now))
        ev.callbacks.append(lambda _ev: self._drain(when))

    def _drain(self, when: float) -> None:
        """Serve waiting requests: those an instance of their own function can take, then
        the line in order while memory is found; drop those past their deadline."""
        if when != self._wake[0]:
            return  # superseded by an earlier look
        self._wake[0] = math.inf
        self.release(when)
        queue = self._queue
        for k in sorted(queue.functions):  # no memory needed: any place in the line
            while (item := queue.first_of(k)) is not None and item.deadline > when:
                if not self._serve(item, when, 2):
                    break
        while (item := queue.head()) is not None:
            if item.deadline <= when:
                queue.done(item)
                self._drop(item.k, item.deadline, item.arrival, item.attempt, item.kind,
                           item.rid, item.queued_at)  # fmt: skip
                continue
            if not self._serve(item, when, 1):
                break
        if queue:
            self._arm(self._next_change())

    def _serve(self, item: Waiting, when: float, mode: int) -> bool:
        """Dispatch a waiting request (mode 1: it may take memory; 2: only an instance of
        its function); False if it must wait on."""
        cols, draining = self.columns, self._draining
        row = cols.row()
        retried = len(cols.sparse["retried"]["row"])
        draining[0] = mode
        try:
            answer = self.dispatch(item.k, when, item.d_ms, item.arrival, item.attempt,
                                   item.kind, item.rid)  # fmt: skip
        finally:
            draining[0] = 0
        if answer is BLOCKED:
            return False
        self._queue.done(item)
        inv, at = cols.invocations, row - cols.offset
        if cols.row() > row and inv["instance_id"][at] >= 0:  # served
            if inv["end_s"][at] == inv["end_s"][at]:  # (a NaN end comes later)
                self._unfinished.discard(item.rid)
            waited_ms = (when - item.queued_at) * 1000.0
            wait = cols.sparse["memory_wait"]
            wait["row"].append(row)
            wait["wait_ms"].append(waited_ms)
            delays = cols.sparse["retried"]["queue_delay_ms"]
            if len(delays) > retried:  # an async retry: its memory wait is not Lambda's queue
                delays[-1] -= waited_ms
        return True

    # -- output -----------------------------------------------------------------------------

    def _flush(self, last: bool = False) -> None:
        """Hand over the rows that are final: those of requests numbered below every request
        still under way (in request-id order), and the throttled attempts so far; `last`:
        every row (the run is over)."""
        cols = self.columns
        before = min(self._unfinished, default=2**31)
        # A sink takes every row up to the first one still to be completed (a request running
        # on a shared CPU has its row already), with `before`, and keeps request-id order
        # itself where it needs it (a request log): holding rows back behind an async request
        # that waits to be retried would hold every function's rows meanwhile.
        if last:
            rows = cols.held()
        elif self.sink is not None:
            rows = cols.rows_before(self._unfinished)
        else:
            rows = cols.final_rows(before)
        if rows:
            block = cols.take(rows, self.instances.init_ms)
            self.handovers += 1
            ends = block["end_s"][np.isfinite(block["end_s"])]
            if len(ends):
                self._latest_end = max(self._latest_end, float(ends.max()))
            iid = block["instance_id"]
            ids, n = np.unique(iid[iid >= 0], return_counts=True)
            if len(ids) and ids[-1] >= len(self._served):
                grown = np.zeros(max(2 * len(self._served), int(ids[-1]) + 1), dtype=np.int64)
                grown[: len(self._served)] = self._served
                self._served = grown
            self._served[ids] += n
            if self.sink is None:
                self._blocks.append(block)
            else:
                self.sink.rows(block, self.instances, 2**31 if last else before)
        throttles = cols.take_throttles()
        if self.sink is None:
            self._throttle_blocks.append(throttles)
        else:
            self.sink.throttles(throttles)

    def _last_end(self) -> float:
        """The latest end of a request so far (0 if none)."""
        ends = np.frombuffer(self.columns.invocations["end_s"][:], dtype=float)
        ends = ends[np.isfinite(ends)]
        return max(self._latest_end, float(ends.max()) if len(ends) else 0.0)

    def _event_log(self) -> EventLog:
        if self._unfinished:  # every request has ended by now; else a bookkeeping slip
            raise RuntimeError(f"requests {sorted(self._unfinished)[:5]} never ended")
        self._flush(last=True)
        inv = _concatenated(self._blocks, self.columns)
        throttles = {c: np.concatenate([b[c] for b in self._throttle_blocks])
                     if self._throttle_blocks else np.empty(0, dtype=col.typecode)
                     for c, col in self.columns.throttles.items()}  # fmt: skip
        horizon = max(self.scenario.duration_s, self._latest_end, self.horizon_floor_s)
        self.provisioned.finish(horizon)
        inst = self.instances
        return EventLog(
            functions=[f.name for f in self.scenario.functions],
            invocations=inv,
            instances=inst.columns(horizon, self._served),
            throttles=throttles,
            horizon_s=horizon,
            events=self.events,
            ends=(np.array(inst.expiry, dtype=float), np.array(inst.reason, dtype=np.int8)),
            next_replacement_s=self.provisioned.next_replacement_s,
            routing_drops=self._route is not None,
            plugins=self.plugin_clock.report(),
        )


def _concatenated(blocks: list[dict[str, np.ndarray]], columns: Columns) -> dict[str, np.ndarray]:
    """The invocation blocks as one table (an empty one, typed, when there were none),
    column by column, each block's column freed as it is copied (one column's extra memory
    at a time)."""
    if not blocks:
        return columns.take(0, [])
    if len(blocks) == 1:
        return blocks.pop()
    out = {}
    for c in list(blocks[0]):
        out[c] = np.concatenate([b.pop(c) for b in blocks])
    blocks.clear()
    return out


@contextmanager
def frozen_heap():
    """While the engine is built and runs, the garbage collector leaves the objects that
    existed before alone (gc.freeze): a scenario of tens of thousands of functions is millions
    of objects, and every full collection would walk them all (a 46,000-function engine was
    built in 3.6 s instead of 1.3 s). They are handed back to the collector afterwards."""
    if gc.get_freeze_count():  # the program froze objects itself: leave its choice alone
        yield
        return
    gc.freeze()  # (garbage among them waits for the next collection after the run)
    try:
        yield
    finally:
        gc.unfreeze()


def reporter(progress: Callable[..., None] | None) -> Callable[[float, int], None]:
    """report(fraction, requests) for a progress callback: progress(fraction, requests=n)
    when it takes `requests` (requests placed so far: the CLI shows their rate), else
    progress(fraction)."""
    if progress is None:
        return lambda fraction, requests: None
    try:
        takes = "requests" in inspect.signature(progress).parameters
    except (TypeError, ValueError):  # a builtin or C callable: the one-argument form
        takes = False
    if takes:
        return lambda fraction, requests: progress(fraction, requests=requests)
    return lambda fraction, requests: progress(fraction)


@functools.cache
def _takes_ctx(cls: type) -> bool:
    """Whether a policy class's `start` asks for a context (once per class: a trace day
    starts tens of thousands of copies)."""
    return "ctx" in inspect.signature(cls.start).parameters
