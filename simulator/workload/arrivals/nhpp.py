"""Non-homogeneous Poisson arrivals: a daily cycle, or a rate per interval."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ...rng import batch_sizes
from .base import ArrivalProcessBase, poisson_times, uniform_counts


class Diurnal(ArrivalProcessBase):
    """rate(t) = base_rate_per_s · (1 + amplitude · cos(2π (t − peak_at_s) / period_s)),
    sampled by thinning a Poisson process at the peak rate."""

    process: Literal["diurnal"]
    base_rate_per_s: float = Field(gt=0, allow_inf_nan=False, description="Mean rate, req/s.")
    amplitude: float = Field(ge=0, le=1, description="Relative swing: 0 flat, 1 down to zero.")
    period_s: float = Field(86400.0, gt=0, allow_inf_nan=False, description="Cycle length, s.")
    peak_at_s: float = Field(0.0, allow_inf_nan=False, description="A time of peak rate, s.")

    def rate(self, t: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * (np.asarray(t) - self.peak_at_s) / self.period_s
        return self.base_rate_per_s * (1 + self.amplitude * np.cos(phase))

    def generate(self, rng, t0, t1):
        peak = self.base_rate_per_s * (1 + self.amplitude)
        for candidates in poisson_times(rng, peak, t0, t1, batch_sizes()):
            keep = rng.random(len(candidates)) * peak < self.rate(candidates)
            yield candidates[keep]

    def expected_count(self, t0, t1):
        w = 2 * np.pi / self.period_s
        swing = (math.sin(w * (t1 - self.peak_at_s)) - math.sin(w * (t0 - self.peak_at_s))) / w
        return self.base_rate_per_s * ((t1 - t0) + self.amplitude * swing)


class Piecewise(ArrivalProcessBase):
    """A constant rate in each interval of interval_s seconds, rates_per_s[0] from t = 0, the
    list repeating (24 hourly rates make a daily profile for any number of days)."""

    process: Literal["piecewise"]
    rates_per_s: list[float] = Field(min_length=1, description="Rate in each interval, req/s.")
    interval_s: float = Field(3600.0, gt=0, allow_inf_nan=False, description="Interval length, s.")

    @model_validator(mode="after")
    def _finite(self):
        if any(not math.isfinite(r) or r < 0 for r in self.rates_per_s):
            raise ValueError("rates_per_s must be finite and >= 0")
        return self

    def generate(self, rng, t0, t1):
        rates = np.asarray(self.rates_per_s, dtype=float)
        first, last = math.floor(t0 / self.interval_s), math.ceil(t1 / self.interval_s)
        k = first
        for size in batch_sizes():  # `size` intervals at a time
            if k >= last:
                return
            idx = np.arange(k, min(k + size, last))
            starts = np.maximum(idx * self.interval_s, t0)
            ends = np.minimum((idx + 1) * self.interval_s, t1)
            yield uniform_counts(rng, starts, ends - starts, rates[idx % len(rates)])
            k += size

    def expected_count(self, t0, t1):
        return (
            float(np.mean(self.rates_per_s)) * (t1 - t0) + max(self.rates_per_s) * self.interval_s
        )
