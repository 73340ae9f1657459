"""Arrival processes sample what they promise: rates and rate(t) within CLT bounds, windows,
order, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from coldsim.workload.arrivals import ArrivalProcessField as ArrivalProcess
from pydantic import TypeAdapter, ValidationError

Z = 4.0
ADAPTER = TypeAdapter(ArrivalProcess)


def times(spec, duration_s, seed=1):
    proc = ADAPTER.validate_python(spec)
    batches = list(proc.batches(np.random.default_rng(seed), duration_s))
    t = np.concatenate(batches) if batches else np.empty(0)
    assert (np.diff(t) >= 0).all()
    assert all(len(b) for b in batches)
    return proc, t


def test_two_state_mmpp_mean_rate():
    # On/off: 20/s for 30 s on average, then 1/s for 120 s. π = (0.2, 0.8), mean 4.8/s.
    spec = {"process": "mmpp", "rates_per_s": [20, 1], "mean_durations_s": [30, 120]}
    duration = 2_000_000.0
    proc, t = times(spec, duration)
    lam1, lam2, r1, r2 = 20, 1, 1 / 30, 1 / 120
    pi1 = r2 / (r1 + r2)
    mean = pi1 * lam1 + (1 - pi1) * lam2
    assert proc.mean_rate() == pytest.approx(mean)
    # Counts of a 2-state MMPP have an asymptotic index of dispersion
    # 1 + 2 π1 π2 (λ1 − λ2)² / (λ̄ (r1 + r2)).
    idc = 1 + 2 * pi1 * (1 - pi1) * (lam1 - lam2) ** 2 / (mean * (r1 + r2))
    se = math.sqrt(mean * idc / duration)
    assert abs(len(t) / duration - mean) < Z * se


def test_mmpp_with_three_states_and_a_matrix():
    spec = {"process": "mmpp", "rates_per_s": [0, 5, 50], "mean_durations_s": [100, 50, 5],
            "transitions": [[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]]}  # fmt: skip
    proc, t = times(spec, 2_000_000.0)
    # Embedded chain: ν = (0.25, 0.5, 0.25); time shares ∝ ν·d = (25, 25, 1.25).
    np.testing.assert_allclose(proc.stationary(), np.array([25, 25, 1.25]) / 51.25)
    assert len(t) / 2_000_000.0 == pytest.approx(proc.mean_rate(), rel=0.05)


@pytest.mark.parametrize("amplitude", [0.0, 0.6, 1.0])
def test_diurnal_rate_follows_the_cosine(amplitude):
    spec = {"process": "diurnal", "base_rate_per_s": 0.5, "amplitude": amplitude,
            "period_s": 86400, "peak_at_s": 50400}  # fmt: skip
    days = 60
    proc, t = times(spec, days * 86400.0)
    hours = np.bincount(((t % 86400) // 3600).astype(int), minlength=24)
    edges = np.arange(25) * 3600.0
    expected = (
        np.array([proc.expected_count(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]) * days
    )
    # Each hour's count is Poisson; 24 tests at once: z = 4.5 keeps the family error < 1e-4.
    assert (np.abs(hours - expected) < 4.5 * np.sqrt(expected)).all()
    assert hours.argmax() in (13, 14) or amplitude == 0


def test_piecewise_rates_repeat_each_day():
    rates = [0.1] * 8 + [2.0] * 10 + [0.5] * 6
    spec = {"process": "piecewise", "rates_per_s": rates, "interval_s": 3600}
    days = 20
    _, t = times(spec, days * 86400.0)
    hours = np.bincount(((t % 86400) // 3600).astype(int), minlength=24)
    expected = np.array(rates) * 3600 * days
    assert (np.abs(hours - expected) < 4.5 * np.sqrt(expected)).all()


def test_periodic_jitter_moves_each_request_within_bounds():
    spec = {"process": "periodic", "interval_s": 60, "offset_s": 30, "jitter_s": 10}
    _, t = times(spec, 600_000.0)
    ticks = 30 + 60 * np.round((t - 30) / 60)
    shift = t - ticks
    assert len(t) == 10_000
    assert np.abs(shift).max() <= 10 and np.abs(shift).min() >= 0
    # Uniform on [-10, 10]: mean 0, standard deviation 20 / sqrt(12).
    assert abs(shift.mean()) < Z * (20 / math.sqrt(12)) / math.sqrt(len(t))
    with pytest.raises(ValidationError, match="at most half"):
        ADAPTER.validate_python({"process": "periodic", "interval_s": 10, "jitter_s": 6})


def test_periodic_does_not_lose_the_last_tick_to_rounding():
    _, t = times({"process": "periodic", "interval_s": 0.01}, 219.51000000000002)
    assert len(t) == 21952


def test_window_bounds_any_process():
    spec = {"process": "poisson", "rate_per_s": 5, "start_s": 1000, "end_s": 3000}
    proc, t = times(spec, 10_000.0)
    assert t.min() >= 1000 and t.max() < 3000
    assert abs(len(t) - 10_000) < Z * math.sqrt(10_000)
    assert proc.count(10_000.0) == 10_000
    _, t = times({**spec, "end_s": None}, 2000.0)
    assert t.max() < 2000
    with pytest.raises(ValidationError, match="end_s"):
        ADAPTER.validate_python({**spec, "end_s": 500})


def test_composite_is_the_sorted_union_of_its_parts():
    parts = [
        {"process": "poisson", "rate_per_s": 2},
        {"process": "periodic", "interval_s": 300, "offset_s": 7},
        {"process": "mmpp", "rates_per_s": [30, 0], "mean_durations_s": [5, 100], "start_s": 500},
    ]
    proc, t = times({"process": "composite", "processes": parts}, 50_000.0, seed=3)
    # The same parts drawn from the same sub-streams, separately.
    subs = np.random.default_rng(3).spawn(3)
    alone = [
        np.concatenate(list(ADAPTER.validate_python(p).batches(r, 50_000.0)))
        for p, r in zip(parts, subs, strict=True)
    ]
    np.testing.assert_array_equal(t, np.sort(np.concatenate(alone)))
    _, again = times({"process": "composite", "processes": parts}, 50_000.0, seed=3)
    np.testing.assert_array_equal(t, again)


def test_composite_can_nest_and_is_in_the_schema():
    spec = {"process": "composite", "processes": [
        {"process": "composite", "processes": [{"process": "poisson", "rate_per_s": 1}]},
        {"process": "diurnal", "base_rate_per_s": 1, "amplitude": 0.5},
    ]}  # fmt: skip
    proc, t = times(spec, 10_000.0)
    expected = proc.count(10_000.0)  # 10,000 + ∫ diurnal rate: 14,349 (near its peak)
    assert expected == pytest.approx(
        10_000 + 10_000 * (1 + 0.5 * math.sin(2 * math.pi / 8.64) / (2 * math.pi / 8.64))
    )
    assert abs(len(t) - expected) < Z * math.sqrt(expected)


@pytest.mark.parametrize("spec", [
    {"process": "mmpp", "rates_per_s": [1, 2], "mean_durations_s": [1]},
    {"process": "mmpp", "rates_per_s": [0, 0], "mean_durations_s": [1, 1]},
    {"process": "mmpp", "rates_per_s": [1, 2], "mean_durations_s": [1, 1], "transitions": [[0.5, 0.5], [1, 0]]},
    {"process": "diurnal", "base_rate_per_s": 1, "amplitude": 1.5},
    {"process": "piecewise", "rates_per_s": [1, -1]},
    {"process": "composite", "processes": []},
])  # fmt: skip
def test_invalid_processes_are_rejected(spec):
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(spec)
