"""Hosts with memory: where instances live when `platform.hosts` is set (a provider's view).

An instance holds its function's `host_memory_mb` on one host from the start of its init until
it ends. The engine's idle windows are computed, not scheduled, so memory held by an idle
instance whose window has run out is given back lazily: `place()` first frees everything that
ended by now (a heap of departure times). Idle instances that the eviction policy may evict
sit in one heap per host, ordered by their priority; entries of instances used again since
are skipped when met (each idle period has its own stamp).

Footprints are rounded to whole KB, so that sums of them are exact in binary floating point
and a host's free memory never drifts.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Sequence

from .eventlog import EndReason
from .instances import Instances


def footprint_mb(memory_mb: float) -> float:
    """An instance's memory on its host: memory_mb to the nearest KB."""
    return round(memory_mb * 1024.0) / 1024.0


class Hosts:
    def __init__(
        self,
        count: int,
        capacity_mb: float | Sequence[float],
        footprints_mb: Sequence[float],
        order: Callable,
        priority: Callable[[int, int, int, float], float],
        evicted: Callable[[int, int, int, float], None],
        instances: Instances,
        choose: Callable | None = None,
        departed: Callable[[int, int, int], None] | None = None,
    ):
        """choose: the eviction policy's choice of victims at the moment of eviction (None:
        lowest priority first); departed: told of every instance that leaves otherwise."""
        if isinstance(capacity_mb, int | float):
            capacity_mb = [capacity_mb] * count
        #: Each host's memory for instances (host classes may differ).
        self.capacity = [footprint_mb(c) for c in capacity_mb]
        self.free = list(self.capacity)
        self.evictable = [0.0] * count  # memory of idle instances pressure may evict
        self.mb = [footprint_mb(m) for m in footprints_mb]  # per function
        self._order, self._priority, self._evicted = order, priority, evicted
        self._choose, self._departed = choose, departed
        #: With a choosing policy: idle instance -> when it went idle (for its candidates).
        self._since: dict[int, float] | None = {} if choose is not None else None
        self.instances = instances
        #: Instances holding memory with a known departure: instance -> (stamp, evictable).
        self._leaving_of: dict[int, tuple[int, bool]] = {}
        self._leaving: list[tuple[float, int, int]] = []  # (when, stamp, instance)
        self._heaps: list[list[tuple[float, int, int]]] = [[] for _ in range(count)]
        self._valid = [0] * count  # live entries in each host's heap
        self._stamp = itertools.count().__next__
        self.now = 0.0  # the latest time memory was looked at
        self.went_idle, self.taken = self._hot_paths()

    def _hot_paths(self):
        """went_idle and taken, called about once per request: closures over the tables
        (locals are the cheapest state Python has)."""
        leaving_of, heaps, valid, evictable, mb = (
            self._leaving_of, self._heaps, self._valid, self.evictable, self.mb,
        )  # fmt: skip
        host, fn = self.instances.host, self.instances.fn
        next_stamp, priority, compact = self._stamp, self._priority, self._compact
        heappush, inf, leaving = heapq.heappush, math.inf, self._leaving
        since = self._since

        def went_idle(iid: int, k: int, now: float, until: float) -> None:
            """Instance iid went idle at `now`; it leaves at `until` unless used first."""
            stamp = next_stamp()
            h = host[iid]
            p = priority(iid, k, h, now)
            if until != inf:
                if len(leaving) > 4 * len(leaving_of) + 64:  # mostly stale: keep it small
                    compact(leaving)
                heappush(leaving, (until, stamp, iid))
            if p == inf:  # never evicted for memory
                leaving_of[iid] = (stamp, False)
                return
            leaving_of[iid] = (stamp, True)
            if since is not None:
                since[iid] = now
            heap = heaps[h]
            if len(heap) > 4 * valid[h] + 64:
                compact(heap)
            heappush(heap, (p, stamp, iid))
            valid[h] += 1
            evictable[h] += mb[k]

        def taken(iid: int) -> None:
            """An instance serves a request: if idle, no longer leaving or evictable (a
            multi-request instance may be busy already)."""
            entry = leaving_of.pop(iid, None)
            if entry is not None and entry[1]:
                h = host[iid]
                evictable[h] -= mb[fn[iid]]
                valid[h] -= 1

        return went_idle, taken

    # -- what the engine calls --------------------------------------------------------------

    def place(self, k: int, t: float) -> int:
        """A host for a new instance of function k at time t (memory taken, evicting idle
        instances if needed), or -1 when none can make room."""
        self.free_ended(t)
        mb, free, evictable = self.mb[k], self.free, self.evictable
        hosts = self._order(k, mb, free)
        if not isinstance(hosts, tuple | list):
            hosts = list(hosts)
        for h in hosts:
            if free[h] >= mb:
                free[h] -= mb
                return h
        for h in hosts:
            if free[h] + evictable[h] >= mb:
                self._evict(h, mb, t)
                free[h] -= mb
                return h
        return -1

    def free_ended(self, t: float) -> None:
        """Give back the memory of every instance that ended by t."""
        self.now = max(self.now, t)
        leaving, leaving_of = self._leaving, self._leaving_of
        while leaving and leaving[0][0] <= t:
            when, stamp, iid = heapq.heappop(leaving)
            entry = leaving_of.get(iid)
            if entry is None or entry[0] != stamp:
                continue  # used again since
            if self.instances.expiry[iid] > when:
                continue  # a policy kept it longer (`moved`): a later entry frees it
            del leaving_of[iid]
            k = self.instances.fn[iid]
            h, mb = self.instances.host[iid], self.mb[k]
            self.free[h] += mb
            if entry[1]:
                self.evictable[h] -= mb
                self._valid[h] -= 1
            if self._since is not None:
                self._since.pop(iid, None)
            if self._departed is not None:
                self._departed(iid, k, h)

    def _compact(self, heap: list[tuple[float, int, int]]) -> None:
        """Drop the entries (key, stamp, instance) of idle periods that are over."""
        get = self._leaving_of.get
        heap[:] = [e for e in heap if (now := get(e[2])) is not None and now[0] == e[1]]
        heapq.heapify(heap)

    def leaves(self, iid: int, at: float) -> None:
        """Instance iid ends at `at` without going idle (recycled at the end of a request)."""
        stamp = self._stamp()
        self._leaving_of[iid] = (stamp, False)
        heapq.heappush(self._leaving, (at, stamp, iid))

    def moved(self, iid: int, at: float) -> None:
        """An idle instance leaves at `at` instead (a policy retired it, or kept it longer:
        its instance table entry says when); it stays evictable as it was."""
        entry = self._leaving_of.get(iid)
        if entry is not None:
            heapq.heappush(self._leaving, (at, entry[0], iid))

    def next_departure(self) -> float:
        return self._leaving[0][0] if self._leaving else math.inf

    # -- eviction ---------------------------------------------------------------------------

    def _evict(self, h: int, mb: float, t: float) -> None:
        """Evict idle instances of host h, lowest priority first (or as the policy chooses),
        until mb is free."""
        if self._choose is not None:
            self._evict_chosen(h, mb, t)
            return
        heap, leaving_of, free = self._heaps[h], self._leaving_of, self.free
        while free[h] < mb:
            p, stamp, iid = heapq.heappop(heap)
            entry = leaving_of.get(iid)
            if entry is None or entry[0] != stamp:
                continue  # used again, or gone, since
            self._evict_one(iid, h, p, t)

    def _evict_one(self, iid: int, h: int, p: float, t: float) -> None:
        del self._leaving_of[iid]
        inst = self.instances
        k = inst.fn[iid]
        self.free[h] += self.mb[k]
        self.evictable[h] -= self.mb[k]
        self._valid[h] -= 1
        inst.end(iid, t, EndReason.PRESSURE)
        self._evicted(iid, k, h, p)

    def _evict_chosen(self, h: int, mb: float, t: float) -> None:
        """The policy picks the victims among the host's idle evictable instances."""
        from ..policies.eviction import Candidate

        heap, leaving_of, inst = self._heaps[h], self._leaving_of, self.instances
        since = self._since
        live = sorted(e for e in heap if (on := leaving_of.get(e[2])) is not None and on[0] == e[1])
        heap[:] = live  # sorted: a heap already, without the stale entries
        candidates = [
            Candidate(iid, inst.fn[iid], self.mb[inst.fn[iid]], since[iid], p)
            for p, _, iid in live
        ]  # fmt: skip
        priority = {iid: p for p, _, iid in live}
        for iid in self._choose(h, mb - self.free[h], candidates, t):
            self._evict_one(iid, h, priority[iid], t)
            del since[iid]
