"""Sweeps: every point of a knob grid, run on common random numbers, with 95% confidence
intervals over replications; resumable, on local processes or a Dask cluster.

Replication r of every point runs with the same seed (the r-th child of the scenario seed's
SeedSequence), so points differ only by their knobs. Each finished run is stored under
`<out>/runs/<key>.json` (key: hash of the resolved scenario and the seed) as soon as it ends;
a rerun skips it. Tables are written at the end, each by one rename.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..engine.parallel import execute
from ..errors import ScenarioError
from ..policies.base import PolicyError, plugin_files, plugin_folders, string_leaves
from ..reporting.output import check_output_dir, write_file, write_manifest
from ..scenario.budget import available_bytes, check_memory, estimate_bytes
from ..scenario.loading import load_scenario, parse_scenario, set_path
from ..scenario.schema import Scenario
from ..version import __version__
from ..workload.traces.common import file_key

#: Summary entries that describe the run rather than the system (they differ by machine).
NOT_METRICS = {
    "seed",
    "wall_s",
    "engine_wall_s",
    "coldsim_version",
    "simulated_events",
    "horizon_s",
    "duration_s",
    "warmup_s",
    "plugins",  # time in users' plug-ins: the machine's, and kept per run as plugin_time_s
}
#: Per-function metrics enter the tables for scenarios with at most this many functions.
MAX_PER_FUNCTION = 10


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """["a.b=1,2,3", ...] -> {"a.b": [1, 2, 3]}: the values are read as a YAML flow sequence,
    so they may be mappings (`p={policy: fixed, idle_s: 60},{policy: random}`)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ScenarioError(f"--grid {item!r}: expected dotted.path=v1,v2,...")
        if key.strip() in grid:
            raise ScenarioError(f"--grid {key.strip()} is given twice")
        try:
            values = yaml.safe_load(f"[{raw}]")
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err)
            raise ScenarioError(f"--grid {item!r}: values are not valid YAML ({problem})") from None
        grid[key.strip()] = values
    return grid


def replication_seeds(seed: int, replications: int) -> list[int]:
    return [int(ss.generate_state(1)[0]) for ss in np.random.SeedSequence(seed).spawn(replications)]


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per point: knobs, then <metric>_mean/_ci_low/_ci_high
    runs: pd.DataFrame  # one row per (point, replication)
    knobs: list[str]
    out: Path | None = None


def points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_scenario(base: Scenario, point: Mapping[str, Any]) -> Scenario:
    """The base scenario with a grid point's values, validated as the base was (the same
    file for errors, the same consent to plug-in imports)."""
    data = base.to_dict()
    data["sweep"] = None
    origin = base.origin()
    where = ", ".join(f"{k}={v}" for k, v in point.items())
    try:
        for path, value in point.items():
            set_path(data, path, value)
        return parse_scenario(data, **{**origin, "file": None})
    except ScenarioError as err:
        raise ScenarioError(f"grid point {where}: {err}", file=origin["file"]) from None


def run_key(scenario: Scenario, seed: int) -> str:
    """What a stored run is valid for: the resolved scenario, the seed, the coldsim version,
    and the size and modification time of every file the scenario reads and of every plug-in
    module it uses (a changed trace or policy must not be answered from the store)."""
    data = scenario.to_dict()
    files = sorted({file_key(p) for p in _paths(data) if Path(p).is_file()})
    files += sorted({file_key(p) for p in plugin_files(data)})
    text = json.dumps(
        {"scenario": data, "seed": seed, "files": files, "version": __version__}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _paths(data: Any) -> Iterable[str]:
    """The file paths a scenario's data names."""
    return (value for key, value in string_leaves(data) if key in ("path", "invocations"))


def run_one(
    scenario_data: dict[str, Any], seed: int, plugin_folders: Sequence[str] = (), label: str = ""
) -> dict[str, float]:
    """One replication (a top-level function: it travels to worker processes and Dask).
    plugin_folders: where the scenario's plug-in modules were found, for this process to
    import them from; label: the run, for errors."""
    from ..simulation import simulate

    for folder in plugin_folders:
        if folder not in sys.path:
            sys.path.append(folder)
    # The parent validated this scenario, with the user's consent to its plug-in imports.
    try:  # the parent checked the memory of the runs it sends at once
        sc = parse_scenario(scenario_data, allow_import=True)
        result = simulate(sc, seed=seed, memory_check=False)
    except PolicyError as err:
        raise PolicyError(f"{label}: {err}") from None
    return metrics(result.summary)


def metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The summary's numeric entries, flattened to dotted names (per-function ones for small
    scenarios); None becomes NaN."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, bool):
            return
        elif isinstance(value, int | float) or value is None:
            out[prefix] = math.nan if value is None else float(value)

    per_function = summary.get("per_function", {})
    for key, value in summary.items():
        if key in NOT_METRICS or key == "per_function":
            continue
        walk(key, value)
    if len(per_function) <= MAX_PER_FUNCTION:
        walk("per_function", per_function)
    return out


def sweep(
    scenario: Scenario,
    grid: Mapping[str, Sequence[Any]] | None = None,
    replications: int | None = None,
    *,
    workers: int | None = None,
    out: str | Path | None = None,
    dask: str | Any | None = None,
    progress: Callable[[int, int], None] | None = None,
    memory_check: bool = True,
) -> SweepResult:
    """Run every grid point `replications` times. grid and replications default to the
    scenario's `sweep:` block. workers: local processes (default: the machine's cores; 1 runs
    in this process); dask: a scheduler address or a distributed.Client. A sweep whose
    parallel runs would not fit in the machine's memory is refused unless memory_check is
    False. `scenario` may be a Scenario or a YAML path."""
    if isinstance(scenario, str | Path):
        scenario = load_scenario(scenario)
    if not isinstance(scenario, Scenario):
        raise ScenarioError(f"sweep() takes a Scenario or a YAML path, not {scenario!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ScenarioError(f"workers must be a whole number >= 1, got {workers!r}")
    spec = scenario.sweep
    grid = dict(grid if grid is not None else (spec.grid if spec else {}))
    if not grid:
        raise ScenarioError(
            "nothing to sweep: give a grid (on the command line: --grid path=v1,v2), or a "
            "`sweep:` block in the scenario"
        )
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise ScenarioError(f"the grid gives no values for {', '.join(empty)}")
    if replications is not None and (not isinstance(replications, int) or replications < 1):
        raise ScenarioError(f"replications must be a whole number >= 1, got {replications!r}")
    not_lists = [k for k, v in grid.items() if not isinstance(v, list | tuple)]
    if not_lists:
        raise ScenarioError(f"grid values must be lists: {', '.join(not_lists)}")
    reps = replications or (spec.replications if spec else 5)
    pts = points(grid)
    scenarios = [point_scenario(scenario, p) for p in pts]
    seeds = replication_seeds(scenario.seed, reps)
    if out is not None:  # one folder per scenario: its identity is in the manifest
        identity = {**scenario.to_dict(), "sweep": None, "seed": None}
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        out = check_output_dir(out, "sweep", key)
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, "sweep", ["runs", *TABLES], key, about=scenario.name)
    store = out / "runs" if out is not None else None
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
    jobs, done = [], {}
    for i, sc in enumerate(scenarios):
        for r, seed in enumerate(seeds):
            key = run_key(sc, seed)
            cached = _load(store, key)
            if cached is not None:
                done[(i, r)] = cached
            else:
                data = sc.to_dict()
                folders = plugin_folders(data)
                where = ", ".join(f"{k}={v}" for k, v in pts[i].items())
                label = f"grid point {where}, replication {r} (seed {seed})"
                jobs.append(((i, r, key), (data, seed, folders, label)))
    total = len(pts) * reps
    if memory_check and dask is None and jobs:  # a Dask cluster's memory is its own
        workers = _workers_that_fit([scenarios[i] for i in {job[0][0] for job in jobs}],
                                    min(workers or os.cpu_count() or 1, len(jobs)))  # fmt: skip
    if progress:
        progress(len(done), total)
    for (i, r, key), values in execute(run_one, jobs, workers, dask):
        done[(i, r)] = values
        _save(store, key, {"point": pts[i], "replication": r, "seed": seeds[r], "metrics": values})
        if progress:
            progress(len(done), total)
    runs = _runs_table(pts, seeds, done, list(grid))
    table = summarize_runs(runs, list(grid))
    result = SweepResult(table, runs, list(grid), Path(out) if out is not None else None)
    if out is not None:
        write_tables(result, Path(out))
    return result


def _workers_that_fit(scenarios: list[Scenario], workers: int) -> int:
    """As many parallel runs as the machine's memory holds, at most `workers`; refuses
    (ScenarioError) when not even one run fits."""
    biggest = max(scenarios, key=estimate_bytes)
    check_memory(biggest, hint=" (or pass memory_check=False / --skip-memory-check)")
    have = available_bytes()
    if have is None:
        return workers
    return max(1, min(workers, int(have // estimate_bytes(biggest))))


def _runs_table(pts, seeds, done, knobs) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(pts):
        for r, seed in enumerate(seeds):
            rows.append({"point": i, **p, "replication": r, "seed": seed, **done[(i, r)]})
    table = pd.DataFrame(rows)
    for col in table.columns:  # counts stay whole numbers (nullable where a run lacks one)
        if col.rsplit(".", 1)[-1] in COUNTS:
            table[col] = table[col].round().astype("Int64")
    return table


#: Summary entries that count things: integers in runs.parquet.
COUNTS = frozenset({
    "invocations", "served", "cold_starts", "throttled", "retries", "instances_created",
    "peak_instances", "spillover_invocations", "warmer_invocations", "warmer_throttled",
})  # fmt: skip


def summarize_runs(runs: pd.DataFrame, knobs: list[str], level: float = 0.95) -> pd.DataFrame:
    """Per point: the knobs, then for each metric its mean and a Student-t confidence interval
    over the replications (NaN where fewer than two replications have a value)."""
    from scipy import stats  # imported on use: plain runs need not load scipy

    metric_cols = [c for c in runs.columns if c not in ("point", "replication", "seed", *knobs)]
    out = []
    for i, rows in runs.groupby("point", sort=True):
        row: dict[str, Any] = {k: rows[k].iloc[0] for k in knobs}
        row["replications"] = len(rows)
        for m in metric_cols:
            x = rows[m].to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            mean = float(x.mean()) if len(x) else math.nan
            if len(x) >= 2:
                half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
            else:
                half = math.nan
            row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = (
                mean,
                mean - half,
                mean + half,
            )
        out.append(row)
        del i
    return pd.DataFrame(out)


#: The tables a sweep writes beside its stored runs.
TABLES = ("sweep.parquet", "sweep.csv", "runs.parquet")


def write_tables(result: SweepResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / "sweep.parquet", lambda p: result.table.to_parquet(p, index=False))
    write_file(
        out / "sweep.csv", lambda p: _as_text(result.table, result.knobs).to_csv(p, index=False)
    )
    write_file(out / "runs.parquet", lambda p: result.runs.to_parquet(p, index=False))


def _as_text(table: pd.DataFrame, knobs: list[str]) -> pd.DataFrame:
    """The table with mapping- and list-valued knobs (a distribution, a SnapStart block) as
    JSON, as a scenario would write them, not as Python reprs; null as null."""
    import json

    out = table.copy()
    for k in knobs:
        if out[k].map(lambda v: isinstance(v, dict | list) or v is None).any():
            out[k] = out[k].map(json.dumps)
    return out


def _load(store: Path | None, key: str) -> dict[str, float] | None:
    if store is None or not (store / f"{key}.json").is_file():
        return None
    data = json.loads((store / f"{key}.json").read_text())
    return {k: (math.nan if v is None else v) for k, v in data["metrics"].items()}


def _save(store: Path | None, key: str, record: dict[str, Any]) -> None:
    if store is None:
        return
    record = {
        **record,
        "metrics": {k: (None if math.isnan(v) else v) for k, v in record["metrics"].items()},
    }
    write_file(store / f"{key}.json", lambda p: p.write_text(json.dumps(record, allow_nan=False)))
