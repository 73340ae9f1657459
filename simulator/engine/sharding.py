"""One run over many cores or a Dask cluster: shards of functions that share nothing.

A function's traffic, random streams and instances are its own, so groups of functions that
share no capacity can be simulated apart and their logs merged into the run's. Shared
capacity is refused (`check_shardable`): hosts' memory, and an account concurrency limit over
several functions without reserved concurrency. Under `instance_scope: app` an application's
functions share instances and a keep-alive policy: they stay in one shard. The scaling rate
is per function (AWS's rule since 2023), and connection limits are only reported, so neither
couples functions.

The merged logs are the unsharded run's, per function, row for row. Request ids are numbered
by arrival (then function, then the shard's order), instance ids by creation (then function),
so they are the same however the functions are split; they equal the unsharded run's except
where arrivals or creations of different functions fall at the same instant. A shard is
closed at the whole run's horizon (alive instances, provisioned replacements): a shard that
ended earlier is closed again from its instances' ends, or run again with the run's horizon
when a provisioned instance would be replaced in between.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from ..policies.base import PolicyError, plugin_folders
from ..policies.timing import merged
from ..scenario.loading import parse_scenario
from ..scenario.schema import Scenario, chain_expected
from .core import Engine, frozen_heap, reporter
from .eventlog import EndReason, EventLog
from .parallel import execute

#: Shards per worker: smaller shards balance the load of heavy-tailed functions.
SHARDS_PER_WORKER = 4


def check_shardable(scenario: Scenario) -> None:
    """Refuse (ScenarioError, naming the field) a scenario whose functions share capacity."""
    try:
        _check_shardable(scenario)
    except ScenarioError as err:
        if err.field in scenario._preset_filled:  # the user did not write it: say who did
            raise ScenarioError(
                f"{err.message} ({err.field} comes from platform.preset "
                f"{scenario.platform.preset})",
                file=err.file, field=err.field,
            ) from None  # fmt: skip
        raise


def _check_shardable(scenario: Scenario) -> None:
    platform, file = scenario.platform, scenario.origin()["file"]
    if platform.hosts is not None:
        raise ScenarioError(
            "the functions share the hosts' memory, so the run cannot be split into shards; "
            "run it with one worker (no --workers/--dask), or remove platform.hosts to "
            "simulate without hosts",
            file=file, field="platform.hosts",
        )  # fmt: skip
    if platform.controllers:
        raise ScenarioError(
            "a controller sees and acts on every function, so the run cannot be split into "
            "shards; run it with one worker (no --workers/--dask)",
            file=file, field="platform.controllers",
        )  # fmt: skip
    pooled = [f.name for f in scenario.functions if f.reserved_concurrency is None]
    if platform.concurrency_limit is not None and len(pooled) > 1:
        raise ScenarioError(
            f"{len(pooled)} functions without reserved_concurrency "
            f"({', '.join(pooled[:3])}{', ...' if len(pooled) > 3 else ''}) share the "
            f"account's limit of {platform.concurrency_limit}, so the run cannot be split into "
            "shards; set platform.concurrency_limit: null for no account limit (on the command "
            "line: --set platform.concurrency_limit=null), or give each function "
            "reserved_concurrency, or run with one worker",
            file=file, field="platform.concurrency_limit",
        )  # fmt: skip


def groups(scenario: Scenario) -> list[list[int]]:
    """Functions that must run together, by index: an app's under instance_scope app or when
    one keep-alive policy copy serves each app, and functions that call one another."""
    platform, functions = scenario.platform, scenario.functions
    parent = list(range(len(functions)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def join(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    if (platform.keep_alive.scope or platform.instance_scope) == "app":
        first: dict[str, int] = {}
        for k, f in enumerate(functions):
            if f.app is not None:
                join(first.setdefault(f.app, k), k)
    index = {f.name: k for k, f in enumerate(functions)}
    for k, f in enumerate(functions):
        for call in f.calls:
            join(k, index[call.function])
    out: dict[int, list[int]] = {}
    for k in range(len(functions)):
        out.setdefault(root(k), []).append(k)
    return list(out.values())


def shards(scenario: Scenario, count: int) -> list[list[int]]:
    """At most `count` shards of whole groups, balanced by expected requests (the largest
    group first into the lightest shard); each shard's functions in scenario order."""
    load = chain_expected(scenario.functions, scenario.duration_s)
    todo = sorted(groups(scenario), key=lambda g: (-sum(load[k] for k in g), g[0]))
    count = max(1, min(count, len(todo)))
    bins: list[list[int]] = [[] for _ in range(count)]
    weight = [0.0] * count
    for group in todo:
        i = min(range(count), key=lambda j: (weight[j], j))
        bins[i] += group
        weight[i] += sum(load[k] for k in group) or 1.0
    return [sorted(b) for b in bins if b]


def run_shard(
    data: dict[str, Any], seed: int, floor_s: float, folders: Sequence[str],
    sink: Callable[[Scenario], Any] | None = None,
) -> EventLog | tuple[EventLog, Any]:  # fmt: skip
    """Simulate one shard (a top-level function: it travels to workers). data: the shard's
    scenario as plain data, validated by the parent with the user's consent to its plug-ins;
    folders: where those plug-in modules were found. sink: makes the engine's sink (a
    top-level function) for a streamed run: then (log, sink.shard(log)) come back."""
    for folder in folders:
        if folder not in sys.path:
            sys.path.append(folder)
    try:
        scenario = parse_scenario(data, allow_import=True)
        with frozen_heap():
            engine = Engine(scenario, seed=seed, horizon_floor_s=floor_s)
            if sink is None:
                return engine.run()
            engine.sink = sink(scenario)
            engine.flush_rows = engine.sink.block_rows
            engine.chunk_arrivals = min(engine.chunk_arrivals, 2 * engine.flush_rows)
            log = engine.run()
            return log, engine.sink.shard(log)
    except PolicyError as err:
        raise PolicyError(f"shard of {len(data['functions'])} function(s): {err}") from None


def simulate_shards(
    scenario: Scenario,
    workers: int | None,
    dask: str | Any | None,
    progress: Callable[..., None] | None = None,
    count: int | None = None,
    sink: Callable[[Scenario], Any] | None = None,
) -> EventLog | tuple[EventLog, list[tuple[list[int], Any]]]:
    """The run's event log, simulated in shards on `workers` processes or Dask (`count`
    shards: by default a few per worker). With `sink` (see run_shard) the run is streamed:
    (log, [(each shard's functions, what its sink gave back)]); the log's invocations are
    the rows the sinks kept."""
    check_shardable(scenario)
    if count is None:
        count = SHARDS_PER_WORKER * (workers or 1) if dask is None else 64
    parts = shards(scenario, count)
    data = scenario.to_dict()
    folders = plugin_folders(data)

    limit = scenario.platform.concurrency_limit
    reserved = [f.reserved_concurrency or 0 for f in scenario.functions]

    def job(i: int, floor_s: float) -> tuple[int, tuple]:
        shard_data = {**data, "functions": [data["functions"][k] for k in parts[i]]}
        if limit is not None:  # the unreserved pool as in the whole run: less others' reserve
            outside = sum(reserved) - sum(reserved[k] for k in parts[i])
            shard_data["platform"] = {**data["platform"], "concurrency_limit": limit - outside}
        return i, (shard_data, scenario.seed, floor_s, folders, sink)

    logs: dict[int, EventLog] = {}
    extra: dict[int, Any] = {}
    report, placed = reporter(progress), 0

    def take(i: int, got, again: bool = False) -> None:
        nonlocal placed
        if sink is not None:
            got, extra[i] = got
        if not again:
            placed += (int(extra[i].counts["rows"].sum()) if sink is not None
                       else len(got.invocations["arrival_s"]))  # fmt: skip
        logs[i] = got

    # Forked workers share the parent's pages until they are written, and a garbage
    # collection in a worker would write every object the parent had (the scenario's tens
    # of thousands of functions): the parent's objects are frozen first, for them too.
    with frozen_heap():
        for i, got in execute(run_shard, [job(i, 0.0) for i in range(len(parts))], workers,
                              dask):  # fmt: skip
            take(i, got)
            report(len(logs) / len(parts), placed)
        horizon = max(log.horizon_s for log in logs.values())
        again = [i for i, log in logs.items() if log.horizon_s < horizon
                 and log.next_replacement_s <= horizon]  # fmt: skip
        for i, got in execute(run_shard, [job(i, horizon) for i in again], workers, dask):
            take(i, got, again=True)
    log = merge(scenario, [(parts[i], logs[i]) for i in range(len(parts))], horizon)
    if sink is None:
        return log
    return log, [(parts[i], extra[i]) for i in range(len(parts))]


def merge(
    scenario: Scenario, parts: list[tuple[list[int], EventLog]], horizon: float
) -> EventLog:
    """The run's log from its shards' (each: its functions' indices and its log)."""
    for _, log in parts:
        _close_at(log, horizon)
    # Columns only some shards write (a shard without calls has no chain columns): the
    # others' values are the columns' defaults.
    defaults = {"parent_request_id": lambda inv: np.full(len(inv["cold"]), -1, np.int64),
                "chain_cold": lambda inv: inv["cold"].copy(),
                "instance_wait_ms": lambda inv: np.zeros(len(inv["cold"]))}  # fmt: skip
    for column, default in defaults.items():
        if any(column in log.invocations for _, log in parts):
            for _, log in parts:
                log.invocations.setdefault(column, default(log.invocations))

    def fn(table: str) -> list[np.ndarray]:  # the rows' functions as the run's indices
        return [np.asarray(idx, dtype=np.int64)[getattr(log, table)["function"]]
                for idx, log in parts]  # fmt: skip

    # Instances: by creation (a function's own order kept), then function.
    inst_fn = fn("instances")
    order, inst_maps = _numbering(
        [log.instances["created_s"] for _, log in parts], inst_fn
    )
    instances = _stacked([log.instances for _, log in parts], order)
    instances["function"] = np.concatenate(inst_fn)[order].astype(np.int32)
    instances["instance_id"] = np.arange(len(order), dtype=np.int32)
    # Requests: by arrival (a function's own order kept), then function.
    inv_fn = fn("invocations")
    order, rid_maps = _numbering(
        [log.invocations["arrival_s"] for _, log in parts], inv_fn,
        ids=[log.invocations["request_id"] for _, log in parts],
    )  # fmt: skip
    invocations = _stacked([log.invocations for _, log in parts], order)
    invocations["function"] = np.concatenate(inv_fn)[order].astype(np.int32)
    invocations["request_id"] = np.arange(len(order), dtype=np.int32)
    served = [np.append(m, -1)[log.invocations["instance_id"]]  # -1 (never ran) stays -1
              for m, (_, log) in zip(inst_maps, parts, strict=True)]  # fmt: skip
    invocations["instance_id"] = np.concatenate(served)[order].astype(np.int32)
    if "parent_request_id" in invocations:  # calls name their callers by the run's numbers
        parents = [np.where(p >= 0, _renumbered(m, np.maximum(p, 0)), -1)
                   for m, p in zip(rid_maps, (log.invocations["parent_request_id"]
                                              for _, log in parts), strict=True)]  # fmt: skip
        invocations["parent_request_id"] = np.concatenate(parents)[order].astype(np.int64)
    # Throttled attempts: by time (a function's own order kept), then function.
    thr_fn = fn("throttles")
    order, _ = _numbering([log.throttles["time_s"] for _, log in parts], thr_fn)
    throttles = _stacked([log.throttles for _, log in parts], order)
    throttles["function"] = np.concatenate(thr_fn)[order].astype(np.int32)
    # (a streamed shard sends back only the rows it kept: a throttled request among the
    # others has no number in the run, -1)
    rids = [_renumbered(m, log.throttles["request_id"])
            for m, (_, log) in zip(rid_maps, parts, strict=True)]  # fmt: skip
    throttles["request_id"] = np.concatenate(rids)[order].astype(np.int32)
    return EventLog(
        functions=[f.name for f in scenario.functions],
        invocations=invocations,
        instances=instances,
        throttles=throttles,
        horizon_s=horizon,
        events=sum(log.events for _, log in parts),
        routing_drops=any(log.routing_drops for _, log in parts),
        plugins=merged(log.plugins for _, log in parts),
    )


def _renumbered(new: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """new[ids], -1 where an id has no new number."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(len(ids), -1, dtype=np.int64)
    known = ids < len(new)
    out[known] = new[ids[known]]
    return out


def _close_at(log: EventLog, horizon: float) -> None:
    """Close a shard's instances at the run's horizon: those that ended by then are no longer
    alive (ended_s and end_reason from their recorded ends)."""
    if log.horizon_s == horizon or log.ends is None:
        return
    expiry, reason = log.ends
    alive = (expiry > horizon) & (reason != EndReason.UNPLACED)
    log.instances["ended_s"] = np.where(alive, np.nan, expiry)
    log.instances["end_reason"] = np.where(alive, EndReason.ALIVE, reason).astype(np.int8)
    log.horizon_s = horizon


def _numbering(times, functions, *, ids=None):
    """Order of the shards' stacked rows by (time, function, the shard's own order), where a
    function's rows keep their order: the time is each function's running maximum (a row
    out of time order within its function, such as a pre-warm created ahead, stays in place).
    Also, per shard, a map from its row ids (`ids`, else row numbers) to the new numbers."""
    t = np.concatenate(times) if times else np.empty(0)
    f = np.concatenate(functions) if functions else np.empty(0, dtype=np.int64)
    local = np.concatenate([np.arange(len(x)) for x in times]) if times else np.empty(0)
    shard = np.concatenate([np.full(len(x), i) for i, x in enumerate(times)]) if times else local
    if len(t):
        by_fn = np.lexsort((local, shard, f))  # each function's rows in its shard's order
        run = pd.Series(t[by_fn]).groupby(f[by_fn]).cummax().to_numpy()
        t = np.empty_like(t)
        t[by_fn] = run
    order = np.lexsort((local, shard, f, t))
    new = np.empty(len(order), dtype=np.int64)
    new[order] = np.arange(len(order))
    maps, at = [], 0
    for i, x in enumerate(times):
        mine = new[at : at + len(x)]
        if ids is None:
            maps.append(mine)
        else:
            m = np.full(int(ids[i].max()) + 1 if len(ids[i]) else 0, -1, dtype=np.int64)
            m[ids[i]] = mine
            maps.append(m)
        at += len(x)
    return order, maps


def _stacked(tables: list[dict[str, np.ndarray]], order: np.ndarray) -> dict[str, np.ndarray]:
    columns = tables[0].keys()
    return {c: np.concatenate([t[c] for t in tables])[order] for c in columns}
