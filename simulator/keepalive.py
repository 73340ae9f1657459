"""Keep-alive policies: when an idle instance is evicted. Chosen by `policy:` in YAML.

A policy sees an instance going idle at end_s and returns its eviction time; the engine never
runs a timer for it. The instance may be reused only by a request arriving strictly before
that time, and is otherwise logged as evicted at exactly that time.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .distributions import DistributionS, UniformS
from .rng import Buffered


class KeepAlive(Protocol):
    def expiry_s(self, end_s: float) -> float:
        """Eviction time of an instance whose last execution ended at end_s."""
        ...


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def build(self, rng: np.random.Generator) -> KeepAlive:
        """The policy for one function, drawing from that function's keep-alive stream."""
        raise NotImplementedError


class Fixed(_Policy):
    """Evict an instance idle_s after its last execution ended (a fixed TTL, as Azure's
    20 min, or AWS's ~10 min of 2019-2020)."""

    policy: Literal["fixed"]
    idle_s: float = Field(ge=0, allow_inf_nan=False, description="Idle time before eviction, s.")

    def build(self, rng):
        return self

    def expiry_s(self, end_s: float) -> float:
        return end_s + self.idle_s


class RandomIdle(_Policy):
    """Evict an instance after an idle time drawn afresh each time it goes idle."""

    policy: Literal["random"]
    idle_s: DistributionS = Field(
        default_factory=lambda: UniformS(dist="uniform", low_s=300.0, high_s=420.0),
        description=(
            "Idle time before eviction, a distribution in s. Default uniform 300-420 s: AWS "
            "publishes no value and reaps idle environments irregularly; the latest measurement "
            "put it at 5-7 min (Shilkov, Jan 2021; lambda-facts.md K3, §10)."
        ),
    )

    def build(self, rng):
        return _Drawn(Buffered(lambda n: self.idle_s.sample(rng, n)))


class _Drawn:
    __slots__ = ("_idle",)

    def __init__(self, idle: Buffered):
        self._idle = idle

    def expiry_s(self, end_s: float) -> float:
        return end_s + self._idle.next()


KeepAlivePolicy = Annotated[Fixed | RandomIdle, Field(discriminator="policy")]


def default_policy() -> RandomIdle:
    return RandomIdle(policy="random")
