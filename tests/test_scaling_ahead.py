"""Multi-request instances started ahead of requests: scale_target (keep requests in flight
within a share of capacity), min_instances (kept however idle), when_full throttle (Managed
Instances: no cold start on a request's path). Hand-stepped with constant times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from coldsim import ScenarioError, parse_scenario
from coldsim.reporting.summary import per_host
from conftest import const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def multi(write_trace, times, *, n=4, init_ms=1000.0, duration_ms=10_000.0, idle_s=600.0,
          duration_s=100.0, lifetime_s=None, **fields):  # fmt: skip
    f = function(arrivals={"process": "trace", "path": str(write_trace(times))},
                 init=const(init_ms), duration=const(duration_ms))  # fmt: skip
    f.update(instance_concurrency=n, cpu_bound=0.0, **fields)
    data = scenario(f, duration_s=duration_s, idle_s=idle_s, max_lifetime_s=lifetime_s)
    return run(data)


def test_scale_target_starts_instances_in_the_background(write_trace):
    # N 4, target 0.5: at most 2 requests in flight per instance before another starts.
    res = multi(write_trace, [0.0, 0.1, 0.2, 0.3, 0.4], scale_target=0.5)
    inst, inv = res.instances, res.invocations
    # 0: a new instance A (cold). 0.1: joins A still initialising. 0.2: joins A; 3 in flight
    # need 2 instances: B starts in the background. 0.3: joins A (full now). 0.4: every
    # ready-or-open instance is full: it takes B, still initialising (ready 1.2), and C
    # starts for 5 in flight (3 needed).
    assert inst["created_s"].tolist() == pytest.approx([0.0, 0.2, 0.4])
    assert inst["prewarmed"].tolist() == [False, True, True]
    assert inv["instance_id"].tolist() == [0, 0, 0, 0, 1]
    assert inv["start_s"].tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.2])
    assert inv["cold"].all()
    assert res.summary["cold_starts"] == 5 and res.summary["instances_created"] == 3


def test_without_a_target_an_instance_starts_only_when_all_are_full(write_trace):
    res = multi(write_trace, [0.0, 0.1, 0.2, 0.3, 0.4])
    assert res.instances["created_s"].tolist() == pytest.approx([0.0, 0.4])
    assert res.invocations["instance_id"].tolist() == [0, 0, 0, 0, 1]


def test_min_instances_are_kept_however_idle(write_trace):
    res = multi(write_trace, [50.0], min_instances=2, idle_s=10.0)
    inst, inv = res.instances, res.invocations
    assert inst["created_s"].tolist() == [0.0, 0.0]
    assert inst["end_reason"].astype(str).tolist() == ["alive", "alive"]
    assert not inv["cold"].any() and inv["start_s"].tolist() == [50.0]


def test_above_the_minimum_idle_instances_still_expire(write_trace):
    # Min 1, N 2: requests at 5, 5.1 and 5.2 need a second instance. The first to go idle
    # (at 6.1) is kept for the minimum; the other leaves after its 10 s keep-alive.
    res = multi(write_trace, [5.0, 5.1, 5.2], n=2, min_instances=1, idle_s=10.0,
                duration_ms=1000.0)  # fmt: skip
    inst = res.instances.set_index("instance_id")
    assert len(inst) == 2
    reasons = inst["end_reason"].astype(str).tolist()
    assert sorted(reasons) == ["alive", "idle"]
    gone = inst[inst["end_reason"].astype(str) == "idle"]
    assert gone["ended_s"].iloc[0] == pytest.approx(res.invocations["end_s"].max() + 10.0)


@pytest.mark.parametrize("when_full", ["cold-start", "throttle"])
def test_minimum_instances_are_replaced_as_they_are_recycled(write_trace, when_full):
    # Lifetime 30 s: the minimum's instance is replaced at 30 (ready at 31); none is started
    # for a recycling after the arrivals end (60 s), so the run ends.
    res = multi(write_trace, [40.0], min_instances=1, lifetime_s=30.0, idle_s=5.0,
                duration_ms=100.0, duration_s=60.0, when_full=when_full)  # fmt: skip
    inst, inv = res.instances, res.invocations
    assert inst["created_s"].tolist() == [0.0, 30.0]
    assert inst["end_reason"].astype(str).tolist() == ["lifetime", "lifetime"]
    assert inst["ended_s"].tolist() == pytest.approx([30.0, 60.0])
    assert inv["status"].astype(str).tolist() == ["served"] and not inv["cold"].any()


def test_when_full_throttle_turns_requests_away_and_scales_in_the_background(write_trace):
    # Min 1 ready at 1.0. 0.5: nothing ready -> throttled. 2.0, 2.1: on it (N 2, full).
    # 2.2: full -> throttled, and a second instance starts at 2.2 (ready 3.2). 4.0: served.
    res = multi(write_trace, [0.5, 2.0, 2.1, 2.2, 4.0], n=2, min_instances=1,
                when_full="throttle")  # fmt: skip
    inv = res.invocations
    assert inv["status"].astype(str).tolist() == [
        "throttled", "served", "served", "throttled", "served"
    ]  # fmt: skip
    assert not inv["cold"].any()
    assert res.instances["created_s"].tolist() == pytest.approx([0.0, 2.2])
    assert inv["instance_id"].tolist() == [-1, 0, 0, -1, 1]
    reasons = res.throttles["reason"].astype(str).tolist()
    assert reasons == ["scaling", "scaling"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("scale_target", 0.5), ("min_instances", 2), ("when_full", "throttle")],
)
def test_scaling_fields_need_multi_request_instances(field, value):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10))
    f[field] = value
    with pytest.raises(ScenarioError, match=rf"functions\[0\]\.{field}: .*only with instance_concurrency > 1"):
        parse_scenario(scenario(f))


@st.composite
def ahead_scenarios(draw):
    functions = []
    for k in range(draw(st.integers(1, 2))):
        f = {
            "name": f"fn{k}",
            "memory_mb": draw(st.sampled_from([512, 1024])),
            "init": draw(st.sampled_from([const(0), const(700), {"dist": "exponential",
                                                                  "mean_ms": 800}])),
            "duration": {"dist": "exponential", "mean_ms": draw(st.floats(100, 3000))},
            "arrivals": {"process": "poisson", "rate_per_s": draw(st.floats(0.2, 4))},
            "invocation": draw(st.sampled_from(["sync", "async"])),
            "max_event_age_s": 60.0,
            "instance_concurrency": draw(st.integers(2, 5)),
            "cpu_bound": draw(st.sampled_from([0.0, 0.5, 1.0])),
            "instance_vcpus": draw(st.sampled_from([0.5, 1.0, 2.0])),
            "scale_target": draw(st.sampled_from([1.0, 0.7, 0.4])),
            "min_instances": draw(st.sampled_from([0, 1, 2])),
            "when_full": draw(st.sampled_from(["cold-start", "throttle"])),
            "billing": draw(st.sampled_from(["per-request", "busy-instance", "alive-instance"])),
        }  # fmt: skip
        if f["billing"] == "alive-instance":  # Managed Instances: 2 GiB per vCPU at least
            f["instance_vcpus"] = f["memory_mb"] / 2048
        functions.append(f)
    data = scenario(
        *functions, duration_s=60.0, seed=draw(st.integers(0, 2**32 - 1)),
        idle_s=draw(st.sampled_from([0.0, 5.0, 60.0])),
        max_lifetime_s=draw(st.one_of(st.none(), st.floats(2, 40))),
        concurrency_limit=draw(st.one_of(st.none(), st.integers(2, 8))),
        scaling=draw(st.sampled_from([None, {"instances": 2, "per_s": 1}])),
    )  # fmt: skip
    data["platform"]["routing"] = draw(st.sampled_from(["pack", "least-loaded"]))
    if draw(st.booleans()):
        data["platform"]["hosts"] = {
            "count": draw(st.integers(1, 2)), "memory_mb": draw(st.sampled_from([1024, 2048])),
            "on_full": draw(st.sampled_from(["drop", "queue"])), "max_wait_s": 5.0,
        }  # fmt: skip
    return data


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ahead_scenarios())
def test_instances_started_ahead_keep_the_invariants(data):
    res = run(data)
    sc = parse_scenario(data)
    inv, inst = res.invocations, res.instances
    ok = inv["status"].astype(str) == "served"
    served = inv[ok]
    # Every request ends once; served ones ran on an instance, after its init, before its end.
    assert inv["request_id"].is_unique
    assert np.isfinite(served[["start_s", "end_s"]].to_numpy()).all()
    iid = served["instance_id"].to_numpy()
    ended = inst["ended_s"].to_numpy()
    ends_at = np.where(np.isnan(ended), np.inf, ended)
    assert (served["start_s"].to_numpy() >= inst["ready_s"].to_numpy()[iid] - 1e-9).all()
    assert (served["end_s"].to_numpy() <= ends_at[iid] + 1e-9).all()
    # Never more than N requests on an instance at once (ends before starts at equal times).
    n_of = {f.name: f.instance_concurrency for f in sc.functions}
    for _, rows in served.groupby("instance_id"):
        events = sorted([(e, -1) for e in rows["end_s"]] + [(b, 1) for b in rows["start_s"]])
        load = np.cumsum([step for _, step in events])
        assert load.max() <= n_of[rows["function"].iloc[0]]
    # A host's memory is never exceeded.
    if sc.platform.hosts is not None:
        table = per_host(inv, inst, sc)
        assert (table["peak_used_mb"] <= sc.platform.hosts.memory_mb + 1e-6).all()
        assert (inst.loc[inst["end_reason"].astype(str) != "unplaced", "host"] >= 0).all()
    # With the same seed, the same logs.
    again = run(data)
    pd.testing.assert_frame_equal(again.invocations, inv)
    pd.testing.assert_frame_equal(again.instances, inst)
