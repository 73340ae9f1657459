"""The SimPy engine: arrivals, cold and warm starts, keep-alive and retirement.

One SimPy process per function walks its arrival times. Everything else is computed rather
than scheduled: a request's end time is known when it starts, so finished instances are moved
to their function's idle pool lazily (a heap of end times, drained up to the current arrival),
and an idle instance's eviction time is decided by the keep-alive policy when it goes idle and
logged then; pools drop expired entries when they meet them. The event loop therefore holds
one event per arrival and no timer per instance.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from .rng import Buffered, stream
from .scenario import Scenario
from .selection import make_pool

#: Instance end reasons, as stored in the `end_reason` codes.
END_REASONS = ("idle", "lifetime", "alive")


@dataclass
class EventLog:
    """What the engine produces: columns of numpy arrays, one row per invocation / instance."""

    functions: list[str]
    invocations: dict[str, np.ndarray]
    instances: dict[str, np.ndarray]
    horizon_s: float  # when the last request finished (>= duration_s)
    events: int  # SimPy events processed


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        progress: Callable[[float], None] | None = None,
    ):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.progress = progress
        self.env = simpy.Environment()
        platform = scenario.platform
        self._lifetime_s = platform.max_lifetime_s or math.inf
        # Instance columns (instances are few next to invocations: Python lists are fine).
        self._inst_fn: list[int] = []
        self._inst_created: list[float] = []
        self._inst_init_ms: list[float] = []
        self._inst_expiry: list[float] = []  # eviction/retirement time of its last idle period
        self._inst_lifetime: list[bool] = []  # that time is a retirement (max lifetime)
        self._busy: list[tuple[float, int]] = []  # (end_s, instance_id) of running requests
        self._pools = []
        self._keep_alive = []
        for f in scenario.functions:
            self._pools.append(
                make_pool(
                    platform.idle_selection,
                    self._inst_expiry,
                    stream(self.seed, f.name, "selection"),
                )
            )
            self._keep_alive.append(
                platform.keep_alive.build(stream(self.seed, f.name, "keep_alive"))
            )
        # Invocation columns, appended in event order (hence chronological across functions).
        self._log = {
            "function": array("i"),
            "arrival_s": array("d"),
            "start_s": array("d"),
            "end_s": array("d"),
            "instance_id": array("q"),
            "cold": array("b"),
            "init_ms": array("d"),
            "duration_ms": array("d"),
        }
        self._events = 0

    # -- public -----------------------------------------------------------------------------

    def run(self) -> EventLog:
        for k, f in enumerate(self.scenario.functions):
            self.env.process(self._function(k, f))
            self._events += 2  # the process's start and end
        if self.progress is not None:
            self.env.process(self._ticker())
        self.env.run()
        self._release(math.inf)
        return self._event_log()

    # -- processes --------------------------------------------------------------------------

    def _function(self, k: int, f):
        env, timeout = self.env, self.env.timeout
        busy, pool, heappush = self._busy, self._pools[k], heapq.heappush
        release = self._release
        duration_rng = stream(self.seed, f.name, "duration")
        init_rng = stream(self.seed, f.name, "init")
        init_ms = Buffered(lambda n: f.init.sample(init_rng, n))
        created, inst_init, inst_fn = self._inst_created, self._inst_init_ms, self._inst_fn
        expiry, lifetime = self._inst_expiry, self._inst_lifetime
        log = self._log
        a_fn, a_arr, a_start, a_end = (
            log[c].append for c in ("function", "arrival_s", "start_s", "end_s")
        )
        a_iid, a_cold, a_init, a_dur = (
            log[c].append for c in ("instance_id", "cold", "init_ms", "duration_ms")
        )
        n = 0
        for times in f.arrivals.batches(
            stream(self.seed, f.name, "arrivals"), self.scenario.duration_s
        ):
            durations = f.duration.sample(duration_rng, len(times))
            n += len(times)
            for t, d_ms in zip(times.tolist(), durations.tolist(), strict=True):
                delay = t - env.now
                yield timeout(delay if delay > 0.0 else 0.0)
                if busy and busy[0][0] <= t:
                    release(t)
                iid = pool.take(t)
                if iid < 0:  # cold start: a new instance pays init once
                    iid = len(created)
                    i_ms = init_ms.next()
                    created.append(t)
                    inst_init.append(i_ms)
                    inst_fn.append(k)
                    expiry.append(math.inf)
                    lifetime.append(False)
                    start = t + i_ms / 1000.0
                    a_cold(1)
                else:
                    i_ms = 0.0
                    start = t
                    a_cold(0)
                end = start + d_ms / 1000.0
                heappush(busy, (end, iid))
                a_fn(k)
                a_arr(t)
                a_start(start)
                a_end(end)
                a_iid(iid)
                a_init(i_ms)
                a_dur(d_ms)
        self._events += n

    def _ticker(self):
        duration_s = self.scenario.duration_s
        step = duration_s / 100
        for i in range(1, 101):
            yield self.env.timeout(step)
            self._events += 1
            self.progress(min(1.0, i / 100))

    # -- instance lifecycle -----------------------------------------------------------------

    def _release(self, now: float) -> None:
        """Every request that ended by `now` frees its instance: retire it, or idle it until the
        keep-alive policy's expiry (capped at its retirement time)."""
        busy, created, expiry, lifetime = (
            self._busy,
            self._inst_created,
            self._inst_expiry,
            self._inst_lifetime,
        )
        fn_of, pools, keep_alive, max_life = (
            self._inst_fn,
            self._pools,
            self._keep_alive,
            self._lifetime_s,
        )
        while busy and busy[0][0] <= now:
            end, iid = heapq.heappop(busy)
            retire_at = created[iid] + max_life
            if end >= retire_at:
                expiry[iid] = end
                lifetime[iid] = True
                continue
            k = fn_of[iid]
            evict_at = keep_alive[k].expiry_s(end)
            if evict_at > retire_at:
                expiry[iid] = retire_at
                lifetime[iid] = True
            else:
                expiry[iid] = evict_at
                lifetime[iid] = False
            pools[k].put(iid, end)

    # -- output -----------------------------------------------------------------------------

    def _event_log(self) -> EventLog:
        inv = {name: np.frombuffer(col, dtype=col.typecode) for name, col in self._log.items()}
        inv["cold"] = inv["cold"].view(np.bool_)
        horizon = max(
            self.scenario.duration_s, float(inv["end_s"].max()) if len(inv["end_s"]) else 0.0
        )
        created = np.array(self._inst_created, dtype=float)
        init_ms = np.array(self._inst_init_ms, dtype=float)
        expiry = np.array(self._inst_expiry, dtype=float)
        alive = expiry > horizon
        reason = np.where(alive, 2, np.array(self._inst_lifetime, dtype=np.int8)).astype(np.int8)
        inst = {
            "instance_id": np.arange(len(created), dtype=np.int64),
            "function": np.array(self._inst_fn, dtype=np.int32),
            "created_s": created,
            "ready_s": created + init_ms / 1000.0,
            "init_ms": init_ms,
            "ended_s": np.where(alive, np.nan, expiry),
            "end_reason": reason,
            "invocations": np.bincount(inv["instance_id"], minlength=len(created)).astype(np.int64),
        }
        return EventLog(
            functions=[f.name for f in self.scenario.functions],
            invocations=inv,
            instances=inst,
            horizon_s=horizon,
            events=self._events,
        )
