"""Sweeps: every point of a knob grid, run on common random numbers, with 95% confidence
intervals over replications; resumable, on local processes or a Dask cluster.

Replication r of every point runs with the same seed (`replication_seeds`), so points differ
only by their knobs. Each finished run is stored under `<out>/runs/<key>.json` (key: hash of
the resolved scenario and the seed) as soon as it ends; a rerun skips it. Tables are written
at the end, each by one rename; knobs whose values are mappings, lists or plug-in classes
appear in them by readable labels (`knob_text`), their values in the Parquet metadata.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import numbers
import os
import queue
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..engine.parallel import execute, in_process
from ..errors import ScenarioError
from ..policies.base import (
    PolicyError,
    as_data,
    plugin_files,
    plugin_folders,
    string_leaves,
)
from ..reporting.output import check_output_dir, write_file, write_manifest
from ..scenario.budget import available_bytes, check_memory, estimate_bytes
from ..scenario.loading import KIND_KEYS, load_scenario, parse_scenario, updated
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
    """The seed of replication r, for r < replications: the first 32-bit word of the state of
    the r-th child of numpy's SeedSequence(seed) (`SeedSequence(seed).spawn(n)[r]
    .generate_state(1)[0]`). It depends on seed and r only: more replications add seeds and
    keep the first ones, and `coldsim run --seed <it>` with a point's knobs reproduces a run."""
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
    """The base scenario with a grid point's values (plug-in classes among them recorded by
    their import paths), validated as the base was (the same file for errors, the same
    consent to plug-in imports)."""
    origin = base.origin()
    where = point_text(point)
    try:  # as Scenario.updated: a point under another platform.preset starts from its data
        return updated(base, {**{path: as_data(v) for path, v in point.items()}, "sweep": None})
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


def point_text(point: Mapping[str, Any]) -> str:
    """A grid point for people: knob=label, ..."""
    return ", ".join(f"{k}={knob_text(v)}" for k, v in point.items())


def knob_text(value: Any) -> str:
    """A knob value as a short readable label: 60, 0.25, lru, null, true; a plug-in class by
    its name; a mapping that names a kind (a policy, a distribution, an arrival process) as
    kind(key=value, ...): `fixed(idle_s=60)`, `lognormal(median_ms=250, sigma=0.4)`,
    `TwiceLastGap(factor=3)` (for `{policy: mymodule:TwiceLastGap, factor: 3}`); another
    mapping as {key: value, ...}; a list as [a, b]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, type):
        return value.__qualname__
    if isinstance(value, Mapping):
        kind = next((k for k in sorted(KIND_KEYS) if k in value), None)
        rest = ", ".join(f"{k}{'=' if kind else ': '}{knob_text(v)}" for k, v in value.items()
                         if k != kind)  # fmt: skip
        if kind is None:
            return "{" + rest + "}"
        name = value[kind]
        if isinstance(name, str) and ":" in name:  # module:Class
            name = name.rpartition(":")[2]
        name = knob_text(name)
        return f"{name}({rest})" if rest else name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(knob_text, value)) + "]"
    return str(value)


def _labels(values: Sequence[Any]) -> list[str | None]:
    """Labels of a knob's values (None stays None): knob_text's, or each value as JSON where
    two different values would share a label."""
    data = [json.dumps(as_data(v), sort_keys=True) for v in values]
    labels = [None if v is None else knob_text(v) for v in values]
    if len(set(zip(labels, data, strict=True))) > len(set(labels)):  # one label, two values
        return [None if v is None else json.dumps(as_data(v)) for v in values]
    return labels


def _as_is(values: Iterable[Any]) -> bool:
    """Whether a knob's values go into a table as they are: numbers, or strings, or booleans
    (and nulls); else they go as labels."""
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool | np.bool_):
            kinds.add("bool")
        elif isinstance(v, numbers.Real):
            kinds.add("number")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            return False
    return len(kinds) <= 1


@dataclass(frozen=True)
class _Report:
    """A run's progress from a worker process: (tag, fraction of simulated time) onto a queue
    the sweep reads (a top-level class: it travels to the workers)."""

    queue: Any
    tag: Any

    def __call__(self, fraction: float) -> None:
        self.queue.put((self.tag, fraction))


class _Progress:
    """A sweep's progress: progress(done, total), and with runs under way, if the callback
    takes the keyword, progress(done, total, under_way=<their fractions of simulated time,
    added>)."""

    def __init__(self, progress: Callable[..., None] | None, done: int, total: int):
        self.progress, self.done, self.total = progress, done, total
        self.under_way: dict[Any, float] = {}
        self.queue: Any = None
        try:
            self.detailed = progress is not None and (
                "under_way" in inspect.signature(progress).parameters
            )
        except (TypeError, ValueError):  # a builtin or C callable: the two-argument form
            self.detailed = False

    def show(self) -> None:
        if self.progress is None:
            return
        if self.detailed:
            self.progress(self.done, self.total, under_way=sum(self.under_way.values()))
        else:
            self.progress(self.done, self.total)

    def report(self, tag: Any, fraction: float) -> None:
        self.under_way[tag] = fraction
        self.show()

    def drain(self) -> None:
        """Read the reports the worker processes sent (a run's are all in before its result
        is: a manager's queue takes each at once)."""
        changed = False
        while True:
            try:
                tag, fraction = self.queue.get_nowait()
            except queue.Empty:
                break
            self.under_way[tag] = fraction
            changed = True
        if changed:
            self.show()

    def finished(self, tag: Any) -> None:
        self.under_way.pop(tag, None)
        self.done += 1
        self.show()


def run_one(
    scenario_data: dict[str, Any],
    seed: int,
    plugin_folders: Sequence[str] = (),
    label: str = "",
    report: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """One replication (a top-level function: it travels to worker processes and Dask):
    {"metrics": {...}, "wall_s": the run's, "plugin_time_s": time in users' plug-ins or
    None}. plugin_folders: where the scenario's plug-in modules were found, for this process
    to import them from; label: the run, for errors; report(fraction): its progress."""
    from ..simulation import simulate

    for folder in plugin_folders:
        if folder not in sys.path:
            sys.path.append(folder)
    # The parent validated this scenario, with the user's consent to its plug-in imports.
    try:  # the parent checked the memory of the runs it sends at once
        sc = parse_scenario(scenario_data, allow_import=True)
        result = simulate(sc, seed=seed, memory_check=False, progress=report)
    except PolicyError as err:
        raise PolicyError(f"{label}: {err}") from None
    plugins = result.summary.get("plugins")
    return {
        "metrics": metrics(result.summary),
        "wall_s": result.summary["wall_s"],
        "plugin_time_s": sum(p["time_s"] for p in plugins.values()) if plugins else None,
    }


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
    progress: Callable[..., None] | None = None,
    memory_check: bool = True,
) -> SweepResult:
    """Run every grid point `replications` times. grid and replications default to the
    scenario's `sweep:` block; grid values may be anything a scenario field takes, plug-in
    classes included. workers: local processes (default: the machine's cores; 1 runs in this
    process); dask: a scheduler address or a distributed.Client. A sweep whose parallel runs
    would not fit in the machine's memory is refused unless memory_check is False.
    `scenario` may be a Scenario or a YAML path.

    progress(done, total) is called at the start (done: the runs found in `out`'s store) and
    as each run ends; if it takes the keyword `under_way`, also as the runs under way advance
    (local processes: several times a second), with under_way the sum of their fractions
    of simulated time (runs on Dask report when they end only)."""
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
                label = f"grid point {point_text(pts[i])}, replication {r} (seed {seed})"
                jobs.append(((i, r, key), [data, seed, folders, label]))
    total = len(pts) * reps
    if memory_check and dask is None and jobs:  # a Dask cluster's memory is its own
        workers = _workers_that_fit([scenarios[i] for i in {job[0][0] for job in jobs}],
                                    min(workers or os.cpu_count() or 1, len(jobs)))  # fmt: skip
    shown = _Progress(progress, len(done), total)
    shown.show()
    poll, manager = None, None
    try:
        if shown.detailed and dask is None and jobs:  # runs report as they go
            if in_process(workers, dask):
                for tag, args in jobs:
                    args.append(partial(shown.report, tag))
            else:  # from worker processes, through a manager's queue (read while waiting)
                import multiprocessing

                manager = multiprocessing.Manager()
                shown.queue, poll = manager.Queue(), shown.drain
                for tag, args in jobs:
                    args.append(_Report(shown.queue, tag))
        for tag, record in execute(run_one, [(t, tuple(a)) for t, a in jobs], workers, dask,
                                   poll):  # fmt: skip
            i, r, key = tag
            done[(i, r)] = record
            _save(store, key, {"point": as_data(pts[i]), "replication": r, "seed": seeds[r],
                               **record})  # fmt: skip
            shown.finished(tag)
    finally:
        if manager is not None:
            manager.shutdown()
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
    timed = any(record.get("plugin_time_s") is not None for record in done.values())
    for i, p in enumerate(pts):
        for r, seed in enumerate(seeds):
            record = done[(i, r)]
            facts = {"wall_s": record.get("wall_s", math.nan)}
            if timed:  # a sweep of users' plug-ins: the time spent in them
                facts["plugin_time_s"] = record.get("plugin_time_s")
            rows.append({"point": i, **p, "replication": r, "seed": seed, **facts,
                         **record["metrics"]})  # fmt: skip
    table = pd.DataFrame(rows)
    if "plugin_time_s" in table:
        table["plugin_time_s"] = table["plugin_time_s"].astype(float)
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

    metric_cols = [c for c in runs.columns
                   if c not in ("point", "replication", "seed", *RUN_FACTS, *knobs)]  # fmt: skip
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


#: Columns of runs.parquet that measure the machine, not the model: not summarised.
RUN_FACTS = ("wall_s", "plugin_time_s")

#: The tables a sweep writes beside its stored runs.
TABLES = ("sweep.parquet", "sweep.csv", "runs.parquet")


def write_tables(result: SweepResult, out: Path) -> None:
    """sweep.parquet, sweep.csv and runs.parquet: knobs whose values are mappings, lists,
    classes or of mixed types by their labels, and those labels' values (as a scenario
    writes them) in the Parquet files' metadata under `coldsim.knobs`."""
    out.mkdir(parents=True, exist_ok=True)
    table, values = tables_for_files(result.table, result.knobs)
    runs, _ = tables_for_files(result.runs, result.knobs)
    write_file(out / "sweep.parquet", partial(_parquet, table, values))
    text = _nulls_named(table, result.knobs)
    write_file(out / "sweep.csv", lambda p: text.to_csv(p, index=False))
    write_file(out / "runs.parquet", partial(_parquet, runs, values))


def _nulls_named(table: pd.DataFrame, knobs: Sequence[str]) -> pd.DataFrame:
    """The table with a knob's null values written `null` (as a scenario writes them), not
    as empty cells (and its numbers as written: 7200, not 7200.0)."""
    out = table.copy()
    for k in knobs:
        if out[k].isna().any():
            out[k] = [knob_text(None if pd.isna(v) else v) for v in out[k]]
    return out


#: The Parquet metadata key of the labelled knobs' values: {knob: {label: value}}.
KNOBS_KEY = b"coldsim.knobs"


def tables_for_files(
    table: pd.DataFrame, knobs: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The table with labels for the knobs that cannot go into a file as they are (see
    write_tables), and {knob: {label: value}} for those."""
    out, values = table.copy(), {}
    for k in knobs:
        column = list(out[k])
        if _as_is(column):
            continue
        labels = _labels(column)
        values[k] = {label: as_data(v) for label, v in zip(labels, column, strict=True)
                     if label is not None}  # fmt: skip
        out[k] = pd.Series(labels, index=out.index, dtype=object)
    return out, values


def _parquet(table: pd.DataFrame, values: dict[str, dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if values:
        meta = {**(arrow.schema.metadata or {}), KNOBS_KEY: json.dumps(values).encode()}
        arrow = arrow.replace_schema_metadata(meta)
    pq.write_table(arrow, path)


def knob_values(path: str | Path) -> dict[str, dict[str, Any]]:
    """{knob: {label: value}} of a sweep's Parquet file: the values behind its labels."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(KNOBS_KEY)
    return json.loads(raw) if raw else {}


def _load(store: Path | None, key: str) -> dict[str, Any] | None:
    """A stored run's record: metrics (NaN for null), wall_s, plugin_time_s."""
    if store is None or not (store / f"{key}.json").is_file():
        return None
    data = json.loads((store / f"{key}.json").read_text())
    return {
        "metrics": {k: (math.nan if v is None else v) for k, v in data["metrics"].items()},
        "wall_s": data.get("wall_s", math.nan),  # (runs stored before it was kept)
        "plugin_time_s": data.get("plugin_time_s"),
    }


def _save(store: Path | None, key: str, record: dict[str, Any]) -> None:
    if store is None:
        return
    record = {
        **record,
        "metrics": {k: (None if math.isnan(v) else v) for k, v in record["metrics"].items()},
    }
    write_file(store / f"{key}.json", lambda p: p.write_text(json.dumps(record, allow_nan=False)))
