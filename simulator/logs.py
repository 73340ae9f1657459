"""Event logs as pandas DataFrames: one row per invocation, one per instance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .engine import END_REASONS, EventLog

INVOCATION_COLUMNS = (
    "function", "arrival_s", "start_s", "end_s", "instance_id", "cold",
    "init_ms", "duration_ms", "latency_ms", "counted",
)  # fmt: skip
INSTANCE_COLUMNS = (
    "instance_id", "function", "created_s", "ready_s", "init_ms",
    "ended_s", "end_reason", "invocations",
)  # fmt: skip


def invocations_frame(log: EventLog, warmup_s: float) -> pd.DataFrame:
    """Chronological invocations. latency_ms = end - arrival; counted = arrived in the stats
    window [warmup_s, duration_s). The engine's arrays are wrapped, not copied."""
    inv = log.invocations
    data = {
        "function": pd.Categorical.from_codes(inv["function"], categories=log.functions),
        "arrival_s": inv["arrival_s"],
        "start_s": inv["start_s"],
        "end_s": inv["end_s"],
        "instance_id": inv["instance_id"],
        "cold": inv["cold"],
        "init_ms": inv["init_ms"],
        "duration_ms": inv["duration_ms"],
        "latency_ms": (inv["end_s"] - inv["arrival_s"]) * 1000.0,
        "counted": inv["arrival_s"] >= warmup_s,
    }
    return pd.DataFrame(data, copy=False)


def instances_frame(log: EventLog) -> pd.DataFrame:
    """One row per instance; ended_s is NaN and end_reason 'alive' for instances alive when the
    last request finished."""
    inst = dict(log.instances)
    inst["function"] = pd.Categorical.from_codes(inst["function"], categories=log.functions)
    inst["end_reason"] = pd.Categorical.from_codes(inst["end_reason"], categories=END_REASONS)
    return pd.DataFrame({c: inst[c] for c in INSTANCE_COLUMNS}, copy=False)


def function_codes(frame: pd.DataFrame) -> np.ndarray:
    return frame["function"].cat.codes.to_numpy()
