"""The summary against brute-force recomputation from the logs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import function, run, scenario

LATENCY_KEYS = {"mean", "p50", "p90", "p95", "p99", "p999", "max"}
METRIC_KEYS = {
    "invocations", "cold_starts", "cold_start_rate", "latency_ms", "latency_ms_cold",
    "latency_ms_warm", "instances_created", "mean_instances", "mean_busy_instances",
    "mean_idle_instances", "peak_instances", "idle_gb_s", "busy_gb_s",
}  # fmt: skip


@pytest.fixture(scope="module")
def result():
    data = scenario(
        function("a", arrivals={"process": "poisson", "rate_per_s": 0.5}, memory_mb=512,
                 duration={"dist": "exponential", "mean_ms": 3000},
                 init={"dist": "uniform", "low_ms": 100, "high_ms": 900}),
        function("b", arrivals={"process": "periodic", "interval_s": 7, "offset_s": 1},
                 memory_mb=2048, duration={"dist": "constant", "value_ms": 9000}),
        duration_s=600, warmup_s=120, idle_s=20, max_lifetime_s=200,
    )  # fmt: skip
    return run(data)


def test_summary_has_every_key(result):
    s = result.summary
    assert METRIC_KEYS | {"seed", "duration_s", "warmup_s", "simulated_events", "wall_s",
                          "coldsim_version", "per_function"} <= set(s)  # fmt: skip
    for block in [s, *s["per_function"].values()]:
        assert set(block) >= METRIC_KEYS
        for key in ("latency_ms", "latency_ms_cold", "latency_ms_warm"):
            assert set(block[key]) == LATENCY_KEYS
    assert set(s["per_function"]) == {"a", "b"}
    assert s["simulated_events"] >= len(result.invocations)


def test_counts_and_latencies(result):
    inv, s = result.invocations, result.summary
    counted = inv[inv["counted"]]
    for name, block in [(None, s), *s["per_function"].items()]:
        rows = counted if name is None else counted[counted["function"] == name]
        assert block["invocations"] == len(rows)
        assert block["cold_starts"] == int(rows["cold"].sum())
        assert block["cold_start_rate"] == pytest.approx(rows["cold"].mean())
        lat = rows["latency_ms"].to_numpy()
        for key, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
            assert block["latency_ms"][key] == pytest.approx(np.percentile(lat, q))
        assert block["latency_ms"]["max"] == pytest.approx(lat.max())
        cold = rows.loc[rows["cold"], "latency_ms"]
        assert block["latency_ms_cold"]["mean"] == pytest.approx(cold.mean())
        assert block["latency_ms_warm"]["p95"] == pytest.approx(
            np.percentile(rows.loc[~rows["cold"], "latency_ms"], 95)
        )


def test_time_averages_against_a_dense_grid(result):
    inv, inst, s = result.invocations, result.instances, result.summary
    w0, w1 = 120.0, 600.0
    dt = 0.001
    grid = np.arange(w0, w1, dt) + dt / 2
    ended = inst["ended_s"].fillna(np.inf).to_numpy()
    for name, block in s["per_function"].items():
        i_rows = inst[inst["function"] == name]
        alive = sum(((grid >= c) & (grid < e)).astype(int)
                    for c, e in zip(i_rows["created_s"], ended[i_rows.index], strict=True))  # fmt: skip
        r = inv[inv["function"] == name]
        begin = np.where(r["cold"], inst["created_s"].to_numpy()[r["instance_id"]], r["start_s"])
        busy = sum(((grid >= b) & (grid < e)).astype(int)
                   for b, e in zip(begin, r["end_s"], strict=True))  # fmt: skip
        # Midpoint sampling errs by at most dt/2 per interval edge inside the window.
        tol = (2 * (len(i_rows) + len(r)) * dt / 2) / (w1 - w0)
        assert block["mean_instances"] == pytest.approx(alive.mean(), abs=tol)
        assert block["mean_busy_instances"] == pytest.approx(busy.mean(), abs=tol)
        assert block["mean_idle_instances"] == pytest.approx((alive - busy).mean(), abs=tol)
        gb = {"a": 0.5, "b": 2.0}[name]
        assert block["idle_gb_s"] == pytest.approx(block["mean_idle_instances"] * gb * (w1 - w0))
        assert block["busy_gb_s"] == pytest.approx(block["mean_busy_instances"] * gb * (w1 - w0))
        assert block["peak_instances"] == alive.max()
        created = i_rows["created_s"]
        assert block["instances_created"] == int(((created >= w0) & (created < w1)).sum())
    assert s["mean_instances"] == pytest.approx(
        sum(b["mean_instances"] for b in s["per_function"].values())
    )
    assert s["peak_instances"] <= sum(b["peak_instances"] for b in s["per_function"].values())


def test_occupancy_series_integrates_to_the_window_means(result):
    from coldsim.reporting.intervals import occupancy

    edges = np.linspace(120.0, 600.0, 49)
    busy, alive = occupancy(result.invocations, result.instances, edges)
    assert busy.mean() == pytest.approx(result.summary["mean_busy_instances"])
    assert alive.mean() == pytest.approx(result.summary["mean_instances"])


def test_empty_window_statistics_are_null():
    data = scenario(function(arrivals={"process": "periodic", "interval_s": 1000}), duration_s=500)
    s = run(data).summary  # one request, cold: no warm latencies
    assert s["latency_ms_warm"] == dict.fromkeys(LATENCY_KEYS)
    assert s["cold_start_rate"] == 1.0
