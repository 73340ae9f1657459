"""Hosts with memory: placement, eviction under pressure, drop and queue, stepped by hand;
invariants under hypothesis; unlimited hosts reproduce the unlimited platform exactly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import userpolicies  # noqa: F401  (imported: its policies are trusted by name)
from coldsim import load_scenario, parse_scenario, simulate
from coldsim.engine.core import Engine
from coldsim.policies.eviction import BUILTINS as EVICTIONS
from coldsim.policies.eviction import FunctionFacts
from coldsim.reporting.intervals import _weighted_peaks
from coldsim.reporting.logs import instances_frame, invocations_frame, throttles_frame
from coldsim.reporting.result import Result
from coldsim.reporting.summary import summarize
from conftest import ROOT, const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def hosted(write_trace, fns, *, count=1, memory_mb=1000, eviction="lru", on_full="drop",
           max_wait_s=60.0, placement="first-fit", idle_s=600.0, keep_alive=None,
           duration_s=100.0):  # fmt: skip
    """fns: name -> (arrival times, host MB, init ms, handler ms)."""
    functions = []
    for name, (times, mb, init_ms, dur_ms) in fns.items():
        f = function(
            name,
            arrivals={"process": "trace", "path": str(write_trace(times, name=f"{name}.csv"))},
            init=const(init_ms),
            duration=const(dur_ms),
        )
        f["host_memory_mb"] = mb
        functions.append(f)
    data = scenario(*functions, duration_s=duration_s, idle_s=idle_s)
    data["platform"]["hosts"] = {"count": count, "memory_mb": memory_mb, "on_full": on_full,
                                 "max_wait_s": max_wait_s, "placement": placement}  # fmt: skip
    data["platform"]["eviction"] = eviction
    if keep_alive is not None:
        data["platform"]["keep_alive"] = keep_alive
    return run(data)


def rows(res):
    inv = res.invocations
    return list(zip(inv["function"].astype(str), inv["instance_id"], inv["cold"], strict=True))


# Three functions of 400 MB on one 1,000 MB host (two fit). A at 0, 20, 40; B at 10; C at 30.
# Handlers 1 s; init A 100 ms, B 400 ms, C 200 ms. At 30, C finds 200 MB free: one of the
# idle A (since 21) and B (since 11.4) must go.
THREE = {"A": ([0.0, 20.0, 40.0], 400, 100, 1000), "B": ([10.0], 400, 400, 1000),
         "C": ([30.0], 400, 200, 1000)}  # fmt: skip


def test_greedy_dual_evicts_by_priority_and_ages_by_the_clock(write_trace):
    # Priorities (clock + uses x init / MB): A 0.25 after its first request, 0.5 after its
    # second; B 1.0. At 30 A (0.5) goes, the clock becomes 0.5, and C, idle from 31.2, gets
    # 0.5 + 200/400 = 1.0. At 40 A finds 200 MB free: B and C tie at 1.0 and B, idle longer,
    # goes (clock 1.0).
    res = hosted(write_trace, THREE, eviction="greedy-dual")
    assert rows(res) == [("A", 0, True), ("B", 1, True), ("A", 0, False), ("C", 2, True),
                         ("A", 3, True)]  # fmt: skip
    inst = res.instances.set_index("instance_id")
    assert inst["end_reason"].tolist() == ["pressure", "pressure", "alive", "alive"]
    np.testing.assert_allclose(inst["ended_s"].iloc[:2], [30.0, 40.0])
    assert inst["host"].tolist() == [0, 0, 0, 0]
    assert res.summary["instances_ended"]["pressure"] == 2


def test_greedy_dual_arithmetic_step_by_step():
    gd = EVICTIONS["greedy-dual"](policy="greedy-dual")
    facts = [FunctionFacts("A", 400, 100), FunctionFacts("B", 400, 400), FunctionFacts("C", 200, 300)]
    gd.start(facts, 2, np.random.default_rng(0))
    assert gd.priority(0, 0, 0, 1.1) == 0.25  # 0 + 1 x 100/400
    assert gd.priority(1, 1, 0, 11.4) == 1.0  # 0 + 1 x 400/400
    assert gd.priority(0, 0, 0, 21.0) == 0.5  # 0 + 2 x 100/400
    gd.evicted(0, 0, 0, 0.5)
    assert gd._clock == [0.5, 0.0]  # each host its own clock
    assert gd.priority(2, 2, 0, 31.0) == 2.0  # 0.5 + 1 x 300/200
    assert gd.priority(3, 2, 1, 32.0) == 1.5  # host 1's clock is 0; instance 3's first use
    assert gd.priority(3, 2, 1, 33.0) == 3.0  # its second: 0 + 2 x 1.5
    gd.evicted(1, 1, 0, 1.0)
    assert gd._clock == [1.0, 0.0]
    assert gd.priority(0, 0, 0, 40.0) == 1.25  # instance 0's count went with it: 1 + 1 x 0.25


def test_lru_evicts_the_instance_idle_longest(write_trace):
    # At 30, B (idle since 11.4) goes rather than A (since 21); A at 40 is warm.
    res = hosted(write_trace, THREE, eviction="lru")
    assert rows(res) == [("A", 0, True), ("B", 1, True), ("A", 0, False), ("C", 2, True),
                         ("A", 0, False)]  # fmt: skip
    inst = res.instances.set_index("instance_id")
    assert inst["end_reason"].tolist() == ["alive", "pressure", "alive"]
    assert inst.loc[1, "ended_s"] == 30.0


@pytest.mark.parametrize(("eviction", "victim"), [("size", 1), ("frequency", 1)])
def test_size_and_frequency(write_trace, eviction, victim):
    fns = {**THREE, "B": ([10.0], 500, 400, 1000)}  # B holds the most, A was used most
    res = hosted(write_trace, fns, eviction=eviction, memory_mb=1100)
    inst = res.instances.set_index("instance_id")
    assert inst.loc[victim, "end_reason"] == "pressure" and inst.loc[victim, "ended_s"] == 30.0


# A (400 MB) busy from 0 to 10 on a 500 MB host; B (400 MB) arrives at 1.
PAIR = {"A": ([0.0], 400, 0, 10_000), "B": ([1.0], 400, 0, 1000)}


def test_drop_when_nothing_idle_can_make_room(write_trace):
    res = hosted(write_trace, PAIR, memory_mb=500, on_full="drop")
    inv = res.invocations.set_index("function", drop=False)
    assert inv["status"].astype(str).tolist() == ["served", "dropped"]
    thr = res.throttles
    assert thr["reason"].astype(str).tolist() == ["memory"]
    assert thr["outcome"].astype(str).tolist() == ["dropped"]
    assert res.summary["dropped_no_memory"] == 1
    assert res.instances["end_reason"].tolist() == ["alive"]  # a busy instance is never evicted


@pytest.mark.parametrize(
    ("eviction", "start_s", "a_reason", "a_end"),
    [("lru", 10.0, "pressure", 10.0),  # evicted as soon as A goes idle
     ("ttl", 15.0, "idle", 15.0)],  # no eviction: B waits for A's keep-alive to run out
)  # fmt: skip
def test_queue_waits_for_memory(write_trace, eviction, start_s, a_reason, a_end):
    res = hosted(write_trace, PAIR, memory_mb=500, on_full="queue", eviction=eviction,
                 idle_s=5.0)  # fmt: skip
    inv = res.invocations
    assert inv["status"].astype(str).tolist() == ["served", "served"]
    assert inv["start_s"].tolist() == [0.0, start_s]
    assert inv["memory_wait_ms"].tolist() == [0.0, (start_s - 1.0) * 1000]
    assert inv["latency_ms"].iloc[1] == pytest.approx((start_s + 1.0 - 1.0) * 1000)
    inst = res.instances.set_index("instance_id")
    assert inst.loc[0, "end_reason"] == a_reason and inst.loc[0, "ended_s"] == a_end
    assert res.summary["memory_wait_ms"]["waited"] == 1
    assert res.summary["memory_wait_ms"]["max"] == pytest.approx((start_s - 1.0) * 1000)


def test_a_queued_request_is_dropped_after_max_wait(write_trace):
    res = hosted(write_trace, PAIR, memory_mb=500, on_full="queue", max_wait_s=3.0)
    inv = res.invocations
    assert inv["status"].astype(str).tolist() == ["served", "dropped"]
    assert inv["memory_wait_ms"].iloc[1] == 3000.0  # its wait
    assert inv["queue_delay_ms"].iloc[1] == 0.0  # no async queueing
    assert res.throttles["time_s"].tolist() == [4.0]


def test_the_queue_is_first_in_first_out(write_trace):
    # B (at 1) and C (at 2) wait for A's memory; B takes it at 10, C gets B's at 11.
    fns = {**PAIR, "C": ([2.0], 400, 0, 1000)}
    res = hosted(write_trace, fns, memory_mb=500, on_full="queue")
    inv = res.invocations
    assert inv["start_s"].tolist() == [0.0, 10.0, 11.0]
    assert inv["memory_wait_ms"].tolist() == [0.0, 9000.0, 9000.0]


@pytest.mark.parametrize(("eviction", "arrival", "outcome"), [
    ("lru", 10.0, "served"),  # A ends at 10 as B arrives: idle, evictable, evicted at once
    ("ttl", 15.0, "served"),  # A's keep-alive ends at 15 as B arrives: its memory is free
    ("ttl", 14.999, "dropped"),  # a moment before, it still holds it
])  # fmt: skip
def test_memory_freed_exactly_when_needed(write_trace, eviction, arrival, outcome):
    fns = {"A": ([0.0], 400, 0, 10_000), "B": ([arrival], 400, 0, 1000)}
    res = hosted(write_trace, fns, memory_mb=500, eviction=eviction, idle_s=5.0)
    assert res.invocations["status"].astype(str).tolist() == ["served", outcome]


@pytest.mark.parametrize(("placement", "hosts"), [
    ("first-fit", [0, 0, 0]), ("least-loaded", [0, 1, 2]),
    ("hashing", None),  # all on the function's home host
])  # fmt: skip
def test_placement(write_trace, placement, hosts):
    fns = {"f": ([0.0, 0.0, 0.0], 300, 0, 1000)}
    res = hosted(write_trace, fns, count=3, memory_mb=1000, placement=placement)
    got = res.instances["host"].tolist()
    if hosts is None:
        import zlib

        hosts = [zlib.crc32(b"f") % 3] * 3
    assert got == hosts


def test_random_placement_is_seeded(write_trace):
    fns = {"f": ([0.0] * 12, 300, 0, 1000)}
    a = hosted(write_trace, fns, count=4, memory_mb=1000, placement="random")
    b = hosted(write_trace, fns, count=4, memory_mb=1000, placement="random")
    assert a.instances["host"].tolist() == b.instances["host"].tolist()
    assert np.bincount(a.instances["host"], minlength=4).tolist() == [3, 3, 3, 3]


PREWARM = {"policy": "userpolicies:PrewarmAfter", "after_s": 10, "keep_s": 5}


@pytest.mark.parametrize(("b_ms", "placed"), [(20_000, False), (5_000, True)])
def test_a_prewarm_takes_memory_when_its_init_starts(write_trace, b_ms, placed):
    # Every instance is unloaded as it goes idle (window 0). A's, at 2, asks for a pre-warm
    # ready at 12 (init 1 s: it starts at 11). B holds the host from 5: busy until 25 (no
    # room at 11: the pre-warm never runs and A at 13 is dropped) or until 10 (gone at 10:
    # the pre-warm takes the memory at 11; A at 13 is warm).
    fns = {"A": ([0.0, 13.0], 400, 1000, 1000), "B": ([5.0], 400, 0, b_ms)}
    res = hosted(write_trace, fns, memory_mb=500, keep_alive=PREWARM)
    inst = res.instances.set_index("instance_id")
    pre = inst[inst["prewarmed"]].iloc[0]
    a13 = res.invocations.iloc[-1]
    if placed:
        assert pre["host"] == 0 and pre["created_s"] == 11.0
        assert a13["status"] == "served" and not a13["cold"]
        assert inst.loc[2, "end_reason"] == "idle" and inst.loc[2, "ended_s"] == 10.0  # B
    else:
        assert pre["end_reason"] == "unplaced" and pre["ended_s"] == 11.0
        assert pre["host"] == -1 and pre["init_ms"] == 0.0
        assert a13["status"] == "dropped"


def test_hosts_errors_name_the_field():
    from coldsim import ScenarioError

    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, memory_mb=2048)
    data = scenario(f)
    data["platform"]["hosts"] = {"count": 1, "memory_mb": 1024}
    with pytest.raises(ScenarioError, match=r"functions\[0\]\.memory_mb: 2048 exceeds platform.hosts.memory_mb"):
        parse_scenario(data)
    data["functions"][0]["memory_mb"] = 512
    data["functions"][0]["provisioned_concurrency"] = 1
    with pytest.raises(ScenarioError, match="provisioned_concurrency: not modelled"):
        parse_scenario(data)
    del data["functions"][0]["provisioned_concurrency"]
    data["platform"]["eviction"] = "clock"
    with pytest.raises(ScenarioError, match="unknown policy 'clock'"):
        parse_scenario(data)


# -- invariants ------------------------------------------------------------------------------


def invariants(res, sc, engine=None):
    inv, inst = res.invocations, res.instances
    spec = sc.platform.hosts
    # Every request ends exactly once: one row each, served or dropped (limits are off).
    assert inv["request_id"].is_unique
    assert set(inv["status"].astype(str)) <= {"served", "dropped"}
    dropped = inv["status"] == "dropped"
    assert dropped.sum() == len(res.throttles) == res.summary["dropped_no_memory"]
    assert set(res.throttles["reason"].astype(str)) <= {"memory"}
    # A host's memory is never exceeded (intervals [created, ended)).
    fp = np.array([f.footprint_mb() for f in sc.functions])
    mb = fp[inst["function"].cat.codes.to_numpy()]
    ended = inst["ended_s"].fillna(np.inf).to_numpy()
    live = (inst["host"] >= 0).to_numpy() & (inst["created_s"].to_numpy() < ended)
    peaks = _weighted_peaks(inst["created_s"].to_numpy()[live], ended[live], mb[live],
                            inst["host"].to_numpy()[live], spec.count)  # fmt: skip
    assert (peaks <= spec.memory_mb + 1e-9).all()
    # No instance is evicted while busy or initialising, and none serves after it ended.
    served = inv[inv["status"] == "served"]
    end_of = pd.Series(ended, index=inst["instance_id"])
    assert (served["end_s"].to_numpy() <= end_of[served["instance_id"]].to_numpy() + 1e-9).all()
    pressure = inst["end_reason"] == "pressure"
    assert (inst.loc[pressure, "ended_s"] >= inst.loc[pressure, "ready_s"]).all()
    if engine is not None:  # the table's free memory = capacity - what alive instances hold
        hosts, table = engine.hosts, engine.instances
        host = np.array(table.host)
        created, expiry = np.array(table.created), np.array(table.expiry)
        # The table's last change: the horizon, a pre-warm placed after it, or a waiting
        # request that looked for memory before it was dropped.
        last = max(res.summary["horizon_s"], created[host >= 0].max(initial=0.0), hosts.now)
        hosts.free_ended(last)
        alive = (host >= 0) & (created <= last) & (expiry > last)
        held = np.bincount(host[alive], weights=mb[alive], minlength=spec.count)
        np.testing.assert_allclose(np.array(hosts.free), spec.memory_mb - held, atol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_fn=st.integers(1, 5),
    count=st.integers(1, 3),
    memory_mb=st.sampled_from([300, 512, 1000]),
    eviction=st.sampled_from(sorted(EVICTIONS)),
    placement=st.sampled_from(["first-fit", "least-loaded", "hashing", "random"]),
    on_full=st.sampled_from(["drop", "queue"]),
    idle_s=st.sampled_from([0.0, 5.0, 60.0, math.inf]),
    prewarm=st.sampled_from([None, (0.0, 5.0), (3.0, 2.0), (10.0, 30.0)]),
    init=st.sampled_from([{"dist": "exponential", "mean_ms": 300}, const(0), const(1000)]),
    scope=st.sampled_from(["function", "app"]),
    asynchronous=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_invariants_under_pressure(n_fn, count, memory_mb, eviction, placement, on_full, idle_s,
                                   prewarm, init, scope, asynchronous, seed):  # fmt: skip
    fns = [{
        "name": f"f{i}", "app": f"app{i % 2}", "host_memory_mb": 64 + 97 * i % 230,
        "memory_mb": 128, "init": init, "duration": {"dist": "exponential", "mean_ms": 2000},
        "arrivals": {"process": "poisson", "rate_per_s": 0.3 + 0.4 * i},
        "invocation": "async" if asynchronous and i % 2 else "sync",
    } for i in range(n_fn)]  # fmt: skip
    data = scenario(*fns, duration_s=120, seed=seed, idle_s=idle_s, max_lifetime_s=30.0)
    data["platform"]["instance_scope"] = scope
    if prewarm is not None:
        data["platform"]["keep_alive"] = {**PREWARM, "after_s": prewarm[0], "keep_s": prewarm[1]}
    data["platform"]["hosts"] = {"count": count, "memory_mb": memory_mb, "placement": placement,
                                 "on_full": on_full, "max_wait_s": 4.0}  # fmt: skip
    data["platform"]["eviction"] = eviction
    sc = parse_scenario(data)
    engine = Engine(sc)
    log = engine.run()
    inv, inst, thr = invocations_frame(log, 0.0), instances_frame(log), throttles_frame(log)
    summary = {"horizon_s": log.horizon_s, **summarize(inv, inst, thr, sc)}
    invariants(Result(sc, inv, inst, thr, summary), sc, engine)
    assert not engine._queue  # nobody is left waiting
    assert (inv["memory_wait_ms"] <= 4000.0 + 1e-6).all()  # max_wait_s
    # No request runs before its instance is ready.
    served = inv[inv["status"] == "served"]
    ready = inst.set_index("instance_id")["ready_s"]
    assert (served["start_s"].to_numpy() >= ready[served["instance_id"]].to_numpy() - 1e-9).all()


@pytest.mark.parametrize("name", ["default", "bursty-diurnal", "mixed-backend"])
def test_unlimited_hosts_reproduce_the_unlimited_platform(name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml", duration_s=2 * 3600)
    big = sc.updated({"platform.hosts": {"count": 3, "memory_mb": 1e9}})
    a, b = simulate(sc), simulate(big)
    pd.testing.assert_frame_equal(a.invocations, b.invocations)
    pd.testing.assert_frame_equal(a.instances.drop(columns="host"),
                                  b.instances.drop(columns="host"))  # fmt: skip
    assert (b.instances["host"] == 0).all()  # first-fit: everything fits on the first
    pd.testing.assert_frame_equal(a.throttles, b.throttles)


def test_unlimited_hosts_reproduce_prewarms():
    # Pre-warms ready 30 s after each execution: requests meet them before their init starts,
    # during it and after it.
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.05}, init=const(8000),
                 duration=const(500))  # fmt: skip
    data = scenario(f, duration_s=4 * 3600)
    data["platform"]["keep_alive"] = {**PREWARM, "after_s": 30, "keep_s": 60}
    a = run(data)
    data["platform"]["hosts"] = {"count": 2, "memory_mb": 1e6}
    b = run(data)
    assert a.instances["prewarmed"].sum() > 10
    pd.testing.assert_frame_equal(a.invocations, b.invocations)
    # Identical instances, except that with hosts a pre-warm due to start after the horizon
    # is given up (it would hold memory nobody uses).
    late = b.instances["created_s"] >= b.summary["horizon_s"]
    assert (b.instances.loc[late, "end_reason"] == "unplaced").all()
    pd.testing.assert_frame_equal(a.instances[~late].drop(columns="host"),
                                  b.instances[~late].drop(columns="host"))  # fmt: skip


def test_a_run_with_hosts_writes_its_host_table_and_figure(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "cluster-pressure.yaml", duration_s=3600)
    res = simulate(sc)
    out = res.save(tmp_path / "run")
    table = pd.read_csv(out / "hosts.csv")
    assert len(table) == 3 and (out / "hosts.png").stat().st_size > 10_000
    hosts = res.summary["hosts"]
    # Each figure says its aggregate: the cluster's sum, or per host (one host's).
    assert hosts["cluster_mean_used_mb"] == pytest.approx(table["mean_used_mb"].sum())
    assert hosts["host_mean_used_mb"] == pytest.approx(table["mean_used_mb"].mean())
    assert hosts["cluster_mean_used_mb"] == pytest.approx(
        hosts["cluster_mean_busy_mb"] + hosts["cluster_mean_idle_mb"]
    )
    assert 0 < hosts["busy_utilisation"] < hosts["utilisation"] <= 1
    assert hosts["host_peak_used_mb"] == table["peak_used_mb"].max() <= 4096
    assert hosts["host_mean_used_mb"] <= hosts["host_peak_used_mb"]  # a mean within its peak
    assert hosts["cluster_mean_used_mb"] <= hosts["cluster_peak_used_mb"] <= 3 * 4096
    assert hosts["host_peak_used_mb"] <= hosts["cluster_peak_used_mb"]
    width = sc.duration_s - sc.warmup_s
    assert hosts["wasted_gb_s"] == pytest.approx(hosts["cluster_mean_idle_mb"] * width / 1024)
    assert res.summary["instances_ended"]["pressure"] == table["instances_evicted"].sum()
    assert simulate(load_scenario(ROOT / "scenarios" / "default.yaml")).summary["hosts"] is None


def test_the_guides_eviction_policy_runs(write_trace, tmp_path, monkeypatch):
    import re
    import sys

    text = (ROOT / "docs" / "policies.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S)
                if "CheapestToRestart" in b)  # fmt: skip
    (tmp_path / "guide_eviction.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.import_module("guide_eviction")
    try:
        # At 30, C needs room: A (init 100 ms) is cheaper to restart than B (400 ms).
        res = hosted(write_trace, THREE, eviction="guide_eviction:CheapestToRestart")
        inst = res.instances.set_index("instance_id")
        assert inst.loc[0, "end_reason"] == "pressure" and inst.loc[0, "ended_s"] == 30.0
    finally:
        sys.modules.pop("guide_eviction", None)


def test_a_broken_eviction_policy_is_named(write_trace, tmp_path, monkeypatch):
    import sys

    from coldsim import PolicyError

    (tmp_path / "bad_eviction.py").write_text(
        "from coldsim import EvictionPolicy\n"
        "class Nan(EvictionPolicy):\n"
        "    def priority(self, instance_id, function, host, now):\n"
        "        return float('nan')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.import_module("bad_eviction")
    try:
        with pytest.raises(PolicyError, match="eviction policy bad_eviction:Nan returned nan"):
            hosted(write_trace, THREE, eviction="bad_eviction:Nan")
    finally:
        sys.modules.pop("bad_eviction", None)


def test_a_waiting_request_takes_its_functions_instance_at_once(write_trace):
    # J holds 400 of 500 MB until 30; H (400 MB) waits from 1. K's instance is busy when K@1
    # arrives, so K@1 waits too, behind H; K's instance is free at 1.5 and K@1 takes it then
    # (it needs no memory), before K@4 arrives. H is dropped at 11 (max_wait_s 10).
    fns = {"J": ([0.0], 400, 0, 30_000), "H": ([1.0], 400, 0, 1000),
           "K": ([0.0, 1.0, 4.0], 100, 0, 1500)}  # fmt: skip
    res = hosted(write_trace, fns, memory_mb=500, on_full="queue", max_wait_s=10.0,
                 eviction="ttl")  # fmt: skip
    inv = res.invocations.set_index("request_id")
    assert inv["status"].astype(str).tolist() == ["served", "served", "dropped", "served",
                                                   "served"]  # fmt: skip
    assert inv.loc[3, "start_s"] == 1.5 and inv.loc[3, "memory_wait_ms"] == 500.0
    assert inv.loc[3, "instance_id"] == inv.loc[1, "instance_id"] == inv.loc[4, "instance_id"]
    assert inv.loc[2, "memory_wait_ms"] == 10_000.0
    assert res.throttles["time_s"].tolist() == [11.0]


def test_a_prewarm_with_no_init_takes_memory_before_it_is_idle(write_trace):
    # A's pre-warm (init 0) starts and is ready at 11: it must hold A's 400 MB from then on,
    # so only two of the three C requests at 40 fit on the two 500 MB hosts.
    fns = {"A": ([0.0], 400, 0, 1000), "C": ([40.0, 40.0, 40.0], 400, 0, 10_000)}
    res = hosted(write_trace, fns, count=2, memory_mb=500,
                 keep_alive={**PREWARM, "after_s": 10, "keep_s": 100})  # fmt: skip
    invariants(res, res.scenario)
    assert res.invocations["status"].astype(str).tolist().count("dropped") == 1


def test_a_cluster_of_many_hosts_costs_per_host_not_per_request():
    # Issue 18 §6.3: 100,000 hosts took minutes in the figure (a bar and a path step per
    # host). The estimate counts each host; the ranked panel's path is bounded.
    from coldsim.reporting.plots import RANKED_STEPS, hosts_over_time
    from coldsim.scenario.budget import BYTES_PER_HOST, estimate_bytes
    from matplotlib.patches import StepPatch

    fs = [function(f"f{i}", arrivals={"process": "poisson", "rate_per_s": 0.5},
                   duration=const(200), memory_mb=256) for i in range(4)]  # fmt: skip
    data = scenario(*fs, duration_s=600)
    data["platform"]["hosts"] = {"count": 20_000, "memory_mb": 1024}
    sc = parse_scenario(data)
    one = parse_scenario({**data, "platform": {**data["platform"],
                                               "hosts": {"count": 1, "memory_mb": 1024}}})  # fmt: skip
    assert estimate_bytes(sc) - estimate_bytes(one) == pytest.approx(19_999 * BYTES_PER_HOST)
    res = simulate(sc)
    fig = hosts_over_time(res.invocations, res.instances, sc)
    ranked = [a for a in fig.axes if "ranked" in a.get_xlabel()][0]
    steps = [p for p in ranked.patches if isinstance(p, StepPatch)]
    assert steps and all(len(p.get_data().values) <= RANKED_STEPS for p in steps)
    # Averaged in groups of ranks, the panel keeps the cluster's mean share.
    mean_share = 100 * res.summary["hosts"]["host_mean_used_mb"] / 1024
    top = steps[-1].get_data()
    widths = np.diff(top.edges)
    assert (top.values * widths).sum() / widths.sum() == pytest.approx(mean_share, rel=1e-6)
