"""A scenario-level `workload:` that expands one trace into many functions.

azure2019: one function per selected trace function, with its per-minute counts replayed, its
handler times from the durations file (an empirical distribution through the percentile
columns) and its memory from the memory file: per function as given (the In-Vitro samples),
or, for the original per-application files, the app's average allocation divided evenly among
the app's functions present in the invocations file (the In-Vitro sampler's rule); memory_mb is
that, rounded up to a whole MB within the platform preset's range (Lambda's: at least 128),
and host_memory_mb that figure as it is.
azure2021 and csv: one function per function in the file, each request with its own handler
time when the file has one.
Functions are named by the shortest unique prefix (at least 8 characters) of their hash.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ..model import Model
from ..rng import stream
from .arrivals.trace import InputPath
from .traces import azure2019, azure2021, usercsv
from .traces.common import short_names


class Top(Model):
    top: int = Field(ge=1, description="The N functions with the most invocations.")


class Sample(Model):
    sample: int = Field(ge=1, description="N functions drawn at random (by the scenario seed).")


class Named(Model):
    functions: list[str] = Field(min_length=1, description="Function hashes (or unique prefixes).")


class Workload(Model):
    """Many functions from one trace. Every generated function takes the `function` template's
    fields (memory_mb, init, runtime, invocation, ...) unless the trace supplies them."""

    format: Literal["azure2019", "azure2021", "csv"]
    path: InputPath = Field(
        description="azure2019: the trace folder (or its invocations file); else the file."
    )
    select: Literal["all"] | Top | Sample | Named = Field("all", description="Which functions.")
    spread: Literal["uniform", "poisson", "equidistant"] = Field(
        "uniform", description="azure2019: placement of requests within each minute."
    )
    minutes: tuple[int, int] | None = Field(
        None, description="azure2019: [first, last] minute labels."
    )
    trace_window_s: tuple[float, float] | None = Field(
        None, description="azure2021/csv: [start, end) of trace time to replay, s."
    )
    time_scale: float = Field(1.0, gt=0, description="Trace seconds per replayed second.")
    rate_multiplier: float = Field(1.0, ge=0, le=1000, description="Scale the traffic.")
    function: dict[str, Any] = Field(
        default_factory=dict, description="Fields given to every generated function."
    )

    @model_validator(mode="after")
    def _options_fit_format(self):
        if self.format == "azure2019" and self.trace_window_s is not None:
            raise ValueError("azure2019 windows are given in minutes: use `minutes`")
        if self.format != "azure2019" and self.minutes is not None:
            raise ValueError("`minutes` is for azure2019; use trace_window_s")
        if "name" in self.function or "arrivals" in self.function:
            raise ValueError("the function template cannot set name or arrivals")
        return self

    def expand(
        self, seed: int, memory_for: Callable[[float], int] | None = None
    ) -> list[dict[str, Any]]:
        """Plain function data, ready for the Scenario's `functions`. memory_for: memory_mb
        for a trace's memory figure (the platform preset's rule; Lambda's by default)."""
        if self.format == "azure2019":
            return self._azure2019(seed, memory_for or azure2019.memory_mb)
        return {"azure2021": self._azure2021, "csv": self._csv}[self.format](seed)

    def _replay(self) -> dict[str, Any]:
        return {"time_scale": self.time_scale, "rate_multiplier": self.rate_multiplier}

    def _choose(self, keys: list[str], totals: np.ndarray, seed: int) -> list[int]:
        sel = self.select
        if sel == "all":
            return list(range(len(keys)))
        if isinstance(sel, Top):
            order = sorted(range(len(keys)), key=lambda i: (-totals[i], keys[i]))
            return sorted(order[: sel.top])
        if isinstance(sel, Sample):
            if sel.sample > len(keys):
                raise ValueError(f"select.sample: the trace has only {len(keys)} functions")
            rng = stream(seed, "__workload__", "workload")
            return sorted(rng.choice(len(keys), size=sel.sample, replace=False).tolist())
        chosen = []
        for name in sel.functions:
            hits = [i for i, k in enumerate(keys) if k == name] or [
                i for i, k in enumerate(keys) if k.startswith(name)
            ]
            if len(hits) != 1:
                raise ValueError(f"select.functions: {name!r} matches {len(hits)} functions")
            chosen.append(hits[0])
        return sorted(set(chosen))

    def _azure2019(self, seed: int, memory_for: Callable[[float], int]) -> list[dict[str, Any]]:
        files = azure2019.files_for(self.path)
        inv = azure2019.read_invocations(files["invocations"])
        keys = inv.functions.tolist()
        chosen = self._choose(keys, inv.totals(self.minutes), seed)
        template = {"durations": "duration", "memory": "memory_mb"}
        missing = [k for k in template if files[k] is None and template[k] not in self.function]
        if missing:
            warnings.warn(
                f"{self.path}: no {' or '.join(missing)} file and no workload.function "
                f"{' or '.join(template[k] for k in missing)}: the scenario defaults apply",
                stacklevel=2,
            )
        durations = azure2019.read_durations(files["durations"]) if files["durations"] else None
        memory, per_function = (
            azure2019.read_memory(files["memory"]) if files["memory"] else (None, True)
        )
        names = short_names([keys[i] for i in chosen])
        apps = dict(
            zip(inv.apps[chosen].tolist(), short_names(inv.apps[chosen].tolist()), strict=True)
        )
        found = azure2019_fields_of(inv, chosen, durations, memory, per_function, memory_for)
        arrivals = {"process": "azure2019", "invocations": str(files["invocations"])}
        replay = {"spread": self.spread, "minutes": self.minutes, **self._replay()}
        out = []
        for name, i, fields in zip(names, chosen, found, strict=True):
            f: dict[str, Any] = {**self.function, "name": name, "app": apps[inv.apps[i]]}
            f["arrivals"] = {**arrivals, "function": keys[i], **replay}
            f.update(fields)
            if "duration" not in f:
                raise ValueError(
                    f"function {keys[i]} has no durations row; give workload.function.duration"
                )
            out.append(f)
        return out

    def _azure2021(self, seed: int) -> list[dict[str, Any]]:
        data = azure2021.read(self.path)
        totals = np.array([len(t) for t in data.arrival_s])
        chosen = self._choose(data.functions.tolist(), totals, seed)
        funcs = [data.functions[i] for i in chosen]
        names = short_names(funcs)
        if len(set(names)) < len(names):  # the same func hash in two apps
            names = [
                f"{a}.{f}"
                for a, f in zip(short_names([data.apps[i] for i in chosen]), names, strict=True)
            ]
        out = []
        for name, i in zip(names, chosen, strict=True):
            arrivals = {
                "process": "azure2021",
                "path": str(self.path),
                "function": data.functions[i],
                "app": data.apps[i],
                "trace_window_s": self.trace_window_s,
                **self._replay(),
            }
            out.append(
                {**self.function, "name": name, "app": data.apps[i][:8], "arrivals": arrivals}
            )
        return out

    def _csv(self, seed: int) -> list[dict[str, Any]]:
        log = usercsv.read(self.path)
        totals = np.array([len(t) for t in log.arrival_s])
        chosen = self._choose(log.functions, totals, seed)
        out = []
        names = _unique([_safe_name(log.functions[i] or self.path.stem) for i in chosen])
        for name, i in zip(names, chosen, strict=True):
            arrivals = {
                "process": "csv",
                "path": str(self.path),
                "trace_window_s": self.trace_window_s,
                "function": log.functions[i],  # the raw label ("" for rows without one)
                **self._replay(),
            }
            out.append({**self.function, "name": name, "arrivals": arrivals})
        return out


def _safe_name(label: str) -> str:
    """A function name from a log's label: accents dropped (café -> cafe), other characters
    outside [A-Za-z0-9._-] become '-'; a label with no such character at all is named by a
    hash of it (fn-1a2b3c4d). The label itself stays in the replay's `function` field."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]", "-", ascii_label).strip("-._")
    if not name:
        digest = hashlib.sha256(label.encode()).hexdigest()[:8]
        return f"fn-{digest}" if label else "function"
    return name if name[0].isalnum() else f"f{name}"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def azure2019_fields_of(
    inv, rows, durations, memory, per_function, memory_for=azure2019.memory_mb
) -> list[dict[str, Any]]:
    """For trace rows (functions): duration (empirical through the percentiles), memory_mb and
    host_memory_mb, where the durations and memory files have them. memory_mb is memory_for
    the trace's figure (by default a Lambda size: whole MB, at least 128; the platform
    preset's rule); host_memory_mb is the trace's own figure (tens of MB for most apps), what
    an instance holds on a host with platform.hosts. One lookup per file for all the rows."""
    rows = np.asarray(rows, dtype=np.int64)
    out: list[dict[str, Any]] = [{} for _ in range(len(rows))]
    if not len(rows):
        return out
    keys = inv.functions[rows]
    if durations is not None:
        at = durations.index.get_indexer(keys)
        columns = list(azure2019.DURATION_PERCENTILES.values())
        table = durations[columns].to_numpy(dtype=float)[np.maximum(at, 0)].tolist()
        percentiles = list(azure2019.DURATION_PERCENTILES)
        for k in np.flatnonzero(at >= 0).tolist():
            out[k]["duration"] = {
                "dist": "empirical",
                "percentiles_ms": dict(zip(percentiles, table[k], strict=True)),
            }
    if memory is not None:
        apps = inv.apps[rows]
        at = memory.index.get_indexer(keys if per_function else apps)
        mb = memory.to_numpy(dtype=float)[np.maximum(at, 0)]
        if not per_function:
            sizes = inv.app_sizes()
            mb = mb / np.array([sizes[a] for a in apps.tolist()], dtype=np.int64)
        for k in np.flatnonzero(at >= 0).tolist():
            out[k]["memory_mb"] = memory_for(mb[k])
            if mb[k] > 0:
                out[k]["host_memory_mb"] = round(float(mb[k]), 4)
    return out


def fields_for_azure2019_arrivals(
    arrivals: dict[str, Any],
    base_dir: Path | None,
    memory_for: Callable[[float], int] = azure2019.memory_mb,
) -> dict[str, Any]:
    """For a function whose arrivals replay one Azure 2019 function: its duration and memory
    from the trace's durations and memory files (named in `arrivals`, or found beside the
    invocations when `invocations` is the trace folder)."""

    def resolve(p: Any) -> Path | None:
        if p is None:
            return None
        p = Path(p)
        return p if p.is_absolute() or base_dir is None else Path(base_dir) / p

    source = resolve(arrivals.get("invocations"))
    if source is None or not source.exists():
        return {}
    files = azure2019.files_for(source)
    durations_file = resolve(arrivals.get("durations")) or files.get("durations")
    memory_file = resolve(arrivals.get("memory")) or files.get("memory")
    inv = azure2019.read_invocations(files["invocations"])
    try:
        i = inv.row(str(arrivals.get("function", "")))
    except KeyError:
        return {}  # the arrival process reports it
    if durations_file is None and memory_file is None:
        return {}
    durations = azure2019.read_durations(durations_file) if durations_file else None
    memory, per_function = azure2019.read_memory(memory_file) if memory_file else (None, True)
    return azure2019_fields_of(inv, [i], durations, memory, per_function, memory_for)[0]
