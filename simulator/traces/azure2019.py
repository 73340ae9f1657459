"""Azure Functions Trace 2019: per-minute invocation counts, duration percentiles, memory.

Formats: the dataset's own notes [sources: azure-2019]. Files are found in a
folder under their original names (invocations_per_function_md.anon.dNN.csv,
function_durations_percentiles.anon.dNN.csv, app_memory_percentiles.anon.dNN.csv) or as
invocations.csv, durations.csv, memory.csv (the In-Vitro/Dirigent samples).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from .common import chunks, file_key, hashes, header, numbers, require_columns

KEYS = ["HashOwner", "HashApp", "HashFunction"]
DURATION_PERCENTILES = {0: "percentile_Average_0", 1: "percentile_Average_1",
                        25: "percentile_Average_25", 50: "percentile_Average_50",
                        75: "percentile_Average_75", 99: "percentile_Average_99",
                        100: "percentile_Average_100"}  # fmt: skip
PATTERNS = {
    "invocations": ("invocations.csv", "invocations_per_function_md.anon.d*.csv"),
    "durations": ("durations.csv", "function_durations_percentiles.anon.d*.csv"),
    "memory": ("memory.csv", "app_memory_percentiles.anon.d*.csv"),
}


@dataclass(frozen=True)
class Invocations:
    """One row per function: its keys, trigger and per-minute counts."""

    owners: np.ndarray
    apps: np.ndarray
    functions: np.ndarray  # HashFunction
    triggers: np.ndarray
    minutes: np.ndarray  # the minute columns' labels, as in the file
    counts: np.ndarray  # int32, functions x minutes

    def row(self, function: str) -> int:
        index = self.__dict__.get("_index")
        if index is None:  # built once: workloads look up every function
            index = {h: i for i, h in enumerate(self.functions.tolist())}
            object.__setattr__(self, "_index", index)
        if function in index:
            return index[function]
        hits = np.flatnonzero(self.functions == function)
        if len(hits) == 0:
            hits = np.flatnonzero(np.char.startswith(self.functions.astype(str), function))
        if len(hits) != 1:
            raise KeyError(function)
        return int(hits[0])

    def minute_columns(self, minutes: tuple[int, int] | None) -> slice:
        """The columns of minute labels [first, last] (all of them for None); ValueError if
        they are not labels of the file in order."""
        if minutes is None:
            return slice(None)
        first, last = minutes
        labels = self.minutes.tolist()
        if first > last or first not in labels or last not in labels:
            raise ValueError(
                f"minutes {list(minutes)} must be labels of the file's minute columns "
                f"({labels[0]}..{labels[-1]}), first <= last"
            )
        return slice(labels.index(first), labels.index(last) + 1)


def files_for(path: Path) -> dict[str, Path | None]:
    """The trace's files: those of a folder, or a counts file alone."""
    if path.is_dir():
        return find_files(path)
    return {"invocations": path, "durations": None, "memory": None}


def find_files(folder: Path) -> dict[str, Path | None]:
    """The invocations, durations and memory files of a trace folder (None if absent)."""
    found: dict[str, Path | None] = {}
    for kind, (plain, original) in PATTERNS.items():
        candidates = (
            [folder / plain] if (folder / plain).is_file() else sorted(folder.glob(original))
        )
        found[kind] = candidates[0] if candidates else None
    if found["invocations"] is None:
        raise ScenarioError(
            "no invocations file (invocations.csv or invocations_per_function_md.anon.dNN.csv)",
            file=str(folder),
        )
    return found


def read_invocations(path: str | Path) -> Invocations:
    """The per-minute counts (cached: a workload of many functions reads the file once)."""
    return _read_invocations(file_key(path))


@functools.lru_cache(maxsize=4)
def _read_invocations(key: tuple[str, int, int]) -> Invocations:
    path = Path(key[0])
    columns = header(path)
    require_columns(path, columns, [*KEYS, "Trigger"])
    minute_cols = [c for c in columns if c not in (*KEYS, "Trigger")]
    bad = [c for c in minute_cols if not c.strip().isdigit()]
    if bad or not minute_cols:
        raise ScenarioError(
            f"minute columns must be numbered (found {bad[:3] or 'none'})", file=str(path)
        )
    # Fill one preallocated matrix (no list of blocks to concatenate: half the peak memory).
    labels = np.array([int(c) for c in minute_cols])
    if len(np.unique(labels)) != len(labels):
        twice = sorted({int(m) for m in labels if (labels == m).sum() > 1})
        raise ScenarioError(f"minute column {twice[0]} appears twice", file=str(path))
    counts = np.zeros((_data_lines(path), len(minute_cols)), dtype=np.int32)
    keys, line_of, n = [], [], 0
    for lines, chunk in chunks(path, len(columns), dtype={c: str for c in (*KEYS, "Trigger")}):
        keys.append(hashes(path, chunk[[*KEYS, "Trigger"]], lines))
        line_of.append(lines)
        block = numbers(path, chunk[minute_cols], lines, integer=True)
        counts[n : n + len(block)] = block
        n += len(block)
        del block
    counts = counts[:n]
    k = np.concatenate(keys) if keys else np.empty((0, 4), dtype=str)
    _no_repeated_rows(path, k[:, :3], np.concatenate(line_of) if line_of else np.empty(0))
    order = np.argsort(labels, kind="stable")  # minute columns in time order, as labelled
    if (np.diff(labels) < 0).any():
        labels, counts = labels[order], counts[:, order]
    return Invocations(
        owners=k[:, 0], apps=k[:, 1], functions=k[:, 2], triggers=k[:, 3],
        minutes=labels, counts=counts,
    )  # fmt: skip


def _no_repeated_rows(path: Path, keys: np.ndarray, lines: np.ndarray) -> None:
    """A function listed twice would be replayed twice: name the lines."""
    if not len(keys):
        return
    joined = np.char.add(np.char.add(keys[:, 0], "/"), np.char.add(keys[:, 1], "/"))
    joined = np.char.add(joined, keys[:, 2])
    _, first, counts = np.unique(joined, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = first[counts > 1][0]
        again = np.flatnonzero(joined == joined[dup])[1]
        raise ScenarioError(
            f"line {lines[again]} repeats the function of line {lines[dup]} "
            f"({keys[dup, 2][:12]}...): each function once, please",
            file=str(path),
        )


def _data_lines(path: Path) -> int:
    """Lines after the header (an upper bound on rows: blank lines are not rows)."""
    newlines = returns = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
    return max(newlines, returns) + 1  # old Mac endings; a last line without one


def read_durations(path: str | Path) -> pd.DataFrame:
    """Per function (index HashFunction): Average and the percentile columns, in ms. Rows with
    an Average of 0 are kept (the dataset's notebook drops them as possibly misrecorded, but a
    replay needs every function's times; integer ms make fast handlers 0)."""
    path = Path(path)
    require_columns(path, header(path), ["HashFunction", "Average", *DURATION_PERCENTILES.values()])
    parts = []
    cols = ["Average", *DURATION_PERCENTILES.values()]
    for lines, chunk in chunks(path, dtype={c: str for c in KEYS}):
        values = numbers(path, chunk[cols], lines)
        index = hashes(path, chunk[["HashFunction"]], lines)[:, 0]
        parts.append(pd.DataFrame(values, columns=cols, index=index))
    table = pd.concat(parts) if parts else pd.DataFrame(columns=cols)
    return table[~table.index.duplicated(keep="first")]


def read_memory(path: str | Path) -> tuple[pd.Series, bool]:
    """AverageAllocatedMb by HashFunction (per-function files, as the In-Vitro samples) or by
    HashApp (the original per-application files); the flag says which."""
    path = Path(path)
    columns = header(path)
    require_columns(path, columns, ["HashApp", "AverageAllocatedMb"])
    per_function = "HashFunction" in columns
    key = "HashFunction" if per_function else "HashApp"
    parts = []
    for lines, chunk in chunks(path, usecols=[key, "AverageAllocatedMb"], dtype={key: str}):
        mb = numbers(path, chunk[["AverageAllocatedMb"]], lines)[:, 0]
        parts.append(pd.Series(mb, index=hashes(path, chunk[[key]], lines)[:, 0]))
    series = pd.concat(parts) if parts else pd.Series(dtype=float)
    return series[~series.index.duplicated(keep="first")], per_function


def memory_mb(average_mb: float) -> int:
    """A Lambda memory size for an Azure allocation: whole MB, at least 128 (AWS's minimum)."""
    return int(min(10240, max(128, math.ceil(average_mb))))


def spread(
    counts: np.ndarray, how: str, rng: np.random.Generator, start_s: float = 0.0
) -> np.ndarray:
    """Arrival times for per-minute counts (minute i covers [start_s + 60 i, start_s + 60 (i+1))):
    equidistant (c requests at the centres of c equal slots), uniform (c uniform times) or
    poisson (exponential gaps rescaled to the minute: the same law as uniform, drawn the
    In-Vitro way)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    minute = np.repeat(np.arange(len(counts)), counts)
    if how == "equidistant":
        first = np.cumsum(counts) - counts
        j = np.arange(total) - np.repeat(first, counts)
        offset = (j + 0.5) / np.repeat(counts, counts)
    elif how == "uniform":
        offset = rng.random(total)
    elif how == "poisson":
        gaps = rng.exponential(1.0, total + len(counts))
        ends = np.cumsum(counts + 1)
        cum = np.cumsum(gaps)
        base = np.concatenate([[0.0], cum[ends[:-1] - 1]])
        span = cum[ends - 1] - base
        idx = np.arange(total) + minute  # skip each minute's closing gap
        offset = (cum[idx] - np.repeat(base, counts)) / np.repeat(span, counts)
    else:
        raise ValueError(how)
    times = start_s + 60.0 * (minute + offset)
    times.sort()
    return times
