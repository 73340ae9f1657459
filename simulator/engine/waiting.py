"""Requests waiting for host memory (`platform.hosts.on_full: queue`).

Memory goes to waiting requests first come, first served: no request takes memory for a new
instance while an earlier one still waits for some. A waiting request that needs no memory,
because an instance of its own function became idle (or a pre-warmed one is on its way), takes
that instance at once, whatever its place in the line: it does not wait behind requests that
need memory, and no later arrival takes the instance before it. Each request waits at most
until its deadline (max_wait_s after it joined; for an async request, no later than its
max_event_age_s), then is dropped.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass(slots=True)
class Waiting:
    """A request in the line."""

    deadline: float
    queued_at: float
    k: int
    d_ms: float
    arrival: float
    attempt: int
    kind: int
    rid: int
    done: bool = field(default=False)


class WaitingLine:
    """First-come-first-served order for memory, and each function's waiting requests."""

    def __init__(self) -> None:
        self.line: collections.deque[Waiting] = collections.deque()
        #: Function -> its waiting requests, made when one waits (a day of tens of thousands
        #: of functions, most never waiting, would hold as many empty lines).
        self.of: dict[int, collections.deque[Waiting]] = collections.defaultdict(
            collections.deque
        )
        self.functions: set[int] = set()  # functions with waiting requests
        self.count = 0  # requests waiting

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, item: Waiting) -> None:
        self.line.append(item)
        self.of[item.k].append(item)
        self.functions.add(item.k)
        self.count += 1

    def done(self, item: Waiting) -> None:
        """Served or dropped: it leaves the line (entries are dropped lazily)."""
        item.done = True
        self.count -= 1

    def head(self) -> Waiting | None:
        """The earliest request still waiting."""
        line = self.line
        while line and line[0].done:
            line.popleft()
        return line[0] if line else None

    def first_of(self, k: int) -> Waiting | None:
        """Function k's earliest request still waiting."""
        queue = self.of.get(k)
        while queue and queue[0].done:
            queue.popleft()
        if not queue:
            self.functions.discard(k)
            self.of.pop(k, None)
            return None
        return queue[0]
