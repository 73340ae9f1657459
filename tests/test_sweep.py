"""Sweeps, confidence intervals, executors, resume, inverse sizing and comparisons."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from coldsim import Target, load_scenario, parse_scenario, plan, simulate, sweep
from coldsim.studies.compare import compare, pareto, wilson
from coldsim.studies.sweep import parse_grid, replication_seeds
from conftest import ROOT, const, function, scenario
from scipy import stats


def known_cold(seed=0, duration_s=200_000.0):
    # Negligible service time: P(cold) = exp(-λT) = exp(-0.6).
    f = function(
        arrivals={"process": "poisson", "rate_per_s": 0.01}, init=const(1), duration=const(1)
    )
    return parse_scenario(scenario(f, duration_s=duration_s, idle_s=60, seed=seed))


def test_confidence_intervals_cover_the_true_value_95_percent_of_the_time():
    p = math.exp(-0.6)
    sweeps = 40
    covered = 0
    for seed in range(sweeps):
        row = sweep(
            known_cold(seed), {"platform.keep_alive.idle_s": [60]}, 5, workers=1
        ).table.iloc[0]
        covered += row["cold_start_rate_ci_low"] <= p <= row["cold_start_rate_ci_high"]
    # Coverage is Binomial(40, 0.95): fewer than `floor` covered has probability < 0.001.
    floor = int(stats.binom.ppf(0.001, sweeps, 0.95))
    assert covered >= floor, (covered, floor)


def test_common_random_numbers_and_tidy_tables(tmp_path):
    base = known_cold(duration_s=20_000)
    res = sweep(base, {"platform.keep_alive.idle_s": [30, 60, 120], "functions.0.memory_mb": [128, 256]}, 3,
                workers=1, out=tmp_path / "sw")  # fmt: skip
    assert len(res.table) == 6 and len(res.runs) == 18
    assert list(res.table.columns[:2]) == ["platform.keep_alive.idle_s", "functions.0.memory_mb"]
    for m in ("cold_start_rate", "latency_ms.p99", "cost_usd.total", "per_function.f.idle_gb_s"):
        assert {f"{m}_mean", f"{m}_ci_low", f"{m}_ci_high"} <= set(res.table.columns)
    # Replication r has the same seed at every point; arrivals then differ only by the knobs.
    assert (res.runs.groupby("replication")["seed"].nunique() == 1).all()
    assert res.runs["seed"].tolist()[:3] == replication_seeds(base.seed, 3)
    assert (res.runs.groupby("replication")["invocations"].nunique() == 1).all()
    # Longer keep-alive, fewer cold starts, on common random numbers: per replication.
    wide = res.runs.pivot_table(
        index="replication", columns="platform.keep_alive.idle_s", values="cold_starts"
    )
    assert (wide[30] >= wide[60]).all() and (wide[60] >= wide[120]).all()
    for name in ("sweep.parquet", "sweep.csv", "runs.parquet"):
        assert (tmp_path / "sw" / name).is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sw" / "sweep.parquet"), res.table)


def test_serial_process_pool_and_dask_give_identical_tables():
    distributed = pytest.importorskip("distributed")
    base = known_cold(duration_s=20_000)
    grid = {"platform.keep_alive.idle_s": [30, 90], "platform.idle_selection": ["newest", "lru"]}
    serial = sweep(base, grid, 3, workers=1).table
    pool = sweep(base, grid, 3, workers=2).table
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        on_dask = sweep(base, grid, 3, dask=client).table
    pd.testing.assert_frame_equal(serial, pool)
    pd.testing.assert_frame_equal(serial, on_dask)


def test_a_killed_sweep_resumes_without_recomputing(tmp_path):
    yaml_text = (ROOT / "scenarios" / "default.yaml").read_text()
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml_text.replace("duration_s: 3600", "duration_s: 2000").replace(
            "warmup_s: 300", "warmup_s: 0"
        )
    )
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "coldsim", "sweep", str(path), "--grid",
           "platform.keep_alive.idle_s=10,20,40,80,160,320", "--replications", "4", "--workers", "1", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = out / "runs"
    deadline = time.time() + 60
    while time.time() < deadline and (not runs.is_dir() or len(list(runs.glob("*.json"))) < 5):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert 5 <= len(before) < 24, len(before)
    # Every run file is whole (written aside, then renamed); a kill during a write can only
    # leave the hidden temporary file of that write behind.
    for p in runs.glob("*.json"):
        json.loads(p.read_text())
    assert not (out / "sweep.parquet").exists()
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert len(after) == 24
    assert all(after[name] == mtime for name, mtime in before.items())  # not recomputed
    fresh = tmp_path / "fresh"
    cmd[cmd.index(str(out))] = str(fresh)
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "sweep.parquet"), pd.read_parquet(fresh / "sweep.parquet")
    )


def test_plan_finds_the_provisioned_concurrency_of_a_constant_load():
    # Waves of 4 simultaneous 5 s requests every 10 s; instances are evicted as soon as they
    # go idle, so every on-demand request is cold: only 4 provisioned instances (ready after
    # their 2 s init, before the first wave at 5 s) make every request warm.
    f = function(
        arrivals={"process": "periodic", "interval_s": 10}, init=const(2000), duration=const(5000)
    )
    f["arrivals"] = {
        "process": "composite",
        "processes": [{"process": "periodic", "interval_s": 10, "offset_s": 5}] * 4,
    }
    sc = parse_scenario(scenario(f, duration_s=600, idle_s=0))
    targets = [Target.parse("latency_ms.p99<=5000"), Target.parse("cold_start_rate<=0")]
    result = plan(
        sc, "functions.0.provisioned_concurrency", targets, 0, 20, replications=2, workers=1
    )
    assert result.value == 4
    assert result.evaluated[3] is False and result.evaluated[4] is True
    assert len(result.evaluated) <= 2 + math.ceil(math.log2(21))
    none = plan(sc, "functions.0.provisioned_concurrency", targets, 0, 3, replications=2, workers=1)
    assert none.value is None and "no value" in none.notes[0]


def test_targets_and_grids_parse():
    assert Target.parse("latency_ms.p99 <= 300") == Target("latency_ms.p99", "<=", 300.0)
    assert parse_grid(["a.b=1,2.5,null", "c=x"]) == {"a.b": [1, 2.5, None], "c": ["x"]}
    from coldsim import ScenarioError

    with pytest.raises(ScenarioError):
        Target.parse("p99 about 300")
    with pytest.raises(ScenarioError):
        parse_grid(["novalues="])


def test_pareto_and_wilson():
    cost = np.array([1.0, 2.0, 3.0, 2.5])
    p99 = np.array([9.0, 5.0, 1.0, 6.0])
    assert pareto(cost, p99).tolist() == [True, True, True, False]
    lo, hi = wilson(5, 100)
    assert lo < 0.05 < hi and lo > 0 and hi < 0.12


def test_compare_runs_and_a_sweep(tmp_path):
    from coldsim import simulate

    a = simulate(known_cold(duration_s=5000))
    b = simulate(known_cold(duration_s=5000).updated({"platform.keep_alive.idle_s": 600}))
    table = compare([a, b], tmp_path / "cmp")
    assert len(table) == 2 and table["cold_start_rate"].iloc[1] < table["cold_start_rate"].iloc[0]
    for stem in (
        "latency_cdf",
        "cold_start_rate",
        "cost_vs_p99",
        "instances_over_time",
        "cold_starts_over_time",
    ):
        assert (tmp_path / "cmp" / f"{stem}.png").is_file() and (
            tmp_path / "cmp" / f"{stem}.svg"
        ).is_file()
    sweep(known_cold(duration_s=5000), {"platform.keep_alive.idle_s": [30, 60], "functions.0.memory_mb": [128, 256]},
          2, workers=1, out=tmp_path / "sw")  # fmt: skip
    compare([tmp_path / "sw"], tmp_path / "cmp2")
    assert (tmp_path / "cmp2" / "heatmap_cold_start_rate.png").is_file()
    assert (tmp_path / "cmp2" / "cold_start_rate_vs_knob.svg").is_file()


def test_sweep_block_in_the_scenario_and_the_cli(tmp_path):
    from coldsim.cli import app
    from typer.testing import CliRunner

    text = (
        (ROOT / "scenarios" / "default.yaml")
        .read_text()
        .replace("duration_s: 3600", "duration_s: 900")
    )
    text += "sweep:\n  grid: {platform.keep_alive.idle_s: [20, 600]}\n  replications: 2\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", str(path), "--workers", "1", "--out", str(tmp_path / "sw")])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(tmp_path / "sw" / "sweep.parquet")
    assert (
        table["platform.keep_alive.idle_s"].tolist() == [20, 600]
        and (table["replications"] == 2).all()
    )
    res = runner.invoke(
        app,
        ["sweep", str(path), "--grid", "functions.0.memory_mb=64", "--out", str(tmp_path / "bad")],
    )
    assert res.exit_code == 2 and "functions.0.memory_mb=64" in res.output and "128" in res.output
    res = runner.invoke(app, ["plan", str(path), "--knob", "functions.0.provisioned_concurrency",
                              "--target", "p99 about 3", "--range", "0:3"])  # fmt: skip
    assert res.exit_code == 2 and "expected metric<=number" in res.output
    res = runner.invoke(app, ["plan", str(path), "--knob", "functions.0.provisioned_concurrency",
                              "--target", "cold_start_rate<=0.5", "--range", "0:3", "--replications", "2",
                              "--workers", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert '"value": 0' in res.output and "cost_usd.total" in res.output


def test_plan_takes_the_low_end_when_it_passes_and_notes_non_monotone_knobs(monkeypatch):
    import importlib

    plan_module = importlib.import_module("coldsim.studies.plan")

    def fake_sweep(scenario, grid, replications, workers=None, memory_check=True):
        (value,) = next(iter(grid.values()))
        rate = 0.0 if value in (0, 1) else 0.5  # passes at the low end only
        row = {
            "cold_start_rate_mean": rate,
            "cold_start_rate_ci_low": rate,
            "cold_start_rate_ci_high": rate,
        }
        return type("R", (), {"table": pd.DataFrame([row])})()

    monkeypatch.setattr(plan_module, "sweep", fake_sweep)
    p = plan_module.plan(known_cold(), "k", [Target.parse("cold_start_rate<=0.1")], 0, 10)
    assert p.value == 0 and "not monotone" in p.notes[0]


def test_compare_never_replaces_a_folder_it_does_not_own(tmp_path):
    from coldsim import ScenarioError, simulate
    from coldsim.reporting.output import OutputDirError

    run = tmp_path / "run"
    simulate(known_cold(duration_s=5000)).save(run)
    with pytest.raises((ScenarioError, OutputDirError)):
        compare([run], run)
    assert (run / "summary.json").is_file()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep")
    with pytest.raises(OutputDirError):
        compare([run], precious)
    assert (precious / "notes.txt").read_text() == "keep"
    with pytest.raises(ScenarioError, match="not a run"):
        compare([precious], tmp_path / "cmp")
    compare([run], tmp_path / "cmp")
    compare([run], tmp_path / "cmp")  # an earlier comparison is replaced


def test_compare_a_sweep_over_a_string_knob(tmp_path):
    sweep(
        known_cold(duration_s=3000),
        {"platform.idle_selection": ["newest", "lru"]},
        2,
        workers=1,
        out=tmp_path / "sw",
    )
    table = compare([tmp_path / "sw"], tmp_path / "cmp")
    assert table["platform.idle_selection"].tolist() == ["newest", "lru"]
    assert (tmp_path / "cmp" / "cold_start_rate_vs_knob.png").is_file()


def test_changed_trace_files_are_not_answered_from_the_store(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("timestamp_s\n1\n2\n3\n")
    data = scenario(
        function(arrivals={"process": "csv", "path": str(log)}, duration=const(5)), duration_s=100
    )
    base = parse_scenario(data)
    first = sweep(
        base, {"platform.keep_alive.idle_s": [10]}, 1, workers=1, out=tmp_path / "sw"
    ).table
    log.write_text("timestamp_s\n" + "".join(f"{t}\n" for t in range(1, 50)))
    second = sweep(
        base, {"platform.keep_alive.idle_s": [10]}, 1, workers=1, out=tmp_path / "sw"
    ).table
    assert (first["invocations_mean"].iloc[0], second["invocations_mean"].iloc[0]) == (3, 49)


def test_ctrl_c_stops_a_sweep_at_once_and_keeps_finished_runs(tmp_path):
    path = tmp_path / "s.yaml"
    # Runs long enough (about a second each) that the sweep is still under way at Ctrl-C.
    path.write_text((ROOT / "scenarios" / "default.yaml").read_text().replace(
        "duration_s: 3600", "duration_s: 400000"))  # fmt: skip
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "coldsim", "sweep", str(path), "--grid",
           "platform.keep_alive.idle_s=10,20,40,80,160,320", "--replications", "6", "--workers", "2",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = out / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and (not runs.is_dir() or len(list(runs.glob("*.json"))) < 2):
        time.sleep(0.05)
    kept = len(list(runs.glob("*.json")))
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 8, "Ctrl-C must stop the sweep at once"
    assert proc.returncode == 130, err
    assert "finished runs are kept" in err and "Traceback" not in err, err
    assert 2 <= kept <= len(list(runs.glob("*.json"))) < 36


def test_pareto_within_confidence_intervals_and_readable_values():
    from coldsim.studies.compare import knob_label, pareto_ci, value_text

    x = np.array([1.0, 2.0, 3.0])
    y = np.array([3.0, 2.9, 1.0])
    # Point 1 is worse than point 2 on neither axis beyond the CIs: it stays.
    assert pareto_ci(x, x - 0.2, x + 0.2, y, y - 0.5, y + 0.5).tolist() == [True, True, True]
    # Clearly beaten (both axes, CIs apart): dropped.
    assert pareto_ci([1, 5], [0.9, 4.9], [1.1, 5.1], [1, 5], [0.9, 4.9], [1.1, 5.1]).tolist() == [True, False]
    assert [value_text(v) for v in (5.0, 0.25, "lru", {"policy": "fixed", "idle_s": 60.0})] == [
        "5", "0.25", "lru", "{policy: fixed, idle_s: 60}"]
    assert knob_label("functions.0.provisioned_concurrency") == "provisioned_concurrency"
    assert knob_label("platform.keep_alive.idle_s") == "keep_alive.idle_s"


def test_compare_warns_when_spans_differ(tmp_path):
    from coldsim import compare

    base = load_scenario(ROOT / "scenarios" / "default.yaml")
    short = simulate(base.updated({"duration_s": 1200, "warmup_s": 0}))
    long = simulate(base.updated({"duration_s": 2400, "warmup_s": 0}))
    with pytest.warns(UserWarning, match="different spans"):
        table = compare([short, long], tmp_path / "c")
    assert table["cost_usd.total_per_hour"].notna().all()
