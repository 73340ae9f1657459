"""`simulate()`: scenario in, Result out. The public entry point for notebooks and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .engine.core import Engine, frozen_heap
from .engine.eventlog import EventLog
from .engine.sharding import simulate_shards
from .errors import ScenarioError
from .reporting.logs import (
    about_requests,
    instances_frame,
    invocations_frame,
    requests_written,
    throttles_frame,
)
from .reporting.output import check_output_dir, write_folder
from .reporting.result import Result
from .reporting.rowstats import RowStats, functions_kept
from .reporting.stream import BLOCK_ROWS, RequestSink, shard_sink
from .reporting.summary import report, row_stats
from .scenario.budget import check_memory
from .scenario.loading import load_scenario, parse_scenario
from .scenario.schema import Scenario, chain_expected
from .version import __version__


def simulate(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    seed: int | None = None,
    progress: Callable[..., None] | None = None,
    *,
    allow_import: bool = False,
    memory_check: bool = True,
    workers: int | None = None,
    dask: str | Any | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Run a scenario (a Scenario, plain data, or a YAML path). `seed` overrides the scenario's;
    `progress(fraction)` is called as simulated time advances (as shards finish, sharded),
    with `requests=` the requests placed so far if it takes that keyword;
    `allow_import` lets a path or plain data name plug-in classes in modules not imported
    yet. A run whose memory estimate exceeds what the machine has available is refused
    (ScenarioError) unless memory_check is False.

    workers (> 1) or dask (a scheduler address or a distributed.Client) split the run into
    shards of functions that share nothing, simulated in parallel and merged: the same logs
    and summary as one process (see coldsim.sharding); a scenario whose functions share
    capacity is refused.

    The run is streamed when `save_to` names a folder, or when scenario.outputs.requests is
    `none` or a fraction (sharded: only `none`; a sharded run that writes requests merges
    them in memory to number them as one run's): its summary and figures accumulate as it
    goes and its memory grows with its instances, not its requests. Its Result's
    `invocations` then holds only the requests kept in memory: none, or the sample; with
    `save_to`, none (they are in the folder's invocations.parquet, written as the run goes;
    the folder is replaced atomically at the end, as Result.save does)."""
    if scenario is None:
        raise ScenarioError("simulate() needs a scenario: a Scenario, a mapping or a YAML path")
    if isinstance(scenario, str | Path):
        scenario = load_scenario(scenario, allow_import=allow_import)
    elif isinstance(scenario, Mapping):
        scenario = parse_scenario(scenario, allow_import=allow_import)
    elif not isinstance(scenario, Scenario):
        raise ScenarioError(
            f"simulate() takes a Scenario, a mapping or a YAML path, not {type(scenario).__name__}"
        )
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ScenarioError(f"workers must be a whole number >= 1, got {workers!r}")
    if seed is not None:
        scenario = scenario.updated({"seed": seed})
    sharded = dask is not None or (workers or 1) > 1
    if memory_check:
        check_run_memory(scenario, workers, dask, save_to,
                         hint=" (or pass memory_check=False to insist)")  # fmt: skip
    t0 = time.perf_counter()
    if save_to is not None:
        out = check_output_dir(save_to, "run")
        results: list[Result] = []

        def fill(tmp: Path) -> None:
            if sharded and scenario.outputs.requests == "none":
                results.append(_streamed_shards(scenario, workers, dask, progress, t0))
                results[0].save_into(tmp)
            elif sharded:  # every request, or a sample of them, renumbered as one run
                log = simulate_shards(scenario, workers, dask, progress)
                results.append(result_of(scenario, log, time.perf_counter() - t0, t0))
                results[0].save_into(tmp)
            else:
                results.append(_streamed(scenario, progress, tmp, t0))
                results[0].save_into(tmp, requests=False)

        write_folder(out, "run", fill)
        results[0].saved_to = out
        return results[0]
    if sharded and scenario.outputs.requests == "none":
        return _streamed_shards(scenario, workers, dask, progress, t0)
    if sharded:
        log = simulate_shards(scenario, workers, dask, progress)
    elif scenario.outputs.requests != "all":
        return _streamed(scenario, progress, None, t0)
    else:
        with frozen_heap():
            log = Engine(scenario, progress=progress).run()
    return result_of(scenario, log, time.perf_counter() - t0, t0)


def check_run_memory(
    scenario: Scenario, workers: int | None, dask: Any, save_to: Any, hint: str = ""
) -> None:
    """Refuse (ScenarioError) a run whose memory estimate exceeds what the machine has: a
    streamed run holds only the rows it keeps; a sharded one that holds its logs, the shards'
    logs and their merge (twice one run)."""
    sharded = dask is not None or (workers or 1) > 1
    requests = scenario.outputs.requests
    streamed = save_to is not None or requests != "all"
    if sharded and requests != "none":  # the shards' logs are merged as one run's
        check_memory(scenario, 2, what="this run, sharded,", hint=(
            "; a sharded run merges its request log in memory unless outputs.requests is none "
            f"(--requests none), and one worker streams it to invocations.parquet{hint}"))
        return
    if not streamed:
        check_memory(scenario, hint=hint)
        return
    expected = chain_expected(scenario.functions, scenario.duration_s)
    held = float(np.dot(expected, functions_kept(scenario)))
    if save_to is None and requests not in ("all", "none"):  # the sample stays in memory
        held += requests * sum(expected)
    local = 0 if dask is not None else (workers or 1) if sharded else 0
    check_memory(scenario, hint=hint, held_requests=held, workers=local)


def _streamed(scenario: Scenario, progress, folder: Path | None, t0: float) -> Result:
    """Run with the engine's rows handed to a RequestSink (invocations.parquet into
    `folder`, if any) as the run goes."""
    sink = RequestSink(scenario, folder)
    try:
        with frozen_heap():
            engine = Engine(scenario, progress=progress)
            engine.sink, engine.flush_rows = sink, BLOCK_ROWS
            # Rows are handed over between chunks of arrivals: no chunk much above a block.
            engine.chunk_arrivals = min(engine.chunk_arrivals, 2 * BLOCK_ROWS)
            log = engine.run()
    except BaseException:
        sink.abort()
        raise
    engine_wall_s = time.perf_counter() - t0
    requests, instances, throttles, kept, about = sink.finish(log)
    summary = _facts(scenario, log, engine_wall_s)
    summary.update(report(sink.stats, instances, scenario, kept))
    summary["requests_log"] = about
    summary["wall_s"] = time.perf_counter() - t0
    return Result(scenario, requests, instances, throttles, summary, sink.stats, kept, True)


def _streamed_shards(scenario: Scenario, workers, dask, progress, t0: float) -> Result:
    """A sharded run whose shards stream (outputs.requests none): each sends back its
    statistics, its instances and throttles, and the rows it kept, merged here."""
    log, parts = simulate_shards(scenario, workers, dask, progress, sink=shard_sink)
    engine_wall_s = time.perf_counter() - t0
    stats = RowStats(scenario)
    for functions, shard_stats in parts:
        stats.merge(shard_stats, np.asarray(functions))
    # The shards' requests are not numbered as one run's (that needs every arrival): the
    # rows kept, and the throttled attempts, say -1.
    log.invocations["request_id"][:] = -1
    log.throttles["request_id"][:] = -1
    instances, throttles = instances_frame(log), throttles_frame(log)
    kept = invocations_frame(log, scenario.warmup_s)
    summary = _facts(scenario, log, engine_wall_s)
    summary.update(report(stats, instances, scenario, kept))
    summary["requests_log"] = about_requests("none", int(stats.counts["rows"].sum()), 0)
    summary["wall_s"] = time.perf_counter() - t0
    return Result(scenario, kept.iloc[:0], instances, throttles, summary, stats, kept, True)


def result_of(scenario: Scenario, log: EventLog, engine_wall_s: float, t0: float) -> Result:
    """A run's Result from its event log: the logs as DataFrames and the summary."""
    invocations = invocations_frame(log, scenario.warmup_s)
    instances = instances_frame(log)
    throttles = throttles_frame(log)
    stats = row_stats(invocations, instances, throttles, scenario)
    summary = _facts(scenario, log, engine_wall_s)
    summary.update(report(stats, instances, scenario, invocations))
    summary["requests_log"] = requests_written(invocations, scenario.outputs.requests,
                                               scenario.seed)[1]  # fmt: skip
    summary["wall_s"] = time.perf_counter() - t0
    return Result(scenario, invocations, instances, throttles, summary, stats)


def _facts(scenario: Scenario, log: EventLog, engine_wall_s: float) -> dict[str, Any]:
    """The run's facts that head its summary."""
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "warmup_s": scenario.warmup_s,
        "horizon_s": log.horizon_s,
        "simulated_events": log.events,
        "wall_s": None,  # filled in below: the whole simulate() call
        "engine_wall_s": engine_wall_s,
        "coldsim_version": __version__,
        # Only with users' plug-ins (a run of built-ins has no such entry).
        **({"plugins": log.plugins} if log.plugins else {}),
    }
