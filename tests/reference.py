"""A deliberately naive model of the lifecycle rules, to check the engine's decisions.

It scans every instance at every request (O(n·m)), keeps no pools, heaps or lazy state, and
recomputes each idle instance's eviction time from its history."""

from __future__ import annotations

import math


def replay(arrivals, durations_ms, init_ms, *, idle_s, max_lifetime_s, selection):
    """Return [(cold, local_instance_index)] per request of one function. init_ms lists the
    init times of new instances in creation order."""
    life = math.inf if max_lifetime_s is None else max_lifetime_s
    created, last_end = [], []
    inits = iter(init_ms)
    out = []
    for t, d in zip(arrivals, durations_ms, strict=True):
        alive = [
            i
            for i in range(len(created))
            if last_end[i] <= t and t < _expiry(created[i], last_end[i], idle_s, life)
        ]
        if alive:
            if selection == "newest":
                i = max(alive)
            elif selection == "mru":
                i = max(alive, key=lambda j: (last_end[j], j))  # ties: the newest
            elif selection == "lru":
                i = min(alive, key=lambda j: (last_end[j], j))  # ties: the oldest
            else:
                raise ValueError(selection)
            last_end[i] = t + d / 1000.0
            out.append((False, i))
        else:
            created.append(t)
            last_end.append(t + next(inits) / 1000.0 + d / 1000.0)
            out.append((True, len(created) - 1))
    return out


def _expiry(created, end, idle_s, life):
    retire_at = created + life
    if end >= retire_at:
        return end  # retired the moment it went idle
    return min(end + idle_s, retire_at)
