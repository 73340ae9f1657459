"""`simulate()`: scenario in, Result out. The public entry point for notebooks and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .engine.core import Engine, frozen_heap
from .engine.eventlog import EventLog
from .engine.sharding import simulate_shards
from .errors import ScenarioError
from .reporting.logs import instances_frame, invocations_frame, throttles_frame
from .reporting.result import Result
from .reporting.summary import summarize
from .scenario.budget import check_memory
from .scenario.loading import load_scenario, parse_scenario
from .scenario.schema import Scenario
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
    capacity is refused."""
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
    if memory_check:  # sharded, the parent holds the shards' logs and their merge
        check_memory(scenario, 2 if sharded else 1, hint=" (or pass memory_check=False to insist)",
                     what="this run, sharded," if sharded else None)
    t0 = time.perf_counter()
    if sharded:
        log = simulate_shards(scenario, workers, dask, progress)
    else:
        with frozen_heap():
            log = Engine(scenario, progress=progress).run()
    return result_of(scenario, log, time.perf_counter() - t0, t0)


def result_of(scenario: Scenario, log: EventLog, engine_wall_s: float, t0: float) -> Result:
    """A run's Result from its event log: the logs as DataFrames and the summary."""
    invocations = invocations_frame(log, scenario.warmup_s)
    instances = instances_frame(log)
    throttles = throttles_frame(log)
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "warmup_s": scenario.warmup_s,
        "horizon_s": log.horizon_s,
        "simulated_events": log.events,
        "wall_s": None,  # filled in below: the whole simulate() call
        "engine_wall_s": engine_wall_s,
        "coldsim_version": __version__,
    }
    summary.update(summarize(invocations, instances, throttles, scenario))
    summary["wall_s"] = time.perf_counter() - t0
    return Result(scenario, invocations, instances, throttles, summary)
