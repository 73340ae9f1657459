"""Replay of one function of the Azure Functions 2019 trace (per-minute counts).

The trace's counts are a sparse matrix (traces/azure2019.py). A replay holds its function's
row as a SparseRow (views of the matrix's cells, no dense copy) and spreads it a few minutes
at a time: every function's replay starts at once and lives for the whole run, so a dense
row each (1,440 minutes, 5.6 kB) would cost a day of 46,000 functions the dense matrix again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ...rng import batch_sizes
from ..traces import azure2019
from .replay import ReplayBase
from .trace import InputPath


class Azure2019(ReplayBase):
    """A function's per-minute invocation counts, spread within each minute. `invocations` is
    the counts file, or a folder holding it (original or In-Vitro names). Minute columns are
    replayed from t = 0 at the first one in `minutes` (default: all of the file's)."""

    process: Literal["azure2019"]
    invocations: InputPath = Field(description="Per-minute counts file, or the trace folder.")
    function: str = Field(min_length=8, description="HashFunction (or a unique prefix of it).")
    spread: Literal["uniform", "poisson", "equidistant"] = Field(
        "uniform",
        description=(
            "Placement within each minute: uniform random, poisson (exponential gaps rescaled "
            "to the minute, as In-Vitro) or equidistant. Short keep-alives are sensitive to it."
        ),
    )
    minutes: tuple[int, int] | None = Field(
        None, description="[first, last] minute labels to replay (as labelled in the file)."
    )
    durations: InputPath | None = Field(
        None,
        description=(
            "Durations file: sets the function's duration (an empirical distribution through "
            "its percentiles) unless given. Found beside the counts when `invocations` is a folder."
        ),
    )
    memory: InputPath | None = Field(
        None, description="Memory file: sets the function's memory_mb unless given."
    )

    @field_validator("invocations")
    @classmethod
    def _counts_file(cls, path: Path) -> Path:
        return azure2019.files_for(path)["invocations"]

    @model_validator(mode="after")
    def _function_in_trace(self):
        trace = azure2019.read_invocations(self.invocations)
        try:
            trace.row(self.function)
        except KeyError:
            raise ValueError(
                f"{self.invocations} has no single function {self.function!r}"
            ) from None
        trace.minute_columns(self.minutes)  # labels of the file, in order
        return self

    def counts(self) -> np.ndarray:
        """The replayed per-minute counts (before the rate multiplier): a new int32 array."""
        return self._trace_counts().dense()

    def _trace_counts(self) -> azure2019.SparseRow:
        trace = azure2019.read_invocations(self.invocations)
        return trace.sparse_row(trace.row(self.function), trace.minute_columns(self.minutes))

    def _replayed_counts(self, rng) -> np.ndarray | azure2019.SparseRow:
        """The trace's counts as they are (a SparseRow: no copy), or with the rate multiplier
        applied (int64)."""
        if self.rate_multiplier == 1.0:
            return self._trace_counts()
        # Per minute: each request kept/copied with mean m (a sum of the per-request draws).
        counts = self.counts().astype(np.int64)
        whole = int(self.rate_multiplier)
        extra = rng.binomial(counts, self.rate_multiplier - whole)
        return counts * whole + extra

    def trace(self, rng):
        counts = np.asarray(self._replayed_counts(rng), dtype=np.int64)
        return azure2019.spread(counts, self.spread, rng) / self.time_scale, None

    def batches_with_durations(self, rng, duration_s):
        """As trace() cut to the window and sliced into batches, but spread a few minutes at a
        time, as the batches need them (the same draws, times and batches): a replay holds
        about its next batch, never a busy function's whole day."""
        t0, t1 = self.window(duration_s)
        sizes = batch_sizes()
        size = next(sizes)
        pending = np.empty(0)
        early = 1  # pieces before the window grow (2, 4, ... times a batch): few of them
        pieces = azure2019.spread_pieces(
            self._replayed_counts(rng),
            self.spread,
            rng,
            piece=lambda: max(1, early * size - len(pending)),
        )
        for piece in pieces:
            times = piece / self.time_scale
            if len(times) and times[0] >= t1:
                break  # sorted: nothing later is in the window
            if len(times) and times[-1] < t0:
                early = min(2 * early, azure2019.PIECE // size + 1)
                continue
            early = 1
            times = times[(times >= t0) & (times < t1)]
            pending = np.concatenate([pending, times]) if len(pending) else times
            k = 0
            while len(pending) - k >= size:
                yield pending[k : k + size], None
                k += size
                size = next(sizes)
            pending = pending[k:]
        if len(pending):
            yield pending, None

    def expected_count(self, t0, t1):
        trace = azure2019.read_invocations(self.invocations)
        return float(trace.totals(self.minutes)[trace.row(self.function)]) * self.rate_multiplier
