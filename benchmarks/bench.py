"""`make bench`: speed and memory of simulate(), one JSON line per case.

Each case runs in a fresh subprocess so its peak RSS is its own. Writes
results/bench/bench.jsonl and prints a table. Cases (from the foundation issue):
  a: one function, Poisson 10/s for 100,000 s (~1 M invocations), handler exponential
     mean 2,000 ms, init constant 200 ms, keep-alive 60 s;
  b: the same at 50/s for 20,000 s;
  a_half: case a over 50,000 s, for the memory slope between 0.5 M and 1 M invocations.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"a": (10.0, 100_000.0), "b": (50.0, 20_000.0), "a_half": (10.0, 50_000.0)}


def scenario(rate_per_s: float, duration_s: float) -> dict:
    return {
        "name": "bench",
        "seed": 1,
        "duration_s": duration_s,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": 60}, "max_lifetime_s": None},
        "functions": [{
            "name": "f",
            "init": {"dist": "constant", "value_ms": 200},
            "duration": {"dist": "exponential", "mean_ms": 2000},
            "arrivals": {"process": "poisson", "rate_per_s": rate_per_s},
        }],
    }  # fmt: skip


def run_case(name: str) -> dict:
    from simulator import simulate

    res = simulate(scenario(*CASES[name]))
    wall, engine_wall = res.summary["wall_s"], res.summary["engine_wall_s"]
    n = len(res.invocations)
    return {
        "case": name,
        "invocations": n,
        "wall_s": round(wall, 3),
        "engine_wall_s": round(engine_wall, 3),
        "invocations_per_s": round(n / wall),
        "engine_invocations_per_s": round(n / engine_wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": sys.version.split()[0],
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
        return
    rows = []
    for name in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", name], check=True,
                             capture_output=True, text=True, cwd=ROOT).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    full, half = rows[0], rows[2]
    slope = (
        (full["peak_rss_mb"] - half["peak_rss_mb"])
        * 2**20
        / (full["invocations"] - half["invocations"])
    )
    rows.append({"case": "memory_slope", "bytes_per_invocation": round(slope, 1),
                 "between": [half["invocations"], full["invocations"]]})  # fmt: skip
    print(json.dumps(rows[-1]))
    out_dir = ROOT / "results" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".bench.jsonl.{os.getpid()}"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out_dir / "bench.jsonl")
    _table(rows)


def _table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="coldsim benchmark (simulate(): engine + logs + summary)")
    for col in ("case", "invocations", "wall s", "invocations/s", "engine inv/s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in rows[:-1]:
        table.add_row(r["case"], f"{r['invocations']:,}", f"{r['wall_s']:.2f}",
                      f"{r['invocations_per_s']:,}", f"{r['engine_invocations_per_s']:,}",
                      f"{r['peak_rss_mb']:,.0f}")  # fmt: skip
    Console().print(table)
    Console().print(f"peak RSS slope: {rows[-1]['bytes_per_invocation']} bytes per invocation")


if __name__ == "__main__":
    main()
