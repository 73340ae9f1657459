"""Time distributions (all parameters and samples in milliseconds), chosen by `dist:` in YAML."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n samples in ms, as float64."""
        raise NotImplementedError

    def mean(self) -> float:
        """Expected value, in ms."""
        raise NotImplementedError


class Constant(_Distribution):
    """Always the same value."""

    dist: Literal["constant"]
    value_ms: float = Field(ge=0, description="The value, in ms.")

    def sample(self, rng, n):
        return np.full(n, float(self.value_ms))

    def mean(self):
        return float(self.value_ms)


class Exponential(_Distribution):
    """Exponential with the given mean (coefficient of variation 1)."""

    dist: Literal["exponential"]
    mean_ms: float = Field(gt=0, description="Mean, in ms.")

    def sample(self, rng, n):
        return rng.exponential(self.mean_ms, n)

    def mean(self):
        return self.mean_ms


class LogNormal(_Distribution):
    """Log-normal: ln(X) ~ Normal(ln(median_ms), sigma). Fits measured init durations well."""

    dist: Literal["lognormal"]
    median_ms: float = Field(gt=0, description="Median, in ms (= exp(mu)).")
    sigma: float = Field(ge=0, le=10, description="Standard deviation of ln(X).")

    def sample(self, rng, n):
        return rng.lognormal(math.log(self.median_ms), self.sigma, n)

    def mean(self):
        return self.median_ms * math.exp(self.sigma**2 / 2)


class Gamma(_Distribution):
    """Gamma with the given mean and coefficient of variation (shape 1/cv², scale mean·cv²)."""

    dist: Literal["gamma"]
    mean_ms: float = Field(gt=0, description="Mean, in ms.")
    cv: float = Field(gt=0, le=100, description="Coefficient of variation (std / mean).")

    def sample(self, rng, n):
        return rng.gamma(1.0 / self.cv**2, self.mean_ms * self.cv**2, n)

    def mean(self):
        return self.mean_ms


class Uniform(_Distribution):
    """Uniform on [low_ms, high_ms]."""

    dist: Literal["uniform"]
    low_ms: float = Field(ge=0, description="Lower bound, in ms.")
    high_ms: float = Field(ge=0, description="Upper bound, in ms (>= low_ms).")

    @model_validator(mode="after")
    def _ordered(self):
        if self.high_ms < self.low_ms:
            raise ValueError(f"high_ms ({self.high_ms}) must be >= low_ms ({self.low_ms})")
        return self

    def sample(self, rng, n):
        return rng.uniform(self.low_ms, self.high_ms, n)

    def mean(self):
        return (self.low_ms + self.high_ms) / 2


class Empirical(_Distribution):
    """Piecewise-linear inverse CDF through the given percentiles (the Azure traces' shape)."""

    dist: Literal["empirical"]
    percentiles_ms: dict[float, float] = Field(
        description="Percentile (0..100, must include 0 and 100) -> value in ms, non-decreasing."
    )

    @model_validator(mode="after")
    def _valid(self):
        ps = sorted(self.percentiles_ms)
        if not ps or ps[0] != 0 or ps[-1] != 100:
            raise ValueError("percentiles_ms needs the percentiles 0 and 100 (the range)")
        if any(p < 0 or p > 100 for p in ps):
            raise ValueError("percentile keys must lie in [0, 100]")
        vs = [self.percentiles_ms[p] for p in ps]
        if any(v < 0 for v in vs):
            raise ValueError("percentile values must be >= 0 ms")
        if any(b < a for a, b in zip(vs, vs[1:], strict=False)):
            raise ValueError("percentile values must not decrease as the percentile grows")
        return self

    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        ps = np.array(sorted(self.percentiles_ms), dtype=float)
        return ps, np.array([self.percentiles_ms[p] for p in ps], dtype=float)

    def sample(self, rng, n):
        ps, vs = self._knots()
        return np.interp(rng.uniform(0.0, 100.0, n), ps, vs)

    def mean(self):
        ps, vs = self._knots()
        return float(np.sum(np.diff(ps) / 100.0 * (vs[1:] + vs[:-1]) / 2))


Distribution = Annotated[
    Constant | Exponential | LogNormal | Gamma | Uniform | Empirical,
    Field(discriminator="dist"),
]
