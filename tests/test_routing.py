"""Routing as a plug-in: queueing behind a busy instance instead of a cold start, stepped by
hand; a user's routing policy and its contract."""

from __future__ import annotations

import numpy as np
import pytest
from coldsim import PolicyError, RoutingPolicy, ScenarioError, parse_scenario
from coldsim.policies.routing import NEW
from conftest import const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def routed(write_trace, times, routing, **platform):
    # Init 2 s, handler 1 s: the request at 0 runs on instance 0 from 2 to 3.
    data = scenario(function(arrivals={"process": "trace", "path": str(write_trace(times))},
                             init=const(2000), duration=const(1000)),
                    duration_s=100.0, idle_s=10.0)  # fmt: skip
    data["platform"]["routing"] = routing
    data["platform"].update(platform)
    return run(data)


def test_wait_for_warm_queues_while_the_expected_wait_beats_a_cold_start(write_trace):
    # At 2.5, instance 0 runs the first request (since 2.0, expected free at 3.0): 0.5 s of
    # waiting beats a 2 s init, so the request queues and runs 3-4, warm. At 2.6, with one
    # queued, it is expected free at 4.0: 1.4 s, still under 2 s: it runs 4-5.
    res = routed(write_trace, [0.0, 2.5, 2.6], "wait-for-warm")
    inv = res.invocations
    assert inv["instance_id"].tolist() == [0, 0, 0]
    assert inv["cold"].tolist() == [True, False, False]
    np.testing.assert_allclose(inv["start_s"], [2.0, 3.0, 4.0])
    np.testing.assert_allclose(inv["instance_wait_ms"], [0.0, 500.0, 1400.0])
    np.testing.assert_allclose(inv["latency_ms"], [3000.0, 1500.0, 2400.0])  # waits included
    np.testing.assert_allclose(res.instances["ended_s"], [15.0])  # idle from 5, for 10 s
    wait = res.summary["instance_wait_ms"]
    assert wait["waited"] == 2 and wait["max"] == pytest.approx(1400.0)


def test_wait_for_warm_cold_starts_past_max_wait(write_trace):
    res = routed(write_trace, [0.0, 2.5, 2.6], {"policy": "wait-for-warm", "max_wait_ms": 1000})
    inv = res.invocations
    assert inv["instance_id"].tolist() == [0, 0, 1]  # 2.6 would wait 1.4 s: a new instance
    assert inv["cold"].tolist() == [True, False, True]
    np.testing.assert_allclose(inv["instance_wait_ms"], [0.0, 500.0, 0.0])


def test_pack_never_queues_and_adds_no_column(write_trace):
    res = routed(write_trace, [0.0, 2.5, 2.6], "pack")
    assert res.invocations["cold"].tolist() == [True, True, True]
    assert "instance_wait_ms" not in res.invocations
    assert "instance_wait_ms" not in res.summary


class FirstBusy(RoutingPolicy):
    """Always queue behind the first busy instance offered (a user's policy)."""

    def route(self, function, now, busy):
        SEEN.append((function, now, list(busy)))
        return busy[0].instance_id if busy else NEW


SEEN: list = []


def test_a_users_routing_policy_sees_the_busy_instances(write_trace):
    SEEN.clear()
    res = routed(write_trace, [0.0, 2.5, 2.6], {"policy": FirstBusy})
    assert res.invocations["instance_id"].tolist() == [0, 0, 0]
    assert [(f, t, [tuple(b) for b in busy]) for f, t, busy in SEEN] == [
        (0, 2.5, [(0, 2.0, 0)]), (0, 2.6, [(0, 2.0, 1)])]


class Wrong(RoutingPolicy):
    def route(self, function, now, busy):
        return 99


def test_a_wrong_answer_is_a_policy_error(write_trace):
    with pytest.raises(PolicyError, match="routing policy .*Wrong: route.*returned 99"):
        routed(write_trace, [0.0, 2.5], {"policy": Wrong})


def test_queueing_needs_each_functions_own_instances():
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"].update(routing="wait-for-warm", instance_scope="app")
    with pytest.raises(ScenarioError, match="routing wait-for-warm: not with instance_scope app"):
        parse_scenario(data)


def test_queued_requests_hold_concurrency_while_they_wait(write_trace):
    # Account limit 2: 0 runs, 2.5 queues behind it (2 in flight), 2.6 finds the account full.
    res = routed(write_trace, [0.0, 2.5, 2.6], "wait-for-warm", concurrency_limit=2)
    assert res.invocations["status"].astype(str).tolist() == ["served", "served", "throttled"]
    assert res.throttles["reason"].astype(str).tolist() == ["account"]


def test_wait_for_warm_may_turn_requests_away_instead(write_trace):
    # As above with max_wait_ms 1000: the request at 2.6 would wait 1.4 s; beyond: drop
    # throttles it (reason routing) instead of starting an instance.
    res = routed(write_trace, [0.0, 2.5, 2.6],
                 {"policy": "wait-for-warm", "max_wait_ms": 1000, "beyond": "drop"})  # fmt: skip
    assert res.invocations["status"].astype(str).tolist() == ["served", "served", "throttled"]
    assert res.throttles["reason"].astype(str).tolist() == ["routing"]
    assert "routing" in list(res.throttles["reason"].cat.categories)
    plain = routed(write_trace, [0.0], "pack")
    assert "routing" not in list(plain.throttles["reason"].cat.categories)  # only where it may


def test_wait_for_warm_queues_at_full_multi_request_instances(write_trace):
    # Instances of 2 slots, init 2 s, handler 1 s (no CPU sharing). 0 and 0.1 both join
    # instance 0 while it initialises: they run 2-3. At 2.5 it is full: expected free at
    # 2.0 + 1 s (its oldest request) = 3.0, 0.5 s away, under the 2 s init: the request takes
    # the first slot to free, 3-4. At 2.6 (one waiting of 2 slots: 2.0 + 1.5 = 3.5) it takes
    # the other, 3-4; at 2.7 (two waiting: 2.0 + 2 = 4.0, 1.3 s away) the first to free
    # again, 4-5.
    data = scenario(function(arrivals={"process": "trace",
                                       "path": str(write_trace([0.0, 0.1, 2.5, 2.6, 2.7]))},
                             init=const(2000), duration=const(1000)),
                    duration_s=100.0, idle_s=10.0)  # fmt: skip
    data["functions"][0].update(instance_concurrency=2, cpu_bound=0.0)
    data["platform"]["routing"] = "wait-for-warm"
    res = run(data)
    inv = res.invocations
    assert inv["instance_id"].tolist() == [0, 0, 0, 0, 0]
    assert inv["cold"].tolist() == [True, True, False, False, False]
    np.testing.assert_allclose(inv["start_s"], [2.0, 2.0, 3.0, 3.0, 4.0])
    np.testing.assert_allclose(inv["instance_wait_ms"], [0.0, 0.0, 500.0, 400.0, 1300.0])
    np.testing.assert_allclose(res.instances["ended_s"], [15.0])  # idle from 5, for 10 s
    plain = run({**data, "platform": {**data["platform"], "routing": "pack"}})
    assert plain.invocations["instance_id"].tolist() == [0, 0, 1, 1, 2]  # cold instead


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 4),
    rate=st.floats(0.5, 8.0),
    max_wait_ms=st.sampled_from([None, 300.0, 3000.0]),
    beyond=st.sampled_from(["cold-start", "drop"]),
    lifetime=st.sampled_from([None, 20.0]),
    limit=st.sampled_from([None, 5]),
    seed=st.integers(0, 1000),
)
def test_queueing_invariants(n, rate, max_wait_ms, beyond, lifetime, limit, seed):
    f = {"name": "f", "init": {"dist": "exponential", "mean_ms": 800},
         "duration": {"dist": "exponential", "mean_ms": 1000},
         "arrivals": {"process": "poisson", "rate_per_s": rate},
         "instance_concurrency": n, "cpu_bound": 0.0}  # fmt: skip
    data = scenario(f, duration_s=60.0, seed=seed, idle_s=3.0, max_lifetime_s=lifetime,
                    concurrency_limit=limit)  # fmt: skip
    data["platform"]["routing"] = {"policy": "wait-for-warm", "max_wait_ms": max_wait_ms,
                                   "beyond": beyond}  # fmt: skip
    res = run(data)
    inv, inst = res.invocations, res.instances
    assert inv["request_id"].is_unique
    served = inv[inv["status"] == "served"]
    assert set(inv["status"].astype(str)) <= {"served", "throttled"}
    assert len(res.throttles) == (inv["status"] != "served").sum()
    # At most n requests run on an instance at once; none before it is ready or after it ended.
    ready = inst["ready_s"].to_numpy()
    ended = inst["ended_s"].fillna(np.inf).to_numpy()
    for i, rows in served.groupby("instance_id"):
        s, e = rows["start_s"].to_numpy(), rows["end_s"].to_numpy()
        assert (s >= ready[i] - 1e-9).all() and (e <= ended[i] + 1e-9).all()
        for t in s:
            assert np.count_nonzero((s <= t + 1e-9) & (e > t + 1e-9)) <= n
    # A warm request's wait is its start less its arrival; it never starts before arriving.
    warm = served[~served["cold"]]
    np.testing.assert_allclose(warm["instance_wait_ms"],
                               (warm["start_s"] - warm["arrival_s"]) * 1000, atol=1e-6)  # fmt: skip
    assert (served["start_s"] >= served["arrival_s"] - 1e-9).all()
