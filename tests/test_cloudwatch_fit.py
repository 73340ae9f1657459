"""Logs out and back in: a run exported as CloudWatch logs in each format is fitted back to
the scenario that made it (keep-alive, handler and init times, memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from coldsim import load_scenario, parse_scenario, simulate
from coldsim.cli import app
from coldsim.cloudwatch import export
from coldsim.cloudwatch.fit import fit
from coldsim.cloudwatch.parse import read_logs
from typer.testing import CliRunner

pytest.importorskip("lifelines")


def run_and_export(tmp_path, keep_alive, formats=export.FORMATS, days=2.0):
    """Two functions idle for minutes at a time (what pins a keep-alive down) and a busy one,
    no recycling; exported in each format."""
    sc = parse_scenario({
        "name": "truth", "seed": 5, "duration_s": days * 86400,
        "platform": {"keep_alive": keep_alive, "max_lifetime_s": None},
        "functions": [
            {"name": "api", "memory_mb": 512, "arrivals": {"process": "poisson", "rate_per_s": 1 / 400},
             "init": {"dist": "lognormal", "median_ms": 300, "sigma": 0.3},
             "duration": {"dist": "lognormal", "median_ms": 120, "sigma": 0.5}},
            {"name": "cron", "memory_mb": 1024, "arrivals": {"process": "poisson", "rate_per_s": 1 / 900},
             "duration": {"dist": "constant", "value_ms": 2500}},
            {"name": "busy", "memory_mb": 256, "arrivals": {"process": "poisson", "rate_per_s": 0.2},
             "duration": {"dist": "exponential", "mean_ms": 80}},
        ],
    })  # fmt: skip
    res = simulate(sc)
    ev = export.events(res.invocations, res.instances,
                       {f.name: f.memory_mb for f in sc.functions}, sc.name)  # fmt: skip
    export.write(ev, tmp_path, formats)
    return res


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_a_fixed_keep_alive_and_the_times_are_fitted_back(tmp_path, fmt):
    res = run_and_export(tmp_path, {"policy": "fixed", "idle_s": 600}, [fmt])
    parsed = read_logs([tmp_path / fmt])
    assert parsed.malformed == 0
    served = res.invocations[res.invocations["status"] == "served"]
    assert len(parsed.invocations) == len(served)
    got = fit(parsed, "fitted")
    keep = got.scenario["platform"]["keep_alive"]
    assert keep["policy"] == "fixed" and keep["idle_s"] == pytest.approx(600, rel=0.05)
    for f, m in got.report["per_function"].items():
        mine = served[served["function"] == f]
        assert m["duration_ms_p50"] == pytest.approx(mine["duration_ms"].median(), rel=0.02)
        cold = mine[mine["cold"]]
        truth = res.instances.set_index("instance_id").loc[cold["instance_id"], "init_ms"]
        assert m["init_ms_p50"] == pytest.approx(truth.median(), rel=0.02)
        assert m["cold_starts"] == len(cold)
    assert {f["name"]: f["memory_mb"] for f in got.scenario["functions"]} == {
        "api": 512, "cron": 1024, "busy": 256}  # fmt: skip
    # Arrivals are the observed ones (to the log's millisecond).
    t = np.sort(served.loc[served["function"] == "api", "arrival_s"].to_numpy())
    np.testing.assert_allclose(got.arrivals["api"] - got.arrivals["api"][0], t - t[0], atol=2e-3)


def test_a_random_keep_alives_range_is_fitted_back(tmp_path):
    run_and_export(tmp_path, {"policy": "random", "idle_s": {"dist": "uniform", "low_s": 300,
                                                              "high_s": 420}},
                   ["text"], days=4)  # fmt: skip
    keep = fit(read_logs([tmp_path / "text"]), "fitted").scenario["platform"]["keep_alive"]
    assert keep["policy"] == "random"
    assert keep["idle_s"]["low_s"] == pytest.approx(300, rel=0.10)
    assert keep["idle_s"]["high_s"] == pytest.approx(420, rel=0.10)


def test_export_then_fit_from_the_command_line(tmp_path):
    runner = CliRunner()
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "name: small\nseed: 2\nduration_s: 86400\nplatform: {keep_alive: {policy: fixed, "
        "idle_s: 300}, max_lifetime_s: null}\nfunctions:\n  - {name: f, memory_mb: 256, "
        "duration: {dist: constant, value_ms: 50}, arrivals: {process: poisson, rate_per_s: "
        "0.005}}\n"
    )
    assert runner.invoke(app, ["run", str(sc), "--out", str(tmp_path / "run")]).exit_code == 0
    res = runner.invoke(app, ["logs", "export", str(tmp_path / "run"), "--out",
                              str(tmp_path / "logs"), "--format", "lambda-json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["logs", "fit", str(tmp_path / "logs"), "--out",
                              str(tmp_path / "fit"), "--name", "again"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert '"policy": "fixed"' in res.output
    for name in ("scenario.yaml", "fit.json", "fit.png", "arrivals/f.csv"):
        assert (tmp_path / "fit" / name).is_file()
    fitted = load_scenario(tmp_path / "fit" / "scenario.yaml")
    assert fitted.platform.keep_alive.idle_s == pytest.approx(300, rel=0.05)
    again = simulate(fitted)
    assert again.summary["invocations"] == simulate(load_scenario(sc)).summary["invocations"]
    # Backtest: the true scenario replays the observed arrivals to the same cold starts; the
    # fitted one comes close.
    for scenario, within in ((str(sc), 0.02), (None, 0.15)):
        args = ["logs", "backtest", str(tmp_path / "logs"), "--out",
                str(tmp_path / f"bt-{within}")] + (["--scenario", scenario] if scenario else [])  # fmt: skip
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert res.output.startswith("cold starts: predicted")  # the figure a team trusts first
        report = json.loads((tmp_path / f"bt-{within}" / "backtest.json").read_text())
        assert abs(report["errors"]["cold_starts_relative_error"]) <= within
        assert (tmp_path / f"bt-{within}" / "backtest.png").is_file()
    # Bad input: a clear message and exit 2.
    res = runner.invoke(app, ["logs", "fit", str(tmp_path / "nothing-here")])
    assert res.exit_code == 2 and "not found" in res.output
    res = runner.invoke(app, ["logs", "export", str(tmp_path / "logs"), "--out",
                              str(tmp_path / "x")])  # fmt: skip
    assert res.exit_code == 2 and "is not a run's folder" in res.output
