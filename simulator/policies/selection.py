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

from ..rng import Buffered
from .base import PluginField, Policy, guarded


class IdleSelection(Policy):
    """Base of idle-selection policies."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "idle-selection policy"
    public_name: ClassVar[str] = "IdleSelection"
    required: ClassVar[tuple[str, ...]] = ("put", "take")
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


class _Bound(IdleSelection):
    """A built-in whose put and take are closures bound by `start`."""

    def put(self, instance_id, end_s):
        raise RuntimeError("start() first")

    def take(self, now):
        raise RuntimeError("start() first")


class _Heap(_Bound):
    """Idle instances in a heap of (key, ..., instance_id); take() pops the smallest alive.
    Subclasses give the key by `_entry(instance_id, end_s)`."""

    def start(self, expiry, rng):
        heap: list[tuple] = []
        entry, heappush, heappop = self._entry, heapq.heappush, heapq.heappop

        def put(instance_id, end_s):
            heappush(heap, entry(instance_id, end_s))

        def take(now):
            while heap:
                iid = heappop(heap)[-1]
                if now < expiry[iid]:
                    return iid
            return -1

        self._bind(put=put, take=take)

    @staticmethod
    def _entry(instance_id: int, end_s: float) -> tuple:
        raise NotImplementedError


class Newest(_Bound):
    """The idle instance created most recently (highest id): older ones drain and expire."""

    policy: Literal["newest"]

    def start(self, expiry, rng):
        heap: list[int] = []  # -instance_id: the default rule, so kept lean
        heappush, heappop = heapq.heappush, heapq.heappop

        def put(instance_id, end_s):
            heappush(heap, -instance_id)

        def take(now):
            while heap:
                iid = -heappop(heap)
                if now < expiry[iid]:
                    return iid
            return -1

        self._bind(put=put, take=take)


class MostRecentlyUsed(_Heap):
    """The idle instance whose last execution ended most recently (ties: the newest)."""

    policy: Literal["mru"]

    @staticmethod
    def _entry(instance_id, end_s):
        return (-end_s, -instance_id, instance_id)


class LeastRecentlyUsed(_Heap):
    """The idle instance whose last execution ended longest ago (ties: the oldest)."""

    policy: Literal["lru"]

    @staticmethod
    def _entry(instance_id, end_s):
        return (end_s, instance_id)


class Random(_Bound):
    """An idle instance chosen uniformly at random among those alive (rejection of expired
    entries keeps the choice uniform over the survivors)."""

    policy: Literal["random"]

    def start(self, expiry, rng):
        items: list[int] = []
        uniform = Buffered(rng.random).next

        def take(now):
            while items:
                k = int(uniform() * len(items))
                iid = items[k]
                items[k] = items[-1]  # swap-remove: O(1)
                items.pop()
                if now < expiry[iid]:
                    return iid
            return -1

        def put(instance_id, end_s):
            items.append(instance_id)

        self._bind(put=put, take=take)


def checked(pool: IdleSelection, expiry: Sequence[float]):
    """put and take of a user's pool, with the contract checked: take returns -1 or an
    instance that was put, not taken since, and not expired."""
    from .base import PolicyError

    idle: set[int] = set()
    put_, take_ = guarded(pool, "put", pool.put), guarded(pool, "take", pool.take)

    def put(instance_id, end_s):
        idle.add(instance_id)
        put_(instance_id, end_s)

    def take(now):
        iid = take_(now)
        if iid == -1:
            return -1
        if not isinstance(iid, int | np.integer) or iid not in idle or not now < expiry[iid]:
            why = "was not idle" if iid not in idle else f"expired at {expiry[iid]:.6g} s"
            if not isinstance(iid, int | np.integer):
                why = "is not an instance id"
            raise PolicyError(
                f"idle-selection policy {pool.policy}: take({now:.6g}) returned {iid!r}, "
                f"which {why}; return -1 or an idle instance alive at `now`"
            )
        idle.discard(iid)
        return int(iid)

    return put, take


BUILTINS: dict[str, type[IdleSelection]] = {
    "newest": Newest, "mru": MostRecentlyUsed, "lru": LeastRecentlyUsed, "random": Random,
}  # fmt: skip

#: The scenario field's type: a built-in's name, or {policy: name-or-module:Class, ...}.
IdleSelectionField = Annotated[IdleSelection, PluginField(IdleSelection, BUILTINS, shorthand=True)]
