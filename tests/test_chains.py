"""Function chains: a request's handler calls other functions (sync or async), stepped by
hand; the calls' rules and invariants."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from coldsim import ScenarioError, parse_scenario, simulate
from conftest import const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

QUIET = {"process": "poisson", "rate_per_s": 1e-9}  # a function only called


def chain(write_trace, times, calls, idle_s=10.0, **b_fields):
    # a: init 1 s, handler 0.5 s; b (and c): init 2 s, handler 0.3 s.
    a = function("a", arrivals={"process": "trace", "path": str(write_trace(times))},
                 init=const(1000), duration=const(500))  # fmt: skip
    b = function("b", arrivals=QUIET, init=const(2000), duration=const(300))
    c = function("c", arrivals=QUIET, init=const(2000), duration=const(300))
    b.update(b_fields)
    a["calls"] = calls
    return run(scenario(a, b, c, duration_s=100.0, idle_s=idle_s))


def rows(res):
    inv = res.invocations
    cols = ["request_id", "function", "arrival_s", "start_s", "end_s", "cold",
            "parent_request_id", "chain_cold"]  # fmt: skip
    return [tuple(r) for r in inv[cols].astype({"function": str}).itertuples(index=False)]


def test_a_sync_call_to_a_cold_callee_holds_the_caller(write_trace):
    # 0: a cold (init 0-1), handler 1-1.5, calls b: b cold (init 1.5-3.5), runs 3.5-3.8; a
    # ends with it at 3.8, busy and billed from 1 (2.8 s: 0.5 handler + 2.3 waiting). At 5
    # both are warm: a 5-5.5, b 5.5-5.8, a ends 5.8.
    res = chain(write_trace, [0.0, 5.0], [{"function": "b"}])
    assert rows(res) == [
        (0, "a", 0.0, 1.0, 3.8, True, -1, True),
        (1, "b", 1.5, 3.5, 3.8, True, 0, True),
        (2, "a", 5.0, 5.0, 5.8, False, -1, False),
        (3, "b", 5.5, 5.5, 5.8, False, 2, False),
    ]
    inv = res.invocations
    np.testing.assert_allclose(inv["duration_ms"], [2800.0, 300.0, 800.0, 300.0])
    np.testing.assert_allclose(inv["latency_ms"], [3800.0, 2300.0, 800.0, 300.0])
    chains = res.summary["chains"]
    assert list(chains) == ["a"]
    assert chains["a"]["requests"] == 2 and chains["a"]["chain_cold_rate"] == 0.5
    assert chains["a"]["latency_ms"]["max"] == pytest.approx(3800.0)
    np.testing.assert_allclose(res.instances["ended_s"], [15.8, 15.8])  # idle from 5.8


def test_async_calls_fan_out_and_return_at_once(write_trace):
    # a calls b and c async: both requests arrive at 1.5, when a's handler ends; a ends
    # then too. Its chain met its own cold start only (async calls are not waited for).
    res = chain(write_trace, [0.0], [{"function": "b", "mode": "async"},
                                     {"function": "c", "mode": "async"}])  # fmt: skip
    assert rows(res) == [
        (0, "a", 0.0, 1.0, 1.5, True, -1, True),
        (1, "b", 1.5, 3.5, 3.8, True, 0, True),
        (2, "c", 1.5, 3.5, 3.8, True, 0, True),
    ]


def test_sync_calls_run_one_after_another(write_trace):
    res = chain(write_trace, [0.0], [{"function": "b"}, {"function": "c"}])
    inv = res.invocations
    np.testing.assert_allclose(inv["arrival_s"], [0.0, 1.5, 3.8])  # c when b returned
    np.testing.assert_allclose(inv["end_s"], [6.1, 3.8, 6.1])


def test_a_throttled_sync_call_returns_its_error_at_once(write_trace):
    res = chain(write_trace, [0.0], [{"function": "b"}], reserved_concurrency=0)
    inv = res.invocations
    assert inv["status"].astype(str).tolist() == ["served", "throttled"]
    np.testing.assert_allclose(inv["end_s"].iloc[:1], [1.5])  # the error came at once


def test_calls_are_made_with_their_probability(write_trace):
    times = [0.2 * i for i in range(400)]
    res = chain(write_trace, times, [{"function": "b", "probability": 0.3, "mode": "async"}])
    made = (res.invocations["function"] == "b").sum()
    sd = math.sqrt(400 * 0.3 * 0.7)
    assert abs(made - 120) < 4 * sd


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "calls form a cycle: a -> b -> a"),
        ({"a": ["nope"]}, "functions[0].calls[0].function: 'nope': no such function"),
        ({"a": ["b"]}, "a sync call to a function whose invocation is async"),
    ],
)
def test_wrong_calls_are_refused(calls, message):
    fs = [function(n, arrivals=QUIET) for n in ("a", "b")]
    if "async" in message:
        fs[1]["invocation"] = "async"
    for f in fs:
        f["calls"] = [{"function": c} for c in calls.get(f["name"], [])]
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario(scenario(*fs))


def test_chains_deeper_than_16_are_refused():
    fs = [function(f"f{i}", arrivals=QUIET) for i in range(17)]
    for i in range(16):
        fs[i]["calls"] = [{"function": f"f{i + 1}"}]
    with pytest.raises(ScenarioError, match="a chain of 17 functions from 'f0'; at most 16"):
        parse_scenario(scenario(*fs))
    fs[15]["calls"] = []
    parse_scenario(scenario(*fs))  # 16 is allowed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 5),
    edges=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.booleans(),
                             st.sampled_from([1.0, 0.5])), max_size=6),
    limit=st.sampled_from([None, 6]),
    idle_s=st.sampled_from([0.0, 5.0]),
    seed=st.integers(0, 1000),
)  # fmt: skip
def test_chain_invariants(n, edges, limit, idle_s, seed):
    fs = [{
        "name": f"f{i}", "init": {"dist": "exponential", "mean_ms": 500},
        "duration": {"dist": "exponential", "mean_ms": 800},
        "arrivals": {"process": "poisson", "rate_per_s": 0.5 if i == 0 else 0.1},
        "calls": [],
    } for i in range(n)]  # fmt: skip
    seen = set()
    for a, b, sync, p in edges:  # calls go forward only (no cycles), one per pair
        if a < b < n and (a, b) not in seen:
            seen.add((a, b))
            fs[a]["calls"].append({"function": f"f{b}", "mode": "sync" if sync else "async",
                                   "probability": p})  # fmt: skip
    data = scenario(*fs, duration_s=60.0, seed=seed, idle_s=idle_s, concurrency_limit=limit)
    sc = parse_scenario(data)
    res = simulate(sc)
    inv = res.invocations
    assert inv["request_id"].is_unique
    if not sc.chained():  # no calls drawn: no chain columns
        assert "parent_request_id" not in inv and "chains" not in res.summary
        return
    # Every call's request arrives when its caller's handler ended; a sync caller ends no
    # earlier than its callee; callees are the callers' functions' calls.
    calls = {f.name: {c.function: c.mode for c in f.calls} for f in sc.functions}
    by_id = inv.set_index("request_id")
    child = inv[inv["parent_request_id"] >= 0]
    for row in child.itertuples():
        parent = by_id.loc[row.parent_request_id]
        mode = calls[str(parent["function"])][str(row.function)]
        assert parent["status"] == "served"
        assert row.arrival_s >= parent["start_s"] - 1e-9
        if mode == "sync" and row.status == "served":
            assert parent["end_s"] >= row.end_s - 1e-9
    # An instance never serves two requests at once (a caller waiting holds its instance).
    served = inv[inv["status"] == "served"].sort_values(["instance_id", "start_s"])
    ids = served["instance_id"].to_numpy()
    same = ids[1:] == ids[:-1]
    assert (served["start_s"].to_numpy()[1:][same]
            >= served["end_s"].to_numpy()[:-1][same] - 1e-9).all()  # fmt: skip
    # Requests that came from outside match the arrival processes; the others are calls.
    roots = (inv["parent_request_id"] < 0).sum()
    assert roots == sum(len(np.concatenate([np.empty(0), *f.arrivals.batches(
        __import__("coldsim").rng.stream(sc.seed, f.name, "arrivals"), sc.duration_s)]))
        for f in sc.functions)  # fmt: skip
    # The same seed gives the same logs.
    again = simulate(sc).invocations
    assert again.equals(inv)


def _streamed_in_small_blocks(data, rows=50):
    """The run's request rows as a streamed run hands them over, in blocks of ~rows."""
    from coldsim.engine.core import Engine

    engine = Engine(parse_scenario(data))
    blocks = []

    class Sink:
        def rows(self, block, instances, before):
            blocks.append({c: v.copy() for c, v in block.items()})

        def throttles(self, block):
            pass

    engine.sink, engine.flush_rows, engine.chunk_arrivals = Sink(), rows, 2 * rows
    engine.run()
    return {c: np.concatenate([b[c] for b in blocks]) for c in blocks[0]}


FAST = {"name": "api", "duration": {"dist": "constant", "value_ms": 50},
        "arrivals": {"process": "poisson", "rate_per_s": 20}}  # fmt: skip


@pytest.mark.parametrize("case", ["retried caller", "shared host cores", "caller waits for memory"])
def test_rows_whose_end_comes_later_are_handed_over_complete(case):
    # Rows written before their request ends (a caller waiting for its calls, a request on
    # shared host cores) stay held until it ends, also when the request was retried or
    # waited for memory first.
    slow = {"duration": {"dist": "constant", "value_ms": 2000}, "arrivals": QUIET}
    if case == "retried caller":
        fns = [{"name": "a", "invocation": "async", "reserved_concurrency": 1,
                "duration": {"dist": "constant", "value_ms": 300},
                "arrivals": {"process": "poisson", "rate_per_s": 0.3},
                "calls": [{"function": "b"}]}, {"name": "b", **slow}, FAST]  # fmt: skip
        platform = {}
    elif case == "shared host cores":
        fns = [{"name": "q", "invocation": "async", "reserved_concurrency": 1,
                "duration": {"dist": "constant", "value_ms": 2000},
                "arrivals": {"process": "poisson", "rate_per_s": 0.3}}, FAST]  # fmt: skip
        platform = {"hosts": {"classes": [{"name": "s", "count": 2, "memory_mb": 4096,
                                           "cpus": 1}], "cpu": "shared"}}  # fmt: skip
    else:
        fns = [{"name": "a", "memory_mb": 512, "duration": {"dist": "constant", "value_ms": 300},
                "arrivals": {"process": "poisson", "rate_per_s": 0.5},
                "calls": [{"function": "b"}]},
               {"name": "b", "memory_mb": 512, **slow}, {**FAST, "memory_mb": 512}]  # fmt: skip
        platform = {"hosts": {"count": 1, "memory_mb": 1152, "on_full": "queue"}}
    data = {"name": "late-ends", "seed": 3, "duration_s": 600, "functions": fns,
            "platform": {"keep_alive": {"policy": "fixed", "idle_s": 0.5}, **platform}}  # fmt: skip
    rows = _streamed_in_small_blocks(data)
    served = rows["instance_id"] >= 0
    assert np.isfinite(rows["end_s"][served]).all()
    whole = simulate(parse_scenario(data)).invocations.set_index("request_id")
    np.testing.assert_allclose(rows["end_s"], whole.loc[rows["request_id"], "end_s"])


def test_an_items_problem_is_named_by_one_path():
    # A list's own check names its item: the path reads as everywhere else, functions[1].name.
    fs = [function("a", arrivals=QUIET), function("a", arrivals=QUIET)]
    with pytest.raises(ScenarioError) as err:
        parse_scenario(scenario(*fs))
    assert str(err.value) == "functions[1].name: 'a' repeats [0].name: names must be unique"
