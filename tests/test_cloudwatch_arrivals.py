"""Fitted arrival processes (`coldsim logs fit --arrivals hourly|diurnal`): arrivals drawn
from a known process (coldsim's own generators, fixed seeds) are fitted back within K standard
errors; partial hours count for the seconds observed; the dispersion flags bursty traffic; and
the scenario written from exported logs loads, runs and expects as many requests as observed.

K = 4: a two-sided normal tail of 6e-5 per check, so a correct fit fails one of the few dozen
checks here with probability under 0.5%; a wrong exposure or a biased optimiser is off by far
more (the partial-hour case below is 15 standard errors off when divided by 3600 s).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from coldsim import load_scenario, simulate
from coldsim.cli import app
from coldsim.cloudwatch.arrivals import (
    DAY_S,
    HOUR_S,
    fit_arrivals,
    fit_diurnal,
    fit_hourly,
    goodness,
)
from coldsim.cloudwatch.fit import fit
from coldsim.cloudwatch.parse import read_logs
from coldsim.errors import ScenarioError
from coldsim.workload.arrivals import Diurnal, Piecewise
from scipy import stats
from typer.testing import CliRunner

K = 4.0


def draw(process: dict, start: float, end: float, seed: int) -> np.ndarray:
    """Arrival times in [start, end) from a built-in process, with the simulator's generator."""
    cls = {"piecewise": Piecewise, "diurnal": Diurnal}[process["process"]]
    proc = cls.model_validate(process)
    return np.concatenate(list(proc.generate(np.random.default_rng(seed), start, end)))


def circular(a: float, b: float, period: float = DAY_S) -> float:
    return abs((a - b + period / 2) % period - period / 2)


def test_hourly_rates_over_three_days_are_fitted_back():
    # A daily profile from 0.005 to 0.095 req/s; the window starts and ends mid-hour.
    truth = 0.05 + 0.045 * np.sin(2 * np.pi * (np.arange(24) + 0.5) / 24)
    start, end = 1800.0, 3 * DAY_S - 1200.0
    t = draw({"process": "piecewise", "rates_per_s": truth.tolist()}, start, end, seed=11)
    got = fit_hourly(t, start, end)
    # Hour 0 is seen 3 times, 1800 s short; hour 23 likewise 1200 s short.
    expected_exposure = np.full(24, 3 * HOUR_S)
    expected_exposure[0] -= 1800
    expected_exposure[23] -= 1200
    np.testing.assert_allclose(got.exposure_s, expected_exposure)
    # Each rate: a Poisson count over its exposure, SE sqrt(rate / exposure) at the truth.
    z = (got.rates_per_s - truth) / np.sqrt(truth / got.exposure_s)
    assert np.abs(z).max() < K, z
    assert (z**2).sum() < stats.chi2.ppf(0.999, 24)  # jointly, too
    np.testing.assert_allclose(got.standard_errors_per_s, np.sqrt(got.counts) / got.exposure_s)
    # Maximum likelihood: the fitted process expects exactly the observed count.
    assert (got.rates_per_s * got.exposure_s).sum() == pytest.approx(len(t), rel=1e-12)


def test_a_partial_hour_counts_for_the_seconds_observed():
    # Under a day: 4 clock hours, the first seen from 1800 s, the last to 900 s in.
    truth = np.array([0.5, 0.05, 0.2, 1.0])
    start, end = 1800.0, 3 * HOUR_S + 900.0
    t = draw({"process": "piecewise", "rates_per_s": truth.tolist()}, start, end, seed=3)
    got = fit_hourly(t, start, end)
    assert len(got.rates_per_s) == 4  # no rates for hours never seen
    np.testing.assert_allclose(got.exposure_s, [1800, 3600, 3600, 900])
    n0, n3 = int((t < HOUR_S).sum()), int((t >= 3 * HOUR_S).sum())
    assert got.rates_per_s[0] == n0 / 1800 and got.rates_per_s[3] == n3 / 900
    se = np.sqrt(truth / got.exposure_s)
    assert np.all(np.abs(got.rates_per_s - truth) < K * se)
    # Dividing by the whole hour would halve the first rate: far outside the error.
    assert abs(n0 / HOUR_S - truth[0]) > K * se[0]
    assert abs(n3 / HOUR_S - truth[3]) > K * se[3]


def test_a_diurnal_process_is_fitted_back_within_its_standard_errors():
    truth = {"base_rate_per_s": 0.05, "amplitude": 0.6, "peak_at_s": 50400.0}
    start, end = 1234.0, 2 * DAY_S + 500.0
    t = draw({"process": "diurnal", "period_s": DAY_S, **truth}, start, end, seed=7)
    got = fit_diurnal(t, start, end, fit_hourly(t, start, end))
    assert got.converged
    se = got.standard_errors
    # The errors come from the observed Fisher information (exact for this model: the rate is
    # linear in (base, base·a·cos, base·a·sin)); check them against a parametric bound: the
    # mean rate of n Poisson requests over T seconds is known to sqrt(n) / T.
    assert se["base_rate_per_s"] == pytest.approx(math.sqrt(len(t)) / (end - start), rel=0.1)
    assert abs(got.base_rate_per_s - truth["base_rate_per_s"]) < K * se["base_rate_per_s"]
    assert abs(got.amplitude - truth["amplitude"]) < K * se["amplitude"]
    assert circular(got.peak_at_s, truth["peak_at_s"]) < K * se["peak_at_s"]
    # Maximum likelihood: the simulator's own closed-form integral gives the observed count.
    assert got.process().expected_count(start, end) == pytest.approx(len(t), rel=1e-6)


def test_flat_traffic_gets_a_small_amplitude():
    start, end = 0.0, 2 * DAY_S
    t = draw({"process": "diurnal", "base_rate_per_s": 0.02, "amplitude": 0.0}, start, end, 5)
    got = fit_diurnal(t, start, end, fit_hourly(t, start, end))
    # With no daily swing, the estimate is the length of the first Fourier coefficient of n
    # uniform phases: Rayleigh with sigma sqrt(2 / n); beyond K sigma with probability e^-8.
    assert 0.0 <= got.amplitude < K * math.sqrt(2 / len(t))
    assert got.base_rate_per_s == pytest.approx(0.02, abs=K * math.sqrt(0.02 / (end - start)))


def test_poisson_traffic_passes_and_bursty_traffic_is_flagged():
    start, end = 0.0, 8 * DAY_S  # 168 degrees of freedom beyond the 24 rates
    rates = {"process": "piecewise", "rates_per_s": (0.01 + 0.01 * (np.arange(24) > 8)).tolist()}
    calm = draw(rates, start, end, seed=1)
    hourly = fit_hourly(calm, start, end)
    fitted = goodness(calm, start, end, hourly, fit_diurnal(calm, start, end, hourly), "hourly")
    assert fitted["overdispersed"] is False and "note" not in fitted
    assert abs(fitted["hourly"]["dispersion"] - 1) < K * fitted["hourly"]["dispersion_se"]
    # Each request of the same process brings 4 more within a second: per-hour counts vary
    # 5 times as much as a Poisson count of the same mean.
    rng = np.random.default_rng(2)
    bursts = draw(rates, start, end, seed=1)
    bursty = np.sort(
        np.concatenate([bursts] + [bursts + rng.random(len(bursts)) for _ in range(4)])
    )
    bursty = bursty[bursty < end]
    hourly = fit_hourly(bursty, start, end)
    fitted = goodness(bursty, start, end, hourly, fit_diurnal(bursty, start, end, hourly), "hourly")
    assert fitted["overdispersed"] is True
    # Counts of 5-request bursts are 5 times Poisson counts: so is their chi-square, and its
    # spread is 5 times the Poisson one (dispersion_se).
    assert abs(fitted["hourly"]["dispersion"] - 5) < K * 5 * fitted["hourly"]["dispersion_se"]
    assert "fewer cold starts than replaying" in fitted["note"]


def test_one_day_of_logs_cannot_judge_the_hourly_dispersion():
    start, end = 600.0, DAY_S - 600.0
    t = draw({"process": "piecewise", "rates_per_s": [0.01] * 24}, start, end, seed=4)
    hourly = fit_hourly(t, start, end)
    fitted = goodness(t, start, end, hourly, fit_diurnal(t, start, end, hourly), "hourly")
    assert fitted["hourly"]["dispersion"] is None and fitted["hourly"]["dof"] <= 0
    assert fitted["diurnal"]["dispersion"] is not None  # judged on the diurnal fit instead
    assert fitted["overdispersed"] is False


def test_logs_shorter_than_a_day_get_neither_hourly_rates_nor_a_daily_cycle():
    # 5 h of logs from 00:20:00 UTC: hourly rates would repeat every 6 h, not daily.
    t = draw({"process": "piecewise", "rates_per_s": [0.05]}, 0.0, 5 * HOUR_S, seed=6)
    t0 = 1_767_225_600 + 1200
    with pytest.raises(ScenarioError, match="a daily cycle needs logs spanning 18 h or more"):
        fit_arrivals({"f": t}, t0, 5 * 3600, "diurnal")
    with pytest.raises(ScenarioError, match="need logs reaching into all 24 clock hours"):
        fit_arrivals({"f": t}, t0, 5 * 3600, "hourly")
    # From 00:20 to 23:20 the logs reach into all 24 clock hours (the last one in part).
    t = draw({"process": "piecewise", "rates_per_s": [0.05]}, 0.0, 23 * HOUR_S, seed=6)
    got = fit_arrivals({"f": t}, t0, 23 * 3600, "hourly")
    assert got.t0_epoch_s == 1_767_225_600 and got.processes["f"]["start_s"] == 1200
    assert len(got.processes["f"]["rates_per_s"]) == 24
    assert got.per_function["f"]["diurnal"] is not None  # 23 h: a daily cycle is fitted too


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two days of a daily cycle and a flat function, run and exported from the command line
    with time 0 at 00:30:07 UTC: the logs start mid-hour."""
    pytest.importorskip("lifelines")
    tmp = tmp_path_factory.mktemp("logs")
    sc = tmp / "s.yaml"
    sc.write_text(
        "name: daily\nseed: 4\nduration_s: 172800\nplatform: {keep_alive: {policy: fixed, "
        "idle_s: 300}, max_lifetime_s: null}\nfunctions:\n"
        "  - {name: web, memory_mb: 256, duration: {dist: constant, value_ms: 50}, arrivals: "
        "{process: diurnal, base_rate_per_s: 0.02, amplitude: 0.8, peak_at_s: 50400}}\n"
        "  - {name: job, memory_mb: 512, duration: {dist: constant, value_ms: 200}, arrivals: "
        "{process: poisson, rate_per_s: 0.004}}\n"
    )
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(sc), "--out", str(tmp / "run")])
    assert res.exit_code == 0, res.output
    epoch = 1_767_225_600 + 1807
    res = runner.invoke(app, ["logs", "export", str(tmp / "run"), "--out", str(tmp / "logs"),
                              "--format", "lambda-json", "--epoch-s", str(epoch)])  # fmt: skip
    assert res.exit_code == 0, res.output
    return tmp, epoch


@pytest.mark.parametrize("process", ["hourly", "diurnal"])
def test_fit_from_the_command_line_writes_a_scenario_that_runs(exported, process):
    tmp, epoch = exported
    out = tmp / f"fit-{process}"
    res = CliRunner().invoke(app, ["logs", "fit", str(tmp / "logs"), "--out", str(out),
                                   "--arrivals", process])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"arrivals: {process} Poisson fit" in res.output
    report = json.loads((out / "fit.json").read_text())
    replay = fit(read_logs([tmp / "logs"]), "replay")
    # Time 0 is the clock hour before the first request; the window is the replay's span.
    t0 = report["t0_epoch_s"]
    assert t0 % 3600 == 0 and t0 == 1_767_225_600
    start, end = report["arrivals"]["window_s"]
    assert start == replay.t0_epoch_s - t0 and 1807 <= start < 3600
    assert end - start == replay.scenario["duration_s"]
    scenario = load_scenario(out / "scenario.yaml")
    assert scenario.duration_s == end
    kind = {"hourly": Piecewise, "diurnal": Diurnal}[process]
    assert all(isinstance(f.arrivals, kind) and f.arrivals.start_s == start
               for f in scenario.functions)  # fmt: skip
    web = report["per_function"]["web"]["arrivals"]
    if process == "diurnal":  # the truth's peak, 50400 s after the run's time 0
        d = web["diurnal"]
        assert circular(d["peak_at_s"], 50400 + 1807) < K * d["standard_errors"]["peak_at_s"]
        assert abs(d["amplitude"] - 0.8) < K * d["standard_errors"]["amplitude"]
    assert web["preferred_by_aic"] == "diurnal"  # 3 parameters against 24, the truth a cosine
    # The fitted process expects the observed count: a run's count is Poisson around it.
    observed = report["invocations"]
    got = simulate(scenario).summary["invocations"]
    assert abs(got - observed) < K * math.sqrt(observed), (got, observed)


def test_a_bad_arrivals_option_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["logs", "fit", str(tmp_path), "--arrivals", "weekly"])
    assert res.exit_code == 2
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", res.output)
    assert "--arrivals" in text and "'weekly' is not one of 'replay', 'hourly', 'diurnal'" in text
