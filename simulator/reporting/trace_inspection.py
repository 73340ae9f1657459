"""What a trace holds: functions, apps, invocations, rates, burstiness, triggers; and the
scenario that replays it. Used by `coldsim trace inspect` and `coldsim trace to-scenario`.

Azure 2019 statistics are computed from the trace's sparse counts (a CSR matrix of the
non-zero cells, traces/azure2019.py) without a dense copy: the IAT CVs from each function's
busy minutes, the timeline from the per-minute sums.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import ScenarioError
from ..runtimes import DEFAULT_RUNTIME, init_preset
from ..scenario.presets import PRESETS
from ..workload.traces import azure2019, azure2021, usercsv
from ..workload.traces.common import header
from .plots import time_bins

FORMATS = ("azure2019", "azure2021", "csv")

#: Handler time given to replayed functions the trace says nothing about: lognormal median
#: 100 ms, sigma 0.8 (an assumption [sources: shilkov-cold-penalty]).
DEFAULT_DURATION = {"dist": "lognormal", "median_ms": 100.0, "sigma": 0.8}


def detect_format(path: Path) -> str:
    """azure2019 for a folder or a file with HashFunction and minute columns; azure2021 for
    app,func,end_timestamp,duration; csv for a timestamp_s column."""
    if path.is_dir():
        return "azure2019"
    if not path.exists():
        raise ScenarioError("file not found", file=str(path))
    if not path.is_file():
        raise ScenarioError(
            "not a regular file: give a CSV file, or an Azure 2019 folder", file=str(path)
        )
    columns = set(header(path))
    if {"HashFunction", "Trigger"} <= columns:
        return "azure2019"
    if set(azure2021.COLUMNS) <= columns:
        return "azure2021"
    if "timestamp_s" in columns:
        return "csv"
    raise ScenarioError(
        "unknown trace format (need Azure 2019 or 2021 columns, or timestamp_s): give --format",
        file=str(path),
    )


YEAR_S = 365.25 * 86400
#: The longest trace span replayed (the schema's limit on duration_s).
MAX_SPAN_S = 10 * YEAR_S


def load(path: Path, fmt: str) -> dict[str, Any]:
    """Per function: name (hash), app, trigger, arrival times (s) and the trace's span (s).
    (For azure2019 that is every request's time at once: summary and scenario_for work from
    the per-minute counts instead.)"""
    if fmt == "azure2019":
        files = azure2019.files_for(path)
        inv = azure2019.read_invocations(files["invocations"])
        rows = range(inv.shape[0])
        times = [azure2019.spread(inv.row_counts(i), "equidistant", None) for i in rows]
        return {
            "functions": inv.functions.tolist(),
            "apps": inv.apps.tolist(),
            "triggers": inv.triggers.tolist(),
            "arrivals": times,
            "span_s": 60.0 * inv.shape[1],
        }
    if fmt == "azure2021":
        data = azure2021.read(path)
        arrivals, apps, names = data.arrival_s, data.apps.tolist(), data.functions.tolist()
    else:
        log = usercsv.read(path)
        arrivals, names = log.arrival_s, log.functions
        apps = [""] * len(names)
    every = np.concatenate(arrivals) if arrivals else np.empty(0)
    if len(every) and every.min() < 0:
        raise ScenarioError(
            f"an arrival at {every.min():g} s: before the trace's start (end < duration?)",
            file=str(path),
        )
    if len(every) and every.max() > MAX_SPAN_S:
        raise ScenarioError(
            f"an arrival at {every.max():.4g} s, {every.max() / YEAR_S:,.0f} years after the "
            f"trace's start; at most {MAX_SPAN_S / YEAR_S:.0f} years are replayed. Times must "
            "be seconds from the start of the trace (not milliseconds, not epoch seconds)",
            file=str(path),
        )
    # Whole minutes, covering the last arrival even when it falls on a minute boundary.
    span = float((math.floor(every.max() / 60) + 1) * 60) if len(every) else 60.0
    return {"functions": names, "apps": apps, "triggers": None, "arrivals": arrivals,
            "span_s": span}  # fmt: skip


def summary(path: Path, fmt: str) -> dict[str, Any]:
    if fmt == "azure2019":  # from the counts: no arrival times
        inv = azure2019.read_invocations(azure2019.files_for(path)["invocations"])
        data = {"apps": inv.apps.tolist(), "triggers": inv.triggers.tolist(),
                "span_s": 60.0 * inv.shape[1]}  # fmt: skip
        counts = inv.totals()
        cvs = equidistant_cvs(inv.counts)
        timeline = _minute_timeline(inv.counts, data["span_s"])
    else:
        data = load(path, fmt)
        counts = np.array([len(t) for t in data["arrivals"]])
        cvs = []
        for t in data["arrivals"]:
            if len(t) >= 3:
                gaps = np.diff(t)
                if gaps.mean() > 0:
                    cvs.append(gaps.std() / gaps.mean())
        cvs = np.array(cvs)
        timeline = _timeline(data["arrivals"], data["span_s"])
    hours = data["span_s"] / 3600
    out: dict[str, Any] = {
        "format": fmt,
        "path": str(path),
        "functions": len(counts),
        "apps": len(set(zip(data["apps"], strict=True))),
        "invocations": int(counts.sum()),
        "span_s": data["span_s"],
        "mean_rate_per_s": float(counts.sum() / data["span_s"]),
        "share_at_most_once_per_hour": float(np.mean(counts <= hours)) if len(counts) else None,
        "iat_cv": {
            "functions": len(cvs),
            **{
                f"p{q}": float(np.percentile(cvs, q)) if len(cvs) else None
                for q in (10, 25, 50, 75, 90)
            },
            "share_above_1": float(np.mean(cvs > 1)) if len(cvs) else None,
        },
        "iat_note": "azure2019 arrivals placed equidistantly within each minute for the IAT CV"
        if fmt == "azure2019"
        else "exact",
    }
    if data["triggers"] is not None:
        trig = pd.DataFrame({"trigger": data["triggers"], "invocations": counts})
        mix = trig.groupby("trigger")["invocations"].agg(["size", "sum"])
        out["triggers"] = {
            t: {
                "functions": int(r["size"]),
                "share_of_invocations": float(r["sum"] / max(1, counts.sum())),
            }
            for t, r in mix.iterrows()
        }
    return out, timeline


#: Functions per block of the Azure 2019 statistics (a few MB of temporaries each).
ROWS = 2048


def equidistant_cvs(counts: sparse.csr_array | np.ndarray) -> np.ndarray:
    """The inter-arrival CV of each function with at least 3 requests, its requests placed
    equidistantly within each minute (spread "equidistant"), computed from the counts
    (functions x minutes: Invocations.counts, or a dense array): the gaps inside minute m
    are 60 / c_m, and between two busy minutes the gap from the last request of one to the
    first of the next. The CV of np.diff of the spread times up to rounding (relative
    differences below 1e-9, on nearly periodic functions whose CV is tiny: there the
    differences of times carry the times' rounding)."""
    counts = sparse.csr_array(counts)  # no copy of a CSR array; canonical, as the trace's
    out = []
    for r0 in range(0, counts.shape[0], ROWS):
        block = counts[r0 : r0 + ROWS]  # the busy minutes, row by row
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        cols, c = block.indices, block.data.astype(float)
        n = np.bincount(rows, weights=c, minlength=block.shape[0])
        first = 60.0 * (cols + 0.5 / c)  # first and last request of each busy minute
        last = 60.0 * (cols + (c - 0.5) / c)
        inside = 60.0 / c  # c - 1 gaps of this length
        head = np.ones(len(rows), dtype=bool)  # a row's first busy minute
        head[1:] = rows[1:] != rows[:-1]
        tail = np.roll(head, -1)  # a row's last busy minute
        span = np.zeros(block.shape[0])
        span[rows[tail]] = last[tail]
        span[rows[head]] -= first[head]
        keep = n >= 3
        mean = np.divide(span, n - 1, out=np.zeros_like(span), where=keep)
        m = mean[rows]
        sq = (c - 1) * (inside - m) ** 2
        between = ~head[1:]  # busy minute k + 1 follows k in the same row
        gaps = first[1:][between] - last[:-1][between]
        sq_between = (gaps - m[1:][between]) ** 2
        total = np.bincount(rows, weights=sq, minlength=block.shape[0])
        total += np.bincount(rows[1:][between], weights=sq_between, minlength=block.shape[0])
        keep &= mean > 0
        std = np.sqrt(np.divide(total, n - 1, out=np.zeros_like(total), where=keep))
        out.append(std[keep] / mean[keep])
    return np.concatenate(out) if out else np.empty(0)


def _minute_timeline(
    counts: sparse.csr_array | np.ndarray, span_s: float
) -> tuple[np.ndarray, float, str]:
    """_timeline of an Azure 2019 replay's equidistant times, from the per-minute counts
    (functions x minutes: Invocations.counts, or a dense array)."""
    width, name = time_bins(span_s)
    bins = max(1, int(np.ceil(span_s / width)))
    if width % 60:  # bins shorter than a minute (a trace of at most 40 minutes): by times
        dense = counts.toarray() if sparse.issparse(counts) else counts
        times = (azure2019.spread(c, "equidistant", None) for c in dense)
        return _timeline(times, span_s)
    per_minute = counts.sum(axis=0, dtype=np.int64)
    minute_bin = np.minimum((60 * np.arange(len(per_minute))) // int(width), bins - 1)
    return np.bincount(minute_bin, weights=per_minute, minlength=bins).astype(np.int64), width, name


def _timeline(arrivals: Iterable[np.ndarray], span_s: float) -> tuple[np.ndarray, float, str]:
    """Invocations per bin of the trace's time (bins sized to a figure), summed function by
    function: no copy of all arrivals at once."""
    width, name = time_bins(span_s)
    bins = max(1, int(np.ceil(span_s / width)))
    counts = np.zeros(bins, dtype=np.int64)
    for t in arrivals:
        counts += np.bincount(np.minimum(t // width, bins - 1).astype(np.int64), minlength=bins)
    return counts, width, name


#: The preset a replay of each format models unless told: Azure's traces are studied as
#: research replays (Lambda's limits, recycling, memory floor and prices would skew them).
TRACE_PRESETS = {"azure2019": "research", "azure2021": "research", "csv": "aws-lambda"}


def scenario_for(
    path: Path, fmt: str, select: Any, name: str | None = None, preset: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A runnable scenario that replays the whole trace, and notes for the user (what was
    assumed)."""
    warnings: list[str] = []
    template: dict[str, Any] = {}
    preset = preset or TRACE_PRESETS[fmt]
    if not PRESETS[preset].runtime_init:  # the trace has no init times: say what is assumed
        template["init"] = dict(init_preset(DEFAULT_RUNTIME))
        warnings.append(
            f"init: the trace has no cold-start times; every function takes {DEFAULT_RUNTIME}'s "
            f"measured AWS Lambda hello-world init ({_describe(template['init'])}): edit "
            "workload.function.init"
        )
    if fmt == "azure2019":
        files = azure2019.files_for(path)
        inv = azure2019.read_invocations(files["invocations"])
        span_s = 60.0 * inv.shape[1]
        missing = [k for k in ("durations", "memory") if files.get(k) is None]
        if missing:
            warnings.append(
                f"no {' or '.join(missing)} file: handler times default to lognormal median 100 ms "
                "(sigma 0.8), memory to 128 MB; edit `workload.function` to change them"
            )
            template["duration"] = DEFAULT_DURATION
    else:
        span_s = load(path, fmt)["span_s"]
    if fmt == "csv" and all(d is None for d in usercsv.read(path).duration_ms):
        warnings.append(
            "the log has no duration_ms: handler times default to lognormal median 100 ms"
        )
        template["duration"] = DEFAULT_DURATION
    workload: dict[str, Any] = {"format": fmt, "path": str(path.resolve()), "select": select}
    if template:
        workload["function"] = template
    scenario = {
        "name": name or _name(path),
        "seed": 0,
        "duration_s": span_s,
        "warmup_s": 0.0,
        "platform": {"preset": preset},
        "workload": workload,
    }
    return scenario, warnings


def _describe(dist: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in dist.items())


def parse_select(text: str) -> Any:
    """top:N | sample:N | all -> the workload's `select`."""
    if text == "all":
        return "all"
    kind, _, n = text.partition(":")
    if kind in ("top", "sample") and n.isdigit() and int(n) > 0:
        return {kind: int(n)}
    raise ScenarioError(f"--select {text!r}: expected top:N, sample:N or all")


def _name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip("-._")
    return cleaned or "trace"
