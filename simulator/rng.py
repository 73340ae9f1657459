"""Random streams: one seed drives everything, one independent stream per (function, purpose).

Streams are keyed by the function's name, not its position, so adding or removing a function
leaves the other functions' traffic unchanged (common random numbers across scenario variants).
The key is 128 bits of the name's SHA-256: distinct names never share a stream in practice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import numpy as np

#: Purposes of the per-function streams. Append only: the codes are part of reproducibility.
STREAMS = {
    "arrivals": 0, "duration": 1, "init": 2, "selection": 3, "keep_alive": 4, "lifetime": 5,
    "workload": 6, "placement": 7, "eviction": 8, "outputs": 9, "controller": 10,
    "routing": 11, "call_durations": 12, "call_draws": 13,
}  # fmt: skip

#: Sampling batches start small (a rarely used function costs little memory) and double up to
#: BATCH (a busy one amortises numpy's per-call cost).
FIRST_BATCH = 64
BATCH = 1 << 14


def stream(seed: int, function: str, purpose: str) -> np.random.Generator:
    """The generator for one function's stream, derived from the scenario seed (platform-wide
    streams, such as placement's, use the function name "")."""
    digest = hashlib.sha256(function.encode()).digest()[:16]
    key = (STREAMS[purpose], *np.frombuffer(digest, dtype="<u4").tolist())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class LazyStream:
    """stream(seed, function, purpose), made when first drawn from: a run of tens of
    thousands of functions spends seconds making streams that most built-ins never use (a
    fixed keep-alive, the newest idle instance). Stands for the Generator to coldsim's own
    code; a user's plug-in gets the Generator itself."""

    __slots__ = ("_key", "_generator")

    def __init__(self, seed: int, function: str, purpose: str):
        self._key = (seed, function, purpose)
        self._generator: np.random.Generator | None = None

    def __getattr__(self, name: str):
        if self._generator is None:
            self._generator = stream(*self._key)
        return getattr(self._generator, name)


def batch_sizes() -> Iterator[int]:
    """64, 128, ..., BATCH, BATCH, ..."""
    n = FIRST_BATCH
    while True:
        yield n
        n = min(2 * n, BATCH)


class Buffered:
    """Draws from a sampler in numpy batches and hands out one Python float at a time."""

    __slots__ = ("_draw", "_sizes", "_buf", "_i")

    def __init__(self, draw: Callable[[int], np.ndarray]):
        self._draw = draw  # draw(n) -> ndarray of n samples
        self._sizes = batch_sizes()
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i == len(self._buf):
            self._buf = self._draw(next(self._sizes)).tolist()
            self._i = 0
        x = self._buf[self._i]
        self._i += 1
        return x
