"""Routing: where a request goes when no idle instance of its function can take it. Chosen
by `platform.routing`; one copy serves the platform.

For functions whose instances serve several requests at once (`instance_concurrency` > 1),
`instance_rule()` names the rule among instances with room (`engine.routing`): pack or
least-loaded. For one-request instances, a policy that defines `route` decides, for each
request that finds no idle instance (and no pre-warmed one starting): start a new instance
(`NEW`), queue behind a busy instance (its id: the request starts when the instance has
finished what it runs and what queued before, warm; the wait is the request's
`instance_wait_ms`), or turn it away (`DROP`: throttled, reason routing; a sync request fails,
an async one is retried as after any throttle). It is asked when the function has busy
instances that can take more. The engine calls, in simulated-time order:
- `start(ctx, rng)` once (`ctx`: the platform's context, `coldsim.policies.context`);
- `route(function, now, busy)`: `busy` lists the function's busy instances that can still take
  requests, as `BusyInstance(instance_id, since_s, queued)` (since_s: when the request it runs
  started, the oldest one on a multi-request instance; queued: requests waiting behind it, or
  for one of its slots). For multi-request functions it is asked when every instance is full.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import Field

from .base import PluginField, Policy, PolicyError, guarded
from .context import PolicyContext

NEW = -1  # route(): start a new instance (a cold start)
DROP = -2  # route(): turn the request away (throttled, reason routing: load shedding)


class BusyInstance(NamedTuple):
    """A busy instance a request may queue behind."""

    instance_id: int
    since_s: float  # when the request it runs started
    queued: int  # requests waiting behind that one


class RoutingPolicy(Policy):
    """Base of routing policies (see the module docstring)."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "routing policy"
    public_name: ClassVar[str] = "RoutingPolicy"
    policy: str = Field(description="A built-in's name, or a plug-in class as module:Class.")

    def start(self, ctx: PolicyContext, rng: np.random.Generator) -> None:
        """Set up state (in `_underscore` attributes)."""

    def instance_rule(self) -> str:
        """Multi-request functions: "pack" or "least-loaded" among instances with room."""
        return "pack"

    def route(self, function: int, now: float, busy: Sequence[BusyInstance]) -> int:
        """NEW, DROP, or the id of one of `busy` to queue behind (called if the class
        defines it)."""
        raise NotImplementedError

    def routes(self) -> bool:
        """Whether the engine asks `route` (else a request with no idle instance starts one)."""
        return type(self).route is not RoutingPolicy.route


class Pack(RoutingPolicy):
    """New instances for one-request functions; multi-request: the busiest ready instance
    with room, then an idle one (fewer instances busy) [sources: knative-concurrency]."""

    policy: Literal["pack"]


class LeastLoaded(RoutingPolicy):
    """New instances for one-request functions; multi-request: an idle instance, then the
    least busy ready one (spreads load, like Knative's activator) [sources: knative-concurrency]."""

    policy: Literal["least-loaded"]

    def instance_rule(self) -> str:
        return "least-loaded"


class WaitForWarm(RoutingPolicy):
    """Queue behind the busy instance expected to be free first, if that wait is expected to
    be shorter than max_wait_ms; else start a new instance. Expected: each request runs the
    function's mean handler time (the policy does not know the real ones). Apache
    OpenWhisk's scheduler works this way: requests wait in a queue that the action's
    containers pull from, and containers are added only for requests waiting longer than a
    threshold (100 ms) [sources: openwhisk-scheduler]."""

    policy: Literal["wait-for-warm"]
    max_wait_ms: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Longest expected wait to accept, ms; null: the function's mean init time "
        "(queue whenever waiting is expected to be shorter than a cold start).",
    )
    beyond: Literal["cold-start", "drop"] = Field(
        "cold-start",
        description="When the expected wait is longer: start a new instance, or turn the "
        "request away (load shedding: it is throttled, reason routing).",
    )
    multi: Literal["pack", "least-loaded"] = Field(
        "pack", description="The rule among instances with room, for multi-request functions."
    )

    def instance_rule(self) -> str:
        return self.multi

    def start(self, ctx, rng):
        self._mean_s = [f.duration_ms / 1000.0 for f in ctx.functions]
        self._slots = [f.concurrency for f in ctx.functions]
        self._limit_s = [
            (f.init_ms if self.max_wait_ms is None else self.max_wait_ms) / 1000.0
            for f in ctx.functions
        ]  # fmt: skip

    def route(self, function, now, busy):
        mean, slots = self._mean_s[function], self._slots[function]
        if not busy or math.isnan(mean):
            return NEW

        def free_at(b: BusyInstance) -> float:  # its oldest request's end, and those waiting
            return b.since_s + (1 + b.queued / slots) * mean

        best = min(busy, key=lambda b: (free_at(b), b.instance_id))
        wait = free_at(best) - now
        if wait < self._limit_s[function]:
            return best.instance_id
        return DROP if self.beyond == "drop" else NEW


def checked(policy: RoutingPolicy):
    """route() of a user's policy, guarded, its answer checked."""
    route = guarded(policy, "route", policy.route)

    def checked_route(function, now, busy):
        answer = route(function, now, busy)
        if answer in (NEW, DROP) or any(b.instance_id == answer for b in busy):
            return int(answer)
        raise PolicyError(
            f"routing policy {policy.policy}: route({function}, {now:.6g}, ...) returned "
            f"{answer!r}: return coldsim.policies.routing.NEW (-1), DROP (-2) or the id of one "
            "of the busy instances offered"
        )

    return checked_route


BUILTINS: dict[str, type[RoutingPolicy]] = {
    "pack": Pack, "least-loaded": LeastLoaded, "wait-for-warm": WaitForWarm,
}  # fmt: skip

#: The scenario field's type: a built-in's name, or {policy: name-or-module:Class, ...}.
RoutingField = Annotated[RoutingPolicy, PluginField(RoutingPolicy, BUILTINS, shorthand=True)]
