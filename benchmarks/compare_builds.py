"""Speed of this checkout against another, side by side in one run (the machine is shared and
noisy: rounds alternate between the builds, and medians and minima of wall and CPU time are
reported; CPU time suffers least from other tenants).

    .venv/bin/python benchmarks/compare_builds.py OTHER_CHECKOUT [--case a] [--rounds 7]

OTHER_CHECKOUT is a source tree of coldsim (e.g. `git worktree add /tmp/old <commit>`); its
package is imported from its own folder (`coldsim`, or `simulator` before the rename), with
this environment's dependencies. Cases are benchmarks/bench.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = """
import json, sys, time
sys.path.insert(0, {bench!r})
from bench import CASES
try:
    from coldsim import simulate
except ImportError:
    from simulator import simulate
t0, c0 = time.perf_counter(), time.process_time()
r = simulate(CASES[{case!r}])
print(json.dumps({{"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "engine_s": r.summary["engine_wall_s"], "invocations": len(r.invocations)}}))
"""


def one(tree: Path, shim: Path, case: str) -> dict:
    code = CODE.format(bench=str(ROOT / "benchmarks"), case=case)
    env = {**os.environ, "PYTHONPATH": f"{shim}{os.pathsep}{tree}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=shim, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", type=Path)
    ap.add_argument("--case", default="a")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    builds = {"this": ROOT, "other": args.other.resolve()}
    shims = {}
    for name, tree in builds.items():  # a folder on the path that maps `coldsim` to the tree
        shims[name] = Path(tempfile.mkdtemp(prefix=f"coldsim-{name}-"))
        (shims[name] / "coldsim").symlink_to(tree / "simulator")
    runs: dict[str, list[dict]] = {name: [] for name in builds}
    for _ in range(args.rounds):
        for name, tree in builds.items():
            runs[name].append(one(tree, shims[name], args.case))
            print(json.dumps({"build": name, **runs[name][-1]}), flush=True)
    summary = {"case": args.case, "rounds": args.rounds}
    for key in ("engine_s", "wall_s", "cpu_s"):
        for stat in (statistics.median, min):
            this = stat(r[key] for r in runs["this"])
            other = stat(r[key] for r in runs["other"])
            summary[f"{key}_{stat.__name__}_this_over_other"] = round(this / other, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
