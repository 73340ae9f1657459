"""Periodic (cron-like) arrivals, optionally jittered."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ...rng import batch_sizes
from .base import ArrivalProcessBase


class Periodic(ArrivalProcessBase):
    """One request every interval_s seconds from offset_s; each moved by a uniform jitter in
    [-jitter_s, +jitter_s] (at most half the interval, so the order never changes)."""

    process: Literal["periodic"]
    interval_s: float = Field(gt=0, allow_inf_nan=False, description="Time between requests, s.")
    offset_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="First request, s.")
    jitter_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="Uniform jitter, ± s.")

    @model_validator(mode="after")
    def _jitter_keeps_order(self):
        if self.jitter_s > self.interval_s / 2:
            raise ValueError(
                f"jitter_s ({self.jitter_s}) must be at most half of interval_s ({self.interval_s})"
            )
        return self

    def generate(self, rng, t0, t1):
        # Ticks that may land in [t0, t1) once jittered; one extra each side for rounding.
        first = max(0, math.ceil((t0 - self.jitter_s - self.offset_s) / self.interval_s) - 1)
        last = math.floor((t1 + self.jitter_s - self.offset_s) / self.interval_s) + 1
        k = first
        for size in batch_sizes():
            if k > last:
                return
            ticks = np.arange(k, min(k + size, last + 1), dtype=float)
            times = self.offset_s + self.interval_s * ticks
            if self.jitter_s:
                times += rng.uniform(-self.jitter_s, self.jitter_s, len(times))
            yield times[(times >= t0) & (times < t1)]
            k += size

    def expected_count(self, t0, t1):
        return (t1 - t0) / self.interval_s + 1
