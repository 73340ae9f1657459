"""Placement: on which host a new instance goes. Chosen by `platform.hosts.placement`.

One copy serves the whole platform. The engine calls `start(hosts, capacity_mb, functions,
rng)` once, then `order(function, memory_mb, free_mb)` for each new instance: the hosts to
try, best first. The instance goes on the first of them with `memory_mb` free; if none has,
on the first whose evictable idle instances would make room (see `eviction`); else it waits
or is dropped (`hosts.on_full`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from .base import PluginField, Policy, PolicyError, guarded


class PlacementPolicy(Policy):
    """Base of placement policies."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "placement policy"
    public_name: ClassVar[str] = "PlacementPolicy"
    required: ClassVar[tuple[str, ...]] = ("order",)
    policy: str = Field(description="A built-in's name, or a plug-in class as module:Class.")

    def start(
        self, hosts: int, capacity_mb: float, functions: Sequence[str], rng: np.random.Generator
    ) -> None:
        """Set up state (in `_underscore` attributes); hosts are numbered 0..hosts-1."""

    def order(self, function: int, memory_mb: float, free_mb: Sequence[float]) -> Iterable[int]:
        """Hosts to try for a new instance of functions[function], best first. free_mb[h]
        is host h's memory not held by any instance (read-only)."""
        raise NotImplementedError


class FirstFit(PlacementPolicy):
    """The lowest-numbered host with room: packs hosts in order, leaving the last ones free."""

    policy: Literal["first-fit"]

    def start(self, hosts, capacity_mb, functions, rng):
        every = tuple(range(hosts))
        self._bind(order=lambda function, memory_mb, free_mb: every)

    def order(self, function, memory_mb, free_mb):
        raise RuntimeError("start() first")


class LeastLoaded(PlacementPolicy):
    """The host with the most free memory (ties: the lowest-numbered): spreads instances."""

    policy: Literal["least-loaded"]

    def order(self, function, memory_mb, free_mb):
        return sorted(range(len(free_mb)), key=lambda h: -free_mb[h])


class Hashing(PlacementPolicy):
    """A function's home host by a hash of its name, then the next ones in turn: instances of
    a function meet on the same host (locality: a cached image, as OpenWhisk's scheduler
    aims for)."""

    policy: Literal["hashing"]

    def start(self, hosts, capacity_mb, functions, rng):
        rings = []
        for name in functions:
            home = zlib.crc32(name.encode()) % hosts  # stable across runs and machines
            rings.append(tuple((home + i) % hosts for i in range(hosts)))
        self._bind(order=lambda function, memory_mb, free_mb: rings[function])

    def order(self, function, memory_mb, free_mb):
        raise RuntimeError("start() first")


class RandomHost(PlacementPolicy):
    """A host drawn uniformly among those with room (a fresh random order each time)."""

    policy: Literal["random"]

    def start(self, hosts, capacity_mb, functions, rng):
        permutation = rng.permutation
        self._bind(order=lambda function, memory_mb, free_mb: permutation(hosts).tolist())

    def order(self, function, memory_mb, free_mb):
        raise RuntimeError("start() first")


def checked(policy: PlacementPolicy, hosts: int):
    """order() of a user's policy, with its answer checked: host numbers in range."""
    order = guarded(policy, "order", policy.order)

    def checked_order(function, memory_mb, free_mb):
        answer = order(function, memory_mb, tuple(free_mb))  # a copy: theirs to keep
        try:
            hs = list(answer)
        except TypeError:
            hs = None
        ok = hs is not None and all(
            isinstance(h, int | np.integer) and not isinstance(h, bool) and 0 <= h < hosts
            for h in hs
        )
        if not ok:
            raise PolicyError(
                f"placement policy {policy.policy} returned {answer!r} from order: it must be "
                f"host numbers (integers) in 0..{hosts - 1}, best first"
            )
        return [int(h) for h in hs]

    return checked_order


BUILTINS: dict[str, type[PlacementPolicy]] = {
    "first-fit": FirstFit, "least-loaded": LeastLoaded, "hashing": Hashing, "random": RandomHost,
}  # fmt: skip

PlacementField = Annotated[PlacementPolicy, PluginField(PlacementPolicy, BUILTINS, shorthand=True)]
