"""Inverse sizing: the least value of a knob whose confidence bound meets every target."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ScenarioError
from ..scenario.loading import load_scenario
from ..scenario.schema import Scenario
from .sweep import sweep

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Target:
    metric: str  # dotted summary metric, e.g. latency_ms.p99
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Target:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|<|>)\s*(\S+)\s*", text)
        try:
            target = cls(m.group(1), m.group(2), float(m.group(3)))
        except (AttributeError, ValueError):
            raise ScenarioError(f"target {text!r}: expected metric<=number (or >=, <, >)") from None
        if not math.isfinite(target.value):
            raise ScenarioError(f"target {text!r}: the value must be a finite number")
        return target

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def bound(self, row: dict[str, float]) -> float:
        """The pessimistic end of the metric's confidence interval."""
        key = f"{self.metric}_ci_high" if self.op in ("<=", "<") else f"{self.metric}_ci_low"
        if key not in row:
            raise ScenarioError(f"target {self}: no metric {self.metric!r} in the summary")
        value = row[key]
        if math.isnan(value):  # one replication, or a constant metric: use the mean
            value = row[f"{self.metric}_mean"]
        return value

    def met(self, row: dict[str, float]) -> bool:
        value = self.bound(row)
        return not math.isnan(value) and OPS[self.op](value, self.value)


@dataclass
class Plan:
    knob: str
    value: int | None  # None: no value in range meets the targets
    row: dict[str, float] | None  # the sweep row at that value
    evaluated: dict[int, bool] = field(default_factory=dict)  # value -> all targets met
    notes: list[str] = field(default_factory=list)


def plan(
    scenario: Scenario | str | Path,
    knob: str,
    targets: Sequence[Target | str],
    low: int,
    high: int,
    replications: int = 5,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    memory_check: bool = True,
) -> Plan:
    """Bisection over the integers in [low, high] for a knob whose larger values help
    (provisioned concurrency, keep-alive, memory): the least value whose upper (or lower)
    95% confidence bound meets every target. Both ends are evaluated first: if `high` fails
    nothing in range does, and a failing `high` with a passing `low` means the knob is not
    monotone in the targets, which is reported. Targets may be given as strings
    ("latency_ms.p99<=300"), the scenario as a YAML path."""
    if isinstance(scenario, str | Path):
        scenario = load_scenario(scenario)
    if isinstance(targets, str | Target):
        targets = [targets]
    targets = [t if isinstance(t, Target) else Target.parse(t) for t in targets]
    if not targets:
        raise ScenarioError("plan needs at least one target, e.g. latency_ms.p99<=300")
    if low > high:
        raise ScenarioError(f"range {low}:{high}: low must not exceed high")
    if replications < 2:
        raise ScenarioError(
            f"replications {replications}: a confidence bound needs at least 2 runs per value"
        )
    cache: dict[int, dict[str, float]] = {}

    def evaluate(v: int) -> bool:
        if v not in cache:
            result = sweep(
                scenario, {knob: [v]}, replications, workers=workers, memory_check=memory_check
            )
            cache[v] = result.table.iloc[0].to_dict()
            if progress:
                progress(
                    f"{knob}={v}: "
                    + ", ".join(f"{t.metric}≈{t.bound(cache[v]):.4g}" for t in targets)
                )
        return all(t.met(cache[v]) for t in targets)

    out = Plan(knob, None, None)
    ok_low, ok_high = evaluate(low), evaluate(high)
    if ok_low:
        out.value = low
        if not ok_high:
            out.notes.append(f"not monotone: {knob}={low} meets the targets but {high} does not")
    elif not ok_high:
        failing = [
            f"{t} fails: its bound is {t.bound(cache[high]):.4g}"
            for t in targets
            if not t.met(cache[high])
        ]
        out.notes.append(
            f"no value in [{low}, {high}] meets every target; at {knob}={high}: "
            + "; ".join(failing)
        )
    else:
        lo, hi = low, high  # lo fails, hi passes
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if evaluate(mid):
                hi = mid
            else:
                lo = mid
        out.value = hi
    out.evaluated = {v: all(t.met(r) for t in targets) for v, r in sorted(cache.items())}
    out.row = cache.get(out.value) if out.value is not None else None
    return out


def parse_range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*", text)
    if not m:
        raise ScenarioError(f"--range {text!r}: expected LOW:HIGH (integers)")
    return int(m.group(1)), int(m.group(2))


def describe(p: Plan, targets: Sequence[Target]) -> dict[str, Any]:
    return {
        "knob": p.knob,
        "value": p.value,
        "targets": [str(t) for t in targets],
        "at_value": None if p.row is None else {
            t.metric: {"mean": p.row[f"{t.metric}_mean"], "bound": t.bound(p.row)} for t in targets
        } | {"cost_usd.total": p.row.get("cost_usd.total_mean")},
        "evaluated": {str(k): v for k, v in p.evaluated.items()},
        "notes": p.notes,
    }  # fmt: skip
