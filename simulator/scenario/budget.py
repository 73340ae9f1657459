"""Memory estimate of a run, checked before it starts: a run that cannot fit is refused with
the estimate instead of exhausting the machine.

The figures are measured by `make bench` and `coldsim run` on 1 M and 0.5 M requests: peak
RSS grows by about 110 bytes per request (engine columns, DataFrames, Parquet and plots) over
about 300 MB of interpreter and libraries. The estimate adds margin to both, and a little per
function (pools, random streams, per-function summaries).
"""

from __future__ import annotations

import os

from ..errors import ScenarioError

BASE_BYTES = 350e6
BYTES_PER_REQUEST = 160.0
BYTES_PER_FUNCTION = 50e3


def estimate_bytes(scenario) -> float:
    """Peak memory of simulating and saving the scenario, in bytes."""
    requests = sum(f.expected_requests(scenario.duration_s) for f in scenario.functions)
    return BASE_BYTES + BYTES_PER_REQUEST * requests + BYTES_PER_FUNCTION * len(scenario.functions)


def available_bytes() -> float | None:
    """Memory the machine can give now (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    scenario, runs_at_once: int = 1, hint: str = "", what: str | None = None
) -> None:
    """Refuse (ScenarioError) a run, or `runs_at_once` parallel runs (or a run that takes
    that many times one's memory, named `what`), that would not fit."""
    need = estimate_bytes(scenario) * max(1, runs_at_once)
    have = available_bytes()
    if have is not None and need > have:
        if what is None:
            what = f"{runs_at_once} runs at once" if runs_at_once > 1 else "this run"
        origin = getattr(scenario, "origin", None)
        raise ScenarioError(
            f"{what} would need about {need / 2**30:,.1f} GiB of memory "
            f"({BYTES_PER_REQUEST:.0f} bytes per expected request), and the machine has "
            f"{have / 2**30:,.1f} GiB available: shorten duration_s, lower the rates or select "
            f"fewer functions{hint}",
            file=origin()["file"] if origin is not None else None,
        )
