"""Eviction under memory pressure: which idle instances make room for a new one on a full
host. Chosen by `platform.eviction`; used only with `platform.hosts`.

Keep-alive windows still apply: pressure only ends some idle instances sooner. One copy
serves the platform. The engine calls `start(functions, hosts, rng)` once, then, in simulated
time order:
- `priority(instance_id, function, host, now)` when an instance goes idle on a host (after
  each request it served, or when a pre-warmed one is ready): lower is evicted first; inf
  keeps it out of pressure eviction altogether. The value holds until the instance is used
  again (ties: the one idle longest goes first);
- `evicted(instance_id, function, host, priority)` for each instance evicted, in order;
- `departed(instance_id, function, host)`, if the class defines it, for every other instance
  leaving a host (its keep-alive or lifetime over, retired by a policy), when the host next
  looks at its memory (before any eviction decision).
A policy that defines `choose(host, needed_mb, candidates, now)` decides at the moment of
eviction instead of by frozen priorities: `candidates` are the host's idle evictable
instances (`Candidate` records, lowest priority first, then idle longest; priority() is
optional then and 0 without it), and it returns the instance ids to evict, in order, freeing
at least needed_mb.
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


class Candidate(NamedTuple):
    """An idle instance that eviction may take, as `choose` sees it."""

    instance_id: int
    function: int
    memory_mb: float
    idle_since_s: float
    priority: float  # what priority() said when it went idle (0 if the class has none)


class EvictionPolicy(Policy):
    """Base of eviction policies (see the module docstring for the call order)."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "eviction policy"
    public_name: ClassVar[str] = "EvictionPolicy"
    required: ClassVar[tuple[str, ...]] = ("priority|choose",)
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

    def departed(self, instance_id: int, function: int, host: int) -> None:
        """An instance left its host otherwise than by eviction (called if defined)."""

    def choose(
        self, host: int, needed_mb: float, candidates: Sequence[Candidate], now: float
    ) -> Sequence[int]:
        """The instances to evict from `host` (ids among the candidates, in order) to free
        at least needed_mb (called instead of ordering by priority, if defined)."""
        raise NotImplementedError

    def chooses(self) -> bool:
        """Whether eviction asks `choose` (else it orders by priority)."""
        return type(self).choose is not EvictionPolicy.choose


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
    [sources: faascache]): priority = clock + frequency x cold-start cost / memory, with its
    function's mean init time as the cost. Each host has its own clock, which becomes the
    priority of the instance it last evicted, so instances not used for long age relative to
    those used since.

    frequency instance: the requests the instance has served (a pre-warm that became ready
    counts one; an evicted instance's count goes with it, as a cached object's does), its
    priority fixed when it goes idle. frequency function: FaasCache's code's rule: the sum of
    those counts over the function's instances resident on the host (idle or busy; those that
    left drop out), and all of them share the priority computed at the function's latest
    request, read at the moment of eviction (ties: idle longest)."""

    policy: Literal["greedy-dual"]
    frequency: Literal["instance", "function"] = Field(
        "instance",
        description="Whose requests count as the frequency: the instance's own, or all its "
                    "function's resident instances' with one shared priority (FaasCache's "
                    "simulator) [sources: faascache].",
    )  # fmt: skip

    def chooses(self) -> bool:
        return self.frequency == "function"

    def choose(self, host, needed_mb, candidates, now):
        raise RuntimeError("start() first")

    def start(self, functions, hosts, rng):
        if self.frequency == "function":
            self._start_shared(functions, hosts)
            return
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

    def _start_shared(self, functions, hosts):
        clock = [0.0] * hosts
        weight = [f.init_ms / f.memory_mb for f in functions]
        uses: dict[int, int] = {}  # resident instance -> requests served
        freq: dict[tuple[int, int], int] = {}  # (function, host) -> sum over its residents
        shared: dict[tuple[int, int], float] = {}  # (function, host) -> their priority

        def priority(instance_id, function, host, now):
            uses[instance_id] = uses.get(instance_id, 0) + 1
            key = (function, host)
            n = freq[key] = freq.get(key, 0) + 1
            p = shared[key] = clock[host] + n * weight[function]
            return p

        def gone(instance_id, function, host, *_):
            n = uses.pop(instance_id, 0)
            if n:
                freq[(function, host)] -= n

        def choose(host, needed_mb, candidates, now):
            ranked = sorted(candidates, key=lambda c: shared[(c.function, host)])  # stable
            victims, freed = [], 0.0
            for c in ranked:
                victims.append(c.instance_id)
                freed += c.memory_mb
                clock[host] = shared[(c.function, host)]
                if freed >= needed_mb:
                    break
            return victims

        self._clock = clock
        self._bind(priority=priority, evicted=gone, departed=gone, choose=choose)

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
    """priority() and evicted() of a user's policy, guarded, with priorities checked (0
    for a choosing policy that defines no priority)."""
    if type(policy).priority is EvictionPolicy.priority:
        return (lambda instance_id, function, host, now: 0.0), guarded(
            policy, "evicted", policy.evicted
        )
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


def checked_choose(policy: EvictionPolicy):
    """choose() of a user's policy, guarded, its answer checked: ids among the candidates,
    each once, freeing at least what is needed."""
    choose = guarded(policy, "choose", policy.choose)

    def checked(host, needed_mb, candidates, now):
        candidates = tuple(candidates)  # (the policy cannot change what it is checked against)
        by_id = {c.instance_id: c for c in candidates}
        victims = choose(host, needed_mb, candidates, now)
        try:
            ids = [int(v) for v in victims]
        except (TypeError, ValueError):
            ids = None
        problem = None
        if ids is None or any(not isinstance(v, int | np.integer) for v in victims):
            problem = "it must be a list of instance ids"
        elif len(set(ids)) != len(ids) or not set(ids) <= by_id.keys():
            problem = "each id must be one of the candidates, once"
        elif sum(by_id[i].memory_mb for i in ids) < needed_mb - 1e-9:
            problem = f"they free less than the {needed_mb:g} MB needed"
        if problem:
            raise PolicyError(
                f"eviction policy {policy.policy}: choose(host {host}, {needed_mb:g} MB, ...) "
                f"returned {victims!r}: {problem}"
            )
        return ids

    return checked
