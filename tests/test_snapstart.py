"""SnapStart: a cold start restores a snapshot (global state included) instead of running
init; connections are re-opened after restore; AWS bills the runtime load and the hooks,
and for Python and .NET a cache and a charge per restore."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from coldsim import ScenarioError, load_scenario, parse_scenario, simulate
from conftest import const, function, run, scenario

GB_S_X86 = 0.0000166667
CACHE = 0.0000015046
RESTORE = 0.0001397998


def snap_run(write_trace, times, snapstart, runtime="python3.12", duration_s=100.0, **extra):
    f = function(arrivals={"process": "trace", "path": str(write_trace(times))},
                 init=const(3000), duration=const(40.5), memory_mb=2048)  # fmt: skip
    f["runtime"] = runtime
    f["global_state"] = [
        {"name": "db", "init_ms": 80, "connections": 1},  # re-opened after restore
        {"name": "model", "init_ms": 2000},  # in the snapshot
    ]
    if snapstart is not None:
        f["snapstart"] = snapstart
    f.update(extra)
    return run(scenario(f, duration_s=duration_s, idle_s=10.0))


SNAP = {"restore": const(500), "billed_restore_ms": 120, "after_restore_ms": 25}


def test_a_cold_start_restores_and_reopens_connections_instead_of_running_init(write_trace):
    # Requests at 0 (cold), 10 (warm), 40 (cold again: the 10 s keep-alive ran out).
    on = snap_run(write_trace, [0.0, 10.0, 40.0], SNAP)
    off = snap_run(write_trace, [0.0, 10.0, 40.0], None)
    # Without SnapStart: init 3000 + both items (2080). With it: restore 500 + hooks 25 +
    # the connection (80); the model comes back with the snapshot.
    assert off.invocations["init_ms"].tolist() == [5080.0, 0.0, 5080.0]
    assert on.invocations["init_ms"].tolist() == [605.0, 0.0, 605.0]
    assert on.invocations["start_s"].tolist() == pytest.approx([0.605, 10.0, 40.605])
    assert on.invocations["cold"].tolist() == [True, False, True]
    assert on.instances["init_ms"].tolist() == [605.0, 605.0]


def test_snapstart_bills_runtime_load_and_hooks_plus_cache_and_restores(write_trace):
    res = snap_run(write_trace, [0.0, 10.0, 40.0], SNAP)
    cost = res.summary["cost_usd"]
    gb = 2.0
    # Handler 40.5 ms bills 41 ms; a cold start bills round_up(40.5 + 120 + 25 + 80) = 266.
    assert cost["compute"] == pytest.approx(3 * 41 * gb * GB_S_X86 / 1000)
    assert cost["init"] == pytest.approx(2 * (266 - 41) * gb * GB_S_X86 / 1000)
    # Cache over the 100 s window and two restores of 2 GB.
    assert cost["snapstart"] == pytest.approx(gb * 100 * CACHE + 2 * gb * RESTORE)


def test_java_pays_no_snapstart_fees_but_its_billed_restore_is_duration(write_trace):
    res = snap_run(write_trace, [0.0, 10.0, 40.0], SNAP, runtime="java21")
    cost = res.summary["cost_usd"]
    assert cost["snapstart"] == 0.0
    assert cost["init"] == pytest.approx(2 * (266 - 41) * 2.0 * GB_S_X86 / 1000)


def test_restore_is_billed_even_where_init_billing_is_off(write_trace):
    f = function(arrivals={"process": "trace", "path": str(write_trace([0.0]))},
                 init=const(3000), duration=const(10), memory_mb=1024)  # fmt: skip
    f["snapstart"] = {"restore": const(400), "billed_restore_ms": 100}
    data = scenario(f, duration_s=10)
    data["platform"]["pricing"] = {"bill_init": False}
    cost = run(data).summary["cost_usd"]
    assert cost["init"] == pytest.approx(100 * 1.0 * GB_S_X86 / 1000)


def test_the_default_restore_is_the_measured_distribution(write_trace):
    # lognormal median 630 ms, sigma 0.14: 400 cold starts (keep-alive 10 s, one every 20 s)
    # put the sample median within 630 * exp(±3 * 0.14 * 1.2533 / sqrt(400)).
    times = (np.arange(400) * 20.0).tolist()
    res = snap_run(write_trace, times, {}, duration_s=8000.0)
    restores = res.instances["init_ms"].to_numpy() - 80.0  # less the re-opened connection
    assert len(restores) == 400
    half_width = 3 * 0.14 * 1.2533 / math.sqrt(400)
    assert abs(math.log(np.median(restores) / 630.0)) < half_width


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"runtime": "nodejs22.x"}, r"snapstart: runtime nodejs22.x has no SnapStart"),
        ({"runtime": "python3.11"}, r"snapstart: runtime python3.11 has no SnapStart"),
        ({"provisioned_concurrency": 2}, r"snapstart: not with provisioned_concurrency"),
        ({"instance_concurrency": 4}, r"snapstart: not with instance_concurrency"),
        ({"snapstart": {"restore": const(100)}}, r"restore: its mean, 100 ms, is below the default billed_restore_ms"),
        ({"snapstart": {"after_restore_ms": 20_000}}, r"after_restore_ms"),
    ],
)
def test_snapstart_errors_name_the_field(change, message):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(10))
    f["snapstart"] = {}
    f.update(change)
    from coldsim import parse_scenario

    with pytest.raises(ScenarioError, match=message):
        parse_scenario(scenario(f))


FORMATS = ["text", "filter-log-events", "insights-csv", "lambda-json"]


def run_export_fit(tmp_path, runtime: str, fmt: str) -> tuple[list[str], dict]:
    """A SnapStart function (restore + 30 ms hooks, 20.5 ms handler) run, exported in one
    format and fitted back from the command line: (the text log's lines or [], fit.json's
    report of the function)."""
    pytest.importorskip("lifelines")
    from coldsim.cli import app
    from typer.testing import CliRunner

    sc = tmp_path / "s.yaml"
    sc.write_text(
        "name: snap\nseed: 4\nduration_s: 20000\nplatform: {keep_alive: {policy: fixed, "
        "idle_s: 60}, max_lifetime_s: null}\nfunctions:\n  - {name: f, memory_mb: 1024, "
        f"runtime: {runtime}, snapstart: {{after_restore_ms: 30}}, duration: {{dist: constant, "
        "value_ms: 20.5}, arrivals: {process: poisson, rate_per_s: 0.01}}\n"
    )
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(sc), "--out", str(tmp_path / "run")]).exit_code == 0
    res = runner.invoke(app, ["logs", "export", str(tmp_path / "run"), "--out",
                              str(tmp_path / "logs"), "--format", fmt])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = tmp_path / "logs" / "text" / "f.txt"
    lines = text.read_text().splitlines() if text.is_file() else []
    res = runner.invoke(app, ["logs", "fit", str(tmp_path / "logs"), "--out",
                              str(tmp_path / "fit")])  # fmt: skip
    assert res.exit_code == 0, res.output
    return lines, json.loads((tmp_path / "fit" / "fit.json").read_text())["per_function"]["f"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_snapstart_logs_report_restores_and_are_fitted_back(tmp_path, fmt):
    lines, report = run_export_fit(tmp_path, "python3.12", fmt)
    if lines:  # Billed Duration = the handler rounded up + Billed Restore Duration
        line = next(x for x in lines if "Restore Duration" in x)
        assert "Billed Duration: 187 ms" in line and "Billed Restore Duration: 166 ms" in line
        assert "Init Duration" not in line
    truth = pd.read_parquet(tmp_path / "run" / "instances.parquet")["init_ms"]
    assert report["init_ms_p50"] is None
    assert report["restore_ms_p50"] == pytest.approx(truth.median(), rel=0.02)
    fitted = load_scenario(tmp_path / "fit" / "scenario.yaml").functions[0]
    assert fitted.snapstart is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_java_snapstart_logs_are_fitted_back_as_java_without_snapstart_fees(tmp_path, fmt):
    lines, report = run_export_fit(tmp_path, "java21", fmt)
    if lines:  # each environment opens with the runtime version it restored
        starts = [x for x in lines if "_START Runtime Version" in x]
        assert starts and all("RESTORE_START Runtime Version: java:21.v1\t" in x for x in starts)
        assert len(starts) == sum("Restore Duration" in x for x in lines)  # one per cold start
    assert (report["runtime"], report["runtime_version"]) == ("java21", "java:21.v1")
    assert "note" not in report
    fitted = load_scenario(tmp_path / "fit" / "scenario.yaml")
    assert fitted.functions[0].runtime == "java21" and fitted.functions[0].snapstart is not None
    assert simulate(fitted).summary["cost_usd"]["snapstart"] == 0.0
    # Fitted as before, without the runtime: python3.12's cache and restore fees.
    data = yaml.safe_load((tmp_path / "fit" / "scenario.yaml").read_text())
    del data["functions"][0]["runtime"]
    python = parse_scenario(data, base_dir=tmp_path / "fit")
    assert simulate(python).summary["cost_usd"]["snapstart"] > 0.0


def test_snapstart_restores_without_a_known_runtime_note_that_python_fees_are_billed(tmp_path):
    pytest.importorskip("lifelines")
    from coldsim.cloudwatch.fit import fit
    from coldsim.cloudwatch.parse import read_logs

    report = (
        "REPORT RequestId: {}\tDuration: 26.63 ms\tBilled Duration: 354 ms\tMemory Size: 512 MB"
        "\tRestore Duration: 326.96 ms\tBilled Restore Duration: 327 ms\t"
    )
    unlogged = tmp_path / "orders.log"  # no RESTORE_START line (a filtered export)
    unlogged.write_text(f"2024-05-01T12:00:00.400Z {report.format('a1')}\n")
    java8 = tmp_path / "ledger.log"  # Java 8 on Amazon Linux 1: Lambda no longer supports it
    java8.write_text(
        "2024-05-01T12:00:00.000Z RESTORE_START Runtime Version: java:8.v21\tRuntime Version "
        "ARN: arn:aws:lambda:us-east-1::runtime:0abc\n"
        f"2024-05-01T12:00:00.400Z {report.format('b2')}\n"
    )
    java11 = tmp_path / "billing.log"  # Java 11: java17's preset stands in for it, no fees
    java11.write_text(
        "2024-05-01T12:00:00.000Z RESTORE_START Runtime Version: java:11.v21\tRuntime Version "
        "ARN: arn:aws:lambda:us-east-1::runtime:0abc\n"
        f"2024-05-01T12:00:00.400Z {report.format('c3')}\n"
    )
    got = fit(read_logs([unlogged, java8, java11]), "fitted")
    runtimes = {f["name"]: f.get("runtime") for f in got.scenario["functions"]}
    assert runtimes == {"orders": None, "ledger": None, "billing": "java17"}
    orders, ledger = got.report["per_function"]["orders"], got.report["per_function"]["ledger"]
    assert (orders["runtime"], orders["runtime_version"]) == (None, None)
    assert (ledger["runtime"], ledger["runtime_version"]) == (None, "java:8.v21")
    fees = "the scenario assumes python3.12 and so bills SnapStart's cache and restore fees"
    for m in (orders, ledger):
        assert fees in m["note"]
        assert "set `runtime` (java17 or java21)" in m["note"]
    assert "no INIT_START or RESTORE_START line names the runtime" in orders["note"]
    assert "runtime version java:8.v21 is not among coldsim's runtimes" in ledger["note"]
    billing = got.report["per_function"]["billing"]
    assert billing["note"] == ("java11 (logged as java:11.v21) has no measured init in coldsim: "
                               "java17, the nearest measured release of its language, stands "
                               "in for it")  # fmt: skip
