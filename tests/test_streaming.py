"""Streamed runs: the summary accumulated block by block equals the one computed from the
whole logs; the request log written in row groups equals the in-memory one (the goldens);
per-function sketch percentiles keep the stated error."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from coldsim import simulate
from coldsim.reporting.logs import requests_written
from coldsim.reporting.quantiles import PERCENTILES, RELATIVE_ACCURACY, FunctionQuantiles
from conftest import ROOT, TRACES
from hypothesis import given, settings
from hypothesis import strategies as st
from test_arrival_stream import BLOCKS
from test_golden import CASES, GOLDEN, _column_digest

UNSTABLE = ("wall_s", "engine_wall_s", "requests_log")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def assert_same_summary(streamed: dict, whole: dict) -> None:
    """Counts and exact percentiles identical; sums of floats up to their summation order."""
    a, b = _flat(streamed), _flat(whole)
    assert set(a) == set(b)
    for key, want in b.items():
        if key.endswith(UNSTABLE) or ".requests_log." in key or key.startswith("requests_log"):
            continue
        got = a[key]
        if isinstance(want, float) and isinstance(got, float):
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), key
        else:
            assert got == want, key


def _bundled(name: str, duration_s: float) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    return {**data, "duration_s": duration_s, "sweep": None}


SCENARIOS = {
    **BLOCKS,  # async retries, memory queues, warmers, shared CPUs, hosts, allocation
    **{name: _bundled(name, 2 * 3600) for name in (
        "default", "mixed-backend", "provisioned-vs-warmers", "snapstart", "db-connections",
        "keep-alive-sensitivity", "bursty-diurnal")},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SCENARIOS))
@pytest.mark.parametrize("rows", [37, 1000])
def test_a_streamed_summary_equals_the_whole_logs_summary(case, rows, monkeypatch):
    monkeypatch.setattr("coldsim.simulation.BLOCK_ROWS", rows)
    data = SCENARIOS[case]
    whole = simulate(data)
    streamed = simulate({**data, "outputs": {"requests": "none"}})
    assert streamed.streamed and len(streamed.invocations) == 0
    assert streamed.summary["requests_log"] == {
        "requests": "none", "rows_total": len(whole.invocations), "rows_written": 0}
    assert_same_summary(streamed.summary, whole.summary)
    for log in ("instances", "throttles"):
        pd.testing.assert_frame_equal(getattr(streamed, log), getattr(whole, log))
    # The figures' series too (busy time per bin: integrals of cumulative sums, whose
    # rounding depends on how many rows are summed at once).
    assert np.array_equal(streamed.stats.cold_bins, whole.stats.cold_bins)
    assert np.allclose(streamed.stats.busy_bins, whole.stats.busy_bins, rtol=1e-6, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    functions=st.integers(1, 4), rate=st.floats(0.05, 3.0), keep_alive=st.floats(1.0, 120.0),
    seed=st.integers(0, 10_000), rows=st.integers(1, 300), concurrency=st.integers(1, 3),
    warmup=st.sampled_from([0.0, 300.0]),
)  # fmt: skip
def test_random_scenarios_stream_to_the_same_summary(
    functions, rate, keep_alive, seed, rows, concurrency, warmup
):
    data = {
        "name": "random", "seed": seed, "duration_s": 1800, "warmup_s": warmup,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": keep_alive}},
        "functions": [{
            "name": f"f{k}", "instance_concurrency": concurrency if k == 0 else 1,
            "invocation": "async" if k == 1 else "sync",
            "reserved_concurrency": 2 if k == 1 else None,
            "duration": {"dist": "lognormal", "median_ms": 300 * (k + 1), "sigma": 1.0},
            "arrivals": {"process": "poisson", "rate_per_s": rate / (k + 1)},
        } for k in range(functions)],
    }  # fmt: skip
    whole = simulate(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("coldsim.simulation.BLOCK_ROWS", rows)
        streamed = simulate({**data, "outputs": {"requests": "none"}})
    assert_same_summary(streamed.summary, whole.summary)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_request_log_streamed_to_parquet_is_the_golden_one(case, tmp_path, monkeypatch):
    """Written one row group per block as the run goes, byte for byte the golden columns."""
    if case == "azure-replay" and not TRACES.is_dir():
        pytest.skip(f"no shared traces at {TRACES}")
    monkeypatch.setattr("coldsim.simulation.BLOCK_ROWS", 500)
    monkeypatch.setattr("coldsim.reporting.logs.LogWriter.ROW_GROUP", 500)
    res = simulate(CASES[case](), save_to=tmp_path / "run")
    path = tmp_path / "run" / "invocations.parquet"
    written = pd.read_parquet(path)
    want = yaml.safe_load((GOLDEN / f"{case}.json").read_text())["invocations"]
    assert len(written) == want["rows"]
    for column, digest in want["columns"].items():
        assert _column_digest(written[column]) == digest, column
    if len(written) > 500:
        assert pq.ParquetFile(path).metadata.num_row_groups > 1
    assert len(res.invocations) == 0  # on disk, not in memory
    about = res.summary["requests_log"]
    assert about == {"requests": "all", "rows_total": len(written), "rows_written": len(written)}
    for name in ("summary.json", "instances.parquet", "throttles.parquet", "latency_cdf.png"):
        assert (tmp_path / "run" / name).is_file()
    # Saved again elsewhere, the request log is copied from the folder it went to.
    res.save(tmp_path / "again")
    again = pd.read_parquet(tmp_path / "again" / "invocations.parquet")
    pd.testing.assert_frame_equal(again, written)


def test_a_streamed_sample_is_the_in_memory_sample(tmp_path, monkeypatch):
    monkeypatch.setattr("coldsim.simulation.BLOCK_ROWS", 97)
    data = {**SCENARIOS["default"], "outputs": {"requests": 0.1}}
    streamed = simulate(data)
    whole = simulate({**data, "outputs": {"requests": "all"}})
    sample, about = requests_written(whole.invocations, 0.1, whole.scenario.seed)
    pd.testing.assert_frame_equal(streamed.invocations, sample)
    assert streamed.summary["requests_log"] == about
    streamed.save(tmp_path / "streamed")
    again = pd.read_parquet(tmp_path / "streamed" / "invocations.parquet")
    again = again.drop(columns=["app", "footprint_mb"])  # the file's per-function columns
    pd.testing.assert_frame_equal(again, sample, check_categorical=False)


def test_an_apps_functions_are_kept_together_under_instance_scope_app(monkeypatch):
    """Under instance_scope app a plain function runs on a busy-instance function's
    instances: the whole app's rows are kept, and the busy-instance bill is the same."""
    monkeypatch.setattr("coldsim.simulation.BLOCK_ROWS", 37)
    fn = lambda name, app, **kw: {"name": name, "app": app, "duration": {  # noqa: E731
        "dist": "constant", "value_ms": 300}, "arrivals": {"process": "poisson",
        "rate_per_s": 0.5}, **kw}  # fmt: skip
    data = {"name": "apps", "seed": 5, "duration_s": 3600,
            "platform": {"instance_scope": "app"},
            "functions": [fn("a", "x", billing="busy-instance"), fn("b", "x"), fn("c", "y")]}
    whole = simulate(data)
    streamed = simulate({**data, "outputs": {"requests": "none"}})
    assert set(streamed.kept["function"].unique()) == {"a", "b"}
    assert_same_summary(streamed.summary, whole.summary)


def test_only_the_functions_that_need_their_rows_keep_them(monkeypatch):
    """A plain trace-like run keeps no request row in memory; a multi-request function's
    rows are kept (their busy time is a union)."""
    monkeypatch.setattr("coldsim.simulation.BLOCK_ROWS", 50)
    plain = simulate({**SCENARIOS["default"], "outputs": {"requests": "none"}})
    assert len(plain.kept) == 0
    multi = simulate({**BLOCKS["cpu-sharing"], "outputs": {"requests": "none"}})
    shared = [f.instance_concurrency > 1 for f in multi.scenario.functions]
    assert 0 < sum(shared) < len(shared)
    assert len(multi.kept) == multi.stats.counts["rows"][shared].sum()
    names = {f.name for f, s in zip(multi.scenario.functions, shared, strict=True) if s}
    assert set(multi.kept["function"].unique()) == names


# --- per-function sketches ------------------------------------------------------------------

values = st.lists(st.floats(0.0, 1e7, allow_nan=False), min_size=1, max_size=300)


@settings(max_examples=100, deadline=None)
@given(values, st.integers(1, 5), st.integers(1, 40), st.integers(0, 2**31))
def test_function_sketches_keep_the_stated_error(xs, n_fn, limit, seed):
    """Per function and overall, each percentile lies within 1% of an order statistic at
    (or next to) its rank; count, mean and max are exact."""
    codes = np.random.default_rng(seed).integers(0, n_fn, len(xs))
    x = np.array(xs)
    q = FunctionQuantiles(n_fn, exact_limit=limit)
    for part in np.array_split(np.arange(len(x)), 3):
        q.add(codes[part], x[part])
    stats = q.stats()
    assert q.method == ("ddsketch" if len(x) > limit else "exact")
    for k in [*range(n_fn), None]:
        a = np.sort(x if k is None else x[codes == k])
        got = stats[-1 if k is None else k]
        if not len(a):
            assert set(got.values()) == {None}
            continue
        assert got["max"] == a[-1]
        assert got["mean"] == pytest.approx(a.mean(), rel=1e-9, abs=1e-12)
        for key, pct in PERCENTILES.items():
            if q.method == "exact":
                assert got[key] == pytest.approx(np.percentile(a, pct), rel=1e-12, abs=1e-9)
                continue
            rank = pct / 100 * (len(a) - 1)
            near = a[max(0, math.floor(rank) - 1) : math.ceil(rank) + 2]
            err = RELATIVE_ACCURACY * 1.0000001
            assert any(abs(got[key] - v) <= err * v + 1e-300 for v in near), (k, key, got[key])


@settings(max_examples=60, deadline=None)
@given(values, values, st.integers(1, 400))
def test_merged_function_sketches_give_the_whole(xs, ys, limit):
    def filled(*parts):
        q = FunctionQuantiles(2, exact_limit=limit)
        for p in parts:
            q.add(np.arange(len(p)) % 2, np.array(p))
        return q

    whole, a, b = filled(xs, ys), filled(xs), filled(ys)
    a.merge(b)
    for got, want in zip(a.stats(), whole.stats(), strict=True):
        for key in (*PERCENTILES, "max"):
            assert got[key] == want[key]


@pytest.mark.parametrize("case", ["mixed-backend", "snapstart", "db-connections",
                                  "provisioned-vs-warmers"])  # fmt: skip
def test_a_sharded_streamed_run_merges_the_shards_statistics(case):
    """With outputs.requests none, shards send back statistics, not rows: the same summary
    as one process (figures' series included)."""
    data = {**SCENARIOS[case], "outputs": {"requests": "none"}}
    data["platform"] = {**(data.get("platform") or {}), "concurrency_limit": None}
    one = simulate(data)
    sharded = simulate(data, workers=2)
    assert len(sharded.invocations) == 0
    assert sharded.summary["requests_log"] == one.summary["requests_log"]
    assert_same_summary(sharded.summary, one.summary)
    assert np.array_equal(sharded.stats.cold_bins, one.stats.cold_bins)
    assert np.allclose(sharded.stats.busy_bins, one.stats.busy_bins, rtol=1e-6, atol=1e-6)
    assert len(sharded.kept) == len(one.kept)


def test_a_pending_async_retry_does_not_hold_back_other_rows():
    """Rows are handed over as they are written, whatever request is still to be retried:
    an often-throttled async function does not make the run hold every function's rows."""
    from coldsim import parse_scenario
    from coldsim.engine.core import Engine
    from coldsim.reporting.stream import RequestSink

    sc = parse_scenario({
        "name": "retries", "seed": 3, "duration_s": 1800, "outputs": {"requests": "none"},
        "functions": [
            {"name": "queue", "invocation": "async", "reserved_concurrency": 2,
             "duration": {"dist": "constant", "value_ms": 900},
             "arrivals": {"process": "poisson", "rate_per_s": 2.5}},
            {"name": "api", "duration": {"dist": "constant", "value_ms": 50},
             "arrivals": {"process": "poisson", "rate_per_s": 50}},
        ],
    })  # fmt: skip
    sink, engine = RequestSink(sc), Engine(sc)
    engine.sink, engine.flush_rows, engine.chunk_arrivals = sink, 500, 1000
    held, pending = [], []
    take = sink.rows

    def rows(block, instances, before):
        held.append(engine.columns.held())
        pending.append(len(engine._unfinished))
        take(block, instances, before)

    sink.rows = rows
    engine.run()
    assert max(pending) > 0  # retries were pending at hand-overs
    assert len(held) > 50 and max(held[:-1]) < 1000


def test_a_sharded_streamed_run_numbers_no_request():
    data = {**BLOCKS["cpu-sharing"], "outputs": {"requests": "none"}}
    data["platform"] = {**(data.get("platform") or {}), "concurrency_limit": None}
    sharded = simulate(data, workers=2)
    assert len(sharded.kept) and (sharded.kept["request_id"] == -1).all()
    assert (sharded.throttles["request_id"] == -1).all()
