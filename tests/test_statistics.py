"""Closed-form results. Tolerances are z standard errors computed from the sample size."""

from __future__ import annotations

import math

import numpy as np
from coldsim.distributions import LogNormalMs
from conftest import const, function, run, scenario

Z = 4.0  # a correct engine fails one of these checks with probability ~6e-5


def test_cold_start_probability_matches_exp_minus_lambda_T():
    # Handler and init 1 ms (negligible): a request is warm iff the previous one arrived less
    # than T earlier, so cold indicators are i.i.d. Bernoulli(exp(-λT)).
    lam, keep_alive = 0.01, 60.0
    data = scenario(
        function(
            arrivals={"process": "poisson", "rate_per_s": lam}, init=const(1), duration=const(1)
        ),
        duration_s=20_000_000,
        idle_s=keep_alive,
    )
    s = run(data).summary
    n, p = s["invocations"], math.exp(-lam * keep_alive)
    se = math.sqrt(p * (1 - p) / n)
    assert n > 150_000
    assert abs(s["cold_start_rate"] - p) < Z * se, (s["cold_start_rate"], p, se)


def test_littles_law_for_busy_instances():
    # mean busy = λ·E[busy time per request] = λ·(E[handler] + P(cold)·E[init]).
    lam = 5.0
    init = {"dist": "lognormal", "median_ms": 250, "sigma": 0.4}
    data = scenario(
        function(
            arrivals={"process": "poisson", "rate_per_s": lam},
            init=init,
            duration={"dist": "exponential", "mean_ms": 120},
        ),
        duration_s=20_000,
        warmup_s=100,
        idle_s=30,
    )
    res = run(data)
    s, inv = res.summary, res.invocations
    width = 20_000 - 100
    busy_s = (inv["duration_ms"] + inv["init_ms"]).to_numpy()[inv["counted"]] / 1000
    expected = lam * (
        0.120
        + s["cold_start_rate"]
        * LogNormalMs(dist="lognormal", median_ms=250, sigma=0.4).expected()
        / 1000
    )
    # Compound Poisson: Var(Σ B_i / W) = λ E[B²] / W; plus at most one request's busy time
    # cut at each window edge.
    se = math.sqrt(lam * np.mean(busy_s**2) / width)
    edge = 2 * busy_s.max() / width
    assert abs(s["mean_busy_instances"] - expected) < Z * se + edge
    # The time average is exactly the counted busy time over the window, up to the edges.
    assert abs(s["mean_busy_instances"] - busy_s.sum() / width) < edge


def test_poisson_arrival_count_and_gaps():
    lam, duration = 3.0, 50_000.0
    data = scenario(
        function(arrivals={"process": "poisson", "rate_per_s": lam}), duration_s=duration
    )
    t = run(data).invocations["arrival_s"].to_numpy()
    n, mean = len(t), lam * duration
    assert abs(n - mean) < Z * math.sqrt(mean)  # Poisson count: variance = mean
    gaps = np.diff(t)
    # Exponential gaps: mean 1/λ with standard error (1/λ)/sqrt(n); CV 1.
    assert abs(gaps.mean() - 1 / lam) < Z * (1 / lam) / math.sqrt(len(gaps))
    assert t.min() >= 0 and t.max() < duration


def test_random_selection_is_uniform_over_idle_instances(write_trace):
    # Four simultaneous requests make four instances; the request at 100 s takes one of them.
    path = write_trace([0.0, 0.0, 0.0, 0.0, 100.0])
    counts = np.zeros(4)
    runs = 400
    for seed in range(runs):
        data = scenario(
            function(arrivals={"process": "trace", "path": str(path)}, duration=const(1000)),
            duration_s=200, selection="random", seed=seed,
        )  # fmt: skip
        counts[run(data).invocations["instance_id"].iloc[-1]] += 1
    chi2 = ((counts - runs / 4) ** 2 / (runs / 4)).sum()
    assert chi2 < 16.27, counts  # chi-square, 3 degrees of freedom, p = 0.001
