"""The user's own invocation log: a CSV with `timestamp_s`, and optionally `function` and
`duration_ms` (column names configurable)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import chunks, file_key, header, numbers, require_columns


@dataclass(frozen=True)
class Log:
    functions: list[str]  # [""] when the file has no function column
    arrival_s: list[np.ndarray]
    duration_ms: list[np.ndarray | None]

    def row(self, function: str | None) -> int:
        if function is None:
            if len(self.functions) != 1:
                raise KeyError("the log holds several functions: name one")
            return 0
        if function not in self.functions:
            raise KeyError(f"no rows for function {function!r}")
        return self.functions.index(function)


def read(path: str | Path, timestamp: str = "timestamp_s", function: str = "function",
         duration: str = "duration_ms") -> Log:  # fmt: skip
    return _read(file_key(path), timestamp, function, duration)


@functools.lru_cache(maxsize=4)
def _read(key, timestamp: str, function: str, duration: str) -> Log:
    path = Path(key[0])
    columns = header(path)
    require_columns(path, columns, [timestamp])
    cols = [c for c in (timestamp, function, duration) if c in columns]
    names, times, durs = [], [], []
    for lines, chunk in chunks(
        path, usecols=cols, dtype={function: str} if function in cols else None
    ):
        times.append(numbers(path, chunk[[timestamp]], lines, minimum=0.0)[:, 0])
        if duration in cols:
            durs.append(numbers(path, chunk[[duration]], lines)[:, 0])
        if function in cols:
            names.append(chunk[function].fillna("").to_numpy(dtype=str))
    t = np.concatenate(times) if times else np.empty(0)
    d = np.concatenate(durs) if durs else None
    fn = np.concatenate(names) if names else np.full(len(t), "")
    labels, code = np.unique(fn, return_inverse=True)
    order = np.lexsort((t, code))
    bounds = np.searchsorted(code[order], np.arange(len(labels) + 1))
    split = [order[bounds[i] : bounds[i + 1]] for i in range(len(labels))]
    return Log(
        functions=labels.tolist(),
        arrival_s=[t[s] for s in split],
        duration_ms=[None if d is None else d[s] for s in split],
    )
