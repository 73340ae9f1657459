"""Golden logs: refactors of the engine must reproduce these runs exactly (same seed, same
bytes in every log column, same summary). Recorded before the engine was split into modules.

To re-record after an intended change of behaviour (say so in the commit):
    COLDSIM_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest
from coldsim import load_scenario, parse_scenario, simulate
from conftest import ROOT, TRACES

GOLDEN = ROOT / "tests" / "golden"
WRITE = os.environ.get("COLDSIM_WRITE_GOLDEN") == "1"
#: Summary keys that measure the machine, not the model.
UNSTABLE = {"wall_s", "engine_wall_s", "coldsim_version"}


def bundled(name: str, duration_s: float | None = None):
    return lambda: load_scenario(ROOT / "scenarios" / f"{name}.yaml", duration_s=duration_s)


def azure_replay():
    return parse_scenario({
        "name": "golden-replay", "seed": 3, "duration_s": 3600,
        "platform": {"keep_alive": {"policy": "random"}, "idle_selection": "lru"},
        "workload": {"format": "azure2019", "path": str(TRACES / "azure2019_dirigent_100"),
                     "select": {"top": 20}, "spread": "poisson"},
    })  # fmt: skip


CASES = {
    "default": bundled("default"),
    "mixed-backend": bundled("mixed-backend", duration_s=6 * 3600),
    "provisioned-vs-warmers": bundled("provisioned-vs-warmers", duration_s=12 * 3600),
    "bursty-diurnal": bundled("bursty-diurnal", duration_s=6 * 3600),
    "azure-replay": azure_replay,
}


def _column_digest(column: pd.Series) -> str:
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        payload = codes.astype(np.int64).tobytes() + "\0".join(column.cat.categories).encode()
    else:
        payload = column.to_numpy().astype(column.dtype.str).tobytes()
    return hashlib.sha256(payload).hexdigest()[:24]


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in UNSTABLE}
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def fingerprint(result) -> dict:
    out = {}
    for table in ("invocations", "instances", "throttles"):
        frame = getattr(result, table)
        out[table] = {
            "rows": len(frame),
            "columns": {c: _column_digest(frame[c]) for c in frame.columns},
        }
    out["summary"] = _clean(result.summary)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_logs_are_reproduced_exactly(case):
    if case == "azure-replay" and not TRACES.is_dir():
        pytest.skip(f"no shared traces at {TRACES}")
    got = json.loads(json.dumps(fingerprint(simulate(CASES[case]()))))
    path = GOLDEN / f"{case}.json"
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    for table in ("invocations", "instances", "throttles"):
        assert got[table]["rows"] == want[table]["rows"], table
        for column, digest in want[table]["columns"].items():
            assert got[table]["columns"].get(column) == digest, f"{table}.{column} changed"
    assert _without_new_keys(got["summary"], want["summary"]) == want["summary"]


def _without_new_keys(got, want):
    """Keys added since the recording are allowed; every recorded one must be identical."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _without_new_keys(got.get(k), v) for k, v in want.items()}
    return got
