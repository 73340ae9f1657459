"""Homogeneous Poisson arrivals."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...rng import batch_sizes
from .base import ArrivalProcessBase, poisson_times


class Poisson(ArrivalProcessBase):
    """Exponential inter-arrival times with mean 1/rate_per_s."""

    process: Literal["poisson"]
    rate_per_s: float = Field(
        gt=0, allow_inf_nan=False, description="Mean arrival rate, requests per second."
    )

    def generate(self, rng, t0, t1):
        return poisson_times(rng, self.rate_per_s, t0, t1, batch_sizes())

    def expected_count(self, t0, t1):
        return self.rate_per_s * (t1 - t0)
