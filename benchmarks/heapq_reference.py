"""The reference for the engine's per-request speed: a minimal `heapq` loop that does case a's
cold/warm bookkeeping and nothing else.

Case a: one function, Poisson arrivals at 10/s, exponential handler times (mean 2,000 ms), a
constant 200 ms init, a fixed 60 s keep-alive, no limits. Per request the loop frees the
instances whose request ended (a heap of end times), takes the most recently idled instance
whose keep-alive has not run out (a stack, as coldsim's default MRU selection), or starts a new
one, and records the request's start and end. Random numbers come in numpy batches as in the
engine. It logs nothing else, checks nothing and has no policies: whatever the engine does
beyond this is its overhead, and `make bench` reports the ratio of the two, measured side by
side in one process (the machine is shared and noisy).

    .venv/bin/python benchmarks/heapq_reference.py          # prints requests, cold starts, s
"""

from __future__ import annotations

import heapq
import time

import numpy as np

BATCH = 1 << 14


def run(rate_per_s: float = 10.0, duration_s: float = 100_000.0, seed: int = 1) -> dict:
    """Simulate case a; the counts the engine must also find (statistically)."""
    rng = np.random.default_rng(seed)
    init_s, handler_mean_s, keep_s = 0.2, 2.0, 60.0
    busy: list[tuple[float, int]] = []  # (end_s, instance)
    idle: list[tuple[int, float]] = []  # (instance, expires_s): a stack, most recent last
    instances = requests = cold = 0
    starts: list[float] = []
    ends: list[float] = []
    t = 0.0
    heappush, heappop = heapq.heappush, heapq.heappop
    while True:
        gaps = rng.exponential(1.0 / rate_per_s, BATCH)
        handlers = rng.exponential(handler_mean_s, BATCH)
        times = (t + np.cumsum(gaps)).tolist()
        for now, d in zip(times, handlers.tolist(), strict=True):
            if now >= duration_s:
                return {"requests": requests, "cold": cold, "instances": instances,
                        "mean_end_s": sum(ends) / max(1, len(ends))}  # fmt: skip
            while busy and busy[0][0] <= now:
                end, i = heappop(busy)
                idle.append((i, end + keep_s))
            start = now
            while idle:
                i, expires = idle.pop()
                if expires > now:
                    break
            else:
                i = instances
                instances += 1
                cold += 1
                start = now + init_s
            end = start + d
            heappush(busy, (end, i))
            starts.append(start)
            ends.append(end)
            requests += 1
        t = times[-1]


if __name__ == "__main__":
    t0 = time.perf_counter()
    out = run()
    print({**out, "wall_s": round(time.perf_counter() - t0, 3)})
