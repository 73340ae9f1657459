"""Provisioned concurrency: pre-initialised instances kept ready per a count or schedule.

Configured instances hold concurrency units while configured; they are never idle-evicted,
they are replaced ahead of recycling (the successor initialises in time to be ready when its
predecessor retires), and they serve requests before on-demand instances. Lowering the count
retires idle ones at once; busy or initialising surplus ones keep their units until they free
up. Idle provisioned instances wait in a per-function heap (newest first).
"""

from __future__ import annotations

import heapq
import math

from .eventlog import EndReason
from .instances import Instances
from .limits import Limits


class Provisioned:
    def __init__(
        self, n_functions: int, instances: Instances, limits: Limits, busy: list, allocation=None
    ):
        self.idle: list[list[tuple[int, int]]] = [[] for _ in range(n_functions)]
        self.target = [0] * n_functions
        self.excess = [0] * n_functions  # instances to retire when they next go idle
        self._inst = instances
        self._limits = limits
        self._busy = busy  # the engine's heap of (end_s, instance_id)
        self._allocation = allocation  # ProvisionedAllocation, or None: ready after init
        #: Per function, provisioned instances not ready yet; and those a lowered count
        #: cancelled before they were (their pending ready entry is ignored).
        self._initialising: list[set[int]] = [set() for _ in range(n_functions)]
        self._cancelled: set[int] = set()

    def configure(self, k: int, count: int, t: float) -> None:
        """Set function k's configured count at time t (the engine released finished
        requests up to t first)."""
        inst = self._inst
        delta = count - self.target[k]
        self.target[k] = count
        if delta > 0:
            kept = min(delta, self.excess[k])  # surplus not yet gone: keep it instead
            self.excess[k] -= kept
            self._limits.hold(k, delta - kept)
            added = delta - kept
            # Raised at t > 0: usable once AWS has allocated the whole raise (the init runs
            # to end then). Configured at 0: set up before the span, ready after its init.
            ready = None
            if self._allocation is not None and t > 0 and added:
                ready = t + self._allocation.ready_after_s(added)
            for _ in range(added):
                iid = inst.new(k, t, True, ready=ready, not_before=t)
                heapq.heappush(self._busy, (inst.ready_s(iid), iid))
                self._initialising[k].add(iid)
        elif delta < 0:
            surplus = -delta
            # Those not ready yet go first (an allocation still under way is cut short), so
            # that ready ones keep serving.
            for iid in sorted(self._initialising[k], reverse=True)[:surplus]:
                self._initialising[k].discard(iid)
                self._cancelled.add(iid)
                if inst.created[iid] > t:  # its init had not begun
                    inst.created[iid] = t
                    inst.init_ms[iid] = 0.0
                else:  # its init stops here
                    inst.init_ms[iid] = (t - inst.created[iid]) * 1000.0
                inst.end(iid, t, EndReason.DEPROVISIONED)
                surplus -= 1  # its units are given back below, with those retired now
            while surplus:
                iid = self.take(k, t, replace=False)
                if iid < 0:
                    break
                inst.end(iid, t, EndReason.DEPROVISIONED)
                surplus -= 1
            self._limits.hold(k, -(-delta - surplus))
            self.excess[k] += surplus  # busy or initialising ones go when they free up

    def _retire_surplus(self, k: int) -> None:
        self.excess[k] -= 1
        self._limits.hold(k, -1)

    def went_idle(self, k: int, iid: int, end: float) -> None:
        """A provisioned instance is free at `end`: retire it if surplus; replace it if past
        its lifetime (the replacement initialised ahead, ready now); else keep it idle."""
        inst = self._inst
        if iid in self._cancelled:  # cancelled while it was initialising
            self._cancelled.discard(iid)
            return
        self._initialising[k].discard(iid)
        if self.excess[k]:
            self._retire_surplus(k)
            inst.end(iid, end, EndReason.DEPROVISIONED)
            return
        if end >= inst.retire[iid]:
            inst.end(iid, end, EndReason.LIFETIME)
            iid = inst.new(k, end, True, ready=end)
        inst.end(iid, inst.retire[iid], EndReason.LIFETIME)
        heapq.heappush(self.idle[k], (-iid, iid))

    def take(self, k: int, t: float, replace: bool = True) -> int:
        """The newest idle provisioned instance, or -1. Those retired while idle are replaced
        by a successor ready at their retirement time (unless surplus, or `replace` is off:
        then they are simply gone)."""
        heap, inst = self.idle[k], self._inst
        expiry = inst.expiry
        while heap:
            iid = heapq.heappop(heap)[1]
            if t < expiry[iid]:
                return iid
            if self.excess[k]:  # retired, and no longer wanted
                self._retire_surplus(k)
                continue
            if not replace:
                continue
            at = expiry[iid]
            new = inst.new(k, at, True, ready=at)
            inst.end(new, inst.retire[new], EndReason.LIFETIME)
            heapq.heappush(heap, (-new, new))
        return -1

    def finish(self, horizon: float) -> None:
        """Replace idle provisioned instances retired before the horizon, for the log."""
        inst = self._inst
        self.next_replacement_s = math.inf  # the first replacement a later horizon would add
        for k, heap in enumerate(self.idle):
            for _, iid in list(heap):
                while inst.expiry[iid] <= horizon:
                    at = inst.expiry[iid]
                    iid = inst.new(k, at, True, ready=at)
                    inst.end(iid, inst.retire[iid], EndReason.LIFETIME)
                self.next_replacement_s = min(self.next_replacement_s, inst.expiry[iid])
