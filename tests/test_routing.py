"""Routing as a plug-in: queueing behind a busy instance instead of a cold start, stepped by
hand; a user's routing policy and its contract."""

from __future__ import annotations

import numpy as np
import pytest
from coldsim import PolicyError, RoutingPolicy, ScenarioError, parse_scenario
from coldsim.policies.routing import NEW
from conftest import const, function, run, scenario


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
