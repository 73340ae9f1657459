"""What the trace replays share: time scaling and a rate multiplier, applied to trace times."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import ArrivalProcessBase, in_batches


class ReplayBase(ArrivalProcessBase):
    """Replay time = (trace time - the trace window's start) / time_scale; the scenario's
    start_s/end_s then cut the replayed timeline like any process's."""

    time_scale: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        description="Trace seconds per replayed second (24: a day in an hour).",
    )
    rate_multiplier: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="Scale the traffic: each request is kept (or copied) with this mean.",
    )

    provides_durations: ClassVar[bool] = False

    def trace(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """Replay times (sorted, s) and per-request handler times (ms) or None."""
        raise NotImplementedError

    def replayed(
        self,
        rng: np.random.Generator,
        times: np.ndarray,
        durations: np.ndarray | None,
        window: tuple[float, float] | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-request trace times (s) and handler times (ms or None) as replayed: cut to the
        trace window [start, end) (which then starts at 0), each request kept or copied by
        the rate multiplier, divided by the time scale."""
        origin = 0.0
        if window is not None:
            origin, end = window
            keep = (times >= origin) & (times < end)
            times = times[keep]
            durations = None if durations is None else durations[keep]
        if self.rate_multiplier != 1.0:
            copies = self.multiply(rng, len(times))
            times = np.repeat(times, copies)
            durations = None if durations is None else np.repeat(durations, copies)
        return (times - origin) / self.time_scale, durations

    def batches_with_durations(
        self, rng, duration_s
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        t0, t1 = self.window(duration_s)
        times, durations = self.trace(rng)
        keep = (times >= t0) & (times < t1)
        times = times[keep]
        durations = None if durations is None else durations[keep]
        yield from in_batches(times, durations)

    def generate(self, rng, t0, t1):
        for times, _ in self.batches_with_durations(rng, t1):
            yield times[times >= t0]

    def expected_count(self, t0, t1):
        """Requests the replay makes (for the request cap): the trace's, times the multiplier."""
        times, _ = self.trace(np.random.default_rng(0))
        return float(np.count_nonzero((times >= t0) & (times < t1)))

    def multiply(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """How many times each of n trace requests is replayed: floor(m) or floor(m) + 1 with
        the right odds, so the mean is the rate_multiplier m."""
        m = self.rate_multiplier
        whole = int(m)
        copies = np.full(n, whole, dtype=np.int64)
        if m != whole:
            copies += rng.random(n) < (m - whole)
        return copies
