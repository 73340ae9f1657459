"""Conservation and invariants on generated scenarios, and agreement with a naive model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from coldsim import parse_scenario
from coldsim.rng import stream
from conftest import run
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reference import replay

ms = st.floats(min_value=0, max_value=20_000, allow_nan=False)
distributions = st.one_of(
    st.builds(lambda v: {"dist": "constant", "value_ms": v}, ms),
    st.builds(lambda m: {"dist": "exponential", "mean_ms": m}, st.floats(1, 20_000)),
    st.builds(lambda a, b: {"dist": "uniform", "low_ms": min(a, b), "high_ms": max(a, b)}, ms, ms),
    st.builds(lambda m, s: {"dist": "lognormal", "median_ms": m, "sigma": s},
              st.floats(1, 5_000), st.floats(0, 1.5)),
)  # fmt: skip
simple_processes = st.one_of(
    st.builds(lambda r: {"process": "poisson", "rate_per_s": r}, st.floats(0.02, 4)),
    st.builds(
        lambda i, o: {"process": "periodic", "interval_s": i, "offset_s": o},
        st.floats(0.5, 60),
        st.floats(0, 30),
    ),
    st.builds(
        lambda a, b, d: {"process": "mmpp", "rates_per_s": [a, b], "mean_durations_s": [d, 3 * d]},
        st.floats(0, 5),
        st.floats(0.1, 5),
        st.floats(1, 50),
    ),
    st.builds(
        lambda r, a, p: {"process": "diurnal", "base_rate_per_s": r, "amplitude": a, "period_s": p},
        st.floats(0.05, 3),
        st.floats(0, 1),
        st.floats(10, 500),
    ),
    st.builds(
        lambda rs, i: {"process": "piecewise", "rates_per_s": rs, "interval_s": i},
        st.lists(st.floats(0, 3), min_size=1, max_size=5),
        st.floats(5, 100),
    ),
)
windowed = st.builds(
    lambda p, a, w: {**p, "start_s": a, "end_s": a + w},
    simple_processes,
    st.floats(0, 100),
    st.floats(1, 200),
)
arrival_processes = st.one_of(
    simple_processes,
    windowed,
    st.builds(lambda ps: {"process": "composite", "processes": ps}, st.lists(simple_processes, min_size=1, max_size=3)),
)  # fmt: skip


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 3))
    return {
        "name": "generated",
        "seed": draw(st.integers(0, 2**32)),
        "duration_s": (duration := draw(st.floats(10, 300))),
        "warmup_s": draw(st.floats(0, duration * 0.5)),
        "platform": {
            "keep_alive": {"policy": "fixed", "idle_s": draw(st.floats(0, 120))},
            "idle_selection": draw(st.sampled_from(["newest", "mru", "lru", "random"])),
            "max_lifetime_s": draw(st.one_of(st.none(), st.floats(1, 400))),
        },
        "functions": [
            {
                "name": f"fn{k}",
                "memory_mb": draw(st.integers(128, 4096)),
                "init": draw(distributions),
                "duration": draw(distributions),
                "arrivals": draw(arrival_processes),
            }
            for k in range(n)
        ],  # fmt: skip
    }


# HYPOTHESIS_PROFILE=thorough runs 25x more examples (see conftest.py).
CHECK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Zero-time handlers make instances finish exactly when a request arrives: ties in end times
# that the pools must break by instance id, as documented.
TIES = {
    "name": "ties", "seed": 0, "duration_s": 10.0, "warmup_s": 0.0,
    "platform": {"keep_alive": {"policy": "fixed", "idle_s": 2.0}, "idle_selection": "lru",
                 "max_lifetime_s": None},
    "functions": [{"name": "fn0", "memory_mb": 128, "init": {"dist": "constant", "value_ms": 5000},
                   "duration": {"dist": "constant", "value_ms": 0},
                   "arrivals": {"process": "periodic", "interval_s": 1.0, "offset_s": 0.0}}],
}  # fmt: skip


@CHECK
@given(scenarios())
@example(TIES)
@example({**TIES, "platform": {**TIES["platform"], "idle_selection": "mru"}})
def test_invariants_and_agreement_with_reference(data):
    res = run(data)
    sc = parse_scenario(data)
    inv, inst = res.invocations, res.instances

    # Conservation: every generated arrival is logged exactly once, in time order.
    for f in sc.functions:
        rng = stream(sc.seed, f.name, "arrivals")
        expected = np.concatenate([np.empty(0), *f.arrivals.batches(rng, sc.duration_s)])
        logged = inv.loc[inv["function"] == f.name, "arrival_s"].to_numpy()
        np.testing.assert_array_equal(logged, expected)
    assert (np.diff(inv["arrival_s"].to_numpy()) >= 0).all()
    assert inv["counted"].equals(inv["arrival_s"] >= sc.warmup_s)
    assert res.summary["invocations"] == int(inv["counted"].sum())

    # Per-request timing.
    np.testing.assert_array_equal(inv["start_s"] >= inv["arrival_s"], True)
    np.testing.assert_allclose(inv["latency_ms"], inv["init_ms"] + inv["duration_ms"], atol=1e-6)
    assert (inv.loc[~inv["cold"], "init_ms"] == 0).all()

    # Instances: one cold start each, which creates it; executions never overlap; nothing
    # starts on an instance after it ended; each instance serves one function.
    assert len(inst) == int(inv["cold"].sum())
    by = inv.sort_values(["instance_id", "arrival_s"], kind="stable")
    first = ~by["instance_id"].duplicated()
    assert by["cold"].equals(first)
    created = inst["created_s"].to_numpy()[by["instance_id"]]
    np.testing.assert_array_equal(by.loc[first, "arrival_s"], created[first.to_numpy()])
    same = by["instance_id"].to_numpy()[1:] == by["instance_id"].to_numpy()[:-1]
    assert (by["arrival_s"].to_numpy()[1:][same] >= by["end_s"].to_numpy()[:-1][same]).all()
    ended = inst["ended_s"].to_numpy()[by["instance_id"]]
    assert not (by["start_s"].to_numpy() > ended).any()
    assert not (by["end_s"].to_numpy() > ended).any()
    assert (inst.groupby("instance_id")["function"].nunique() == 1).all()
    assert inst["invocations"].sum() == len(inv)
    assert ((inst["end_reason"] == "alive") == inst["ended_s"].isna()).all()

    # Keep-alive and lifetime: a warm start arrives before the previous end + idle_s and
    # before the retirement age.
    idle_s = sc.platform.keep_alive.idle_s
    life = sc.platform.max_lifetime_s or np.inf
    prev_end = by["end_s"].to_numpy()[:-1][same]
    t = by["arrival_s"].to_numpy()[1:][same]
    assert (t < prev_end + idle_s).all()
    assert (t < created[1:][same] + life).all()

    # Decisions agree with the naive model (random selection has its own statistical test).
    if sc.platform.idle_selection.policy != "random":
        for f in sc.functions:
            rows = inv[inv["function"] == f.name]
            ids = rows["instance_id"].to_numpy()
            local = pd.factorize(ids)[0]  # order of first use = order of creation
            inits = inst.set_index("instance_id").loc[pd.unique(ids), "init_ms"].to_numpy()
            expected = replay(
                rows["arrival_s"].to_numpy(), rows["duration_ms"].to_numpy(), inits,
                idle_s=idle_s, max_lifetime_s=sc.platform.max_lifetime_s,
                selection=sc.platform.idle_selection.policy,
            )  # fmt: skip
            assert list(zip(rows["cold"], local, strict=True)) == expected


def test_same_seed_same_logs_and_different_seed_different_logs():
    data = {
        "name": "det", "seed": 11, "duration_s": 2000, "warmup_s": 100,
        "platform": {"idle_selection": "random"},
        "functions": [
            {"name": "a", "duration": {"dist": "gamma", "mean_ms": 300, "cv": 2},
             "arrivals": {"process": "poisson", "rate_per_s": 3}},
            {"name": "b", "duration": {"dist": "lognormal", "median_ms": 50, "sigma": 1},
             "arrivals": {"process": "poisson", "rate_per_s": 0.5}},
        ],
    }  # fmt: skip
    one, two = run(data), run(data)
    pd.testing.assert_frame_equal(one.invocations, two.invocations)
    pd.testing.assert_frame_equal(one.instances, two.instances)
    strip = lambda s: {k: v for k, v in s.items() if not k.endswith("wall_s")}  # noqa: E731
    assert strip(one.summary) == strip(two.summary)
    other = run({**data, "seed": 12})
    assert not np.array_equal(other.invocations["arrival_s"], one.invocations["arrival_s"])


def test_a_function_traffic_does_not_depend_on_other_functions():
    # Streams are keyed by function name: adding a function leaves the others' samples alone.
    f = {"name": "a", "duration": {"dist": "exponential", "mean_ms": 100},
         "arrivals": {"process": "poisson", "rate_per_s": 2}}  # fmt: skip
    g = {**f, "name": "b"}
    alone = run({"name": "x", "seed": 3, "duration_s": 500, "functions": [f]}).invocations
    both = run({"name": "x", "seed": 3, "duration_s": 500, "functions": [g, f]}).invocations
    cols = ["arrival_s", "duration_ms", "init_ms", "cold"]
    pd.testing.assert_frame_equal(
        alone[cols].reset_index(drop=True),
        both.loc[both["function"] == "a", cols].reset_index(drop=True),
    )


@st.composite
def platform_scenarios(draw):
    """Scenarios where limits, async retries, provisioned concurrency and warmers all bite."""
    n = draw(st.integers(1, 3))
    limited = draw(st.booleans())
    functions = []
    for k in range(n):
        f = {
            "name": f"fn{k}",
            "init": draw(distributions),
            "duration": {"dist": "exponential", "mean_ms": draw(st.floats(100, 8000))},
            "arrivals": {"process": "poisson", "rate_per_s": draw(st.floats(1, 40))},
            "invocation": draw(st.sampled_from(["sync", "async"])),
            "max_event_age_s": draw(st.floats(60, 200)),
            "app": draw(st.sampled_from(["x", "y", None])),
        }
        if limited and draw(st.booleans()):
            f["reserved_concurrency"] = draw(st.integers(5, 15))
        cap = f.get("reserved_concurrency", 1000)
        if draw(st.booleans()):
            f["provisioned_concurrency"] = draw(st.one_of(
                st.integers(0, min(cap, 4)),
                st.lists(st.builds(lambda a, c: {"at_s": a, "count": c}, st.floats(0, 60),
                                   st.integers(0, min(cap, 4))), min_size=1, max_size=3,
                         unique_by=lambda s: s["at_s"]).map(lambda xs: sorted(xs, key=lambda s: s["at_s"])),
            ))  # fmt: skip
        if draw(st.booleans()):
            f["warmer"] = {
                "interval_s": draw(st.floats(5, 40)),
                "concurrency": draw(st.integers(1, 3)),
            }
        functions.append(f)
    reserved = sum(f.get("reserved_concurrency", 0) for f in functions)
    pc = sum(
        _peak(f.get("provisioned_concurrency", 0))
        for f in functions
        if "reserved_concurrency" not in f
    )
    # AWS keeps 100 unreserved (beyond provisioned units): the limit binds but stays valid.
    limit = 100 + reserved + pc + draw(st.integers(0, 40)) if limited else None
    scope = draw(st.sampled_from(["function", "app"]))
    # Requests may queue behind busy instances of their own function (not with shared ones).
    routing = draw(st.sampled_from(["pack", "wait-for-warm"])) if scope == "function" else "pack"
    return {
        "name": "platform",
        "seed": draw(st.integers(0, 2**32)),
        "duration_s": 60.0,
        "warmup_s": draw(st.floats(0, 30)),
        "platform": {
            "keep_alive": {
                "policy": "random",
                "idle_s": {"dist": "uniform", "low_s": 0, "high_s": 20},
            },
            "idle_selection": draw(st.sampled_from(["newest", "mru", "lru", "random"])),
            "max_lifetime_s": draw(st.one_of(st.none(), st.floats(5, 100))),
            "concurrency_limit": limit,
            "instance_scope": scope,
            "routing": routing,
            "scaling": draw(
                st.one_of(
                    st.none(),
                    st.builds(
                        lambda i, p: {"instances": i, "per_s": p},
                        st.integers(1, 50),
                        st.floats(1, 30),
                    ),
                )
            ),
        },  # fmt: skip
        "functions": functions,
    }


@CHECK
@given(platform_scenarios())
def test_platform_invariants(data):
    res = run(data)
    sc = parse_scenario(data)
    inv, inst, thr = res.invocations, res.instances, res.throttles
    status = inv["status"].astype(str).to_numpy()
    ok = status == "served"

    # Every arrival ends exactly once: served, throttled (sync) or dropped (async).
    assert inv["request_id"].is_unique
    for f in sc.functions:
        rng = stream(sc.seed, f.name, "arrivals")
        expected = np.concatenate([np.empty(0), *f.arrivals.batches(rng, sc.duration_s)])
        rows = inv[(inv["function"] == f.name) & (inv["kind"] == "user")]
        np.testing.assert_array_equal(np.sort(rows["arrival_s"].to_numpy()), expected)
        allowed = {"served", "dropped"} if f.invocation == "async" else {"served", "throttled"}
        assert set(rows["status"].astype(str)) <= allowed
        if f.warmer:
            pings = np.ceil((sc.duration_s - f.warmer.offset_s) / f.warmer.interval_s)
            assert (inv["function"] == f.name).sum() - len(rows) == pings * f.warmer.concurrency
    final = thr[thr["outcome"] != "retry"]
    assert sorted(final["request_id"]) == sorted(inv.loc[~ok, "request_id"])
    attempts = thr.groupby("request_id").size().reindex(inv["request_id"], fill_value=0).to_numpy()
    assert (inv["attempts"].to_numpy() == attempts + ok).all()

    # Instances: never two requests at once (none even sent to a busy one, unless routing
    # queues it behind), nothing after the end, provisioned ones serve without cold starts,
    # on-demand ones are cold exactly on first use.
    dispatch = inv["arrival_s"] + inv["queue_delay_ms"] / 1000
    by = (
        inv[ok]
        .assign(dispatch=dispatch[ok])
        .sort_values(["instance_id", "start_s"], kind="stable")
    )
    ids = by["instance_id"].to_numpy()
    same = ids[1:] == ids[:-1]
    queues = sc.platform.routing.routes()
    first_moment = by["start_s" if queues else "dispatch"].to_numpy()
    assert (first_moment[1:][same] >= by["end_s"].to_numpy()[:-1][same] - 1e-9).all()
    if queues:  # a warm request's wait behind a busy instance is its instance_wait_ms
        warm = ~by["cold"].to_numpy()
        waited = (by["start_s"] - by["dispatch"]).to_numpy()[warm] * 1000
        np.testing.assert_allclose(by["instance_wait_ms"].to_numpy()[warm], waited, atol=1e-6)
    else:
        assert "instance_wait_ms" not in inv
    ended = inst["ended_s"].to_numpy()[ids]
    assert not (by["end_s"].to_numpy() > ended + 1e-9).any()
    pc = inst["provisioned"].to_numpy()[ids]
    assert (by["provisioned"].to_numpy() == pc).all()
    assert not (by["cold"].to_numpy() & pc).any()
    first = np.r_[True, ~same]
    assert (by["cold"].to_numpy() == (first & ~pc)).all()
    assert (~inst["provisioned"]).sum() == int(by["cold"].sum())

    # Concurrency never exceeds its limit: on-demand requests in flight plus provisioned
    # instances configured, per reserved function and over the unreserved pool.
    od = by[~by["provisioned"].to_numpy()]
    od_begin = np.where(od["cold"], inst["created_s"].to_numpy()[od["instance_id"]], od["dispatch"])
    limit = sc.platform.concurrency_limit
    if limit is not None:
        reserved = {f.name: f.reserved_concurrency for f in sc.functions}
        unreserved_cap = limit - sum(r or 0 for r in reserved.values())
        groups = [([n], r) for n, r in reserved.items() if r is not None]
        groups.append(([n for n, r in reserved.items() if r is None], unreserved_cap))
        for names, cap in groups:
            rows = od["function"].isin(names).to_numpy()
            begins, ends = od_begin[rows], od["end_s"].to_numpy()[rows]
            pc_rows = by[by["provisioned"].to_numpy() & by["function"].isin(names).to_numpy()]
            pc_begin, pc_end = pc_rows["dispatch"].to_numpy(), pc_rows["end_s"].to_numpy()
            for t in begins:
                in_flight = np.count_nonzero((begins <= t) & (ends > t))
                # Provisioned units: the configured count, or more while surplus ones still run.
                configured = sum(
                    _configured(f, t, sc.duration_s) for f in sc.functions if f.name in names
                )
                pc_busy = np.count_nonzero((pc_begin <= t) & (pc_end > t))
                assert in_flight + max(configured, pc_busy) <= cap

    # The scaling rate: replaying the bucket over on-demand creations never goes negative.
    scaling = sc.platform.scaling
    if scaling is not None:
        rate = scaling.instances / scaling.per_s
        for f in sc.functions:
            made = inst[(inst["function"] == f.name) & ~inst["provisioned"]]["created_s"].to_numpy()
            tokens, last = float(scaling.instances), 0.0
            for t in made:
                tokens = min(scaling.instances, tokens + (t - last) * rate) - 1
                last = t
                assert tokens >= -1e-9

    # Async retries follow the backoff: 1 s doubling, capped at 5 min.
    for _, rows in thr.groupby("request_id"):
        gaps = np.diff(rows["time_s"].to_numpy())
        np.testing.assert_allclose(gaps, np.minimum(2.0 ** np.arange(len(gaps)), 300.0))

    s = res.summary
    for block in [s, *s["per_function"].values()]:
        assert block["invocations"] == block["served"] + block["throttled"]
    assert s["cost_usd"]["total"] == pytest.approx(
        sum(v for k, v in s["cost_usd"].items() if k != "total"))  # fmt: skip


def _peak(pc) -> int:
    return pc if isinstance(pc, int) else max((s["count"] for s in pc), default=0)


def _configured(f, t, duration_s):
    count = 0
    for step in f.provisioned_schedule():
        if step.at_s <= t and step.at_s < duration_s:
            count = step.count
    return count
