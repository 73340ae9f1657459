"""Users' own policies, written the way docs/policies.md tells: plain subclasses of coldsim's
bases, outside the package. The plug-in tests name them as `userpolicies:<Class>`."""

from __future__ import annotations

from typing import ClassVar

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


class Sticky(IdleSelection):
    """Broken on purpose: hands out the first instance it ever saw, idle or not."""

    def start(self, expiry, rng):
        self._first = None

    def put(self, instance_id, end_s):
        if self._first is None:
            self._first = instance_id

    def take(self, now):
        return -1 if self._first is None else self._first


class Unsorted(ArrivalProcess):
    """Broken on purpose: times out of order."""

    def generate(self, rng, t0, t1):
        yield np.array([t0 + 5.0, t0 + 1.0])


class Beyond(ArrivalProcess):
    """Broken on purpose: a time past the window."""

    def generate(self, rng, t0, t1):
        yield np.array([t0, t1 + 10.0])


class Crashes(KeepAlivePolicy):
    """Broken on purpose: its window divides by zero."""

    def keep_alive_s(self, end_s, instance_id):
        return 1 / 0


class BadPrewarm(KeepAlivePolicy):
    """Broken on purpose: prewarm returns what it is given."""

    answer: float | str | None = None

    def keep_alive_s(self, end_s, instance_id):
        return 0.0

    def prewarm(self, end_s, instance_id):
        return self.answer if self.answer != "inf" else Prewarm(float("inf"), 1.0)


class Recorder(KeepAlivePolicy):
    """Records what it observes, in a list shared by all its copies (for tests)."""

    seen: ClassVar[list] = []

    def observe(self, invocation):
        Recorder.seen.append(invocation)

    def keep_alive_s(self, end_s, instance_id):
        return 600.0


class HalfDone(IdleSelection):
    """Forgot take."""

    def put(self, instance_id, end_s):
        pass
