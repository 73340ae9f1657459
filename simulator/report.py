"""The reporting layer: event logs -> summary metrics and time series. Reads logs only.

Statistics cover invocations that arrived in the stats window [warmup_s, duration_s); time
averages (mean_*_instances, *_gb_s) integrate exactly over that window. Percentiles use linear
interpolation between order statistics (numpy's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .logs import function_codes

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
MB_PER_GB = 1024.0  # AWS bills GB-s with memory_mb / 1024


def summarize(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    *,
    functions: list[str],
    memory_mb: list[int],
    warmup_s: float,
    duration_s: float,
) -> dict[str, Any]:
    """Overall metrics plus `per_function.<name>` with the same keys."""
    n_fn = len(functions)
    w0, w1 = warmup_s, duration_s
    width = w1 - w0
    gb = np.asarray(memory_mb, dtype=float) / MB_PER_GB

    codes = function_codes(invocations)
    counted = invocations["counted"].to_numpy()
    cold = invocations["cold"].to_numpy()
    latency = invocations["latency_ms"].to_numpy()

    # Busy time: from the request's start on a warm instance, or from the instance's creation
    # on a cold start (init counts as busy), to the end of execution.
    inst_codes = function_codes(instances)
    created = instances["created_s"].to_numpy()
    iid = invocations["instance_id"].to_numpy()
    busy_from = np.where(cold, created[iid], invocations["start_s"].to_numpy())
    busy_s = _by_function(_overlap(busy_from, invocations["end_s"].to_numpy(), w0, w1), codes, n_fn)
    del busy_from
    ended = instances["ended_s"].to_numpy()
    alive_s = _by_function(
        _overlap(created, np.where(np.isnan(ended), np.inf, ended), w0, w1), inst_codes, n_fn
    )
    idle_s = np.maximum(alive_s - busy_s, 0.0)
    peaks = _peak_alive(created, ended, inst_codes, n_fn, w0, w1)
    new = (created >= w0) & (created < w1)

    n_inv = np.bincount(codes[counted], minlength=n_fn)
    n_cold = np.bincount(codes[counted & cold], minlength=n_fn)
    n_new = np.bincount(inst_codes[new], minlength=n_fn)
    lat_all = _latency_stats(latency, codes, counted, n_fn)
    lat_cold = _latency_stats(latency, codes, counted & cold, n_fn)
    lat_warm = _latency_stats(latency, codes, counted & ~cold, n_fn)

    def block(k: int | None) -> dict[str, Any]:
        pick = slice(None) if k is None else k
        inv, cs = int(np.sum(n_inv[pick])), int(np.sum(n_cold[pick]))
        busy, idle = float(np.sum(busy_s[pick])), float(np.sum(idle_s[pick]))
        return {
            "invocations": inv,
            "cold_starts": cs,
            "cold_start_rate": cs / inv if inv else None,
            "latency_ms": lat_all[-1 if k is None else k],
            "latency_ms_cold": lat_cold[-1 if k is None else k],
            "latency_ms_warm": lat_warm[-1 if k is None else k],
            "instances_created": int(np.sum(n_new[pick])),
            "mean_instances": (busy + idle) / width,
            "mean_busy_instances": busy / width,
            "mean_idle_instances": idle / width,
            "peak_instances": int(peaks[-1 if k is None else k]),
            "idle_gb_s": float(np.sum((idle_s * gb)[pick])),
            "busy_gb_s": float(np.sum((busy_s * gb)[pick])),
        }

    out = block(None)
    out["per_function"] = {name: block(k) for k, name in enumerate(functions)}
    return out


def _overlap(start: np.ndarray, end: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Length of [start, end) ∩ [w0, w1) per row."""
    return np.clip(np.minimum(end, w1) - np.maximum(start, w0), 0.0, None)


def _by_function(values: np.ndarray, codes: np.ndarray, n_fn: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=n_fn)


def _latency_stats(latency, codes, mask, n_fn) -> list[dict[str, float | None]]:
    """Latency statistics per function, then overall (last element)."""
    lat, cd = latency[mask], codes[mask]
    order = np.lexsort((lat, cd))
    lat_sorted, cd_sorted = lat[order], cd[order]
    del order
    bounds = np.searchsorted(cd_sorted, np.arange(n_fn + 1))
    stats = [_stats(lat_sorted[bounds[k] : bounds[k + 1]]) for k in range(n_fn)]
    lat_sorted.sort()
    stats.append(_stats(lat_sorted))
    return stats


def _stats(sorted_ms: np.ndarray) -> dict[str, float | None]:
    n = len(sorted_ms)
    if n == 0:
        return {"mean": None, **dict.fromkeys(PERCENTILES), "max": None}
    out = {"mean": float(sorted_ms.mean())}
    for key, q in PERCENTILES.items():
        pos = q / 100 * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        out[key] = float(sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo))
    out["max"] = float(sorted_ms[-1])
    return out


def _peak_alive(created, ended, codes, n_fn, w0, w1) -> np.ndarray:
    """Most instances alive at once within [w0, w1), per function then overall (last)."""
    ends = np.where(np.isnan(ended), np.inf, ended)
    peaks = np.zeros(n_fn + 1, dtype=np.int64)
    for k, (s, e) in enumerate(_groups(created, ends, codes, n_fn)):
        peaks[k] = _peak(s, e, w0, w1)
    peaks[-1] = _peak(created, ends, w0, w1)
    return peaks


def _groups(created, ends, codes, n_fn):
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_fn + 1))
    for k in range(n_fn):
        idx = order[bounds[k] : bounds[k + 1]]
        yield created[idx], ends[idx]


def _peak(start: np.ndarray, end: np.ndarray, w0: float, w1: float) -> int:
    """Peak count of half-open intervals [start, end) over [w0, w1)."""
    base = int(np.count_nonzero((start <= w0) & (end > w0)))
    s = start[(start > w0) & (start < w1)]
    e = end[(end > w0) & (end < w1)]
    if len(s) == 0:
        return base
    times = np.concatenate([e, s])
    deltas = np.concatenate([-np.ones(len(e), np.int64), np.ones(len(s), np.int64)])
    order = np.lexsort((deltas, times))  # at equal times, ends (-1) before starts
    return int(max(base, base + np.cumsum(deltas[order]).max()))


def occupancy(
    invocations: pd.DataFrame, instances: pd.DataFrame, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-average busy and alive instance counts in each bin [edges[i], edges[i+1])."""
    cold = invocations["cold"].to_numpy()
    created = instances["created_s"].to_numpy()
    busy_from = np.where(
        cold, created[invocations["instance_id"].to_numpy()], invocations["start_s"].to_numpy()
    )
    ended = instances["ended_s"].to_numpy()
    widths = np.diff(edges)
    busy = np.diff(_integral(busy_from, invocations["end_s"].to_numpy(), edges)) / widths
    alive = np.diff(_integral(created, np.where(np.isnan(ended), np.inf, ended), edges)) / widths
    return busy, alive


def _integral(start: np.ndarray, end: np.ndarray, x: np.ndarray) -> np.ndarray:
    """F(x) = ∫_{-inf}^{x} #{i: start_i <= t < end_i} dt, for each x."""

    def ramp(points: np.ndarray) -> np.ndarray:  # sum over points p < x of (x - p)
        p = np.sort(points[np.isfinite(points)])
        cum = np.concatenate([[0.0], np.cumsum(p)])
        k = np.searchsorted(p, x)
        return k * x - cum[k]

    return ramp(start) - ramp(end)
