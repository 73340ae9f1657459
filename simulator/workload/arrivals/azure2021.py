"""Replay of one function of the Azure Functions 2021 trace (one row per invocation)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ..traces import azure2021
from .replay import ReplayBase
from .trace import InputPath


class Azure2021(ReplayBase):
    """Each invocation at its arrival (end_timestamp - duration), running for its own
    duration: the handler time distribution is the trace itself."""

    process: Literal["azure2021"]
    path: InputPath = Field(description="The trace file (app,func,end_timestamp,duration).")
    function: str = Field(min_length=1, description="func hash, or a unique prefix of it.")
    app: str | None = Field(None, description="app hash (prefix), if func alone is ambiguous.")
    trace_window_s: tuple[float, float] | None = Field(
        None, description="[start, end) of trace time to replay, s; replay starts at its start."
    )

    provides_durations: ClassVar[bool] = True

    @model_validator(mode="after")
    def _function_in_trace(self):
        try:
            azure2021.read(self.path).row(self.function, self.app)
        except KeyError:
            raise ValueError(f"{self.path} has no single function {self.function!r}") from None
        return self

    def trace(self, rng):
        data = azure2021.read(self.path)
        i = data.row(self.function, self.app)
        return self.replayed(rng, data.arrival_s[i], data.duration_ms[i], self.trace_window_s)
