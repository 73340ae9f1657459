"""benchmarks/synthetic_day.py: a seeded Azure 2019 day that coldsim's readers take as it is."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
from coldsim.workload.traces import azure2019
from conftest import ROOT

spec = importlib.util.spec_from_file_location("synthetic_day", ROOT / "benchmarks/synthetic_day.py")
synthetic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(synthetic)


def test_a_tiny_day_reads_back_with_its_totals_and_shape(tmp_path):
    paths = synthetic.synthetic_day(tmp_path / "day", functions=40, requests=50_000, seed=3)
    assert {p.name for p in (tmp_path / "day").iterdir()} == {
        synthetic.INVOCATIONS,
        synthetic.DURATIONS,
        synthetic.MEMORY,
    }  # no temporary file left behind
    files = azure2019.find_files(tmp_path / "day")
    assert files == paths
    inv = azure2019.read_invocations(files["invocations"])
    assert inv.shape == (40, 1440)
    assert inv.minutes.tolist() == list(range(1, 1441))
    assert int(inv.totals().sum()) == 50_000  # exactly the requests asked for
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in inv.functions)
    assert len(set(inv.functions)) == 40
    assert len(set(inv.apps)) < 40 and len(set(inv.owners)) <= len(set(inv.apps))
    assert set(inv.triggers) <= set(synthetic.TRIGGERS)
    # Diurnal: the evening (hours 15-21) busier than the early morning (hours 3-9).
    by_hour = inv.counts.sum(axis=0).reshape(24, 60).sum(axis=1)
    assert by_hour[15:21].sum() > 1.5 * by_hour[3:9].sum()
    # Daily counts spread over orders of magnitude.
    daily = inv.totals()
    assert daily.max() > 100 * max(1, np.median(daily))
    durations = azure2019.read_durations(files["durations"])
    assert set(durations.index) == set(inv.functions)
    ordered = durations[list(azure2019.DURATION_PERCENTILES.values())].to_numpy()
    assert (np.diff(ordered, axis=1) >= 0).all()
    raw = pd.read_csv(files["durations"], index_col="HashFunction")
    assert (raw.loc[inv.functions, "Count"].to_numpy() == daily).all()
    memory, per_function = azure2019.read_memory(files["memory"])
    assert not per_function and set(memory.index) == set(inv.apps) and (memory > 0).all()


def test_the_same_seed_writes_the_same_files(tmp_path):
    a = synthetic.synthetic_day(tmp_path / "a", functions=7, requests=1000, seed=5)
    b = synthetic.synthetic_day(tmp_path / "b", functions=7, requests=1000, seed=5)
    c = synthetic.synthetic_day(tmp_path / "c", functions=7, requests=1000, seed=6)
    for kind in a:
        assert a[kind].read_bytes() == b[kind].read_bytes()
    assert a["invocations"].read_bytes() != c["invocations"].read_bytes()


def test_a_scenario_replays_the_synthetic_day(tmp_path):
    from coldsim import parse_scenario

    synthetic.synthetic_day(tmp_path / "day", functions=12, requests=3000, seed=1)
    sc = parse_scenario(
        {"name": "synthetic", "duration_s": 86400,
         "workload": {"format": "azure2019", "path": str(tmp_path / "day")}}
    )  # fmt: skip
    assert len(sc.functions) == 12
    assert sum(f.arrivals.counts().sum() for f in sc.functions) == 3000
    assert all(f.memory_mb >= 128 and f.duration is not None for f in sc.functions)
