"""`simulate()`: scenario in, Result out. The public entry point for notebooks and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .budget import check_memory
from .engine import Engine
from .errors import ScenarioError
from .logs import instances_frame, invocations_frame, throttles_frame
from .report import summarize
from .result import Result
from .scenario import load_scenario, parse_scenario
from .schema import Scenario


def simulate(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    *,
    allow_import: bool = False,
    memory_check: bool = True,
) -> Result:
    """Run a scenario (a Scenario, plain data, or a YAML path). `seed` overrides the scenario's;
    `progress(fraction)` is called as simulated time advances; `allow_import` lets a path or
    plain data name plug-in classes in modules not imported yet. A run whose memory estimate
    exceeds what the machine has available is refused (ScenarioError) unless memory_check is
    False."""
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
    if seed is not None:
        scenario = scenario.updated({"seed": seed})
    if memory_check:
        check_memory(scenario, hint=" (or pass memory_check=False to insist)")
    t0 = time.perf_counter()
    log = Engine(scenario, progress=progress).run()
    engine_wall_s = time.perf_counter() - t0
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
