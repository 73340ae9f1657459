"""Concurrency limits and the scaling rate (AWS Lambda's rules).

Account concurrency counts requests in flight (init + execution) across functions; a function
with reserved concurrency has its own cap carved out of the account's, the rest share the
unreserved pool. A function adds on-demand instances at most as fast as a token bucket allows.
The engine's dispatch reads these counters directly (they are its hottest state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class Limits:
    def __init__(self, reserved: Sequence[int | None], concurrency_limit: int | None, scaling):
        n = len(reserved)
        self.reserved = list(reserved)  # per function, or None: the unreserved pool
        self.od_busy = [0] * n  # busy on-demand instances of functions with reserved concurrency
        total_reserved = sum(r or 0 for r in self.reserved)
        self.unreserved_cap = (
            math.inf if concurrency_limit is None else concurrency_limit - total_reserved
        )
        self.used = [0]  # busy on-demand + configured provisioned of unreserved functions
        self._bucket_cap = math.inf if scaling is None else float(scaling.instances)
        self._bucket_rate = math.inf if scaling is None else scaling.instances / scaling.per_s
        self._tokens = [self._bucket_cap] * n
        self._token_t = [0.0] * n

    def take_token(self, k: int, t: float) -> bool:
        """The scaling-rate token bucket: refilled continuously, one token per new instance."""
        cap = self._bucket_cap
        if cap == math.inf:
            return True
        tokens = min(cap, self._tokens[k] + (t - self._token_t[k]) * self._bucket_rate)
        self._token_t[k] = t
        if tokens < 1.0 - 1e-9:  # slack for float noise in the refill (0.29 s x 100/s)
            self._tokens[k] = tokens
            return False
        self._tokens[k] = max(0.0, tokens - 1.0)
        return True

    def give_back(self, k: int) -> None:
        """Return the token of a new instance that could not be created (no memory)."""
        if self._bucket_cap != math.inf:
            self._tokens[k] = min(self._bucket_cap, self._tokens[k] + 1.0)

    def hold(self, k: int, units: int) -> None:
        """Provisioned instances take (or give back) units of the unreserved pool."""
        if self.reserved[k] is None:
            self.used[0] += units
