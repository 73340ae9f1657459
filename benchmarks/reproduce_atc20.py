"""Reproduce the keep-alive trade-off of "Serverless in the Wild" (Shahrad et al., USENIX ATC
2020, Fig. 15 style) on the Azure 2019 sample of 500 functions: fixed keep-alive of 5 to 120
minutes against the hybrid-histogram policy with 1 to 4 hour ranges.

x: wasted memory time (GB-s of idle instances, pre-warmed ones included, at the memory the
trace gives each function: `idle_footprint_gb_s`) normalised to the fixed 10-minute
keep-alive; y: the 75th percentile across applications of their cold-start
percentage. Writes docs/atc20_tradeoff.csv and .png.

    .venv/bin/python benchmarks/reproduce_atc20.py [TRACE_FOLDER] [--hours 8] [--sample N]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from coldsim import parse_scenario, simulate, style
from coldsim.runtimes import DEFAULT_RUNTIME, init_preset

ROOT = Path(__file__).resolve().parents[1]
FIXED_MIN = [5, 10, 20, 30, 45, 60, 90, 120]
HYBRID_H = [1, 2, 3, 4]


def scenario(trace: Path, hours: float, keep_alive: dict, sample: int | None,
             platform: dict | None = None) -> dict:  # fmt: skip
    """The `research` preset (no account limits, no recycling, the trace's own memory: no
    Lambda floor); one app's functions share warm instances (the paper's unit is the
    application). `platform`: more platform fields."""
    workload = {"format": "azure2019", "path": str(trace), "spread": "equidistant"}
    if sample:
        workload["select"] = {"sample": sample}
    # The traces give no init times: a hello-world's, as trace to-scenario writes (the
    # trade-off's axes do not depend on it).
    workload["function"] = {"init": dict(init_preset(DEFAULT_RUNTIME))}
    return {
        "name": "atc20", "seed": 1, "duration_s": hours * 3600, "warmup_s": 3600,
        "platform": {"preset": "research", "keep_alive": keep_alive, "instance_scope": "app",
                     **(platform or {})},
        "workload": workload,
    }  # fmt: skip


def tradeoff(trace: Path, hours: float = 8, sample: int | None = None,
             fixed_min=FIXED_MIN, hybrid_h=HYBRID_H, log=None, extra=(),
             allow_import: bool = False) -> pd.DataFrame:  # fmt: skip
    """One row per policy: its wasted memory (GB-s, and normalised to fixed 10 min) and the
    75th percentile of application cold-start percentages. `extra`: more policies, each
    (label, family, knob, keep-alive, platform fields), e.g. with controllers."""
    policies = [(f"fixed {m} min", "fixed", m, {"policy": "fixed", "idle_s": m * 60}, None)
                for m in fixed_min]  # fmt: skip
    policies += [(f"hybrid {h} h", "hybrid", h,
                  {"policy": "hybrid-histogram", "range_s": h * 3600}, None)
                 for h in hybrid_h]  # fmt: skip
    policies += list(extra)
    rows = []
    for label, family, knob, keep_alive, platform in policies:
        data = scenario(trace, hours, keep_alive, sample, platform)
        res = simulate(parse_scenario(data, allow_import=allow_import))
        rows.append({"policy": label, "family": family, "knob": knob,
                     "wasted_gb_s": res.summary["idle_footprint_gb_s"],
                     "app_cold_pct_p75": res.summary["app_cold_pct"]["p75"],
                     "cold_start_rate": res.summary["cold_start_rate"],
                     "wall_s": res.summary["wall_s"]})  # fmt: skip
        if log:
            log(rows[-1])
    table = pd.DataFrame(rows)
    base = table.loc[table["policy"] == "fixed 10 min", "wasted_gb_s"]
    table["wasted_normalised"] = table["wasted_gb_s"] / (base.iloc[0] if len(base) else np.nan)
    return table


def dominates(table: pd.DataFrame) -> bool:
    """Whether every fixed policy is beaten by some hybrid one on both axes (or matched on
    one and beaten on the other)."""
    hybrid = table[table["family"] == "hybrid"]
    for _, f in table[table["family"] == "fixed"].iterrows():
        better = ((hybrid["wasted_gb_s"] <= f["wasted_gb_s"])
                  & (hybrid["app_cold_pct_p75"] <= f["app_cold_pct_p75"]))  # fmt: skip
        if not better.any():
            return False
    return True


YLABEL = {
    "app_cold_pct_p75": "3rd quartile of app cold-start %",
    "cold_pct": "cold starts (% of all requests)",
}


def figure(table: pd.DataFrame, title: str, y: str = "app_cold_pct_p75", ax=None):
    """y against normalised wasted memory, one line per family; y: a YLABEL key (cold_pct
    is computed from cold_start_rate). Drawn into `ax` if given."""
    fig = None
    if ax is None:
        fig, ax = style.figure(7, 4.5)
    table = table.assign(cold_pct=100 * table["cold_start_rate"])
    for i, (family, rows) in enumerate(table.groupby("family", sort=False)):
        rows = rows.sort_values("wasted_normalised")
        ax.plot(rows["wasted_normalised"], rows[y], marker="os^Dv"[i % 5],
                color=style.color(i), label=family)  # fmt: skip
        for _, r in rows.iterrows():
            ax.annotate(r["policy"].split(" ", 1)[-1], (r["wasted_normalised"], r[y]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set(xlabel="wasted memory time (normalised to fixed 10 min)", ylabel=YLABEL[y],
           title=title)  # fmt: skip
    ax.legend()
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("COLDSIM_TRACES", str(ROOT.parent / "shared" / "traces"))
    ap.add_argument("trace", nargs="?", type=Path,
                    default=Path(default) / "azure2019_dirigent_azure_500")  # fmt: skip
    ap.add_argument("--hours", type=float, default=8)
    ap.add_argument("--sample", type=int, default=None)
    args = ap.parse_args()
    table = tradeoff(args.trace, args.hours, args.sample, log=lambda row: print(row, flush=True))
    print(table.to_string(index=False))
    print("hybrid dominates fixed keep-alive:", dominates(table))
    (ROOT / "docs").mkdir(exist_ok=True)
    table.to_csv(ROOT / "docs" / "atc20_tradeoff.csv", index=False)
    figure(table, f"Keep-alive trade-off, {args.trace.name}, {args.hours:g} h").savefig(
        ROOT / "docs" / "atc20_tradeoff.png", dpi=120
    )


if __name__ == "__main__":
    main()
