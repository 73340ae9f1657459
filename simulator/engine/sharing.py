"""CPU sharing on multi-request instances: requests slow down when their CPU demand exceeds
the instance's vCPUs.

A request's `duration` is its handler time alone on the instance; `cpu_bound` of it is CPU
work. With n requests running on V vCPUs, their CPU demand is n x cpu_bound vCPUs; beyond
capacity every request progresses at rate V' / (n x cpu_bound) (a fluid processor-sharing
model: the CPU phases stretch until the demand fits, the waits do not). V' = max(V,
cpu_bound): one request alone is never slowed (its duration already is its time alone).

All requests on an instance progress at the same rate, so one virtual clock per instance
gives every finish time: a request that starts when the clock reads v with work w ends when
it reads v + w, and the clock runs at the current rate between arrivals and departures. The
engine asks for the instance's next departure after each change; departures it scheduled
before a change are stale and ignored (their time no longer matches `due`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Clock:
    last: float  # when `virtual` was last brought up to date (its init end, if later)
    virtual: float = 0.0
    running: list[tuple[float, int]] = field(default_factory=list)  # (finish tag, row)
    due: float = math.inf


class CpuSharing:
    """The running requests of contended instances, keyed by instance id.

    `capacity_of[k]`: V' / cpu_bound of function k, the number of requests its instance runs
    at full speed; None where it is never exceeded (cpu_bound x instance_concurrency <= V')."""

    def __init__(self, capacity_of: list[float | None]):
        self.capacity_of = capacity_of
        self._clocks: dict[int, _Clock] = {}
        self._function: dict[int, int] = {}  # instance -> its function

    @staticmethod
    def _rate(capacity: float, n: int) -> float:
        return 1.0 if n <= capacity else capacity / n

    def start(
        self, k: int, iid: int, t: float, start: float, work_s: float, row: int
    ) -> float | None:
        """A request (invocation row `row`) placed at t starts at `start` (later if the
        instance is initialising) with work_s of handler time alone; the instance's next
        departure time, or None if it did not move (the one scheduled holds)."""
        clock = self._clocks.get(iid)
        capacity = self.capacity_of[k]
        if clock is None:
            clock = self._clocks[iid] = _Clock(last=start)
            self._function[iid] = k
        elif t > clock.last:
            clock.virtual += (t - clock.last) * self._rate(capacity, len(clock.running))
            clock.last = t
        heapq.heappush(clock.running, (clock.virtual + work_s, row))
        before = clock.due
        due = self._next(clock, capacity)
        return None if due == before else due

    def finish(self, k: int, iid: int, end: float) -> tuple[int, float] | None:
        """The departure the engine scheduled at `end`: (the finished request's row, the
        instance's next departure or inf), or None if that departure is stale."""
        clock = self._clocks.get(iid)
        if clock is None or end != clock.due:
            return None
        tag, row = heapq.heappop(clock.running)
        if not clock.running:
            del self._clocks[iid], self._function[iid]
            return row, math.inf
        clock.virtual, clock.last = tag, end  # exact: the clock reads the tag as it departs
        return row, self._next(clock, self.capacity_of[k])

    def last_departure(self) -> float:
        """When the last request running now would end if none came: each clock replayed
        through its departures (finish tags in order, one fewer request after each)."""
        last = -math.inf
        for iid, clock in self._clocks.items():
            capacity = self.capacity_of[self._function[iid]]
            t, virtual = clock.last, clock.virtual
            tags = sorted(tag for tag, _ in clock.running)
            for i, tag in enumerate(tags):
                t += (tag - virtual) / self._rate(capacity, len(tags) - i)
                virtual = tag
            last = max(last, t)
        return last

    def superseded(self, k: int, end: float, iid: int) -> bool:
        """Is the departure (end, iid) of a function-k instance one rescheduled since?"""
        if self.capacity_of[k] is None:
            return False
        clock = self._clocks.get(iid)
        return clock is None or end != clock.due

    def _next(self, clock: _Clock, capacity: float) -> float:
        rate = self._rate(capacity, len(clock.running))
        clock.due = clock.last + (clock.running[0][0] - clock.virtual) / rate
        return clock.due


@dataclass(slots=True)
class _HostClock:
    last: float
    virtual: float = 0.0
    running: list[tuple[float, int, int]] = field(default_factory=list)  # (tag, row, instance)
    due: float = math.inf


class HostCpus:
    """Processor sharing of hosts' cores (`platform.hosts.cpu: shared`): the requests running
    on a host with c cores each progress at min(1, c / n) of their speed when n run, as
    dslab-faas shares a host's CPU [sources: dslab-faas]. One virtual clock per host, as in
    CpuSharing; a departure is (time, instance of the request that departs)."""

    def __init__(self, cores: list[float | None]):
        self.cores = cores  # per host; None: never contended
        self._clocks: dict[int, _HostClock] = {}

    def _rate(self, h: int, n: int) -> float:
        c = self.cores[h]
        return 1.0 if c is None or n <= c else c / n

    def start(
        self, h: int, iid: int, t: float, work_s: float, row: int
    ) -> tuple[float, int] | None:
        """A request (row) starts on host h at t with work_s of handler time alone: the
        host's next departure (time, instance), or None if it did not move."""
        clock = self._clocks.get(h)
        if clock is None:
            clock = self._clocks[h] = _HostClock(last=t)
        elif t > clock.last:
            clock.virtual += (t - clock.last) * self._rate(h, len(clock.running))
            clock.last = t
        heapq.heappush(clock.running, (clock.virtual + work_s, row, iid))
        before = clock.due
        due = self._next(h, clock)
        return None if due == before else (due, clock.running[0][2])

    def finish(self, h: int, end: float, iid: int) -> tuple[int, tuple[float, int] | None] | None:
        """The departure scheduled at `end` for instance iid: (the finished request's row,
        the host's next departure or None), or None if that departure is stale."""
        clock = self._clocks.get(h)
        if clock is None or end != clock.due or clock.running[0][2] != iid:
            return None
        tag, row, _ = heapq.heappop(clock.running)
        if not clock.running:
            del self._clocks[h]
            return row, None
        clock.virtual, clock.last = tag, end
        return row, (self._next(h, clock), clock.running[0][2])

    def last_departure(self) -> float:
        """When the last request running now would end if none came."""
        last = -math.inf
        for h, clock in self._clocks.items():
            t, virtual = clock.last, clock.virtual
            tags = sorted(tag for tag, _, _ in clock.running)
            for i, tag in enumerate(tags):
                t += (tag - virtual) / self._rate(h, len(tags) - i)
                virtual = tag
            last = max(last, t)
        return last

    def _next(self, h: int, clock: _HostClock) -> float:
        rate = self._rate(h, len(clock.running))
        clock.due = clock.last + (clock.running[0][0] - clock.virtual) / rate
        return clock.due
