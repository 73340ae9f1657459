"""Distributions of times, chosen by `dist:` in YAML, in two unit families.

Each shape is defined once; `DistributionMs` spells its parameters with `_ms` (handler and init
times: `{dist: lognormal, median_ms: 89, sigma: 0.14}`) and `DistributionS` with `_s` (idle
times, lifetimes: `{dist: uniform, low_s: 300, high_s: 420}`). Samples are in that unit.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from .model import Model

#: Parameters that carry the unit suffix (`value` -> `value_ms` / `value_s`).
UNIT_FIELDS = frozenset({"value", "mean", "median", "low", "high", "percentiles"})


class _Distribution(Model):
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n samples (float64), in the family's unit."""
        raise NotImplementedError

    def expected(self) -> float:
        """The mean, in the family's unit."""
        raise NotImplementedError


class Constant(_Distribution):
    """Always the same value."""

    dist: Literal["constant"]
    value: float = Field(ge=0, allow_inf_nan=False, description="The value.")

    def sample(self, rng, n):
        return np.full(n, float(self.value))

    def expected(self):
        return float(self.value)


class Exponential(_Distribution):
    """Exponential with the given mean (coefficient of variation 1)."""

    dist: Literal["exponential"]
    mean: float = Field(gt=0, allow_inf_nan=False, description="Mean.")

    def sample(self, rng, n):
        return rng.exponential(self.mean, n)

    def expected(self):
        return self.mean


class LogNormal(_Distribution):
    """Log-normal: ln(X) ~ Normal(ln(median), sigma). Fits measured init durations well."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0, allow_inf_nan=False, description="Median (= exp(mu)).")
    sigma: float = Field(ge=0, le=10, description="Standard deviation of ln(X).")

    def sample(self, rng, n):
        return rng.lognormal(math.log(self.median), self.sigma, n)

    def expected(self):
        return self.median * math.exp(self.sigma**2 / 2)


class Gamma(_Distribution):
    """Gamma with the given mean and coefficient of variation (shape 1/cv², scale mean·cv²)."""

    dist: Literal["gamma"]
    mean: float = Field(gt=0, allow_inf_nan=False, description="Mean.")
    cv: float = Field(ge=1e-3, le=100, description="Coefficient of variation (std / mean).")

    def sample(self, rng, n):
        return rng.gamma(1.0 / self.cv**2, self.mean * self.cv**2, n)

    def expected(self):
        return self.mean


class Uniform(_Distribution):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: float = Field(ge=0, allow_inf_nan=False, description="Lower bound.")
    high: float = Field(ge=0, allow_inf_nan=False, description="Upper bound (>= low).")

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"the upper bound ({self.high}) must be >= the lower ({self.low})")
        return self

    def sample(self, rng, n):
        return rng.uniform(self.low, self.high, n)

    def expected(self):
        return (self.low + self.high) / 2


class Empirical(_Distribution):
    """Piecewise-linear inverse CDF through the given percentiles (the Azure traces' shape)."""

    dist: Literal["empirical"]
    percentiles: dict[float, float] = Field(
        description="Percentile (0..100, must include 0 and 100) -> value, non-decreasing."
    )

    @model_validator(mode="after")
    def _valid(self):
        ps = sorted(self.percentiles)
        if any(not math.isfinite(p) or p < 0 or p > 100 for p in ps):
            raise ValueError(f"percentile keys must lie in [0, 100] (got {ps})")
        if not ps or ps[0] != 0 or ps[-1] != 100:
            raise ValueError("the percentiles 0 and 100 (the range) are required")
        vs = [self.percentiles[p] for p in ps]
        if any(not math.isfinite(v) or v < 0 for v in vs):
            raise ValueError("percentile values must be finite and >= 0")
        if any(b < a for a, b in zip(vs, vs[1:], strict=False)):
            raise ValueError("percentile values must not decrease as the percentile grows")
        return self

    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        ps = np.array(sorted(self.percentiles), dtype=float)
        return ps, np.array([self.percentiles[p] for p in ps], dtype=float)

    def sample(self, rng, n):
        ps, vs = self._knots()
        return np.interp(rng.uniform(0.0, 100.0, n), ps, vs)

    def expected(self):
        ps, vs = self._knots()
        return float(np.sum(np.diff(ps) / 100.0 * (vs[1:] + vs[:-1]) / 2))


SHAPES = (Constant, Exponential, LogNormal, Gamma, Uniform, Empirical)


def _family(unit: str) -> tuple[type[_Distribution], ...]:
    def alias(name: str) -> str:
        return f"{name}_{unit}" if name in UNIT_FIELDS else name

    config = {**Model.model_config, "alias_generator": alias}
    suffix = unit.capitalize()
    return tuple(
        type(f"{cls.__name__}{suffix}", (cls,), {"model_config": config, "__module__": __name__})
        for cls in SHAPES
    )


MS = _family("ms")
S = _family("s")
ConstantMs, ExponentialMs, LogNormalMs, GammaMs, UniformMs, EmpiricalMs = MS
ConstantS, ExponentialS, LogNormalS, GammaS, UniformS, EmpiricalS = S

DistributionMs = Annotated[
    ConstantMs | ExponentialMs | LogNormalMs | GammaMs | UniformMs | EmpiricalMs,
    Field(discriminator="dist"),
]
DistributionS = Annotated[
    ConstantS | ExponentialS | LogNormalS | GammaS | UniformS | EmpiricalS,
    Field(discriminator="dist"),
]
