"""Arrival processes, chosen by `process:` in YAML. Each yields sorted arrival times (seconds)
in [0, duration_s) as numpy batches, so the engine never holds a whole day of samples at once."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .errors import ScenarioError
from .rng import batch_sizes


class _ArrivalProcess(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def batches(self, rng: np.random.Generator, duration_s: float) -> Iterator[np.ndarray]:
        """Sorted arrival times in [0, duration_s), in batches."""
        raise NotImplementedError

    def count(self, duration_s: float) -> float:
        """Expected number of arrivals in [0, duration_s) (guards against runaway inputs)."""
        raise NotImplementedError


class Poisson(_ArrivalProcess):
    """Homogeneous Poisson process: exponential inter-arrival times with mean 1/rate_per_s."""

    process: Literal["poisson"]
    rate_per_s: float = Field(
        gt=0, allow_inf_nan=False, description="Mean arrival rate, requests per second."
    )

    def batches(self, rng, duration_s):
        t = 0.0
        for n in batch_sizes():
            times = t + np.cumsum(rng.exponential(1.0 / self.rate_per_s, n))
            inside = times[times < duration_s]
            if len(inside):
                yield inside
            if len(inside) < n:
                return
            t = float(times[-1])

    def count(self, duration_s: float) -> float:
        return self.rate_per_s * duration_s


class Periodic(_ArrivalProcess):
    """One request every interval_s seconds, the first at offset_s (cron-like)."""

    process: Literal["periodic"]
    interval_s: float = Field(gt=0, allow_inf_nan=False, description="Time between requests, s.")
    offset_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="First request, s.")

    def batches(self, rng, duration_s):
        # One more than the division suggests, as it may round down; the filter trims.
        n = max(0, math.ceil((duration_s - self.offset_s) / self.interval_s) + 1)
        k = 0
        for size in batch_sizes():
            if k >= n:
                return
            times = self.offset_s + self.interval_s * np.arange(k, min(k + size, n), dtype=float)
            times = times[times < duration_s]
            if len(times):
                yield times
            k += size

    def count(self, duration_s: float) -> float:
        return max(0.0, (duration_s - self.offset_s) / self.interval_s + 1)


class Trace(_ArrivalProcess):
    """Replay arrival times (seconds) from one column of a CSV file; times outside
    [0, duration_s) are dropped. A relative path is relative to the scenario file."""

    process: Literal["trace"]
    path: Path = Field(description="CSV file with one arrival time per row.")
    column: str = Field("timestamp_s", description="Column holding the arrival times, in s.")

    @field_validator("path")
    @classmethod
    def _resolve(cls, path: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"trace file not found: {path}")
        return path.resolve()  # so the resolved scenario runs from anywhere

    @model_validator(mode="after")
    def _has_column(self):
        try:
            header = pd.read_csv(self.path, nrows=0).columns
        except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read {self.path} as CSV: {err}") from None
        if self.column not in header:
            raise ValueError(
                f"{self.path} has no column {self.column!r} (it has: {', '.join(header)})"
            )
        return self

    def read(self) -> np.ndarray:
        """All arrival times of the trace, sorted (seconds)."""
        try:
            frame = pd.read_csv(self.path, usecols=[self.column])
        except ValueError as err:  # pandas says which column is missing
            raise ScenarioError(f"no column {self.column!r} ({err})", file=str(self.path)) from None
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ScenarioError(f"cannot read CSV: {err}", file=str(self.path)) from None
        values = pd.to_numeric(frame[self.column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raw = frame[self.column].iloc[bad[0]]
            raise ScenarioError(
                f"line {bad[0] + 2}: {raw!r} is not a time in seconds (need a finite number)",
                file=str(self.path),
                field=self.column,
            )
        return np.sort(values, kind="stable")

    def batches(self, rng, duration_s):
        times = self.read()
        times = times[(times >= 0) & (times < duration_s)]
        k = 0
        for size in batch_sizes():
            if k >= len(times):
                return
            yield times[k : k + size]
            k += size

    def count(self, duration_s: float) -> float:
        return 0.0  # bounded by the file


ArrivalProcess = Annotated[Poisson | Periodic | Trace, Field(discriminator="process")]
