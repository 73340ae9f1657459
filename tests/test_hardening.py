"""Hardening (from a newcomer's test): coldsim never replaces what it did not write, work
follows the data not the span, runs that cannot fit are refused first, and the documented
paths (overrides on defaults, sweep options, help, the Python API) behave."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import yaml
from coldsim import ScenarioError, load_scenario, parse_scenario, simulate, sweep
from coldsim.cli import app
from coldsim.reporting.output import OutputDirError
from coldsim.reporting.plots import MAX_BINS, time_bins
from conftest import const, function, scenario
from typer.testing import CliRunner

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="coldsim")


def small(tmp_path, file="s.yaml", **kw):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10))
    data = scenario(f, duration_s=kw.pop("duration_s", 100), **kw)
    path = tmp_path / file
    path.write_text(yaml.safe_dump(data))
    return path


# --- never replace what coldsim did not write ---------------------------------------------


def test_a_sweep_never_replaces_another_scenarios_tables_or_a_users_files(tmp_path):
    a, b = small(tmp_path, "a.yaml", name="a"), small(tmp_path, "b.yaml", name="b", idle_s=5)
    out = tmp_path / "sw"
    grid = ["--grid", "platform.keep_alive.idle_s=1,2", "--replications", "2", "--workers", "1"]
    assert invoke("sweep", a, *grid, "--out", out).exit_code == 0
    table = (out / "sweep.csv").read_text()
    assert invoke("sweep", a, *grid, "--out", out).exit_code == 0  # the same scenario: resumes
    res = invoke("sweep", b, *grid, "--out", out)
    assert res.exit_code == 2 and "holds a sweep of scenario 'a' with other settings" in res.output
    assert (out / "sweep.csv").read_text() == table
    (out / "mine.txt").write_text("x")
    res = invoke("sweep", a, *grid, "--out", out)
    assert res.exit_code == 2 and "files coldsim did not write (mine.txt)" in res.output


def test_compare_inspect_and_the_api_keep_foreign_files(tmp_path, write_trace):
    sc = load_scenario(small(tmp_path))
    res = simulate(sc)
    out = tmp_path / "r"
    res.save(out)
    (out / "keep.me").write_text("x")
    with pytest.raises(OutputDirError, match="keep.me"):
        res.save(out)
    trace = write_trace([1.0, 2.0, 300.0])
    insp = tmp_path / "insp"
    assert invoke("trace", "inspect", trace, "--out", insp).exit_code == 0
    (insp / "keep.me").write_text("x")
    r = invoke("trace", "inspect", trace, "--out", insp)
    assert r.exit_code == 2 and "keep.me" in r.output
    cmp_out = tmp_path / "cmp"
    cmp_out.mkdir()
    (cmp_out / "keep.me").write_text("x")
    r = invoke("compare", out.parent / "r", "--out", cmp_out)
    assert r.exit_code == 2 and (cmp_out / "keep.me").exists()


def test_to_scenario_overwrites_only_its_own_files(tmp_path, write_trace):
    trace = write_trace([1.0, 2.0, 300.0])
    mine = tmp_path / "mine.yaml"
    mine.write_text("# my own scenario\nname: x\n")
    r = invoke("trace", "to-scenario", trace, "--out", mine)
    assert r.exit_code == 2 and "was not written by coldsim" in r.output
    assert mine.read_text() == "# my own scenario\nname: x\n"
    assert invoke("trace", "to-scenario", trace, "--out", mine, "--force").exit_code == 0
    assert invoke("trace", "to-scenario", trace, "--out", mine).exit_code == 0  # its own now


def test_to_scenario_into_a_folder_that_does_not_exist_yet(tmp_path, write_trace):
    trace = write_trace([1.0, 2.0, 300.0])
    out = tmp_path / "new" / "deeper" / "x.yaml"
    r = invoke("trace", "to-scenario", trace, "--out", out)
    assert r.exit_code == 0, r.output
    assert invoke("run", out, "-q", "--out", tmp_path / "r").exit_code == 0  # the path holds


# --- work follows the data, not the span -----------------------------------------------


def test_one_request_far_away_is_quick_and_absurd_spans_are_refused(tmp_path, write_trace):
    started = time.perf_counter()
    far = write_trace([1e8], name="far.csv")
    assert invoke("trace", "inspect", far, "--out", tmp_path / "i").exit_code == 0
    path = tmp_path / "far.yaml"
    assert invoke("trace", "to-scenario", far, "--out", path).exit_code == 0
    assert invoke("run", path, "--out", tmp_path / "r", "-q").exit_code == 0
    assert time.perf_counter() - started < 30  # it took minutes and gigabytes before
    huge = write_trace([1e10], name="huge.csv")
    r = invoke("trace", "inspect", huge, "--out", tmp_path / "i2")
    assert r.exit_code == 2 and "317 years after the trace's start" in r.output
    r = invoke("run", small(tmp_path, "long.yaml", duration_s=1e10), "-q", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "duration_s" in r.output


@pytest.mark.parametrize("span", [1.0, 59.0, 3600.0, 86400.0 * 2, 1e7, 3e8])
def test_time_bins_fit_the_figure(span):
    width, name = time_bins(span)
    assert span / width <= MAX_BINS and name


def test_runs_that_cannot_fit_are_refused_with_the_estimate(tmp_path):
    # Streamed (coldsim run), but a multi-request function's rows are held to summarise them:
    # 9e8 requests are over a hundred GiB.
    f = {**function(arrivals={"process": "poisson", "rate_per_s": 3}, duration=const(10)),
         "instance_concurrency": 2}  # fmt: skip
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(scenario(f, duration_s=3e8)))
    r = invoke("run", path, "--out", tmp_path / "o")
    assert r.exit_code == 2
    assert "GiB of memory" in r.output and "--skip-memory-check" in r.output
    assert "per request held in memory" in r.output
    assert not (tmp_path / "o").exists()
    # Held in memory (simulate() keeps every request): 3e8 requests are tens of GiB.
    with pytest.raises(ScenarioError, match="memory_check=False"):
        simulate(load_scenario(small(tmp_path, duration_s=3e8)))


# --- documented paths ----------------------------------------------------------------------


def test_overrides_apply_to_the_default_keep_alive(tmp_path):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "duration_s": 100, "functions": [f]}))
    sc = load_scenario(path, ["platform.keep_alive.idle_s=600"])
    assert sc.platform.keep_alive.policy == "random"  # the default policy, its window changed
    assert sc.platform.keep_alive.idle_s.model_dump() == {"dist": "constant", "value": 600.0}
    table = sweep(sc, {"platform.keep_alive.idle_s": [0, 600]}, 2, workers=1).table
    assert table["cold_starts_mean"].iloc[0] > table["cold_starts_mean"].iloc[1]


def test_sweep_options_are_checked(tmp_path):
    path = small(tmp_path)
    for workers in ("0", "-2"):
        r = invoke("sweep", path, "--grid", "seed=1,2", "--workers", workers)
        assert r.exit_code == 2 and "Traceback" not in r.output
    r = invoke("sweep", path, "--grid", "seed=1,2", "--out", path)
    assert r.exit_code == 2 and "is not a folder" in r.output


def test_help_follows_cli_conventions():
    r = invoke("run", "--help")
    assert "Usage: coldsim run [OPTIONS] SCENARIO" in r.output
    assert "[default: results/<name>]" in r.output and "<bool>" not in r.output
    assert "coldsim[dask]" in invoke("sweep", "--help").output
    version = invoke("--version")
    assert version.exit_code == 0 and version.output.startswith("coldsim ")


def test_the_python_api_speaks_its_own_words():
    for bad in (None, 42):
        with pytest.raises(ScenarioError, match="simulate"):
            simulate(bad)
    with pytest.raises(ScenarioError, match="workers"):
        sweep(parse_scenario(scenario(function(arrivals={"process": "poisson", "rate_per_s": 1}))),
              {"seed": [1]}, 1, workers=0)  # fmt: skip


def test_cold_start_plot_bins_keep_every_cold_start():
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.01}, init=const(100))
    res = simulate(parse_scenario(scenario(f, duration_s=3 * 86400, idle_s=60)))
    fig = res.plot_cold_starts()
    heights = fig.axes[0].patches[0].get_path().vertices[:, 1]
    assert fig.axes[0].get_ylim()[1] > heights.max()  # the tallest bar is in view
    assert "per hour" in fig.axes[0].get_ylabel()
    assert json.loads(json.dumps(res.summary))["cold_starts"] > 0
    assert np.isfinite(heights).all()


def test_progress_shows_percentage_count_and_a_pace_based_eta():
    from coldsim.cli.common import _Count, _Eta, _progress

    with _progress("sweep", "runs") as bar:
        task_id = bar.add_task("sweep", total=None)
        task = bar.tasks[0]
        assert str(_Count("runs").render(task)) == "0/? runs"
        assert str(_Eta().render(task)) == "eta -"
        bar.update(task_id, total=10, completed=4, start_done=4)  # 4 runs from the store
        assert str(_Eta().render(task)) == "eta -"  # no pace learnt yet
        bar.update(task_id, completed=6)
        left = _Eta().render(task)
        assert str(left).startswith("eta ") and str(left) != "eta -"
        assert str(_Count("runs").render(task)) == "6/10 runs"


def test_a_runs_progress_reports_requests_and_their_rate():
    """progress(fraction, requests=n) if the callback takes `requests`, else progress(f);
    sharded, as shards finish. The CLI shows the rate."""
    from coldsim import simulate
    from coldsim.cli.common import _progress, _Rate

    data = {"name": "p", "duration_s": 2000, "platform": {"concurrency_limit": None},
            "functions": [{"name": f, "duration": {"dist": "constant", "value_ms": 5},
                           "arrivals": {"process": "poisson", "rate_per_s": 2}} for f in "ab"]}  # fmt: skip
    for workers in (None, 2):
        seen, plain = [], []

        def collect(fraction, requests, seen=seen):
            seen.append((fraction, requests))

        res = simulate(data, workers=workers, progress=collect)
        simulate(data, workers=workers, progress=plain.append)
        assert seen[-1] == (1.0, len(res.invocations)) and plain[-1] == 1.0
        assert [r for _, r in seen] == sorted(r for _, r in seen) and seen[0][1] > 0
    with _progress("run") as bar:
        task_id = bar.add_task("run", total=1.0)
        assert str(_Rate().render(bar.tasks[0])) == ""
        bar.update(task_id, completed=0.5, requests=5000)
        time.sleep(0.02)  # some elapsed time to divide by
        assert str(_Rate().render(bar.tasks[0])).endswith(" req/s")


def test_multi_function_figures_have_a_view_per_function_and_keep_0_ms_requests():
    fast = function("fast", arrivals={"process": "poisson", "rate_per_s": 2})  # 0 ms handlers
    slow = function("slow", arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(50))
    res = simulate(parse_scenario(scenario(fast, slow, duration_s=200)))
    fig = res.plot_latency_cdf()
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["fast", "slow"]
    labels = [t.get_text() for t in panels[0].get_legend().get_texts()]
    served = int((res.invocations["function"] == "fast").sum())
    assert any("at 0 ms, drawn at 0.01" in label for label in labels)
    assert sum(int(label.split("n=")[1].split(";")[0].split(")")[0].replace(",", ""))
               for label in labels) == served  # fmt: skip
    inst = res.plot_instances()
    assert "per function" in inst.axes[1].get_title()


def test_async_queueing_is_not_latency_in_the_figures():
    from coldsim.reporting.plots import user_latency_ms

    f = function(arrivals={"process": "periodic", "interval_s": 1}, duration=const(1500))
    f["invocation"] = "async"
    f["reserved_concurrency"] = 1
    data = scenario(f, duration_s=30)
    data["platform"]["concurrency_limit"] = 200
    res = simulate(parse_scenario(data))
    rows, lat = user_latency_ms(res.invocations)
    assert (rows["queue_delay_ms"] > 0).any()
    assert np.allclose(lat, rows["latency_ms"] - rows["queue_delay_ms"])
    assert lat.max() <= 1500.0 + 1e-9  # handler time only: no init, no queue


def test_every_output_column_and_summary_key_is_documented(tmp_path):
    import pyarrow.parquet as pq
    from coldsim.reporting.logs import COLUMNS, FUNCTION_COLUMNS, OPTIONAL_COLUMNS
    from conftest import ROOT

    f = function(arrivals={"process": "poisson", "rate_per_s": 1})
    res = simulate(parse_scenario(scenario(f, duration_s=60)))
    out = res.save(tmp_path / "r")
    doc = (ROOT / "docs" / "outputs.md").read_text()
    for log in ("invocations", "instances", "throttles"):
        expected = [c for c in COLUMNS[log] if c not in OPTIONAL_COLUMNS]
        in_memory = [c for c in expected if c not in FUNCTION_COLUMNS]
        assert list(getattr(res, log).columns) == in_memory, log
        schema = pq.read_schema(out / f"{log}.parquet")
        assert schema.names == expected, log
        for name, text in COLUMNS[log].items():
            if name not in OPTIONAL_COLUMNS:
                assert schema.field(name).metadata[b"description"].decode() == text
            assert f"| `{name}` | {text} |" in doc
    guide = "".join((ROOT / p).read_text() for p in ("README.md", "docs/usage.md"))
    missing = [k for k in res.summary if k not in ("per_function", "per_app")
               and f"`{k}" not in guide]  # fmt: skip
    assert not missing, f"summary keys missing from docs/usage.md: {missing}"


def test_folders_without_a_manifest_own_only_the_names_coldsim_wrote(tmp_path):
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "summary.json").write_text("{}")
    (old / "latency_cdf.png").write_text("coldsim's")
    (old / "holiday.png").write_text("mine")
    r = invoke("run", small(tmp_path), "--out", old, "-q")
    assert r.exit_code == 2 and "holiday.png" in r.output
    assert (old / "holiday.png").read_text() == "mine"


def test_a_file_added_while_a_folder_is_written_is_kept(tmp_path):
    from coldsim.reporting.output import write_folder

    out = tmp_path / "r"
    res = simulate(load_scenario(small(tmp_path)))
    res.save(out)

    def fill(tmp):  # meanwhile, the user saves notes into the folder
        (out / "notes.txt").write_text("mine")
        (tmp / "summary.json").write_text("{}")

    with pytest.raises(OutputDirError, match="notes.txt"):
        write_folder(out, "run", fill)
    assert (out / "notes.txt").read_text() == "mine" and (out / "invocations.parquet").exists()


def test_changing_a_kind_drops_the_old_kinds_parameters(tmp_path):
    path = small(tmp_path)
    sc = load_scenario(path, ["platform.keep_alive.policy=random",
                              "platform.keep_alive.idle_s=30"])  # fmt: skip
    assert sc.platform.keep_alive.policy == "random"
    sc = load_scenario(path, ["functions.0.init.dist=constant", "functions.0.init.value_ms=300"])
    assert sc.functions[0].init.model_dump() == {"dist": "constant", "value": 300.0}
    hybrid = load_scenario(path, ["platform.keep_alive.policy=hybrid-histogram"])
    assert hybrid.platform.keep_alive.range_s == 14400


def test_an_edited_generated_scenario_is_not_overwritten(tmp_path, write_trace):
    trace = write_trace([1.0, 2.0])
    out = tmp_path / "g.yaml"
    assert invoke("trace", "to-scenario", trace, "--out", out).exit_code == 0
    assert invoke("trace", "to-scenario", trace, "--out", out).exit_code == 0
    out.write_text(out.read_text() + "# my change\n")
    r = invoke("trace", "to-scenario", trace, "--out", out)
    assert r.exit_code == 2 and "edited since" in r.output
    assert out.read_text().endswith("# my change\n")


def test_api_arguments_are_checked_in_api_words(tmp_path):
    from coldsim import compare

    sc = load_scenario(small(tmp_path))
    with pytest.raises(ScenarioError, match="replications must be"):
        sweep(sc, {"seed": [1]}, 0, workers=1)
    with pytest.raises(ScenarioError, match="grid values must be lists"):
        sweep(sc, {"seed": 1}, 1, workers=1)
    with pytest.raises(ScenarioError, match="nothing to compare"):
        compare([], tmp_path / "c")
    res = simulate(sc)
    res.save(tmp_path / "r")
    with pytest.raises(ScenarioError, match="would overwrite the input"):
        compare([tmp_path / "r"], tmp_path / "r" / "cmp")


def test_run_progress_reaches_the_end_only_when_the_run_does():
    f = function(arrivals={"process": "poisson", "rate_per_s": 5}, duration=const(10))
    seen = []
    simulate(parse_scenario(scenario(f, duration_s=100)), progress=seen.append)
    assert seen[-1] == 1.0 and max(seen[:-1]) < 1.0 and seen == sorted(seen)


# Issue 18 §6: a newcomer's defects, each with its test.


def test_a_histogram_of_too_many_bins_is_refused_before_it_is_built(tmp_path):
    path = small(tmp_path)
    for knob, value in (("bin_s", 0.001), ("range_s", 1e12)):
        r = invoke("validate", path, "--set", "platform.keep_alive.policy=hybrid-histogram",
                   "--set", f"platform.keep_alive.{knob}={value}")  # fmt: skip
        assert r.exit_code == 2, r.output
        assert "at most 100,000" in r.output and "Traceback" not in r.output
    # Within the bound, the histograms' memory is counted in the estimate, per function.
    from coldsim.scenario.budget import estimate_bytes

    sc = load_scenario(path)
    hist = sc.updated({"platform.keep_alive": {"policy": "hybrid-histogram", "bin_s": 0.2}})
    assert estimate_bytes(hist) - estimate_bytes(sc) >= 8 * 14400 / 0.2


def test_connection_limits_name_a_resource_and_items_are_named_once(tmp_path):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10))
    f["global_state"] = [{"name": "db", "init_ms": 10, "connections": 1}]
    data = scenario(f)
    data["platform"]["connection_limits"] = {"dbx": 10}
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, file="s.yaml")
    assert err.value.field == "platform.connection_limits.dbx"
    assert "items that hold connections: 'db'" in err.value.message
    data["platform"]["connection_limits"] = {"db": 10}
    f2 = data["functions"][0]
    f2["global_state"].append({"name": "db", "init_ms": 5})
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert err.value.field == "functions[0].global_state[1].name"
    assert "repeats global_state[0]" in err.value.message


def test_settings_that_change_nothing_are_named_in_a_warning(tmp_path):
    from coldsim.errors import ScenarioWarning

    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10))
    f["provisioned_concurrency"] = [{"at_s": 0, "count": 1}, {"at_s": 5000, "count": 2}]
    data = scenario(f)
    data["platform"].update(routing="least-loaded", eviction="greedy-dual")
    with pytest.warns(ScenarioWarning) as seen:
        sc = parse_scenario(data, file="s.yaml")
    notes = [str(w.message) for w in seen]
    assert any("platform.routing: least-loaded" in n for n in notes)
    assert any("platform.eviction" in n for n in notes)
    assert any("provisioned_concurrency[1].at_s: 5000" in n for n in notes)
    hosts = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1}))
    hosts["platform"]["hosts"] = {"count": 1, "memory_mb": 4096, "max_wait_s": 5}
    hosts["platform"]["routing"] = "pack"  # the default, written: no note
    with pytest.warns(ScenarioWarning, match="max_wait_s: used only with on_full queue"):
        parse_scenario(hosts, file="h.yaml")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # what the scenario uses, and its variants: silent
        sc.updated({"seed": 2})
        parse_scenario(scenario(f | {"provisioned_concurrency": 1}), file="x.yaml")
        resolved = parse_scenario(scenario(f | {"provisioned_concurrency": 1})).to_dict()
        parse_scenario(resolved, file="scenario.yaml")  # a run's own scenario.yaml
    p = tmp_path / "w.yaml"
    p.write_text(yaml.safe_dump(data))
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "coldsim", "validate", str(p)],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0 and r.stderr.count("warning:") == 3, r.stderr
    assert "Warning" not in r.stderr  # a note to the user, not a Python warning line


def test_managed_instances_get_2_to_8_gib_per_vcpu():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10),
                 memory_mb=2048)  # fmt: skip
    f.update(instance_concurrency=8, instance_vcpus=2, billing="alive-instance")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(scenario(f))
    assert err.value.field == "functions[0].memory_mb"
    assert "1,024 MB per vCPU" in err.value.message and "2,048-8,192" in err.value.message
    assert parse_scenario(scenario(f | {"memory_mb": 4096})).functions[0].memory_mb == 4096
    with pytest.raises(ScenarioError, match="instance_vcpus: required"):
        parse_scenario(scenario({k: v for k, v in f.items() if k != "instance_vcpus"}))
    # Billed per busy instance (Cloud Run's way), the ratio is not Lambda's to check.
    assert parse_scenario(scenario(f | {"billing": "busy-instance"}))


def test_wording_blames_what_the_user_wrote(tmp_path):
    path = small(tmp_path)
    # A nan is not "above 1": it is no number.
    r = invoke("validate", path, "--set", "functions.0.instance_concurrency=2",
               "--set", "functions.0.scale_target=.nan")  # fmt: skip
    assert r.exit_code == 2 and "must be a finite number (got nan)" in r.output
    # A bad --set value is the --set's fault, not the file's.
    r = invoke("validate", path, "--set", "functions.0.memory_mb=64")
    assert r.exit_code == 2
    assert r.output.startswith("error: --set functions.0.memory_mb=64: functions[0].memory_mb")
    assert str(path) not in r.output
    # A default the user never set is not blamed: the restore they wrote is.
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10))
    f.update(runtime="java21", snapstart={"restore": const(50)})
    with pytest.raises(ScenarioError) as err:
        parse_scenario(scenario(f))
    assert err.value.message.startswith("restore: its mean, 50 ms, is below the default")
