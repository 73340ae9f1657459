"""Arrival processes fitted to the logs (`coldsim logs fit --arrivals hourly|diurnal`): a
Poisson process whose rate is the maximum-likelihood fit to the observed request times, instead
of the times replayed, so that the scenario can be rerun with other seeds or for longer.

Scenario time 0 is the clock hour (UTC) at or before the logs' first request, so the scenario's
hours are clock hours. Every function is observed over the logs' window [start, end) in
scenario time (from the first request of any function to the replay's end): an hour seen in
part counts for the seconds seen (its exposure), and the fitted process runs from `start_s`,
so it expects as many requests over the window as were observed.

- hourly: one rate per hour of day, a `piecewise` process with 3600 s intervals from time 0,
  repeating daily; for logs reaching into all 24 clock hours. The estimate is
  count / exposure over the days seen, its standard error sqrt(count) / exposure. Days are
  pooled: a weekly pattern is not fitted.
- diurnal: rate(t) = base · (1 + amplitude · cos(2π (t − peak) / 1 day)), amplitude in [0, 1],
  by maximum likelihood (scipy), started from the hourly fit; for logs spanning 18 h or more.

Goodness of fit, per function: the log-likelihoods of both fits (and AIC), and Pearson's
chi-square of the counts in each full clock hour against each fit's expectation, per degree of
freedom (the dispersion: about 1 for Poisson traffic). Well above 1 the traffic is burstier
than a Poisson process, which then gives fewer cold starts than the observed arrivals would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import xlogy

from ..errors import ScenarioError
from ..workload.arrivals import Diurnal

HOUR_S = 3600.0
DAY_S = 86400.0
#: What `--arrivals` may name: the observed times, or a process fitted to them.
CHOICES = ("replay", "hourly", "diurnal")
#: Overdispersion is called when the dispersion exceeds 1 by this many standard errors.
OVERDISPERSED_SE = 3.0
#: The shortest logs a daily cycle is fitted to. Over a shorter window the likelihood can put a
#: trough in it with a huge base rate (a rate that explodes outside the logs); over 3/4 of a day
#: the cycle's integral is at least 0.7 of the window whatever its phase, which bounds the base.
MIN_DIURNAL_SPAN_S = 0.75 * DAY_S


def per_hour(times: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Requests and seconds observed (exposure) in each clock hour k = 0, 1, ... of [0, end)
    (times in [start, end), scenario time)."""
    n_hours = math.ceil(end / HOUR_S)
    counts = np.bincount((np.asarray(times) // HOUR_S).astype(int), minlength=n_hours)
    lo = np.arange(n_hours) * HOUR_S
    exposure = np.clip(np.minimum(lo + HOUR_S, end) - np.maximum(lo, start), 0.0, None)
    return counts[:n_hours], exposure


@dataclass
class HourlyFit:
    """Rates per hour of day (index: clock hour from time 0, modulo their number)."""

    rates_per_s: np.ndarray
    standard_errors_per_s: np.ndarray
    counts: np.ndarray
    exposure_s: np.ndarray
    log_likelihood: float

    def expected(self, n_hours: int, exposure: np.ndarray) -> np.ndarray:
        """Expected requests in clock hours 0 .. n_hours - 1, given their exposure."""
        return self.rates_per_s[np.arange(n_hours) % len(self.rates_per_s)] * exposure


def fit_hourly(times: np.ndarray, start: float, end: float) -> HourlyFit:
    """Maximum-likelihood rate per hour of day: requests / seconds observed in that hour, over
    all days (a partial first or last hour counts for the seconds the logs cover)."""
    counts, exposure = per_hour(times, start, end)
    period = min(24, len(counts))
    day_hour = np.arange(len(counts)) % period
    n = np.bincount(day_hour, counts, period)
    e = np.bincount(day_hour, exposure, period)
    seen = e > 0  # an hour of day never in the window is never used: its rate is moot
    rates = np.divide(n, e, out=np.zeros(period), where=seen)
    se = np.divide(np.sqrt(n), e, out=np.zeros(period), where=seen)
    # log L = sum log rate(t_i) - integral of the rate = sum_h n_h log r_h - r_h e_h.
    ll = float((xlogy(n, rates) - rates * e).sum())
    return HourlyFit(rates, se, n, e, ll)


@dataclass
class DiurnalFit:
    base_rate_per_s: float
    amplitude: float
    peak_at_s: float  # in [0, 1 day), scenario time
    standard_errors: dict[str, float | None]
    log_likelihood: float
    converged: bool

    def process(self) -> Diurnal:
        return Diurnal(
            process="diurnal",
            base_rate_per_s=self.base_rate_per_s,
            amplitude=self.amplitude,
            period_s=DAY_S,
            peak_at_s=self.peak_at_s,
        )

    def expected(self, n_hours: int, start: float, end: float) -> np.ndarray:
        """Expected requests in clock hours 0 .. n_hours - 1 within [start, end): the
        closed-form integral the simulator itself uses (Diurnal.expected_count)."""
        proc = self.process()
        lo = np.clip(np.arange(n_hours) * HOUR_S, start, end)
        hi = np.clip(np.arange(1, n_hours + 1) * HOUR_S, start, end)
        return np.array([proc.expected_count(a, b) for a, b in zip(lo, hi, strict=True)])


def fit_diurnal(
    times: np.ndarray, start: float, end: float, hourly: HourlyFit | None = None
) -> DiurnalFit:
    """Maximum likelihood of base · (1 + a · cos(ω t − θ)), ω = 2π / 1 day, over [start, end)
    (at least one request).

    log L = n log base + Σ log(1 + a cos(ω t_i − θ)) − base · (T + a S(θ)), with T = end − start
    and S(θ) the integral of the cosine over the window. For given (a, θ) it is largest at
    base = n / (T + a S), so only (a, θ) are searched (L-BFGS-B, a bounded to [0, 1])."""
    t = np.asarray(times, dtype=float)
    n, span, w = len(t), end - start, 2 * math.pi / DAY_S
    wt = w * t

    def minus_log_l(x: np.ndarray) -> tuple[float, np.ndarray]:
        a, theta = x
        u, v = np.cos(wt - theta), np.sin(wt - theta)
        s = (math.sin(w * end - theta) - math.sin(w * start - theta)) / w
        ds = (math.cos(w * start - theta) - math.cos(w * end - theta)) / w  # dS/dθ
        m = span + a * s  # expected requests / base
        g = np.maximum(1 + a * u, 1e-300)  # 0 only at a = 1 exactly at the trough
        value = n * math.log(m) - np.log(g).sum()  # -log L + constants, base profiled out
        grad = np.array([n * s / m - (u / g).sum(), n * a * ds / m - a * (v / g).sum()])
        return value / n, grad / n  # per request: the same tolerances suit any traffic

    # Start from the hourly profile's first harmonic (least squares on cos, sin, weighted by
    # each hour's exposure): near the optimum, and it gives the peak's phase.
    a0, theta0 = 0.5, 0.0
    if hourly is not None:
        seen = hourly.exposure_s > 0
        mid = w * (np.flatnonzero(seen) + 0.5) * HOUR_S
        basis = np.column_stack([np.ones_like(mid), np.cos(mid), np.sin(mid)])
        root = np.sqrt(hourly.exposure_s[seen])
        c = np.linalg.lstsq(basis * root[:, None], hourly.rates_per_s[seen] * root, rcond=None)[0]
        if c[0] > 0:
            a0, theta0 = min(math.hypot(c[1], c[2]) / c[0], 0.95), math.atan2(c[2], c[1])
    tight = {"ftol": 1e-12, "gtol": 1e-9}  # to well within a standard error of the optimum
    res = minimize(minus_log_l, [max(a0, 0.05), theta0], jac=True, method="L-BFGS-B",
                   bounds=[(0.0, 1.0), (None, None)], options=tight)  # fmt: skip
    a, theta = float(res.x[0]), float(res.x[1])
    s = (math.sin(w * end - theta) - math.sin(w * start - theta)) / w
    base = n / (span + a * s)
    log_l = -n * res.fun + n * math.log(n) - n
    se = _diurnal_errors(wt, base, a, theta, w)
    return DiurnalFit(base, a, (theta / w) % DAY_S, se, float(log_l), bool(res.success))


def _diurnal_errors(wt: np.ndarray, base: float, a: float, theta: float, w: float):
    """Standard errors from the observed Fisher information. In β = (base, base·a·cos θ,
    base·a·sin θ) the rate is linear, β · (1, cos ωt, sin ωt), so the information is exactly
    Σ z_i z_iᵀ / rate(t_i)²; the delta method carries its inverse to (base, amplitude, peak).
    The normal approximation behind it fails on the bound (a = 0: no peak; a = 1): None there."""
    z = np.column_stack([np.ones_like(wt), np.cos(wt), np.sin(wt)])
    rate = base * (1 + a * np.cos(wt - theta))
    out: dict[str, float | None] = {"base_rate_per_s": None, "amplitude": None, "peak_at_s": None}
    if not 1e-6 < a < 1 - 1e-6 or len(wt) < 3:
        return out
    try:
        cov = np.linalg.inv((z / rate[:, None]).T @ (z / rate[:, None]))
    except np.linalg.LinAlgError:
        return out
    c, s, r = math.cos(theta), math.sin(theta), base * a
    jac = np.array([[1.0, 0.0, 0.0],
                    [-a / base, c / base, s / base],
                    [0.0, -s / (r * w), c / (r * w)]])  # fmt: skip
    var = np.diag(jac @ cov @ jac.T)
    return {k: float(math.sqrt(v)) if v >= 0 and math.isfinite(v) else None
            for k, v in zip(out, var, strict=True)}  # fmt: skip


def pearson(counts: np.ndarray, expected: np.ndarray, full: np.ndarray, parameters: int):
    """Pearson's chi-square of the counts in full hours against the expectation, per degree
    of freedom. Partial hours are left out: the window's first and last hour hold the first
    and last request by construction."""
    use = full & (expected > 0)
    mu, n = expected[use], counts[use]
    chi2 = float(((n - mu) ** 2 / mu).sum())
    dof = int(use.sum()) - parameters
    out: dict[str, Any] = {"pearson_chi2": chi2, "dof": dof, "dispersion": None}
    if dof > 0:
        # Under a Poisson process each term has mean 1 and variance 2 + 1/μ: the chi-square
        # distribution's 2 understates it for hours of few requests.
        out.update(dispersion=chi2 / dof, dispersion_se=math.sqrt((2 + 1 / mu).sum()) / dof)
    return out


def goodness(times, start, end, hourly: HourlyFit, diurnal: DiurnalFit | None, chosen: str):
    """Both fits' log-likelihood, AIC and per-hour dispersion, and a note on overdispersion
    judged on the chosen fit (on the diurnal one when the logs are too short to judge the
    hourly one: its 24 rates use up a day of hours)."""
    counts, exposure = per_hour(times, start, end)
    full = exposure >= HOUR_S
    mu = hourly.expected(len(counts), exposure)
    # The hourly rates the full hours depend on are its parameters there (a day of full hours
    # has as many rates as hours: nothing left to judge the dispersion by).
    day_hour = np.arange(len(counts)) % len(hourly.rates_per_s)
    fits = {"hourly": (hourly.log_likelihood, int((hourly.exposure_s > 0).sum()), mu,
                       len(np.unique(day_hour[full & (mu > 0)])))}  # fmt: skip
    if diurnal is not None:
        fits["diurnal"] = (diurnal.log_likelihood, 3, diurnal.expected(len(counts), start, end), 3)
    out: dict[str, Any] = {}
    for name, (log_l, params, expected, used) in fits.items():
        out[name] = {"log_likelihood": log_l, "parameters": params, "aic": 2 * params - 2 * log_l,
                     **pearson(counts, expected, full, used)}  # fmt: skip
    out["preferred_by_aic"] = min(fits, key=lambda f: out[f]["aic"]) if len(fits) > 1 else None
    basis = chosen if out[chosen]["dispersion"] is not None or diurnal is None else "diurnal"
    d = out[basis]
    out["overdispersed"] = None
    if d["dispersion"] is None:
        out["note"] = "too few full hours in the logs to judge the per-hour dispersion"
        return out
    out["overdispersed"] = d["dispersion"] > 1 + OVERDISPERSED_SE * d["dispersion_se"]
    if out["overdispersed"]:
        out["note"] = (
            f"per-hour counts are overdispersed against the {basis} fit (chi-square/dof "
            f"{d['dispersion']:.2f}, Poisson: 1 ± {d['dispersion_se']:.2f}): the traffic is "
            "burstier than a Poisson process, which under-represents its bursts, so the fitted "
            "process will give fewer cold starts than replaying the observed arrivals would "
            "(--arrivals replay; `coldsim logs backtest` measures the difference)"
            + (", or the daily shape is not a cosine (compare --arrivals hourly)"
               if basis == "diurnal" else "")
        )  # fmt: skip
    return out


@dataclass
class Fitted:
    """The fitted processes (scenario data) and what they are based on."""

    t0_epoch_s: int  # scenario time 0: the clock hour at or before the first request
    duration_s: int
    processes: dict[str, dict[str, Any]]
    per_function: dict[str, dict[str, Any]]
    report: dict[str, Any]


def fit_arrivals(
    observed: dict[str, np.ndarray], t0_epoch_s: int, duration_s: int, chosen: str
) -> Fitted:
    """Each function's process fitted to its arrivals (s from t0_epoch_s, a whole second; the
    replay ends at duration_s): time 0 moved back to the clock hour, the same window kept."""
    if chosen not in CHOICES[1:]:
        raise ValueError(f"arrivals {chosen!r}: expected one of {', '.join(CHOICES[1:])}")
    hour = int(t0_epoch_s // HOUR_S * HOUR_S)
    shift = t0_epoch_s - hour
    start, end = shift, duration_s + shift
    daily = end - start >= MIN_DIURNAL_SPAN_S
    if chosen == "hourly" and end <= DAY_S - HOUR_S:  # some clock hour never seen
        raise ScenarioError(
            f"hourly rates repeat every day: they need logs reaching into all 24 clock hours "
            f"(these cover {math.ceil(end / HOUR_S)}); replay, or fit longer logs"
        )
    if chosen == "diurnal" and not daily:
        raise ScenarioError(
            f"a daily cycle needs logs spanning {MIN_DIURNAL_SPAN_S / HOUR_S:g} h or more (these "
            f"span {(end - start) / HOUR_S:.1f} h): fit hourly rates, or replay"
        )
    processes, per_function = {}, {}
    for f, t in observed.items():
        times = np.asarray(t, dtype=float) + shift
        hourly = fit_hourly(times, start, end)
        diurnal = fit_diurnal(times, start, end, hourly) if daily else None
        if chosen == "hourly":
            proc = {"process": "piecewise", "interval_s": HOUR_S,
                    "rates_per_s": [float(f"{r:.6g}") for r in hourly.rates_per_s]}  # fmt: skip
        else:
            base = float(f"{diurnal.base_rate_per_s:.6g}")
            proc = {"process": "diurnal", "base_rate_per_s": base,
                    "amplitude": round(diurnal.amplitude, 4), "period_s": DAY_S,
                    "peak_at_s": round(diurnal.peak_at_s, 1)}  # fmt: skip
        if start > 0:
            proc["start_s"] = float(start)  # the logs' window: nothing generated before it
        processes[f] = proc
        per_function[f] = {
            "process": chosen,
            "hourly": {"rates_per_s": hourly.rates_per_s.tolist(),
                       "standard_errors_per_s": hourly.standard_errors_per_s.tolist(),
                       "exposure_s": hourly.exposure_s.tolist()},
            "diurnal": None if diurnal is None else {
                "base_rate_per_s": diurnal.base_rate_per_s, "amplitude": diurnal.amplitude,
                "peak_at_s": diurnal.peak_at_s,
                "peak_utc": _clock(hour + diurnal.peak_at_s, "%H:%M"),
                "standard_errors": diurnal.standard_errors, "converged": diurnal.converged},
        }  # fmt: skip
        fit = goodness(times, start, end, hourly, diurnal, chosen)
        for name in ("hourly", "diurnal"):
            if name in fit:
                per_function[f][name].update(fit.pop(name))
        per_function[f].update(fit)
    report = {
        "process": chosen, "time_zero_epoch_s": hour,
        "time_zero_utc": _clock(hour, "%Y-%m-%dT%H:%M:%SZ"), "window_s": [start, end],
        "note": "time 0 is the clock hour (UTC) at or before the first request; the fitted "
        "processes generate arrivals from start_s (the first request) to the end, the span the "
        "logs cover"
        + ("; rates_per_s[k] is the rate in clock hour k from time 0, the list repeating "
           "daily" if chosen == "hourly" else "")
        + ("" if daily else "; no daily cycle fitted: the logs span less than "
           f"{MIN_DIURNAL_SPAN_S / HOUR_S:g} h")
        + "; arrivals/<function>.csv hold the observed times (not used by the scenario)",
    }  # fmt: skip
    return Fitted(hour, end, processes, per_function, report)


def _clock(epoch_s: float, fmt: str) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime(fmt)
