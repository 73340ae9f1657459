"""Event logs as pandas DataFrames: one row per request, per instance, per throttled attempt."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.eventlog import EndReason, EventLog, Kind, Outcome, Status, ThrottleReason, categories
from ..errors import ScenarioError

#: Every column of the three logs: its unit is in its name, its meaning here. Written into the
#: Parquet files as field metadata ("description") and listed in docs/outputs.md.
COLUMNS = {
    "invocations": {
        "request_id": "Request number, in order of first arrival (retries keep theirs).",
        "function": "The function the request is for.",
        "kind": "user (your traffic) or warmer (a warmer's ping).",
        "status": "served; throttled (sync, over a limit: never ran); dropped (async, past "
                  "its max_event_age_s; or, with hosts, no room for a new instance).",
        "arrival_s": "When the request first arrived, s.",
        "start_s": "When its handler started (after init on a cold start), s; NaN unless "
                   "served.",
        "end_s": "When its handler ended, s; NaN unless served.",
        "instance_id": "The instance that served it; -1 unless served.",
        "cold": "It waited for an instance's init (a cold start): one started for it, or, "
                "with instance_concurrency > 1, one it joined while initialising.",
        "provisioned": "Served by a provisioned-concurrency instance.",
        "init_ms": "Init time the request waited for: the whole init on a cold start, the "
                   "rest of it on a pre-warmed instance; 0 on a warm start.",
        "duration_ms": "Handler time, ms (stretched by CPU sharing on a multi-request "
                       "instance); NaN for requests that never ran.",
        "latency_ms": "end_s - arrival_s, ms: init and handler, plus queueing for async "
                      "requests retried after throttling and waits for host memory or "
                      "behind a busy instance; NaN unless served.",
        "queue_delay_ms": "Time an async request waited in Lambda's queue after being "
                          "throttled, ms (0 otherwise).",
        "memory_wait_ms": "Time the request waited for host memory (hosts.on_full "
                          "queue), ms, whether it was then served or dropped (0 otherwise).",
        "instance_wait_ms": "Time the request waited behind a busy instance before running on "
                            "it, ms (only with a routing policy that queues, such as "
                            "wait-for-warm; 0 for the others).",
        "parent_request_id": "With function calls: the request of the caller whose handler "
                             "made this request (-1: none, it arrived from outside).",
        "chain_cold": "With function calls: whether the request or any call it waited for "
                      "(sync, down the chain) met a cold start.",
        "attempts": "Attempts made (async requests retried after throttling: more than 1).",
        "counted": "Arrived in the statistics window [warmup_s, duration_s).",
        "app": "The function's `app` (the function's own name when it has none).",
        "footprint_mb": "Memory an instance of the function holds on a host, MB: its "
                        "host_memory_mb (a trace's own figure), else its memory_mb.",
    },
    "instances": {
        "instance_id": "Instance number, in order of creation.",
        "function": "The function that created it.",
        "provisioned": "A provisioned-concurrency instance.",
        "created_s": "When its init started, s.",
        "ready_s": "When its init ended, s.",
        "init_ms": "Its init time, ms.",
        "ended_s": "When it ended, s; NaN if alive at the horizon.",
        "end_reason": "idle (keep-alive window over), lifetime (recycled), deprovisioned "
                      "(provisioned count lowered), alive (at the horizon), pressure (evicted "
                      "to make room on its host) or unplaced (a pre-warm that found no room "
                      "on any host: it never ran).",
        "invocations": "Requests it served (warmer pings included).",
        "prewarmed": "Started ahead of requests: by a keep-alive policy's pre-warm request, "
                     "or by the platform's scaling (scale_target, min_instances).",
        "host": "The host holding its memory (platform.hosts), numbered from 0; -1 without "
                "hosts.",
        "app": "The function's `app` (the function's own name when it has none).",
        "footprint_mb": "Memory one instance holds on a host, MB: the function's "
                        "host_memory_mb (a trace's own figure), else its memory_mb.",
    },
    "throttles": {
        "function": "The function the request is for.",
        "kind": "user or warmer.",
        "request_id": "The throttled request (see invocations).",
        "arrival_s": "When the request first arrived, s.",
        "time_s": "When this attempt was throttled, s.",
        "attempt": "Attempt number (1 = the first).",
        "reason": "reserved (the function's reserved concurrency), account (the account's "
                  "unreserved pool), scaling (the rate of new instances; or, with when_full "
                  "throttle, every instance full), memory (no host could make room for a new "
                  "instance) or routing (the routing policy turned it away).",
        "outcome": "retry (async: retried later), throttled (sync: failed) or dropped (async: "
                   "too old to retry; memory: no room, or waited max_wait_s).",
    },
}  # fmt: skip


#: The Parquet schema metadata key that says what a request log holds (see requests_written).
ABOUT_KEY = b"coldsim.requests"


#: Columns the written request and instance logs add from each row's function (not held in
#: memory: they repeat what the scenario says of the function).
FUNCTION_COLUMNS = ("app", "footprint_mb")


def function_columns(scenario) -> dict[str, tuple[np.ndarray, list[str] | None]]:
    """Per function: its app's code and the apps' names; its footprint, MB."""
    apps, codes = app_codes(scenario)
    footprint = np.array([f.footprint_mb() for f in scenario.functions], dtype=float)
    return {"app": (codes, apps), "footprint_mb": (footprint, None)}


def app_codes(scenario) -> tuple[list[str], np.ndarray]:
    """The apps (a function's `app`, else its own name), in first-seen order, and each
    function's index among them."""
    index: dict[str, int] = {}
    codes = [index.setdefault(f.app or f.name, len(index)) for f in scenario.functions]
    return list(index), np.array(codes, dtype=np.int64)


def write_parquet(
    frame: pd.DataFrame, path, log: str, about: dict | None = None, scenario=None
) -> None:
    """Write a log with each column's description as Parquet field metadata, and `about`
    (what the file holds) as the file's key-value metadata under ABOUT_KEY; with `scenario`,
    the request and instance logs gain FUNCTION_COLUMNS."""
    writer = LogWriter(path, log, scenario)
    writer.write(frame)
    writer.close(about)


class LogWriter:
    """A log written to Parquet in row groups of at least ROW_GROUP rows (pyarrow's
    ParquetWriter) as blocks come, so the whole table is never in memory; `close(about)`
    adds what the file holds (ABOUT_KEY)."""

    #: Rows gathered before a row group is written (each group repeats the function names).
    ROW_GROUP = 1 << 16

    def __init__(self, path, log: str, scenario=None):
        self.path, self.log = Path(path), log
        wanted = scenario is not None and log in ("invocations", "instances")
        self._per_function = function_columns(scenario) if wanted else None
        self.rows = 0
        self._writer = None
        self._waiting: list[pd.DataFrame] = []
        self._waiting_rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        self._waiting.append(frame)
        self._waiting_rows += len(frame)
        self.rows += len(frame)
        if self._waiting_rows >= self.ROW_GROUP:
            self._write_group()

    def _write_group(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = (pd.concat(self._waiting, ignore_index=True) if len(self._waiting) > 1
                 else self._waiting[0])  # fmt: skip
        self._waiting, self._waiting_rows = [], 0
        if self._per_function is not None:
            codes = function_codes(frame)
            added = {}
            for name, (values, labels) in self._per_function.items():
                added[name] = (pd.Categorical.from_codes(values[codes], labels)
                               if labels is not None else values[codes])  # fmt: skip
            frame = frame.assign(**added)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            docs = COLUMNS[self.log]
            fields = [
                f.with_metadata({"description": docs[f.name]}) if f.name in docs else f
                for f in table.schema
            ]
            self._schema = pa.schema(fields, metadata=table.schema.metadata)
            self._writer = pq.ParquetWriter(self.path, self._schema)
        self._writer.write_table(table.cast(self._schema))

    def close(self, about: dict | None = None, empty: pd.DataFrame | None = None) -> None:
        """Finish the file; `empty` (the log's columns, no rows) gives the schema of a file
        that received no block."""
        if self._waiting:
            self._write_group()
        if self._writer is None:
            if empty is None:
                raise ValueError(f"{self.path}: no rows and no empty frame for the schema")
            self._waiting = [empty]
            self._write_group()
        if about is not None:
            self._writer.add_key_value_metadata({ABOUT_KEY.decode(): json.dumps(about)})
        self._writer.close()

    def abort(self) -> None:
        """Close the file unfinished (the run failed: its folder is removed)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Sampler:
    """A seeded uniform sample of requests, block by block: each request is kept with
    probability `fraction`, independently, by a hash (SplitMix64) of the run's seed, its
    function's name and its number among its function's requests. So the same run keeps the
    same requests however its rows are split into blocks or shards."""

    DESCRIPTION = (
        "each request kept independently with probability `fraction`: a hash of the run's "
        "seed, its function's name and its number among that function's requests"
    )

    def __init__(self, functions: list[str], seed: int, fraction: float):
        self.fraction = fraction
        self.keys = np.array([
            int.from_bytes(hashlib.sha256(f"{seed}/{name}/outputs".encode()).digest()[:8],
                           "little")
            for name in functions
        ], dtype=np.uint64)  # fmt: skip
        self.seen = np.zeros(len(functions), dtype=np.int64)

    def keep(self, codes: np.ndarray) -> np.ndarray:
        """Which of a block's rows (their functions' codes, in request order) are kept."""
        codes = np.asarray(codes, dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(len(self.keys)))
        nth = np.empty(len(codes), dtype=np.int64)
        nth[order] = np.arange(len(codes)) - starts[codes[order]]
        nth += self.seen[codes]
        self.seen += np.bincount(codes, minlength=len(self.keys))
        golden = np.uint64(0x9E3779B97F4A7C15)
        z = self.keys[codes] + (nth.astype(np.uint64) + np.uint64(1)) * golden
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        return (z >> np.uint64(11)).astype(float) * 2.0**-53 < self.fraction


def requests_written(
    invocations: pd.DataFrame, requests: str | float, seed: int
) -> tuple[pd.DataFrame | None, dict]:
    """The request log a run writes for `outputs.requests` (all, none or a fraction), and what
    it holds (see Sampler for a fraction's sample)."""
    total = len(invocations)
    if requests == "none":
        return None, about_requests("none", total, 0)
    if requests == "all":
        return invocations, about_requests("all", total, total)
    names = list(invocations["function"].cat.categories)
    keep = Sampler(names, seed, requests).keep(invocations["function"].cat.codes.to_numpy())
    sample = invocations[keep].reset_index(drop=True)
    return sample, about_requests(requests, total, len(sample))


def about_requests(requests: str | float, total: int, written: int) -> dict:
    """What a request log holds, for its metadata and summary.json."""
    if isinstance(requests, str):
        return {"requests": requests, "rows_total": total, "rows_written": written}
    return {"requests": "sample", "fraction": requests, "rows_total": total,
            "rows_written": written, "sampled_by": Sampler.DESCRIPTION}  # fmt: skip


def read_requests(folder: Path, purpose: str) -> pd.DataFrame:
    """A run folder's invocations.parquet, which `purpose` needs whole: a clear error
    (ScenarioError) when the run wrote none, or only a sample, of its requests."""
    import pyarrow.parquet as pq

    path = Path(folder) / "invocations.parquet"
    summary = Path(folder) / "summary.json"
    if not path.is_file():
        raise ScenarioError(
            f"{purpose} needs every request of the run, and it wrote no invocations.parquet "
            "(outputs.requests none?): run it again with --requests all",
            file=str(folder),
        )
    raw = (pq.read_metadata(path).metadata or {}).get(ABOUT_KEY)
    about = json.loads(raw) if raw else {"requests": "all"}
    if about.get("requests") == "sample":
        raise ScenarioError(
            f"{purpose} needs every request of the run, and invocations.parquet holds a sample "
            f"({about['rows_written']:,} of {about['rows_total']:,} requests, outputs.requests "
            f"{about['fraction']:g}): run it again with --requests all",
            file=str(folder if summary.is_file() else path),
        )
    return pd.read_parquet(path)


#: Request-log columns only some runs have: instance_wait_ms with a routing policy that
#: queues requests behind busy instances; parent_request_id and chain_cold with calls.
OPTIONAL_COLUMNS = frozenset({"instance_wait_ms", "parent_request_id", "chain_cold"})


def _categorical(codes: np.ndarray, labels) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(labels))


def invocations_frame(log: EventLog, warmup_s: float) -> pd.DataFrame:
    """Requests by arrival. status: served | throttled (sync, over a limit: never ran) |
    dropped (async, past its max event age); kind: user | warmer. start_s, end_s and
    latency_ms (end - arrival, so it includes init and any async queueing) are NaN unless
    served. counted: arrived in the stats window [warmup_s, duration_s)."""
    return requests_frame(log.invocations, log.functions, warmup_s)


def requests_frame(inv: dict[str, np.ndarray], functions: list[str], warmup_s: float):
    """The engine's request columns (a block of them, or all) as the request log."""
    data = {
        "request_id": inv["request_id"],
        "function": _categorical(inv["function"], functions),
        "kind": _categorical(inv["kind"], categories(Kind)),
        "status": _categorical(inv["status"], categories(Status)),
        "arrival_s": inv["arrival_s"],
        "start_s": inv["start_s"],
        "end_s": inv["end_s"],
        "instance_id": inv["instance_id"],
        "cold": inv["cold"],
        "provisioned": inv["provisioned"],
        "init_ms": inv["init_ms"],
        "duration_ms": inv["duration_ms"],
        "latency_ms": (inv["end_s"] - inv["arrival_s"]) * 1000.0,
        "queue_delay_ms": inv["queue_delay_ms"],
        "memory_wait_ms": inv["memory_wait_ms"],
        **({"instance_wait_ms": inv["instance_wait_ms"]} if "instance_wait_ms" in inv else {}),
        **({c: inv[c] for c in ("parent_request_id", "chain_cold")}
           if "parent_request_id" in inv else {}),
        "attempts": inv["attempts"],
        "counted": inv["arrival_s"] >= warmup_s,
    }
    return pd.DataFrame(data, copy=False)


def instances_frame(log: EventLog) -> pd.DataFrame:
    """One row per instance. end_reason: idle (keep-alive eviction) | lifetime (recycled) |
    deprovisioned (provisioned count lowered) | alive (at the horizon; ended_s is NaN).
    Provisioned and pre-warmed instances are created ahead of need: init runs before ready_s."""
    inst = dict(log.instances)
    inst["function"] = _categorical(inst["function"], log.functions)
    inst["end_reason"] = _categorical(inst["end_reason"], categories(EndReason))
    return pd.DataFrame(inst, copy=False)


def throttles_frame(log: EventLog) -> pd.DataFrame:
    """One row per throttled attempt. reason: reserved (the function's reserved concurrency) |
    account (the unreserved account pool) | scaling (the rate of new instances, or every
    instance full with when_full throttle) | memory. outcome:
    retry (async, retried later) | throttled (sync) | dropped (async, too old to retry)."""
    thr = dict(log.throttles)
    thr["function"] = _categorical(thr["function"], log.functions)
    thr["kind"] = _categorical(thr["kind"], categories(Kind))
    reasons = categories(ThrottleReason)
    if not log.routing_drops:  # (routing's reason only where a routing policy may drop)
        reasons = reasons[: ThrottleReason.ROUTING]
    thr["reason"] = _categorical(thr["reason"], reasons)
    thr["outcome"] = _categorical(thr["outcome"], categories(Outcome))
    return pd.DataFrame(thr, copy=False)


def function_codes(frame: pd.DataFrame) -> np.ndarray:
    return frame["function"].cat.codes.to_numpy()
