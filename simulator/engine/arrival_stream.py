"""All functions' arrivals as one time-ordered stream, merged chunk by chunk of time.

Each function's arrival process still draws its own batches from its own random streams (so a
function's traffic does not depend on the others, and is what it was when every function was
its own SimPy process). The stream merges them: for a chunk of time it takes every function's
arrivals in it, sorts them once with numpy, and hands out Python lists the engine walks in a
plain loop. A chunk's span aims at CHUNK arrivals and is cut at twice that (a burst after a
quiet stretch). Only the functions with an arrival in the chunk are visited (a heap of each
one's next arrival), and only about one batch per function is held, so arrival times are
never all in memory at once.

The order is SimPy's, exactly: each arrival carries the time its SimPy timeout would have had
(`key`: the previous arrival's time plus the delay, which may differ from the arrival time in
the last bit) and takes its event id when the function's previous arrival is served, as the
timeout did. Arrivals at equal keys are left for the engine to order by those ids (`ties`).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

import numpy as np

#: Arrivals per chunk: large enough that numpy's per-call costs and the visits of the
#: functions active in the chunk amortise, small enough that the chunk's lists stay tens of MB.
CHUNK = 1 << 17


def timeout_keys(times: np.ndarray, last: float) -> np.ndarray:
    """The times SimPy gives the timeouts of arrivals at `times` (sorted), each scheduled at
    the previous one's key as now + max(t - now, 0); `last` is the key before the first (0 for
    a process's first timeout). Equal to `times` but where the subtraction rounded."""
    prev = np.empty_like(times)
    prev[0] = last
    prev[1:] = times[:-1]
    keys = prev + np.maximum(times - prev, 0.0)
    bad = np.flatnonzero(keys != times)
    if len(bad):  # rare (a time less than twice the previous): redo the chain sequentially
        n, i = len(times), 0
        bad_list = bad.tolist()
        while i < len(bad_list):
            q = bad_list[i] + 1  # keys[q - 1] is right and differs from times[q - 1]
            while q < n:
                delay = times[q] - keys[q - 1]
                keys[q] = keys[q - 1] + (delay if delay > 0.0 else 0.0)
                if keys[q] == times[q]:
                    break
                q += 1
            while i < len(bad_list) and bad_list[i] <= q:
                i += 1  # recomputed already; the next bad index was computed from a right key
    return keys


class Cursor:
    """One function's arrivals loaded and not yet taken: (keys, times, handler times) pieces
    in order, the first possibly a remainder of a batch."""

    __slots__ = ("k", "batches", "pieces", "last_key")

    def __init__(self, k: int, batches: Iterator[tuple[np.ndarray, np.ndarray]]):
        self.k = k
        self.batches = batches
        self.pieces: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.last_key = 0.0  # SimPy's now when the process yielded its first timeout

    def ready(self) -> bool:
        """Whether an arrival is loaded (the next batch is drawn when none is); False once
        the function has no more."""
        if self.pieces:
            return True
        for times, durations in self.batches:
            if len(times):
                keys = timeout_keys(times, self.last_key)
                self.last_key = float(keys[-1])
                self.pieces.append((keys, times, durations))
                return True
        return False

    def next_key(self) -> float:
        return float(self.pieces[0][0][0])

    def take_below(self, end: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The arrivals with keys below `end`, in order, no longer held."""
        out = []
        while self.ready():
            keys, times, durations = self.pieces[0]
            j = int(np.searchsorted(keys, end, "left")) if keys[-1] >= end else len(keys)
            if j:
                out.append((keys[:j], times[:j], durations[:j]))
            if j < len(keys):
                self.pieces[0] = (keys[j:], times[j:], durations[j:])
                break
            self.pieces.popleft()
        return out

    def give_back(self, piece: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Arrivals taken and not used: they come first again."""
        self.pieces.appendleft(piece)


class Chunk:
    """Arrivals merged in key order, as lists: `segments` are (first, end, tied) ranges of
    positions; in a tied range every key is equal (the engine orders them by event id)."""

    __slots__ = ("keys", "times", "durations", "functions", "segments")

    def __init__(self, keys, times, durations, functions, segments):
        self.keys, self.times, self.durations = keys, times, durations
        self.functions, self.segments = functions, segments


class ArrivalStream:
    """Chunks of all functions' arrivals, in key order, from the started functions."""

    def __init__(self, target: int = CHUNK):
        self.target = target
        self._upcoming: list[tuple[float, int]] = []  # (next key, k)
        self._cursors: dict[int, Cursor] = {}
        self._span = 0.0  # the last chunk's span of time, s (0: not known yet)

    def start(self, k: int, batches: Iterator[tuple[np.ndarray, np.ndarray]]) -> bool:
        """Add function k's batches; False if it has no arrivals at all."""
        cursor = Cursor(k, batches)
        if not cursor.ready():
            return False
        self._cursors[k] = cursor
        heapq.heappush(self._upcoming, (cursor.next_key(), k))
        return True

    def __bool__(self) -> bool:
        return bool(self._upcoming)

    def next_chunk(self) -> Chunk | None:
        """The next chunk: the arrivals of a span of time sized to hold about `target` of
        them, and never more than twice that (a burst after a quiet stretch is cut at the
        target-th key, keeping arrivals at one key together)."""
        upcoming = self._upcoming
        if not upcoming:
            return None
        t0 = upcoming[0][0]
        span = self._span or self._first_span()
        end = t0 + span
        if end <= t0:  # a span below the resolution of t0
            end = float(np.nextafter(t0, np.inf))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
        touched: list[Cursor] = []
        while upcoming and upcoming[0][0] < end:
            cursor = self._cursors[heapq.heappop(upcoming)[1]]
            touched.append(cursor)
            parts += [(*piece, cursor.k) for piece in cursor.take_below(end)]
        taken = sum(len(p[0]) for p in parts)
        if taken > 2 * self.target:
            parts, taken = self._cut(parts)
        for cursor in touched:
            if cursor.ready():
                heapq.heappush(upcoming, (cursor.next_key(), cursor.k))
            else:
                del self._cursors[cursor.k]
        # The next chunk's span aims at the target count (within a factor 4 of this one's).
        self._span = span * min(4.0, max(0.25, self.target / max(taken, 1)))
        return _merged(parts)

    def _cut(self, parts):
        """Keep the arrivals below the target-th smallest key (all those at the smallest key
        if it is that one); give the rest back to their functions."""
        keys = np.concatenate([p[0] for p in parts])
        edge = float(np.partition(keys, self.target)[self.target])
        side = "right" if edge == keys.min() else "left"
        kept = []
        for piece in reversed(parts):  # a function's later pieces go back first
            j = int(np.searchsorted(piece[0], edge, side))
            if j < len(piece[0]):
                self._cursors[piece[3]].give_back(tuple(a[j:] for a in piece[:3]))
            if j:
                kept.append((*(a[:j] for a in piece[:3]), piece[3]))
        kept.reverse()
        return kept, sum(len(p[0]) for p in kept)

    def _first_span(self) -> float:
        """A first guess: the span in which the loaded batches hold about `target` arrivals."""
        rate = 0.0
        for cursor in self._cursors.values():
            keys = cursor.pieces[0][0]
            rate += len(keys) / max(float(keys[-1] - keys[0]), 1e-6)
        return self.target / rate if rate > 0 else 1.0


def _merged(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]) -> Chunk:
    keys = np.concatenate([p[0] for p in parts])
    times = np.concatenate([p[1] for p in parts])
    durations = np.concatenate([p[2] for p in parts])
    functions = np.repeat(
        np.array([p[3] for p in parts], dtype=np.int64), [len(p[0]) for p in parts]
    )
    if len(parts) > 1:
        order = np.argsort(keys, kind="stable")  # a function's arrivals stay in their order
        keys, times, durations, functions = (
            keys[order], times[order], durations[order], functions[order],
        )  # fmt: skip
    return Chunk(keys.tolist(), times.tolist(), durations.tolist(), functions.tolist(),
                 _segments(keys))  # fmt: skip


def _segments(keys: np.ndarray) -> list[tuple[int, int, bool]]:
    """(first, end, tied) ranges covering the chunk: tied ones are runs of equal keys."""
    n = len(keys)
    equal = np.flatnonzero(keys[1:] == keys[:-1])  # keys[i] == keys[i + 1]
    if not len(equal):
        return [(0, n, False)]
    # Runs of equal keys: [start, stop) where consecutive `equal` indices chain.
    breaks = np.flatnonzero(np.diff(equal) > 1)
    starts = np.concatenate([[equal[0]], equal[breaks + 1]])
    stops = np.concatenate([equal[breaks], [equal[-1]]]) + 2
    segments, pos = [], 0
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        if a > pos:
            segments.append((pos, a, False))
        segments.append((a, b, True))
        pos = b
    if pos < n:
        segments.append((pos, n, False))
    return segments
