"""Policies as plug-ins: resolution by name or import path, the opt-in for imports, errors,
the keep-alive interface's contract, pre-warming stepped by hand, and the same results from
the CLI, a process pool and Dask."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import userpolicies
import yaml
from coldsim import KeepAlivePolicy, PolicyError, ScenarioError, parse_scenario, simulate, sweep
from coldsim.cli import app
from conftest import ROOT, const, function, run, scenario
from typer.testing import CliRunner

HERE = Path(__file__).parent


def trace_fn(write_trace, times, *, init_ms=2000, duration_ms=1000):
    f = function(arrivals={"process": "trace", "path": str(write_trace(times))},
                 init=const(init_ms), duration=const(duration_ms))  # fmt: skip
    return f


def with_policy(data, keep_alive=None, selection=None):
    if keep_alive is not None:
        data["platform"]["keep_alive"] = keep_alive
    if selection is not None:
        data["platform"]["idle_selection"] = selection
    return data


PREWARM = {"policy": "userpolicies:PrewarmAfter", "after_s": 10, "keep_s": 5}


# --- pre-warming, stepped by hand ----------------------------------------------------------
# r0 arrives at 0: cold (init 2 s), runs 2-3 s. At 3 the instance goes idle; the policy unloads
# it (window 0) and asks for an instance ready at 13: its 2 s init runs 11-13, then it is kept
# until 18. The second request arrives before, during, at or after that init.


@pytest.mark.parametrize(
    ("second", "cold", "latency_ms", "init_ms", "created_s"),
    [
        (5.0, True, 3000.0, 2000.0, 5.0),  # before its init began: the init starts now
        (12.5, True, 1500.0, 500.0, 11.0),  # during its init: waits for the remaining 0.5 s
        (13.0, False, 1000.0, 0.0, 11.0),  # ready exactly then: a warm start
        (15.0, False, 1000.0, 0.0, 11.0),  # after: warm
        (18.0, True, 3000.0, 2000.0, 18.0),  # its window ended at 18: a new cold instance
    ],
)
def test_prewarmed_instance_before_during_and_after_its_init(
    write_trace, second, cold, latency_ms, init_ms, created_s
):
    data = with_policy(scenario(trace_fn(write_trace, [0.0, second]), duration_s=100), PREWARM)
    res = run(data)
    inv, inst = res.invocations, res.instances
    assert inv["cold"].tolist() == [True, cold]
    assert inv["latency_ms"].tolist() == [3000.0, latency_ms]
    assert inv["init_ms"].tolist() == [2000.0, init_ms]
    second_instance = inv["instance_id"].iloc[1]
    assert second_instance == (2 if second == 18.0 else 1)
    assert inst.loc[1, "prewarmed"] and not inst.loc[0, "prewarmed"]
    assert inst.loc[0, "ended_s"] == 3.0  # unloaded the moment it went idle
    if second != 18.0:
        assert inst.loc[second_instance, "created_s"] == created_s
    else:
        assert (inst.loc[1, "created_s"], inst.loc[1, "ended_s"]) == (11.0, 18.0)
        assert inst.loc[1, "invocations"] == 0
    assert (inst["end_reason"] == "idle").all()
    # Every served request ended once; each instance served one at a time.
    assert inv["status"].eq("served").all()


def test_untaken_prewarm_is_idle_time_and_its_init_is_billed(write_trace):
    data = with_policy(scenario(trace_fn(write_trace, [0.0]), duration_s=100), PREWARM)
    data["functions"][0]["memory_mb"] = 1024
    res = run(data)
    s = res.summary
    # Instance 0: busy 0-3 (init + run). Instance 1: init 11-13 (busy), idle 13-18.
    assert s["busy_gb_s"] == pytest.approx(3.0 + 2.0)
    assert s["idle_gb_s"] == pytest.approx(5.0)
    price = 0.0000166667  # x86 per GB-s, 1 GB
    assert s["cost_usd"]["init"] == pytest.approx((2000 + 2000) / 1000 * price)


# --- the keep-alive interface's contract ---------------------------------------------------


def test_window_zero_evicts_at_once_and_infinity_never(write_trace):
    f = trace_fn(write_trace, [0.0, 1.0, 500.0], init_ms=0, duration_ms=0)
    zero = run(with_policy(scenario(f), {"policy": "userpolicies:Window", "window_s": 0}))
    assert zero.invocations["cold"].tolist() == [True, True, True]
    assert zero.instances["ended_s"].tolist() == [0.0, 1.0, 500.0]
    forever = run(with_policy(scenario(f), {"policy": "userpolicies:Window", "window_s": math.inf}))
    assert forever.invocations["cold"].tolist() == [True, False, False]
    assert forever.instances["end_reason"].tolist() == ["alive"]


def test_a_negative_window_is_a_clear_error(write_trace):
    f = trace_fn(write_trace, [0.0], init_ms=0, duration_ms=0)
    with pytest.raises(PolicyError, match=r"userpolicies:Window returned -1.0 .* >= 0"):
        run(with_policy(scenario(f), {"policy": "userpolicies:Window", "window_s": -1}))


def test_observe_sees_every_request_and_adapts_the_window(write_trace):
    # Before it has seen a gap TwiceLastGap keeps 2 x floor_s = 20 s, so the request at 100 s
    # is cold; from then on it has seen gaps of 100 s and keeps 200 s: the rest are warm. The
    # fixed 60 s window makes every one cold.
    f = trace_fn(write_trace, [0.0, 100.0, 200.0, 300.0], init_ms=0, duration_ms=0)
    adaptive = run(with_policy(scenario(f), {"policy": "userpolicies:TwiceLastGap"}))
    fixed = run(scenario(f, idle_s=60))
    assert adaptive.invocations["cold"].tolist() == [True, True, False, False]
    assert fixed.summary["cold_starts"] == 4


def test_user_selection_and_arrival_process():
    f = function(arrivals={"process": "userpolicies:Ticks", "interval_s": 0.5}, duration=const(1200))
    res = run(with_policy(scenario(f, duration_s=10), selection="userpolicies:OldestFirst"))
    assert len(res.invocations) == 20
    # 1.2 s executions every 0.5 s need 3 instances; the oldest idle one always serves next.
    assert res.summary["instances_created"] == 3
    assert res.invocations["instance_id"].tolist()[:6] == [0, 1, 2, 0, 1, 2]


# --- resolution, opt-in and errors --------------------------------------------------------


def test_builtins_and_classes_given_directly():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    sc = parse_scenario(with_policy(scenario(f), {"policy": userpolicies.TwiceLastGap, "factor": 3}))
    assert sc.platform.keep_alive.policy == "userpolicies:TwiceLastGap"
    assert sc.to_dict()["platform"]["keep_alive"] == {
        "policy": "userpolicies:TwiceLastGap", "scope": None, "factor": 3.0, "floor_s": 10.0
    }
    assert sc.updated({"platform.keep_alive.factor": 4}).platform.keep_alive.factor == 4.0
    assert isinstance(sc.platform.keep_alive, KeepAlivePolicy)


@pytest.mark.parametrize(
    ("keep_alive", "message"),
    [
        ({"policy": "userpolicies:TwiceLastGap", "factor": -1},
         "platform.keep_alive.factor: Input should be greater than 0"),
        ({"policy": "userpolicies:TwiceLastGap", "factr": 2},
         "platform.keep_alive.factr: unknown field (allowed here: policy, scope, factor, floor_s)"),
        ({"policy": "userpolicies:NotAPolicy"},
         "platform.keep_alive.policy: 'userpolicies:NotAPolicy' is not a keep-alive policy"),
        ({"policy": "userpolicies:Ticks"}, "is not a keep-alive policy"),
        ({"policy": "userpolicies:Nope"}, "module 'userpolicies' has no 'Nope'"),
        ({"policy": "fixd"}, "unknown policy 'fixd' (allowed: 'fixed', 'random', 'hybrid-histogram', 'load', or a plug-in"),
        ({"idle_s": 5}, "platform.keep_alive.policy: required field is missing (one of: 'fixed'"),
        ({"policy": "not_imported_anywhere:X"}, "which is not imported; coldsim imports code"),
    ],
)  # fmt: skip
def test_errors_name_the_field(keep_alive, message):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    with pytest.raises(ScenarioError) as err:
        parse_scenario(with_policy(scenario(f), keep_alive), file="s.yaml")
    assert f"s.yaml: {message}" in str(err.value) or message in str(err.value)


def _write_user_scenario(folder: Path, module_text: str | None = None) -> Path:
    """A scenario in its own folder naming `myka:TwiceLastGap`, with myka.py beside it."""
    if module_text is None:
        module_text = (HERE / "userpolicies.py").read_text()
    (folder / "myka.py").write_text(module_text)
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.05},
                 duration=const(50), init=const(300))  # fmt: skip
    data = with_policy(scenario(f, duration_s=20000, seed=4), {"policy": "myka:TwiceLastGap"})
    data["sweep"] = {"grid": {"platform.keep_alive.factor": [1.5, 3]}, "replications": 2}
    path = folder / "user.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_imports_need_the_opt_in_and_report_failures(tmp_path):
    path = _write_user_scenario(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2
    assert "platform.keep_alive.policy" in res.output and "--allow-import" in res.output
    assert "myka" not in sys.modules
    broken = tmp_path / "broken"
    broken.mkdir()
    path = _write_user_scenario(broken, "raise RuntimeError('half-written module')\n")
    res = runner.invoke(app, ["validate", "--allow-import", str(path)])
    assert res.exit_code == 2
    assert "importing 'myka' failed: RuntimeError: half-written module" in res.output


def test_a_users_policy_gives_identical_results_in_cli_process_pool_and_dask(tmp_path):
    """The class lives beside the scenario (not on the path of this process): the CLI imports
    it with --allow-import; a 2-worker sweep and a Dask cluster resolve it the same way."""
    distributed = pytest.importorskip("distributed")
    path = _write_user_scenario(tmp_path)
    cli = [sys.executable, "-m", "coldsim"]
    proc = subprocess.run([*cli, "sweep", "--allow-import", str(path), "--workers", "2",
                           "--out", str(tmp_path / "sw")],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pooled = pd.read_parquet(tmp_path / "sw" / "runs.parquet")
    first = pooled[(pooled["platform.keep_alive.factor"] == 1.5) & (pooled["replication"] == 0)]
    out = tmp_path / "out"
    proc = subprocess.run([*cli, "run", "--allow-import", "-q", str(path), "--out", str(out),
                           "--set", "platform.keep_alive.factor=1.5",
                           "--seed", str(first["seed"].item())],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    by_cli = json.loads((out / "summary.json").read_text())
    assert first["cold_starts"].item() == by_cli["cold_starts"]
    assert first["latency_ms.p99"].item() == by_cli["latency_ms"]["p99"]
    # In this process: import by the opt-in, then a Dask cluster (its workers resolve it too).
    from coldsim import load_scenario

    sc = load_scenario(path, allow_import=True)
    serial = sweep(sc, workers=1).table
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        on_dask = sweep(sc, dask=client).table
    pd.testing.assert_frame_equal(serial, on_dask)
    table = pd.read_parquet(tmp_path / "sw" / "sweep.parquet")
    pd.testing.assert_series_equal(
        table["cold_starts_mean"].reset_index(drop=True),
        serial["cold_starts_mean"].reset_index(drop=True),
    )


# --- the package is coldsim --------------------------------------------------------------


def test_the_wheel_installs_coldsim_only_and_ignores_a_users_simulator_py(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "simulator", src / "simulator",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)],
                   check=True, capture_output=True, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("coldsim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"coldsim", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    modules = {f"coldsim/{p.relative_to(ROOT / 'simulator').as_posix()}"
               for p in (ROOT / "simulator").rglob("*.py")}  # fmt: skip
    assert modules <= set(names), f"not in the wheel: {sorted(modules - set(names))}"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)  # fmt: skip
    assert (target / "coldsim" / "engine" / "core.py").is_file() and not (target / "simulator").exists()
    user = tmp_path / "project"
    user.mkdir()
    (user / "simulator.py").write_text("raise ImportError('the user\\'s own simulator.py')\n")
    code = ("import coldsim, sys; r = coldsim.simulate({'name': 'x', 'duration_s': 60, "
            "'functions': [{'name': 'f', 'duration': {'dist': 'constant', 'value_ms': 5}, "
            "'arrivals': {'process': 'poisson', 'rate_per_s': 2}}]}); "
            "print(coldsim.__file__, r.summary['invocations'])")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=user,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    file, count = proc.stdout.split()
    assert file.startswith(str(target)) and int(count) > 0


# --- contracts of plug-ins checked at run time ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"platform": {"idle_selection": "userpolicies:Sticky"}},
         "idle-selection policy userpolicies:Sticky: take("),
        ({"arrivals": {"process": "userpolicies:Unsorted"}}, "times must be sorted"),
        ({"arrivals": {"process": "userpolicies:Beyond"}}, "times must lie in [0, 100) s"),
        ({"platform": {"keep_alive": {"policy": "userpolicies:Crashes"}}},
         "keep-alive policy userpolicies:Crashes: keep_alive_s raised ZeroDivisionError"),
        ({"platform": {"keep_alive": {"policy": "userpolicies:BadPrewarm", "answer": 3.0}}},
         "returned 3.0 from prewarm: need None or Prewarm"),
        ({"platform": {"keep_alive": {"policy": "userpolicies:BadPrewarm", "answer": "inf"}}},
         "with a finite ready_at_s"),
    ],
)  # fmt: skip
def test_broken_plugins_stop_the_run_with_a_policy_error(change, message):
    f = function(arrivals=change.get("arrivals", {"process": "poisson", "rate_per_s": 2}),
                 duration=const(1500))  # fmt: skip
    data = scenario(f, duration_s=100)
    for key, value in change.get("platform", {}).items():
        data["platform"][key] = value
    with pytest.raises(PolicyError) as err:
        run(data)
    assert message in str(err.value)


def test_incomplete_or_base_classes_are_refused_when_loading():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    for selection, message in (("userpolicies:HalfDone", "does not define take"),
                               ("coldsim:IdleSelection", "is not an idle-selection policy")):  # fmt: skip
        with pytest.raises(ScenarioError, match=message):
            parse_scenario(with_policy(scenario(f), selection=selection))


def test_observe_tells_warmer_pings_apart():
    userpolicies.Recorder.seen.clear()
    f = function(arrivals={"process": "periodic", "interval_s": 50}, duration=const(10))
    f["warmer"] = {"interval_s": 30, "concurrency": 1, "duration_ms": 5}
    run(with_policy(scenario(f, duration_s=100), {"policy": "userpolicies:Recorder"}))
    kinds = [(inv.arrival_s, inv.kind) for inv in userpolicies.Recorder.seen]
    assert sorted(kinds) == [(0.0, "user"), (0.0, "warmer"), (30.0, "warmer"), (50.0, "user"),
                             (60.0, "warmer"), (90.0, "warmer")]  # fmt: skip


def test_a_run_that_creates_no_instance_is_reported():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    f["reserved_concurrency"] = 0
    s = run(scenario(f, duration_s=50)).summary
    assert s["served"] == 0 and s["throttled"] == s["invocations"] > 0


def test_infinite_parameters_and_local_classes_survive_variants():
    class Local(KeepAlivePolicy):  # defined in a function: its import path cannot be imported
        window_s: float

        def keep_alive_s(self, end_s, instance_id):
            return self.window_s

    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    sc = parse_scenario(with_policy(scenario(f), {"policy": Local, "window_s": math.inf}))
    assert sc.to_dict()["platform"]["keep_alive"]["window_s"] == math.inf
    again = yaml.safe_load(yaml.safe_dump(sc.to_dict()))
    assert parse_scenario(again).platform.keep_alive.window_s == math.inf
    assert simulate(sc, seed=5).summary["instances_created"] == 1
    assert sc.updated({"platform.keep_alive.window_s": 3}).platform.keep_alive.window_s == 3


def test_a_sweep_block_cannot_import_code_without_the_opt_in(tmp_path):
    (tmp_path / "evilmod.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('PWNED').write_text('x')\n"
    )
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    data = scenario(f, duration_s=10)
    data["sweep"] = {"grid": {"platform.keep_alive": [{"policy": "fixed", "idle_s": 1},
                                                      {"policy": "evilmod:X"}]},
                     "replications": 1}  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["sweep", str(path), "--workers", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "s.yaml" in res.output and "--allow-import" in res.output
    assert not (tmp_path / "PWNED").exists()


def test_a_failing_policy_in_a_sweep_names_the_grid_point(tmp_path):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    data = with_policy(scenario(f, duration_s=20), {"policy": "userpolicies:Window", "window_s": 1})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["sweep", str(path), "--workers", "1", "--replications", "1",
                                   "--grid", "platform.keep_alive.window_s=1,-1",
                                   "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "grid point platform.keep_alive.window_s=-1, replication 0" in res.output
    assert "Traceback" not in res.output


def test_a_prewarm_whose_lifetime_ends_during_its_init_is_gone_when_ready(write_trace):
    """Lifetime 3 s, inits of 0-5 s: some pre-warmed instances are due for recycling before
    they are ready. They end at their ready time (never before), and serve nothing."""
    f = trace_fn(write_trace, [0.0, 20.0, 40.0, 60.0, 80.0], duration_ms=0)
    f["init"] = {"dist": "uniform", "low_ms": 0, "high_ms": 5000}
    data = with_policy(scenario(f, duration_s=200, max_lifetime_s=3.0, seed=7),
                       {"policy": "userpolicies:PrewarmAfter", "after_s": 0, "keep_s": 5})  # fmt: skip
    inst = run(data).instances
    late = inst[inst["prewarmed"] & (inst["ready_s"] - inst["created_s"] >= 3.0)]
    assert len(late) > 0
    assert (late["ended_s"] == late["ready_s"]).all() and (late["end_reason"] == "lifetime").all()
    assert (late["invocations"] == 0).all()
    assert (inst["ended_s"] >= inst["created_s"]).all()


def test_a_grid_over_whole_policies():
    from coldsim.studies.sweep import parse_grid

    grid = parse_grid(["platform.keep_alive={policy: fixed, idle_s: 0},"
                       "{policy: 'userpolicies:Window', window_s: .inf}"])  # fmt: skip
    f = function(arrivals={"process": "periodic", "interval_s": 10}, duration=const(1))
    table = sweep(parse_scenario(scenario(f, duration_s=100)), grid, 2, workers=1).table
    assert table["cold_starts_mean"].tolist() == [10.0, 1.0]
