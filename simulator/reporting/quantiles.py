"""Latency statistics from values that come in batches: exact while they fit, a sketch beyond.

`FunctionQuantiles` keeps every value, per function, until it holds `exact_limit` of them;
past that it bins them by DDSketch's logarithmic mapping (Masson et al., VLDB 2019
[sources: ddsketch]) with relative accuracy 1 %: each reported percentile is then within 1 %
of an order statistic next to the percentile's rank (of the value at that rank, for
rank-exact data). Count, mean and maximum stay exact either way. Two of them merge (shards of
a run, blocks of a streamed log) into the statistics of all their values. `method` says
which gave the percentiles.

Exact percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

import math

import numpy as np
from ddsketch import LogarithmicMapping

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
#: The sketch's guarantee: relative error of a reported percentile.
RELATIVE_ACCURACY = 0.01


def exact_stats(sorted_values: np.ndarray) -> dict[str, float | None]:
    """{mean, p50, ..., p999, max} of sorted values: percentiles by linear interpolation
    between order statistics; None for each when there are no values."""
    n = len(sorted_values)
    if n == 0:
        return {"mean": None, **dict.fromkeys(PERCENTILES), "max": None}
    out = {"mean": float(sorted_values.mean())}
    for key, q in PERCENTILES.items():
        pos = q / 100 * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        out[key] = float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))
    out["max"] = float(sorted_values[-1])
    return out


_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_MAPPING.gamma)


#: Values kept exactly by a FunctionQuantiles before it sketches (12 MB of values and codes).
FUNCTION_EXACT_LIMIT = 1 << 20
#: A bin's count (a run has at most 1e9 requests).
_COUNT = np.uint32
#: A sketch bin's id: function * _SPAN + (key + _SPAN // 2); id 0 of a function holds its
#: zeros. (A double's key under 1 % accuracy lies within ±36,000.)
_SPAN = 1 << 20
_ZERO = 0


class FunctionQuantiles:
    """Per function (codes 0..n-1) and overall: count, mean, percentiles and maximum of
    non-negative values added in (codes, values) numpy batches. Exact while the values fit
    `exact_limit`; past that every value is binned by DDSketch's logarithmic mapping
    (relative accuracy 1 %), all functions' bins in one sorted numpy table,
    so a batch costs a few vectorised passes however many functions it touches. Percentiles
    from the bins are DDSketch's: the representative value of the bin holding the rank
    q (n - 1), capped at the exact maximum."""

    def __init__(self, functions: int, exact_limit: int = FUNCTION_EXACT_LIMIT):
        self.functions = functions
        self.exact_limit = exact_limit
        self.count = np.zeros(functions, dtype=np.int64)
        self.sum = np.zeros(functions)
        self.max = np.full(functions, -math.inf)
        self._codes: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._held = 0
        self._bins: list[tuple[np.ndarray, np.ndarray]] | None = None  # (ids, counts) parts
        self._binned = 0  # rows in the parts

    @property
    def method(self) -> str:
        return "exact" if self._bins is None else "ddsketch"

    def add(self, codes: np.ndarray, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        if not len(values):
            return
        codes = np.asarray(codes, dtype=np.int64)
        self.count += np.bincount(codes, minlength=self.functions)
        self.sum += np.bincount(codes, weights=values, minlength=self.functions)
        np.maximum.at(self.max, codes, values)
        if self._bins is None and self._held + len(values) <= self.exact_limit:
            self._codes.append(codes.astype(np.int32))
            self._values.append(values)
            self._held += len(values)
            return
        self._sketch()
        self._bin(codes, values)

    def merge(self, other: FunctionQuantiles, codes: np.ndarray | None = None) -> None:
        """Add another's values; `codes`: this one's code of each of the other's functions
        (a shard's), else the same functions."""
        at = np.arange(other.functions) if codes is None else np.asarray(codes, np.int64)
        if other._bins is None:
            for c, values in zip(other._codes, other._values, strict=True):
                self.add(at[c], values)
            return
        # np.add.at: several of the other's functions may map to one of these (an app's).
        np.add.at(self.count, at, other.count)
        np.add.at(self.sum, at, other.sum)
        np.maximum.at(self.max, at, other.max)
        self._sketch()
        for ids, counts in other._bins:
            self._bins.append((at[ids // _SPAN] * _SPAN + ids % _SPAN, counts))
            self._binned += len(ids)
        if codes is not None:  # renumbered ids need not be sorted: sort them now
            self._compacted(force=True)
        self._compact_if_large()

    @classmethod
    def union(cls, *parts: FunctionQuantiles) -> FunctionQuantiles:
        """The statistics of all the parts' values together (exact if every part is)."""
        exact = all(p._bins is None for p in parts)
        out = cls(parts[0].functions, sum(p._held for p in parts) if exact else 0)
        for p in parts:
            out.merge(p)
        return out

    def stats(self) -> list[dict[str, float | None]]:
        """Per function, then overall (the last element): {mean, p50, ..., p999, max}."""
        n = self.functions
        if self._bins is None:
            codes = np.concatenate(self._codes) if self._codes else np.empty(0, np.int64)
            values = np.concatenate(self._values) if self._values else np.empty(0)
            order = np.lexsort((values, codes))
            values, codes = values[order], codes[order]
            del order
            bounds = np.searchsorted(codes, np.arange(n + 1))
            out = [exact_stats(values[bounds[k] : bounds[k + 1]]) for k in range(n)]
            values.sort()
            out.append(exact_stats(values))
            return out
        ids, counts = self._compacted()
        fn = ids // _SPAN
        keys = ids % _SPAN
        per = _binned_stats(keys, counts, np.searchsorted(fn, np.arange(n + 1)), self.count,
                            self.sum, self.max)  # fmt: skip
        every, inverse = np.unique(keys, return_inverse=True)
        total = np.bincount(inverse, weights=counts).astype(np.int64)
        whole = _binned_stats(every, total, np.array([0, len(every)]),
                              np.array([self.count.sum()]), np.array([self.sum.sum()]),
                              np.array([self.max.max(initial=-math.inf)]))  # fmt: skip
        return per + whole

    def distribution(self, k: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Function k's values (None: all functions') for a CDF: (values, None) while exact,
        else (each bin's representative value, its count), values ascending."""
        if self._bins is None:
            codes = np.concatenate(self._codes) if self._codes else np.empty(0, np.int64)
            values = np.concatenate(self._values) if self._values else np.empty(0)
            return (values if k is None else values[codes == k]), None
        ids, counts = self._compacted()
        if k is not None:
            lo, hi = np.searchsorted(ids, [k * _SPAN, (k + 1) * _SPAN])
            ids, counts = ids[lo:hi], counts[lo:hi]
        keys, inverse = np.unique(ids % _SPAN, return_inverse=True)
        return _bin_values(keys), np.bincount(inverse, weights=counts)

    # -- the sketch -------------------------------------------------------------------------

    def _sketch(self) -> None:
        if self._bins is not None:
            return
        self._bins, self._binned = [], 0
        held = list(zip(self._codes, self._values, strict=True))
        self._codes, self._values, self._held = [], [], 0
        for codes, values in held:
            self._bin(codes, values)

    def _bin(self, codes: np.ndarray, values: np.ndarray) -> None:
        keys = np.full(len(values), _ZERO, dtype=np.int64)
        positive = values > _MAPPING.min_possible
        keys[positive] = np.ceil(np.log(values[positive]) / _LOG_GAMMA).astype(np.int64)
        keys[positive] += _SPAN // 2
        ids, counts = np.unique(codes.astype(np.int64) * _SPAN + keys, return_counts=True)
        self._bins.append((ids, counts.astype(_COUNT)))
        self._binned += len(ids)
        self._compact_if_large()

    def _compact_if_large(self) -> None:
        # Parts are merged into the table when they reach a quarter of it (a day of tens of
        # thousands of functions has millions of bins: parts of the same size again would
        # double the memory; merging at a quarter costs a few merges of the table per
        # doubling of it).
        table = len(self._bins[0][0])
        if len(self._bins) > 1 and self._binned - table > max(table // 4, 1 << 18):
            self._compacted()

    def _compacted(self, force: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The bins as one table sorted by id (merged when in parts, or when `force`)."""
        if len(self._bins) != 1 or force:
            parts = self._bins or [(np.empty(0, np.int64), np.empty(0, np.int64))]
            ids = np.concatenate([b[0] for b in parts])
            counts = np.concatenate([b[1] for b in parts])
            ids, inverse = np.unique(ids, return_inverse=True)
            counts = np.bincount(inverse, weights=counts).astype(_COUNT)
            self._bins, self._binned = [(ids, counts)], len(ids)
        return self._bins[0]


def _bin_values(keys: np.ndarray) -> np.ndarray:
    """The representative value of each bin (0 for the zeros' bin)."""
    value = np.exp((keys - _SPAN // 2) * _LOG_GAMMA) * (2.0 / (1 + _MAPPING.gamma))
    return np.where(keys == _ZERO, 0.0, value)


def _binned_stats(keys, counts, bounds, count, total, peak) -> list[dict[str, float | None]]:
    """Statistics per group of bins (group g: bins bounds[g]:bounds[g+1], sorted by key)."""
    cum = np.cumsum(counts, dtype=np.int64)
    before = np.concatenate([[0], cum])[bounds[:-1]]
    values = _bin_values(keys)
    out: list[dict[str, float | None]] = [
        {"mean": None, **dict.fromkeys(PERCENTILES), "max": None} for _ in range(len(count))
    ]
    has = np.flatnonzero(count > 0)
    for key, q in PERCENTILES.items():
        at = np.searchsorted(cum, before[has] + q / 100 * (count[has] - 1), side="right")
        got = np.minimum(values[at], peak[has])
        for g, v in zip(has.tolist(), got.tolist(), strict=True):
            out[g][key] = v
    for g in has.tolist():
        out[g]["mean"] = float(total[g] / count[g])
        out[g]["max"] = float(peak[g])
    return out
