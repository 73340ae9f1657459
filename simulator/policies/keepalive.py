"""Keep-alive policies: how long an idle instance stays warm, and whether to pre-warm one.

One copy of the policy serves each function, or each application with `scope: app` (it sees
all the app's requests and decides for all its instances; the default follows
`instance_scope`, under which an app's functions also share warm instances). The engine
calls, in simulated-time order:
- `start(function, rng)` once, before the run (rng: the function's own keep-alive stream);
- `observe(invocation)` as each request of the function is placed on an instance (only if the
  class overrides it: built-ins that ignore traffic cost nothing per request);
- `keep_alive_s(end_s, instance_id)` when an instance goes idle at end_s: the window in
  seconds. 0 evicts it at once, inf keeps it until it is recycled. The instance may serve only
  requests that arrive strictly before end_s + window;
- `prewarm(end_s, instance_id)` right after, if the class overrides it: None, or a `Prewarm`
  asking for a new instance of the function, initialised to be ready at `ready_at_s` (its init
  starts then minus its init time, never before end_s) and kept `keep_alive_s` after that. A
  request that finds no idle instance takes a pre-warmed one still initialising and waits
  for the rest of its init (a cold start whose init latency is that remainder). Its init is
  billed, and the wait after it is idle time.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from ..distributions import DistributionS, UniformS
from ..rng import Buffered
from .base import Policy, PolicyError, guarded


class Invocation(NamedTuple):
    """A request as placed on an instance. Its end is known when it starts (its handler time
    is drawn then), so a policy sees it early; decisions that must not peek ahead use only
    arrival_s and start_s. On a multi-request instance whose CPU is shared, end_s is the
    end the request would have alone: the real one depends on requests still to come."""

    request_id: int
    function: str
    arrival_s: float  # when it arrived (a retried async request: its first arrival)
    start_s: float  # when its handler starts (after an init, on a cold start)
    end_s: float
    cold: bool
    instance_id: int
    kind: str  # "user", or "warmer" for a warmer's ping


class Prewarm(NamedTuple):
    """A request for a pre-warmed instance: ready at ready_at_s (absolute, s), then kept idle
    for keep_alive_s unless a request takes it."""

    ready_at_s: float
    keep_alive_s: float


class KeepAlivePolicy(Policy):
    """Base of keep-alive policies (see the module docstring for the call order)."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "keep-alive policy"
    public_name: ClassVar[str] = "KeepAlivePolicy"
    required: ClassVar[tuple[str, ...]] = ("keep_alive_s",)
    policy: str = Field(description="A built-in's name, or a plug-in class as module:Class.")
    scope: Literal["function", "app"] | None = Field(
        None,
        description=(
            "Whose requests one copy of the policy sees and decides for: each function's, or "
            "all of its app's (one copy per `app`, while functions keep their own instances "
            "unless platform.instance_scope is app too; ATC'20's per-application "
            "histograms). Default: as platform.instance_scope."
        ),
    )

    def start(self, function: str, rng: np.random.Generator) -> None:
        """Set up per-function state (in `_underscore` attributes)."""

    def state_bytes(self) -> float:
        """Memory one copy's state takes, about (the run's memory estimate counts it per
        function); 0 unless a policy keeps a large structure."""
        return 0.0

    def observe(self, invocation: Invocation) -> None:
        """A request of this function was placed on an instance."""

    def keep_alive_s(self, end_s: float, instance_id: int) -> float:
        """The idle window (s, >= 0) of an instance whose execution ended at end_s."""
        raise NotImplementedError

    def prewarm(self, end_s: float, instance_id: int) -> Prewarm | None:
        """Optionally ask for a pre-warmed instance when an instance goes idle."""
        return None


class Fixed(KeepAlivePolicy):
    """Evict an instance idle_s after its last execution ended (a fixed TTL, as Azure's
    20 min [sources: azure-keep-alive], or AWS's ~10 min of 2019-2020 [sources: shilkov-2021])."""

    policy: Literal["fixed"]
    idle_s: float = Field(
        ge=0,
        description=(
            "Idle time before eviction, s; .inf keeps idle instances until they are recycled "
            "or, with hosts, evicted for memory (FaasCache's caching view)."
        ),
    )

    def start(self, function, rng):
        idle_s = self.idle_s
        self._bind(keep_alive_s=lambda end_s, instance_id: idle_s)

    def keep_alive_s(self, end_s, instance_id):
        return self.idle_s


class RandomIdle(KeepAlivePolicy):
    """Evict an instance after an idle time drawn afresh each time it goes idle."""

    policy: Literal["random"]
    idle_s: DistributionS = Field(
        default_factory=lambda: UniformS(dist="uniform", low_s=300.0, high_s=420.0),
        description=(
            "Idle time before eviction, a distribution in s (a number: always that long). "
            "Default uniform 300-420 s: AWS publishes no value and reaps idle environments "
            "irregularly; measured at 5-7 min in 2021 [sources: shilkov-2021]."
        ),
    )

    @field_validator("idle_s", mode="before")
    @classmethod
    def _a_number_is_constant(cls, value):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"must be a number of seconds >= 0, got {value!r}")
            return {"dist": "constant", "value_s": value}
        return value

    def start(self, function, rng):
        draw = Buffered(lambda n: self.idle_s.sample(rng, n)).next
        self._bind(keep_alive_s=lambda end_s, instance_id: draw())

    def keep_alive_s(self, end_s, instance_id):
        raise RuntimeError("start() first: it draws from the function's stream")


class LoadDependent(KeepAlivePolicy):
    """Keep an idle instance quiet_idle_s, or busy_idle_s when its function had at least
    busy_from instances (idle, busy or initialising, this one included) as it went idle: a
    platform that keeps spare environments of a busy function longer. `coldsim logs fit`
    writes it when environments of a function under load were reused after idle periods
    that its quiet ones never outlived (AWS Lambda's logs of 2020 showed that: reaped after
    640 s when quiet, reused after up to 1,523 s when busy)."""

    policy: Literal["load"]
    quiet_idle_s: DistributionS = Field(
        description="Idle time before eviction while the function is quiet, a distribution in "
        "s (a number: always that long)."
    )
    busy_idle_s: DistributionS = Field(
        description="Idle time before eviction while it is busy, a distribution in s (a number: "
        "always that long)."
    )
    busy_from: int = Field(
        ge=2, le=1_000_000,
        description="The function is busy while it has at least this many instances.",
    )  # fmt: skip

    @field_validator("quiet_idle_s", "busy_idle_s", mode="before")
    @classmethod
    def _a_number_is_constant(cls, value):
        return RandomIdle._a_number_is_constant(value)

    def start(self, function, rng, ctx):
        quiet = Buffered(lambda n: self.quiet_idle_s.sample(rng, n)).next
        busy = Buffered(lambda n: self.busy_idle_s.sample(rng, n)).next
        busy_from = self.busy_from

        def keep_alive_s(end_s, instance_id):
            n = ctx.instances(function)
            return busy() if n.idle + n.busy + n.initialising >= busy_from else quiet()

        self._bind(keep_alive_s=keep_alive_s)

    def keep_alive_s(self, end_s, instance_id):
        raise RuntimeError("start() first: it draws from the function's stream")


def overrides(policy: KeepAlivePolicy, method: str) -> bool:
    """Whether the policy's class defines `method` itself (so the engine must call it)."""
    return getattr(type(policy), method) is not getattr(KeepAlivePolicy, method)


def checked(policy: KeepAlivePolicy, function: str):
    """keep_alive_s of a user's policy, with its contract checked on every call."""
    window = policy.keep_alive_s
    name = policy.policy

    def keep_alive_s(end_s: float, instance_id: int) -> float:
        w = window(end_s, instance_id)
        ok = isinstance(w, int | float | np.integer | np.floating) and not isinstance(w, bool)
        if not (ok and w >= 0.0):
            raise PolicyError(
                f"keep-alive policy {name} returned {w!r} from keep_alive_s for function "
                f"{function!r} at {end_s:.6g} s: it must be a number of seconds >= 0 (0 evicts "
                "at once, inf keeps the instance until it is recycled)"
            )
        return float(w)

    return guarded(policy, "keep_alive_s", keep_alive_s)
