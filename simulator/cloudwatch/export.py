"""A run's invocations as the CloudWatch logs Lambda would have written (`coldsim logs export`).

One log group per function (`/aws/lambda/<name>`), one log stream per instance (an execution
environment: `YYYY/MM/DD/[$LATEST]<32 hex digits>`, dated by its creation), opened as the
environment starts by the line naming its runtime version (`INIT_START Runtime Version:
python:3.12.v1\tRuntime Version ARN: arn:aws:lambda:...`, or with SnapStart `RESTORE_START
...`; in the JSON log format platform.initStart or platform.restoreStart with
`runtimeVersion` [sources: aws-runtime-version, aws-telemetry-schema]), from the
scenario's `runtime` (python3.12 when null), and per
served request the platform lines: START as its handler starts, END and REPORT as it ends (Duration,
Billed Duration, Memory Size, and Init Duration on an on-demand cold start, or with SnapStart
Restore Duration and Billed Restore Duration, which Billed Duration includes). Requests that
never ran (throttled, dropped) write nothing, as on Lambda. coldsim does not model memory use,
so `Max Memory Used` is left out. Times are `epoch_s` plus simulated seconds.

Formats: `text` (as `aws logs tail --format detailed` prints), `filter-log-events` (the JSON of
`aws logs filter-log-events`, one file per function), `insights-csv` (a Logs Insights export
of `@timestamp, @logStream, @log, @message`), `lambda-json` (filter-log-events JSON whose
messages are Lambda's JSON log format records: platform.initStart or platform.restoreStart,
platform.start, platform.report).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..reporting.pricing import pays_init
from ..runtimes import DEFAULT_RUNTIME

FORMATS = ("text", "filter-log-events", "insights-csv", "lambda-json")

#: Simulated time 0 is this moment unless told otherwise: 2026-01-01T00:00:00Z.
EPOCH_S = 1_767_225_600.0


def request_ids(scenario: str, rids: np.ndarray) -> list[str]:
    """Stable UUID-shaped request ids, from the scenario name and request numbers."""
    out = []
    for rid in rids.tolist():
        h = hashlib.sha256(f"{scenario}/{rid}".encode()).hexdigest()
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}")
    return out


def runtime_version(runtime: str | None) -> str:
    """The runtime version Lambda logs for one of coldsim's runtimes (None: python3.12), as
    version 1: "python3.12" -> "python:3.12.v1", "java21" -> "java:21.v1", "nodejs22.x" ->
    "nodejs:22.v1", "provided.al2023" (and go and rust, which run on it) ->
    "provided:al2023.v1". `parse.runtime_name` reads it back."""
    name = runtime or DEFAULT_RUNTIME
    if name in ("go", "rust"):
        name = "provided.al2023"
    if name.startswith("provided."):
        family, release = "provided", name.removeprefix("provided.")
    else:  # python3.12, nodejs22.x, java21, dotnet8, ruby3.3: the family, then its release
        family = name.rstrip("0123456789.x")
        release = name.removeprefix(family).removesuffix(".x")
    return f"{family}:{release}.v1"


def _runtime_arn(version: str) -> str:
    """A stable runtime version ARN (AWS's end in 64 hex digits)."""
    return f"arn:aws:lambda:us-east-1::runtime:{hashlib.sha256(version.encode()).hexdigest()}"


def _stream(iid: int, created_s: float, epoch_s: float, scenario: str) -> str:
    day = datetime.fromtimestamp(epoch_s + created_s, UTC).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{hashlib.md5(f'{scenario}/{iid}'.encode()).hexdigest()}"


def events(
    invocations: pd.DataFrame,
    instances: pd.DataFrame,
    memory_mb: Mapping[str, int],
    scenario: str,
    epoch_s: float = EPOCH_S,
    snapstart_billed_ms: Mapping[str, float] | None = None,
    runtimes: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """One row per served request: function, stream, start and end (epoch s), request id,
    duration_ms, billed_ms, memory_mb, init_ms (NaN unless an on-demand cold start),
    restore_ms and billed_restore_ms (NaN unless a cold start of a function in
    `snapstart_billed_ms`, which gives its Billed Restore Duration), sorted by end; and on
    the first request an environment served, how and when (epoch s) it started: env_start
    ("on-demand", "provisioned-concurrency", or "snap-start" for a function in
    `snapstart_billed_ms`; "" on the other rows) and env_start_s, with the runtime_version
    it logs from `runtimes` (function -> coldsim runtime; python3.12 if absent or None)."""
    served = invocations[invocations["status"].astype(str) == "served"]
    iid = served["instance_id"].to_numpy()
    inst = instances.set_index("instance_id")
    created = inst["created_s"].to_numpy()
    provisioned = inst["provisioned"].to_numpy(dtype=bool)
    ahead = provisioned | inst["prewarmed"].to_numpy(dtype=bool)
    streams = [_stream(i, created[i], epoch_s, scenario) for i in range(len(inst))]
    cold = served["cold"].to_numpy() & ~ahead[iid]  # init on the request's path, reported
    # once per instance: requests that joined a multi-request instance's init only waited
    cold &= pays_init(cold, iid, served["init_ms"].to_numpy())
    duration = served["duration_ms"].to_numpy()
    init = np.where(cold, inst["init_ms"].to_numpy()[iid], np.nan)
    functions = served["function"].astype(str).to_numpy()
    # Billed: the handler, plus the init of on-demand cold starts (since 1 August 2025
    # [sources: aws-init-billing]), in whole ms.
    billed = np.ceil(duration + np.nan_to_num(init))
    # Each environment logs its start (INIT_START, RESTORE_START) once, as it is created.
    order = np.argsort(served["start_s"].to_numpy(), kind="stable")
    first = np.zeros(len(served), dtype=bool)
    first[order[np.unique(iid[order], return_index=True)[1]]] = True
    env_start = np.where(provisioned[iid], "provisioned-concurrency", "on-demand").astype(object)
    env_start[~first] = ""
    restore = np.full(len(served), np.nan)
    billed_restore = np.full(len(served), np.nan)
    for f, billed_ms in (snapstart_billed_ms or {}).items():
        rows = cold & (functions == f)  # a restore, not an init [sources: aws-snapstart]
        restore[rows], init[rows] = init[rows], np.nan
        billed_restore[rows] = math.ceil(billed_ms)
        billed[rows] = np.ceil(duration[rows]) + billed_restore[rows]
        env_start[first & (functions == f)] = "snap-start"
    versions = {f: runtime_version((runtimes or {}).get(f)) for f in set(functions.tolist())}
    out = pd.DataFrame({
        "function": functions,
        "stream": [streams[i] for i in iid],
        "start_s": epoch_s + served["start_s"].to_numpy(),
        "end_s": epoch_s + served["end_s"].to_numpy(),
        "request_id": request_ids(scenario, served["request_id"].to_numpy()),
        "duration_ms": duration,
        "billed_ms": billed,
        "memory_mb": [memory_mb[f] for f in functions],
        "init_ms": init,
        "restore_ms": restore,
        "billed_restore_ms": billed_restore,
        "env_start": env_start,
        "env_start_s": np.where(first, epoch_s + created[iid], np.nan),
        "runtime_version": [versions[f] for f in functions],
    })  # fmt: skip
    return out.sort_values(["end_s", "request_id"], kind="stable").reset_index(drop=True)


def _report(r) -> str:
    text = (
        f"REPORT RequestId: {r.request_id}\tDuration: {r.duration_ms:.2f} ms\t"
        f"Billed Duration: {r.billed_ms:.0f} ms\tMemory Size: {r.memory_mb} MB\t"
    )
    if not math.isnan(r.init_ms):
        text += f"Init Duration: {r.init_ms:.2f} ms\t"
    if not math.isnan(r.restore_ms):
        text += (
            f"Restore Duration: {r.restore_ms:.2f} ms\t"
            f"Billed Restore Duration: {r.billed_restore_ms:.0f} ms\t"
        )
    return text


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def _start_line(r) -> str:
    """INIT_START, or RESTORE_START with SnapStart, as an environment starts: its runtime
    version [sources: aws-runtime-version]."""
    kind = "RESTORE_START" if r.env_start == "snap-start" else "INIT_START"
    version = r.runtime_version
    return f"{kind} Runtime Version: {version}\tRuntime Version ARN: {_runtime_arn(version)}"


def _text_lines(ev: pd.DataFrame) -> list[tuple[float, str, str, str]]:
    """(time, function, stream, message) of INIT_START or RESTORE_START (as an environment
    starts), START, END and REPORT lines, in time order."""
    lines = []
    for r in ev.itertuples(index=False):
        if r.env_start:
            lines.append((r.env_start_s, r.function, r.stream, _start_line(r)))
        lines.append((r.start_s, r.function, r.stream,
                      f"START RequestId: {r.request_id} Version: $LATEST"))  # fmt: skip
        lines.append((r.end_s, r.function, r.stream, f"END RequestId: {r.request_id}"))
        lines.append((r.end_s, r.function, r.stream, _report(r)))
    lines.sort(key=lambda x: x[0])
    return lines


def _json_records(ev: pd.DataFrame) -> list[tuple[float, str, str, str]]:
    """Lambda's JSON log format: initStart (restoreStart with SnapStart) as an environment
    starts, with its runtimeVersion [sources: aws-telemetry-schema]; start, report."""
    lines = []
    for r in ev.itertuples(index=False):
        if r.env_start:
            t, version = r.env_start_s, r.runtime_version
            runtime = {"runtimeVersion": version, "runtimeVersionArn": _runtime_arn(version)}
            if r.env_start == "snap-start":
                kind = "platform.restoreStart"
                record = {**runtime, "functionName": r.function, "functionVersion": "1"}
            else:
                kind = "platform.initStart"
                record = {"initializationType": r.env_start, "phase": "init", **runtime,
                          "functionName": r.function, "functionVersion": "$LATEST"}  # fmt: skip
            message = json.dumps({"time": _iso(t), "type": kind, "record": record})
            lines.append((t, r.function, r.stream, message))
        lines.append(
            (
                r.start_s,
                r.function,
                r.stream,
                json.dumps(
                    {
                        "time": _iso(r.start_s),
                        "type": "platform.start",
                        "record": {"requestId": r.request_id, "version": "$LATEST"},
                    }
                ),
            )
        )
        metrics = {"durationMs": round(r.duration_ms, 3), "billedDurationMs": int(r.billed_ms),
                   "memorySizeMB": int(r.memory_mb)}  # fmt: skip
        if not math.isnan(r.init_ms):
            metrics["initDurationMs"] = round(r.init_ms, 3)
        if not math.isnan(r.restore_ms):
            metrics["restoreDurationMs"] = round(r.restore_ms, 3)
            metrics["billedRestoreDurationMs"] = int(r.billed_restore_ms)
        lines.append(
            (
                r.end_s,
                r.function,
                r.stream,
                json.dumps(
                    {
                        "time": _iso(r.end_s),
                        "type": "platform.report",
                        "record": {
                            "requestId": r.request_id,
                            "metrics": metrics,
                            "status": "success",
                        },
                    }
                ),
            )
        )
    lines.sort(key=lambda x: x[0])
    return lines


def write(ev: pd.DataFrame, out_dir: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the events into out_dir/<format>/: one file per function (`<function>.txt`,
    `<function>.json`: as `aws logs` commands write one log group), and one
    `insights.csv` (its `@log` column names each group). Returns the files written."""
    written = []
    functions = sorted(set(ev["function"]))
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
        folder = out_dir / fmt
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "insights-csv":
            path = folder / "insights.csv"
            rows = [{"@timestamp": datetime.fromtimestamp(t, UTC).strftime(
                         "%Y-%m-%d %H:%M:%S.%f")[:-3],
                     "@logStream": stream, "@log": f"123456789012:/aws/lambda/{f}",
                     "@message": message}
                    for t, f, stream, message in _text_lines(ev)]  # fmt: skip
            columns = ["@timestamp", "@logStream", "@log", "@message"]
            pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
            written.append(path)
            continue
        lines = _json_records(ev) if fmt == "lambda-json" else _text_lines(ev)
        for f in functions:
            mine = [line for line in lines if line[1] == f]
            if fmt == "text":
                path = folder / f"{f}.txt"
                path.write_text("".join(f"{_iso(t)} {s} {m}\n" for t, _, s, m in mine))
            else:
                path = folder / f"{f}.json"
                page = {"events": [
                    {"logStreamName": s, "timestamp": int(round(t * 1000)), "message": m + "\n",
                     "ingestionTime": int(round(t * 1000)) + 500, "eventId": f"{i:056d}"}
                    for i, (t, _, s, m) in enumerate(mine)
                ], "searchedLogStreams": []}  # fmt: skip
                path.write_text(json.dumps(page, indent=1))
            written.append(path)
    return written
