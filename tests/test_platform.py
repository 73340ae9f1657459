"""AWS-faithful platform behaviour, stepped by hand: limits, throttling, async retries, the
scaling rate, provisioned concurrency, warmers, recycling and cost."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import const, function, run, scenario


@pytest.fixture
def trace(write_trace):
    """A function replaying the given arrival times."""

    def make(name, times, **kw):
        path = write_trace(times, name=f"{name}.csv")
        return function(name, arrivals={"process": "trace", "path": str(path)}, **kw)

    return make


def served(inv):
    return inv[inv["status"] == "served"]


# -- concurrency limits and throttling ------------------------------------------------------


def test_sync_over_the_account_limit_is_throttled(trace):
    res = run(scenario(trace("f", [0.0, 0.0, 0.0], duration=const(1000)), concurrency_limit=2))
    inv = res.invocations
    assert inv["status"].tolist() == ["served", "served", "throttled"]
    assert inv["instance_id"].tolist() == [0, 1, -1]
    assert np.isnan(inv["latency_ms"].iloc[2])
    assert res.throttles[["reason", "outcome", "attempt"]].values.tolist() == [
        ["account", "throttled", 1]
    ]
    s = res.summary
    assert (s["invocations"], s["served"], s["throttled"], s["throttle_rate"]) == (3, 2, 1, 1 / 3)
    assert s["cold_start_rate"] == 1.0  # per served request


def test_async_over_the_limit_runs_after_the_backoff(trace):
    f = trace("f", [0.0, 0.0, 0.0], duration=const(1500))
    f["invocation"] = "async"
    res = run(scenario(f, concurrency_limit=2))
    inv = res.invocations
    # Third request: throttled at 0 (retry in 1 s), at 1 (both still busy until 1.5; retry in
    # 2 s), served warm at 3 on the instance that finished first.
    assert inv["status"].tolist() == ["served"] * 3
    third = inv.iloc[2]
    assert (third["attempts"], third["queue_delay_ms"], third["start_s"]) == (3, 3000.0, 3.0)
    assert not third["cold"] and third["latency_ms"] == pytest.approx(4500.0)
    assert res.throttles["time_s"].tolist() == [0.0, 1.0]
    assert res.throttles["outcome"].tolist() == ["retry", "retry"]
    s = res.summary
    assert (s["retries"], s["throttled"]) == (2, 0)
    assert s["async_queue_delay_ms"] == {"p50": 0.0, "p99": pytest.approx(2940.0), "max": 3000.0}


def test_async_request_past_its_max_event_age_is_dropped(trace):
    f = trace("f", [0.0, 0.0], duration=const(10_000_000))
    f["invocation"] = "async"
    f["max_event_age_s"] = 60
    res = run(scenario(f, concurrency_limit=1, duration_s=100))
    # Retries at 1, 3, 7, 15, 31; the next (63 s after arrival) would be too old.
    assert res.throttles["time_s"].tolist() == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0]
    assert res.throttles["outcome"].tolist() == ["retry"] * 5 + ["dropped"]
    dropped = res.invocations.iloc[1]
    assert (dropped["status"], dropped["attempts"]) == ("dropped", 6)
    assert res.summary["throttled"] == 1 and res.summary["retries"] == 5


def test_backoff_doubles_up_to_five_minutes(trace):
    f = trace("f", [0.0, 0.0], duration=const(5_000_000))
    f["invocation"] = "async"
    res = run(scenario(f, concurrency_limit=1, duration_s=100))
    gaps = np.diff(res.throttles["time_s"].to_numpy())
    assert gaps[:9].tolist() == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert (gaps[9:] == 300).all() and len(gaps) > 12
    assert res.invocations.iloc[1]["start_s"] >= 5000


def test_reserved_concurrency_isolates_a_function_from_another_burst(trace):
    burst = trace("burst", [0.0] * 1500, duration=const(60_000))
    steady = trace("steady", [0.5] * 11, duration=const(1000))
    steady["reserved_concurrency"] = 10
    res = run(scenario(burst, steady, concurrency_limit=1000))
    s = res.summary["per_function"]
    # The burst gets the 990 unreserved units; the steady function keeps its 10, and no more.
    assert (s["burst"]["served"], s["burst"]["throttled"]) == (990, 510)
    assert (s["steady"]["served"], s["steady"]["throttled"]) == (10, 1)
    reasons = res.throttles.groupby("function", observed=True)["reason"].agg(set).to_dict()
    assert reasons == {"burst": {"account"}, "steady": {"reserved"}}


def test_unreserved_floor_is_enforced():
    from coldsim import ScenarioError, parse_scenario

    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    f["reserved_concurrency"] = 950
    with pytest.raises(ScenarioError, match="leaving 50 of the concurrency_limit 1000"):
        parse_scenario(scenario(f, concurrency_limit=1000))


def test_scaling_token_bucket_refills_continuously(trace):
    # 10 tokens, 1 per second. 15 at 0: 10 new instances. At 2.5: 2.5 tokens, 2 new. At 3: the
    # remaining 0.5 plus 0.5 = 1 token, 1 new.
    f = trace("f", [0.0] * 15 + [2.5] * 5 + [3.0] * 3, duration=const(100_000))
    res = run(scenario(f, scaling={"instances": 10, "per_s": 10}, duration_s=200))
    created = res.instances["created_s"].to_numpy()
    assert np.bincount(np.searchsorted([0.0, 2.5, 3.0], created)).tolist() == [10, 2, 1]
    inv = res.invocations
    assert inv.groupby("arrival_s")["status"].apply(lambda x: (x == "served").sum()).tolist() == [
        10,
        2,
        1,
    ]
    assert set(res.throttles["reason"]) == {"scaling"}


def test_warm_starts_need_no_scaling_token(trace):
    f = trace("f", [0.0, 10.0, 20.0, 30.0], duration=const(100))
    res = run(scenario(f, scaling={"instances": 1, "per_s": 1000}))
    assert res.summary["served"] == 4 and res.summary["cold_starts"] == 1


def test_limits_not_binding_change_nothing():
    f = function(
        arrivals={"process": "poisson", "rate_per_s": 5},
        duration={"dist": "exponential", "mean_ms": 200},
    )
    free = run(scenario(f, duration_s=2000)).invocations
    limited = run(
        scenario(
            f, duration_s=2000, concurrency_limit=1000, scaling={"instances": 1000, "per_s": 10}
        )
    ).invocations
    assert free.equals(limited)


# -- provisioned concurrency --------------------------------------------------------------


def pc_function(trace, times, count, **kw):
    f = trace("f", times, init=const(100), duration=const(1000), **kw)
    f["provisioned_concurrency"] = count
    return f


def test_provisioned_concurrency_serves_without_cold_starts(trace):
    res = run(scenario(pc_function(trace, [10.0] * 3 + [20.0] * 3, 3), idle_s=60, duration_s=100))
    inv = res.invocations
    assert inv["provisioned"].all() and not inv["cold"].any()
    assert res.summary["spillover_invocations"] == 0
    assert res.instances["provisioned"].all() and len(res.instances) == 3
    np.testing.assert_allclose(res.instances["ready_s"], 0.1)
    assert (res.instances["end_reason"] == "alive").all()  # never idle-evicted
    # 6 s of execution over 3 instances x 100 s configured.
    assert res.summary["provisioned_utilisation"] == pytest.approx(6 / 300)


def test_fourth_concurrent_request_spills_over_cold(trace):
    res = run(scenario(pc_function(trace, [10.0] * 4, 3), idle_s=60, duration_s=100))
    inv = res.invocations
    assert inv["provisioned"].tolist() == [True, True, True, False]
    assert inv["cold"].tolist() == [False, False, False, True]
    s = res.summary
    assert (s["cold_starts"], s["spillover_invocations"]) == (1, 1)


def test_requests_before_provisioned_instances_are_ready_spill_over(trace):
    res = run(scenario(pc_function(trace, [0.05, 0.2], 1), idle_s=60, duration_s=100))
    assert res.invocations["provisioned"].tolist() == [False, True]


def test_provisioned_instances_are_replaced_before_recycling(trace):
    res = run(scenario(pc_function(trace, [150.0], 1), max_lifetime_s=100, duration_s=350))
    inst = res.instances
    # Each successor is initialised ahead and ready when its predecessor retires.
    np.testing.assert_allclose(inst["ready_s"], [0.1, 100.1, 200.1, 300.1])
    np.testing.assert_allclose(inst["created_s"], [0.0, 100.0, 200.0, 300.0])
    np.testing.assert_allclose(inst["ended_s"][:3], [100.1, 200.1, 300.1])
    assert inst["end_reason"].tolist() == ["lifetime"] * 3 + ["alive"]
    assert res.invocations["instance_id"].tolist() == [1]
    assert not res.invocations["cold"].any()


def test_provisioned_schedule_scales_up_and_down(trace):
    f = pc_function(
        trace,
        [50.0] * 3 + [150.0] * 3 + [250.0],
        [{"at_s": 0, "count": 1}, {"at_s": 100, "count": 3}, {"at_s": 200, "count": 0}],
    )
    res = run(scenario(f, idle_s=1, duration_s=300))
    inv = res.invocations
    assert inv["provisioned"].tolist() == [True, False, False, True, True, True, False]
    assert res.summary["spillover_invocations"] == 2  # at 50 (1 configured); none at 250
    pc = res.instances[res.instances["provisioned"]]
    assert pc["created_s"].tolist() == [0.0, 100.0, 100.0]
    assert (pc["end_reason"] == "deprovisioned").all() and (pc["ended_s"] == 200.0).all()


def test_lowering_provisioned_count_retires_busy_instances_when_they_finish(trace):
    f = pc_function(trace, [99.5], [{"at_s": 0, "count": 1}, {"at_s": 100, "count": 0}])
    res = run(scenario(f, idle_s=1, duration_s=300))
    inst = res.instances.iloc[0]
    assert (inst["end_reason"], inst["ended_s"]) == ("deprovisioned", 100.5)


# -- warmers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("idle_s", "cold_users"), [(360, 0), (240, 5)])
def test_warmer_keeps_an_instance_warm_only_within_keep_alive(idle_s, cold_users):
    # User requests every 600 s, 250 s after a ping; pings every 300 s.
    f = function(
        arrivals={"process": "periodic", "interval_s": 600, "offset_s": 550},
        init=const(200),
        duration=const(50),
    )
    f["warmer"] = {"interval_s": 300, "concurrency": 1, "duration_ms": 5}
    s = run(scenario(f, idle_s=idle_s, duration_s=3000)).summary
    assert s["invocations"] == 5 and s["warmer_invocations"] == 10
    assert s["cold_starts"] == cold_users
    assert s["latency_ms"]["max"] == pytest.approx(250.0 if cold_users else 50.0)


def test_warmer_concurrency_keeps_that_many_instances(trace):
    f = trace("f", [100.0] * 3, duration=const(1000))
    f["warmer"] = {"interval_s": 60, "concurrency": 3, "duration_ms": 5}
    res = run(scenario(f, idle_s=90, duration_s=200))
    assert res.summary["cold_starts"] == 0
    assert len(res.instances) == 3


# -- recycling and keep-alive distributions -----------------------------------------------


def test_lifetime_and_idle_times_can_be_distributions():
    data = scenario(
        function(
            arrivals={"process": "poisson", "rate_per_s": 2},
            duration={"dist": "exponential", "mean_ms": 300},
        ),
        duration_s=20_000,
        selection="lru",
    )
    data["platform"]["keep_alive"] = {
        "policy": "random",
        "idle_s": {"dist": "uniform", "low_s": 5, "high_s": 7},
    }
    data["platform"]["max_lifetime_s"] = {"dist": "uniform", "low_s": 600, "high_s": 900}
    res = run(data)
    inst = res.instances
    ended = inst[inst["end_reason"] == "lifetime"]
    age = ended["ended_s"] - ended["created_s"]
    assert len(ended) > 20 and age.min() >= 600
    idle = inst[inst["end_reason"] == "idle"]
    last_end = res.invocations.groupby("instance_id")["end_s"].max()
    idle_time = idle["ended_s"].to_numpy() - last_end[idle["instance_id"]].to_numpy()
    assert len(idle) > 50 and idle_time.min() >= 5 and idle_time.max() <= 7
    assert idle_time.std() > 0.3  # drawn, not fixed (uniform(5,7) has std 0.577)


def test_runtime_preset_sets_init_unless_given():
    from coldsim import parse_scenario

    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    del f["init"]
    f["runtime"] = "java21"
    sc = parse_scenario(scenario(f))
    assert sc.functions[0].init.median == 245.0
    f["init"] = const(7)
    assert parse_scenario(scenario(f)).functions[0].init.value == 7


# -- cost ---------------------------------------------------------------------------------

X86_GB_S, PC_GB_S, PC_EXEC_GB_S, REQUEST = 0.0000166667, 0.0000041667, 0.0000097222, 2e-7


def test_cost_of_cold_requests_bills_init_and_rounds_up_to_the_ms(trace):
    f = trace("f", [0.0, 10.0, 20.0], init=const(250.3), duration=const(100.4))
    res = run(scenario(f, idle_s=5, duration_s=100))
    c = res.summary["cost_usd"]
    # Billed: ceil(250.3 + 100.4) = 351 ms a request, of which ceil(100.4) = 101 is handler.
    assert c["requests"] == pytest.approx(3 * REQUEST, rel=1e-12)
    assert c["compute"] == pytest.approx(3 * 0.101 * 1.0 * X86_GB_S, rel=1e-12)
    assert c["init"] == pytest.approx(3 * 0.250 * 1.0 * X86_GB_S, rel=1e-12)
    assert c["total"] == pytest.approx(3 * (REQUEST + 0.351 * X86_GB_S), rel=1e-12)


def test_cost_of_provisioned_concurrency_and_warmers(trace):
    f = trace("f", [400.0, 400.0, 400.0], init=const(100), duration=const(20), memory_mb=512)
    f["provisioned_concurrency"] = 2
    f["warmer"] = {"interval_s": 300, "concurrency": 1, "duration_ms": 5}
    s = run(scenario(f, idle_s=1000, duration_s=1000)).summary
    c = s["cost_usd"]
    # 2 x 0.5 GB configured for 1000 s, billed as 1200 s (5-minute rounding).
    assert c["provisioned"] == pytest.approx(2 * 0.5 * 1200 * PC_GB_S, rel=1e-12)
    # Pings at 0 (spill-over cold: provisioned instances are still initialising), 300, 600,
    # 900 (on provisioned instances). Users at 400: two on provisioned, one on the on-demand
    # instance the first ping left warm.
    assert s["warmer_invocations"] == 4
    warmers = 4 * REQUEST + 0.5 * (
        0.105 * X86_GB_S - 0.005 * X86_GB_S + 0.005 * X86_GB_S + 3 * 0.005 * PC_EXEC_GB_S
    )
    assert c["warmers"] == pytest.approx(warmers, rel=1e-9)
    users = 3 * REQUEST + 0.5 * (2 * 0.020 * PC_EXEC_GB_S + 0.020 * X86_GB_S)
    assert c["requests"] + c["compute"] + c["init"] == pytest.approx(users, rel=1e-9)
    assert s["spillover_invocations"] == 1 and s["cold_starts"] == 0
    assert c["total"] == pytest.approx(sum(v for k, v in c.items() if k != "total"), rel=1e-12)


def test_arm64_prices_and_init_billing_switch(trace):
    f = trace("f", [0.0], init=const(300), duration=const(10), memory_mb=2048)
    f["architecture"] = "arm64"
    data = scenario(f, duration_s=10)
    assert run(data).summary["cost_usd"]["compute"] == pytest.approx(2 * 0.010 * 0.0000133334)
    data["platform"]["pricing"] = {"bill_init": False}
    assert run(data).summary["cost_usd"]["init"] == 0.0


# -- edge cases found in review ------------------------------------------------------------


def test_lowering_provisioned_count_keeps_busy_surplus_within_limits(trace):
    # Two provisioned instances start 100 s requests at 1, then the count drops to 0 at 10:
    # they keep their two units of the pool (102) until they finish. A hog holds 99 more, so
    # of three requests at 20 only one fits.
    f = trace("f", [1.0, 1.0, 20.0, 20.0, 20.0], duration=const(100_000), init=const(100))
    f["provisioned_concurrency"] = [{"at_s": 0, "count": 2}, {"at_s": 10, "count": 0}]
    hog = trace("hog", [0.0] * 99, duration=const(1_000_000))
    res = run(scenario(f, hog, concurrency_limit=102, duration_s=200))
    rows = res.invocations[res.invocations["function"] == "f"]
    assert rows["status"].tolist() == ["served", "served", "served", "throttled", "throttled"]
    assert res.summary["per_function"]["f"]["provisioned_utilisation"] == pytest.approx(18 / 20)


def test_surplus_provisioned_units_are_held_until_retired(trace):
    f = trace("f", [1.0, 1.0, 20.0, 20.0, 20.0], duration=const(100_000), init=const(100))
    f["provisioned_concurrency"] = [{"at_s": 0, "count": 2}, {"at_s": 10, "count": 0}]
    f["reserved_concurrency"] = 3
    res = run(scenario(f, concurrency_limit=200, duration_s=200))
    # Reserved 3: two surplus provisioned instances still run, so one more request fits.
    assert res.invocations["status"].tolist() == [
        "served",
        "served",
        "served",
        "throttled",
        "throttled",
    ]
    assert res.summary["provisioned_utilisation"] == pytest.approx(
        2 * 9 / 20
    )  # busy 1..10 of 0..10


def test_no_requests_with_provisioned_instances(trace):
    f = function(arrivals={"process": "periodic", "interval_s": 10, "offset_s": 500})
    f["provisioned_concurrency"] = 2
    s = run(scenario(f, duration_s=100)).summary
    # Both instances live from their creation at 0 to the end: exactly two on average.
    assert s["invocations"] == 0 and s["mean_instances"] == pytest.approx(2.0)


def test_short_backoff_cap_does_not_overflow(trace):
    f = trace("f", [0.0, 0.0], duration=const(100_000_000))
    f["invocation"] = "async"
    data = scenario(f, concurrency_limit=1, duration_s=100)
    data["platform"]["async_retry"] = {"max_delay_s": 10}
    res = run(data)
    assert res.invocations.iloc[1]["status"] == "dropped"
    assert res.invocations.iloc[1]["attempts"] > 2000


def test_provisioned_billing_rounds_each_unit_enable_to_disable(trace):
    f = trace("f", [5.0], duration=const(10))
    f["provisioned_concurrency"] = [{"at_s": 60 * i, "count": 1 + i % 2} for i in range(10)]
    c = run(scenario(f, duration_s=600)).summary["cost_usd"]
    # Unit 1: on all 600 s. Unit 2: five 60 s stretches, each billed as 300 s.
    assert c["provisioned"] == pytest.approx((600 + 5 * 300) * 1.0 * PC_GB_S, rel=1e-12)


def test_provisioned_steps_after_the_span_are_ignored(trace):
    f = trace("f", [5.0], duration=const(10))
    f["provisioned_concurrency"] = [{"at_s": 0, "count": 3}, {"at_s": 1e7, "count": 0}]
    res = run(scenario(f, duration_s=100, max_lifetime_s=10))
    assert len(res.instances) < 50


def test_provisioned_concurrency_must_fit_the_account_pool():
    from coldsim import ScenarioError, parse_scenario

    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    f["provisioned_concurrency"] = 50
    with pytest.raises(ScenarioError, match="peaks at 50"):
        parse_scenario(scenario(f, concurrency_limit=120))


def test_token_bucket_refill_is_exact_at_decimal_times(trace):
    f = trace("f", [0.0] * 1000 + [0.29] * 29, duration=const(100_000))
    res = run(scenario(f, scaling={"instances": 1000, "per_s": 10}, duration_s=10))
    assert res.summary["served"] == 1029


@pytest.mark.parametrize(("scope", "cold"), [("function", 12), ("app", 1)])
def test_instance_scope_app_shares_warm_instances_within_an_app(scope, cold):
    # Two functions of one app take turns every 5 min: each alone idles 599.9 s between its
    # requests, past the 590 s keep-alive, but the app's shared instance only 299.9 s.
    a = function("a", arrivals={"process": "periodic", "interval_s": 600}, duration=const(100))
    b = function(
        "b",
        arrivals={"process": "periodic", "interval_s": 600, "offset_s": 300},
        duration=const(100),
    )
    other = function(
        "c",
        arrivals={"process": "periodic", "interval_s": 600, "offset_s": 150},
        duration=const(100),
    )
    a["app"] = b["app"] = "shop"
    data = scenario(a, b, other, idle_s=590, duration_s=3600, concurrency_limit=1000)
    data["platform"]["instance_scope"] = scope
    s = run(data).summary
    assert s["per_function"]["a"]["cold_starts"] + s["per_function"]["b"]["cold_starts"] == cold
    assert s["per_function"]["c"]["cold_starts"] == 6  # not in the app: shares nothing


@pytest.mark.parametrize(
    ("memory_mb", "cpu_bound", "factor"),
    [
        (1769, 1.0, 1.0),
        (884, 1.0, 1769 / 884),
        (442, 0.5, 0.5 + 0.5 * 1769 / 442),
        (3538, 1.0, 1.0),
    ],
)
def test_handler_time_follows_the_cpu_share_of_memory(trace, memory_mb, cpu_bound, factor):
    # Measured at 1,769 MB (1 vCPU): half the memory, half the CPU, twice the CPU-bound time;
    # more than 1 vCPU does not help a single-threaded handler.
    f = trace("f", [0.0, 10.0], init=const(200), duration=const(100), memory_mb=memory_mb)
    f["duration_reference_mb"] = 1769
    f["cpu_bound"] = cpu_bound
    inv = run(scenario(f, duration_s=20)).invocations
    np.testing.assert_allclose(inv["duration_ms"], 100 * factor)
    assert inv["init_ms"].tolist() == [200, 0]  # init runs on a full vCPU: not scaled


def test_raised_provisioned_concurrency_is_usable_after_allocation(trace):
    # Raised from 1 to 3 at 100 s: the 2 new environments are usable at 100 + 90 + 2/100
    # s (AWS allocates 6,000 a minute, none usable before the whole raise). Requests at
    # 150 spill over; those at 195 meet them. The count at 0 s was set up before the span.
    f = pc_function(trace, [50.0] + [150.0] * 3 + [195.0] * 3,
                    [{"at_s": 0, "count": 1}, {"at_s": 100, "count": 3}])  # fmt: skip
    data = scenario(f, idle_s=1, duration_s=300)
    data["platform"]["provisioned_allocation"] = {"delay_s": 90, "per_minute": 6000}
    res = run(data)
    assert res.invocations["provisioned"].tolist() == [True, True, False, False] + [True] * 3
    pc = res.instances[res.instances["provisioned"]]
    np.testing.assert_allclose(pc["ready_s"], [0.1, 190.02, 190.02])


def test_lowering_during_an_allocation_cancels_what_is_not_ready(trace):
    # 1 at 0, raised to 3 at 100 (usable at 190.02), lowered to 1 at 120: the two being
    # allocated are cancelled, and the ready one keeps serving (no spill-over at 150).
    f = pc_function(trace, [50.0, 150.0, 250.0],
                    [{"at_s": 0, "count": 1}, {"at_s": 100, "count": 3},
                     {"at_s": 120, "count": 1}])  # fmt: skip
    data = scenario(f, idle_s=1, duration_s=300)
    data["platform"]["provisioned_allocation"] = {"delay_s": 90, "per_minute": 6000}
    res = run(data)
    assert res.invocations["provisioned"].tolist() == [True, True, True]
    pc = res.instances[res.instances["provisioned"]].set_index("instance_id")
    cancelled = pc[pc["end_reason"] == "deprovisioned"]
    assert len(cancelled) == 2
    assert (cancelled["ended_s"] == 120.0).all() and (cancelled["init_ms"] == 0.0).all()
