"""No requests of its own: a function only other functions call (`functions[].calls`)."""

from __future__ import annotations

from typing import Literal

from .base import ArrivalProcessBase


class NoArrivals(ArrivalProcessBase):
    """No arrivals: the function's requests are the calls other functions make to it."""

    process: Literal["none"]

    def generate(self, rng, t0, t1):
        return iter(())

    def expected_count(self, t0, t1):
        return 0.0
