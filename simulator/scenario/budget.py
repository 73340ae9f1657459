"""Memory estimate of a run, checked before it starts: a run that cannot fit is refused with
the estimate instead of exhausting the machine.

The figures are measured by `make bench` and `coldsim run`. A run that holds its request log
in memory grows by about 110 bytes per request (engine columns, DataFrames, Parquet and plots)
over about 300 MB of interpreter and libraries. A streamed run (`coldsim run`, or
outputs.requests none or a fraction) holds only the rows of functions whose summary needs
them together (multi-request, provisioned, per-instance billing, hosts); what else grows is
its instances (one per cold start, a few percent of requests on a trace day): 1e7 requests of
a 46,000-function day peaked at 1.7 GB. A function costs about 25 KB (its scenario entry,
random streams, pools), plus its keep-alive policy's state (`state_bytes`: a hybrid
histogram's bins); a host about 10 KB (the hosts figure's per-host time bins). The
estimate adds margin to each.
"""

from __future__ import annotations

import os

from ..errors import ScenarioError

BASE_BYTES = 350e6
#: A request whose row is held in memory...
BYTES_PER_REQUEST = 160.0
#: ...and one streamed (its share of instances and of what the allocator keeps).
STREAMED_BYTES_PER_REQUEST = 10.0
BYTES_PER_FUNCTION = 30e3
#: A host (platform.hosts): its rows of the hosts figure's time bins and their percentiles
#: (100,000 hosts peaked at 1.25 GB in all, 350 MB of it the interpreter's).
BYTES_PER_HOST = 10e3


def expected_requests(scenario) -> float:
    """Requests expected in the run, those of function calls included."""
    from .schema import chain_expected

    return sum(chain_expected(scenario.functions, scenario.duration_s))


def estimate_bytes(scenario, held_requests: float | None = None, workers: int = 0) -> float:
    """Peak memory of simulating and saving the scenario, in bytes: `held_requests` of its
    requests held in memory (None: all of them), the rest streamed; `workers` processes
    besides this one each hold a shard (an interpreter and libraries each)."""
    requests = expected_requests(scenario)
    held = requests if held_requests is None else min(held_requests, requests)
    return (
        BASE_BYTES * (1 + workers)
        + BYTES_PER_REQUEST * held
        + STREAMED_BYTES_PER_REQUEST * (requests - held)
        + (BYTES_PER_FUNCTION + scenario.platform.keep_alive.state_bytes())
        * len(scenario.functions)
        + BYTES_PER_HOST * (hosts.count if (hosts := scenario.platform.hosts) else 0)
    )


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
    scenario, runs_at_once: int = 1, hint: str = "", what: str | None = None,
    held_requests: float | None = None, workers: int = 0,
) -> None:  # fmt: skip
    """Refuse (ScenarioError) a run, or `runs_at_once` parallel runs (or a run that takes
    that many times one's memory, named `what`), that would not fit; held_requests and
    workers as in estimate_bytes."""
    need = estimate_bytes(scenario, held_requests, workers) * max(1, runs_at_once)
    have = available_bytes()
    if have is not None and need > have:
        if what is None:
            what = f"{runs_at_once} runs at once" if runs_at_once > 1 else "this run"
        origin = getattr(scenario, "origin", None)
        raise ScenarioError(
            f"{what} would need about {need / 2**30:,.1f} GiB of memory "
            f"({_per_request(scenario, held_requests)}), and the machine has "
            f"{have / 2**30:,.1f} GiB available: shorten duration_s, lower the rates or select "
            f"fewer functions{hint}",
            file=origin()["file"] if origin is not None else None,
        )


def _per_request(scenario, held_requests: float | None) -> str:
    if held_requests is None:
        return f"{BYTES_PER_REQUEST:.0f} bytes per expected request, all held in memory"
    return (
        f"{STREAMED_BYTES_PER_REQUEST:.0f} bytes per expected request streamed, "
        f"{BYTES_PER_REQUEST:.0f} per request held in memory: {held_requests:,.0f} of "
        f"{expected_requests(scenario):,.0f}"
    )
