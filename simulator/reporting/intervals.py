"""Intervals over time, from the logs: busy and alive time of instances, their overlap with the
statistics window, integrals and peaks of interval counts. The summary, the costs and the
figures share them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..scenario.schema import Scenario
from .logs import function_codes


def busy_intervals(
    invocations: pd.DataFrame, instances: pd.DataFrame, multi_request: np.ndarray | None = None
):
    """(begin, end, instance) of every busy interval: executions, from the instance's
    creation on an on-demand cold start, and inits off the request path. The intervals of
    instances of functions flagged in `multi_request` are merged (busy once however many
    requests they serve)."""
    created = instances["created_s"].to_numpy()
    iid = invocations["instance_id"].to_numpy()
    ahead = instances["provisioned"].to_numpy() | instances["prewarmed"].to_numpy()
    begin = invocations["start_s"].to_numpy().copy()
    on_demand_cold = invocations["cold"].to_numpy() & ~on_instances(ahead, iid)
    begin[on_demand_cold] = created[iid[on_demand_cold]]
    served = iid >= 0
    ids = np.flatnonzero(ahead)
    begin, end, iid = (
        np.concatenate([begin[served], created[ahead]]),
        np.concatenate(
            [invocations["end_s"].to_numpy()[served], instances["ready_s"].to_numpy()[ahead]]
        ),
        np.concatenate([iid[served], ids]).astype(np.int64),
    )
    if multi_request is not None and multi_request.any():
        shared = multi_request[function_codes(instances)][iid]
        b, e, i = _union(begin[shared], end[shared], iid[shared])
        begin, end, iid = (np.concatenate([begin[~shared], b]), np.concatenate([end[~shared], e]),
                           np.concatenate([iid[~shared], i]))  # fmt: skip
    return begin, end, iid


def multi_request_functions(scenario: Scenario) -> np.ndarray:
    """Per function: do its instances serve several requests at once?"""
    return np.array([f.instance_concurrency > 1 for f in scenario.functions])


def _union(begin: np.ndarray, end: np.ndarray, iid: np.ndarray):
    """(begin, end, instance) of the union of each instance's busy intervals: the
    instance is busy while it serves at least one request."""
    if len(begin) == 0:
        return begin, end, iid
    order = np.lexsort((begin, iid))
    b, e, i = begin[order], end[order], iid[order]
    reach = pd.Series(e).groupby(i).cummax().to_numpy()  # latest end so far, per instance
    first = np.r_[True, (i[1:] != i[:-1]) | (b[1:] > reach[:-1])]  # starts a busy stretch
    at = np.flatnonzero(first)
    return b[at], np.maximum.reduceat(e, at), i[at]


def _weighted_integral(start, end, weight, x) -> np.ndarray:
    """F(x) = ∫_{-inf}^{x} Σ_i weight_i [start_i <= t < end_i] dt, for each x."""

    def ramp(points, w):  # sum over points p < x of w (x - p)
        keep = np.isfinite(points)
        order = np.argsort(points[keep], kind="stable")
        p, w = points[keep][order], w[keep][order]
        cum_w = np.concatenate([[0.0], np.cumsum(w)])
        cum_wp = np.concatenate([[0.0], np.cumsum(w * p)])
        k = np.searchsorted(p, x)
        return cum_w[k] * x - cum_wp[k]

    return ramp(start, weight) - ramp(end, weight)


def _weighted_peaks(start, end, weight, group, n_groups) -> np.ndarray:
    """Per group, the highest sum of weights of intervals [start, end) at any moment (ends
    before starts at equal times)."""
    peaks = np.zeros(n_groups)
    if len(start) == 0:
        return peaks
    finite_end = np.isfinite(end)
    times = np.concatenate([start, end[finite_end]])
    deltas = np.concatenate([weight, -weight[finite_end]])
    groups = np.concatenate([group, group[finite_end]])
    order = np.lexsort((deltas, times, groups))
    g, level = groups[order], deltas[order]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    cum = np.cumsum(level)
    before = np.r_[0.0, cum][first]  # the running sum before each group
    tops = np.maximum.reduceat(cum, first) - before
    peaks[g[first]] = np.maximum(tops, 0.0)
    return peaks


def on_instances(flag: np.ndarray, instance_id: np.ndarray) -> np.ndarray:
    """Per invocation row: the flag of its instance (False for requests that never ran)."""
    out = np.zeros(len(instance_id), dtype=bool)
    ran = instance_id >= 0
    out[ran] = flag[instance_id[ran]]
    return out


def overlap(start: np.ndarray, end: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Length of [start, end) ∩ [w0, w1) per row; 0 where either is NaN (never ran)."""
    return np.nan_to_num(
        np.clip(np.minimum(end, w1) - np.maximum(start, w0), 0.0, None), copy=False
    )


def occupancy(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    edges: np.ndarray,
    multi_request: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Time-average busy and alive instance counts in each bin [edges[i], edges[i+1]). As in
    summarize(), an on-demand cold start is busy from its instance's creation, and inits off
    the request path (provisioned, pre-warmed) are busy on their own; an instance serving
    several requests (functions flagged in multi_request) is busy once."""
    begin, end, _ = busy_intervals(invocations, instances, multi_request)
    busy = np.diff(_integral(begin, end, edges)) / np.diff(edges)
    return busy, alive_over_time(instances, edges)


def alive_over_time(instances: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Time-average count of the given instances alive in each bin [edges[i], edges[i+1])."""
    created = instances["created_s"].to_numpy()
    ended = instances["ended_s"].to_numpy()
    ends = np.where(np.isnan(ended), np.inf, ended)
    return np.diff(_integral(created, ends, edges)) / np.diff(edges)


def _integral(start: np.ndarray, end: np.ndarray, x: np.ndarray) -> np.ndarray:
    """F(x) = ∫_{-inf}^{x} #{i: start_i <= t < end_i} dt, for each x."""

    def ramp(points: np.ndarray) -> np.ndarray:  # sum over points p < x of (x - p)
        p = np.sort(points[np.isfinite(points)])
        cum = np.concatenate([[0.0], np.cumsum(p)])
        k = np.searchsorted(p, x)
        return k * x - cum[k]

    return ramp(start) - ramp(end)


def grouped_integral(start, end, weight, group, n_groups: int, x) -> np.ndarray:
    """F[g, j] = ∫_{-inf}^{x_j} Σ_{i in group g} weight_i [start_i <= t < end_i] dt, for
    sorted x: one pass over the intervals, whatever the number of groups (hosts)."""
    x = np.asarray(x, dtype=float)
    out = np.zeros((n_groups, len(x)))
    for points, sign in ((np.asarray(start, dtype=float), 1.0),
                         (np.asarray(end, dtype=float), -1.0)):  # fmt: skip
        keep = np.isfinite(points)
        p, w, g = points[keep], np.asarray(weight, dtype=float)[keep], group[keep]
        # sum over points p < x_j of w (x_j - p): add w and w p at the first x_j above p
        at = g * (len(x) + 1) + np.searchsorted(x, p, side="right")
        cum_w = np.bincount(at, weights=w, minlength=n_groups * (len(x) + 1))
        cum_wp = np.bincount(at, weights=w * p, minlength=n_groups * (len(x) + 1))
        cum_w = np.cumsum(cum_w.reshape(n_groups, -1), axis=1)[:, : len(x)]
        cum_wp = np.cumsum(cum_wp.reshape(n_groups, -1), axis=1)[:, : len(x)]
        out += sign * (cum_w * x - cum_wp)
    return out
