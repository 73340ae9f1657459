"""Eviction under memory pressure: which idle instances make room for a new one on a full
host. Chosen by `platform.eviction`; used only with `platform.hosts`.

Keep-alive windows still apply: pressure only ends some idle instances sooner. One copy
serves the platform. The engine calls `start(functions, hosts, rng)` once, then, in simulated
time order:
- `priority(instance_id, function, host, now)` when an instance goes idle on a host (after
  each request it served, or when a pre-warmed one is ready): lower is evicted first; inf
  keeps it out of pressure eviction altogether. The value holds until the instance is used
  again (ties: the one idle longest goes first);
- `evicted(instance_id, function, host, priority)` for each instance evicted, in order.
A busy or initialising instance is never evicted, and only as many idle instances go as the
new one needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import Field

from .base import PluginField, Policy, PolicyError, guarded


class FunctionFacts(NamedTuple):
    """What an eviction policy knows of a function."""

    name: str
    memory_mb: float  # what one instance holds on its host
    init_ms: float  # mean init time: what evicting an instance costs its next cold start


class EvictionPolicy(Policy):
    """Base of eviction policies (see the module docstring for the call order)."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "eviction policy"
    public_name: ClassVar[str] = "EvictionPolicy"
    required: ClassVar[tuple[str, ...]] = ("priority",)
    policy: str = Field(description="A built-in's name, or a plug-in class as module:Class.")

    def start(
        self, functions: Sequence[FunctionFacts], hosts: int, rng: np.random.Generator
    ) -> None:
        """Set up state (in `_underscore` attributes); functions are indexed as in the
        scenario, hosts numbered 0..hosts-1."""

    def priority(self, instance_id: int, function: int, host: int, now: float) -> float:
        """The eviction priority of an instance that went idle at `now` (lower goes first)."""
        raise NotImplementedError

    def evicted(self, instance_id: int, function: int, host: int, priority: float) -> None:
        """An instance was evicted for memory (its priority as given)."""


class _Bound(EvictionPolicy):
    def priority(self, instance_id, function, host, now):
        raise RuntimeError("start() first")


class LeastRecentlyUsed(_Bound):
    """The instance idle longest goes first."""

    policy: Literal["lru"]

    def start(self, functions, hosts, rng):
        self._bind(priority=lambda instance_id, function, host, now: now)


class GreedyDual(_Bound):
    """Greedy-Dual-Size-Frequency (Fuerst & Sharma, FaasCache, ASPLOS'21
    [sources: faascache]): priority = clock + frequency x cold-start cost / memory, with the
    requests the instance has served as its frequency (a pre-warm that became ready counts
    one; an evicted instance's count goes with it, as a cached object's does) and its
    function's mean init time as the cost. Each host has its own clock, which becomes the
    priority of the instance it last evicted, so instances not used for long age relative to
    those used since."""

    policy: Literal["greedy-dual"]

    def start(self, functions, hosts, rng):
        clock = [0.0] * hosts
        uses: dict[int, int] = {}
        weight = [f.init_ms / f.memory_mb for f in functions]

        def priority(instance_id, function, host, now):
            n = uses[instance_id] = uses.get(instance_id, 0) + 1
            return clock[host] + n * weight[function]

        def evicted(instance_id, function, host, priority):
            clock[host] = priority
            uses.pop(instance_id, None)

        self._clock = clock
        self._bind(priority=priority, evicted=evicted)

    def evicted(self, instance_id, function, host, priority):
        raise RuntimeError("start() first")


class Largest(_Bound):
    """The instance holding the most memory goes first (ties: idle longest)."""

    policy: Literal["size"]

    def start(self, functions, hosts, rng):
        size = [-f.memory_mb for f in functions]
        self._bind(priority=lambda instance_id, function, host, now: size[function])


class LeastFrequent(_Bound):
    """The instance that has served the fewest requests goes first (ties: idle longest)."""

    policy: Literal["frequency"]

    def start(self, functions, hosts, rng):
        uses: dict[int, int] = {}

        def priority(instance_id, function, host, now):
            n = uses[instance_id] = uses.get(instance_id, 0) + 1
            return float(n)

        def evicted(instance_id, function, host, priority):
            uses.pop(instance_id, None)

        self._bind(priority=priority, evicted=evicted)

    def evicted(self, instance_id, function, host, priority):
        raise RuntimeError("start() first")


class KeepAliveOnly(_Bound):
    """No eviction under pressure: idle instances leave only when their keep-alive window
    ends (a TTL), and a new instance that finds no free memory waits or is dropped."""

    policy: Literal["ttl"]

    def start(self, functions, hosts, rng):
        self._bind(priority=lambda instance_id, function, host, now: math.inf)


def checked(policy: EvictionPolicy):
    """priority() and evicted() of a user's policy, guarded, with priorities checked."""
    priority = guarded(policy, "priority", policy.priority)

    def checked_priority(instance_id, function, host, now):
        p = priority(instance_id, function, host, now)
        ok = isinstance(p, int | float | np.integer | np.floating) and not isinstance(p, bool)
        if not (ok and not math.isnan(p)):
            raise PolicyError(
                f"eviction policy {policy.policy} returned {p!r} from priority: it must be a "
                "number (lower is evicted first; inf: never evicted for memory)"
            )
        return float(p)

    return checked_priority, guarded(policy, "evicted", policy.evicted)


BUILTINS: dict[str, type[EvictionPolicy]] = {
    "lru": LeastRecentlyUsed, "greedy-dual": GreedyDual, "size": Largest,
    "frequency": LeastFrequent, "ttl": KeepAliveOnly,
}  # fmt: skip

EvictionField = Annotated[EvictionPolicy, PluginField(EvictionPolicy, BUILTINS, shorthand=True)]


def default_policy() -> EvictionPolicy:
    return LeastRecentlyUsed(policy="lru")
