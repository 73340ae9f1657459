"""Event logs as pandas DataFrames: one row per request, per instance, per throttled attempt."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .eventlog import EndReason, EventLog, Kind, Outcome, Status, ThrottleReason, categories


def _categorical(codes: np.ndarray, labels) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(labels))


def invocations_frame(log: EventLog, warmup_s: float) -> pd.DataFrame:
    """Requests by arrival. status: served | throttled (sync, over a limit: never ran) |
    dropped (async, past its max event age); kind: user | warmer. start_s, end_s and
    latency_ms (end - arrival, so it includes init and any async queueing) are NaN unless
    served. counted: arrived in the stats window [warmup_s, duration_s)."""
    inv = log.invocations
    data = {
        "request_id": inv["request_id"],
        "function": _categorical(inv["function"], log.functions),
        "kind": _categorical(inv["kind"], categories(Kind)),
        "status": _categorical(inv["status"], categories(Status)),
        "arrival_s": inv["arrival_s"],
        "start_s": inv["start_s"],
        "end_s": inv["end_s"],
        "instance_id": inv["instance_id"],
        "cold": inv["cold"],
        "provisioned": inv["provisioned"],
        "init_ms": inv["init_ms"],
        "duration_ms": inv["duration_ms"],
        "latency_ms": (inv["end_s"] - inv["arrival_s"]) * 1000.0,
        "queue_delay_ms": inv["queue_delay_ms"],
        "attempts": inv["attempts"],
        "counted": inv["arrival_s"] >= warmup_s,
    }
    return pd.DataFrame(data, copy=False)


def instances_frame(log: EventLog) -> pd.DataFrame:
    """One row per instance. end_reason: idle (keep-alive eviction) | lifetime (recycled) |
    deprovisioned (provisioned count lowered) | alive (at the horizon; ended_s is NaN).
    Provisioned and pre-warmed instances are created ahead of need: init runs before ready_s."""
    inst = dict(log.instances)
    inst["function"] = _categorical(inst["function"], log.functions)
    inst["end_reason"] = _categorical(inst["end_reason"], categories(EndReason))
    return pd.DataFrame(inst, copy=False)


def throttles_frame(log: EventLog) -> pd.DataFrame:
    """One row per throttled attempt. reason: reserved (the function's reserved concurrency) |
    account (the unreserved account pool) | scaling (the rate of new instances). outcome:
    retry (async, retried later) | throttled (sync) | dropped (async, too old to retry)."""
    thr = dict(log.throttles)
    thr["function"] = _categorical(thr["function"], log.functions)
    thr["kind"] = _categorical(thr["kind"], categories(Kind))
    thr["reason"] = _categorical(thr["reason"], categories(ThrottleReason))
    thr["outcome"] = _categorical(thr["outcome"], categories(Outcome))
    return pd.DataFrame(thr, copy=False)


def function_codes(frame: pd.DataFrame) -> np.ndarray:
    return frame["function"].cat.codes.to_numpy()
