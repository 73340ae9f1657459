"""The event-log schema: what the engine records, as columns, and the codes of its categories.

The engine appends to typed `array` columns (cheap per row) and hands them over as numpy
arrays without copies. Categorical columns hold small integer codes: the enums below name
them, and `categories()` gives the labels the DataFrames carry (the order is the code).
Facts that concern few requests (cold starts, retries, ...) are stored sparsely as row
numbers while the engine runs and expanded into full columns at the end.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class EndReason(IntEnum):
    """Why an instance ended: idle (keep-alive eviction), lifetime (recycled), deprovisioned
    (provisioned count lowered), alive (still there at the horizon), pressure (evicted to make
    room on its host), unplaced (a pre-warm that found no room on any host: it never ran)."""

    IDLE = 0
    LIFETIME = 1
    DEPROVISIONED = 2
    ALIVE = 3
    PRESSURE = 4
    UNPLACED = 5


class Status(IntEnum):
    """What became of a request: served, throttled (sync, never ran), dropped (async, too
    old to retry)."""

    SERVED = 0
    THROTTLED = 1
    DROPPED = 2


class Kind(IntEnum):
    """Who sent a request: the user's traffic or a warmer's ping."""

    USER = 0
    WARMER = 1


class ThrottleReason(IntEnum):
    """Which limit throttled an attempt (memory: no host had room for a new instance)."""

    RESERVED = 0
    ACCOUNT = 1
    SCALING = 2
    MEMORY = 3
    ROUTING = 4  # the routing policy turned it away (a category only such runs' logs have)


class Outcome(IntEnum):
    """What followed a throttled attempt."""

    RETRY = 0
    THROTTLED = 1
    DROPPED = 2


def categories(codes: type[IntEnum]) -> list[str]:
    """The labels of a categorical column, in code order."""
    return [member.name.lower() for member in sorted(codes)]


#: Invocation columns written for every request (name -> array typecode)...
DENSE_TYPES = {
    "function": "i", "request_id": "i", "arrival_s": "d", "start_s": "d", "end_s": "d",
    "instance_id": "i", "duration_ms": "d",
}  # fmt: skip
#: ...and the rare facts, as (row, ...) entries; the rest of such a column is its default.
#: `prewarm_wait`: requests that met a pre-warmed instance still initialising (their init
#: latency is the rest of its init, not the whole).
SPARSE_TYPES = {
    "cold": {"row": "q"},
    "provisioned": {"row": "q"},
    "warmer": {"row": "q"},
    "retried": {"row": "q", "status": "b", "attempts": "i", "queue_delay_ms": "d"},
    "prewarm_wait": {"row": "q", "init_ms": "d"},
    "memory_wait": {"row": "q", "wait_ms": "d"},
    "instance_wait": {"row": "q", "wait_ms": "d"},  # queued behind a busy instance
    "parent": {"row": "q", "request_id": "q"},  # a call's caller (function chains)
}
#: One row per throttled attempt.
THROTTLE_TYPES = {
    "function": "i", "kind": "b", "request_id": "i", "arrival_s": "d", "time_s": "d",
    "attempt": "i", "reason": "b", "outcome": "b",
}  # fmt: skip


@dataclass
class EventLog:
    """What the engine produces: columns of numpy arrays."""

    functions: list[str]
    invocations: dict[str, np.ndarray]  # one row per request (served, throttled or dropped)
    instances: dict[str, np.ndarray]  # one row per instance
    throttles: dict[str, np.ndarray]  # one row per throttled attempt
    horizon_s: float  # when the last request finished (>= duration_s)
    events: int  # SimPy events processed
    #: Every instance's end and its reason as if no horizon cut them (for closing a shard of a
    #: sharded run at the whole run's horizon), and when the next idle provisioned instance
    #: would be replaced (inf: none).
    ends: tuple[np.ndarray, np.ndarray] | None = None
    next_replacement_s: float = math.inf
    #: Whether a routing policy may turn requests away (throttle reason routing).
    routing_drops: bool = False
    #: Time spent in users' plug-ins: {class: {calls, time_s, hooks}} ({} with built-ins only).
    plugins: dict = field(default_factory=dict)


class Columns:
    """The engine's growing columns. Writers are bound by column name. Rows are handed over
    in blocks as the run goes (`take`): the columns hold only rows not taken yet, `offset`
    being the number taken, so row numbers stay absolute."""

    def __init__(self) -> None:
        self.invocations = {c: array(t) for c, t in DENSE_TYPES.items()}
        self.sparse = {
            name: {c: array(t) for c, t in cols.items()} for name, cols in SPARSE_TYPES.items()
        }
        self.throttles = {c: array(t) for c, t in THROTTLE_TYPES.items()}
        self.offset = 0
        #: Whether requests may queue behind busy instances (routing): then the taken rows
        #: carry instance_wait_ms (a column only such runs have).
        self.instance_waits = False
        #: With function chains: the taken rows carry parent_request_id and chain_cold; rows
        #: of callers that met a cold start down their sync calls and were warm themselves
        #: (their chains end out of row order: a set, not a sorted column).
        self.chains = False
        self.cold_down_the_chain: set[int] = set()

    def row(self) -> int:
        """Number of the invocation row about to be written."""
        return self.offset + len(self.invocations["arrival_s"])

    def held(self) -> int:
        """Invocation rows written and not taken yet."""
        return len(self.invocations["arrival_s"])

    def note_retried(self, status: int, attempts: int, waited_s: float) -> None:
        retried = self.sparse["retried"]
        retried["row"].append(self.row())
        retried["status"].append(status)
        retried["attempts"].append(attempts)
        retried["queue_delay_ms"].append(waited_s * 1000.0)

    def unserved(self, k: int, rid: int, arrival: float) -> None:
        """The invocation row of a request that never ran: no start, end, instance or
        handler time."""
        inv = self.invocations
        inv["function"].append(k)
        inv["request_id"].append(rid)
        inv["arrival_s"].append(arrival)
        inv["start_s"].append(math.nan)
        inv["end_s"].append(math.nan)
        inv["instance_id"].append(-1)
        inv["duration_ms"].append(math.nan)

    def throttle(self, **values: float) -> None:
        for name, value in values.items():
            self.throttles[name].append(value)

    def final_rows(self, before_rid: int) -> int:
        """How many held rows, from the first, can be taken while requests from `before_rid`
        on may still write theirs: the longest run whose requests are all numbered below
        `before_rid` and below every request held after it (a retried request's row comes
        after rows of later requests), so that blocks follow each other in request-id order."""
        rids = _copy(self.invocations["request_id"])
        if not len(rids):
            return 0
        highest = np.maximum.accumulate(rids)  # of the rows up to each
        lowest_after = np.minimum.accumulate(rids[::-1])[::-1][1:]  # of the rows after each
        ok = highest < before_rid
        ok[:-1] &= highest[:-1] < lowest_after
        cuts = np.flatnonzero(ok)
        return int(cuts[-1]) + 1 if len(cuts) else 0

    def rows_before(self, unfinished: set[int]) -> int:
        """How many held rows, from the first, come before the first row of a request in
        `unfinished` (a row written before its request ends, and completed later)."""
        if not unfinished:
            return self.held()
        rids = _copy(self.invocations["request_id"])
        hit = np.flatnonzero(np.isin(rids, np.fromiter(unfinished, dtype=np.int64)))
        return int(hit[0]) if len(hit) else len(rids)

    def take(self, rows: int, instance_init_ms: list[float]) -> dict[str, np.ndarray]:
        """The first `rows` held rows as full invocation columns, ordered by request id (a
        retried request's row is written when it ends), and no longer held. Taken blocks
        follow each other in request-id order when each is cut by final_rows."""
        inv = {c: _taken(col, rows) for c, col in self.invocations.items()}
        end = self.offset + rows
        sparse = {}
        for name, cols in self.sparse.items():
            j = int(np.searchsorted(_copy(cols["row"]), end))
            sparse[name] = {c: _taken(col, j) for c, col in cols.items()}
            sparse[name]["row"] -= self.offset
        self.offset = end
        n = rows
        for name in ("cold", "provisioned"):
            inv[name] = np.zeros(n, dtype=bool)
            inv[name][sparse[name]["row"]] = True
        inv["kind"] = np.full(n, Kind.USER, dtype=np.int8)
        inv["kind"][sparse["warmer"]["row"]] = Kind.WARMER
        retried = sparse["retried"]
        inv["status"] = np.full(n, Status.SERVED, dtype=np.int8)
        inv["status"][retried["row"]] = retried["status"]
        inv["attempts"] = np.ones(n, dtype=np.int32)
        inv["attempts"][retried["row"]] = retried["attempts"]
        inv["queue_delay_ms"] = np.zeros(n)
        inv["queue_delay_ms"][retried["row"]] = retried["queue_delay_ms"]
        inv["init_ms"] = np.zeros(n)
        cold_rows = sparse["cold"]["row"]
        inv["init_ms"][cold_rows] = np.asarray(instance_init_ms)[inv["instance_id"][cold_rows]]
        waits = sparse["prewarm_wait"]
        inv["init_ms"][waits["row"]] = waits["init_ms"]
        inv["memory_wait_ms"] = np.zeros(n)
        inv["memory_wait_ms"][sparse["memory_wait"]["row"]] = sparse["memory_wait"]["wait_ms"]
        if self.instance_waits:
            inv["instance_wait_ms"] = np.zeros(n)
            waits = sparse["instance_wait"]
            inv["instance_wait_ms"][waits["row"]] = waits["wait_ms"]
        if self.chains:
            inv["parent_request_id"] = np.full(n, -1, dtype=np.int64)
            inv["parent_request_id"][sparse["parent"]["row"]] = sparse["parent"]["request_id"]
            inv["chain_cold"] = inv["cold"].copy()
            met = [r for r in self.cold_down_the_chain if r < end]
            self.cold_down_the_chain.difference_update(met)
            inv["chain_cold"][np.array(met, dtype=np.int64) - (end - n)] = True
        if n and (np.diff(inv["request_id"]) < 0).any():
            order = np.argsort(inv["request_id"], kind="stable")
            inv = {c: v[order] for c, v in inv.items()}
        return inv

    def take_throttles(self) -> dict[str, np.ndarray]:
        """Every held throttle row (they are final as written), no longer held."""
        return {c: _taken(col, len(col)) for c, col in self.throttles.items()}


def _taken(column: array, n: int) -> np.ndarray:
    """The column's first n values (a copy), removed from it."""
    out = _copy(column, n)
    del column[:n]
    return out


def _copy(column: array, n: int | None = None) -> np.ndarray:
    """The column's first n values (all by default) as numpy, copied first: a numpy view of
    the column itself would keep it from shrinking while anything (a profiler's frame, a
    traceback) holds the view."""
    return np.frombuffer(column[:n] if n is not None else column[:], dtype=column.typecode)
