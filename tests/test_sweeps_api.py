"""Sweeps and the Python API (issue 18 §4): progress from the first run, each run's wall time,
grids of plug-in classes and readable labels, overrides before validation, text printed as
written (no emoji codes, no markup), and the time spent inside users' plug-ins."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow.parquet as pq
import pytest
import userpolicies
from coldsim import KeepAlivePolicy, ScenarioError, load_scenario, parse_scenario, simulate, sweep
from coldsim.cli.common import _Count, _progress
from coldsim.cli.main import app
from coldsim.policies import timing
from coldsim.studies.sweep import knob_text, knob_values, replication_seeds
from conftest import ROOT, const, function, scenario
from typer.testing import CliRunner

DEFAULT = ROOT / "scenarios" / "default.yaml"


def small(duration_s=2000.0, seed=3, **platform):
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.5}, duration=const(20))
    data = scenario(f, duration_s=duration_s, seed=seed, idle_s=60)
    data["platform"].update(platform)
    return parse_scenario(data)


# -- progress -------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sweep_reports_progress_before_its_first_run_ends(workers):
    """progress(done, total, under_way=...) as the runs under way advance: the first report
    that a run moved comes before any run has ended, in this process and from worker
    processes; the runs' results do not depend on it."""
    seen = []

    def show(done, total, under_way):
        seen.append((done, total, under_way))

    grid = {"platform.keep_alive.idle_s": [30, 120]}
    res = sweep(small(), grid, 2, workers=workers, progress=show)
    first_end = next(i for i, (done, _, _) in enumerate(seen) if done >= 1)
    moving = [u for done, _, u in seen[:first_end] if done == 0 and u > 0]
    assert moving, seen[: first_end + 1]
    assert all(total == 4 for _, total, _ in seen) and seen[-1] == (4, 4, 0.0)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    if workers == 1:  # one run at a time: its fraction of simulated time, 1% steps to 100%
        assert all(0 <= u <= 1 for _, _, u in seen) and 0 < moving[0] < 1
    quiet = sweep(small(), grid, 2, workers=workers)
    pd.testing.assert_frame_equal(res.table, quiet.table)


def test_a_two_argument_progress_is_called_as_runs_end():
    seen = []
    sweep(small(), {"platform.keep_alive.idle_s": [30]}, 3, workers=1,
          progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_the_progress_bar_counts_whole_runs_while_runs_are_under_way():
    with _progress("sweep", "runs") as bar:
        task_id = bar.add_task("sweep", total=8)
        bar.update(task_id, completed=0.6)  # no run ended, the first 60% through
        assert str(_Count("runs").render(bar.tasks[0])) == "0/8 runs"
        bar.update(task_id, completed=2.97)
        assert str(_Count("runs").render(bar.tasks[0])) == "2/8 runs"


# -- runs.parquet: wall time ----------------------------------------------------------------


def test_runs_parquet_keeps_each_runs_wall_time_and_a_resumed_sweep_keeps_it(tmp_path):
    grid = {"platform.keep_alive.idle_s": [30, 120]}
    res = sweep(small(), grid, 2, workers=1, out=tmp_path / "sw")
    runs = pd.read_parquet(tmp_path / "sw" / "runs.parquet")
    assert (runs["wall_s"] > 0).all() and len(runs) == 4
    assert "plugin_time_s" not in runs  # built-ins only
    # A machine's measure, not a metric: not summarised per point.
    assert not any(c.startswith("wall_s") for c in res.table.columns)
    stored = {json.loads(p.read_text())["seed"]: json.loads(p.read_text())["wall_s"]
              for p in (tmp_path / "sw" / "runs").glob("*.json")}  # fmt: skip
    assert set(stored) == set(runs["seed"]) and all(w > 0 for w in stored.values())
    again = sweep(small(), grid, 2, workers=1, out=tmp_path / "sw")  # all from the store
    pd.testing.assert_series_equal(again.runs["wall_s"], runs["wall_s"])


# -- grids of plug-in classes, readable labels ----------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_grid_of_policy_classes_runs_and_is_labelled_by_class_name(tmp_path, workers):
    """As docs/policies.md says: a class may stand for its import path. It runs (in worker
    processes too), is recorded by its import path and labelled by its name."""
    cls = userpolicies.TwiceLastGap
    grid = {"platform.keep_alive": [{"policy": cls, "factor": 0.1}, {"policy": "fixed", "idle_s": 60}]}
    res = sweep(small(), grid, 2, workers=workers, out=tmp_path / "sw")
    runs = pd.read_parquet(tmp_path / "sw" / "runs.parquet")
    assert list(runs["platform.keep_alive"]) == ["TwiceLastGap(factor=0.1)"] * 2 + ["fixed(idle_s=60)"] * 2
    assert knob_values(tmp_path / "sw" / "runs.parquet") == {"platform.keep_alive": {
        "TwiceLastGap(factor=0.1)": {"policy": "userpolicies:TwiceLastGap", "factor": 0.1},
        "fixed(idle_s=60)": {"policy": "fixed", "idle_s": 60},
    }}  # fmt: skip
    table = pd.read_parquet(tmp_path / "sw" / "sweep.parquet")
    assert list(table["platform.keep_alive"]) == ["TwiceLastGap(factor=0.1)", "fixed(idle_s=60)"]
    points = {json.dumps(json.loads(p.read_text())["point"], sort_keys=True)
              for p in (tmp_path / "sw" / "runs").glob("*.json")}  # fmt: skip
    assert json.dumps({"platform.keep_alive": {"policy": "userpolicies:TwiceLastGap",
                                               "factor": 0.1}}, sort_keys=True) in points  # fmt: skip
    # The user's policy is timed, per run; the built-in's runs are not.
    assert (runs["plugin_time_s"][:2] > 0).all() and runs["plugin_time_s"][2:].isna().all()
    # The class and its import path are the same policy: the same runs.
    by_name = sweep(small(), {"platform.keep_alive": [
        {"policy": "userpolicies:TwiceLastGap", "factor": 0.1}]}, 2, workers=1).runs
    assert list(by_name["cold_starts"]) == list(res.runs["cold_starts"][:2])
    assert res.runs["cold_starts"][0] != res.runs["cold_starts"][2]  # and they differ from fixed


def test_a_bare_class_as_a_knob_value():
    res = sweep(small(), {"platform.keep_alive.policy": [userpolicies.TwiceLastGap, "fixed"]},
                1, workers=1)  # fmt: skip
    assert len(res.runs) == 2 and res.runs["invocations"].nunique() == 1


def test_knob_labels_are_readable():
    cases = [
        (60, "60"), (60.0, "60"), (0.25, "0.25"), (math.inf, "inf"), ("lru", "lru"),
        (None, "null"), (True, "true"),
        ({"policy": "fixed", "idle_s": 600}, "fixed(idle_s=600)"),
        ({"policy": "random"}, "random"),
        ({"policy": "random", "idle_s": {"dist": "uniform", "low_s": 300, "high_s": 420}},
         "random(idle_s=uniform(low_s=300, high_s=420))"),
        ({"dist": "lognormal", "median_ms": 250, "sigma": 0.4}, "lognormal(median_ms=250, sigma=0.4)"),
        ({"policy": "mypolicies:GapPercentile", "q": 95}, "GapPercentile(q=95)"),
        ({"policy": userpolicies.TwiceLastGap}, "TwiceLastGap"),
        (userpolicies.TwiceLastGap, "TwiceLastGap"),
        ({"after_restore_ms": 0}, "{after_restore_ms: 0}"),
        ([1, {"dist": "constant", "value_ms": 5}], "[1, constant(value_ms=5)]"),
    ]  # fmt: skip
    assert [knob_text(value) for value, _ in cases] == [label for _, label in cases]


def test_mapping_knobs_in_files_and_on_the_command_line(tmp_path):
    """Labels in both tables and the CSV, nulls as null; two values that would share a label
    are written as JSON; the printed table shows labels."""
    base = small()
    runs = sweep(base, {
        "platform.max_lifetime_s": [None, 7200, {"dist": "constant", "value_s": 3600}],
    }, 1, workers=1, out=tmp_path / "a").runs  # fmt: skip
    assert len(runs) == 3
    table = pd.read_parquet(tmp_path / "a" / "sweep.parquet")
    assert list(table["platform.max_lifetime_s"]) == [None, "7200", "constant(value_s=3600)"]
    csv = pd.read_csv(tmp_path / "a" / "sweep.csv", keep_default_na=False)
    assert list(csv["platform.max_lifetime_s"]) == ["null", "7200", "constant(value_s=3600)"]
    # Numbers with a null: numbers in Parquet, `null` in the CSV.
    sweep(base, {"platform.max_lifetime_s": [None, 7200]}, 1, workers=1, out=tmp_path / "b")
    assert pq.read_schema(tmp_path / "b" / "sweep.parquet").field(
        "platform.max_lifetime_s").type in ("double", "int64")  # fmt: skip
    csv = pd.read_csv(tmp_path / "b" / "sweep.csv", keep_default_na=False)
    assert list(csv["platform.max_lifetime_s"]) == ["null", "7200"]
    # 1e-7 and 1.0000001e-7 differ but %g would print both alike: labels stay distinct.
    sweep(base, {"platform.keep_alive": [{"policy": "fixed", "idle_s": 60.0000001},
                                         {"policy": "fixed", "idle_s": 60.0000002}]},
          1, workers=1, out=tmp_path / "c")  # fmt: skip
    labels = list(pd.read_parquet(tmp_path / "c" / "sweep.parquet")["platform.keep_alive"])
    assert len(set(labels)) == 2
    path = tmp_path / "s.yaml"
    path.write_text(DEFAULT.read_text())
    res = CliRunner().invoke(app, [
        "sweep", str(path), "--set", "duration_s=400", "--set", "warmup_s=0", "--workers", "1",
        "--replications", "1", "--out", str(tmp_path / "cli"),
        "--grid", "platform.keep_alive={policy: fixed, idle_s: 60},{policy: random}",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "fixed(idle_s=60)" in res.output and "random" in res.output
    assert "{'policy'" not in res.output


def test_sweep_seeds_are_documented_and_prefix_stable():
    seeds = replication_seeds(7, 5)
    assert replication_seeds(7, 3) == seeds[:3]  # more replications keep the first seeds
    import numpy as np

    assert seeds[2] == int(np.random.SeedSequence(7).spawn(5)[2].generate_state(1)[0])
    text = (ROOT / "docs" / "outputs.md").read_text()
    assert "SeedSequence" in text and "replication_seeds" in text


# -- load_scenario's overrides ---------------------------------------------------------------


def test_load_scenario_applies_overrides_before_validation():
    """default.yaml has warmup_s 300: a 200 s run needs a smaller warm-up, set together."""
    with pytest.raises(ScenarioError, match="warmup_s"):
        load_scenario(DEFAULT).updated({"duration_s": 200})  # one at a time: invalid between
    for sc in (
        load_scenario(DEFAULT, duration_s=200, warmup_s=20),
        load_scenario(DEFAULT, {"duration_s": 200, "warmup_s": 20}),
        load_scenario(DEFAULT, ["duration_s=200", "warmup_s=20"]),
        load_scenario(DEFAULT, "warmup_s=20", duration_s=200),
    ):
        assert (sc.duration_s, sc.warmup_s) == (200, 20)
    sc = load_scenario(DEFAULT, **{"platform.keep_alive.idle_s": 45, "seed": 9})
    assert sc.platform.keep_alive.idle_s == 45 and sc.seed == 9
    with pytest.raises(ScenarioError) as err:
        load_scenario(DEFAULT, {"functions.3.name": "x"})
    assert err.value.field == "functions.3.name" and "not an index" in err.value.message
    with pytest.raises(ScenarioError, match="warmup_s"):
        load_scenario(DEFAULT, duration_s=200)  # the file's 300 s warm-up stays: refused
    with pytest.raises(ScenarioError) as err:  # a bad value given in Python: not the file's
        load_scenario(DEFAULT, warmup_s="abc")
    assert err.value.file == "override warmup_s" and err.value.field == "warmup_s"


# -- text printed as written ----------------------------------------------------------------


def test_user_text_is_printed_as_written_never_as_emoji(tmp_path):
    (tmp_path / "badpolicies.py").write_text(
        "from coldsim import KeepAlivePolicy\n\n\n"
        "class Boom(KeepAlivePolicy):\n"
        "    def keep_alive_s(self, end_s, instance_id):\n"
        "        raise ValueError('a :boom: [bold]x[/bold]')\n"
    )  # fmt: skip
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(5)),
                    duration_s=50)  # fmt: skip
    data["platform"]["keep_alive"] = {"policy": "badpolicies:Boom"}
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["run", str(path), "--allow-import", "--out",
                                   str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2
    assert "keep-alive policy badpolicies:Boom: keep_alive_s raised" in res.output
    assert "a :boom: [bold]x[/bold]" in res.output and "\N{COLLISION SYMBOL}" not in res.output


def test_run_names_and_knob_labels_in_tables_are_not_markup():
    from coldsim.cli.common import out_console
    from coldsim.cli.main import _compare_table

    table = pd.DataFrame({"k": ["[bold]a[/bold]", ":boom:"], "cold_start_rate_mean": [0.1, 0.2],
                          "cold_start_rate_ci_low": [0.0, 0.1], "cold_start_rate_ci_high": [0.2, 0.3],
                          "replications": [2, 2]})  # fmt: skip
    with out_console.capture() as captured:
        out_console.print(_compare_table(table, ["cold_start_rate"]))
    text = captured.get()
    assert "[bold]a[/bold]" in text and ":boom:" in text


# -- time spent in users' plug-ins ----------------------------------------------------------


class LooksEvery100s(KeepAlivePolicy):
    """Keeps instances 60 s, and through its context looks at the platform every 100 s."""

    def start(self, function, rng, ctx):
        self._ctx = ctx
        ctx.call_at(0.0, self._look)

    def _look(self, now):
        self._ctx.instances(0)
        if now + 100.0 < 1000.0:
            self._ctx.call_at(now + 100.0, self._look)

    def keep_alive_s(self, end_s, instance_id):
        return 60.0


def test_a_run_reports_the_calls_and_time_of_users_plugins_and_not_of_built_ins():
    """Hand-counted: one one-request function, no provisioned instances. Every request is
    placed (observe) after a look for an idle instance (take), and its instance then goes
    idle (keep_alive_s, put); each copy starts once."""
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.5}, duration=const(20))
    data = scenario(f, duration_s=1000)
    data["platform"]["keep_alive"] = {"policy": userpolicies.TwiceLastGap}
    data["platform"]["idle_selection"] = userpolicies.OldestFirst
    res = simulate(parse_scenario(data))
    n = res.summary["invocations"]
    plugins = res.summary["plugins"]
    counts = {name: {h: v["calls"] for h, v in p["hooks"].items()} for name, p in plugins.items()}
    assert counts == {
        "userpolicies:OldestFirst": {"start": 1, "put": n, "take": n},
        "userpolicies:TwiceLastGap": {"start": 1, "observe": n, "keep_alive_s": n},
    }
    for p in plugins.values():
        assert p["calls"] == sum(h["calls"] for h in p["hooks"].values())
        assert p["time_s"] == pytest.approx(sum(h["time_s"] for h in p["hooks"].values()))
        assert 0 < p["time_s"] < res.summary["wall_s"]
    # A sharded run adds up its shards' calls.
    two = parse_scenario({**data, "functions": [{**f, "name": "a"}, {**f, "name": "b"}]})
    one_process, sharded = simulate(two), simulate(two, workers=2)
    calls = [{k: p["calls"] for k, p in r.summary["plugins"].items()}
             for r in (one_process, sharded)]  # fmt: skip
    assert calls[0] == calls[1]
    # Built-ins only: no entry at all.
    assert "plugins" not in simulate(small()).summary


def test_timers_a_user_policy_sets_are_its_time():
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 0.1},
                             duration=const(20)), duration_s=1000)  # fmt: skip
    data["platform"]["keep_alive"] = {"policy": LooksEvery100s}
    hooks = simulate(parse_scenario(data)).summary["plugins"][LooksEvery100s.import_path()]["hooks"]
    assert hooks["call_at callback"]["calls"] == 10  # at 0, 100, ..., 900 s
    assert hooks["start"]["calls"] == 1


def test_the_time_is_exclusive_and_counted_only_on_a_current_clock(monkeypatch):
    """On a hand-stepped clock: a hook that calls another is charged its own time only."""
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])

    def advance(seconds):
        now[0] += seconds

    plain = lambda: advance(1.0)  # noqa: E731
    assert timing.timed("m:A", "observe", plain) is plain  # no engine running: as it is
    clock = timing.PluginClock()
    with timing.timing(clock):
        inner = timing.timed("m:A", "observe", lambda: advance(2.0))
        outer = timing.timed("m:B", "tick", lambda: (advance(1.0), inner(), advance(3.0)))
    outer()
    outer()
    inner()
    report = clock.report()
    assert report["m:B"] == {"calls": 2, "time_s": 8.0, "hooks": {"tick": {"calls": 2,
                                                                           "time_s": 8.0}}}
    assert report["m:A"]["calls"] == 3 and report["m:A"]["time_s"] == 6.0
    assert timing.merged([report, report])["m:A"] == {
        "calls": 6, "time_s": 12.0, "hooks": {"observe": {"calls": 6, "time_s": 12.0}}}


def test_the_printed_summary_names_the_time_in_plugins(tmp_path):
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1},
                             duration=const(5)), duration_s=200)  # fmt: skip
    data["platform"]["keep_alive"] = {"policy": "userpolicies:TwiceLastGap"}
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("plug-in "))
    assert line.startswith("plug-in userpolicies:TwiceLastGap: ") and " calls (" in line
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["plugins"]["userpolicies:TwiceLastGap"]["calls"] > 0
