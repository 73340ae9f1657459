"""Replay of arrival times from a CSV column (the user's own list of timestamps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from ...errors import ScenarioError
from .base import ArrivalProcessBase, in_batches


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """A relative path is relative to the scenario file; the result is absolute, so the
    resolved scenario runs from anywhere."""
    base = (info.context or {}).get("base_dir")
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    return path.resolve()


#: A file or folder the scenario reads: relative to the scenario file, stored absolute.
InputPath = Annotated[Path, AfterValidator(resolve_path)]


class Trace(ArrivalProcessBase):
    """Replay arrival times (s) from one column of a CSV file; times outside the window are
    dropped."""

    process: Literal["trace"]
    path: InputPath = Field(description="CSV file with one arrival time per row.")
    column: str = Field("timestamp_s", description="Column holding the arrival times, in s.")

    @field_validator("path")
    @classmethod
    def _a_file(cls, path: Path) -> Path:
        if not path.is_file():
            raise ValueError(f"not a file: {path}")
        return path

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

    def generate(self, rng, t0, t1):
        times = self.read()
        for batch, _ in in_batches(times[(times >= t0) & (times < t1)]):
            yield batch

    def expected_count(self, t0, t1):
        times = self.read()
        return float(np.count_nonzero((times >= t0) & (times < t1)))
