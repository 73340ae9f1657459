"""Arrival processes, chosen by `process:` in YAML. Each yields sorted arrival times (seconds)
in [0, duration_s) as numpy batches, so the engine never holds a whole day of samples at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .errors import ScenarioError
from .rng import BATCH


class _ArrivalProcess(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def batches(self, rng: np.random.Generator, duration_s: float) -> Iterator[np.ndarray]:
        """Sorted arrival times in [0, duration_s), in batches."""
        raise NotImplementedError


class Poisson(_ArrivalProcess):
    """Homogeneous Poisson process: exponential inter-arrival times with mean 1/rate_per_s."""

    process: Literal["poisson"]
    rate_per_s: float = Field(gt=0, description="Mean arrival rate, requests per second.")

    def batches(self, rng, duration_s):
        t = 0.0
        while True:
            times = t + np.cumsum(rng.exponential(1.0 / self.rate_per_s, BATCH))
            inside = times[times < duration_s]
            if len(inside):
                yield inside
            if len(inside) < BATCH:
                return
            t = float(times[-1])


class Periodic(_ArrivalProcess):
    """One request every interval_s seconds, the first at offset_s (cron-like)."""

    process: Literal["periodic"]
    interval_s: float = Field(gt=0, description="Time between requests, in s.")
    offset_s: float = Field(0.0, ge=0, description="Time of the first request, in s.")

    def batches(self, rng, duration_s):
        n = max(0, int(np.ceil((duration_s - self.offset_s) / self.interval_s)))
        for k in range(0, n, BATCH):
            times = self.offset_s + self.interval_s * np.arange(k, min(k + BATCH, n), dtype=float)
            yield times[times < duration_s]


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
        return path

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
        for k in range(0, len(times), BATCH):
            yield times[k : k + BATCH]


ArrivalProcess = Annotated[Poisson | Periodic | Trace, Field(discriminator="process")]
