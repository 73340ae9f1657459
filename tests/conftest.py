"""Shared helpers: small scenarios built as plain data, and a runner."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from hypothesis import settings

matplotlib.use("Agg")
settings.register_profile("default", max_examples=80)
settings.register_profile("thorough", max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

from coldsim import parse_scenario, simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
#: The Azure trace excerpts the trace tests replay: ../shared/traces, or COLDSIM_TRACES.
TRACES = Path(os.environ.get("COLDSIM_TRACES") or SHARED / "traces")
needs_traces = pytest.mark.skipif(
    not TRACES.is_dir(), reason=f"no trace excerpts at {TRACES} (set COLDSIM_TRACES)"
)


def scenario(
    *functions: dict[str, Any],
    duration_s: float = 1000.0,
    warmup_s: float = 0.0,
    seed: int = 1,
    idle_s: float = 600.0,
    selection: str = "newest",
    max_lifetime_s: float | None = None,
    concurrency_limit: int | None = None,
    scaling: dict[str, Any] | None = None,
    name: str = "test",
) -> dict[str, Any]:
    """Scenario data with explicit platform settings (tests never lean on defaults): by
    default no limits, fixed keep-alive, no recycling."""
    return {
        "name": name,
        "seed": seed,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "platform": {
            "keep_alive": {"policy": "fixed", "idle_s": idle_s},
            "idle_selection": selection,
            "max_lifetime_s": max_lifetime_s,
            "concurrency_limit": concurrency_limit,
            "scaling": scaling,
            "provisioned_allocation": None,  # raised provisioned concurrency ready at once
        },
        "functions": [copy.deepcopy(f) for f in functions],
    }


def function(
    name: str = "f",
    *,
    arrivals: dict[str, Any],
    duration: dict[str, Any] | None = None,
    init: dict[str, Any] | None = None,
    memory_mb: int = 1024,
) -> dict[str, Any]:
    return {
        "name": name,
        "memory_mb": memory_mb,
        "init": init or {"dist": "constant", "value_ms": 0},
        "duration": duration or {"dist": "constant", "value_ms": 0},
        "arrivals": arrivals,
    }


def const(ms: float) -> dict[str, Any]:
    return {"dist": "constant", "value_ms": ms}


def run(data: dict[str, Any], base_dir: Path | None = None):
    return simulate(parse_scenario(data, base_dir=base_dir))


@pytest.fixture
def write_trace(tmp_path):
    """Write arrival times to a CSV and return its path."""

    def write(times, name="trace.csv", column="timestamp_s"):
        path = tmp_path / name
        path.write_text(column + "\n" + "".join(f"{t!r}\n" for t in times))
        return path

    return write
