"""Azure Functions Invocation Trace 2021: one row per invocation [sources: azure-2021].

Columns app, func, end_timestamp, duration, both times in seconds. A request arrived at
end_timestamp - duration and ran for duration; the file is ordered by arrival, not by end.
Functions are keyed by (app, func): func is unique only within its app.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import chunks, file_key, hashes, header, numbers, require_columns

COLUMNS = ["app", "func", "end_timestamp", "duration"]


@dataclass(frozen=True)
class Invocations:
    apps: np.ndarray  # per function
    functions: np.ndarray  # func hash, per function
    arrival_s: list[np.ndarray]  # per function, sorted
    duration_ms: list[np.ndarray]  # per function, in arrival order

    def row(self, function: str, app: str | None = None) -> int:
        match = np.char.startswith(self.functions.astype(str), function)
        if app is not None:
            match &= np.char.startswith(self.apps.astype(str), app)
        hits = np.flatnonzero(match)
        if len(hits) != 1:
            raise KeyError(function)
        return int(hits[0])


def read(path: str | Path) -> Invocations:
    return _read(file_key(path))


@functools.lru_cache(maxsize=4)
def _read(key: tuple[str, int, int]) -> Invocations:
    path = Path(key[0])
    require_columns(path, header(path), COLUMNS)
    apps, funcs, arrivals, durations = [], [], [], []
    for lines, chunk in chunks(path, usecols=COLUMNS, dtype={"app": str, "func": str}):
        values = numbers(path, chunk[["end_timestamp", "duration"]], lines)
        keys = hashes(path, chunk[["app", "func"]], lines)
        apps.append(keys[:, 0])
        funcs.append(keys[:, 1])
        arrivals.append(values[:, 0] - values[:, 1])
        durations.append(values[:, 1] * 1000.0)
    if not apps:
        return Invocations(np.empty(0, str), np.empty(0, str), [], [])
    app, func = np.concatenate(apps), np.concatenate(funcs)
    if len(app) == 0:
        return Invocations(np.empty(0, str), np.empty(0, str), [], [])
    arrival, duration = np.concatenate(arrivals), np.concatenate(durations)
    pairs, code = np.unique(np.char.add(np.char.add(app, "/"), func), return_inverse=True)
    order = np.lexsort((arrival, code))  # by function, then arrival (stable for ties)
    bounds = np.searchsorted(code[order], np.arange(len(pairs) + 1))
    split = [order[bounds[i] : bounds[i + 1]] for i in range(len(pairs))]
    keys = np.char.partition(pairs, "/")
    return Invocations(
        apps=keys[:, 0], functions=keys[:, 2],
        arrival_s=[arrival[s] for s in split], duration_ms=[duration[s] for s in split],
    )  # fmt: skip
