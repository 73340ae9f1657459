"""Tiny deterministic scenarios stepped by hand: every invocation's cold flag and instance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import const, function, run, scenario

# Requests at 0, 1, 2 (three cold instances 0, 1, 2; init 0.5 s, handler 10 s, so they end at
# 10.5, 11.5, 12.5). At 11, instance 0 is the only idle one: warm, it ends again at 21.
# At 30 the idle instances are 0 (ended 21), 1 (ended 11.5), 2 (ended 12.5).
TIMES = [0.0, 1.0, 2.0, 11.0, 30.0]


def stepped(write_trace, selection, idle_s=100.0, max_lifetime_s=None, extra=()):
    path = write_trace(TIMES + list(extra))
    data = scenario(
        function(
            arrivals={"process": "trace", "path": str(path)},
            init=const(500),
            duration=const(10_000),
        ),
        duration_s=1000,
        idle_s=idle_s,
        selection=selection,
        max_lifetime_s=max_lifetime_s,
    )
    return run(data)


@pytest.mark.parametrize(
    ("selection", "chosen"),
    [("newest", 2), ("mru", 0), ("lru", 1)],
)
def test_each_selection_rule_picks_its_instance(write_trace, selection, chosen):
    inv = stepped(write_trace, selection).invocations
    assert inv["instance_id"].tolist() == [0, 1, 2, 0, chosen]
    assert inv["cold"].tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(inv["latency_ms"], [10_500, 10_500, 10_500, 10_000, 10_000])
    np.testing.assert_allclose(inv["start_s"], [0.5, 1.5, 2.5, 11.0, 30.0])
    np.testing.assert_allclose(inv["init_ms"], [500, 500, 500, 0, 0])


def test_random_selection_picks_one_of_the_idle_instances(write_trace):
    inv = stepped(write_trace, "random").invocations
    assert inv["instance_id"].tolist()[:4] == [0, 1, 2, 0]
    assert inv["instance_id"].iloc[4] in (0, 1, 2)


@pytest.mark.parametrize("selection", ["newest", "mru", "lru", "random"])
def test_expired_instances_are_never_reused(write_trace, selection):
    # Keep-alive 15 s: at 30, instance 1 expired at 26.5 and 2 at 27.5; only 0 (until 36) lives.
    # The request at 200 finds nothing alive: a new instance 3.
    res = stepped(write_trace, selection, idle_s=15.0, extra=[200.0])
    assert res.invocations["instance_id"].tolist() == [0, 1, 2, 0, 0, 3]
    assert res.invocations["cold"].tolist() == [True, True, True, False, False, True]
    inst = res.instances.set_index("instance_id")
    np.testing.assert_allclose(inst["ended_s"], [55.0, 26.5, 27.5, 225.5])
    assert inst["end_reason"].tolist() == ["idle"] * 4
    assert inst["invocations"].tolist() == [3, 1, 1, 1]


@pytest.mark.parametrize(("selection", "chosen"), [("newest", 2), ("mru", 2), ("lru", 1)])
def test_max_lifetime_retires_an_instance_when_it_goes_idle(write_trace, selection, chosen):
    # Lifetime 29.5 s: instance 0 (created 0) is idle from 21 and retired at 29.5, so at 30
    # only instances 1 and 2 (retiring at 30.5 and 31.5) are left. The chosen one serves the
    # request at 30 and, past its age limit when it ends at 40, is retired then.
    res = stepped(write_trace, selection, max_lifetime_s=29.5)
    assert res.invocations["instance_id"].tolist() == [0, 1, 2, 0, chosen]
    inst = res.instances.set_index("instance_id")
    other = 3 - chosen
    np.testing.assert_allclose(inst["ended_s"][[0, other, chosen]], [29.5, other + 29.5, 40.0])
    assert (inst["end_reason"] == "lifetime").all()


def periodic(idle_s, interval_s=300.0, duration_s=86_400.0, max_lifetime_s=None):
    data = scenario(
        function(
            arrivals={"process": "periodic", "interval_s": interval_s},
            init=const(1),
            duration=const(50),
        ),
        duration_s=duration_s,
        idle_s=idle_s,
        max_lifetime_s=max_lifetime_s,
    )
    return run(data)


def test_periodic_within_keep_alive_is_cold_once():
    s = periodic(idle_s=600).summary
    assert (s["invocations"], s["cold_starts"], s["instances_created"]) == (288, 1, 1)


def test_periodic_beyond_keep_alive_is_always_cold():
    s = periodic(idle_s=200).summary
    assert (s["invocations"], s["cold_starts"]) == (288, 288)


def test_request_arriving_exactly_at_expiry_is_cold():
    # Zero-time handler and init: each instance expires exactly when the next request arrives.
    data = scenario(
        function(arrivals={"process": "periodic", "interval_s": 300.0}),
        duration_s=3000,
        idle_s=300.0,
    )
    res = run(data)
    assert res.summary["cold_starts"] == 10
    np.testing.assert_allclose(res.instances["ended_s"][:-1], np.arange(1, 10) * 300.0)


def test_lifetime_recycles_a_steadily_used_instance():
    # Every 300 s with keep-alive 600 s, lifetime 2 h: the instance alive at 7200 k is retired
    # exactly then (idle), so the request at that instant is cold: 12 cold starts a day.
    res = periodic(idle_s=600, max_lifetime_s=7200)
    inv = res.invocations
    np.testing.assert_allclose(inv.loc[inv["cold"], "arrival_s"], np.arange(12) * 7200.0)
    ended = res.instances["ended_s"].to_numpy()
    np.testing.assert_allclose(ended[:-1], np.arange(1, 12) * 7200.0)
    assert (res.instances["end_reason"][:-1] == "lifetime").all()


def test_in_flight_requests_finish_after_the_horizon():
    data = scenario(
        function(
            arrivals={"process": "periodic", "interval_s": 10.0, "offset_s": 5.0},
            duration=const(20_000),
        ),
        duration_s=100,
        idle_s=1000,
    )
    res = run(data)
    inv = res.invocations
    assert inv["arrival_s"].max() == 95.0
    assert inv["end_s"].max() == pytest.approx(115.0)
    assert res.summary["horizon_s"] == pytest.approx(115.0)
    # Two requests overlap at every moment, so exactly two instances serve them in turn.
    assert res.summary["instances_created"] == 2
    assert res.instances["end_reason"].tolist() == ["alive", "alive"]
    assert res.instances["ended_s"].isna().all()
