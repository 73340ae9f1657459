"""Idle-instance selection: which warm instance serves a request. Chosen by `idle_selection`.

Each pool holds one function's idle instances and evicts lazily: an entry whose expiry has
passed is dropped when the pool meets it, and its eviction time was already logged when it
went idle. `take(now)` returns an instance id, or -1 when no idle instance is alive. Ties in
end times are broken by instance id, so the choice never depends on event batching.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Literal

import numpy as np

from .rng import Buffered

Selection = Literal["newest", "mru", "lru", "random"]


class Pool:
    def __init__(self, expiry: list[float]):
        self._expiry = expiry  # shared with the engine: expiry[instance_id]

    def put(self, iid: int, end_s: float) -> None:
        """Instance iid became idle; its last execution ended at end_s."""
        raise NotImplementedError

    def take(self, now: float) -> int:
        raise NotImplementedError


class _HeapPool(Pool):
    """Idle instances in a heap of (key, instance_id); take() pops the smallest alive one."""

    def __init__(self, expiry):
        super().__init__(expiry)
        self._heap: list[tuple] = []

    def take(self, now):
        heap, expiry = self._heap, self._expiry
        while heap:
            iid = heapq.heappop(heap)[-1]
            if now < expiry[iid]:
                return iid
        return -1


class Newest(Pool):
    """The idle instance created most recently (highest id): older ones drain and expire."""

    def __init__(self, expiry):
        super().__init__(expiry)
        self._heap: list[int] = []  # -instance_id: the default rule, so kept lean

    def put(self, iid, end_s):
        heapq.heappush(self._heap, -iid)

    def take(self, now):
        heap, expiry = self._heap, self._expiry
        while heap:
            iid = -heapq.heappop(heap)
            if now < expiry[iid]:
                return iid
        return -1


class MostRecentlyUsed(_HeapPool):
    """The idle instance whose last execution ended most recently (ties: the newest)."""

    def put(self, iid, end_s):
        heapq.heappush(self._heap, (-end_s, -iid, iid))


class LeastRecentlyUsed(_HeapPool):
    """The idle instance whose last execution ended longest ago (ties: the oldest)."""

    def put(self, iid, end_s):
        heapq.heappush(self._heap, (end_s, iid))


class Random(Pool):
    """An idle instance chosen uniformly at random among those alive (rejection of expired
    entries keeps the choice uniform over the survivors)."""

    def __init__(self, expiry, rng: np.random.Generator):
        super().__init__(expiry)
        self._items: list[int] = []
        self._uniform = Buffered(rng.random)

    def put(self, iid, end_s):
        self._items.append(iid)

    def take(self, now):
        items, expiry = self._items, self._expiry
        while items:
            k = int(self._uniform.next() * len(items))
            iid = items[k]
            items[k] = items[-1]  # swap-remove: O(1)
            items.pop()
            if now < expiry[iid]:
                return iid
        return -1


def make_pool(selection: Selection, expiry: list[float], rng: np.random.Generator) -> Pool:
    factories: dict[str, Callable[[], Pool]] = {
        "newest": lambda: Newest(expiry),
        "mru": lambda: MostRecentlyUsed(expiry),
        "lru": lambda: LeastRecentlyUsed(expiry),
        "random": lambda: Random(expiry, rng),
    }
    return factories[selection]()
