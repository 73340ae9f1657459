"""A user's keep-alive policy for `make bench` (case a_observed): a fixed window, written as a
user would, that also watches every request."""

from __future__ import annotations

from coldsim import KeepAlivePolicy


class ObservingFixed(KeepAlivePolicy):
    """A fixed window, written as a user would, that also watches every request."""

    idle_s: float = 60.0

    def start(self, function, rng):
        self._last = 0.0

    def observe(self, invocation):
        self._last = invocation.arrival_s

    def keep_alive_s(self, end_s, instance_id):
        return self.idle_s
