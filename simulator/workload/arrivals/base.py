"""What every arrival process shares: a time window and batch generation of arrival times.

A user's process is a subclass of `ArrivalProcess` (exported by coldsim) with its parameters
as fields and two methods: `generate(rng, t0, t1)` yields sorted arrival times (s) in
[t0, t1) as numpy batches, drawing only from `rng` (the function's own arrivals stream);
`expected_count(t0, t1)` says how many to expect, so that a runaway scenario is refused before
it runs (0 when unknown). A replay that carries per-request handler times sets
`provides_durations = True` and overrides `batches_with_durations`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from ...policies.base import Policy, guarded
from ...rng import batch_sizes


class ArrivalProcessBase(Policy):
    """Arrival times (s) in [start_s, end_s) ∩ [0, duration_s), sorted, as numpy batches."""

    tag: ClassVar[str] = "process"
    family: ClassVar[str] = "arrival process"
    public_name: ClassVar[str] = "ArrivalProcess"
    required: ClassVar[tuple[str, ...]] = ("generate",)
    process: str = Field(description="A built-in's name, or a plug-in class as module:Class.")
    start_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="No arrivals before, s.")
    end_s: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="No arrivals from then on, s (null: the end)."
    )

    @model_validator(mode="after")
    def _window_ordered(self):
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be greater than start_s ({self.start_s})")
        return self

    def window(self, duration_s: float) -> tuple[float, float]:
        end = duration_s if self.end_s is None else min(self.end_s, duration_s)
        return self.start_s, end

    def batches(self, rng: np.random.Generator, duration_s: float) -> Iterator[np.ndarray]:
        """Sorted arrival times in the window, in batches (never empty ones)."""
        t0, t1 = self.window(duration_s)
        if t1 > t0:
            batches = self.generate(rng, t0, t1)
            if not self.builtin():
                batches = (b for b, _ in checked(self, ((b, None) for b in batches), t0, t1))
            for times in batches:
                if len(times):
                    yield times

    provides_durations: ClassVar[bool] = (
        False  # replays of per-invocation traces carry handler times
    )

    def batches_with_durations(self, rng: np.random.Generator, duration_s: float):
        """(times, handler ms or None) batches; None: sample the function's `duration`."""
        for times in self.batches(rng, duration_s):
            yield times, None

    def count(self, duration_s: float) -> float:
        """Expected number of arrivals (guards against runaway inputs)."""
        t0, t1 = self.window(duration_s)
        return self.expected_count(t0, t1) if t1 > t0 else 0.0

    def generate(self, rng: np.random.Generator, t0: float, t1: float) -> Iterator[np.ndarray]:
        """Sorted arrival times in [t0, t1), in batches."""
        raise NotImplementedError

    def expected_count(self, t0: float, t1: float) -> float:
        """Expected arrivals in [t0, t1); 0 when unknown."""
        return 0.0


def checked(
    process: ArrivalProcessBase,
    batches: Iterator[tuple[np.ndarray, np.ndarray | None]],
    t0: float,
    t1: float,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """A plug-in process's batches, with its contract checked: sorted times in [t0, t1),
    each batch after the previous one; handler times (if any) one per request, >= 0."""
    from ...policies.base import PolicyError

    last = -np.inf
    it = guarded(process, "generate", iter)(batches)
    pull = guarded(process, "generate", lambda: next(it, None))
    while (batch := pull()) is not None:
        times, durations = batch
        try:
            times = np.array(times, dtype=float)  # a copy: a plug-in may refill its buffer
        except (TypeError, ValueError):
            times = np.full((1, 1), np.nan)  # reported below
        problem = None
        if times.ndim != 1:
            problem = "a batch must be a 1-D array of times"
        elif len(times) and not (times[0] >= max(t0, last) and times[-1] < t1):
            problem = f"times must lie in [{t0:g}, {t1:g}) s, after the previous batch's"
        elif (np.diff(times) < 0).any():
            problem = "times must be sorted"
        elif durations is not None and (
            len(durations) != len(times) or not (np.asarray(durations) >= 0).all()
        ):
            problem = "handler times must be one per request, each >= 0 ms"
        if problem:
            raise PolicyError(f"arrival process {process.process}: {problem}")
        if len(times):
            last = float(times[-1])
        yield times, None if durations is None else np.array(durations, dtype=float)


def in_batches(
    times: np.ndarray, durations: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(times, durations) slices of growing size (rng.batch_sizes), none empty."""
    k = 0
    for size in batch_sizes():
        if k >= len(times):
            return
        yield times[k : k + size], None if durations is None else durations[k : k + size]
        k += size


def poisson_times(
    rng: np.random.Generator, rate: float, t0: float, t1: float, sizes
) -> Iterator[np.ndarray]:
    """A homogeneous Poisson process on [t0, t1), by cumulated exponential gaps in batches."""
    if rate <= 0:
        return
    t = t0
    for n in sizes:
        times = t + np.cumsum(rng.exponential(1.0 / rate, n))
        inside = times[times < t1]
        yield inside
        if len(inside) < n:
            return
        t = float(times[-1])


def uniform_counts(
    rng: np.random.Generator, starts: np.ndarray, lengths: np.ndarray, rates: np.ndarray
) -> np.ndarray:
    """Poisson arrivals in consecutive disjoint intervals [starts, starts + lengths) with the
    given constant rates: a Poisson count per interval, placed uniformly, sorted."""
    counts = rng.poisson(rates * lengths)
    base = np.repeat(starts, counts)
    times = base + rng.random(len(base)) * np.repeat(lengths, counts)
    times.sort()
    return times
