"""The engine's side of a policy's context (`coldsim.policies.context`): queries over the
instance table, and the actions policies take.

Nothing here runs per request. The engine's hot paths keep no counts for the context: a query
derives each instance's state at `now` from the table (an instance is busy while its
`reason` is BUSY: dispatch marks it, release overwrites it with how its idle period ends).
Instances are filed by function and by host as queries first meet them, and those found
ended are dropped from the files then, so a query costs the live instances it looks at.
Provisioned instances idle are counted from their pool (a retired one stands for the
successor the pool creates when it is next taken).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..policies.base import PolicyError
from ..policies.context import FunctionInfo, HostState, InstanceCounts, PolicyContext
from ..policies.timing import timed
from .eventlog import EndReason
from .instances import BUSY

if TYPE_CHECKING:
    from .core import Engine

IDLE, BUSY_, INITIALISING, PREWARMING, GONE, UNCOUNTED = range(6)
ALIVE, UNPLACED, DEPROVISIONED = int(EndReason.ALIVE), int(EndReason.UNPLACED), int(
    EndReason.DEPROVISIONED
)


class Census:
    """Instances filed by function and host, and their states at a time."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.inst = engine.instances
        n = len(engine.scenario.functions)
        self.of_function: list[list[int]] = [[] for _ in range(n)]
        hosts = engine.scenario.platform.hosts
        self.of_host: list[list[int]] = [[] for _ in range(hosts.count if hosts else 0)]
        self.unplaced: list[int] = []  # pre-warms not on a host yet
        self.seen = 0  # instances filed so far

    def file_new(self) -> None:
        inst = self.inst
        for iid in range(self.seen, len(inst)):
            self.of_function[inst.fn[iid]].append(iid)
            if self.of_host:
                (self.of_host[inst.host[iid]] if inst.host[iid] >= 0 else self.unplaced).append(iid)
        self.seen = len(inst)

    def state(self, iid: int, now: float) -> int:
        inst = self.inst
        if iid in inst.warming:
            return PREWARMING
        reason = inst.reason[iid]
        if reason == BUSY:
            return INITIALISING if now < inst.ready_s(iid) else BUSY_
        if inst.provisioned[iid]:
            if reason == ALIVE:  # configured, not through its first init yet
                return INITIALISING
            if reason == DEPROVISIONED or inst.expiry[iid] <= now:
                return GONE
            return UNCOUNTED  # idle: counted from the provisioned pool
        if reason == UNPLACED or inst.expiry[iid] <= now:
            return GONE
        return IDLE

    def states(self, files: list[int], now: float) -> list[tuple[int, int]]:
        """(instance, state) of the live instances in `files`, which keeps only those."""
        out = [(iid, self.state(iid, now)) for iid in files]
        files[:] = [iid for iid, s in out if s != GONE]
        return [entry for entry in out if entry[1] != GONE]

    def counts(self, k: int, now: float) -> InstanceCounts:
        self.file_new()
        n = [0] * 6
        for _, s in self.states(self.of_function[k], now):
            n[s] += 1
        provisioned_idle = len(self.engine.provisioned.idle[k])
        return InstanceCounts(n[IDLE] + provisioned_idle, n[BUSY_], n[INITIALISING], n[PREWARMING])

    def idle(self, k: int, now: float) -> list[int]:
        """Function k's idle on-demand instances (not those kept for min_instances)."""
        self.file_new()
        router = self.engine.routers[k]
        pinned = router.pinned if router is not None else ()
        return [iid for iid, s in self.states(self.of_function[k], now)
                if s == IDLE and iid not in pinned]  # fmt: skip

    def host(self, h: int, now: float) -> HostState:
        self.file_new()
        inst, hosts = self.inst, self.engine.hosts
        still = []
        for iid in self.unplaced:  # a pre-warm placed since, or given up
            if inst.host[iid] >= 0:
                self.of_host[inst.host[iid]].append(iid)
            elif self.state(iid, now) != GONE:
                still.append(iid)
        self.unplaced = still
        hosts.free_ended(now)
        idle_mb, warm = 0.0, Counter()
        names = self.engine.names
        for iid, s in self.states(self.of_host[h], now):
            if s == IDLE:
                idle_mb += hosts.mb[inst.fn[iid]]
                warm[names[inst.fn[iid]]] += 1
        free, capacity = hosts.free[h], hosts.capacity[h]
        return HostState(capacity, free, idle_mb, capacity - free - idle_mb, dict(warm))


class Context(PolicyContext):
    """One policy's context: the engine's census and actions, with errors naming the policy."""

    def __init__(self, engine: Engine, census: Census, label: str):
        self._engine, self._census, self._label = engine, census, label
        self._owner = None  # the policy served (see for_policy)
        sc = engine.scenario
        self.functions = tuple(
            FunctionInfo(
                k, f.name, f.app, float(f.memory_mb), f.footprint_mb(), f.init.expected(),
                f.duration.expected() * f.duration_factor() if f.duration is not None
                else math.nan, f.instance_concurrency,
            )
            for k, f in enumerate(sc.functions)
        )  # fmt: skip
        self._index = {f.name: f.index for f in self.functions}
        apps: dict[str, list[str]] = {}
        for f in sc.functions:
            if f.app is not None:
                apps.setdefault(f.app, []).append(f.name)
        self.apps = {app: tuple(names) for app, names in apps.items()}
        self.hosts = sc.platform.hosts.count if sc.platform.hosts is not None else 0
        #: The moment of the hook under way, if it is not the engine's clock.
        self.moment: float | None = None
        #: Where actions are refused now (None: nowhere), for the error.
        self.frozen: str | None = None

    def for_policy(self, label: str, policy=None) -> Context:
        """The same context, its errors naming another policy (`policy`: the one it serves,
        whose timers' callbacks are timed if it is a user's)."""
        other = object.__new__(Context)
        other.__dict__.update(self.__dict__)
        other._label = label
        other._owner = policy
        return other

    @property
    def now(self) -> float:
        return self._engine.env.now if self.moment is None else self.moment

    def _fail(self, call: str, problem: str) -> PolicyError:
        return PolicyError(f"{self._label}: {call}: {problem}")

    def _may_act(self, call: str) -> None:
        """Actions need the engine built (not from start: schedule them with call_at) and
        are refused inside an eviction policy's hooks."""
        if not self._engine.built:
            raise self._fail(call, "the platform is not running yet in start(); schedule it: "
                             "ctx.call_at(0.0, ...)")  # fmt: skip
        if self.frozen is not None:
            raise self._fail(call, f"not from the {self.frozen} (they run while a host's "
                             "memory is being updated)")  # fmt: skip

    def _k(self, call: str, function: str | int) -> int:
        if isinstance(function, str):
            k = self._index.get(function)
        elif isinstance(function, int) and not isinstance(function, bool):
            k = function if 0 <= function < len(self.functions) else None
        else:
            k = None
        if k is None:
            raise self._fail(call, f"unknown function {function!r} (give a name from the "
                             "scenario, or its index)")  # fmt: skip
        return k

    def function(self, name: str | int) -> FunctionInfo:
        return self.functions[self._k(f"ctx.function({name!r})", name)]

    def instances(self, function: str | int) -> InstanceCounts:
        return self._census.counts(self._k(f"ctx.instances({function!r})", function), self.now)

    def in_flight(self, function: str | int) -> int:
        k = self._k(f"ctx.in_flight({function!r})", function)
        engine = self._engine
        router = engine.routers[k]
        if router is not None:  # multi-request instances: their router counts requests
            return router.in_flight
        counts = self._census.counts(k, self.now)
        queued = sum(len(engine._lines[i]) - 1 for i in engine._busy_of[k] if i in engine._lines)
        return counts.busy + counts.initialising + queued

    def idle_instances(self, function: str | int) -> list[int]:
        k = self._k(f"ctx.idle_instances({function!r})", function)
        return self._census.idle(k, self.now)

    def host(self, h: int) -> HostState:
        if not self._engine.built:
            raise self._fail(f"ctx.host({h!r})", "the hosts are not set up yet in start()")
        if not (isinstance(h, int) and 0 <= h < self.hosts):
            raise self._fail(f"ctx.host({h!r})", f"no such host (there are {self.hosts})")
        return self._census.host(h, self.now)

    # -- actions ----------------------------------------------------------------------------

    def call_at(self, t: float, callback: Callable[[float], None]) -> None:
        call = f"ctx.call_at({t!r}, ...)"
        if not callable(callback):
            raise self._fail(call, f"the callback {callback!r} is not callable")
        now = self.now
        if not (isinstance(t, int | float) and t >= now):
            raise self._fail(call, f"the time must be a number >= now ({now:.6g} s)")
        owner = self._owner
        if owner is not None and not owner.builtin():  # a user's code: time spent in plug-ins
            callback = timed(type(owner).import_path(), "call_at callback", callback)
        self._engine.call_at(float(t), callback, f"{self._label}: timer")

    def prewarm(
        self,
        function: str | int,
        count: int = 1,
        ready_at_s: float | None = None,
        keep_alive_s: float | None = None,
    ) -> list[int]:
        call = f"ctx.prewarm({function!r}, count={count!r})"
        self._may_act(call)
        k = self._k(call, function)
        now = self.now
        if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            raise self._fail(call, "count must be a whole number >= 0")
        if ready_at_s is None:
            ready_at_s = now
        elif not (isinstance(ready_at_s, int | float) and now <= ready_at_s < math.inf):
            raise self._fail(call, f"ready_at_s {ready_at_s!r} is not a finite time >= now "
                             f"({now:.6g} s)")  # fmt: skip
        if keep_alive_s is not None and not (
            isinstance(keep_alive_s, int | float) and keep_alive_s >= 0
        ):
            raise self._fail(call, f"keep_alive_s {keep_alive_s!r} is not a number >= 0")
        engine = self._engine
        return [
            engine.start_prewarm(k, now, float(ready_at_s),
                                 None if keep_alive_s is None else float(keep_alive_s))
            for _ in range(count)
        ]  # fmt: skip

    def _check(self, call: str, iid: int, rule: str, allowed: tuple[int, ...]) -> int:
        """The instance's state, if it is one of `allowed`; else a PolicyError."""
        inst = self._engine.instances
        if isinstance(iid, np.integer):
            iid = int(iid)
        if not (isinstance(iid, int) and not isinstance(iid, bool) and 0 <= iid < len(inst)):
            raise self._fail(call, "no such instance")
        if inst.provisioned[iid]:
            raise self._fail(call, f"instance {iid} is provisioned (its configuration keeps "
                             "it)")  # fmt: skip
        router = self._engine.routers[inst.fn[iid]]
        if allowed == (IDLE,) and router is not None and iid in router.pinned:
            raise self._fail(call, f"instance {iid} is kept for min_instances")
        state = self._census.state(iid, self.now)
        if state not in allowed:
            what = {IDLE: "idle", BUSY_: "busy", INITIALISING: "initialising",
                    PREWARMING: "pre-warming", GONE: "ended already",
                    UNCOUNTED: "provisioned (its configuration keeps it)"}  # fmt: skip
            raise self._fail(call, f"instance {iid} is {what[state]}: only {rule}")
        return state

    def retire(self, instance_id: int) -> None:
        call = f"ctx.retire({instance_id!r})"
        self._may_act(call)
        self._check(call, instance_id, "an idle on-demand instance can be retired", (IDLE,))
        self._engine.retire_idle(instance_id, self.now)

    def extend(self, instance_id: int, until_s: float) -> None:
        call = f"ctx.extend({instance_id!r}, {until_s!r})"
        self._may_act(call)
        if not (isinstance(until_s, int | float) and until_s >= self.now):
            raise self._fail(call, "until_s must be a time >= now")
        state = self._check(call, instance_id, "a live on-demand instance can be kept warm",
                            (IDLE, BUSY_, INITIALISING, PREWARMING))  # fmt: skip
        self._engine.keep_until(instance_id, float(until_s), state == IDLE)
