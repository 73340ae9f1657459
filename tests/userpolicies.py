"""Users' own policies, written the way docs/policies.md tells: plain subclasses of coldsim's
bases, outside the package. The plug-in tests name them as `userpolicies:<Class>`."""

from __future__ import annotations

import numpy as np
from coldsim import ArrivalProcess, IdleSelection, KeepAlivePolicy, Prewarm
from pydantic import Field


class TwiceLastGap(KeepAlivePolicy):
    """Keep an idle instance `factor` times the last gap between two requests."""

    factor: float = Field(2.0, gt=0)
    floor_s: float = Field(10.0, ge=0)

    def start(self, function, rng):
        self._last = None
        self._gap = self.floor_s

    def observe(self, invocation):
        if self._last is not None:
            self._gap = max(self.floor_s, invocation.arrival_s - self._last)
        self._last = invocation.arrival_s

    def keep_alive_s(self, end_s, instance_id):
        return self.factor * self._gap


class Window(KeepAlivePolicy):
    """A constant window, as given (for the interface's contract: 0, inf, or a bad value)."""

    window_s: float

    def keep_alive_s(self, end_s, instance_id):
        return self.window_s


class PrewarmAfter(KeepAlivePolicy):
    """Unload an instance when it goes idle and pre-warm one ready `after_s` later."""

    after_s: float = Field(ge=0)
    keep_s: float = Field(ge=0)

    def keep_alive_s(self, end_s, instance_id):
        return 0.0

    def prewarm(self, end_s, instance_id):
        return Prewarm(end_s + self.after_s, self.keep_s)


class OldestFirst(IdleSelection):
    """The idle instance created first."""

    def start(self, expiry, rng):
        self._expiry = expiry
        self._idle: set[int] = set()

    def put(self, instance_id, end_s):
        self._idle.add(instance_id)

    def take(self, now):
        for iid in sorted(self._idle):
            self._idle.discard(iid)
            if now < self._expiry[iid]:
                return iid
        return -1


class Ticks(ArrivalProcess):
    """A request every interval_s, from t0 on."""

    interval_s: float = Field(gt=0)

    def generate(self, rng, t0, t1):
        yield np.arange(t0, t1, self.interval_s)

    def expected_count(self, t0, t1):
        return (t1 - t0) / self.interval_s


class NotAPolicy:
    pass
