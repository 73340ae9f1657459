"""The hybrid-histogram keep-alive policy (ATC'20 §4.2): windows from known idle times, the
fallbacks, and pre-warming in a run."""

from __future__ import annotations

import pytest
from coldsim import Invocation, parse_scenario
from coldsim.policies.hybrid import HybridHistogram
from conftest import const, function, run, scenario


def policy(**params) -> HybridHistogram:
    p = HybridHistogram(policy="hybrid-histogram", **params)
    p.start("f", None)
    return p


def feed(p: HybridHistogram, idle_times, duration_s: float = 1.0) -> None:
    """Requests whose idle times (end of one to arrival of the next) are the given ones."""
    t = 0.0
    p.observe(Invocation(0, "f", t, t, t + duration_s, True, 0, "user"))
    for k, idle in enumerate(idle_times, start=1):
        t = t + duration_s + idle
        p.observe(Invocation(k, "f", t, t, t + duration_s, False, 0, "user"))


def test_windows_from_a_known_sample():
    p = policy()
    feed(p, [150.0] + [630.0] * 18 + [1810.0])  # bins 2, 10 (x18), 30
    # Head: 5% of 20 = 1 idle time -> bin 2 -> 120 s less 10%. Tail: 99% -> bin 30, upper
    # edge 31 min, plus 10%. The instance is unloaded; a pre-warmed one covers the rest.
    assert p.cv() > 2
    keep, prewarm = p.windows()
    assert keep == 0.0
    assert prewarm == pytest.approx((108.0, 31 * 60 * 1.1 - 108.0))


def test_a_head_in_the_first_bin_keeps_the_instance_until_the_tail():
    p = policy()
    feed(p, [30.0] * 12)
    assert p.windows() == (pytest.approx(66.0), None)


def test_few_samples_or_a_flat_histogram_keep_for_the_whole_range():
    few = policy()
    feed(few, [600.0] * 9)  # min_samples is 10
    assert few.windows() == (14400.0, None)
    flat = policy()
    feed(flat, [60.0 * k + 1 for k in range(240)])  # one idle time in every bin: CV 0
    assert flat.cv() == 0.0 and flat.windows() == (14400.0, None)


def test_idle_times_beyond_the_range_are_forecast():
    p = policy()
    feed(p, [18000.0] * 10)  # 5 h, past the 4 h range
    keep, (prewarm, kept) = p.windows()
    assert keep == 0.0
    assert (prewarm, kept) == pytest.approx((18000 * 0.85, 18000 * 0.30))
    arima = policy(forecast="arima")
    feed(arima, [18000.0, 18100.0, 17900.0, 18050.0, 17950.0, 18020.0, 17980.0])
    guess = arima._forecast()
    assert 17000 < guess < 19000


def test_warmer_pings_are_not_traffic():
    p = policy()
    p.observe(Invocation(0, "f", 0.0, 0.0, 1.0, True, 0, "warmer"))
    p.observe(Invocation(1, "f", 500.0, 500.0, 501.0, True, 0, "warmer"))
    assert p._h.last_end is None and p._bins.sum() == 0


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="head_percentile must be below"):
        HybridHistogram(policy="hybrid-histogram", head_percentile=99, tail_percentile=50)


def test_a_periodic_function_is_pre_warmed_and_holds_little_memory():
    # A request every 10 minutes, 2 s init, 1 s handler: once the histogram is trusted (10
    # idle times), each instance is unloaded after its request and a pre-warmed one is ready
    # about a minute before the next: warm starts, with ~2 min of idle memory per period
    # instead of the 4 h a conservative keep-alive would hold.
    f = function(arrivals={"process": "periodic", "interval_s": 600}, init=const(2000),
                 duration=const(1000), memory_mb=1024)  # fmt: skip
    data = scenario(f, duration_s=86400, warmup_s=4 * 3600)
    data["platform"]["keep_alive"] = {"policy": "hybrid-histogram"}
    res = run(data)
    counted = res.invocations[res.invocations["counted"]]
    assert not counted["cold"].any()
    inst = res.instances
    assert inst["prewarmed"].sum() > 100
    late = inst[inst["created_s"] >= 4 * 3600]
    assert (late["end_reason"].iloc[:-1] == "idle").all()  # the last is alive at the end
    s = res.summary
    per_period_idle_s = s["idle_gb_s"] / (20 * 6)  # 1 GB; 20 h of 6 periods an hour
    assert per_period_idle_s < 200
    conservative = run({**data, "platform": {**data["platform"], "keep_alive": {
        "policy": "fixed", "idle_s": 14400}}}).summary  # fmt: skip
    assert s["idle_gb_s"] < conservative["idle_gb_s"] / 3


def test_it_is_a_built_in_by_name():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    data = scenario(f)
    data["platform"]["keep_alive"] = {"policy": "hybrid-histogram", "range_s": 7200}
    assert parse_scenario(data).platform.keep_alive.range_s == 7200


def test_cold_start_percent_by_application():
    from coldsim.reporting.summary import cold_start_percent_by_app

    a1 = function("a1", arrivals={"process": "periodic", "interval_s": 100})  # 1 cold of 10
    a2 = function("a2", arrivals={"process": "periodic", "interval_s": 100, "offset_s": 50})
    b = function("b", arrivals={"process": "periodic", "interval_s": 1000})  # always cold
    for f, app in ((a1, "A"), (a2, "A"), (b, "B")):
        f["app"] = app
    data = scenario(a1, a2, b, duration_s=1000, idle_s=200)
    data["platform"]["instance_scope"] = "app"
    res = run(data)
    pct = cold_start_percent_by_app(res.invocations, res.scenario)
    assert pct["A"] == pytest.approx(100 * 1 / 20) and pct["B"] == 100.0


def test_percentile_bins_match_a_cumulative_sum():
    import numpy as np
    from coldsim.policies.hybrid import _Histogram

    rng = np.random.default_rng(3)
    for _ in range(200):
        h = _Histogram(240, 60.0)
        h.bins = rng.poisson(rng.choice([0.01, 0.3, 5.0]), 240).tolist()
        h.sum = sum(h.bins)
        if not h.sum:
            continue
        cumulative = np.cumsum(h.bins)
        for p in (0.0, 5.0, 50.0, 99.0, 100.0):
            want = int(np.searchsorted(cumulative, p / 100 * h.sum))
            assert h.bin_of(p) == want, (p, h.bins)


def test_with_instance_scope_app_an_apps_functions_share_one_policy():
    from coldsim.engine.core import Engine

    fns = [{"name": n, "app": app, "duration": {"dist": "constant", "value_ms": 10},
            "arrivals": {"process": "poisson", "rate_per_s": 0.01}}
           for n, app in (("a1", "A"), ("a2", "A"), ("b1", "B"))]  # fmt: skip
    data = {"name": "apps", "duration_s": 3600, "functions": fns,
            "platform": {"instance_scope": "app", "keep_alive": {"policy": "hybrid-histogram"}}}  # fmt: skip
    engine = Engine(parse_scenario(data))
    a1, a2, b1 = engine.keep_alive
    assert a1 is a2 and a1 is not b1
    engine.run()
    # The app's histogram saw the idle times between both functions' requests.
    assert a1._h.sum + a1._h.beyond >= 1
    data["platform"]["instance_scope"] = "function"
    a1, a2, _ = Engine(parse_scenario(data)).keep_alive
    assert a1 is not a2


def test_decisions_match_a_rescan_of_the_bins_after_every_idle_time():
    # The decision follows the percentiles with pointers moved as idle times arrive: after
    # each one it must equal the decision from scratch (bin_of's scans, the CV from the bins).
    import math

    import numpy as np

    def from_scratch(p: HybridHistogram):
        h = p._h
        total = h.sum + h.beyond
        if total and h.beyond / total >= p.oob_threshold:
            return None  # forecast: not the pointers' business
        bins = np.array(h.bins, dtype=float)
        cv = float(np.std(bins, ddof=1) / bins.mean()) if h.sum else 0.0
        assert math.isclose(cv, h.cv(), rel_tol=1e-9, abs_tol=1e-12)
        if h.sum < p.min_samples or h.cv() < p.cv_threshold:
            return p.range_s, None
        head = h.bin_of(p.head_percentile) * p.bin_s * (1 - p.margin)
        tail = (h.bin_of(p.tail_percentile) + 1) * p.bin_s * (1 + p.margin)
        return (tail, None) if head <= 0.0 else (0.0, (head, tail - head))

    rng = np.random.default_rng(7)
    for case in range(40):
        params = {} if case % 2 else {"head_percentile": 30.0, "tail_percentile": 60.0,
                                      "cv_threshold": 0.0, "min_samples": 1}  # fmt: skip
        p = policy(**params)
        # Idle times from a few clusters, some far apart (the pointers cross empty bins),
        # now and then past the range.
        centres = rng.uniform(0, 15000, rng.integers(1, 5))
        t = 0.0
        p.observe(Invocation(0, "f", t, t, t + 1.0, True, 0, "user"))
        for k in range(1, 400):
            idle = max(0.0, rng.choice(centres) + rng.normal(0, 30))
            t += 1.0 + idle
            p.observe(Invocation(k, "f", t, t, t + 1.0, False, 0, "user"))
            want = from_scratch(p)
            if want is not None and rng.random() < 0.7:  # not after every one: jumps too
                assert p.windows() == want, (case, k)
