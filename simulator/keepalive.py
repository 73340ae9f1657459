"""Keep-alive policies: when an idle instance is evicted. Chosen by `policy:` in YAML.

A policy sees an instance going idle at end_s and returns its eviction time; the engine never
runs a timer for it. The instance may be reused only by a request arriving strictly before
that time, and is otherwise logged as evicted at exactly that time.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class KeepAlive(Protocol):
    def expiry_s(self, end_s: float) -> float:
        """Eviction time of an instance whose last execution ended at end_s."""
        ...


class Fixed(BaseModel):
    """Evict an instance idle_s after its last execution ended (a fixed TTL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["fixed"]
    idle_s: float = Field(
        360.0,
        ge=0,
        description=(
            "Idle time before eviction, in s. Default 360 s: AWS publishes no value; the latest "
            "measurement put Lambda's idle reaping at 5-7 min (Shilkov, Jan 2021; "
            "shared/reference/lambda-facts.md K3), of which 6 min is the midpoint."
        ),
    )

    def build(self, rng: np.random.Generator) -> KeepAlive:
        return self

    def expiry_s(self, end_s: float) -> float:
        return end_s + self.idle_s


KeepAlivePolicy = Annotated[Fixed, Field(discriminator="policy")]
