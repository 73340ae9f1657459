"""Replay of the user's own invocation log (CSV)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..traces import usercsv
from .replay import ReplayBase
from .trace import InputPath


class CsvLog(ReplayBase):
    """Requests at the log's `timestamp_s`; with a `function` column, only the named
    function's rows; with a `duration_ms` column, each request runs for its own time."""

    process: Literal["csv"]
    path: InputPath = Field(description="The log: timestamp_s[, function][, duration_ms] columns.")
    function: str | None = Field(
        None, description="Which function's rows (if the log has several)."
    )
    timestamp_column: str = Field("timestamp_s", description="Arrival time column, s.")
    function_column: str = Field("function", description="Function name column.")
    duration_column: str = Field("duration_ms", description="Handler time column, ms.")
    trace_window_s: tuple[float, float] | None = Field(
        None, description="[start, end) of log time to replay, s; replay starts at its start."
    )

    def _log(self) -> usercsv.Log:
        return usercsv.read(
            self.path, self.timestamp_column, self.function_column, self.duration_column
        )

    @model_validator(mode="after")
    def _function_in_log(self):
        try:
            self._log().row(self.function)
        except (KeyError, ValueError) as err:
            raise ValueError(f"{self.path}: no function {self.function!r} ({err})") from None
        return self

    @property
    def provides_durations(self) -> bool:  # type: ignore[override]
        log = self._log()
        return log.duration_ms[log.row(self.function)] is not None

    def trace(self, rng):
        log = self._log()
        i = log.row(self.function)
        return self.replayed(rng, log.arrival_s[i], log.duration_ms[i], self.trace_window_s)
