"""AWS Lambda's CloudWatch logs, in any format AWS writes them, as one table of invocations.

`read_logs` detects each file's format from its content (plain or gzip-compressed):

- ``text``: one event a line, a timestamp first: ``aws logs tail`` (``--format detailed``:
  timestamp, log stream, message; ``short``: timestamp, message; ``json``: JSON messages
  pretty-printed on the lines below), the console's downloads, S3 export tasks.
- ``filter-log-events``, ``get-log-events``: the JSON those ``aws logs`` commands print, one
  page or several (concatenated, or one a line); ``log-events``: a bare JSON array of events.
- ``subscription``: CloudWatch Logs subscription payloads (``logGroup``, ``logStream``,
  ``logEvents``), one or many, as a subscription delivers them through Firehose to S3.
- ``lambda-json``: Lambda's JSON log format, one record a line, with no envelope.
- ``insights-csv``: a CloudWatch Logs Insights CSV export, of ``@message`` or of the fields
  Insights discovers in REPORT lines (``@requestId``, ``@duration``, ``@memorySize`` ...).

Every message is either a text line (``REPORT RequestId: ...``) or a record of Lambda's JSON
log format (``{"type": "platform.report", ...}``), whatever the envelope.

`Parsed.invocations` has one row per REPORT (one per invocation), sorted by (function, end_s):

- ``function``: from the log group ``/aws/lambda/<name>`` where the format carries it, else the
  ``function`` argument, else the file's stem
- ``stream``: the log stream, i.e. one execution environment ("" when unknown)
- ``end_s``: epoch seconds of the REPORT event (Lambda writes it as the invocation ends)
- ``request_id``
- ``duration_ms``, ``billed_ms``, ``memory_mb``, ``max_memory_mb`` (NaN when not reported)
- ``init_ms``: Init Duration, so a cold start; else NaN
- ``restore_ms``: Restore Duration (SnapStart); else NaN
- ``status``: "success", "timeout" or "error"
- ``init_type``: "on-demand", "provisioned-concurrency", "snap-start" (the JSON log format
  says so in the environment's ``platform.initStart``/``initReport``), else ""
- ``file``: the file it was read from

A REPORT seen twice (same function, stream, request id and time, e.g. a page saved twice) is
kept once. A value beyond Lambda's limits (`LIMITS`: a 900,000 ms invocation, 128-10,240 MB of
memory [sources: aws-timeout, aws-memory-cpu]) makes its REPORT malformed. `Parsed.warnings`
tells, with file:line, of what is counted but doubtful: one request id reported again with
other values or more than 10 ms apart (a copy edited, two exports of different runs, or an
asynchronous retry, which Lambda runs under the same request id), and a text REPORT cut off
mid-line (an Init Duration after the cut would be lost: a cold start read as warm).

`Parsed.runtimes` maps each function to the runtime version its environments started with
(the most common one, e.g. ``python:3.12.v18``), from the line Lambda writes as an environment
starts, in every format above but Insights' REPORT fields
[sources: aws-runtime-version, aws-telemetry-schema]:

- text: ``INIT_START Runtime Version: python:3.13.v14\tRuntime Version ARN:
  arn:aws:lambda:eu-south-1::runtime:7b62...`` (AWS's example), and with SnapStart, as a
  restored environment starts, ``RESTORE_START Runtime Version: java:11.v21\tRuntime Version
  ARN: ...`` (as posted on AWS re:Post);
- Lambda's JSON log format: ``{"type": "platform.initStart", "record": {"initializationType":
  "on-demand", "phase": "init", "runtimeVersion": "nodejs-14.v3", "runtimeVersionArn": "arn"}}``
  (AWS's example; logs write ``nodejs:22.v40``), and ``platform.restoreStart`` records with the
  same ``runtimeVersion`` and ``runtimeVersionArn``.

`runtime_name` turns a runtime version into coldsim's runtime name (``python3.12``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import math
import re
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from ..runtimes import LAMBDA_RUNTIMES

COLUMNS = [
    "function", "stream", "end_s", "request_id", "duration_ms", "billed_ms", "memory_mb",
    "max_memory_mb", "init_ms", "restore_ms", "status", "init_type", "file",
]  # fmt: skip
_TEXT_COLUMNS = ["function", "stream", "request_id", "status", "init_type", "file"]
_NUMBERS = ["duration_ms", "billed_ms", "memory_mb", "max_memory_mb", "init_ms", "restore_ms"]

#: Format names (the values of `Parsed.files`) and what each is.
FORMATS = {
    "text": "text lines each starting with a timestamp (aws logs tail, console download)",
    "filter-log-events": "the JSON of aws logs filter-log-events",
    "get-log-events": "the JSON of aws logs get-log-events",
    "log-events": "a JSON array of log events",
    "subscription": "CloudWatch Logs subscription payloads (Firehose)",
    "lambda-json": "Lambda's JSON log format, one record a line",
    "insights-csv": "a CloudWatch Logs Insights CSV export",
}
ACCEPTED = "accepted: " + "; ".join(FORMATS.values())
MAX_EXAMPLES = 5

_SNIFF_BYTES = 1 << 16
_CSV_ROWS = 200_000
_MAX_BLOCK_LINES = 10_000  # a pretty-printed JSON message longer than this is not Lambda's
#: A "Task timed out" line and its REPORT are written together; an async retry of the same
#: request comes a minute or more later and must keep its own status.
_TIMEOUT_WINDOW_S = 30.0
# In seconds: subtracting a nanosecond epoch would overflow for years outside 1677-2262.
_EPOCH = pd.Timestamp(0, tz="UTC").as_unit("s")

_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d\S*)(?:[ \t]+|$)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # aws logs tail --color on
_REQUEST = re.compile(r"REPORT RequestId:[ \t]*([^\s:]+)(?=\s|$)")
# Longest names first: "Duration" also ends "Billed Duration" and "Init Duration".
_FIELD = re.compile(
    r"(Billed Restore Duration|Restore Duration|Billed Duration|Init Duration|Max Memory Used"
    r"|Memory Size|Duration|Status):[ \t]*(\S+)(?:[ \t]+(ms|MB)\b)?"
)
_TEXT_FIELDS = [  # name, unit, required; the order of the numeric columns
    ("Duration", "ms", True), ("Billed Duration", "ms", True), ("Memory Size", "MB", True),
    ("Max Memory Used", "MB", False), ("Init Duration", "ms", False),
    ("Restore Duration", "ms", False),
]  # fmt: skip
_JSON_METRICS = [
    ("durationMs", True), ("billedDurationMs", True), ("memorySizeMB", True),
    ("maxMemoryUsedMB", False), ("initDurationMs", False), ("restoreDurationMs", False),
]  # fmt: skip
_TIMED_OUT = re.compile(r"(\S+)[ \t]+Task timed out after")
_JSON_REPORT = re.compile(r'"type"\s*:\s*"platform\.report"')
_INTERESTING = r"REPORT RequestId|platform\.|Task timed out|INIT_START|RESTORE_START"
_INIT_EVENTS = {"platform.initStart", "platform.initReport"}
_RESTORE_EVENTS = {"platform.restoreStart", "platform.restoreReport"}  # SnapStart, by definition
#: The records that carry the environment's runtimeVersion (initReport and restoreReport don't).
_RUNTIME_EVENTS = {"platform.initStart", "platform.restoreStart"}
#: "INIT_START Runtime Version: python:3.12.v18\tRuntime Version ARN: arn:..." (RESTORE_START
#: with SnapStart), the line Lambda writes as an environment starts.
_START_LINE = re.compile(r"(?:INIT|RESTORE)_START[ \t]+Runtime Version:[ \t]*(?!Runtime\b)(\S+)")
#: A runtime version: "python:3.12.v18", "nodejs:22.v40", "provided:al2023.v95" (the
#: Telemetry API's example writes "nodejs-14.v3").
_VERSION = re.compile(r"([a-z]+)[:-]([0-9a-z][0-9a-z.]*?)\.v\d+")
_INSIGHTS_REQUIRED = ["@requestId", "@duration", "@billedDuration", "@memorySize"]
_INSIGHTS_OPTIONAL = ["@maxMemoryUsed", "@initDuration"]
_INSIGHTS_META = ["@timestamp", "@logStream", "@log", "@type", "@message"]
#: What follows the last field of a complete REPORT line: nothing, or whole "Name: value"
#: pairs (X-Ray's "XRAY TraceId: 1-... SegmentId: ... Sampled: true", "Error Type: ...").
_TRAILER = re.compile(r"(?:[A-Za-z][A-Za-z ]*:[ \t]*\S+[ \t]*)*")
#: column -> (least, most) Lambda allows: an invocation runs at most 15 minutes, and an init
#: (with provisioned concurrency or SnapStart) as long; Billed Duration adds the init to the
#: invocation since August 2025; memory is 128-10,240 MB
#: [sources: aws-timeout, aws-memory-cpu, aws-init-billing].
LIMITS = {
    "duration_ms": (0.0, 900_000.0), "billed_ms": (0.0, 1_800_000.0),
    "memory_mb": (128.0, 10_240.0), "max_memory_mb": (0.0, 10_240.0),
    "init_ms": (0.0, 900_000.0), "restore_ms": (0.0, 900_000.0),
}  # fmt: skip
#: Two reports of one request id closer than this (and with the same values) are one REPORT
#: read twice (one export in several formats, whose timestamps differ by their rounding).
SAME_REPORT_S = 0.01


@dataclass(frozen=True)
class Parsed:
    """What `read_logs` found."""

    invocations: pd.DataFrame  # one row per REPORT: COLUMNS, sorted by (function, end_s)
    malformed: int  # REPORTs (and unreadable rows) that could not be read
    examples: list[str]  # "file:line: what is wrong", for the first few of them
    files: dict[str, str]  # each file read -> its format (a FORMATS key, or "empty")
    #: function -> the runtime version its environments started with (the most common one;
    #: the first seen of equally common ones), e.g. "python:3.12.v18"; only those seen
    runtimes: dict[str, str] = field(default_factory=dict)
    #: what is counted but doubtful, each with a few "file:line: ..." examples
    warnings: list[str] = field(default_factory=list)


def runtime_name(version: str | None) -> str | None:
    """The runtime identifier (a `LAMBDA_RUNTIMES` key) of one of Lambda's runtime versions:
    "python:3.12.v18" -> "python3.12", "nodejs:20.v40" -> "nodejs20.x", "java:21.v20" ->
    "java21", "dotnet:8.v31" -> "dotnet8", "ruby:3.3.v12" -> "ruby3.3", "provided:al2023.v95"
    -> "provided.al2023". None for one Lambda no longer supports (python:3.9, nodejs:18 ...)
    or that is not a runtime version."""
    m = _VERSION.fullmatch((version or "").strip().lower())
    if m is None:
        return None
    family, release = m.groups()
    if family == "nodejs":
        name = f"nodejs{release.split('.')[0]}.x"  # the runtime is per major version
    elif family == "provided":
        name = f"provided.{release}"
    else:
        name = family + release
    return name if name in LAMBDA_RUNTIMES else None


def read_logs(paths: Sequence[str | Path] | str | Path, function: str | None = None) -> Parsed:
    """Every REPORT in `paths` (files, or folders read recursively in name order; hidden files
    skipped). `function` names the function where the format carries no log group (by default
    the file's stem). Bad input raises ScenarioError naming the file; a REPORT that cannot be
    read is counted in `malformed` instead."""
    if isinstance(paths, str | Path):
        paths = [paths]
    sink = _Sink()
    formats: dict[str, str] = {}
    for path in _expand(paths):
        formats[str(path)] = _read_file(sink, path, function)
    table = _table(sink)
    if table.empty:
        raise _nothing_found(formats, sink)
    warnings = sink.repeated
    if sink.cut:
        warnings.append(
            f"{sink.cut:,} REPORT line(s) cut off mid-line, read as far as they go (an Init "
            "Duration after the cut would be lost: a cold start read as warm), e.g. "
            + "; ".join(sink.cut_examples)
        )
    table = table.drop(columns=["where"])
    return Parsed(table, sink.malformed, sink.examples, formats, _runtimes(sink.runtimes),
                  warnings)  # fmt: skip


def _runtimes(seen: dict[str, Counter]) -> dict[str, str]:
    return {f: counts.most_common(1)[0][0] for f, counts in sorted(seen.items())}


class _Bad(Exception):
    """A REPORT that cannot be read; the message says why."""


class _Sink:
    """What the readers find, across files: joined into one table at the end."""

    def __init__(self) -> None:
        # Column-wise, numbers packed: a 1 GB log holds over a million REPORTs.
        self.functions: list[str] = []
        self.streams: list[str] = []
        self.request_ids: list[str] = []
        self.statuses: list[str] = []
        self.files: list[str] = []  # where each REPORT was read: file and line (or event)
        self.wheres: list[object] = []
        self.cut = 0  # text REPORTs cut off mid-line
        self.cut_examples: list[str] = []
        self.repeated: list[str] = []  # the warning on request ids reported more than once
        self.numbers = array("d")  # end_s, then _NUMBERS, per row
        self._names: dict[str, str] = {}  # one copy of each function and stream name
        self.frames: list[pd.DataFrame] = []  # Insights fields, read a chunk at a time
        self.inits: list[tuple[str, str, float, str]] = []  # function, stream, time_s, type
        self.timeouts: list[tuple[str, str, float]] = []  # function, request_id, time_s
        self.runtimes: dict[str, Counter] = {}  # function -> runtime version -> environments
        self.malformed = 0
        self.examples: list[str] = []

    def report(
        self, function: str, stream: str, end_s: float, request_id: str, values: list[float],
        status: str, path: Path, where: object,
    ) -> None:  # fmt: skip
        self.files.append(self._names.setdefault(str(path), str(path)))
        self.wheres.append(where)
        self.functions.append(self._names.setdefault(function, function))
        self.streams.append(self._names.setdefault(stream, stream))
        self.request_ids.append(request_id)
        self.statuses.append(status)
        self.numbers.append(end_s)
        self.numbers.extend(values)

    def runtime(self, function: str, version: Any) -> None:
        """An environment of `function` started with runtime `version` (if a string)."""
        if isinstance(version, str) and version.strip():
            self.runtimes.setdefault(function, Counter())[version.strip()] += 1

    def truncated(self, path: Path, where: object, what: str) -> None:
        self.cut += 1
        if len(self.cut_examples) < MAX_EXAMPLES:
            self.cut_examples.append(f"{path}:{where}: {what}")

    def bad(self, path: Path, where: object, what: str) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{path}:{where}: {what}")


@dataclass
class _File:
    path: Path
    gz: bool
    stem: str  # the file's stem (less .gz): names get-log-events pages' stream
    function: str  # where the format names no log group
    kind: str | None = None  # the JSON container first seen


# --- files ---------------------------------------------------------------------------------


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
            )
            if not found:
                raise ScenarioError("the folder holds no log files", file=str(path))
            out += found
        elif path.is_file():
            out.append(path)
        else:
            problem = "not a regular file" if path.exists() else "file not found"
            raise ScenarioError(problem, file=str(path))
    if not out:
        raise ScenarioError("no log files given")
    return out


def _read_file(sink: _Sink, path: Path, function: str | None) -> str:
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
    except OSError as err:
        raise ScenarioError(f"cannot read the file: {err.strerror}", file=str(path)) from None
    stem = Path(path.name.removesuffix(".gz")).stem or path.name
    f = _File(path, gz, stem, function or stem)
    kind = _sniff(f)
    if kind == "insights-csv":
        _read_insights(sink, f)
    elif kind == "json":
        _read_json(sink, f)
        if f.kind is None:
            raise ScenarioError(f"JSON without CloudWatch log events ({ACCEPTED})", file=str(path))
        kind = f.kind
    elif kind == "text":
        _read_text(sink, f)
    return kind


def _open_text(f: _File):
    # utf-8-sig: editors and the console's CSV downloads may start files with a BOM.
    if f.gz:
        return gzip.open(f.path, "rt", encoding="utf-8-sig")
    return open(f.path, encoding="utf-8-sig")


def _unreadable(f: _File, err: Exception, line: int | None = None) -> ScenarioError:
    near = f" (near line {line})" if line else ""
    if isinstance(err, UnicodeDecodeError):
        return ScenarioError(f"not UTF-8 text{near}", file=str(f.path))
    if isinstance(err, EOFError | zlib.error | gzip.BadGzipFile):
        return ScenarioError(f"a damaged or truncated gzip file{near}", file=str(f.path))
    return ScenarioError(f"cannot read the file{near}: {err}", file=str(f.path))


_READ_ERRORS = (UnicodeDecodeError, OSError, EOFError, zlib.error)


def _sniff(f: _File) -> str:
    """The format family from the first 64 KB: empty, json, insights-csv or text."""
    try:
        with gzip.open(f.path, "rb") if f.gz else open(f.path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except _READ_ERRORS as err:
        raise _unreadable(f, err) from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ScenarioError(
            "UTF-16 text: save it as UTF-8 (in PowerShell: `| Out-File -Encoding utf8`)",
            file=str(f.path),
        )
    if b"\0" in head:
        raise ScenarioError(f"a binary file, not a log ({ACCEPTED})", file=str(f.path))
    try:  # not final: the 64 KB may end inside a character
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as err:
        raise ScenarioError(f"not UTF-8 text (byte {err.start})", file=str(f.path)) from None
    text = text.lstrip("\ufeff \t\r\n")
    if not text:
        return "empty"
    if text[0] in "{[":
        return "json"
    lines = text.splitlines()
    header = {c.strip() for c in next(csv.reader(lines[:1]), [])}
    if header & {"@timestamp", "@message", "@requestId"}:
        return "insights-csv"
    if any(_STAMP.match(_ANSI.sub("", line)) or "RequestId:" in line for line in lines):
        return "text"
    raise ScenarioError(f"not a CloudWatch log of a known format ({ACCEPTED})", file=str(f.path))


def _nothing_found(formats: dict[str, str], sink: _Sink) -> ScenarioError:
    names = [f"{p} ({k})" for p, k in formats.items()]
    listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    message = f"no REPORT line (one per invocation) in {listed}"
    if sink.malformed:
        message += f"; {sink.malformed} could not be read, e.g. " + "; ".join(sink.examples[:3])
    return ScenarioError(message)


# --- messages: text REPORT lines and JSON log format records --------------------------------


def _message(
    sink: _Sink, msg: str, time_s: float | None, function: str, stream: str, path: Path,
    where: object,
) -> None:  # fmt: skip
    """One log event's message; anything but a REPORT, init, restore or timeout is skipped."""
    text = msg.strip()
    if text.startswith("{"):
        if "platform." in text or "Task timed out" in text:
            try:
                record = json.loads(text)
            except (ValueError, RecursionError):
                if _JSON_REPORT.search(text):
                    sink.bad(path, where, "a platform.report record that is not valid JSON")
                return
            if isinstance(record, dict):
                _record(sink, record, time_s, function, stream, path, where)
        return
    if "REPORT RequestId" in text:
        try:
            if time_s is None:
                raise _Bad("the event has no valid timestamp")
            request_id, values, status, cut = _text_report(text)
        except _Bad as err:
            sink.bad(path, where, str(err))
            return
        if cut:
            sink.truncated(path, where, cut)
        sink.report(function, stream, time_s, request_id, values, status, path, where)
    elif text.startswith(("INIT_START", "RESTORE_START")):
        m = _START_LINE.match(text)  # never a malformed REPORT: a line without one says nothing
        if m:
            sink.runtime(function, m.group(1))
    elif "Task timed out" in text and time_s is not None:
        m = _TIMED_OUT.search(text)  # "<time> <request id> Task timed out after 3.00 seconds"
        if m:
            sink.timeouts.append((function, m.group(1), time_s))


def _text_report(msg: str) -> tuple[str, list[float], str, str]:
    """(request id, numeric columns, status, what was cut off: "" unless the line ends
    mid-field) of a REPORT message."""
    m = _REQUEST.match(msg)
    if m is None:
        if msg.startswith("REPORT RequestId"):
            raise _Bad("REPORT without a request id")
        raise _Bad("text before REPORT RequestId (expected it to start the message)")
    found: dict[str, tuple[str, str]] = {}
    end = m.end()
    for field_m in _FIELD.finditer(msg, m.end()):
        found.setdefault(field_m.group(1), (field_m.group(2), field_m.group(3) or ""))
        end = field_m.end()
    values = []
    for (name, unit, required), column in zip(_TEXT_FIELDS, _NUMBERS, strict=True):
        if name not in found:
            if required:
                raise _Bad(f"REPORT {m.group(1)} has no {name}")
            values.append(math.nan)
            continue
        raw, got = found[name]
        if got != unit:
            raise _Bad(f"REPORT {m.group(1)}: {name} {raw!r} is not followed by {unit}")
        values.append(_number(raw, name, column))
    rest = msg[end:].strip()
    cut = ""
    if rest and not _TRAILER.fullmatch(rest):
        cut = f"REPORT {m.group(1)} ends in {rest[-40:]!r}, cut off mid-field"
    return m.group(1), values, _status(found.get("Status", ("success",))[0]), cut


def _record(
    sink: _Sink, rec: dict, time_s: float | None, function: str, stream: str, path: Path,
    where: object,
) -> None:  # fmt: skip
    """A record of Lambda's JSON log format (or an application's JSON log line)."""
    kind, body = rec.get("type"), rec.get("record")
    if kind == "platform.report":
        try:
            end_s = time_s if time_s is not None else _iso_seconds(rec.get("time"))
            request_id, values, status = _json_report(body)
        except _Bad as err:
            sink.bad(path, where, str(err))
            return
        sink.report(function, stream, end_s, request_id, values, status, path, where)
    elif kind in _INIT_EVENTS or kind in _RESTORE_EVENTS:
        if kind in _RUNTIME_EVENTS and isinstance(body, dict):
            sink.runtime(function, body.get("runtimeVersion"))
        init = body.get("initializationType") if isinstance(body, dict) else None
        if kind in _RESTORE_EVENTS:
            init = "snap-start"
        try:
            t = time_s if time_s is not None else _iso_seconds(rec.get("time"))
        except _Bad:
            return
        if isinstance(init, str) and init:
            sink.inits.append((function, stream, t, init))
    elif "Task timed out" in str(rec.get("message")) and isinstance(rec.get("requestId"), str):
        try:
            t = time_s if time_s is not None else _iso_seconds(rec.get("timestamp"))
        except _Bad:
            return
        sink.timeouts.append((function, rec["requestId"], t))


def _json_report(body: Any) -> tuple[str, list[float], str]:
    if not isinstance(body, dict):
        raise _Bad("platform.report without a record")
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        raise _Bad("platform.report without a requestId")
    metrics = body.get("metrics")
    if not isinstance(metrics, dict):
        raise _Bad(f"platform.report {request_id} has no metrics")
    values = []
    for (name, required), column in zip(_JSON_METRICS, _NUMBERS, strict=True):
        if metrics.get(name) is None:
            if required:
                raise _Bad(f"platform.report {request_id} has no {name}")
            values.append(math.nan)
        else:
            values.append(_number(metrics[name], name, column))
    return request_id, values, _status(body.get("status", "success"))


def _number(raw: Any, name: str, column: str, value: float | None = None) -> float:
    """`raw` as a number within Lambda's `LIMITS` of `column` (`value`: what it stands for,
    when not raw itself: Insights' memory in bytes)."""
    try:
        if isinstance(raw, bool):
            raise ValueError
        x = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise _Bad(f"{name} {raw!r} is not a number") from None
    if not (math.isfinite(x) and x >= 0):
        raise _Bad(f"{name} {raw!r} is not a finite number >= 0")
    x = x if value is None else value
    low, high = LIMITS[column]
    if not low <= x <= high:
        unit = "MB" if column.endswith("_mb") else "ms"
        raise _Bad(f"{name} {raw!r} is outside Lambda's limits ({low:,.0f}-{high:,.0f} {unit})")
    return x


def _status(raw: Any) -> str:
    # Lambda writes "timeout", "error" and, in the JSON format, "failure" (an error too).
    status = str(raw).strip().lower()
    return status if status in ("success", "timeout") else "error"


def _iso_seconds(raw: Any) -> float:
    """Epoch seconds of an ISO 8601 time; one without a zone is UTC (as aws logs tail prints)."""
    if isinstance(raw, str):
        try:
            t = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    raise _Bad(f"timestamp {raw!r} is not ISO 8601")


def _function(group: Any, default: str) -> str:
    """The function a log group belongs to: /aws/lambda/<name>; another group is its own name."""
    if not isinstance(group, str) or not group.strip():
        return default
    name = group.strip().rsplit(":", 1)[-1]  # Insights' @log is "<account>:<group>"
    return name.removeprefix("/aws/lambda/") or default


# --- text ----------------------------------------------------------------------------------


def _read_text(sink: _Sink, f: _File) -> None:
    """Streams the file a line at a time. A line without a timestamp continues the event
    above: `aws logs tail --format json` prints a JSON message on the lines below its stamp."""
    block: tuple[int, str, str, list[str]] | None = None  # line, stamp, stream, JSON lines
    lineno = 0
    try:
        with _open_text(f) as lines:
            for lineno, line in enumerate(lines, 1):
                if "\x1b" in line:
                    line = _ANSI.sub("", line)
                m = _STAMP.match(line)
                if m is None:
                    if "REPORT RequestId" in line or (block is None and "platform.report" in line):
                        sink.bad(f.path, lineno, _NO_STAMP)
                    elif block is not None and len(block[3]) < _MAX_BLOCK_LINES:
                        block[3].append(line)
                    continue
                if block is not None:
                    _flush(sink, f, block)
                    block = None
                rest = line[m.end() :].strip()
                if not rest or not any(c in rest for c in " \t"):
                    block = (lineno, m.group(1), rest, [])  # maybe a JSON message below
                elif (
                    "REPORT RequestId" in rest or "platform." in rest or "Task timed out" in rest
                    or "_START Runtime Version" in rest
                ):  # fmt: skip
                    _text_event(sink, f, lineno, m.group(1), rest)
            if block is not None:
                _flush(sink, f, block)
    except _READ_ERRORS as err:
        raise _unreadable(f, err, lineno + 1) from None


_NO_STAMP = (
    "REPORT without a timestamp: the text format needs one at the start of each line"
    " (`aws logs tail <group> --format detailed` writes it)"
)


def _text_event(sink: _Sink, f: _File, lineno: int, stamp: str, rest: str) -> None:
    try:
        time_s = _iso_seconds(stamp)
    except _Bad as err:
        if "REPORT RequestId" in rest or _JSON_REPORT.search(rest):
            sink.bad(f.path, lineno, str(err))
        return
    # --format short, console download: no stream
    if rest.startswith(("REPORT", "{", "INIT_START", "RESTORE_START")):
        stream, msg = "", rest
    else:  # --format detailed: the stream, then the message
        stream, msg = rest.split(None, 1)
    _message(sink, msg, time_s, f.function, stream, f.path, lineno)


def _flush(sink: _Sink, f: _File, block: tuple[int, str, str, list[str]]) -> None:
    lineno, stamp, stream, lines = block
    text = "".join(lines).strip()
    if not text.startswith("{") or "platform." not in text:
        return
    try:
        time_s = _iso_seconds(stamp)
    except _Bad as err:
        if _JSON_REPORT.search(text):
            sink.bad(f.path, lineno, str(err))
        return
    _message(sink, text, time_s, f.function, stream, f.path, lineno)


# --- JSON ----------------------------------------------------------------------------------

_WS = re.compile(r"\s*")


def _values(text: str) -> Iterator[tuple[int, Any]]:
    """(offset, value) of each JSON value in `text`: one, or several concatenated."""
    decoder, pos = json.JSONDecoder(), 0
    while True:
        pos = _WS.match(text, pos).end()
        if pos == len(text):
            return
        value, end = decoder.raw_decode(text, pos)
        yield pos, value
        pos = end


def _read_json(sink: _Sink, f: _File) -> None:
    """One JSON value (or several) a line is streamed; otherwise (pretty-printed pages) the
    whole file is decoded at once, as the json module needs."""
    lineno, streamed = 0, True
    try:
        with _open_text(f) as lines:
            seen = False
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    values = [v for _, v in _values(line)]
                except (json.JSONDecodeError, RecursionError) as err:
                    if not seen:  # the first value spans lines
                        streamed = False
                        break
                    problem = getattr(err, "msg", "nested too deeply")
                    sink.bad(f.path, lineno, f"not JSON ({problem})")
                    continue
                seen = True
                for value in values:
                    _value(sink, f, value, lineno)
        if streamed:
            return
        with _open_text(f) as fh:
            text = fh.read()
    except _READ_ERRORS as err:
        raise _unreadable(f, err, lineno + 1) from None
    line, last = 1, 0
    try:
        for pos, value in _values(text):
            line += text.count("\n", last, pos)
            last = pos
            _value(sink, f, value, line)
    except json.JSONDecodeError as err:
        raise ScenarioError(
            f"line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})", file=str(f.path)
        ) from None
    except RecursionError:
        raise ScenarioError(f"JSON nested too deeply, near line {line}", file=str(f.path)) from None


def _value(sink: _Sink, f: _File, value: Any, line: int, where: str = "") -> None:
    """A decoded JSON value: a page of events, a subscription payload, an event, a JSON log
    format record, or a list of any of these."""
    at = f"{line}{where}"
    if isinstance(value, list):
        for i, item in enumerate(value, 1):
            if isinstance(item, dict) and _CONTAINER_KEYS & item.keys():
                _value(sink, f, item, line, f"{where}, item {i}")
            else:
                f.kind = f.kind or "log-events"
                _event(sink, f, item, None, f.stem, f"{at}, event {i}")
        return
    if not isinstance(value, dict):
        return
    if "type" in value and "record" in value:
        f.kind = f.kind or "lambda-json"
        _record(sink, value, None, f.function, "", f.path, at)
    elif "logEvents" in value:
        f.kind = f.kind or "subscription"
        group, stream = value.get("logGroup"), str(value.get("logStream") or "")
        _events(sink, f, value["logEvents"], group, stream, at)
    elif "events" in value:
        events = value["events"]
        first = events[0] if isinstance(events, list) and events else {}
        named = isinstance(first, dict) and "logStreamName" in first
        kind = "filter-log-events" if named or "searchedLogStreams" in value else "get-log-events"
        f.kind = f.kind or kind
        _events(sink, f, events, None, f.stem, at)
    elif _is_event(value):
        f.kind = f.kind or "log-events"
        _event(sink, f, value, None, f.stem, at)
    else:  # an application's JSON log line (with the JSON log format): a timeout, or nothing
        _record(sink, value, None, f.function, "", f.path, at)


_CONTAINER_KEYS = {"logEvents", "events", "record"}
_EVENT_KEYS = {"logStreamName", "ingestionTime", "eventId"}


def _is_event(value: dict) -> bool:
    # CloudWatch events carry a message and epoch milliseconds (and usually more of their
    # keys); application JSON log lines carry a message too, but an ISO timestamp.
    return "message" in value and (
        isinstance(value.get("timestamp"), int | float) or bool(_EVENT_KEYS & value.keys())
    )


def _events(sink: _Sink, f: _File, events: Any, group: Any, stream: str, at: str) -> None:
    if not isinstance(events, list):
        sink.bad(f.path, at, "the events are not a JSON array")
        return
    for i, event in enumerate(events, 1):
        _event(sink, f, event, group, stream, f"{at}, event {i}")


def _event(sink: _Sink, f: _File, event: Any, group: Any, stream: str, where: str) -> None:
    if not isinstance(event, dict) or not isinstance(event.get("message"), str):
        sink.bad(f.path, where, "a log event without a message")
        return
    function = _function(event.get("logGroupName", group), f.function)
    stream = str(event.get("logStreamName") or stream)
    time_s = _epoch_ms(event.get("timestamp"))
    _message(sink, event["message"], time_s, function, stream, f.path, where)


def _epoch_ms(ms: Any) -> float | None:
    """Seconds of a CloudWatch event's epoch milliseconds; None unless a finite number."""
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return None
    try:
        return ms / 1000 if math.isfinite(ms) else None
    except OverflowError:  # an integer too large for a float
        return None


# --- Logs Insights CSV ---------------------------------------------------------------------


def _read_insights(sink: _Sink, f: _File) -> None:
    options: dict[str, Any] = {"encoding": "utf-8-sig", "compression": "gzip" if f.gz else None}
    row = 0
    try:
        columns = [str(c).strip() for c in pd.read_csv(f.path, nrows=0, **options).columns]
        if "@timestamp" not in columns:
            raise ScenarioError(
                f"a Logs Insights CSV needs @timestamp (the file has: {', '.join(columns)})",
                file=str(f.path),
            )
        by_message = "@message" in columns
        missing = [c for c in _INSIGHTS_REQUIRED if c not in columns]
        if not by_message and missing:
            raise ScenarioError(
                "a Logs Insights CSV needs @message, or the REPORT fields "
                f"{', '.join(_INSIGHTS_REQUIRED)} (missing: {', '.join(missing)})",
                file=str(f.path),
            )
        wanted = _INSIGHTS_META + ([] if by_message else _INSIGHTS_REQUIRED + _INSIGHTS_OPTIONAL)
        reader = pd.read_csv(
            f.path, dtype=str, keep_default_na=False, chunksize=_CSV_ROWS,
            usecols=lambda c: str(c).strip() in wanted, **options,
        )  # fmt: skip
        with reader:
            for chunk in reader:
                chunk.columns = [str(c).strip() for c in chunk.columns]
                read = _insights_messages if by_message else _insights_fields
                read(sink, f, chunk, row + 1)
                row += len(chunk)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ScenarioError(f"malformed CSV after row {row}: {err}", file=str(f.path)) from None
    except _READ_ERRORS as err:
        raise _unreadable(f, err) from None


def _insights_seconds(chunk: pd.DataFrame) -> np.ndarray:
    """Epoch seconds of @timestamp ("2024-05-01 12:00:00.123", UTC); NaN where unreadable."""
    t = pd.to_datetime(chunk["@timestamp"], format="ISO8601", utc=True, errors="coerce")
    return ((t - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)


def _insights_functions(chunk: pd.DataFrame, default: str) -> np.ndarray:
    if "@log" not in chunk:
        return np.full(len(chunk), default, dtype=object)
    return chunk["@log"].map(lambda g: _function(g, default)).to_numpy(dtype=object)


def _insights_messages(sink: _Sink, f: _File, chunk: pd.DataFrame, first_row: int) -> None:
    hit = chunk["@message"].str.contains(_INTERESTING, regex=True).to_numpy(dtype=bool)
    if not hit.any():
        return
    chunk, rows = chunk[hit], first_row + np.flatnonzero(hit)
    times = _insights_seconds(chunk)
    functions = _insights_functions(chunk, f.function)
    streams = chunk["@logStream"].to_numpy() if "@logStream" in chunk else [""] * len(chunk)
    for i, msg in enumerate(chunk["@message"].to_numpy()):
        t = None if math.isnan(times[i]) else float(times[i])
        _message(sink, msg, t, functions[i], streams[i], f.path, f"row {rows[i]}")


def _insights_fields(sink: _Sink, f: _File, chunk: pd.DataFrame, first_row: int) -> None:
    if "@type" in chunk:
        report = chunk["@type"].str.strip() == "REPORT"
    else:  # a query without @type: the rows with REPORT fields (START/END rows have none)
        numeric = [c for c in _INSIGHTS_REQUIRED[1:] + _INSIGHTS_OPTIONAL if c in chunk]
        report = (chunk[numeric].apply(lambda s: s.str.strip()) != "").any(axis=1)
    report = report.to_numpy(dtype=bool)
    if not report.any():
        return
    chunk, rows = chunk[report], first_row + np.flatnonzero(report)
    times = _insights_seconds(chunk)
    request = chunk["@requestId"].str.strip()
    values, bad = {}, np.isnan(times) | (request == "").to_numpy()
    for c in _INSIGHTS_REQUIRED[1:] + _INSIGHTS_OPTIONAL:
        raw = chunk[c].str.strip() if c in chunk else pd.Series("", index=chunk.index)
        x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if c in _INSIGHTS_MB:
            x = _insights_mb(x)
        low, high = LIMITS[_INSIGHTS_COLUMNS[c]]
        with np.errstate(invalid="ignore"):
            invalid = ~(np.isfinite(x) & (x >= low) & (x <= high))
        bad |= invalid if c in _INSIGHTS_REQUIRED else invalid & (raw != "").to_numpy()
        values[c] = x
    for i in np.flatnonzero(bad)[: MAX_EXAMPLES - len(sink.examples)]:
        sink.examples.append(f"{f.path}:row {rows[i]}: {_insights_problem(chunk.iloc[i])}")
    sink.malformed += int(bad.sum())
    ok = ~bad
    if not ok.any():
        return
    n = int(ok.sum())
    streams = chunk["@logStream"].to_numpy()[ok] if "@logStream" in chunk else np.full(n, "")
    sink.frames.append(
        pd.DataFrame(
            {
                "function": _insights_functions(chunk, f.function)[ok],
                "stream": streams,
                "end_s": times[ok],
                "request_id": request.to_numpy()[ok],
                "duration_ms": values["@duration"][ok],
                "billed_ms": values["@billedDuration"][ok],
                "memory_mb": values["@memorySize"][ok],
                "max_memory_mb": values["@maxMemoryUsed"][ok],
                "init_ms": values["@initDuration"][ok],
                "restore_ms": np.full(n, np.nan),
                "status": np.full(n, "success", dtype=object),
                "init_type": np.full(n, "", dtype=object),
                "file": str(f.path),
                "where": [f"row {r}" for r in rows[ok]],
            }
        )
    )


_INSIGHTS_COLUMNS = {
    "@duration": "duration_ms", "@billedDuration": "billed_ms", "@memorySize": "memory_mb",
    "@maxMemoryUsed": "max_memory_mb", "@initDuration": "init_ms",
}  # fmt: skip
_INSIGHTS_MB = {"@memorySize", "@maxMemoryUsed"}


def _insights_mb(size: np.ndarray) -> np.ndarray:
    """Insights gives @memorySize and @maxMemoryUsed in bytes counted as MB x 10^6 (128 MB is
    128000000, hence AWS's sample queries' `/ 1000 / 1000`); a value that is instead a whole
    number of MiB (x 2^20) is read so. No whole size up to Lambda's 10,240 MB is both."""
    with np.errstate(invalid="ignore"):
        mib = (size % 1_000_000 != 0) & (size % 1_048_576 == 0)
    return np.where(mib, size / 1_048_576, size / 1e6)


def _insights_problem(row: pd.Series) -> str:
    if pd.isna(pd.to_datetime(row["@timestamp"], format="ISO8601", utc=True, errors="coerce")):
        return f"@timestamp {row['@timestamp']!r} is not a date"
    if not row["@requestId"].strip():
        return "no @requestId"
    for c in _INSIGHTS_REQUIRED[1:] + _INSIGHTS_OPTIONAL:
        raw = row.get(c, "").strip()
        if raw or c in _INSIGHTS_REQUIRED:
            try:
                x = _number(raw, c, "duration_ms", 0.0)  # a number at all
                mb = float(_insights_mb(np.array([x]))[0]) if c in _INSIGHTS_MB else None
                _number(raw, c, _INSIGHTS_COLUMNS[c], mb)
            except _Bad as err:
                return str(err)
    return "unreadable REPORT fields"


# --- the table -----------------------------------------------------------------------------


def _table(sink: _Sink) -> pd.DataFrame:
    parts = sink.frames
    if sink.request_ids:
        numbers = np.frombuffer(sink.numbers, dtype=float).reshape(-1, 1 + len(_NUMBERS))
        rows = {"function": sink.functions, "stream": sink.streams, "end_s": numbers[:, 0]}
        rows |= {"request_id": sink.request_ids, "status": sink.statuses, "init_type": ""}
        rows |= {c: numbers[:, 1 + i] for i, c in enumerate(_NUMBERS)}
        rows |= {"file": sink.files, "where": sink.wheres}  # fmt: skip
        parts = [pd.DataFrame(rows)[_WITH_PLACE], *parts]
    if not parts:
        return pd.DataFrame(columns=_WITH_PLACE)
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    table = table.astype({c: (str if c in _TEXT_COLUMNS else float) for c in COLUMNS})
    table["where"] = table["where"].astype(str)
    table = table.drop_duplicates([c for c in COLUMNS if c != "file"], ignore_index=True)
    table, sink.repeated = _duplicates(table)
    _mark_timeouts(table, sink.timeouts)
    _attach_init_types(table, sink.inits)
    return table.sort_values(["function", "end_s"], kind="stable", ignore_index=True)


_WITH_PLACE = [*COLUMNS, "where"]


def _duplicates(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table less the copies of one REPORT read twice (one request id within
    SAME_REPORT_S, the same values to 0.01: one export in several formats, whose timestamps
    and durations are rounded differently), and a warning (with file:line examples) when a
    request id is reported again otherwise."""
    t = table.sort_values(["function", "request_id", "end_s"], kind="stable", ignore_index=True)
    again = (
        (t["function"] == t["function"].shift()) & (t["request_id"] == t["request_id"].shift())
    ).to_numpy()
    if not again.any():
        return table, []
    prev = t.shift()
    same = (t["end_s"] - prev["end_s"]).abs().to_numpy() < SAME_REPORT_S
    for c in _NUMBERS:  # one export in several formats rounds durations differently
        a, b = t[c].to_numpy(), prev[c].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            same &= (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 0.01)
    differ = again & ~same
    t = t[~(again & same)].reset_index(drop=True)
    if not differ.any():
        return t, []
    rows = np.flatnonzero(differ[~(again & same)])
    examples = []
    for i in rows[:MAX_EXAMPLES]:
        r, p = t.iloc[i], t.iloc[i - 1]
        what = (
            "other values"
            if abs(r["end_s"] - p["end_s"]) < SAME_REPORT_S
            else (f"{r['end_s'] - p['end_s']:.3f} s later")
        )
        examples.append(f"{r['file']}:{r['where']} repeats request id {r['request_id']} of "
                        f"{p['file']}:{p['where']} with {what}")  # fmt: skip
    return t, [
        f"{len(rows):,} REPORT(s) repeat an earlier request id with other values or later: "
        "each is counted as an invocation (right for an asynchronous retry, which keeps its "
        "request id; not for a copy edited or logs of two runs), e.g. " + "; ".join(examples)
    ]


def _reports(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return table[[*by, "end_s"]].assign(row=np.arange(len(table))).sort_values("end_s")


def _mark_timeouts(table: pd.DataFrame, timeouts: list[tuple[str, str, float]]) -> None:
    """A "Task timed out" line marks its request's REPORT written about then."""
    if not timeouts:
        return
    by = ["function", "request_id"]
    lines = pd.DataFrame(timeouts, columns=[*by, "time_s"]).astype({c: str for c in by})
    found = pd.merge_asof(
        lines.sort_values("time_s"), _reports(table, by), left_on="time_s", right_on="end_s",
        by=by, direction="nearest", tolerance=_TIMEOUT_WINDOW_S,
    )  # fmt: skip
    rows = found["row"].dropna().astype(int).to_numpy()
    table.loc[rows, "status"] = "timeout"


def _attach_init_types(table: pd.DataFrame, inits: list[tuple[str, str, float, str]]) -> None:
    """Each initStart/initReport names the type of its stream's next REPORT (the cold one);
    when several precede one REPORT, the latest counts."""
    if not inits:
        return
    by = ["function", "stream"]
    events = pd.DataFrame(inits, columns=[*by, "time_s", "type"]).astype({c: str for c in by})
    found = pd.merge_asof(
        events.sort_values("time_s", kind="stable"), _reports(table, by), left_on="time_s",
        right_on="end_s", by=by, direction="forward",
    )  # fmt: skip
    found = found.dropna(subset=["row"]).drop_duplicates("row", keep="last")
    table.loc[found["row"].astype(int).to_numpy(), "init_type"] = found["type"].to_numpy()
