"""Reproduce the keep-alive-as-caching comparison of FaasCache (Fuerst & Sharma, ASPLOS 2021):
on ONE host, the cold-start percentage against the host's memory for the eviction policies
greedy-dual, lru and ttl, on the Azure 2019 sample of 100 functions (8 h). Writes
docs/faascache.csv and docs/faascache.png.

The trace conversion is FaasCache's (its simulator, aFuerst/faascache-sim, reads the Azure
2019 files this way):
- per-minute counts are spread evenly over the minute (coldsim's `equidistant` spread: c
  requests at the centres of c equal slots; FaasCache starts them at the slots' beginnings,
  half a slot earlier);
- a cold request takes the function's Maximum duration and a warm one its Average: in coldsim
  `duration` = constant Average ms and `init` = constant (Maximum - Average) ms, so the
  greedy-dual cost (cold time - warm time) is the init time;
- an instance holds the app's AverageAllocatedMb divided among the app's functions on the host
  (`host_memory_mb`). The excerpt's memory.csv is already per function (the In-Vitro sampler
  divided each app's memory evenly among the app's functions in the full trace): it is used
  as given;
- functions with at most one invocation in the replayed span are dropped.

Policies. greedy-dual and lru keep idle instances until they are evicted for memory (fixed
keep-alive of .inf), as FaasCache keeps containers. greedy-dual counts each instance's own
requests as its frequency; greedy-dual-function is the rule of FaasCache's code (a function's
frequency is the sum over its resident instances, which all share one priority). ttl keeps
an idle instance 10 minutes (FaasCache's TTL) and never evicts for memory: a request that
finds the host full of idle instances is dropped. faascache-sim's own TTL baseline also
evicts under memory pressure, least recently used first: that is `ttl+lru` (10 minutes,
eviction lru), drawn for comparison.
A request that finds no memory, even after evicting every idle instance the policy allows, is
dropped (`on_full: drop`, FaasCache's rule). Idle instances are reused newest first
(coldsim's default). No account limits, no scaling limit, no recycling (the provider's view).
The first hour is a warm-up, left out of the statistics.

Cold starts are reported as % of all requests (cold_pct) and, as faascache-sim's plots count
them (misses / (hits + misses)), as % of served requests (cold_pct_of_served).

    .venv/bin/python benchmarks/reproduce_faascache.py [TRACE_FOLDER] [--hours 8]
        [--sizes 1,2,3,4,6,8,12,16] [--sample N]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from coldsim import parse_scenario, simulate, style

ROOT = Path(__file__).resolve().parents[1]
SIZES_GB = [1, 2, 3, 4, 6, 8, 12, 16]
POLICIES = {  # name: (keep-alive, eviction under memory pressure)
    "greedy-dual": ({"policy": "fixed", "idle_s": math.inf}, "greedy-dual"),
    # FaasCache's code's rule: a function's frequency sums its resident containers' counts,
    # and all of them share one priority (coldsim's `greedy-dual` counts per instance).
    "greedy-dual-function": ({"policy": "fixed", "idle_s": math.inf},
                             {"policy": "greedy-dual", "frequency": "function"}),
    "lru": ({"policy": "fixed", "idle_s": math.inf}, "lru"),
    "ttl": ({"policy": "fixed", "idle_s": 600}, "ttl"),
    "ttl+lru": ({"policy": "fixed", "idle_s": 600}, "lru"),
}


def functions(trace: Path, hours: float, sample: int | None = None, seed: int = 1) -> list[dict]:
    """The trace's functions converted the FaasCache way (see the module docstring), replaying
    the first `hours` of the trace; `sample` keeps that many of them (drawn with `seed`)."""
    inv = pd.read_csv(trace / "invocations.csv")
    durations = pd.read_csv(trace / "durations.csv").set_index("HashFunction")
    memory = pd.read_csv(trace / "memory.csv").set_index("HashFunction")
    minute_cols = [c for c in inv.columns if c.isdigit()]
    span = minute_cols[: int(round(hours * 60))]
    if len(span) < hours * 60:
        raise ValueError(f"{trace} has only {len(minute_cols) / 60:g} h of minutes")
    keep = inv[span].sum(axis=1) > 1
    keep &= inv["HashFunction"].isin(durations.index) & inv["HashFunction"].isin(memory.index)
    rows = inv[keep]
    if sample is not None and sample < len(rows):
        pick = np.random.default_rng(seed).choice(len(rows), size=sample, replace=False)
        rows = rows.iloc[np.sort(pick)]
    out = []
    for key, app in zip(rows["HashFunction"], rows["HashApp"], strict=True):
        warm = float(durations.at[key, "Average"])
        cold = max(float(durations.at[key, "Maximum"]), warm)
        mb = float(memory.at[key, "AverageAllocatedMb"])
        out.append({
            "name": key[:12], "app": app[:12],
            "memory_mb": int(min(10240, max(128, math.ceil(mb)))),  # prices only
            "host_memory_mb": mb,
            "duration": {"dist": "constant", "value_ms": warm},
            "init": {"dist": "constant", "value_ms": cold - warm},
            "arrivals": {"process": "azure2019", "invocations": str(trace / "invocations.csv"),
                         "function": key, "spread": "equidistant",
                         "minutes": [int(span[0]), int(span[-1])]},
        })  # fmt: skip
    if len({f["name"] for f in out}) != len(out):
        raise ValueError("function hash prefixes collide: use longer names")
    return out


def scenario(funcs: list[dict], hours: float, memory_gb: float, policy: str,
             warmup_s: float = 3600) -> dict:  # fmt: skip
    """One host of memory_gb, the policy's keep-alive and eviction, FaasCache's drop rule."""
    keep_alive, eviction = POLICIES[policy]
    return {
        "name": f"faascache-{policy.replace('+', '-')}-{memory_gb:g}gb", "seed": 1,
        "duration_s": hours * 3600, "warmup_s": warmup_s,
        "platform": {
            "keep_alive": keep_alive, "eviction": eviction,
            "hosts": {"count": 1, "memory_mb": memory_gb * 1024, "placement": "first-fit",
                      "on_full": "drop"},
            "max_lifetime_s": None, "concurrency_limit": None, "scaling": None,
        },
        "functions": funcs,
    }  # fmt: skip


def cache_curve(trace: Path, hours: float = 8, sizes_gb=SIZES_GB, policies=tuple(POLICIES),
                sample: int | None = None, warmup_s: float = 3600,
                log=None) -> pd.DataFrame:  # fmt: skip
    """One row per policy x host size: cold starts and drops as % of the requests that
    arrived after the warm-up, instances evicted for memory, wasted (idle) host memory."""
    funcs = functions(trace, hours, sample)
    rows = []
    for policy in policies:
        for gb in sizes_gb:
            started = time.perf_counter()
            res = simulate(parse_scenario(scenario(funcs, hours, gb, policy, warmup_s)))
            s, h = res.summary, res.summary["hosts"]
            n = s["invocations"]
            rows.append({
                "policy": policy, "memory_gb": gb, "functions": len(funcs), "invocations": n,
                "cold_pct": 100 * s["cold_starts"] / n,
                "drop_pct": 100 * s["dropped_no_memory"] / n,
                "cold_or_drop_pct": 100 * (s["cold_starts"] + s["dropped_no_memory"]) / n,
                "cold_pct_of_served": 100 * (s["cold_start_rate"] or 0.0),
                "cold_starts": s["cold_starts"], "dropped": s["dropped_no_memory"],
                "served": s["served"],
                "evictions_pressure": s["instances_ended"]["pressure"],
                "ended_idle": s["instances_ended"]["idle"],
                "utilisation": h["utilisation"], "busy_utilisation": h["busy_utilisation"],
                "peak_used_mb": h["host_peak_used_mb"], "wasted_gb_s": h["wasted_gb_s"],
                "wall_s": time.perf_counter() - started,
            })  # fmt: skip
            if log:
                log(rows[-1])
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame, metric: str = "cold_pct", best: str = "greedy-dual",
            rivals=("lru", "ttl")) -> tuple[bool, str]:  # fmt: skip
    """Whether `best` has the lowest `metric` among itself and `rivals` at every size (a tie
    counts as lowest), and one line saying so, with the numbers where it does not."""
    pivot = table.pivot(index="memory_gb", columns="policy", values=metric)
    others = pivot[[r for r in rivals if r in pivot.columns]]
    losses, ties = [], []
    for gb, row in pivot.iterrows():
        rival = others.loc[gb].idxmin()
        if row[best] > row[rival] + 1e-9:
            losses.append(f"{gb:g} GB: {best} {row[best]:.3g}% vs {rival} {row[rival]:.3g}%")
        elif row[best] > row[rival] - 1e-9:
            ties.append(f"{gb:g} GB")
    against = " and ".join(others.columns)
    tied = f" (tied at {', '.join(ties)})" if ties else ""
    if not losses:
        return True, f"YES: {best} has the lowest {metric} against {against} at every size{tied}"
    return False, (
        f"NO: {best} has the lowest {metric} against {against} at {len(pivot) - len(losses)} "
        f"of {len(pivot)} sizes{tied}; not at " + "; ".join(losses)
    )


def figure(table: pd.DataFrame, title: str):
    """Cold starts (log scale) and drops (% of requests) against host memory, per policy."""
    fig, (ax, ax2) = style.figures(1, 2, 11, 4.3)
    for i, (policy, rows) in enumerate(table.groupby("policy", sort=False)):
        rows = rows.sort_values("memory_gb")
        line = {"marker": "os^Dv"[i % 5], "color": style.color(i), "label": policy,
                "linestyle": ":" if policy == "ttl+lru" else "-"}  # fmt: skip
        ax.plot(rows["memory_gb"], rows["cold_pct"], **line)
        ax2.plot(rows["memory_gb"], rows["drop_pct"], **line)
    sizes = sorted(table["memory_gb"].unique())
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_xticks(sizes, [f"{g:g}" for g in sizes])
        a.minorticks_off()
        a.set_xlabel("host memory (GB)")
    ax.set_yscale("log")
    ax.set(ylabel="cold starts (% of requests, log scale)", title=title)
    ax2.set_ylim(bottom=0)
    ax2.set(ylabel="requests dropped for lack of memory (%)", title="dropped requests")
    ax.legend()
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("COLDSIM_TRACES", str(ROOT.parent / "shared" / "traces"))
    ap.add_argument("trace", nargs="?", type=Path,
                    default=Path(default) / "azure2019_dirigent_100")  # fmt: skip
    ap.add_argument("--hours", type=float, default=8)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES_GB)),
                    help="host memory sizes, GB, comma-separated")  # fmt: skip
    ap.add_argument("--sample", type=int, default=None, help="keep N functions at random")
    args = ap.parse_args()
    sizes = [float(x) if "." in x else int(x) for x in args.sizes.split(",")]
    started = time.perf_counter()
    cols = ["policy", "memory_gb", "cold_pct", "drop_pct", "evictions_pressure", "wall_s"]
    table = cache_curve(args.trace, args.hours, sizes, sample=args.sample,
                        log=lambda row: print({k: row[k] for k in cols}, flush=True))  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(4).to_string(index=False))
    print(verdict(table)[1])
    print("(cold or dropped)", verdict(table, "cold_or_drop_pct")[1])
    print(f"{len(table)} runs in {time.perf_counter() - started:.0f} s")
    (ROOT / "docs").mkdir(exist_ok=True)
    table.round(6).to_csv(ROOT / "docs" / "faascache.csv", index=False)
    n = int(table["functions"].iloc[0])
    title = f"One host, {args.trace.name}: {n} functions, {args.hours:g} h (1 h warm-up)"
    figure(table, title).savefig(ROOT / "docs" / "faascache.png", dpi=120)


if __name__ == "__main__":
    main()
