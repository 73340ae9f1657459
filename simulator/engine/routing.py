"""Multi-request instances: which instance with room takes a request.

With `instance_concurrency` N > 1 (Lambda Managed Instances, Azure Functions, Cloud Run,
Knative) an instance serves up to N requests at once. It is idle, and subject to keep-alive
and selection like any instance, only when it serves none. Instances serving 1..N-1 requests
("open" here, including those still initialising: a request routed there waits for the init)
are kept in buckets by load, so a pick costs the number of distinct loads, not of instances.

Rules [sources: knative-concurrency, cloudrun-concurrency]:
- pack: the busiest ready open instance, then an idle one, then the busiest one still
  initialising (fills instances up to their concurrency so that fewer stay busy, without
  making a request wait for an init an idle instance spares it);
- least-loaded: an idle instance, then the least busy ready open one, then the least busy
  one still initialising (spreads requests, as Knative's activator does, which is what
  matters when requests share CPU).
A draining instance (past its recycling time) takes no new request.

Scaling ahead (scale_target < 1, the rule of Knative, Cloud Run and Managed Instances
[sources: knative-concurrency, aws-managed-instances]): the platform keeps
ceil(requests in flight / (scale_target x N)) instances, starting the missing ones in the
background; requests keep going to instances with room meanwhile. The router counts what it
needs for that: requests in flight, busy instances, idle ones (until their keep-alive ends)
and those starting.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable


class Router:
    """The open instances of one function (or one app) and the routing rule over them."""

    def __init__(
        self,
        rule: str,
        capacity: int,
        active: list[int],
        retire: list[float],
        take_idle: Callable[[float], int],
        ready_s: Callable[[int], float],
    ):
        self.capacity = capacity
        self.packs = rule == "pack"
        self._active, self._retire, self._take_idle = active, retire, take_idle
        self._ready_s = ready_s
        #: load -> {instance id: None}, insertion-ordered (a pick is deterministic)
        self._buckets: dict[int, dict[int, None]] = {}
        self.in_flight = 0  # requests on the function's instances
        self.busy = 0  # instances serving at least one request
        self.starting: set[int] = set()  # started ahead, not yet idle or serving
        self.pinned: set[int] = set()  # idle instances kept for min_instances
        self._idle: dict[int, float] = {}  # idle instance -> end of its keep-alive
        self._idle_ends: list[tuple[float, int]] = []

    def pick(self, t: float) -> tuple[int, bool]:
        """(instance, came from the idle pool) for a request at t, its load counted; (-1,
        False) when no instance has room."""
        iid = self._ready_open(t) if self.packs else -1
        if iid < 0:
            iid = self._take_idle(t)
            if iid >= 0:
                self.joined(iid)
                return iid, True
            if not self.packs:
                iid = self._ready_open(t)
            if iid < 0:
                iid = self._open(t)
        if iid >= 0:
            self.joined(iid)
        return iid, False

    def _open(self, t: float) -> int:
        """The busiest (pack) or least busy open instance, ready or not."""
        buckets, retire = self._buckets, self._retire
        while buckets:
            load = max(buckets) if self.packs else min(buckets)
            bucket = buckets[load]
            for iid in bucket:
                if retire[iid] > t:
                    return iid
                break
            del bucket[iid]  # draining: it finishes what it serves, then retires
            if not bucket:
                del buckets[load]
        return -1

    def _ready_open(self, t: float) -> int:
        """The busiest (pack) or least busy open instance that is ready at t (instances
        initialising are few: skipped, not removed)."""
        buckets, retire, ready_s = self._buckets, self._retire, self._ready_s
        for load in sorted(buckets, reverse=self.packs):
            bucket = buckets[load]
            draining = []
            found = -1
            for iid in bucket:
                if retire[iid] <= t:  # draining: it finishes what it serves, then retires
                    draining.append(iid)
                elif ready_s(iid) <= t:
                    found = iid
                    break
            for iid in draining:
                del bucket[iid]
            if not bucket:
                del buckets[load]
            if found >= 0:
                return found
        return -1

    def joined(self, iid: int) -> None:
        """A request starts on iid (a new instance's first, or one routed to it)."""
        active = self._active
        load = active[iid]
        if load:
            self._leave_bucket(iid, load)
        else:
            self.busy += 1
            self._idle.pop(iid, None)
            self.starting.discard(iid)
            self.pinned.discard(iid)
        self.in_flight += 1
        load += 1
        active[iid] = load
        if load < self.capacity:
            self._buckets.setdefault(load, {})[iid] = None

    def left(self, iid: int, now: float) -> int:
        """A request on iid ended at `now`: its remaining load (0: the instance is idle)."""
        active = self._active
        load = active[iid]
        self._leave_bucket(iid, load)
        self.in_flight -= 1
        load -= 1
        active[iid] = load
        if not load:
            self.busy -= 1
        if load and load < self.capacity and self._retire[iid] > now:  # (room again)
            self._buckets.setdefault(load, {})[iid] = None
        return load

    def went_idle(self, iid: int, until: float) -> None:
        """iid is idle (serving nothing) until `until`, when its keep-alive ends."""
        self.starting.discard(iid)
        self._idle[iid] = until
        heapq.heappush(self._idle_ends, (until, iid))

    def forget(self, iid: int) -> None:
        """An idle instance left early (evicted for memory)."""
        self._idle.pop(iid, None)
        self.pinned.discard(iid)

    def alive(self, t: float) -> int:
        """Instances busy, idle (keep-alive not over at t) and starting."""
        idle, ends = self._idle, self._idle_ends
        while ends and ends[0][0] <= t:
            until, iid = heapq.heappop(ends)
            if idle.get(iid) == until:
                del idle[iid]
        return self.busy + len(idle) + len(self.starting)

    def missing(self, target: float, t: float, least: int = 0, waiting: int = 0) -> int:
        """Instances to start at t for requests in flight (and `waiting` ones turned away)
        to stay within `target` of the capacity, and for at least `least` to be alive."""
        wanted = math.ceil((self.in_flight + waiting) / (target * self.capacity) - 1e-9)
        return max(wanted, least) - self.alive(t)

    def _leave_bucket(self, iid: int, load: int) -> None:
        bucket = self._buckets.get(load)
        if bucket is not None and bucket.pop(iid, 0) is None and not bucket:
            del self._buckets[load]
