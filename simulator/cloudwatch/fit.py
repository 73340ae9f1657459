"""From Lambda's logs to a scenario (`coldsim logs fit`): what each function's traffic, handler
and init times were, and how long the platform kept idle environments.

Each REPORT is written as its invocation ends, so its handler started `duration` earlier and
the request arrived `init` (and `restore`) before that on a cold start. A log stream is one
execution environment: its requests, the idle gaps between them and its age tell how the
platform kept it. The keep-alive is estimated from censored evidence by the nonparametric
maximum-likelihood (Turnbull) estimate of lifelines [sources: lifelines]:
- an idle gap followed by reuse proves the environment outlived that gap: K > gap;
- an environment last used at e, when the function's next cold start came at c > e, was gone
  by then (Lambda reuses an idle environment it still has): K < c - e. Old environments are
  left out of this (default: older than an hour at their last use): they may have been
  recycled, not reaped [sources: aws-lifecycle];
- an environment with no later cold start says nothing (other environments may have served
  its function), nor does one not seen from its start (provisioned, or begun before the
  logs: provisioned environments are never reaped when idle).
A narrow estimate (the intervals holding its 5th to 95th percentiles span at most 10% of the
median) becomes a fixed keep-alive, a wider one a uniform range through them. The recycling
lifetime (max_lifetime_s) is estimated the same way, and by the same rule, from every
environment seen from its start (`lifetime`):
- one past `young_s` whose function next started cold sooner than the shortest keep-alive
  after its last request was recycled, between its ages at that request and that cold start;
- every other one (reaped while idle, alive at the logs' end) outlived its age at its last
  request: right-censored, which is what keeps environments reaped young from biasing the
  lifetime low. With fewer than 10 recycled the lifetime is not estimated.
Arrivals are replayed as observed, or a Poisson process is fitted to them (hourly or diurnal:
.arrivals). Each function's runtime is the one its environments logged as they started
(INIT_START, RESTORE_START, platform.initStart or platform.restoreStart: `Parsed.runtimes`),
when coldsim has it: it prices SnapStart (Java pays no cache or restore fees) and gives the
init preset of a function whose logs show no on-demand init.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from ..runtimes import DEFAULT_RUNTIME, LAMBDA_RUNTIMES
from ..scenario.schema import NAME_PATTERN
from ..scenario.snapstart import BILLED_RESTORE_MS, SUPPORTED, priced
from . import consistency
from .parse import Parsed, runtime_name

#: Percentiles kept of empirical distributions (0, 1, ..., 100).
PERCENTILES = list(range(0, 101))
#: Environments older than this at their last use may have been recycled: their final idle
#: period does not bound the keep-alive (AWS recycles after hours [sources: recycling-2h]).
YOUNG_S = 3600.0


@dataclass
class Fit:
    """A fitted scenario (plain data), per-function arrival times (s from t0), and what the
    fit is based on."""

    scenario: dict[str, Any]
    arrivals: dict[str, np.ndarray]
    t0_epoch_s: float
    report: dict[str, Any]
    environments: pd.DataFrame = field(repr=False)
    idle: pd.DataFrame = field(repr=False)


def requests(parsed: Parsed) -> pd.DataFrame:
    """The parsed REPORTs with start_s (handler start) and arrival_s (epoch s) and cold. (The
    same REPORT read from several files, one export in several formats, counts once:
    `read_logs` keeps one.)"""
    inv = parsed.invocations.sort_values(["function", "end_s"], kind="stable")
    inv = inv.reset_index(drop=True)
    names = scenario_names(inv["function"].unique().tolist())
    if any(k != v for k, v in names.items()):
        inv["function"] = inv["function"].map(names)
    inv["start_s"] = inv["end_s"] - inv["duration_ms"] / 1000.0
    init = inv["init_ms"].fillna(0.0) + inv["restore_ms"].fillna(0.0)
    inv["arrival_s"] = inv["start_s"] - init / 1000.0
    inv["cold"] = inv["init_ms"].notna() | inv["restore_ms"].notna()
    return inv


#: What a scenario's function name may hold (the schema's NAME_PATTERN, at most 200 long).
_NAME = re.compile(NAME_PATTERN)
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def scenario_names(logged: list[str]) -> dict[str, str]:
    """Each logged function name -> its name in a scenario: itself when a scenario allows it
    (letters, digits, . _ -; also a file name, so no path can escape the output folder),
    else with each run of other characters turned into "-" ("a b/c:d" -> "a-b-c-d")."""
    out: dict[str, str] = {}
    for name in logged:
        safe = (
            name
            if _NAME.fullmatch(name) and len(name) <= 200
            else (_NOT_IN_NAME.sub("-", name).lstrip("._-")[:200] or "function")
        )
        out[name] = safe
    seen: dict[str, str] = {}
    for name, safe in out.items():
        if safe in seen:
            raise ScenarioError(
                f"the logs' functions {seen[safe]!r} and {name!r} would both be named {safe!r} "
                "in the scenario (letters, digits, '.', '_' and '-' only): rename one"
            )
        seen[safe] = name
    return out


def environments(inv: pd.DataFrame, log_end_s: float, young_s: float = YOUNG_S):
    """Per environment (log stream), and per idle period between and after its requests: its
    kind and bounds on the keep-alive, when it began (`at_s`, epoch s), the file its request
    was read from, and the load then (`load`: the function's environments seen alive, from
    their first request to their last). An environment serving requests that overlap (a
    multi-request run) is idle only while none runs: `concurrency` is the most it ran at once."""
    envs, parts = [], []
    known = inv[inv["stream"] != ""]
    for f, reqs in known.groupby("function", sort=True):
        colds = np.sort(reqs.loc[reqs["cold"], "arrival_s"].to_numpy())
        for stream, r in reqs.groupby("stream", sort=False):
            r = r.sort_values("start_s", kind="stable")
            start, end = r["start_s"].to_numpy(), r["end_s"].to_numpy()
            busy_until = np.maximum.accumulate(end)  # the requests before each overlap it
            born = r["arrival_s"].iloc[0] if r["cold"].iloc[0] else math.nan
            last = float(busy_until[-1])
            age = last - born
            envs.append({"function": f, "stream": stream, "created_s": born, "last_end_s": last,
                         "uses": len(r), "age_s": age, "last_start_s": float(start.max()),
                         "first_start_s": float(start[0]),
                         "concurrency": _most_at_once(start, end)})  # fmt: skip
            if math.isnan(born):
                # Not seen from its start: provisioned (never reaped when idle: no evidence
                # on the keep-alive), or begun before the logs.
                continue
            gaps = start[1:] - busy_until[:-1]
            idle_gap = gaps > 0  # (a request starting while another runs ends no idle period)
            files = r["file"].to_numpy()
            n = int(idle_gap.sum())
            parts.append(pd.DataFrame({
                "function": f, "stream": stream, "kind": "reused", "lower_s": gaps[idle_gap],
                "upper_s": np.full(n, math.inf), "next_cold_s": np.full(n, math.nan),
                "at_s": busy_until[:-1][idle_gap], "file": files[1:][idle_gap],
            }))  # fmt: skip
            after = colds[colds > last]
            next_cold = float(after[0] - last) if len(after) else math.inf
            if len(after):
                if not age < young_s:  # maybe recycled: no bound on the keep-alive
                    kind, lower, upper = "old", 0.0, math.inf
                else:
                    kind, lower, upper = "ended", 0.0, next_cold
            else:
                # No later cold start: its function's later requests may all have gone to
                # other environments, so this says nothing about how long it lived.
                kind, lower, upper = "open", 0.0, math.inf
            parts.append(pd.DataFrame({
                "function": [f], "stream": stream, "kind": kind, "lower_s": lower,
                "upper_s": upper, "next_cold_s": next_cold, "at_s": last, "file": files[-1],
            }))  # fmt: skip
    columns = ["function", "stream", "kind", "lower_s", "upper_s", "next_cold_s", "at_s",
               "file", "load"]  # fmt: skip
    envs = pd.DataFrame(envs)
    if not parts:
        return envs, pd.DataFrame(columns=columns)
    idle = pd.concat(parts, ignore_index=True)
    idle["load"] = 0
    for f, e in envs.groupby("function"):
        rows = (idle["function"] == f).to_numpy()
        at = idle.loc[rows, "at_s"].to_numpy()
        firsts, lasts = np.sort(e["first_start_s"].to_numpy()), np.sort(e["last_end_s"].to_numpy())
        idle.loc[rows, "load"] = (np.searchsorted(firsts, at, "right")
                                  - np.searchsorted(lasts, at, "left"))  # fmt: skip
    return envs, idle[columns]


def _alone(r: pd.DataFrame) -> np.ndarray:
    """Per request (in r's order): no other request of its environment ran while it did."""
    known = (r["stream"] != "").to_numpy()
    order = np.lexsort((r["start_s"].to_numpy(), r["stream"].to_numpy()))
    stream = r["stream"].to_numpy()[order]
    start, end = r["start_s"].to_numpy()[order], r["end_s"].to_numpy()[order]
    same_prev = np.r_[False, stream[1:] == stream[:-1]]
    # the latest end among the earlier requests of the same stream
    busy = pd.Series(end).groupby(stream).cummax().to_numpy()
    after_prev = ~same_prev | (start >= np.r_[-np.inf, busy[:-1]])
    before_next = np.r_[~same_prev[1:] | (start[1:] >= end[:-1]), True]
    alone = np.empty(len(r), dtype=bool)
    alone[order] = after_prev & before_next
    return alone & known


def _most_at_once(start: np.ndarray, end: np.ndarray) -> int:
    """The most of these requests running at once (one ending as another starts: not both)."""
    if len(start) < 2 or (start[1:] >= np.maximum.accumulate(end)[:-1]).all():
        return 1
    times = np.concatenate([start, end])
    steps = np.concatenate([np.ones(len(start)), -np.ones(len(end))])
    order = np.lexsort((steps, times))  # at one time, ends first
    return int(np.cumsum(steps[order]).max())


@dataclass
class _Turnbull:
    """Turnbull's estimate: its intervals (sorted by midpoint; an unbounded one's midpoint is
    its left end) and their probabilities."""

    left: np.ndarray
    right: np.ndarray
    mid: np.ndarray
    probs: np.ndarray

    def at(self, p: float) -> int:
        """The interval holding the p-th percentile."""
        return min(int(np.searchsorted(np.cumsum(self.probs), p / 100.0)), len(self.mid) - 1)

    def quantiles(self) -> dict[int, float]:
        return {p: float(self.mid[self.at(p)]) for p in (5, 25, 50, 75, 95)}

    def unbounded(self) -> float:
        """The mass beyond every observed upper bound."""
        return float(self.probs[~np.isfinite(self.right)].sum())

    def fixed_or_uniform(self) -> float | dict[str, Any]:
        """The median when the estimate is narrow, else a uniform range through its 5th and
        95th percentiles. The estimate's mass sits in intervals; their extent, not their
        midpoints, is what the data pin down: a fixed value only when the whole 5-95% span
        is within 10% of the median (its middle is then within 5% of any value in it)."""
        q = self.quantiles()
        median = q[50]
        lo, hi = float(self.left[self.at(5)]), float(self.right[self.at(95)])
        if np.isfinite(hi) and hi - lo <= 0.10 * median:
            return round(median, 1)
        if not np.isfinite(hi):
            hi = q[95]
        width = (hi - lo) / 0.9
        low = max(0.0, lo - 0.05 * width)
        return {"dist": "uniform", "low_s": round(low, 1), "high_s": round(low + width, 1)}


#: Log-likelihood gain below which the Turnbull EM stops. lifelines' default (1e-7) can keep
#: it going for minutes on a few hundred intervals (577 s on 4 days of 15 functions); at 1e-4
#: the keep-alive and lifetime quantiles of the tests came out the same to 0.1 s.
TURNBULL_TOL = 1e-4


def _turnbull(
    lower: np.ndarray, upper: np.ndarray, informative: np.ndarray, tol: float = TURNBULL_TOL
) -> _Turnbull:
    """lifelines' NPMLE of interval-censored [lower, upper] (upper inf: right-censored).

    Lower bounds of the `informative` = False observations (ones bounded only from below)
    that lie below every finite upper bound say nothing the largest of them does not (all
    the estimate's mass lies above that one), so only it is kept; then bounds to 10 ms,
    equal ones counted once with a weight: thousands of short-lived observations add one. Its
    EM stops once an iteration gains less than `tol` in log-likelihood."""
    from lifelines.fitters.npmle import npmle

    shortest_upper = upper[np.isfinite(upper)].min()
    short = ~informative & (lower < shortest_upper)
    if short.any():
        longest_short = lower[short].argmax()
        keep = ~short
        keep[np.flatnonzero(short)[longest_short]] = True
        lower, upper = lower[keep], upper[keep]
    bounds = np.column_stack([lower, upper])
    bounds = np.round(np.maximum(bounds, 0.01), 2)  # lifelines wants positive bounds
    pairs, weights = np.unique(bounds, axis=0, return_counts=True)
    lower, upper = pairs[:, 0], np.maximum(pairs[:, 1], pairs[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):  # its EM meets p = 0 and p = 1
        probs, intervals = npmle(lower, upper, weights=weights.astype(float), tol=tol)
    probs = np.asarray(probs, dtype=float)
    left = np.array([iv.left for iv in intervals], dtype=float)
    right = np.array([iv.right for iv in intervals], dtype=float)
    mid = np.where(np.isfinite(right), (left + right) / 2, left)
    order = np.argsort(mid)
    probs = probs[order] / probs.sum()
    return _Turnbull(left[order], right[order], mid[order], probs)


def keep_alive(idle: pd.DataFrame) -> dict[str, Any]:
    """Turnbull's estimate of the keep-alive from the idle periods; its quantiles and the
    policy they suggest (None when no environment was seen to end)."""
    return _keep_alive(idle)[0]


def _keep_alive(idle: pd.DataFrame) -> tuple[dict[str, Any], float | None]:
    """keep_alive(), and the shortest keep-alive the estimate allows: the lower end of the
    intervals holding its 5th to 95th percentiles (None when not estimated)."""
    use = idle[idle["kind"].isin(["reused", "ended"])]
    ended = use["kind"] == "ended"
    if not ended.any():
        return {"policy": None, "evidence": _counts(idle), "note": (
            "no environment was seen to end while young: nothing bounds the keep-alive "
            "from above (longer logs, or logs of a less busy function, would)")}, None  # fmt: skip
    # A busy function's thousands of short reuse gaps add one observation (_turnbull).
    est = _turnbull(use["lower_s"].to_numpy(dtype=float), use["upper_s"].to_numpy(dtype=float),
                    ~(use["kind"] == "reused").to_numpy())  # fmt: skip
    q = est.quantiles()
    value = est.fixed_or_uniform()
    if isinstance(value, dict):  # a uniform range through the 5th and 95th percentiles
        policy = {"policy": "random", "idle_s": value}
    else:
        policy = {"policy": "fixed", "idle_s": value}
    # Observations close to the estimate are what pin it down: reuse after at least half the
    # shortest keep-alive, or an end seen within twice the longest.
    near = int(((use["kind"] == "reused") & (use["lower_s"] >= q[5] / 2)).sum()
               + (ended & (use["upper_s"] <= 2 * q[95])).sum())  # fmt: skip
    out = {"policy": policy, "quantiles_s": q, "mass_unbounded": est.unbounded(),
           "evidence": {**_counts(idle), "near_the_estimate": near}}  # fmt: skip
    if near < 30:
        out["note"] = (
            f"weak evidence: only {near} idle periods end or are reused near the estimate; "
            "logs of a function idle for minutes at a time pin the keep-alive down best"
        )
    return out, float(est.left[est.at(5)])


#: Bootstrap replicates (resampling environments) behind the keep-alive's intervals.
BOOTSTRAP = 200
#: A value is printed (and fixed) only when its 95% interval spans at most this share of it.
PINNED = 0.10


def _use(idle: pd.DataFrame) -> pd.DataFrame:
    return idle[idle["kind"].isin(["reused", "ended"])]


def _estimate(use: pd.DataFrame, weights: np.ndarray | None = None) -> _Turnbull:
    """Turnbull's estimate of the keep-alive from reuses and ends: lifelines', or with
    `weights` (a bootstrap replicate: each row as often as its environment) npmle's."""
    lower, upper = use["lower_s"].to_numpy(dtype=float), use["upper_s"].to_numpy(dtype=float)
    informative = (use["kind"] != "reused").to_numpy()
    if weights is None:
        return _turnbull(lower, upper, informative)
    keep = weights > 0
    return npmle(lower[keep], upper[keep], weights[keep], informative[keep])


def npmle(
    lower: np.ndarray, upper: np.ndarray, weights: np.ndarray, informative: np.ndarray,
    tol: float = 1e-6, max_iter: int = 20_000,
) -> _Turnbull:  # fmt: skip
    """Turnbull's estimate of interval-censored observations [lower, upper] (upper inf:
    right-censored; lower 0: left-censored) with `weights`, as _turnbull gives it (the same
    reduction of short uninformative ones, bounds to 10 ms), by the self-consistency (EM)
    iteration on its innermost intervals. Each observation holds a run of consecutive
    innermost intervals, so a step is O(n) with cumulative sums: lifelines' general EM takes
    seconds on a random keep-alive's evidence, and a bootstrap runs hundreds of fits. Both
    reach the same estimate (tests/test_cloudwatch_consistency.py)."""
    finite = np.isfinite(upper)
    short = ~informative & (lower < (upper[finite].min() if finite.any() else np.inf))
    if short.sum() > 1:  # (as _turnbull: the short ones as their longest)
        keep = ~short
        keep[np.flatnonzero(short)[lower[short].argmax()]] = True
        lower, upper, weights = lower[keep], upper[keep], weights[keep]
    bounds = np.round(np.maximum(np.column_stack([lower, upper]), 0.0), 2)
    pairs, inverse = np.unique(bounds, axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=weights, minlength=len(pairs))
    lo, up = pairs[:, 0], np.maximum(pairs[:, 1], pairs[:, 0])
    # Innermost intervals: a left end followed by a right end in the sorted ends (at one
    # value, left ends first).
    lefts, rights = np.unique(lo), np.unique(up)
    values = np.r_[lefts, rights]
    kinds = np.r_[np.zeros(len(lefts)), np.ones(len(rights))]
    order = np.lexsort((kinds, values))
    values, kinds = values[order], kinds[order]
    starts = np.flatnonzero((kinds[:-1] == 0) & (kinds[1:] == 1))
    left, right = values[starts], values[starts + 1]
    m, total = len(left), w.sum()
    first = np.searchsorted(left, lo, "left")  # observation i holds intervals first..last-1
    last = np.searchsorted(right, up, "right")
    p = np.full(m, 1.0 / m)
    loglik = -np.inf
    head = np.zeros(m + 1)
    for _ in range(max_iter):
        np.cumsum(p, out=head[1:])  # head[k] = sum of p[:k]
        held = head[last] - head[first]
        new = float(w @ np.log(held)) / total
        share = w / held
        cover = np.cumsum(np.bincount(first, share, minlength=m + 1)
                          - np.bincount(last, share, minlength=m + 1))[:m]  # fmt: skip
        p = p * cover / total
        if new - loglik < tol:
            break
        loglik = new
    mid = np.where(np.isfinite(right), (left + right) / 2, left)
    return _Turnbull(left, right, mid, p / p.sum())


def bootstrap(
    lower: np.ndarray, upper: np.ndarray, informative: np.ndarray, units: np.ndarray,
    seed: int = 0,
) -> dict[str, list]:  # fmt: skip
    """95% intervals of an estimate's 5th, 50th and 95th percentiles: the 2.5th percentile
    of the left ends, and the 97.5th of the right ends, of the Turnbull intervals holding
    them, over BOOTSTRAP replicates that resample `units` (environments: each with all its
    observations). They hold both what the data leave open (Turnbull's intervals' extent)
    and how the estimate varies with the environments seen. An upper end is None when
    replicates with no finite upper bound leave it unbounded."""
    codes, uniques = pd.factorize(units)
    bounded = np.isfinite(upper)
    rng = np.random.default_rng(seed)
    lefts, rights = {p: [] for p in (5, 50, 95)}, {p: [] for p in (5, 50, 95)}
    for _ in range(BOOTSTRAP):
        weights = np.bincount(rng.integers(0, len(uniques), len(uniques)),
                              minlength=len(uniques))[codes]  # fmt: skip
        keep = weights > 0
        # (nothing bounded from above: the replicate's estimate is unbounded)
        est = (npmle(lower[keep], upper[keep], weights[keep].astype(float), informative[keep])
               if (keep & bounded).any() else None)  # fmt: skip
        for p in lefts:
            if est is None:  # all its mass beyond the longest lower bound
                lefts[p].append(float(lower[keep].max(initial=0.0)))
                rights[p].append(math.inf)
            else:
                lefts[p].append(float(est.left[est.at(p)]))
                rights[p].append(float(est.right[est.at(p)]))
    out = {}
    for p in lefts:
        low = float(np.quantile(lefts[p], 0.025, method="lower"))
        high = float(np.quantile(rights[p], 0.975, method="higher"))
        out[str(p)] = [round(low, 1), round(high, 1) if math.isfinite(high) else None]
    return out


def intervals(idle: pd.DataFrame, seed: int = 0) -> dict[str, list]:
    """The keep-alive's 95% intervals (`bootstrap` over environments)."""
    use = _use(idle)
    units = (use["function"].astype(str) + "\0" + use["stream"].astype(str)).to_numpy()
    return bootstrap(use["lower_s"].to_numpy(dtype=float), use["upper_s"].to_numpy(dtype=float),
                     (use["kind"] != "reused").to_numpy(), units, seed)  # fmt: skip


def _pinned(interval: list, value: float) -> bool:
    low, high = interval
    return high is not None and high - low <= PINNED * value


def describe(rows: pd.DataFrame) -> dict[str, Any]:
    """A group's evidence in words ("640 s", "575-1,574 s", "reused after up to 1,523 s"),
    its estimate's 5-95% extent (low_s, high_s: None when unbounded) and policy (None without
    an end seen)."""
    reused = rows.loc[rows["kind"] == "reused", "lower_s"]
    longest = float(reused.max()) if len(reused) else None
    after = f"reused after up to {longest:,.0f} s" if longest is not None else ""
    if not (rows["kind"] == "ended").any():
        return {"text": f"{after} (no end seen)", "low_s": longest, "high_s": None,
                "policy": None, "longest_reuse_s": longest}  # fmt: skip
    est = _estimate(rows, np.ones(len(rows), dtype=int))
    value = est.fixed_or_uniform()
    low, high = float(est.left[est.at(5)]), float(est.right[est.at(95)])
    if isinstance(value, dict):
        text, policy = f"{value['low_s']:,.0f}-{value['high_s']:,.0f} s", {
            "policy": "random", "idle_s": value}  # fmt: skip
    else:
        text, policy = f"{value:,.0f} s", {"policy": "fixed", "idle_s": value}
    return {"text": text + (f" ({after})" if after else ""), "low_s": round(low, 1),
            "high_s": round(high, 1) if math.isfinite(high) else None, "policy": policy,
            "longest_reuse_s": longest}  # fmt: skip


def _sweep_values(low: float, high: float, n: int = 5) -> list[float]:
    return sorted({round(float(v), 1) for v in np.linspace(low, high, n)})


def keep_alive_scenario(keep: dict[str, Any]) -> tuple[dict | None, dict | None, str]:
    """The scenario's keep-alive, its `sweep:` block (None: none) and what the printed line
    says of them, from the estimate, its intervals and the consistency check."""
    policy = keep["policy"]
    if policy is None:
        return None, None, "not estimated"
    iv = keep["interval_s"]
    check = keep.get("consistency", {"consistent": True})
    if not check["consistent"]:
        flagged = [t for t in check["splits"] if t["disagree"]]
        load = next((t for t in flagged if t["by"] == "load"), None)
        groups = [g for t in flagged for g in t["groups"]]
        if load is not None and len(flagged) == 1 and all(g["policy"] for g in load["groups"]):
            quiet, busy = load["groups"]  # (named "busy ..." and "quiet ...": sorted so)
            if quiet["name"].startswith("busy"):
                quiet, busy = busy, quiet
            if busy["low_s"] > quiet["low_s"]:
                chosen = {"policy": "load", "quiet_idle_s": quiet["policy"]["idle_s"],
                          "busy_idle_s": busy["policy"]["idle_s"],
                          "busy_from": load["busy_from"]}  # fmt: skip
                high = busy["high_s"] or busy["longest_reuse_s"]
                sweep = {"grid": {"platform.keep_alive.busy_idle_s":
                                  _sweep_values(busy["low_s"], high)}}  # fmt: skip
                return (
                    chosen,
                    sweep,
                    (
                        f"load-dependent: {check['note']}; the scenario keeps environments "
                        f"by load (policy load, busy from {load['busy_from']} environments) "
                        f"and sweeps busy_idle_s over {busy['low_s']:,.0f}-{high:,.0f} s"
                    ),
                )
        lows = [g["low_s"] for g in groups if g["low_s"] is not None]
        highs = [g["high_s"] or g["longest_reuse_s"] for g in groups]
        low, high = min(lows), max(h for h in highs if h is not None)
        values = _sweep_values(low, high)
        chosen = {"policy": "fixed", "idle_s": values[len(values) // 2]}
        return (
            chosen,
            {"grid": {"platform.keep_alive.idle_s": values}},
            (
                f"not one value: {check['note']}; the scenario sweeps idle_s over "
                f"{low:,.0f}-{high:,.0f} s (run it with coldsim sweep)"
            ),
        )
    if policy["policy"] == "fixed":
        value = policy["idle_s"]
        low, high = iv["50"]
        if _pinned(iv["50"], value):
            return policy, None, f"fixed {value:,.1f} s (95% interval {low:,.1f}-{high:,.1f} s)"
        if high is None:
            return (
                policy,
                None,
                (
                    f"fixed, not pinned down: at least {low:,.0f} s, unbounded above in the "
                    "95% interval (weak evidence)"
                ),
            )
        return (
            policy,
            {"grid": {"platform.keep_alive.idle_s": _sweep_values(low, high)}},
            (
                f"fixed, not pinned down: somewhere in {low:,.0f}-{high:,.0f} s (95% interval; "
                "weak evidence); the scenario sweeps idle_s over it"
            ),
        )
    d = policy["idle_s"]
    (l5, h5), (l95, h95) = iv["5"], iv["95"]
    median = keep["quantiles_s"][50]
    if h95 is not None and not (_pinned(iv["5"], median) and _pinned(iv["95"], median)):
        return (
            policy,
            {"grid": {"platform.keep_alive.idle_s": _sweep_values(l5, h95)}},
            (
                f"uniform, not pinned down: between {l5:,.0f} and {h95:,.0f} s (the 95% "
                "intervals of its 5th and 95th percentiles; weak evidence); the scenario sweeps "
                "idle_s over it"
            ),
        )
    if h95 is None:  # replicates without an end seen: nothing bounds it from above
        return (
            policy,
            None,
            (
                f"uniform, not pinned down: at least {l5:,.0f} s, unbounded above in the 95% "
                "intervals (weak evidence)"
            ),
        )
    return (
        policy,
        None,
        (
            f"uniform {d['low_s']:,.0f}-{d['high_s']:,.0f} s (95% intervals: 5th percentile "
            f"{l5:,.0f}-{_at(h5)} s, 95th {l95:,.0f}-{h95:,.0f} s)"
        ),
    )


def _at(v: float | None) -> str:
    return f"{v:,.0f}" if v is not None else "unbounded"


def lifetime_summary(life: dict[str, Any]) -> str:
    """The printed words for the recycling lifetime: no value the evidence does not pin
    down (its 95% interval within PINNED of it)."""
    value, iv = life.get("max_lifetime_s"), life.get("interval_s")
    if value is None:
        return "not estimated"
    if isinstance(value, dict):
        (l5, h5), (l95, h95) = iv["5"], iv["95"]
        return (f"uniform {value['low_s']:,.0f}-{value['high_s']:,.0f} s (95% intervals: 5th "
                f"percentile {l5:,.0f}-{_at(h5)} s, 95th {l95:,.0f}-{_at(h95)} s)")  # fmt: skip
    low, high = iv["50"]
    if _pinned(iv["50"], value):
        return f"fixed {value:,.1f} s (95% interval {low:,.1f}-{high:,.1f} s)"
    top = f"{high:,.0f} s" if high is not None else "unbounded"
    return f"not pinned down: somewhere in {low:,.0f} s-{top} (95% interval; weak evidence)"


#: Recycled environments needed before the recycling lifetime is estimated.
MIN_RECYCLED = 10


def lifetime(
    envs: pd.DataFrame, idle: pd.DataFrame, shortest_keep_s: float | None
) -> dict[str, Any]:
    """Turnbull's estimate of the recycling lifetime R (the age at which the platform retires
    an environment, idle or at the end of its request) from every environment seen from its
    start, and the max_lifetime_s it suggests (None unless MIN_RECYCLED were seen recycled).

    - Recycled: an old environment (past young_s at its last request) whose function next
      started cold sooner than the shortest keep-alive after that request (`shortest_keep_s`).
      A cold start means no environment sat idle, and the keep-alive had not run out, so it
      was recycled: R lies between its ages at that request's start and at that cold start.
    - Right-censored: every other one (reaped while idle, alive when the logs end, or gone
      some other way) was alive as its last request started: R exceeds its age then.
    Counting those that left (mostly reaped) as at risk until then is what the naive estimate
    (the ages of recycled ones) lacks: environments reaped young rarely reach a long R, so the
    recycled ones are the short-R ones and that estimate comes out low.

    The threshold is the keep-alive itself (the low end of its estimate), not half of it as
    before: an environment whose function went that long without a cold start after its last
    request was gone by then whatever its R (reaped, if not recycled), so all its end shows,
    alive at that request, does not depend on R. Below the keep-alive, environments recycled
    in a gap between the threshold and the keep-alive would count as alive just before their
    recycling, and R come out long; above it, reaped ones would count as recycled (R short)."""
    old = idle[idle["kind"] == "old"]
    if shortest_keep_s is None or old.empty:
        return {"max_lifetime_s": None, "recycled": 0}
    final = idle[idle["kind"].isin(["ended", "old", "open"])].merge(envs, on=["function", "stream"])
    recycled = ((final["kind"] == "old") & (final["next_cold_s"] < shortest_keep_s)).to_numpy()
    n, censored = int(recycled.sum()), int((~recycled).sum())
    if n < MIN_RECYCLED:
        out: dict[str, Any] = {"max_lifetime_s": None, "recycled": n}
        if n:  # (none: the report as it was before this estimate, byte for byte)
            out["right_censored"] = censored
        out["note"] = "fewer than 10 environments recycled: lifetime not estimated"
        return out
    born = final["created_s"].to_numpy(dtype=float)
    lower = final["last_start_s"].to_numpy(dtype=float) - born
    upper = np.where(recycled, final["last_end_s"].to_numpy(dtype=float)
                     + final["next_cold_s"].to_numpy(dtype=float) - born, np.inf)  # fmt: skip
    est = _turnbull(lower, upper, recycled)
    units = (final["function"].astype(str) + "\0" + final["stream"].astype(str)).to_numpy()
    interval = bootstrap(lower, upper, recycled, units)
    q = {p: round(v, 1) for p, v in est.quantiles().items()}
    beyond = est.unbounded()
    oldest = float(np.max(upper[recycled]))
    out = {"max_lifetime_s": est.fixed_or_uniform(), "quantiles_s": q, "mass_unbounded": beyond,
           "recycled": n, "right_censored": censored,
           "right_censored_past_first_recycled": int((lower[~recycled]
                                                      >= upper[recycled].min()).sum()),
           "recycled_if_next_cold_within_s": round(shortest_keep_s, 1),
           "interval_s": interval}  # fmt: skip
    if beyond >= 0.5:
        out["note"] = (
            f"{beyond:.0%} of the estimate lies beyond the oldest age seen recycled "
            f"({oldest:.0f} s): most environments outlived these logs' evidence, so the "
            "lifetime is a lower bound (longer logs would tell more)"
        )
    elif beyond > 0.05:
        out["note"] = (
            f"{beyond:.0%} of the estimate lies beyond the oldest age seen recycled "
            f"({oldest:.0f} s): the range's upper end is a lower bound"
        )
    return out


def _counts(idle: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in idle["kind"].value_counts().items()}


def _empirical(values: np.ndarray) -> dict[str, Any]:
    pct = np.percentile(values, PERCENTILES)
    return {"dist": "empirical",
            "percentiles_ms": {p: round(float(v), 3) for p, v in zip(PERCENTILES, pct,
                                                                       strict=True)}}  # fmt: skip


def _runtime(version: str | None, restored: bool, init_seen: bool) -> tuple[str | None, str]:
    """The runtime a fitted function sets (None: coldsim's default, python3.12), from the
    version its environments logged, and a note when that matters and is not known, or when
    a measured release stands in for the logged one (LAMBDA_RUNTIMES)."""
    runtime, note = _runtime_preset(version, restored, init_seen)
    name = runtime_name(version)
    if name is not None and LAMBDA_RUNTIMES[name] != name and runtime is not None:
        stand_in = (
            f"{name} (logged as {version}) has no measured init in coldsim: {runtime}, the "
            "nearest measured release of its language, stands in for it"
        )
        note = f"{stand_in}; {note}" if note else stand_in
    return runtime, note


def _runtime_preset(version: str | None, restored: bool, init_seen: bool):
    name = runtime_name(version)
    runtime = LAMBDA_RUNTIMES[name] if name is not None else None
    logged = f"runtime version {version}" if version else ""
    if runtime is not None and restored and runtime not in SUPPORTED:
        why, runtime = f"{logged} ({runtime}) has no SnapStart among coldsim's runtimes", None
    elif runtime is None and version:
        why = f"{logged} is not among coldsim's runtimes"
    else:
        why = "no INIT_START or RESTORE_START line names the runtime"
    if restored and runtime is None and priced(DEFAULT_RUNTIME):
        return None, (
            f"SnapStart restores seen but the runtime is unknown ({why}): the scenario assumes "
            f"{DEFAULT_RUNTIME} and so bills SnapStart's cache and restore fees; for a Java "
            f"function set `runtime` ({' or '.join(r for r in SUPPORTED if not priced(r))}), "
            "for which AWS charges none"
        )
    if runtime is None and version:
        what = "and its measured init" if not (init_seen or restored) else "(init as observed)"
        return None, f"{why}: the scenario assumes {DEFAULT_RUNTIME} {what}"
    if runtime is not None and not (init_seen or restored):
        return runtime, (
            f"no on-demand init seen: init is {runtime}'s measured hello-world preset; set "
            "`init` to add your function's own"
        )
    return runtime, ""


def fit(
    parsed: Parsed, name: str, young_s: float = YOUNG_S, *, arrivals: str = "replay",
    warmup_s: float = 0.0, warmup_end_epoch_s: float | None = None,
) -> Fit:  # fmt: skip
    """A scenario with the fitted times and keep-alive, whose arrivals replay the observed ones
    or (arrivals "hourly" or "diurnal") are a Poisson process fitted to them (.arrivals): its
    time 0 is then the clock hour at or before the first request.

    Warm-up, as a scenario's `warmup_s`: requests arriving in the first `warmup_s` (from time
    0; or before `warmup_end_epoch_s`, epoch s, when given) are replayed but not counted. The
    report's per-function counts (invocations, cold starts, rate) cover the rest, as `coldsim
    run` of the fitted scenario, which sets the same `warmup_s`, counts them. Handler and init
    times, and the keep-alive, use every request: warm-up biases counts (every environment
    starts cold), not those."""
    inv = requests(parsed)
    if inv.empty:
        raise ScenarioError("no invocations in the logs")
    logged = parsed.invocations["function"].unique().tolist()
    logged_as = {safe: name for name, safe in scenario_names(logged).items()}
    t0 = math.floor(float(inv["arrival_s"].min()))
    log_end = float(inv["end_s"].max())
    if warmup_end_epoch_s is not None:
        warmup_s = max(0.0, warmup_end_epoch_s - t0)
    if not (0.0 <= warmup_s < float(inv["arrival_s"].max()) - t0):
        raise ScenarioError(
            f"warm-up {warmup_s!r} s: expected from 0 to less than the logs' span of requests "
            f"({float(inv['arrival_s'].max()) - t0:,.0f} s from the first)"
        )
    counted_from = t0 + warmup_s
    warnings = list(parsed.warnings)
    envs, idle = environments(inv, log_end, young_s)
    most = envs.groupby("function")["concurrency"].max().to_dict() if not envs.empty else {}
    keep, shortest_keep = (
        _keep_alive(idle) if not idle.empty else ({"policy": None, "evidence": {}}, None)
    )
    if keep["policy"] is not None:
        keep["interval_s"] = intervals(idle)
        keep["consistency"] = consistency.check(idle, describe)
    keep_policy, sweep, keep["summary"] = keep_alive_scenario(keep)
    if sweep is not None:
        keep["sweep_grid"] = sweep["grid"]
    if keep_policy is not None and keep_policy != keep["policy"]:
        keep["fitted_as_one"] = keep["policy"]  # the pooled estimate, which it replaces
        keep["policy"] = keep_policy
    if not keep.get("consistency", {"consistent": True})["consistent"]:
        warnings.append(keep["consistency"]["note"])
    life = lifetime(envs, idle, shortest_keep) if not envs.empty else {"max_lifetime_s": None}
    if life.get("max_lifetime_s") is not None:
        life["summary"] = lifetime_summary(life)
    functions, observed, per_function = [], {}, {}
    for f, r in inv.groupby("function", sort=True):
        times = np.sort(r["arrival_s"].to_numpy() - t0)
        observed[f] = times
        mem = r["memory_mb"].dropna()
        memory = int(min(10240, max(128, round(mem.mode().iloc[0])))) if len(mem) else 128
        on_demand = r["init_ms"].notna() & (r["init_type"] != "provisioned-concurrency")
        restored = r["restore_ms"].notna()
        version = parsed.runtimes.get(logged_as[f])
        runtime, note = _runtime(version, bool(restored.any()), bool(on_demand.any()))
        entry: dict[str, Any] = {"name": f, "memory_mb": memory}
        if runtime is not None:
            entry["runtime"] = runtime
        at_once = int(most.get(f, 1))
        if at_once > 1:
            entry["instance_concurrency"] = at_once
            warnings.append(
                f"{f}: one environment (log stream) served up to {at_once} requests at once, "
                "as on a multi-request platform (Lambda Managed Instances, or logs of a "
                f"multi-request run): the scenario sets instance_concurrency {at_once}, the "
                "most seen at once (the platform's limit may be higher)"
            )
        durations = r["duration_ms"].to_numpy()
        if at_once > 1:
            # Requests sharing an environment share its CPU and run longer (the scenario's
            # processor sharing): the handler time is that of the requests that ran alone.
            alone = _alone(r)
            if alone.sum() >= 30:
                durations = durations[alone]
            else:
                warnings.append(
                    f"{f}: only {int(alone.sum())} requests ran alone in their environment: "
                    "the handler time is fitted to all, some slowed by sharing the CPU"
                )
        entry["duration"] = _empirical(durations)
        entry["arrivals"] = {"process": "trace", "path": f"arrivals/{f}.csv"}
        if on_demand.any():
            entry["init"] = _empirical(r.loc[on_demand, "init_ms"].to_numpy())
        if restored.any():  # SnapStart: cold starts restore (hooks included in the figure)
            restore = r.loc[restored, "restore_ms"].to_numpy()
            billed = min(BILLED_RESTORE_MS, float(restore.mean()))  # not in every format
            entry["snapstart"] = {"restore": _empirical(restore), "billed_restore_ms": billed}
        functions.append(entry)
        counted = r["arrival_s"].to_numpy() >= counted_from
        per_function[f] = {
            "invocations": int(counted.sum()),
            "cold_starts": int(r["cold"].to_numpy()[counted].sum()),
            "cold_start_rate": float(r["cold"].to_numpy()[counted].mean()) if counted.any()
            else None,
            "warmup_requests": int((~counted).sum()),
            "duration_ms_p50": float(r["duration_ms"].median()),
            "init_ms_p50": float(r.loc[on_demand, "init_ms"].median()) if on_demand.any()
            else None,
            "restore_ms_p50": float(r.loc[restored, "restore_ms"].median())
            if restored.any() else None,
            "environments": int(r.loc[r["stream"] != "", "stream"].nunique()),
            "timeouts": int((r["status"] == "timeout").sum()),
            "memory_mb": memory,
            "runtime": runtime,  # set in the scenario; None: python3.12, coldsim's default
            "runtime_version": version,  # as logged (the most common), None if not seen
            "instance_concurrency": at_once,  # the most requests one environment ran at once
        }  # fmt: skip
        if logged_as[f] != f:
            per_function[f]["logged_as"] = logged_as[f]
            renamed = (f"named {logged_as[f]!r} in the logs: {f!r} in the scenario (names hold "
                       "letters, digits, '.', '_' and '-')")  # fmt: skip
            note = f"{renamed}; {note}" if note else renamed
        if note:
            per_function[f]["note"] = note
    duration_s = math.ceil(max(float(t.max()) for t in observed.values()) + 1.0)
    fitted = None
    if arrivals != "replay":
        from .arrivals import fit_arrivals

        fitted = fit_arrivals(observed, t0, duration_s, arrivals)
        shift = t0 - fitted.t0_epoch_s
        observed = {f: t + shift for f, t in observed.items()}
        warmup_s = warmup_s + shift if warmup_s > 0 else 0.0
        t0, duration_s = fitted.t0_epoch_s, fitted.duration_s
        for entry in functions:
            entry["arrivals"] = fitted.processes[entry["name"]]
            per_function[entry["name"]]["arrivals"] = fitted.per_function[entry["name"]]
    platform: dict[str, Any] = {}
    if keep["policy"] is not None:
        platform["keep_alive"] = keep["policy"]
    if life.get("max_lifetime_s") is not None:
        platform["max_lifetime_s"] = life["max_lifetime_s"]
    scenario = {"name": name, "seed": 0, "duration_s": duration_s, "platform": platform,
                "functions": functions}  # fmt: skip
    if sweep is not None:
        scenario["sweep"] = sweep
    if warmup_s > 0:
        scenario = {**dict(list(scenario.items())[:3]), "warmup_s": warmup_s,
                    **dict(list(scenario.items())[3:])}  # fmt: skip
    report = {
        "t0_epoch_s": t0, "span_s": log_end - t0, "invocations": int(len(inv)),
        "counted_invocations": int((inv["arrival_s"] >= counted_from).sum()),
        "warmup_s": warmup_s, "malformed": parsed.malformed, "warnings": warnings,
        "files": parsed.files,
        "keep_alive": keep, "lifetime": life, "per_function": per_function,
    }  # fmt: skip
    if fitted is not None:
        report["arrivals"] = fitted.report
    return Fit(scenario, observed, float(t0), report, envs, idle)
