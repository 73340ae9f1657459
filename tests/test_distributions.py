"""Each distribution samples what it promises: means within CLT bounds, exact shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from coldsim.distributions import DistributionMs, DistributionS
from pydantic import TypeAdapter, ValidationError

N = 200_000
Z = 4.0
ADAPTER = TypeAdapter(DistributionMs)

CASES = [
    ({"dist": "constant", "value_ms": 42}, 0.0),
    ({"dist": "exponential", "mean_ms": 120}, 120.0),
    ({"dist": "lognormal", "median_ms": 89, "sigma": 0.14}, None),
    ({"dist": "gamma", "mean_ms": 300, "cv": 2.0}, 600.0),
    ({"dist": "uniform", "low_ms": 10, "high_ms": 30}, 20 / math.sqrt(12)),
    ({"dist": "empirical", "percentiles_ms": {0: 1, 25: 10, 50: 20, 99: 100, 100: 400}}, None),
]


@pytest.mark.parametrize(("spec", "std"), CASES, ids=[c[0]["dist"] for c in CASES])
def test_sample_mean_matches_mean(spec, std):
    dist = ADAPTER.validate_python(spec)
    x = dist.sample(np.random.default_rng(5), N)
    assert x.shape == (N,) and (x >= 0).all()
    sd = x.std() if std is None else std
    assert abs(x.mean() - dist.expected()) <= Z * sd / math.sqrt(N) + 1e-12


def test_lognormal_median_and_sigma():
    dist = ADAPTER.validate_python({"dist": "lognormal", "median_ms": 89, "sigma": 0.14})
    logs = np.log(dist.sample(np.random.default_rng(6), N))
    assert abs(np.median(logs) - math.log(89)) < Z * 1.2533 * 0.14 / math.sqrt(N)
    assert logs.std() == pytest.approx(0.14, rel=Z / math.sqrt(2 * N))


def test_empirical_is_piecewise_linear_between_percentiles():
    spec = {"dist": "empirical", "percentiles_ms": {0: 0, 50: 100, 100: 1000}}
    x = ADAPTER.validate_python(spec).sample(np.random.default_rng(7), N)
    assert x.min() >= 0 and x.max() <= 1000
    # Half the mass lies uniformly on [0, 100], half on [100, 1000].
    p = np.mean(x <= 100)
    assert abs(p - 0.5) < Z * math.sqrt(0.25 / N)
    assert abs(np.mean(x <= 50) - 0.25) < Z * math.sqrt(0.25 * 0.75 / N)


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "uniform", "low_ms": 5, "high_ms": 1},
        {"dist": "empirical", "percentiles_ms": {0: 1, 50: 2}},
        {"dist": "empirical", "percentiles_ms": {0: 5, 50: 2, 100: 9}},
        {"dist": "exponential", "mean_ms": 0},
        {"dist": "lognormal", "median_ms": 10, "sigma": -1},
        {"dist": "constant", "value_ms": -1},
    ],
)
def test_invalid_parameters_are_rejected(spec):
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(spec)


def test_second_family_spells_parameters_in_seconds():
    dist = TypeAdapter(DistributionS).validate_python(
        {"dist": "uniform", "low_s": 300, "high_s": 420}
    )
    x = dist.sample(np.random.default_rng(8), N)
    assert x.min() >= 300 and x.max() <= 420 and dist.expected() == 360
    with pytest.raises(ValidationError):
        TypeAdapter(DistributionS).validate_python({"dist": "uniform", "low_ms": 1, "high_ms": 2})
