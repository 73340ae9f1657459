"""Runtime presets: the default cold-start init time of a managed runtime.

Source [sources: lambda-perf]: hello-world ZIP functions at 512 MB on x86_64, Init Duration
from the REPORT line, 2026-05-28 .. 2026-08-22, ~760 samples per runtime. Each preset is a
log-normal through the measured p50 with sigma fitted to the p50-p90 spread:
sigma = ln(p90 / p50) / 1.2816. Memory barely changes hello-world init (init runs on a full
vCPU [sources: aws-init-cpu]). Your own global state adds to these: set `init` to override.
"""

from __future__ import annotations

import math

#: runtime -> (p50_ms, p90_ms) of Init Duration.
MEASURED_MS: dict[str, tuple[float, float]] = {
    "python3.11": (80, 99),
    "python3.12": (86, 106),
    "python3.13": (92, 118),
    "nodejs22.x": (145, 170),
    "java17": (208, 243),
    "java21": (245, 291),
    "dotnet8": (258, 333),
    "ruby3.3": (245, 396),
    "provided.al2023": (51, 55),  # Go on the OS-only runtime
    "go": (51, 55),  # alias of provided.al2023 with a Go binary
    "rust": (16, 22),  # Rust on provided.al2023
}
#: Every runtime AWS Lambda supports, by its identifier [sources: aws-runtimes] -> the measured
#: preset (a MEASURED_MS key) whose init stands in for it: itself when measured, else the
#: nearest release of the same language (an OS-only runtime: provided.al2023). A stand-in is
#: stated wherever one is used (`coldsim logs fit` notes it); set `init` to your own.
LAMBDA_RUNTIMES: dict[str, str] = {
    "nodejs24.x": "nodejs22.x", "nodejs22.x": "nodejs22.x", "nodejs20.x": "nodejs22.x",
    "python3.14": "python3.13", "python3.13": "python3.13", "python3.12": "python3.12",
    "python3.11": "python3.11", "python3.10": "python3.11",
    "java25": "java21", "java21": "java21", "java17": "java17", "java11": "java17",
    "java8.al2": "java17",
    "dotnet10": "dotnet8", "dotnet9": "dotnet8", "dotnet8": "dotnet8",
    "ruby3.4": "ruby3.3", "ruby3.3": "ruby3.3", "ruby3.2": "ruby3.3",
    "provided.al2023": "provided.al2023", "provided.al2": "provided.al2023",
}  # fmt: skip
#: OS-only runtimes, which were billed for INIT even before Aug 2025 [sources: aws-init-billing].
CUSTOM_RUNTIMES = frozenset({"provided.al2023", "go", "rust"})
Z90 = 1.2815515655446004  # standard normal 90th percentile

DEFAULT_RUNTIME = "python3.12"


def init_preset(runtime: str) -> dict[str, object]:
    """The preset init distribution, as scenario data."""
    p50, p90 = MEASURED_MS[runtime]
    return {
        "dist": "lognormal",
        "median_ms": float(p50),
        "sigma": round(math.log(p90 / p50) / Z90, 4),
    }
