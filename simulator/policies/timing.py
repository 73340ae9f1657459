"""Time spent inside users' plug-ins: calls and wall seconds per class and hook, reported in a
run's summary (`plugins`).

Only users' classes are timed. Their hooks already pass through `guarded` (built-ins are
trusted and called directly), which asks `timed` for a timing wrapper: built-ins pay nothing.
An engine makes a `PluginClock` and holds it as the current one (`timing`) while it builds
and runs; a wrapper is bound to the clock current when it is made. The time is exclusive: a
hook that calls another user hook (through the engine) is not charged the inner hook's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class PluginClock:
    """Calls and seconds per (class, hook) of one run."""

    def __init__(self) -> None:
        self.slots: dict[tuple[str, str], list] = {}  # (class, hook) -> [calls, seconds]
        self.inner = 0.0  # seconds of the timed calls inside the one under way

    def slot(self, name: str, hook: str) -> list:
        return self.slots.setdefault((name, hook), [0, 0.0])

    def report(self) -> dict[str, dict[str, Any]]:
        """{class: {calls, time_s, hooks: {hook: {calls, time_s}}}}; {} without user plug-ins
        (a class that was never called is left out)."""
        out: dict[str, dict[str, Any]] = {}
        for (name, hook), (calls, seconds) in sorted(self.slots.items()):
            if not calls:
                continue
            entry = out.setdefault(name, {"calls": 0, "time_s": 0.0, "hooks": {}})
            entry["calls"] += calls
            entry["time_s"] += seconds
            entry["hooks"][hook] = {"calls": calls, "time_s": seconds}
        return out


def merged(reports: Iterator[Mapping[str, Any]] | list) -> dict[str, dict[str, Any]]:
    """Several runs' (a sharded run's shards') reports as one: calls and seconds added."""
    clock = PluginClock()
    for report in reports:
        for name, entry in report.items():
            for hook, h in entry["hooks"].items():
                slot = clock.slot(name, hook)
                slot[0] += h["calls"]
                slot[1] += h["time_s"]
    return clock.report()


_CURRENT: ContextVar[PluginClock | None] = ContextVar("coldsim_plugin_clock", default=None)


@contextmanager
def timing(clock: PluginClock) -> Iterator[PluginClock]:
    """Make `clock` the current one: wrappers made meanwhile charge it."""
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


def timed(name: str, hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """function, counting its calls and the seconds spent in it on the current clock (as the
    class `name`'s `hook`); function itself when no clock is current."""
    clock = _CURRENT.get()
    if clock is None:
        return function
    slot = clock.slot(name, hook)
    now = time.perf_counter

    def call(*args):
        outer, clock.inner = clock.inner, 0.0
        t0 = now()
        try:
            return function(*args)
        finally:
            spent = now() - t0
            slot[0] += 1
            slot[1] += spent - clock.inner
            clock.inner = outer + spent

    return call
