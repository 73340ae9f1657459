"""Random streams: one seed drives everything, one independent stream per (function, purpose).

Streams are keyed by the function's name, not its position, so adding or removing a function
leaves the other functions' traffic unchanged (common random numbers across scenario variants).
"""

from __future__ import annotations

import zlib

import numpy as np

#: Purposes of the per-function streams. Append only: the codes are part of reproducibility.
STREAMS = {"arrivals": 0, "duration": 1, "init": 2, "selection": 3, "keep_alive": 4, "lifetime": 5}

#: Batch size for numpy sampling in the engine's hot loop.
BATCH = 1 << 14


def stream(seed: int, function: str, purpose: str) -> np.random.Generator:
    """The generator for one function's stream, derived from the scenario seed."""
    key = (STREAMS[purpose], zlib.crc32(function.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class Buffered:
    """Draws from a sampler in numpy batches and hands out one Python float at a time."""

    __slots__ = ("_draw", "_buf", "_i")

    def __init__(self, draw):
        self._draw = draw  # draw(n) -> ndarray of n samples
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i == len(self._buf):
            self._buf = self._draw(BATCH).tolist()
            self._i = 0
        x = self._buf[self._i]
        self._i += 1
        return x
