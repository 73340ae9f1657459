"""`make bench`: speed and memory of simulate(), one JSON line per case.

Each case runs in a fresh subprocess so its peak RSS is its own. Writes
results/bench/bench.jsonl and prints a table. Cases:
  a: one function, Poisson 10/s for 100,000 s (~1 M invocations), handler exponential
     mean 2,000 ms, init constant 200 ms, keep-alive 60 s; AWS's default limits (account
     concurrency 1,000, scaling 1,000 per 10 s) on but not binding;
  a_nolimits: case a with the limits switched off (their overhead is a / a_nolimits - 1);
  b: case a at 50/s for 20,000 s;
  a_half: case a over 50,000 s, for the memory slope between 0.5 M and 1 M invocations;
  shared_limit: 20 functions at 5/s each (about 200 in flight) sharing an account limit of
     150 that binds, for 10,000 s (~1 M requests, a quarter of them throttled);
  a_observed: case a with a user's keep-alive policy (Python) that observes every request:
     the per-request cost of a plug-in that watches traffic;
  azure_500: replay of the Azure 2019 500-function sample (the shared reference traces beside
     the project, when present; 8 h, 3.04 M invocations), end to end from the CSV files;
     skipped when the folder is absent;
  a_vs_heapq: case a's engine (limits off) and benchmarks/heapq_reference.py's minimal loop,
     alternating in one process, best of 3 each: the engine's speed as a fraction of the loop's;
  day_w1, day_w2: a synthetic Azure-like trace day (benchmarks/synthetic_day.py, 46,000
     functions, 1e7 requests, generated once into results/bench/), end to end from the CSV
     files, with 1 and 2 worker processes (sharded), held in memory (simulate() without
     save_to); peak RSS of all processes together, and their PSS (shared pages once);
  day8_none_w1, day8_none_w2, day8_all_w1: the same day with 1e8 requests, streamed:
     --requests none on 1 and 2 workers, and every request written to invocations.parquet
     (the folder is deleted afterwards) on 1 (a sharded run merges its request log in memory:
     at 1e8 requests that does not fit, and is refused);
  a_wait_for_warm, a_forecast: case a with routing wait-for-warm (requests queue behind busy
     instances), and with the forecast-prewarm controller (a decision every minute);
  chain4: a 4-step sync chain, its entry at 2.5/s (the ~1 M requests of case a);
  azure_500_hosts: azure_500 on 6 hosts of 4,096 MB (instances hold the trace's memory),
     greedy-dual eviction, requests that find no room dropped: memory pressure binds (tens of
     thousands of evictions); compare its throughput with azure_500's.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scenario(rate_per_s: float, duration_s: float, functions: int = 1, **platform) -> dict:
    fixed = {"keep_alive": {"policy": "fixed", "idle_s": 60}, "max_lifetime_s": None}
    return {
        "name": "bench",
        "seed": 1,
        "duration_s": duration_s,
        "platform": {**fixed, **platform},
        "functions": [
            {
                "name": f"f{k}",
                "init": {"dist": "constant", "value_ms": 200},
                "duration": {"dist": "exponential", "mean_ms": 2000},
                "arrivals": {"process": "poisson", "rate_per_s": rate_per_s},
            }
            for k in range(functions)
        ],
    }


CASES = {
    "a": scenario(10.0, 100_000.0),
    "a_nolimits": scenario(10.0, 100_000.0, concurrency_limit=None, scaling=None),
    "b": scenario(50.0, 20_000.0),
    "a_half": scenario(10.0, 50_000.0),
    "a_observed": scenario(10.0, 100_000.0, keep_alive={"policy": "observing:ObservingFixed"}),
    "shared_limit": scenario(5.0, 10_000.0, functions=20, concurrency_limit=150),
}
# Case a on multi-request instances: 32 requests each, routed least-loaded, scaling ahead, and
# with CPU sharing (2 vCPUs, 30% CPU: past 6.7 requests at once they slow down) or without.
_multi = {"instance_concurrency": 32, "scale_target": 0.7, "instance_vcpus": 2.0}
CASES["a_multi"] = scenario(10.0, 100_000.0, routing="least-loaded")
CASES["a_multi"]["functions"][0].update(_multi, cpu_bound=0.0)
CASES["a_multi_shared_cpu"] = scenario(10.0, 100_000.0, routing="least-loaded")
CASES["a_multi_shared_cpu"]["functions"][0].update(_multi, cpu_bound=0.3)
# Issue 17's features on case a: requests queueing behind busy instances (wait-for-warm), a
# forecast controller deciding every minute, and a 4-step sync chain (4 requests per arrival,
# at a quarter of the rate: the same requests in all).
CASES["a_wait_for_warm"] = scenario(10.0, 100_000.0, routing="wait-for-warm")
CASES["a_forecast"] = scenario(10.0, 100_000.0, controllers=[{"policy": "forecast-prewarm"}])
CASES["chain4"] = scenario(2.5, 100_000.0, functions=4)
for _k, _f in enumerate(CASES["chain4"]["functions"]):
    if _k:
        _f["arrivals"] = {"process": "none"}
    if _k < 3:
        _f["calls"] = [{"function": f"f{_k + 1}"}]
AZURE_500 = ROOT.parent / "shared" / "traces" / "azure2019_dirigent_azure_500"
if AZURE_500.is_dir():  # the whole 500-function sample, 8 h, 3.04 M invocations
    CASES["azure_500"] = {
        "name": "azure-500",
        "seed": 1,
        "duration_s": 480 * 60,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": 600}},
        "workload": {"format": "azure2019", "path": str(AZURE_500)},
    }
    CASES["azure_500_hosts"] = {
        **CASES["azure_500"],
        "platform": {
            "keep_alive": {"policy": "fixed", "idle_s": 600},
            "hosts": {"count": 6, "memory_mb": 4096},
            "eviction": "greedy-dual",
        },
    }


#: The synthetic trace day (benchmarks/synthetic_day.py): 46,000 functions, 1e7 requests
#: held in memory (day_w*), 1e8 streamed (day8_*).
DAY = {"functions": 46_000, "requests": 10_000_000, "seed": 1}


DAY8 = ("day8_none_w1", "day8_none_w2", "day8_all_w1")


def day_scenario(requests: int | None = None) -> dict:
    """A whole day replayed with no shared capacity (no account limit), so it can shard."""
    requests = requests or DAY["requests"]
    folder = ROOT / "results" / "bench" / f"day-{DAY['functions']}-{requests}"
    if not (folder / "invocations_per_function_md.anon.d01.csv").is_file():
        from synthetic_day import synthetic_day

        synthetic_day(folder, DAY["functions"], requests, seed=DAY["seed"])
    return {
        "name": "day",
        "seed": 1,
        "duration_s": 86_400,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": 600},
                     "concurrency_limit": None},
        "workload": {"format": "azure2019", "path": str(folder)},
    }  # fmt: skip


class TreeRss:
    """Peak resident memory of this process and all its descendants together, sampled every
    0.2 s from /proc (Linux): worker processes included. `peak` sums their RSS (pages a
    forked worker shares with its parent count twice); `peak_pss` their proportional set
    size (a shared page counts once, split between those that share it): the memory the
    processes take from the machine together."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self.peak_pss = max(self.peak_pss, _tree_rss(os.getpid(), "Pss:"))

    def stop(self) -> float:
        """Peak RSS (MB); peak_pss_mb is set too."""
        self._stop.set()
        self._thread.join()
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak_pss_mb = max(self.peak_pss, own if not self.peak_pss else 0) / 2**20
        return max(self.peak, own) / 2**20


def _tree_rss(pid: int, field: str = "VmRSS:") -> int:
    """Sum of a memory field over a process and its descendants (VmRSS from status, Pss
    from smaps_rollup)."""
    source = "status" if field == "VmRSS:" else "smaps_rollup"
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/{source}") as f:
                total += next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith(field))  # fmt: skip
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_day(workers: int, requests: int | None = None, log: str | None = None) -> dict:
    """The synthetic day: held in memory (log None), or streamed with outputs.requests
    `log` (all: written to a folder under results/bench/, deleted afterwards)."""
    import shutil

    from coldsim import simulate

    data = day_scenario(requests)
    out = None
    if log is not None:
        data["outputs"] = {"requests": log}
        if log != "none":
            out = ROOT / "results" / "bench" / f"day-run-{os.getpid()}"
    rss = TreeRss()
    t0 = time.perf_counter()
    res = simulate(data, workers=workers, save_to=out)
    wall = time.perf_counter() - t0
    n = res.summary["requests_log"]["rows_total"]
    written = None
    if out is not None:
        written = round((out / "invocations.parquet").stat().st_size / 2**20, 1)
        shutil.rmtree(out)
    name = f"day_w{workers}" if log is None else f"day8_{log}_w{workers}"
    return {
        "case": name,
        "functions": DAY["functions"],
        "invocations": n,
        "invocations_parquet_mb": written,
        "percentiles": res.summary["percentiles"],
        "wall_s": round(wall, 3),
        "engine_wall_s": round(res.summary["engine_wall_s"], 3),
        "invocations_per_s": round(n / wall),
        "engine_invocations_per_s": round(n / res.summary["engine_wall_s"]),
        "throttled": res.summary["throttled"],
        "evicted_for_memory": 0,
        "cold_starts": res.summary["cold_starts"],
        "peak_rss_mb": round(rss.stop(), 1),
        "peak_pss_mb": round(rss.peak_pss_mb, 1),
        "python": sys.version.split()[0],
    }


def reference_ratio(repeats: int = 3) -> dict:
    """Case a's engine against the minimal heapq loop of benchmarks/heapq_reference.py, side
    by side in one process (alternating, best of `repeats` each): the engine's speed as a
    fraction of the loop's (the issue's target: 0.5 or better)."""
    import heapq_reference
    from coldsim.engine.core import Engine
    from coldsim.scenario.loading import parse_scenario

    scenario = parse_scenario(CASES["a_nolimits"])
    best_engine = best_loop = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        heapq_reference.run()
        best_loop = min(best_loop, time.perf_counter() - t0)
        t0 = time.perf_counter()
        log = Engine(scenario).run()
        best_engine = min(best_engine, time.perf_counter() - t0)
    return {
        "case": "a_vs_heapq",
        "invocations": len(log.invocations["arrival_s"]),
        "engine_s": round(best_engine, 3),
        "heapq_loop_s": round(best_loop, 3),
        "speed_vs_heapq_loop": round(best_loop / best_engine, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": sys.version.split()[0],
    }


def run_case(name: str) -> dict:
    from coldsim import simulate

    if name == "a_vs_heapq":
        return reference_ratio()
    if name.startswith("day_w"):
        return run_day(int(name.removeprefix("day_w")))
    if name.startswith("day8_"):
        _, log, w = name.split("_")
        return run_day(int(w.removeprefix("w")), 100_000_000, log)

    t0 = time.perf_counter()
    # From plain data: validation (and trace reading) included. The plug-in policy of
    # a_observed lives in benchmarks/observing.py.
    res = simulate(CASES[name], allow_import=True)
    wall, engine_wall = time.perf_counter() - t0, res.summary["engine_wall_s"]
    n = len(res.invocations)
    return {
        "case": name,
        "invocations": n,
        "wall_s": round(wall, 3),
        "engine_wall_s": round(engine_wall, 3),
        "invocations_per_s": round(n / wall),
        "engine_invocations_per_s": round(n / engine_wall),
        "throttled": res.summary["throttled"],
        "evicted_for_memory": res.summary["instances_ended"]["pressure"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": sys.version.split()[0],
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
        return
    rows = []
    for name in [*CASES, "a_vs_heapq", "day_w1", "day_w2", *DAY8]:
        out = subprocess.run([sys.executable, __file__, "--case", name], check=True,
                             capture_output=True, text=True, cwd=ROOT).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    by = {r["case"]: r for r in rows}
    full, half = by["a"], by["a_half"]
    rss = (full["peak_rss_mb"] - half["peak_rss_mb"]) * 2**20
    rows.append({
        "case": "derived",
        "memory_bytes_per_invocation": round(rss / (full["invocations"] - half["invocations"]), 1),
        "memory_between": [half["invocations"], full["invocations"]],
        "limits_overhead": round(full["wall_s"] / by["a_nolimits"]["wall_s"] - 1, 3),
        "observed_policy_overhead": round(by["a_observed"]["wall_s"] / full["wall_s"] - 1, 3),
        "speed_vs_heapq_loop": by["a_vs_heapq"]["speed_vs_heapq_loop"],
        "day_speedup_2_workers": round(by["day_w1"]["wall_s"] / by["day_w2"]["wall_s"], 2),
        "day8_speedup_2_workers": round(
            by["day8_none_w1"]["wall_s"] / by["day8_none_w2"]["wall_s"], 2
        ),
    })  # fmt: skip
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
    for col in ("case", "invocations", "throttled", "wall s", "invocations/s", "engine inv/s",
                "peak RSS MB"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in rows[:-1]:
        if "wall_s" not in r:
            continue
        table.add_row(r["case"], f"{r['invocations']:,}", f"{r['throttled']:,}",
                      f"{r['wall_s']:.2f}", f"{r['invocations_per_s']:,}",
                      f"{r['engine_invocations_per_s']:,}", f"{r['peak_rss_mb']:,.0f}")  # fmt: skip
    Console(width=120).print(table)
    d = rows[-1]
    Console(width=120).print(
        f"peak RSS slope: {d['memory_bytes_per_invocation']} bytes per invocation; "
        f"non-binding limits cost {100 * d['limits_overhead']:+.1f}% wall time; a Python "
        f"policy observing every request {100 * d['observed_policy_overhead']:+.1f}%; case a's "
        f"engine runs at {d['speed_vs_heapq_loop']:.2f}x the speed of a minimal heapq loop"
    )


if __name__ == "__main__":
    main()
