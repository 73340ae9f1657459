"""Connections held to each global-state resource over time (a database's connection count),
from the logs: the summary's `connections` and the connections figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..scenario.globalstate import resources


def connection_intervals(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, connections) of every interval during which `name`'s connections are
    held: an instance's life for cached items (from the start of its init), a request's run
    for uncached ones."""
    held_by_instance = np.zeros(len(scenario.functions))
    held_by_request = np.zeros(len(scenario.functions))
    for k, f in enumerate(scenario.functions):
        for item in f.global_state:
            if item.name == name:
                if item.cached:
                    held_by_instance[k] += item.connections
                else:
                    held_by_request[k] += item.connections
    fn = instances["function"].cat.codes.to_numpy()
    ended = instances["ended_s"].to_numpy()
    starts = [instances["created_s"].to_numpy()]
    ends = [np.where(np.isnan(ended), np.inf, ended)]
    weights = [held_by_instance[fn]]
    served = invocations["instance_id"].to_numpy() >= 0
    codes = invocations["function"].cat.codes.to_numpy()[served]
    starts.append(invocations["start_s"].to_numpy()[served])
    ends.append(invocations["end_s"].to_numpy()[served])
    weights.append(held_by_request[codes])
    start, end, weight = (np.concatenate(x) for x in (starts, ends, weights))
    keep = weight > 0
    return start[keep], end[keep], weight[keep]


def connection_summary(
    invocations: pd.DataFrame, instances: pd.DataFrame, scenario
) -> dict[str, dict[str, Any]]:
    """Per resource over the stats window: peak and mean connections held, and the time
    spent above its limit (platform.connection_limits), s."""
    w0, w1 = scenario.warmup_s, scenario.duration_s
    limits = scenario.platform.connection_limits or {}
    out = {}
    for name in resources(scenario.functions):
        start, end, weight = connection_intervals(invocations, instances, scenario, name)
        s, e = np.maximum(start, w0), np.minimum(end, w1)
        keep = s < e
        s, e, weight = s[keep], e[keep], weight[keep]
        level, times = _levels(s, e, weight, w0, w1)
        widths = np.diff(times)
        limit = limits.get(name)
        out[name] = {
            "peak": float(level.max(initial=0.0)),
            "mean": float((level * widths).sum() / (w1 - w0)),
            "limit": limit,
            "time_above_limit_s": float(widths[level > limit].sum()) if limit is not None
            else None,
        }  # fmt: skip
    return out


def _levels(start, end, weight, w0, w1) -> tuple[np.ndarray, np.ndarray]:
    """The step function of the summed weights: levels[i] holds on [times[i], times[i+1])."""
    times = np.concatenate([start, end, [w0, w1]])
    deltas = np.concatenate([weight, -weight, [0.0, 0.0]])
    order = np.argsort(times, kind="stable")
    times, deltas = times[order], deltas[order]
    uniq, first = np.unique(times, return_index=True)
    level = np.cumsum(np.add.reduceat(deltas, first))
    return level[:-1], uniq
