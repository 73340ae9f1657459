"""Latency statistics from values that come in batches: exact while they fit, a sketch beyond.

`Quantiles` keeps every value until it holds `exact_limit` of them; past that it folds them
into a DDSketch (Masson et al., VLDB 2019 [sources: ddsketch]) with relative accuracy 1 %:
each reported percentile is then within 1 % of an order statistic next to the percentile's
rank (of the value at that rank, for rank-exact data). Count, mean and maximum stay exact
either way. Two of them merge (shards of a run, blocks of a streamed log) into the statistics
of all their values. `method` says which gave the percentiles.

Exact percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

import math

import numpy as np
from ddsketch import DDSketch, LogarithmicMapping

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
#: The sketch's guarantee: relative error of a reported percentile.
RELATIVE_ACCURACY = 0.01
#: Values kept exactly by default (8 MB of float64).
EXACT_LIMIT = 1 << 20


class Quantiles:
    """Mean, percentiles and maximum of non-negative values added in numpy batches."""

    __slots__ = ("exact_limit", "count", "_sum", "_max", "_values", "_held", "_sketch")

    def __init__(self, exact_limit: int = EXACT_LIMIT):
        self.exact_limit = exact_limit
        self.count = 0
        self._sum = 0.0
        self._max = -math.inf
        self._values: list[np.ndarray] = []
        self._held = 0
        self._sketch: DDSketch | None = None

    @property
    def method(self) -> str:
        """'exact', or 'ddsketch' once the values outgrew exact_limit."""
        return "exact" if self._sketch is None else "ddsketch"

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        if not len(values):
            return
        self.count += len(values)
        self._sum += float(values.sum())
        self._max = max(self._max, float(values.max()))
        if self._sketch is None and self._held + len(values) <= self.exact_limit:
            self._values.append(values)
            self._held += len(values)
            return
        if self._sketch is None:
            self._sketch = DDSketch(RELATIVE_ACCURACY)
            held, self._values, self._held = self._values, [], 0
            for block in held:
                _into_sketch(self._sketch, block)
        _into_sketch(self._sketch, values)

    def merge(self, other: Quantiles) -> None:
        """Add another's values (their exact values, or its sketch)."""
        if other._sketch is None:
            for block in other._values:
                self.add(block)
            return
        self.count += other.count
        self._sum += other._sum
        self._max = max(self._max, other._max)
        if self._sketch is None:
            self._sketch = DDSketch(RELATIVE_ACCURACY)
            for block in self._values:
                _into_sketch(self._sketch, block)
            self._values, self._held = [], 0
        self._sketch.merge(other._sketch)

    def stats(self) -> dict[str, float | None]:
        """{mean, p50, p90, p95, p99, p999, max}; None for each when there are no values."""
        if self._sketch is None:
            values = np.concatenate(self._values) if self._values else np.empty(0)
            values.sort()
            return exact_stats(values)
        out: dict[str, float | None] = {"mean": self._sum / self.count}
        for key, q in PERCENTILES.items():
            value = self._sketch.get_quantile_value(q / 100)
            out[key] = None if value is None else min(float(value), self._max)
        out["max"] = self._max
        return out


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


def _into_sketch(sketch: DDSketch, values: np.ndarray) -> None:
    """Add a batch: binned with numpy by the sketch's own logarithmic mapping, then one
    weighted add per bin, of the bin's representative value. (A value on a bin's edge that
    numpy's logarithm puts in the next bin is still within the accuracy of its
    representative: the edge is shared.)"""
    zero = values <= _MAPPING.min_possible
    if zero.any():
        sketch.add(0.0, float(np.count_nonzero(zero)))
        values = values[~zero]
    if not len(values):
        return
    keys = np.ceil(np.log(values) / _LOG_GAMMA).astype(np.int64)
    bins, counts = np.unique(keys, return_counts=True)
    for key, count in zip(bins.tolist(), counts.tolist(), strict=True):
        sketch.add(_MAPPING.value(key), float(count))
