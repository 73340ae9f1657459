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
median) becomes a fixed keep-alive, a wider one a uniform range through them. Environments
that lived past `young_s` and ended at once (their next cold start came sooner than any
keep-alive) give the recycling lifetime. Arrivals are replayed as observed, or a Poisson process
is fitted to them (hourly or diurnal: .arrivals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from ..snapstart import BILLED_RESTORE_MS
from .parse import Parsed

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
    """The parsed REPORTs with start_s (handler start) and arrival_s (epoch s) and cold. The
    same REPORT read from several files (one export in several formats, whose timestamps
    differ by their rounding) counts once: one per request id within 10 ms."""
    inv = parsed.invocations.sort_values(["function", "request_id", "end_s"], kind="stable")
    same = (
        (inv["function"] == inv["function"].shift())
        & (inv["request_id"] == inv["request_id"].shift())
        & (inv["end_s"] - inv["end_s"].shift() < 0.01)
    )
    inv = inv[~same].sort_values(["function", "end_s"], kind="stable").reset_index(drop=True)
    inv["start_s"] = inv["end_s"] - inv["duration_ms"] / 1000.0
    init = inv["init_ms"].fillna(0.0) + inv["restore_ms"].fillna(0.0)
    inv["arrival_s"] = inv["start_s"] - init / 1000.0
    inv["cold"] = inv["init_ms"].notna() | inv["restore_ms"].notna()
    return inv


def environments(inv: pd.DataFrame, log_end_s: float, young_s: float = YOUNG_S):
    """Per environment (log stream) and per idle period between and after its requests."""
    envs, idle = [], []
    known = inv[inv["stream"] != ""]
    for f, reqs in known.groupby("function", sort=True):
        colds = np.sort(reqs.loc[reqs["cold"], "arrival_s"].to_numpy())
        for stream, r in reqs.groupby("stream", sort=False):
            r = r.sort_values("start_s")
            start, end = r["start_s"].to_numpy(), r["end_s"].to_numpy()
            born = r["arrival_s"].iloc[0] if r["cold"].iloc[0] else math.nan
            last = float(end.max())
            age = last - born
            envs.append({"function": f, "stream": stream, "created_s": born, "last_end_s": last,
                         "uses": len(r), "age_s": age})  # fmt: skip
            if math.isnan(born):
                # Not seen from its start: provisioned (never reaped when idle: no evidence
                # on the keep-alive), or begun before the logs.
                continue
            for g in (start[1:] - end[:-1]).tolist():
                idle.append({"function": f, "stream": stream, "kind": "reused",
                             "lower_s": max(g, 0.0), "upper_s": math.inf})  # fmt: skip
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
            idle.append({"function": f, "stream": stream, "kind": kind, "lower_s": lower,
                         "upper_s": upper, "next_cold_s": next_cold})  # fmt: skip
    columns = ["function", "stream", "kind", "lower_s", "upper_s", "next_cold_s"]
    return pd.DataFrame(envs), pd.DataFrame(idle, columns=columns)


def keep_alive(idle: pd.DataFrame) -> dict[str, Any]:
    """Turnbull's estimate of the keep-alive from the idle periods; its quantiles and the
    policy they suggest (None when no environment was seen to end)."""
    use = idle[idle["kind"].isin(["reused", "ended"])]
    ended = use["kind"] == "ended"
    if not ended.any():
        return {"policy": None, "evidence": _counts(idle), "note": (
            "no environment was seen to end while young: nothing bounds the keep-alive "
            "from above (longer logs, or logs of a less busy function, would)")}  # fmt: skip
    from lifelines.fitters.npmle import npmle

    # Reuse gaps shorter than every upper bound say nothing the longest of them does not
    # (all the estimate's mass lies above that one), so only it is kept; then bounds to 10 ms,
    # equal ones counted once with a weight. A busy function's thousands of short gaps add
    # one observation.
    lower = use["lower_s"].to_numpy(dtype=float)
    upper = use["upper_s"].to_numpy(dtype=float)
    shortest_upper = upper[np.isfinite(upper)].min()
    short = (use["kind"] == "reused").to_numpy() & (lower < shortest_upper)
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
        probs, intervals = npmle(lower, upper, weights=weights.astype(float))
    probs = np.asarray(probs, dtype=float)
    left = np.array([iv.left for iv in intervals], dtype=float)
    right = np.array([iv.right for iv in intervals], dtype=float)
    mid = np.where(np.isfinite(right), (left + right) / 2, left)
    order = np.argsort(mid)
    mid, left, right = mid[order], left[order], right[order]
    probs = probs[order] / probs.sum()
    cum = np.cumsum(probs)

    def at(p: float) -> int:
        return min(int(np.searchsorted(cum, p / 100.0)), len(mid) - 1)

    q = {p: float(mid[at(p)]) for p in (5, 25, 50, 75, 95)}
    beyond = float(probs[~np.isfinite(right)].sum())
    median = q[50]
    # The estimate's mass sits in intervals; their extent, not their midpoints, is what the
    # data pin down: a fixed keep-alive only when the whole 5-95% span is within 10% of the
    # median (its middle is then within 5% of any value in it).
    lo, hi = float(left[at(5)]), float(right[at(95)])
    if np.isfinite(hi) and hi - lo <= 0.10 * median:
        policy = {"policy": "fixed", "idle_s": round(median, 1)}
    else:  # a uniform range through the 5th and 95th percentiles
        if not np.isfinite(hi):
            hi = q[95]
        width = (hi - lo) / 0.9
        low = max(0.0, lo - 0.05 * width)
        policy = {"policy": "random",
                  "idle_s": {"dist": "uniform", "low_s": round(low, 1),
                             "high_s": round(low + width, 1)}}  # fmt: skip
    # Observations close to the estimate are what pin it down: reuse after at least half the
    # shortest keep-alive, or an end seen within twice the longest.
    near = int(((use["kind"] == "reused") & (use["lower_s"] >= q[5] / 2)).sum()
               + (ended & (use["upper_s"] <= 2 * q[95])).sum())  # fmt: skip
    out = {"policy": policy, "quantiles_s": q, "mass_unbounded": beyond,
           "evidence": {**_counts(idle), "near_the_estimate": near}}  # fmt: skip
    if near < 30:
        out["note"] = (
            f"weak evidence: only {near} idle periods end or are reused near the estimate; "
            "logs of a function idle for minutes at a time pin the keep-alive down best"
        )
    return out


def lifetime(envs: pd.DataFrame, idle: pd.DataFrame, keep: dict[str, Any],
             young_s: float = YOUNG_S) -> dict[str, Any]:  # fmt: skip
    """Recycling: environments past young_s whose next cold start came sooner than the
    shortest keep-alive ended at once, by age."""
    floor = keep.get("quantiles_s", {}).get(5)
    old = idle[idle["kind"] == "old"].merge(envs, on=["function", "stream"])
    if floor is None or old.empty:
        return {"max_lifetime_s": None, "recycled": 0}
    # Gone sooner than any keep-alive would have reaped it: recycled (halved for slack).
    old = old[old["next_cold_s"] < floor / 2]
    ages = old["age_s"].to_numpy()
    ages = ages[np.isfinite(ages)]
    if len(ages) < 10:
        return {
            "max_lifetime_s": None,
            "recycled": int(len(ages)),
            "note": "fewer than 10 environments recycled: lifetime not estimated",
        }
    q5, q95 = np.percentile(ages, [5, 95])
    width = (q95 - q5) / 0.9
    low = max(0.0, q5 - 0.05 * width)
    return {"max_lifetime_s": {"dist": "uniform", "low_s": round(float(low), 1),
                               "high_s": round(float(low + width), 1)},
            "recycled": int(len(ages)), "median_age_s": float(np.median(ages))}  # fmt: skip


def _counts(idle: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in idle["kind"].value_counts().items()}


def _empirical(values: np.ndarray) -> dict[str, Any]:
    pct = np.percentile(values, PERCENTILES)
    return {"dist": "empirical",
            "percentiles_ms": {p: round(float(v), 3) for p, v in zip(PERCENTILES, pct,
                                                                       strict=True)}}  # fmt: skip


def fit(parsed: Parsed, name: str, young_s: float = YOUNG_S, *, arrivals: str = "replay") -> Fit:
    """A scenario with the fitted times and keep-alive, whose arrivals replay the observed ones
    or (arrivals "hourly" or "diurnal") are a Poisson process fitted to them (.arrivals): its
    time 0 is then the clock hour at or before the first request."""
    inv = requests(parsed)
    if inv.empty:
        raise ScenarioError("no invocations in the logs")
    t0 = math.floor(float(inv["arrival_s"].min()))
    log_end = float(inv["end_s"].max())
    envs, idle = environments(inv, log_end, young_s)
    keep = keep_alive(idle) if not idle.empty else {"policy": None, "evidence": {}}
    life = lifetime(envs, idle, keep, young_s) if not envs.empty else {"max_lifetime_s": None}
    functions, observed, per_function = [], {}, {}
    for f, r in inv.groupby("function", sort=True):
        times = np.sort(r["arrival_s"].to_numpy() - t0)
        observed[f] = times
        mem = r["memory_mb"].dropna()
        memory = int(min(10240, max(128, round(mem.mode().iloc[0])))) if len(mem) else 128
        on_demand = r["init_ms"].notna() & (r["init_type"] != "provisioned-concurrency")
        entry: dict[str, Any] = {
            "name": f, "memory_mb": memory,
            "duration": _empirical(r["duration_ms"].to_numpy()),
            "arrivals": {"process": "trace", "path": f"arrivals/{f}.csv"},
        }  # fmt: skip
        if on_demand.any():
            entry["init"] = _empirical(r.loc[on_demand, "init_ms"].to_numpy())
        restored = r["restore_ms"].notna()
        if restored.any():  # SnapStart: cold starts restore (hooks included in the figure)
            restore = r.loc[restored, "restore_ms"].to_numpy()
            billed = min(BILLED_RESTORE_MS, float(restore.mean()))  # not in every format
            entry["snapstart"] = {"restore": _empirical(restore), "billed_restore_ms": billed}
        functions.append(entry)
        per_function[f] = {
            "invocations": int(len(r)),
            "cold_starts": int(r["cold"].sum()),
            "cold_start_rate": float(r["cold"].mean()),
            "duration_ms_p50": float(r["duration_ms"].median()),
            "init_ms_p50": float(r.loc[on_demand, "init_ms"].median()) if on_demand.any()
            else None,
            "restore_ms_p50": float(r.loc[restored, "restore_ms"].median())
            if restored.any() else None,
            "environments": int(r.loc[r["stream"] != "", "stream"].nunique()),
            "timeouts": int((r["status"] == "timeout").sum()),
            "memory_mb": memory,
        }  # fmt: skip
    duration_s = math.ceil(max(float(t.max()) for t in observed.values()) + 1.0)
    fitted = None
    if arrivals != "replay":
        from .arrivals import fit_arrivals

        fitted = fit_arrivals(observed, t0, duration_s, arrivals)
        shift = t0 - fitted.t0_epoch_s
        observed = {f: t + shift for f, t in observed.items()}
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
    report = {
        "t0_epoch_s": t0, "span_s": log_end - t0, "invocations": int(len(inv)),
        "malformed": parsed.malformed, "files": parsed.files,
        "keep_alive": keep, "lifetime": life, "per_function": per_function,
    }  # fmt: skip
    if fitted is not None:
        report["arrivals"] = fitted.report
    return Fit(scenario, observed, float(t0), report, envs, idle)
