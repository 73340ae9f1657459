"""Percentiles of values added in batches: exact while they fit (numpy's linear
interpolation), within 1% of an order statistic at the rank once sketched; merging parts gives
the statistics of the whole."""

from __future__ import annotations

import math

import numpy as np
import pytest
from coldsim.reporting.quantiles import (
    FUNCTION_EXACT_LIMIT,
    PERCENTILES,
    RELATIVE_ACCURACY,
    FunctionQuantiles,
    exact_stats,
)
from hypothesis import given, settings
from hypothesis import strategies as st


class Quantiles:
    """One function's FunctionQuantiles, read as a single statistic."""

    def __init__(self, exact_limit: int = FUNCTION_EXACT_LIMIT):
        self.q = FunctionQuantiles(1, exact_limit)

    def add(self, values):
        self.q.add(np.zeros(len(values), dtype=np.int64), values)

    def merge(self, other):
        self.q.merge(other.q)

    def stats(self):
        return self.q.stats()[0]

    count = property(lambda self: int(self.q.count[0]))
    method = property(lambda self: self.q.method)


values = st.lists(st.floats(0.0, 1e7, allow_nan=False), min_size=1, max_size=400)


def batches(xs: list[float], sizes: list[int]) -> list[np.ndarray]:
    out, at = [], 0
    for size in sizes:
        out.append(np.array(xs[at : at + size]))
        at += size
    out.append(np.array(xs[at:]))
    return out


@settings(max_examples=150, deadline=None)
@given(values, st.lists(st.integers(0, 50), max_size=8))
def test_exact_statistics_are_numpys(xs, sizes):
    q = Quantiles(exact_limit=10_000)
    for block in batches(xs, sizes):
        q.add(block)
    got, a = q.stats(), np.array(xs)
    assert q.method == "exact" and q.count == len(xs)
    for key, pct in PERCENTILES.items():
        assert got[key] == pytest.approx(np.percentile(a, pct), rel=1e-12, abs=1e-9)
    assert got["max"] == a.max() and got["mean"] == pytest.approx(a.mean(), rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(values, st.lists(st.integers(0, 50), max_size=8), st.integers(1, 30))
def test_sketched_percentiles_are_within_the_stated_error(xs, sizes, limit):
    """Each reported percentile lies within 1% of an order statistic at (or next to) its
    rank; count, mean and max stay exact."""
    q = Quantiles(exact_limit=limit)
    for block in batches(xs, sizes):
        q.add(block)
    a = np.sort(np.array(xs))
    got = q.stats()
    assert q.method == ("ddsketch" if len(xs) > limit else "exact")
    assert q.count == len(xs) and got["max"] == a[-1]
    assert got["mean"] == pytest.approx(a.mean(), rel=1e-9, abs=1e-12)
    if q.method == "exact":
        return
    for key, pct in PERCENTILES.items():
        rank = pct / 100 * (len(a) - 1)
        near = a[max(0, math.floor(rank) - 1) : math.ceil(rank) + 2]
        err = RELATIVE_ACCURACY * 1.0000001
        assert any(abs(got[key] - v) <= err * v + 1e-300 for v in near), (key, got[key], near)


def test_a_million_lognormal_latencies_sketched_agree_with_the_exact_ones():
    rng = np.random.default_rng(5)
    x = rng.lognormal(np.log(120), 1.2, 1_000_000)
    exact, sketched = Quantiles(), Quantiles(exact_limit=1000)
    for block in np.array_split(x, 37):
        exact.add(block)
        sketched.add(block)
    e, s = exact.stats(), sketched.stats()
    assert exact.method == "exact" and sketched.method == "ddsketch"
    for key in PERCENTILES:
        assert s[key] == pytest.approx(e[key], rel=RELATIVE_ACCURACY)


@settings(max_examples=100, deadline=None)
@given(values, values, st.integers(1, 600))
def test_merged_parts_give_the_whole(xs, ys, limit):
    whole, a, b = Quantiles(limit), Quantiles(limit), Quantiles(limit)
    whole.add(np.array(xs))
    whole.add(np.array(ys))
    a.add(np.array(xs))
    b.add(np.array(ys))
    a.merge(b)
    got, want = a.stats(), whole.stats()
    assert a.method == whole.method and a.count == whole.count
    for key in (*PERCENTILES, "max"):
        assert got[key] == want[key]
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)


def test_no_values_give_none_everywhere():
    assert Quantiles().stats() == exact_stats(np.empty(0))
    assert set(Quantiles().stats().values()) == {None}
