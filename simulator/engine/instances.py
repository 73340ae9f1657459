"""Instances (execution environments): their table and their lifecycle facts.

An instance is created (cold init starts), becomes ready after its init, serves requests one
at a time (up to instance_concurrency at once, if set), and goes idle between them; it ends
when its keep-alive window runs out (idle), when it is recycled past its lifetime (lifetime),
when a provisioned count is lowered (deprovisioned), or it is still alive at the horizon. The
engine decides those times; this table records them, one Python list per column (instances
are few next to requests).

Glossary of the per-instance columns (index = instance id):
  fn        the function that created it          user      the function of its last request
  created   when its init started (s)             init_ms   its init time
  special   provisioned, or pre-warmed and not yet through its init: the engine's release
            path treats it apart
  prewarmed created by a keep-alive policy's pre-warm request
  retire    when it is recycled (ready + lifetime for provisioned, created + lifetime else)
  expiry    end of its current idle period, or its end      reason    why it ends at expiry
            (BUSY while it serves a request)
  host      the host holding its memory (-1: no hosts, or not placed yet)
  active    requests it serves now (kept for multi-request instances only)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .eventlog import EndReason

#: `reason` of an instance serving (or initialising for) a request: dispatch marks it, and
#: release overwrites it with how the idle period that follows ends. Never logged.
BUSY = -1


class Instances:
    def __init__(
        self,
        init_ms: Sequence[Callable[[], float]],
        lifetime_s: Sequence[Callable[[], float]],
    ):
        self._init_of = init_ms  # per function: draw an init time (ms)
        self._lifetime_of = lifetime_s  # per function: draw a lifetime (s)
        self.fn: list[int] = []
        self.user: list[int] = []
        self.created: list[float] = []
        self.init_ms: list[float] = []
        self.provisioned: list[bool] = []
        self.special: list[bool] = []
        self.retire: list[float] = []
        self.expiry: list[float] = []
        self.reason: list[int] = []
        self.prewarmed: list[bool] = []
        self.host: list[int] = []
        self.active: list[int] = []
        #: Pre-warmed instances not yet ready that no request has taken.
        self.warming: set[int] = set()

    def __len__(self) -> int:
        return len(self.created)

    def new(
        self, k: int, created: float, provisioned: bool, ready: float | None = None,
        not_before: float | None = None,
    ) -> int:  # fmt: skip
        """Log a new instance of function k; a provisioned one may be created ahead of
        `ready` (its init ends then), but not before `not_before`."""
        init_ms = self._init_of[k]()
        if ready is not None:
            created = ready - init_ms / 1000.0
            if not_before is not None and created < not_before:
                created = not_before
        born = created + init_ms / 1000.0 if provisioned else created
        return self._append(k, created, init_ms, provisioned, False, born)

    def new_prewarmed(self, k: int, not_before: float, ready_at: float) -> int:
        """A pre-warmed instance: its init starts so that it is ready at `ready_at`, but not
        before `not_before` (the moment it was asked for)."""
        init_ms = self._init_of[k]()
        created = max(not_before, ready_at - init_ms / 1000.0)
        iid = self._append(k, created, init_ms, False, True, created)
        self.warming.add(iid)
        return iid

    def _append(
        self, k: int, created: float, init_ms: float, provisioned: bool, prewarmed: bool,
        born: float,
    ) -> int:  # fmt: skip
        """A row; its lifetime runs from `born` (ready, for provisioned instances)."""
        iid = len(self.created)
        self.fn.append(k)
        self.user.append(k)
        self.created.append(created)
        self.init_ms.append(init_ms)
        self.provisioned.append(provisioned)
        self.special.append(provisioned or prewarmed)
        self.prewarmed.append(prewarmed)
        self.retire.append(born + self._lifetime_of[k]())
        self.expiry.append(math.inf)
        self.reason.append(EndReason.ALIVE)
        self.host.append(-1)
        self.active.append(0)
        return iid

    def start_init_now(self, iid: int, t: float) -> None:
        """A pre-warmed instance whose init had not started is taken at t: it starts now."""
        self.retire[iid] += t - self.created[iid]
        self.created[iid] = t

    def ready_s(self, iid: int) -> float:
        return self.created[iid] + self.init_ms[iid] / 1000.0

    def end(self, iid: int, at: float, reason: EndReason) -> None:
        self.expiry[iid], self.reason[iid] = at, reason

    def facts(self, iids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(created_s, ahead, prewarmed, function) of the given instances, as they are now:
        for a streamed run's blocks of rows (final for the instances those rows ran on)."""
        ids = iids.tolist()
        created, fn = self.created, self.fn
        provisioned, prewarmed = self.provisioned, self.prewarmed
        pre = np.array([prewarmed[i] for i in ids], dtype=bool)
        return (
            np.array([created[i] for i in ids], dtype=float),
            np.array([provisioned[i] for i in ids], dtype=bool) | pre,
            pre,
            np.array([fn[i] for i in ids], dtype=np.int64),
        )

    def columns(self, horizon: float, served: np.ndarray) -> dict[str, np.ndarray]:
        """One row per instance; those whose end lies past the horizon are alive. `served`:
        requests served per instance (as far as it goes; instance ids index it)."""
        created = np.array(self.created, dtype=float)
        init_ms = np.array(self.init_ms, dtype=float)
        expiry = np.array(self.expiry, dtype=float)
        reasons = np.array(self.reason, dtype=np.int8)
        alive = (expiry > horizon) & (reasons != EndReason.UNPLACED)  # those never ran
        reason = np.where(alive, EndReason.ALIVE, reasons)
        invocations = np.zeros(len(created), dtype=np.int64)
        n = min(len(served), len(created))
        invocations[:n] = served[:n]
        return {
            "instance_id": np.arange(len(created), dtype=np.int32),  # as in invocations
            "function": np.array(self.fn, dtype=np.int32),
            "provisioned": np.array(self.provisioned, dtype=bool),
            "created_s": created,
            "ready_s": created + init_ms / 1000.0,
            "init_ms": init_ms,
            "ended_s": np.where(alive, np.nan, expiry),
            "end_reason": reason.astype(np.int8),
            "invocations": invocations,
            "prewarmed": np.array(self.prewarmed, dtype=bool),
            "host": np.array(self.host, dtype=np.int32),
        }
