"""The superposition of several arrival processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from .base import ArrivalProcessBase

if TYPE_CHECKING:
    from . import ArrivalProcessField


class Composite(ArrivalProcessBase):
    """All arrivals of its `processes` together (each drawing from its own sub-stream), e.g. a
    diurnal base load plus on/off bursts plus a cron job."""

    process: Literal["composite"]
    processes: list[ArrivalProcessField] = Field(
        min_length=1, description="The processes to add up."
    )

    def generate(self, rng, t0, t1):
        """A k-way merge of the parts' sorted batches: emit everything up to the smallest of
        the parts' latest generated times, then refill the parts that ran dry."""
        duration = t1
        parts = [
            p.batches(r, duration)
            for p, r in zip(self.processes, rng.spawn(len(self.processes)), strict=True)
        ]
        buffers: list[np.ndarray | None] = [np.empty(0) for _ in parts]
        while True:
            for i, part in enumerate(parts):
                if buffers[i] is not None and len(buffers[i]) == 0:
                    buffers[i] = next(part, None)  # None: that part is exhausted
            live = [b for b in buffers if b is not None]
            if not live:
                return
            cut = min(b[-1] for b in live)
            merged = np.sort(np.concatenate([b[b <= cut] for b in live]), kind="stable")
            buffers = [None if b is None else b[b > cut] for b in buffers]
            yield merged[merged >= t0]

    def expected_count(self, t0, t1):
        return sum(p.count(t1) for p in self.processes)
