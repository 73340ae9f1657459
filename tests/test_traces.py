"""Trace readers and replays on the real Azure excerpts in ../shared/traces (read-only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from coldsim import ScenarioError, parse_scenario
from coldsim.workload.traces import azure2019, azure2021
from conftest import TRACES, const, needs_traces, run, scenario
from scipy import sparse

JBININ = TRACES / "azure2019_jbinin_head" / "test_workload.csv"
AZURE_500 = TRACES / "azure2019_dirigent_azure_500"
AZURE_2021 = TRACES / "azure2021_invitro_prefix" / "Azure2021_200.csv"
EVERY_5_MIN = "520dbd6bd906840012aa0c4b778743efc7c0ac7b7caf96b3d7f85d46209b7872"


def workload(path, **kw):
    return {"name": "replay", "seed": 5, "duration_s": kw.pop("duration_s", 86400),
            "platform": {"keep_alive": {"policy": "fixed", "idle_s": kw.pop("idle_s", 600)},
                         "max_lifetime_s": None, "concurrency_limit": None, "scaling": None},
            "workload": {"path": str(path), **kw}}  # fmt: skip


@needs_traces
@pytest.mark.parametrize("spread", ["uniform", "poisson", "equidistant"])
def test_every_five_minutes_with_ten_minute_keep_alive_is_one_cold_start(spread):
    f = {"name": "every5", "duration": const(100),
         "arrivals": {"process": "azure2019", "invocations": str(JBININ), "function": EVERY_5_MIN[:12], "spread": spread}}  # fmt: skip
    s = run(scenario(f, duration_s=86400, idle_s=600)).summary
    assert (s["invocations"], s["cold_starts"]) == (288, 1)


@needs_traces
def test_azure_500_loads_every_function_and_invocation():
    sc = parse_scenario(workload(AZURE_500, format="azure2019", duration_s=480 * 60))
    assert len(sc.functions) == 500
    assert all(len(f.name) >= 8 for f in sc.functions)
    inv = azure2019.read_invocations(AZURE_500 / "invocations.csv")
    assert inv.shape == (500, 480) and int(inv.totals().sum()) == 3_037_902
    assert inv.minutes[0] == 480 and inv.minutes[-1] == 959


@needs_traces
@pytest.mark.slow
def test_azure_500_replay_reproduces_the_per_minute_counts():
    res = run(workload(AZURE_500, format="azure2019", duration_s=480 * 60))
    inv = res.invocations
    assert len(inv) == 3_037_902 and res.summary["invocations"] == 3_037_902
    trace = azure2019.read_invocations(AZURE_500 / "invocations.csv")
    names = {f.arrivals.function: f.name for f in res.scenario.functions}
    minute = (inv["arrival_s"] // 60).astype(int).to_numpy()
    codes = inv["function"].cat.codes.to_numpy()
    replayed = np.zeros((500, 480), dtype=np.int64)
    np.add.at(replayed, (codes, minute), 1)
    order = [list(inv["function"].cat.categories).index(names[h]) for h in trace.functions]
    np.testing.assert_array_equal(replayed[order], trace.counts.toarray())


@needs_traces
def test_azure_500_durations_and_memory_come_from_the_trace():
    sc = parse_scenario(workload(AZURE_500, format="azure2019", duration_s=60, select={"top": 3}))
    durations = azure2019.read_durations(AZURE_500 / "durations.csv")
    memory, per_function = azure2019.read_memory(AZURE_500 / "memory.csv")
    assert per_function
    for f in sc.functions:
        h = f.arrivals.function
        assert f.duration.percentiles[50] == durations.loc[h, "percentile_Average_50"]
        assert f.memory_mb == max(128, int(np.ceil(memory[h])))
    trace = azure2019.read_invocations(AZURE_500 / "invocations.csv")
    top = np.sort(trace.totals())[-3:]
    chosen = [trace.row_counts(trace.row(f.arrivals.function)).sum() for f in sc.functions]
    assert sorted(chosen) == sorted(top.tolist())


@needs_traces
def test_per_app_memory_is_divided_among_the_apps_functions(tmp_path):
    # The original per-application memory file: HashOwner,HashApp,SampleCount,AverageAllocatedMb...
    src = TRACES / "azure2019_invitro_10"
    for name in ("invocations.csv", "durations.csv"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    mem = pd.read_csv(src / "memory.csv").drop(columns=["HashFunction"])
    mem.loc[0, "AverageAllocatedMb"] = 1000.0
    mem.to_csv(tmp_path / "memory.csv", index=False)
    # A second function of the first app: the app's 1000 MB is split between the two.
    full = pd.read_csv(tmp_path / "invocations.csv")
    first = full.loc[0, "HashFunction"]
    twin = full.iloc[[0]].assign(HashFunction="f" * 64)
    pd.concat([full, twin]).to_csv(tmp_path / "invocations.csv", index=False)
    sc = parse_scenario(
        workload(tmp_path, format="azure2019", duration_s=60, function={"duration": const(5)})
    )
    mine = [f for f in sc.functions if f.arrivals.function in (first, "f" * 64)]
    assert [f.memory_mb for f in mine] == [500, 500]


@needs_traces
def test_azure2021_replays_exact_arrivals_and_durations():
    raw = pd.read_csv(AZURE_2021)
    assert len(raw) == 199
    res = run(workload(AZURE_2021, format="azure2021", duration_s=1300))
    inv = res.invocations
    assert len(inv) == 199 and len(res.scenario.functions) == 31
    got = inv[["arrival_s", "duration_ms"]].sort_values(["arrival_s", "duration_ms"]).to_numpy()
    want = np.c_[raw["end_timestamp"] - raw["duration"], raw["duration"] * 1000]
    want = want[np.lexsort((want[:, 1], want[:, 0]))]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    # Each request runs exactly its own duration (warm ones: latency = duration).
    warm = inv[~inv["cold"]]
    np.testing.assert_allclose(warm["latency_ms"], warm["duration_ms"], atol=1e-6)


@needs_traces
def test_azure2021_functions_are_keyed_by_app_and_func():
    data = azure2021.read(AZURE_2021)
    assert len(data.functions) == 31 and len(set(data.apps)) == 13
    assert sum(len(t) for t in data.arrival_s) == 199
    assert all((np.diff(t) >= 0).all() for t in data.arrival_s)


@needs_traces
def test_time_scale_rate_multiplier_and_window():
    base = run(workload(AZURE_2021, format="azure2021", duration_s=1300)).invocations
    fast = run(workload(AZURE_2021, format="azure2021", duration_s=1300, time_scale=10)).invocations
    assert fast["arrival_s"].max() == pytest.approx(base["arrival_s"].max() / 10)
    cut = run(
        workload(AZURE_2021, format="azure2021", duration_s=1300, trace_window_s=[600, 900])
    ).invocations
    raw = pd.read_csv(AZURE_2021)
    start = raw["end_timestamp"] - raw["duration"]
    assert len(cut) == int(((start >= 600) & (start < 900)).sum())
    assert cut["arrival_s"].min() >= 0 and cut["arrival_s"].max() < 300
    double = run(
        workload(AZURE_2021, format="azure2021", duration_s=1300, rate_multiplier=2)
    ).invocations
    assert len(double) == 2 * 199
    half = run(
        workload(AZURE_2021, format="azure2021", duration_s=1300, rate_multiplier=0.5)
    ).invocations
    assert abs(len(half) - 99.5) < 4 * np.sqrt(199 * 0.25)


@needs_traces
def test_sample_selection_is_seeded():
    one = parse_scenario(
        workload(AZURE_500, format="azure2019", duration_s=60, select={"sample": 20})
    )
    two = parse_scenario(
        workload(AZURE_500, format="azure2019", duration_s=60, select={"sample": 20})
    )
    other = parse_scenario(
        {**workload(AZURE_500, format="azure2019", duration_s=60, select={"sample": 20}), "seed": 6}
    )
    names = [f.name for f in one.functions]
    assert names == [f.name for f in two.functions] and len(names) == 20
    assert names != [f.name for f in other.functions]


def test_user_csv_log_with_functions_and_durations(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "timestamp_s,function,duration_ms\n0.5,api,12\n1.5,api,30\n2.0,cron,400\n700,api,15\n"
    )
    res = run(workload(log, format="csv", duration_s=1000, idle_s=60))
    inv = res.invocations
    assert sorted(f.name for f in res.scenario.functions) == ["api", "cron"]
    assert inv["duration_ms"].tolist() == [12, 30, 400, 15]
    assert inv["cold"].tolist() == [True, False, True, True]


@pytest.mark.parametrize(("text", "message"), [
    ("timestamp_s,function\n1.0,a\nsoon,a\n", "line 3, column timestamp_s: 'soon' is not a number >= 0"),
    ("timestamp_s,duration_ms\n1.0,5\n2.0,-4\n", "line 3, column duration_ms: -4 is not a number >= 0"),
    ("timestamp_s,duration_ms\n1.0,5\n\n\n2.0,x\n", "line 5, column duration_ms: 'x'"),
    ("time,function\n1.0,a\n", "missing column(s) timestamp_s"),
    ("", "the file is empty"),
])  # fmt: skip
def test_malformed_logs_name_file_line_and_column(tmp_path, text, message):
    log = tmp_path / "log.csv"
    log.write_text(text)
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        parse_scenario(workload(log, format="csv", duration_s=10, function={"duration": const(1)}))
    assert str(log) in str(err.value)


@needs_traces
def test_malformed_azure2019_counts_are_reported(tmp_path):
    lines = JBININ.read_text().splitlines()
    cells = lines[2].split(",")
    cells[10] = "x"
    lines[2] = ",".join(cells)
    (tmp_path / "invocations.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ScenarioError, match=r"line 3, column 7: 'x' is not a whole number from 0 to 2147483647"
    ):
        parse_scenario(workload(tmp_path, format="azure2019", function={"duration": const(1)}))
    cells[10] = "99999999999999999999"  # would wrap around in a fixed-width integer
    lines[2] = ",".join(cells)
    (tmp_path / "invocations.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        # (pandas versions differ on whether they read it as a number or as text)
        ScenarioError, match=r"line 3, column 7: '?99999999999999999999'? is not a whole number"
    ):
        parse_scenario(workload(tmp_path, format="azure2019", function={"duration": const(1)}))


@needs_traces
def test_a_missing_hash_in_the_2021_trace_is_reported(tmp_path):
    lines = AZURE_2021.read_text().splitlines()
    lines[50] = "," + lines[50].split(",", 1)[1]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError, match="line 51, column app: missing"):
        parse_scenario(workload(path, format="azure2021", duration_s=100))


@needs_traces
@pytest.mark.filterwarnings("ignore:.*no memory file")  # the lone counts file: expected
def test_cli_trace_inspect_and_to_scenario(tmp_path):
    from coldsim.cli import app
    from typer.testing import CliRunner

    runner = CliRunner()
    res = runner.invoke(app, ["trace", "inspect", str(AZURE_500), "--out", str(tmp_path / "insp")])
    assert res.exit_code == 0, res.output
    stats = __import__("json").loads((tmp_path / "insp" / "inspect.json").read_text())
    assert (stats["functions"], stats["invocations"], stats["apps"]) == (500, 3_037_902, 476)
    assert stats["triggers"]["timer"]["functions"] == 247
    assert (tmp_path / "insp" / "invocations_over_time.png").stat().st_size > 1000
    out = tmp_path / "jb.yaml"
    res = runner.invoke(
        app, ["trace", "to-scenario", str(JBININ), "--out", str(out), "--select", "top:2"]
    )
    assert res.exit_code == 0, res.output
    assert "no durations or memory file" in res.output
    res = runner.invoke(app, ["run", str(out), "--out", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["trace", "to-scenario", str(JBININ), "--out", str(out), "--select", "best:2"]
    )
    assert res.exit_code == 2 and "top:N, sample:N or all" in res.output
    res = runner.invoke(app, ["trace", "inspect", str(tmp_path / "nope.csv")])
    assert res.exit_code == 2 and "file not found" in res.output


@needs_traces
def test_one_function_replay_takes_duration_and_memory_from_the_trace_folder():
    trace = azure2019.read_invocations(AZURE_500 / "invocations.csv")
    h = trace.functions[0]
    f = {
        "name": "one",
        "arrivals": {"process": "azure2019", "invocations": str(AZURE_500), "function": h},
    }
    sc = parse_scenario(scenario(f, duration_s=600))
    durations = azure2019.read_durations(AZURE_500 / "durations.csv")
    assert sc.functions[0].duration.percentiles[99] == durations.loc[h, "percentile_Average_99"]
    memory, _ = azure2019.read_memory(AZURE_500 / "memory.csv")
    assert sc.functions[0].memory_mb == azure2019.memory_mb(memory[h])
    f["memory_mb"] = 2048  # what the user gives wins
    assert parse_scenario(scenario(f, duration_s=600)).functions[0].memory_mb == 2048


# --- a whole day, quickly: pyarrow reads, pandas reports ----------------------------------


def _day_file(tmp_path, rows):
    head = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(str(m) for m in range(1, 6))
    path = tmp_path / "invocations.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


ROWS = [f"o{i},a{i // 2},f{i},http,{i},0,{i % 3},1,2" for i in range(8)]


@pytest.mark.parametrize(
    "change, message",
    [
        ((3, 5, "0x1f"), r"line 5, column 2: '0x1f' is not a whole number"),
        ((3, 5, "-2"), r"line 5, column 2: -2 is not a whole number"),
        ((3, 6, "2147483648"), r"line 5, column 3: 2147483648 is not a whole number"),
        ((6, 4, "1.5"), r"line 8, column 1: 1.5 is not a whole number"),
        ((6, 4, ""), r"line 8, column 1: no value"),
        ((2, 2, "NA"), r"line 4, column HashFunction: missing"),
        ((2, 8, "1,7"), r"malformed CSV"),
        ((4, 2, "f1"), r"line 6 repeats the function of line 3"),
    ],
)
def test_the_fast_reader_leaves_every_problem_to_the_reporting_one(tmp_path, change, message):
    row, cell, value = change
    rows = [r.split(",") for r in ROWS]
    if change[2] == "f1":
        rows[row][:2] = rows[1][:2]
    rows[row][cell] = value
    path = _day_file(tmp_path, [",".join(r) for r in rows])
    with pytest.raises(ScenarioError, match=message):
        azure2019.read_invocations(path)


def test_fast_and_reporting_readers_agree(tmp_path):
    rows = [*ROWS[:3], "", *ROWS[3:], "", ""]  # blank lines are skipped
    path = _day_file(tmp_path, rows)
    inv = azure2019.read_invocations(path)
    columns = [*azure2019.KEYS, "Trigger", *map(str, range(1, 6))]
    keys, counts = azure2019._read_slow(path, columns, columns[4:])
    counts = counts.toarray()
    assert (inv.counts.toarray() == counts).all() and inv.shape == (8, 5)
    assert (inv.functions == keys[:, 2]).all() and (inv.triggers == "http").all()
    assert inv.totals().tolist() == [r.sum() for r in counts]
    assert inv.totals((2, 3)).tolist() == counts[:, 1:3].sum(axis=1).tolist()
    assert inv.app_sizes() == {f"a{i}": 2 for i in range(4)}


def test_counts_are_held_sparse_and_read_as_dense_rows(tmp_path):
    rng = np.random.default_rng(5)
    dense = rng.poisson(2.0, (30, 12)) * (rng.random((30, 12)) < 0.3)
    dense[4] = 0  # a function never invoked
    labels = [7, 1, 12, 2, 3, 4, 5, 6, 8, 11, 10, 9]  # columns out of order: held in time order
    head = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(map(str, labels))
    rows = [f"o,a,f{i},http," + ",".join(map(str, r)) for i, r in enumerate(dense)]
    path = tmp_path / "invocations.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    inv = azure2019.read_invocations(path)
    in_time = dense[:, np.argsort(labels)]
    assert inv.minutes.tolist() == list(range(1, 13)) and inv.shape == (30, 12)
    assert sparse.issparse(inv.counts) and inv.counts.format == "csr"
    assert inv.counts.dtype == np.int32 and inv.counts.indices.dtype == np.int32
    assert inv.counts.nnz == np.count_nonzero(dense)  # the non-zero cells only
    assert np.array_equal(inv.counts.toarray(), in_time)
    columns = head.split(",")
    _, slow = azure2019._read_slow(path, columns, columns[4:], np.argsort(labels))
    assert np.array_equal(slow.toarray(), in_time)
    window = inv.minute_columns((3, 10))
    assert inv.totals((3, 10)).tolist() == in_time[:, 2:10].sum(axis=1).tolist()
    for i in range(30):
        row = inv.row_counts(i, window)
        assert row.dtype == np.int32 and np.array_equal(row, in_time[i, 2:10])
        assert np.array_equal(inv.row_counts(i), in_time[i])
        lazy = inv.sparse_row(i, window)  # sliced as the dense row, never held dense
        assert len(lazy) == 8 and np.array_equal(np.asarray(lazy, dtype=np.int64), row)
        for a, b in [(0, 3), (2, 2), (5, 3), (6, 50), (-3, -1), (0, 8), (None, None)]:
            assert np.array_equal(lazy[a:b], row[a:b]) and lazy[a:b].dtype == np.int32


@pytest.mark.parametrize("how", ["uniform", "poisson", "equidistant"])
def test_a_spread_in_pieces_is_the_spread_exactly(how):
    counts = np.random.default_rng(1).poisson(40, 300) * (np.arange(300) % 7 != 0)
    whole = azure2019.spread(counts, how, np.random.default_rng(2), 30.0)
    busy = np.flatnonzero(counts)
    row = azure2019.SparseRow(busy, counts[busy].astype(np.int32), 0, len(counts))
    for piece in (1, 50, 1000, 10**6):
        for held in (counts, row):  # the dense counts, or a trace's busy minutes
            rng = np.random.default_rng(2)
            parts = list(azure2019.spread_pieces(held, how, rng, 30.0, piece))
            assert np.array_equal(np.concatenate(parts), whole)
            assert all(len(p) <= max(piece, counts.max()) for p in parts)


@pytest.mark.parametrize("how", ["uniform", "poisson", "equidistant"])
def test_a_replay_spread_lazily_draws_the_whole_replays_times_and_batches(tmp_path, how):
    from coldsim.workload.arrivals.azure2019 import Azure2019
    from coldsim.workload.arrivals.replay import ReplayBase

    big = [f"o,a,f{i},http," + ",".join(str(c) for c in (9000, 0, 30000, 5, 7000)) for i in (1, 2)]
    path = _day_file(tmp_path, big)
    for kw in ({}, {"rate_multiplier": 1.5, "time_scale": 2.0}, {"end_s": 150.0, "start_s": 20}):
        replay = Azure2019.model_construct(
            process="azure2019", invocations=path, function="f2", spread=how, minutes=None,
            durations=None, memory=None, time_scale=kw.get("time_scale", 1.0),
            rate_multiplier=kw.get("rate_multiplier", 1.0), start_s=kw.get("start_s", 0.0),
            end_s=kw.get("end_s"),
        )  # fmt: skip
        lazy = list(replay.batches_with_durations(np.random.default_rng(4), 300.0))
        whole = list(ReplayBase.batches_with_durations(replay, np.random.default_rng(4), 300.0))
        assert [len(t) for t, _ in lazy] == [len(t) for t, _ in whole]
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(lazy, whole, strict=True))


def test_inspect_takes_cvs_and_timeline_from_the_counts():
    from coldsim.reporting import trace_inspection as inspect

    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.choice([0.02, 0.5, 20.0], size=(300, 1))[:, [0] * 180])
    counts[0], counts[1, :] = 0, 0
    counts[1, [3, 90]] = 1, 2  # three requests; counts[0]: none
    cvs, spans = [], []
    for c in counts:
        t = azure2019.spread(c, "equidistant", None)
        if len(t) >= 3 and np.diff(t).mean() > 0:
            cvs.append(np.diff(t).std() / np.diff(t).mean())
        spans.append(t)
    assert np.allclose(inspect.equidistant_cvs(counts), cvs, rtol=1e-9, atol=1e-12)
    for minutes in (180, 3, 2000):  # bins of 15 min; of 1 s (by times); of an hour
        part = np.tile(counts, (1, 12))[:, :minutes]
        times = [azure2019.spread(c, "equidistant", None) for c in part]
        got = inspect._minute_timeline(part, 60.0 * minutes)
        want = inspect._timeline(times, 60.0 * minutes)
        assert np.array_equal(got[0], want[0]) and got[1:] == want[1:]
