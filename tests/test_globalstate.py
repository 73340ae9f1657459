"""Global state: cached items make cold starts longer and keep connections open on idle
instances; uncached ones cost every request and hold connections only while it runs."""

from __future__ import annotations

import pytest
from conftest import const, function, run, scenario

DB = {"name": "db", "init_ms": 80, "per_request_ms": 35, "connections": 1}


def db_run(write_trace, cached, times, limit=None, idle_s=10.0):
    f = function(arrivals={"process": "trace", "path": str(write_trace(times))},
                 init=const(100), duration=const(1000))  # fmt: skip
    f["global_state"] = [{**DB, "cached": cached}]
    data = scenario(f, duration_s=100, idle_s=idle_s)
    if limit is not None:
        data["platform"]["connection_limits"] = {"db": limit}
    return run(data)


def test_a_cached_connection_costs_init_once_and_stays_open_while_idle(write_trace):
    # Requests at 0 and 0.5 (two instances: init 100 + 80 ms), then at 5 (warm). Each
    # instance holds its connection from its init's start until 10 s after its last request.
    res = db_run(write_trace, True, [0.0, 0.5, 5.0], limit=1)
    inv = res.invocations
    assert inv["init_ms"].tolist() == [180.0, 180.0, 0.0]
    assert inv["duration_ms"].tolist() == [1000.0] * 3
    c = res.summary["connections"]["db"]
    assert c["peak"] == 2
    inst = res.instances
    held = (inst["ended_s"] - inst["created_s"]).sum()
    assert c["mean"] == pytest.approx(held / 100)
    # Above the limit (1) while both are alive: from 0.5 until the first one ends.
    both = min(inst["ended_s"]) - 0.5
    assert c["time_above_limit_s"] == pytest.approx(both)


def test_an_uncached_connection_costs_every_request_and_closes_with_it(write_trace):
    res = db_run(write_trace, False, [0.0, 0.5, 5.0], limit=1)
    inv = res.invocations
    assert inv["init_ms"].tolist() == [100.0, 100.0, 0.0]
    assert inv["duration_ms"].tolist() == [1035.0] * 3
    c = res.summary["connections"]["db"]
    assert c["peak"] == 2  # 0.6-1.135 and 0.5+0.1-1.635: overlapping requests
    assert c["mean"] == pytest.approx(3 * 1.035 / 100)
    assert c["time_above_limit_s"] == pytest.approx(1.135 - 0.6)


def test_cache_or_not_in_one_sweep(tmp_path):
    from coldsim import load_scenario, sweep
    from conftest import ROOT

    # Caching makes requests faster and cheaper, but idle instances keep their connections:
    # the database sits above its limit far longer (the answer on the scenario's 6 h: 60 vs
    # 95 ms at p50; mean 43.5 vs 32.3 connections; 17,800 s vs 1,200 s above 40).
    sc = load_scenario(ROOT / "scenarios" / "db-connections.yaml", duration_s=3600)
    res = sweep(sc, replications=2, workers=1)
    t = res.table.set_index("functions.0.global_state.0.cached")
    assert t.loc[True, "latency_ms.p50_mean"] < t.loc[False, "latency_ms.p50_mean"] - 30
    assert t.loc[True, "cost_usd.total_mean"] < t.loc[False, "cost_usd.total_mean"]
    assert t.loc[True, "connections.db.mean_mean"] > t.loc[False, "connections.db.mean_mean"]
    above = "connections.db.time_above_limit_s_mean"
    assert t.loc[True, above] > t.loc[False, above]


def test_a_run_draws_its_connections(write_trace, tmp_path):
    res = db_run(write_trace, True, [0.0, 0.5, 5.0], limit=1)
    out = res.save(tmp_path / "run")
    assert (out / "connections.png").stat().st_size > 5_000
