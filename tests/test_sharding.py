"""A run split into shards of functions gives the unsharded run's logs and summary.

Per function the logs are compared row for row, every column, with request and instance ids
read as the function's own ordinals (ids are numbered across the run); the summaries must be
identical, per function and overall. Scenarios whose functions share capacity are refused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from coldsim import parse_scenario, simulate
from coldsim.cli import app
from coldsim.engine.sharding import shards, simulate_shards
from coldsim.errors import ScenarioError
from coldsim.simulation import result_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

UNSTABLE = {"wall_s", "engine_wall_s", "coldsim_version"}


def _function(name: str, rate: float, **extra) -> dict:
    return {"name": name, "init": {"dist": "lognormal", "median_ms": 300, "sigma": 0.4},
            "duration": {"dist": "exponential", "mean_ms": 700},
            "arrivals": {"process": "poisson", "rate_per_s": rate}, **extra}  # fmt: skip


def _scenario(functions: list[dict], **platform) -> dict:
    return {"name": "shards", "seed": 11, "duration_s": 1800, "warmup_s": 60,
            "platform": {"concurrency_limit": None, **platform}, "functions": functions}  # fmt: skip


def _per_function(result) -> dict:
    """Each function's rows, ids replaced by the function's own ordinals."""
    out = {}
    inv, inst, thr = result.invocations, result.instances, result.throttles
    for name in inv["function"].cat.categories:
        mine_inst = inst[inst["function"] == name]
        local = {iid: i for i, iid in enumerate(mine_inst["instance_id"])}
        mine = inv[inv["function"] == name].copy()
        rid = {r: i for i, r in enumerate(mine["request_id"])}
        mine["request_id"] = mine["request_id"].map(rid)
        mine["instance_id"] = [local.get(i, -1) for i in mine["instance_id"]]
        mine_thr = thr[thr["function"] == name].copy()
        mine_thr["request_id"] = mine_thr["request_id"].map(rid)
        out[name] = [frame.drop(columns=drop).reset_index(drop=True) for frame, drop in (
            (mine, []), (mine_inst, ["instance_id"]), (mine_thr, []))]  # fmt: skip
    return out


def _summary(result) -> str:
    clean = {k: v for k, v in result.summary.items() if k not in UNSTABLE}
    return json.dumps(clean, sort_keys=True, default=str)


def assert_same_run(a, b) -> None:
    fa, fb = _per_function(a), _per_function(b)
    assert fa.keys() == fb.keys()
    for name in fa:
        for x, y in zip(fa[name], fb[name], strict=True):
            pd.testing.assert_frame_equal(x, y, check_categorical=False, obj=name)
    assert _summary(a) == _summary(b)


def sharded(data: dict, parts: int):
    """The run in `parts` shards, simulated in this process (the merge as with workers)."""
    sc = parse_scenario(data)
    log = simulate_shards(sc, workers=1, dask=None, count=parts)
    return result_of(sc, log, 0.0, 0.0)


MIXED = _scenario(
    [
        _function("api", 3.0, reserved_concurrency=2),  # throttles
        _function("jobs", 1.0, invocation="async", reserved_concurrency=1),  # retries
        _function("cron", 0.02, warmer={"interval_s": 300}),
        _function("pc", 1.5, provisioned_concurrency=[{"at_s": 0, "count": 0},
                                                      {"at_s": 600, "count": 2}]),
        _function("rare", 0.005),
    ],
    keep_alive={"policy": "hybrid-histogram", "range_s": 600},
    max_lifetime_s=500,
)  # fmt: skip


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_a_sharded_run_is_the_unsharded_run(parts):
    assert_same_run(simulate(MIXED), sharded(MIXED, parts))


def test_app_scope_keeps_an_apps_functions_together():
    data = _scenario(
        [_function(f"f{i}", 0.2 * (i + 1), app=f"app{i % 3}") for i in range(7)],
        instance_scope="app",
    )
    sc = parse_scenario(data)
    for part in shards(sc, 5):
        apps = {sc.functions[k].app for k in part}
        for app_name in apps:
            assert all(k in part for k, f in enumerate(sc.functions) if f.app == app_name)
    assert_same_run(simulate(data), sharded(data, 3))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(st.floats(0.001, 4.0), min_size=2, max_size=6),
    parts=st.integers(2, 6),
    idle_s=st.sampled_from([5, 60, 600]),
    lifetime=st.sampled_from([None, 120, 900]),
    reserved=st.sampled_from([None, 1, 4]),
    asynchronous=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_sharded_equals_unsharded(rates, parts, idle_s, lifetime, reserved, asynchronous, seed):
    fns = [_function(f"f{i}", r, reserved_concurrency=reserved,
                     invocation="async" if asynchronous and i % 2 else "sync")
           for i, r in enumerate(rates)]  # fmt: skip
    data = {**_scenario(fns, keep_alive={"policy": "fixed", "idle_s": idle_s},
                        max_lifetime_s=lifetime), "seed": seed, "duration_s": 900}  # fmt: skip
    assert_same_run(simulate(data), sharded(data, parts))


def test_a_shard_that_ended_early_is_closed_at_the_runs_horizon():
    """'short' ends at 600 s; 'long' runs a request until about 1,000 s. short's instances
    that went idle late end before that horizon: in the merged log they ended (as
    unsharded), though short's shard alone saw them alive at its own horizon."""
    data = _scenario([
        {**_function("short", 1.0), "duration": {"dist": "constant", "value_ms": 10}},
        {**_function("long", 0.0), "arrivals": {"process": "periodic", "interval_s": 1000,
                                                 "offset_s": 599},
         "duration": {"dist": "constant", "value_ms": 400_000}},
    ], keep_alive={"policy": "fixed", "idle_s": 120})  # fmt: skip
    data["duration_s"] = 600
    alone = simulate({**data, "functions": data["functions"][:1]})
    assert (alone.instances["end_reason"] == "alive").any()  # by its own horizon
    whole, split = simulate(data), sharded(data, 2)
    assert split.summary["horizon_s"] == whole.summary["horizon_s"] > 999
    assert not (split.instances.query("function == 'short'")["end_reason"] == "alive").any()
    assert_same_run(whole, split)


def test_provisioned_replacements_up_to_the_runs_horizon():
    """Idle provisioned instances recycled after their shard's horizon but before the run's
    are replaced in the log as unsharded: the shard is run again to the run's horizon."""
    data = _scenario([
        {**_function("pc", 0.01), "provisioned_concurrency": 2},
        {**_function("long", 0.0), "arrivals": {"process": "periodic", "interval_s": 10_000,
                                                 "offset_s": 1700},
         "duration": {"dist": "constant", "value_ms": 3_000_000}},
    ], max_lifetime_s=400)  # fmt: skip
    whole, split = simulate(data), sharded(data, 2)
    pc = whole.instances.query("function == 'pc'")
    assert (pc["created_s"] > 1800).any()  # replacements after the span, before the horizon
    assert_same_run(whole, split)


def test_merged_ids_do_not_depend_on_the_split():
    a, b = sharded(MIXED, 2), sharded(MIXED, 5)
    for table in ("invocations", "instances", "throttles"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))


def test_worker_processes_and_dask_give_the_serial_run():
    distributed = pytest.importorskip("distributed")
    serial = simulate(MIXED)
    assert_same_run(serial, simulate(MIXED, workers=2))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        assert_same_run(serial, simulate(MIXED, dask=client))


@pytest.mark.parametrize(
    ("platform", "field", "advice"),
    [
        ({"hosts": {"count": 2, "memory_mb": 4096}}, "platform.hosts", "one worker"),
        ({"concurrency_limit": 1000}, "platform.concurrency_limit",
         "platform.concurrency_limit: null"),
    ],
)  # fmt: skip
def test_shared_capacity_is_refused(tmp_path, platform, field, advice):
    data = _scenario([_function("a", 1.0), _function("b", 1.0)], **platform)
    with pytest.raises(ScenarioError) as err:
        simulate(data, workers=2)
    assert field in str(err.value) and advice in str(err.value)
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(app, ["run", str(path), "--workers", "2", "--out",
                                   str(tmp_path / "out")])  # fmt: skip
    assert out.exit_code == 2, out.output
    assert field in out.output and "Traceback" not in out.output
    assert not (tmp_path / "out").exists()


def test_reserved_functions_under_an_account_limit_may_be_sharded():
    data = _scenario([_function("a", 1.0, reserved_concurrency=5),
                      _function("b", 1.0, reserved_concurrency=5)], concurrency_limit=1000)
    assert_same_run(simulate(data), sharded(data, 2))


def test_cli_run_with_workers_writes_the_serial_runs_summary(tmp_path):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(MIXED))
    for name, extra in (("serial", []), ("sharded", ["--workers", "2"])):
        out = CliRunner().invoke(app, ["run", str(path), "-q", "--out", str(tmp_path / name),
                                       *extra])  # fmt: skip
        assert out.exit_code == 0, out.output
    a, b = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("serial", "sharded"))
    assert {k: v for k, v in a.items() if k not in UNSTABLE} == {
        k: v for k, v in b.items() if k not in UNSTABLE}
    assert np.array_equal(pd.read_parquet(tmp_path / "serial" / "invocations.parquet")["cold"],
                          pd.read_parquet(tmp_path / "sharded" / "invocations.parquet")["cold"])


def test_an_account_limit_over_one_unreserved_function_keeps_its_pool_in_every_shard():
    """b's pool is the account limit less a's reserve, whichever shard b runs in."""
    data = _scenario([_function("a", 1.0, reserved_concurrency=100),
                      {**_function("b", 150.0), "duration": {"dist": "constant", "value_ms": 1000}}],
                     concurrency_limit=200)  # fmt: skip
    data["duration_s"] = 20
    data["warmup_s"] = 0
    whole = simulate(data)
    assert whole.summary["per_function"]["b"]["throttled"] > 0
    assert_same_run(whole, sharded(data, 2))


def test_a_shard_whose_requests_never_ran():
    data = _scenario([_function("off", 1.0, reserved_concurrency=0), _function("b", 1.0)])
    whole = simulate(data)
    assert whole.summary["per_function"]["off"]["served"] == 0
    assert_same_run(whole, sharded(data, 2))


def test_a_sampled_request_log_is_the_same_sharded(tmp_path):
    """Each function's sample is drawn from its own stream: the same requests however the
    run was split (and whatever other functions it has)."""
    data = {**_scenario([{**_function(f"p{i}", 1.0), "arrivals": {
        "process": "periodic", "interval_s": step}} for i, step in enumerate((1, 2, 0.5, 1.5))]),
        "outputs": {"requests": 0.3}}  # fmt: skip
    a = pd.read_parquet(simulate(data).save(tmp_path / "a") / "invocations.parquet")
    b = pd.read_parquet(sharded(data, 4).save(tmp_path / "b") / "invocations.parquet")
    key = ["function", "arrival_s", "attempts"]
    pd.testing.assert_frame_equal(a.sort_values(key)[key].reset_index(drop=True),
                                  b.sort_values(key)[key].reset_index(drop=True),
                                  check_categorical=False)  # fmt: skip


def test_calling_functions_stay_together_and_calls_keep_their_callers():
    fns = [_function("a", 1.0, calls=[{"function": "b"}, {"function": "c", "mode": "async"}]),
           _function("b", 0.1), _function("c", 0.1),
           _function("x", 0.5, calls=[{"function": "y", "probability": 0.5}]),
           _function("y", 0.05), _function("lone", 0.3)]  # fmt: skip
    data = _scenario(fns)
    sc = parse_scenario(data)
    for part in shards(sc, 4):
        names = {sc.functions[k].name for k in part}
        assert names >= {"a", "b", "c"} or not names & {"a", "b", "c"}
        assert names >= {"x", "y"} or not names & {"x", "y"}

    def callers(result):  # each call's caller as (function, its ordinal in that function)
        inv = result.invocations
        ordinal = inv.groupby("function", observed=True).cumcount()
        key = dict(zip(inv["request_id"], zip(inv["function"].astype(str), ordinal,
                                                strict=True), strict=True))  # fmt: skip
        return [key.get(p) for p in inv.sort_values(["function", "arrival_s"])
                ["parent_request_id"]]  # fmt: skip

    serial, split = simulate(data), sharded(data, 3)
    assert callers(serial) == callers(split)
    strip = {"invocations": ["parent_request_id"]}
    for r in (serial, split):
        r.invocations.drop(columns=strip["invocations"], inplace=True)
    assert_same_run(serial, split)
