"""Host classes with cores, speed and price; requests sharing a host's cores, stepped by
hand; invariants with heterogeneous hosts."""

from __future__ import annotations

import numpy as np
import pytest
from coldsim import ScenarioError, parse_scenario, simulate
from conftest import const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def on_hosts(write_trace, times, classes, cpu="shared", dur_ms=1000.0, duration_s=100.0):
    f = function("f", arrivals={"process": "trace", "path": str(write_trace(times))},
                 duration=const(dur_ms))  # fmt: skip
    f["host_memory_mb"] = 100
    data = scenario(f, duration_s=duration_s, idle_s=60.0)
    data["platform"]["hosts"] = {"classes": classes, "cpu": cpu}
    return run(data)


ONE_CORE = [{"name": "small", "count": 1, "memory_mb": 1000, "cpus": 1}]


def test_two_requests_on_a_one_core_host_take_twice_as_long(write_trace):
    res = on_hosts(write_trace, [0.0, 0.0], ONE_CORE)
    np.testing.assert_allclose(res.invocations["end_s"], [2.0, 2.0])
    np.testing.assert_allclose(res.invocations["duration_ms"], [2000.0, 2000.0])  # billed so
    alone = on_hosts(write_trace, [0.0, 0.0], ONE_CORE, cpu="none")  # no contention modelled
    np.testing.assert_allclose(alone.invocations["end_s"], [1.0, 1.0])


def test_a_host_at_speed_2_halves_handler_time(write_trace):
    fast = [{"name": "fast", "count": 1, "memory_mb": 1000, "cpus": 1, "speed": 2.0}]
    res = on_hosts(write_trace, [0.0], fast)
    np.testing.assert_allclose(res.invocations["end_s"], [0.5])


def test_processor_sharing_step_by_step(write_trace):
    # 2 cores: A alone from 0 (1 s of work); at 0.5 B and C join: 3 on 2 cores run at 2/3.
    # A's last 0.5 s take 0.75 s (ends 1.25); then B and C, 0.5 s left each, run alone.
    two = [{"name": "two", "count": 1, "memory_mb": 1000, "cpus": 2}]
    res = on_hosts(write_trace, [0.0, 0.5, 0.5], two)
    np.testing.assert_allclose(res.invocations["end_s"], [1.25, 1.75, 1.75])


def test_classes_are_numbered_in_order_priced_and_summarised(write_trace):
    classes = [
        {"name": "big", "count": 1, "memory_mb": 150, "cpus": 4, "price_per_hour": 2.0},
        {"name": "small", "count": 2, "memory_mb": 100, "cpus": 1, "price_per_hour": 0.5},
    ]  # fmt: skip
    # 100 MB instances: the first on host 0 (big); the second, at once, on host 1 (small).
    res = on_hosts(write_trace, [0.0, 0.0], classes, duration_s=3600.0)
    assert res.instances["host"].tolist() == [0, 1]
    hosts = res.summary["hosts"]
    assert hosts["count"] == 3 and hosts["memory_mb"] == 150
    big, small = hosts["classes"]["big"], hosts["classes"]["small"]
    assert big["host_hours"] == 1.0 and big["cost_usd"] == 2.0
    assert small["host_hours"] == 2.0 and small["cost_usd"] == 1.0
    assert hosts["cost_usd"] == 3.0
    assert big["cpu_utilisation"] == pytest.approx(1.0 / (4 * 3600))  # 1 s on 1 of 4 cores
    assert small["cpu_utilisation"] == pytest.approx(1.0 / (2 * 3600))
    table = res.host_table()
    assert list(table["class"]) == ["big", "small", "small"]
    np.testing.assert_allclose(table["memory_mb"], [150, 100, 100])
    np.testing.assert_allclose(table["cpus"], [4, 1, 1])
    np.testing.assert_allclose(table["cpu_utilisation"], [1 / (4 * 3600), 1 / 3600, 0.0])


def test_host_class_errors_name_the_field():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1.0})
    data = scenario(f)
    data["platform"]["hosts"] = [{"name": "a", "count": 1, "memory_mb": 512, "speed": 0}]
    with pytest.raises(ScenarioError, match=r"platform.hosts\[0\].speed: Input should be great"):
        parse_scenario(data)
    data["platform"]["hosts"] = {"count": 2, "memory_mb": 1000, "cpu": "shared",
                                 "classes": [{"name": "a", "count": 1, "memory_mb": 512}]}
    with pytest.raises(ScenarioError, match="give count and memory_mb, or classes"):
        parse_scenario(data)
    f["instance_concurrency"] = 4
    data["platform"]["hosts"] = {"classes": [{"name": "a", "count": 1, "memory_mb": 4096}],
                                 "cpu": "shared"}  # fmt: skip
    with pytest.raises(ScenarioError, match="instance_concurrency > 1 not modelled with"):
        parse_scenario(scenario(f, **{}) | {"platform": data["platform"]})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cores=st.lists(st.sampled_from([None, 1, 2, 4]), min_size=1, max_size=3),
    speeds=st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=3, max_size=3),
    cpu=st.sampled_from(["none", "shared"]),
    on_full=st.sampled_from(["drop", "queue"]),
    seed=st.integers(0, 1000),
)
def test_invariants_with_host_classes(cores, speeds, cpu, on_full, seed):
    classes = [{"name": f"c{i}", "count": 1 + i % 2, "memory_mb": 300 + 200 * i, "cpus": c,
                "speed": speeds[i]} for i, c in enumerate(cores)]  # fmt: skip
    fns = [{"name": f"f{i}", "host_memory_mb": 150, "memory_mb": 128,
            "init": {"dist": "exponential", "mean_ms": 300},
            "duration": {"dist": "exponential", "mean_ms": 1500},
            "arrivals": {"process": "poisson", "rate_per_s": 1.0 + i}} for i in range(2)]  # fmt: skip
    data = scenario(*fns, duration_s=60.0, seed=seed, idle_s=5.0)
    data["platform"]["hosts"] = {"classes": classes, "cpu": cpu, "on_full": on_full,
                                 "max_wait_s": 3.0}  # fmt: skip
    sc = parse_scenario(data)
    res = simulate(sc)
    inv, inst = res.invocations, res.instances
    assert inv["request_id"].is_unique
    # No host over its own memory.
    capacity = np.array(sc.platform.hosts.per_host("memory_mb"))
    ended = inst["ended_s"].fillna(np.inf).to_numpy()
    placed = inst["host"].to_numpy() >= 0
    for t in inst["created_s"].to_numpy()[placed]:
        alive = placed & (inst["created_s"].to_numpy() <= t) & (ended > t)
        held = np.bincount(inst["host"].to_numpy()[alive], weights=np.full(alive.sum(), 150.0),
                           minlength=len(capacity))  # fmt: skip
        assert (held <= capacity + 1e-9).all()
    # A request runs its handler time / its host's speed when the host's cores are not
    # shared, never faster when they are (same draws: the handler times of an all-speed-1,
    # uncontended run of the same traffic).
    plain = {**data["platform"]["hosts"], "cpu": "none",
             "classes": [{**c, "speed": 1.0} for c in classes]}  # fmt: skip
    base = simulate(parse_scenario({**data, "platform": {**data["platform"], "hosts": plain}}))
    b = base.invocations.set_index("request_id")
    served = inv[inv["status"] == "served"].set_index("request_id")
    both = served.index.intersection(b.index[b["status"] == "served"])
    host = inst["host"].to_numpy()[served.loc[both, "instance_id"].to_numpy()]
    speed = np.array(sc.platform.hosts.per_host("speed"))[host]
    alone = b.loc[both, "duration_ms"].to_numpy() / speed
    took = served.loc[both, "duration_ms"].to_numpy()
    shared = np.array([c is not None and cpu == "shared"
                       for c in sc.platform.hosts.per_host("cpus")])[host]  # fmt: skip
    np.testing.assert_allclose(took[~shared], alone[~shared], rtol=1e-9, atol=1e-6)
    assert (took[shared] >= alone[shared] - 1e-6).all()


def test_host_classes_together_stay_within_the_host_limit():
    f = function(arrivals={"process": "poisson", "rate_per_s": 1.0})
    data = scenario(f)
    data["platform"]["hosts"] = [{"name": n, "count": 60_000, "memory_mb": 4096} for n in "ab"]
    with pytest.raises(ScenarioError, match="120,000 hosts in all; at most 100,000"):
        parse_scenario(data)
