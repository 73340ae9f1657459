"""Idle-instance selection: which warm instance serves a request. Chosen by `idle_selection`.

One copy of the policy serves each pool of idle instances (a function's, or an app's with
instance_scope app). The engine calls `start(expiry, rng)` once, then `put(instance_id,
end_s)` when an instance goes idle and `take(now)` when a request needs one: an instance id,
or -1 when none is alive. `expiry[instance_id]` (shared with the engine) is when an idle
instance stops being usable: an instance may serve a request only if now < expiry. Pools drop
expired entries lazily, when they meet them: their eviction was logged when they went idle.
Ties in end times are broken by instance id, so the choice never depends on event batching.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from .plugins import PluginField, Policy
from .rng import Buffered


class IdleSelection(Policy):
    """Base of idle-selection policies."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "idle-selection policy"
    policy: str = Field(description="A built-in's name, or a plug-in class as module:Class.")

    def start(self, expiry: Sequence[float], rng: np.random.Generator) -> None:
        """Set up the pool; keep `expiry` to skip instances that have expired."""
        self._expiry = expiry

    def put(self, instance_id: int, end_s: float) -> None:
        """Instance instance_id became idle; its last execution ended at end_s."""
        raise NotImplementedError

    def take(self, now: float) -> int:
        """An idle instance alive at `now` (removed from the pool), or -1."""
        raise NotImplementedError


class _Heap(IdleSelection):
    """Idle instances in a heap of (key, ..., instance_id); take() pops the smallest alive."""

    def start(self, expiry, rng):
        self._expiry = expiry
        self._heap: list[tuple] = []

    def take(self, now):
        heap, expiry = self._heap, self._expiry
        while heap:
            iid = heapq.heappop(heap)[-1]
            if now < expiry[iid]:
                return iid
        return -1


class Newest(IdleSelection):
    """The idle instance created most recently (highest id): older ones drain and expire."""

    policy: Literal["newest"]

    def start(self, expiry, rng):
        self._expiry = expiry
        self._heap: list[int] = []  # -instance_id: the default rule, so kept lean

    def put(self, instance_id, end_s):
        heapq.heappush(self._heap, -instance_id)

    def take(self, now):
        heap, expiry = self._heap, self._expiry
        while heap:
            iid = -heapq.heappop(heap)
            if now < expiry[iid]:
                return iid
        return -1


class MostRecentlyUsed(_Heap):
    """The idle instance whose last execution ended most recently (ties: the newest)."""

    policy: Literal["mru"]

    def put(self, instance_id, end_s):
        heapq.heappush(self._heap, (-end_s, -instance_id, instance_id))


class LeastRecentlyUsed(_Heap):
    """The idle instance whose last execution ended longest ago (ties: the oldest)."""

    policy: Literal["lru"]

    def put(self, instance_id, end_s):
        heapq.heappush(self._heap, (end_s, instance_id))


class Random(IdleSelection):
    """An idle instance chosen uniformly at random among those alive (rejection of expired
    entries keeps the choice uniform over the survivors)."""

    policy: Literal["random"]

    def start(self, expiry, rng):
        self._expiry = expiry
        self._items: list[int] = []
        self._uniform = Buffered(rng.random).next

    def put(self, instance_id, end_s):
        self._items.append(instance_id)

    def take(self, now):
        items, expiry = self._items, self._expiry
        while items:
            k = int(self._uniform() * len(items))
            iid = items[k]
            items[k] = items[-1]  # swap-remove: O(1)
            items.pop()
            if now < expiry[iid]:
                return iid
        return -1


BUILTINS: dict[str, type[IdleSelection]] = {
    "newest": Newest, "mru": MostRecentlyUsed, "lru": LeastRecentlyUsed, "random": Random,
}  # fmt: skip

#: The scenario field's type: a built-in's name, or {policy: name-or-module:Class, ...}.
IdleSelectionField = Annotated[
    IdleSelection, PluginField(IdleSelection, BUILTINS, shorthand=True)
]
