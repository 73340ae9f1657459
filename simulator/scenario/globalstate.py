"""Global state: what a function builds outside its handler and every warm instance keeps.

This is why a warm start is cheap. A function declares its items, for example a database
connection: `global_state: [{name: db, init_ms: 80, per_request_ms: 35, connections: 1}]`.
- A cached item (the default) is built during init: its `init_ms` is added to each cold
  start, and its `connections` are held for the instance's whole life, idle time included
  (an idle instance keeps its database connection open) [sources: aws-lifecycle].
- An uncached item (`cached: false`) is built in every request instead: its `per_request_ms`
  is added to each request's handler time, and its connections are held while the request
  runs.
Items of the same name, in any function, share one resource (one database); its limit is
`platform.connection_limits.<name>` (a database's max_connections).
"""

from __future__ import annotations

from pydantic import Field

from ..model import Model


class GlobalStateItem(Model):
    """One piece of state built outside the handler (or, uncached, inside it)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        max_length=100,
        description="Names the item; items of the same name share one resource (a database).",
    )
    init_ms: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="Time to build it, ms (added to init)."
    )
    per_request_ms: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="Time it costs a request that must build it itself (cached: false), ms.",
    )
    connections: int = Field(0, ge=0, description="Connections it holds (to the resource).")
    cached: bool = Field(
        True,
        description=(
            "Built once per instance during init and kept (true), or in every request (false)."
        ),
    )


def extra_init_ms(items: list[GlobalStateItem]) -> float:
    return float(sum(i.init_ms for i in items if i.cached))


def extra_request_ms(items: list[GlobalStateItem]) -> float:
    return float(sum(i.per_request_ms for i in items if not i.cached))


def resources(functions) -> list[str]:
    """The names of the items that hold connections, in first-seen order."""
    names: dict[str, None] = {}
    for f in functions:
        for item in f.global_state:
            if item.connections:
                names.setdefault(item.name, None)
    return list(names)
