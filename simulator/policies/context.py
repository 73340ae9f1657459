"""What a policy sees of the platform, and how it acts on it: the context `ctx`.

A policy whose `start` takes a parameter named `ctx` receives one (`start(function, rng,
ctx)`, `start(ctx, rng)` for a controller): a read-only view of the platform as the run goes,
and a few actions. The engine implements it (`coldsim.engine.context`); this module holds the
interface and the records it answers with, so that policies depend on nothing but it.

Queries (each costs O(1), or the number of live instances it looks at: those of one function,
or of one host):
- `now`: the simulated time, s. In a hook called for a moment (`keep_alive_s(end_s, ...)`),
  that moment;
- `functions`: one `FunctionInfo` per function, in the scenario's order; `function(name)`;
- `apps`: application -> the names of its functions;
- `instances(function)`: `InstanceCounts(idle, busy, initialising, prewarming)`;
- `in_flight(function)`: its requests running, or waiting for an init or behind a busy
  instance (O(1) for multi-request functions);
- `idle_instances(function)`: the ids of its idle (on-demand) instances, oldest first;
- `hosts`: the number of hosts (0 without `platform.hosts`); `host(h)`: a `HostState`.

Actions (from any hook or timer):
- `call_at(t, callback)`: `callback(now)` at time t (>= now); timers due at or after the
  run's `duration_s` do not fire;
- `prewarm(function, count=1, ready_at_s=None, keep_alive_s=None)`: start `count` instances
  of the function, ready at `ready_at_s` (None: as soon as their init allows), kept idle
  `keep_alive_s` once ready (None: the keep-alive policy's window); the new instance ids;
- `retire(instance_id)`: end an idle on-demand instance now;
- `extend(instance_id, until_s)`: keep an instance warm at least until `until_s`: no idle
  period it is in or starts before then ends earlier (never shorter than its own window; its
  lifetime still ends it).
Actions are refused in `start` (schedule them with `call_at(0.0, ...)`) and in an eviction
policy's hooks. Wrong uses raise `PolicyError` naming the policy and the call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple


class FunctionInfo(NamedTuple):
    """What a policy knows of a function before the run."""

    index: int  # its place in the scenario (function numbers elsewhere are these)
    name: str
    app: str | None
    memory_mb: float  # configured memory
    footprint_mb: float  # what one instance holds on a host
    init_ms: float  # mean init (cold start) time
    duration_ms: float  # mean handler time (nan when a trace gives them per request)
    concurrency: int  # requests one instance serves at once (instance_concurrency)


class InstanceCounts(NamedTuple):
    """A function's instances at `ctx.now`, by state (each instance in one)."""

    idle: int  # ready and serving nothing (provisioned ones included)
    busy: int  # serving a request
    initialising: int  # init under way, for a request or provisioned concurrency
    prewarming: int  # started ahead of requests (a pre-warm, scaling ahead), not yet ready

    @property
    def live(self) -> int:
        return self.idle + self.busy + self.initialising + self.prewarming


class HostState(NamedTuple):
    """A host's memory at `ctx.now` (MB), and its idle instances by function name."""

    capacity_mb: float
    free_mb: float
    idle_mb: float  # held by idle instances
    busy_mb: float  # held by busy and initialising instances
    warm: Mapping[str, int]  # function name -> idle instances on the host


class PolicyContext:
    """The interface (see the module docstring); the engine's class implements it."""

    now: float
    functions: Sequence[FunctionInfo]
    apps: Mapping[str, tuple[str, ...]]
    hosts: int

    def function(self, name: str | int) -> FunctionInfo:
        raise NotImplementedError

    def instances(self, function: str | int) -> InstanceCounts:
        raise NotImplementedError

    def in_flight(self, function: str | int) -> int:
        raise NotImplementedError

    def idle_instances(self, function: str | int) -> list[int]:
        raise NotImplementedError

    def host(self, h: int) -> HostState:
        raise NotImplementedError

    def call_at(self, t: float, callback: Callable[[float], None]) -> None:
        raise NotImplementedError

    def prewarm(
        self,
        function: str | int,
        count: int = 1,
        ready_at_s: float | None = None,
        keep_alive_s: float | None = None,
    ) -> list[int]:
        raise NotImplementedError

    def retire(self, instance_id: int) -> None:
        raise NotImplementedError

    def extend(self, instance_id: int, until_s: float) -> None:
        raise NotImplementedError
