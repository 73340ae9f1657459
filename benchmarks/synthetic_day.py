"""A seeded synthetic day in the Azure Functions 2019 format, for scale tests.

    .venv/bin/python benchmarks/synthetic_day.py /tmp/day --functions 46000 --requests 1e8

writes into the folder, under the dataset's own names (the formats of docs/sources.md's
`azure-2019`, the dataset's own notes):

- invocations_per_function_md.anon.d01.csv: HashOwner,HashApp,HashFunction,Trigger,1..1440
- function_durations_percentiles.anon.d01.csv: HashOwner,HashApp,HashFunction,Average,Count,
  Minimum,Maximum,percentile_Average_{0,1,25,50,75,99,100}
- app_memory_percentiles.anon.d01.csv: HashOwner,HashApp,SampleCount,AverageAllocatedMb,
  AverageAllocatedMb_pct{1,5,25,50,75,95,99,100}

Each function's daily count is lognormal (sigma 2.8: counts over many orders of magnitude,
as in the trace), and the day's total is *exactly* the requested number: the counts are one
multinomial draw of N requests over the functions (weights lognormal), and each function's
count is then split over the 1,440 minutes by a multinomial draw with a diurnal profile
(1 + 0.5 sin, trough at 06:00, peak at 18:00). Hashes are 64 lowercase hex characters (from
the seed); functions come in apps (geometric sizes, 40 % single-function) and apps in owners.
Handler times are lognormal per function (ATC'20: log-mean -0.38, sigma 2.36 in s), memory a
Burr draw per app (ATC'20: c 11.652, k 0.221, lambda 107.083 MB). Same seed, same files.

Rows are drawn and written in blocks of functions (memory: a few tens of MB whatever the
size), by pyarrow's CSV writer; each file is written beside its final name and renamed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

MINUTES = 1440
INVOCATIONS = "invocations_per_function_md.anon.d01.csv"
DURATIONS = "function_durations_percentiles.anon.d01.csv"
MEMORY = "app_memory_percentiles.anon.d01.csv"
TRIGGERS = {  # share of functions by trigger (ATC'20, Shahrad et al. 2020, Fig. 2)
    "http": 0.55, "queue": 0.15, "timer": 0.16, "orchestration": 0.07, "storage": 0.03,
    "event": 0.02, "others": 0.02,
}  # fmt: skip
DURATION_COLUMNS = ["Average", "Count", "Minimum", "Maximum"] + [
    f"percentile_Average_{p}" for p in (0, 1, 25, 50, 75, 99, 100)
]
MEMORY_COLUMNS = ["SampleCount", "AverageAllocatedMb"] + [
    f"AverageAllocatedMb_pct{p}" for p in (1, 5, 25, 50, 75, 95, 99, 100)
]
#: Functions per block: 500 x 1,440 counts (int64) is 6 MB.
BLOCK = 500


def diurnal(minutes: int = MINUTES) -> np.ndarray:
    """Probability of each minute of the day: 1 + 0.5 sin, lowest at 06:00, highest at 18:00."""
    m = np.arange(minutes)
    shape = 1.0 + 0.5 * np.sin(2 * np.pi * (m / minutes - 0.5))
    return shape / shape.sum()


def _hex(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct-looking 64-character lowercase hex strings."""
    raw = rng.bytes(32 * n).hex()
    return np.array([raw[64 * i : 64 * (i + 1)] for i in range(n)], dtype=object)


def _structure(rng: np.random.Generator, functions: int) -> tuple[np.ndarray, np.ndarray]:
    """For each function: its app's index and that app's owner's index."""
    sizes = []
    total = 0
    while total < functions:  # functions per app: geometric, mean 2.5
        more = rng.geometric(0.4, size=max(16, functions // 2))
        sizes.extend(more.tolist())
        total += int(more.sum())
    sizes = np.array(sizes)
    apps_needed = int(np.searchsorted(np.cumsum(sizes), functions)) + 1
    sizes = sizes[:apps_needed]
    sizes[-1] -= int(sizes.sum()) - functions
    app_of = np.repeat(np.arange(apps_needed), sizes)
    per_owner = rng.geometric(0.6, size=apps_needed)  # apps per owner: mean 1.7
    owner_of_app = np.repeat(np.arange(apps_needed), per_owner)[:apps_needed]
    return app_of, owner_of_app


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's 0600
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(path: Path, columns: list[str], blocks: Iterator[pa.Table]) -> None:
    """A header line as the dataset's (no quotes), then the blocks, unquoted."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write((",".join(columns) + "\n").encode())
            for table in blocks:
                pacsv.write_csv(table, f, options)

    _atomic(path, write)


def synthetic_day(
    folder: str | Path,
    functions: int,
    requests: int,
    seed: int = 0,
    sigma: float = 2.8,
) -> dict[str, Path]:
    """Write a synthetic Azure 2019 day into `folder` (created if needed): `functions` rows
    whose counts total exactly `requests`. Returns the three files by kind."""
    if functions < 1 or requests < 0:
        raise ValueError("need at least one function and a non-negative number of requests")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    app_of, owner_of_app = _structure(rng, functions)
    apps = _hex(rng, len(owner_of_app))
    owners = _hex(rng, int(owner_of_app.max()) + 1)
    hash_function = _hex(rng, functions)
    hash_app = apps[app_of]
    hash_owner = owners[owner_of_app][app_of]
    trigger = rng.choice(
        np.array(list(TRIGGERS), dtype=object), size=functions, p=list(TRIGGERS.values())
    )
    weights = rng.lognormal(0.0, sigma, functions)
    daily = rng.multinomial(requests, weights / weights.sum())  # sums to `requests` exactly
    profile = diurnal()
    minute_labels = [str(m) for m in range(1, MINUTES + 1)]
    seeds = rng.spawn(3)

    def invocation_blocks() -> Iterator[pa.Table]:
        block_rng = seeds[0]
        for start in range(0, functions, BLOCK):
            end = min(start + BLOCK, functions)
            counts = block_rng.multinomial(daily[start:end], profile)
            cols = [
                pa.array(hash_owner[start:end], pa.string()),
                pa.array(hash_app[start:end], pa.string()),
                pa.array(hash_function[start:end], pa.string()),
                pa.array(trigger[start:end], pa.string()),
            ]
            cols += [pa.array(counts[:, j]) for j in range(MINUTES)]
            yield pa.Table.from_arrays(cols, names=[f"c{i}" for i in range(len(cols))])

    # Handler times: a median per function, a spread around it, percentiles in whole ms.
    d_rng = seeds[1]
    median_ms = np.minimum(np.exp(d_rng.normal(-0.38, 2.36, functions)) * 1000.0, 300_000.0)
    spread = d_rng.uniform(0.1, 1.0, functions)
    z = {0: -3.5, 1: -2.326, 25: -0.674, 50: 0.0, 75: 0.674, 99: 2.326, 100: 3.5}
    pct = {p: np.floor(median_ms * np.exp(spread * zp)) for p, zp in z.items()}
    average = np.floor(median_ms * np.exp(spread**2 / 2))
    duration_cols = [average, daily, pct[0].astype(float), pct[100].astype(float), *pct.values()]
    duration_table = pa.table(
        [pa.array(hash_owner, pa.string()), pa.array(hash_app, pa.string()),
         pa.array(hash_function, pa.string())]
        + [pa.array(c.astype(np.int64) if i not in (2, 3) else c)
           for i, c in enumerate(duration_cols)],
        names=[f"c{i}" for i in range(3 + len(duration_cols))],
    )  # fmt: skip

    # Memory per app: Burr XII (inverse CDF), percentiles around the average.
    m_rng = seeds[2]
    n_apps = len(apps)
    u = m_rng.random(n_apps)
    c, k, lam = 11.652, 0.221, 107.083
    average_mb = np.minimum(lam * ((1 - u) ** (-1 / k) - 1) ** (1 / c), 8000.0)
    average_mb = np.maximum(average_mb, 1.0)
    app_functions = np.bincount(app_of, minlength=n_apps)
    sample_count = m_rng.integers(100, 20000, n_apps) * app_functions
    factors = [0.8, 0.85, 0.95, 1.0, 1.05, 1.15, 1.2, 1.4]
    app_owner = owners[owner_of_app]
    memory_table = pa.table(
        [pa.array(app_owner, pa.string()), pa.array(apps, pa.string()),
         pa.array(sample_count), pa.array(average_mb)]
        + [pa.array(average_mb * f) for f in factors],
        names=[f"c{i}" for i in range(4 + len(factors))],
    )  # fmt: skip

    paths = {
        "invocations": folder / INVOCATIONS,
        "durations": folder / DURATIONS,
        "memory": folder / MEMORY,
    }
    _write_csv(paths["invocations"], [*KEYS, "Trigger", *minute_labels], invocation_blocks())
    _write_csv(paths["durations"], [*KEYS, *DURATION_COLUMNS], iter([duration_table]))
    _write_csv(paths["memory"], ["HashOwner", "HashApp", *MEMORY_COLUMNS], iter([memory_table]))
    return paths


KEYS = ["HashOwner", "HashApp", "HashFunction"]


def _count(text: str) -> int:
    value = float(text)
    if value != int(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number >= 0, please (1e8 is fine)")
    return int(value)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:,.1f} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="Folder to write the three CSV files into.")
    parser.add_argument("--functions", "-F", type=_count, default=46_000, help="Rows (functions).")
    parser.add_argument(
        "--requests", "-N", type=_count, default=100_000_000, help="Requests over the day."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma", type=float, default=2.8, help="Lognormal sigma of daily counts.")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = synthetic_day(args.folder, args.functions, args.requests, args.seed, args.sigma)
    wall = time.perf_counter() - started
    sizes = ", ".join(f"{p.name} {_size(p.stat().st_size)}" for p in paths.values())
    print(f"{args.functions:,} functions, {args.requests:,} requests in {wall:.1f} s: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
