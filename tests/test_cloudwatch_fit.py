"""Logs out and back in: a run exported as CloudWatch logs in each format is fitted back to
the scenario that made it (keep-alive, handler and init times, memory)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from coldsim import load_scenario, parse_scenario, simulate
from coldsim.cli import app
from coldsim.cloudwatch import export
from coldsim.cloudwatch.fit import fit, lifetime
from coldsim.cloudwatch.parse import read_logs
from typer.testing import CliRunner

pytest.importorskip("lifelines")

NOT_ESTIMATED = "fewer than 10 environments recycled: lifetime not estimated"


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
    # No recycling: nothing to estimate, and the report is what it was before the estimate.
    assert "max_lifetime_s" not in got.scenario["platform"]
    assert got.report["lifetime"] == {"max_lifetime_s": None, "recycled": 0,
                                      "note": NOT_ESTIMATED}  # fmt: skip
    # Arrivals are the observed ones (to the log's millisecond).
    t = np.sort(served.loc[served["function"] == "api", "arrival_s"].to_numpy())
    np.testing.assert_allclose(got.arrivals["api"] - got.arrivals["api"][0], t - t[0], atol=2e-3)


def test_a_random_keep_alives_range_is_fitted_back(tmp_path):
    run_and_export(tmp_path, {"policy": "random", "idle_s": {"dist": "uniform", "low_s": 300,
                                                              "high_s": 420}},
                   ["text"], days=4)  # fmt: skip
    parsed = read_logs([tmp_path / "text"])
    got = fit(parsed, "fitted")
    keep = got.scenario["platform"]["keep_alive"]
    assert keep["policy"] == "random"
    assert keep["idle_s"]["low_s"] == pytest.approx(300, rel=0.10)
    assert keep["idle_s"]["high_s"] == pytest.approx(420, rel=0.10)
    # fit.png shades the fitted range, as the printed line gives it (it once said "388-388 s"
    # for a fitted 320-456 s).
    low, high = keep["idle_s"]["low_s"], keep["idle_s"]["high_s"]
    label = f"keep-alive uniform {low:,.0f}-{high:,.0f} s"
    assert got.report["keep_alive"]["summary"].startswith(f"uniform {low:,.0f}-{high:,.0f} s")
    assert idle_panel_labels(got, parsed) == [label]


def idle_panel_labels(got, parsed):
    from coldsim.cloudwatch.figures import fit_figure

    fig = fit_figure(got, parsed)
    ax = next(a for a in fig.axes if a.get_title().startswith("Idle gaps"))
    return [t.get_text() for t in ax.get_legend().get_texts()][2:]  # after the two histograms


def test_fit_png_shows_snapstart_restores_and_the_pinned_keep_alive(tmp_path):
    from coldsim.cloudwatch.figures import fit_figure

    report = (
        "REPORT RequestId: r{}\tDuration: 26.63 ms\tBilled Duration: 354 ms\tMemory Size: 512 MB"
        "\tRestore Duration: 326.96 ms\tBilled Restore Duration: 327 ms\t"
    )
    warm = "REPORT RequestId: w{}\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 512 MB\t"
    lines = [f"2024-05-01T12:00:0{i}.000Z s{i} {report.format(i)}" for i in range(3)]
    lines += [f"2024-05-01T12:01:0{i}.000Z s{i} {warm.format(i)}" for i in range(3)]
    (tmp_path / "ledger.log").write_text("\n".join(lines) + "\n")
    parsed = read_logs([tmp_path / "ledger.log"])
    fig = fit_figure(fit(parsed, "fitted"), parsed)
    titles = [a.get_title() for a in fig.axes]
    assert "Handler and start times (6 invocations, 3 cold: 3 restored)" in titles
    # A pinned-down fixed keep-alive: its value and interval, as printed.
    run_and_export(tmp_path / "fixed", {"policy": "fixed", "idle_s": 600}, ["text"], days=1)
    parsed = read_logs([tmp_path / "fixed" / "text"])
    got = fit(parsed, "fitted")
    keep = got.report["keep_alive"]
    assert keep["summary"].startswith("fixed ")
    assert idle_panel_labels(got, parsed) == [f"keep-alive {keep['summary']}"]


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
    assert "keep-alive: fixed " in res.output and "(95% interval " in res.output
    summary = json.loads((tmp_path / "fit" / "fit.json").read_text())["keep_alive"]["summary"]
    assert f"keep-alive: {summary} (from " in res.output  # the printed line is fit.json's
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


# -- the recycling lifetime ------------------------------------------------------------------

KEEP_S = 600.0


def recycling_run(tmp_path, max_lifetime_s, functions, rate_per_s, days, fmt):
    """`functions` alike, each a Poisson stream quiet enough for one environment at a time,
    with a fixed keep-alive and the given recycling lifetime; exported in `fmt` and fitted."""
    sc = parse_scenario({
        "name": "truth", "seed": 5, "duration_s": days * 86400,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": KEEP_S},
                     "max_lifetime_s": max_lifetime_s},
        "functions": [{"name": f"f{i}", "memory_mb": 256,
                       "arrivals": {"process": "poisson", "rate_per_s": rate_per_s},
                       "duration": {"dist": "exponential", "mean_ms": 80}}
                      for i in range(functions)],
    })  # fmt: skip
    res = simulate(sc)
    ev = export.events(res.invocations, res.instances,
                       {f.name: f.memory_mb for f in sc.functions}, sc.name)  # fmt: skip
    export.write(ev, tmp_path, [fmt])
    got = fit(read_logs([tmp_path / fmt]), "fitted")
    keep = got.scenario["platform"]["keep_alive"]
    assert keep["policy"] == "fixed" and keep["idle_s"] == pytest.approx(KEEP_S, rel=0.01)
    return res, got


def quantile_se(p, n, low_s, high_s):
    """Standard error of the p-quantile of a uniform(low_s, high_s) estimated from n recycled
    environments: sqrt(p (1 - p) / n) / density. Over 40 seeds of each run below, the fitted
    median was off by 0.85-1.3 of it (standard deviation), at most 2.7."""
    return math.sqrt(p * (1 - p) / n) * (high_s - low_s)


def end_tolerance(n, low_s, high_s):
    """How far the fitted range's ends (low = q5 - (q95 - q5) / 18, high = q95 + (q95 - q5)
    / 18) may be from the true ones: 3 standard errors, plus half the keep-alive. Each
    recycling age is known only to within the gap from the last request to the next cold
    start (up to the keep-alive), and Turnbull's estimate gives overlapping gaps' mass to their
    common part, so its 5th and 95th percentiles sit anywhere within such gaps: over 40 seeds
    of each run below the ends were off by up to 4 (low) and 7 (high) standard errors, at most
    450 s, always within this."""
    se = quantile_se(0.05, n, low_s, high_s) * math.sqrt(19**2 + 1) / 18
    return 3 * se + KEEP_S / 2


def naive_lifetime(got):
    """The estimate before censoring was taken into account: ages at the last request of the
    old environments whose next cold start came within half the keep-alive's 5th percentile."""
    old = got.idle[got.idle["kind"] == "old"].merge(got.environments, on=["function", "stream"])
    floor = got.report["keep_alive"]["quantiles_s"][5]
    return old.loc[old["next_cold_s"] < floor / 2, "age_s"].to_numpy()


def test_a_fixed_recycling_lifetime_is_fitted_back(tmp_path):
    res, got = recycling_run(tmp_path, 7200, functions=15, rate_per_s=1 / 240, days=2,
                             fmt="text")  # fmt: skip
    life = got.report["lifetime"]
    n = life["recycled"]
    truth = int((res.instances["end_reason"] == "lifetime").sum())
    assert 20 <= n <= truth  # most recycled environments are seen to be
    # R lies between the latest last request before it and the earliest cold start after it.
    # Requests come every 240 s on average (Poisson): the nearest of n recycled environments'
    # last requests before R, and of their next cold starts after it, is about 240 / n s away,
    # over 5x that with probability e^-5.
    assert got.scenario["platform"]["max_lifetime_s"] == pytest.approx(7200, abs=5 * 240 / n)
    assert life["mass_unbounded"] == 0.0 and "note" not in life
    assert life["right_censored"] > 10 * n  # reaped young, mostly
    low, high = life["interval_s"]["50"]  # its 95% interval holds the truth, and is printed
    assert low <= 7200 <= high
    assert life["summary"] == (f"fixed {life['max_lifetime_s']:,.1f} s (95% interval "
                               f"{low:,.1f}-{high:,.1f} s)")  # fmt: skip
    from coldsim.cloudwatch.figures import fit_figure

    fig = fit_figure(got, read_logs([tmp_path / "text"]))
    ax = next(a for a in fig.axes if a.get_title().startswith("Environment lifetimes"))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"recycling: {life['summary']}"]


def test_a_recycling_lifetimes_range_is_fitted_back(tmp_path):
    _, got = recycling_run(tmp_path, {"dist": "uniform", "low_s": 6300, "high_s": 8100},
                           functions=15, rate_per_s=1 / 240, days=4, fmt="lambda-json")  # fmt: skip
    life = got.report["lifetime"]
    n = life["recycled"]
    assert n >= 50
    fitted = got.scenario["platform"]["max_lifetime_s"]
    assert fitted["dist"] == "uniform"
    assert fitted["low_s"] == pytest.approx(6300, abs=end_tolerance(n, 6300, 8100))
    assert fitted["high_s"] == pytest.approx(8100, abs=end_tolerance(n, 6300, 8100))
    assert life["quantiles_s"][50] == pytest.approx(7200, abs=3 * quantile_se(0.5, n, 6300, 8100))
    # The intervals hold the uniform's 5th and 50th percentiles. (Not always its 95th: a
    # bootstrap spreads the estimate as sampling would, but not its bias; here the 95th
    # percentile came out 7,941 s, interval 7,850-7,974 s, for 8,010 s.)
    for p, truth in (("5", 6390), ("50", 7200)):
        low, high = life["interval_s"][p]
        assert low <= truth <= high
    assert life["summary"].startswith(f"uniform {fitted['low_s']:,.0f}-{fitted['high_s']:,.0f} s")


def test_environments_reaped_young_do_not_bias_the_lifetime_low(tmp_path):
    """Busy enough to keep an environment for an hour or two, not for its whole lifetime
    (1.5-3 h): most are reaped first, and those that reach their lifetime are the ones whose
    lifetime was short. Only their ages (the estimate before censoring) come out low; counting
    the reaped ones as at risk until they left does not: over 40 seeds the naive median came
    out 1070 s low on average (standard deviation 270 s), this one 40 s high (200 s)."""
    low, high = 5400, 10800
    res, got = recycling_run(tmp_path, {"dist": "uniform", "low_s": low, "high_s": high},
                             functions=20, rate_per_s=1 / 200, days=3, fmt="insights-csv")  # fmt: skip
    ended = res.instances["end_reason"].value_counts()
    assert ended["idle"] > 5 * ended["lifetime"]  # reaped by the keep-alive, mostly
    life = got.report["lifetime"]
    n, median = life["recycled"], (low + high) / 2
    fitted = got.scenario["platform"]["max_lifetime_s"]
    assert life["quantiles_s"][50] == pytest.approx(median, abs=3 * quantile_se(0.5, n, low, high))
    assert fitted["low_s"] == pytest.approx(low, abs=end_tolerance(n, low, high))
    assert fitted["high_s"] == pytest.approx(high, abs=end_tolerance(n, low, high))
    naive = naive_lifetime(got)
    assert len(naive) >= 30
    assert np.median(naive) < median - 2 * quantile_se(0.5, len(naive), low, high)


def lifetime_case(recycled, censored):
    """Environments born at 0 (one function): recycled ones as (last request's age, age at
    the next cold start); right-censored ones as their last request's age."""
    envs, idle = [], []
    for i, (age, up) in enumerate([*recycled, *((age, None) for age in censored)]):
        envs.append({"function": "f", "stream": str(i), "created_s": 0.0,
                     "last_start_s": age, "last_end_s": age, "uses": 5, "age_s": age})  # fmt: skip
        kind = "old" if up is not None else "open"
        idle.append({"function": "f", "stream": str(i), "kind": kind, "lower_s": 0.0,
                     "upper_s": math.inf, "next_cold_s": up - age if up else math.inf})  # fmt: skip
    return pd.DataFrame(envs), pd.DataFrame(idle)


def test_the_lifetime_needs_ten_recycled_and_tells_a_lower_bound():
    # Nine recycled: not estimated, the note and the counts.
    envs, idle = lifetime_case([(7000 + i, 7100 + i) for i in range(9)], [4000.0] * 5)
    assert lifetime(envs, idle, KEEP_S) == {"max_lifetime_s": None, "recycled": 9,
                                            "right_censored": 5, "note": NOT_ESTIMATED}  # fmt: skip
    # None recycled (their next cold start came after the keep-alive): as before the estimate.
    envs, idle = lifetime_case([(7000 + i, 7000 + i + 2 * KEEP_S) for i in range(20)], [])
    assert lifetime(envs, idle, KEEP_S) == {"max_lifetime_s": None, "recycled": 0,
                                            "note": NOT_ESTIMATED}  # fmt: skip
    assert lifetime(envs, idle, None) == {"max_lifetime_s": None, "recycled": 0}
    # Ten recycled at about 2 h, forty alive past 2.5 h: most of the mass lies beyond what the
    # logs saw recycled, and the estimate says it is a lower bound.
    envs, idle = lifetime_case([(7150 + 10 * i, 7200 + 10 * i) for i in range(10)],
                               [9000.0 + i for i in range(40)])  # fmt: skip
    life = lifetime(envs, idle, KEEP_S)
    assert (life["recycled"], life["right_censored"]) == (10, 40)
    assert life["mass_unbounded"] == pytest.approx(0.8, abs=0.01)
    assert "lower bound" in life["note"]
    fitted = life["max_lifetime_s"]  # from the recycled ones to past the oldest seen alive
    assert fitted["low_s"] < 7200 and fitted["high_s"] > 9039


# -- names (issue 18 §6.7) -------------------------------------------------------------------

REPORT = "REPORT RequestId: {}\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t"


def test_names_are_checked_and_no_path_escapes_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    log = tmp_path / "my logs.txt"  # its stem names the function: "my logs"
    log.write_text("".join(f"2024-05-01T12:00:0{i}.000Z {REPORT.format(f'r{i}')}\n"
                           for i in range(3)))  # fmt: skip
    for option, value in (("--name", "../../escape"), ("--function", "a b/c:d"),
                          ("--name", "x" * 101)):  # fmt: skip
        res = runner.invoke(app, ["logs", "fit", str(log), option, value])
        assert res.exit_code == 2, res.output
        assert f"{option} {value!r}: letters, digits, '.', '_' and '-'" in res.output
    res = runner.invoke(app, ["logs", "backtest", str(log), "--function", "../up"])
    assert res.exit_code == 2 and "--function '../up': letters" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my logs.txt"]  # nothing written
    # A function named in the logs as no scenario may name it: renamed, and said so.
    res = runner.invoke(app, ["logs", "fit", str(log), "--name", "ok"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "results" / "ok-fit"
    assert (out / "arrivals" / "my-logs.csv").is_file()
    fitted = load_scenario(out / "scenario.yaml")
    assert [f.name for f in fitted.functions] == ["my-logs"]
    m = json.loads((out / "fit.json").read_text())["per_function"]["my-logs"]
    assert m["logged_as"] == "my logs" and m["note"].startswith("named 'my logs' in the logs")
    # Log groups that are not Lambda's name functions too: "/../x" cannot climb out.
    page = {"events": [{"logStreamName": "s", "logGroupName": group, "timestamp": 1714564800000 + i,
                        "message": REPORT.format(f"q{i}")}
                       for i, group in enumerate(["/aws/lambda/../../x", "/aws/lambda/../../x"])]}  # fmt: skip
    (tmp_path / "page.json").write_text(json.dumps(page))
    got = fit(read_logs([tmp_path / "page.json"]), "f")
    assert list(got.arrivals) == ["x"]


# -- overlapping requests, warm-up (issue 18 §6.4, §6.13) ------------------------------------


def test_environments_serving_overlapping_requests_fit_instance_concurrency(tmp_path):
    from coldsim.cloudwatch import backtest

    sc = parse_scenario({
        "name": "multi", "seed": 3, "duration_s": 86400.0,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": 300}, "max_lifetime_s": None},
        "functions": [{"name": "api", "memory_mb": 2048, "instance_concurrency": 4,
                       "arrivals": {"process": "poisson", "rate_per_s": 0.02},
                       "duration": {"dist": "constant", "value_ms": 60000}}],
    })  # fmt: skip
    res = simulate(sc)
    ev = export.events(res.invocations, res.instances, {"api": 2048}, sc.name)
    export.write(ev, tmp_path, ["text"])
    parsed = read_logs([tmp_path / "text"])
    got = fit(parsed, "fitted")
    (entry,) = got.scenario["functions"]
    # The most requests one environment ran at once, which the run allowed up to 4.
    assert 2 <= entry["instance_concurrency"] <= 4
    assert got.report["per_function"]["api"]["instance_concurrency"] == entry["instance_concurrency"]
    # The handler time is that of requests run alone: sharing the CPU slowed the others.
    assert entry["duration"]["percentiles_ms"][50] == pytest.approx(60000, rel=1e-6)
    assert ev["duration_ms"].max() > 60000 * 1.5
    assert any("served up to" in w and "instance_concurrency" in w
               for w in got.report["warnings"])  # fmt: skip
    # Replayed, the fitted scenario's cold starts are the logs' (it was 43 against 20 when
    # it fitted one request per environment).
    replay = backtest.replay_scenario(got.scenario, got, tmp_path / "replay")
    report = backtest.compare(got, parsed, simulate(parse_scenario(replay)))
    observed = report["observed"]["cold_starts"]
    assert observed == int(ev["init_ms"].notna().sum())
    assert abs(report["predicted"]["cold_starts"] - observed) <= max(2, 0.15 * observed)
    # Gaps are counted from the end of the last request running, not of the one before.
    assert (got.idle.loc[got.idle["kind"] == "reused", "lower_s"] > 0).all()


def test_warm_up_requests_are_replayed_but_not_counted(tmp_path):
    runner = CliRunner()
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "name: w\nseed: 2\nduration_s: 14400\nwarmup_s: 3600\nplatform: {keep_alive: {policy: "
        "fixed, idle_s: 300}, max_lifetime_s: null}\nfunctions:\n  - {name: f, memory_mb: 256, "
        "duration: {dist: constant, value_ms: 50}, arrivals: {process: poisson, rate_per_s: "
        "0.01}}\n"
    )
    assert runner.invoke(app, ["run", str(sc), "--out", str(tmp_path / "run")]).exit_code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    res = runner.invoke(app, ["logs", "export", str(tmp_path / "run"), "--out",
                              str(tmp_path / "logs"), "--format", "text"])  # fmt: skip
    assert res.exit_code == 0, res.output
    # Logs of a coldsim run: its warm-up, by default.
    res = runner.invoke(app, ["logs", "fit", str(tmp_path / "logs"), "--out",
                              str(tmp_path / "fit")])  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "fit" / "fit.json").read_text())
    m = rep["per_function"]["f"]
    inv = pd.read_parquet(tmp_path / "run" / "invocations.parquet")
    counted = inv[(inv["status"] == "served") & (inv["arrival_s"] >= 3600)]
    assert m["invocations"] == len(counted) == summary["invocations"]
    assert m["cold_starts"] == int(counted["cold"].sum())
    assert m["warmup_requests"] == int(((inv["status"] == "served") & (inv["arrival_s"] < 3600)).sum())
    fitted = load_scenario(tmp_path / "fit" / "scenario.yaml")
    t0 = rep["t0_epoch_s"] - export.EPOCH_S  # the fit's time 0, in the run's time
    assert fitted.warmup_s == pytest.approx(3600 - t0)
    again = simulate(fitted).summary
    assert again["invocations"] == summary["invocations"]  # the same requests counted
    # One format's subfolder of the export: the same warm-up.
    res = runner.invoke(app, ["logs", "fit", str(tmp_path / "logs" / "text"), "--out",
                              str(tmp_path / "fit-text")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "fit-text" / "fit.json").read_text())["warmup_s"] == rep["warmup_s"]
    # Said explicitly; 0 counts every request; a bad value is exit 2.
    for value, expected in (("0", len(inv[inv["status"] == "served"])), ("7200", None)):
        res = runner.invoke(app, ["logs", "fit", str(tmp_path / "logs"), "--out",
                                  str(tmp_path / f"fit{value}"), "--warmup-s", value])  # fmt: skip
        assert res.exit_code == 0, res.output
        got = json.loads((tmp_path / f"fit{value}" / "fit.json").read_text())
        if expected is not None:
            assert got["per_function"]["f"]["invocations"] == expected
        else:
            assert got["warmup_s"] == 7200
    for value in ("-1", "nan", "1e9"):
        res = runner.invoke(app, ["logs", "fit", str(tmp_path / "logs"), "--out",
                                  str(tmp_path / "bad"), "--warmup-s", value])  # fmt: skip
        assert res.exit_code == 2 and "warm" in res.output, res.output
    assert not (tmp_path / "bad").exists()
