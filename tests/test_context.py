"""Policies' context, timers and actions, stepped by hand; the context's counts against the
logs; misuse refused with PolicyError."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from coldsim import Controller, KeepAlivePolicy, PolicyError, parse_scenario, simulate
from conftest import ROOT, const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hosts import invariants


class Scripted(KeepAlivePolicy):
    """A fixed window; at start, schedules the calls of a script on its context."""

    idle_s: float = 5.0

    def start(self, function, rng, ctx):
        self._ctx = ctx
        SEEN.clear()
        for t, action in SCRIPT:
            ctx.call_at(t, lambda now, action=action: action(ctx, now))

    def keep_alive_s(self, end_s, instance_id):
        return self.idle_s


SCRIPT: list = []  # (time, action(ctx, now)) for the next run
SEEN: list = []


def scripted(write_trace, times, script, *, idle_s=5.0, hosts=None, duration_s=300.0):
    SCRIPT[:] = script
    data = scenario(function(arrivals={"process": "trace", "path": str(write_trace(times))},
                             init=const(2000), duration=const(1000)),
                    duration_s=duration_s)  # fmt: skip
    data["platform"]["keep_alive"] = {"policy": Scripted, "idle_s": idle_s}
    if hosts is not None:
        data["functions"][0]["host_memory_mb"] = 400
        data["platform"]["hosts"] = hosts
    return run(data)


def record(ctx, now):
    SEEN.append((now, ctx.instances("f"), ctx.idle_instances("f")))


def test_a_timer_prewarms_an_instance_that_a_request_finds_warm(write_trace):
    # Request at 0: cold on instance 0 (init 2 s, handler 1 s: ends 3, expires 8). At 50 the
    # policy pre-warms one ready at 100 (its init starts at 98). The request at 110 takes it
    # warm; it then idles under the policy's window (ends 111, expires 116): 200 is cold.
    res = scripted(write_trace, [0.0, 110.0, 200.0], [
        (50.0, lambda ctx, now: SEEN.append(ctx.prewarm("f", ready_at_s=100.0,
                                                        keep_alive_s=30.0))),
        (97.0, record), (99.0, record), (100.5, record), (110.5, record), (150.0, record),
    ])  # fmt: skip
    inv, inst = res.invocations, res.instances.set_index("instance_id")
    assert inv["cold"].tolist() == [True, False, True]
    assert inv["instance_id"].tolist() == [0, 1, 2]
    assert SEEN[0] == [1]
    assert inst.loc[1, "prewarmed"] and inst.loc[1, "created_s"] == 98.0
    np.testing.assert_allclose(inst["ended_s"], [8.0, 116.0, 208.0])
    counts = [(now, tuple(c), idle) for now, c, idle in SEEN[1:]]
    assert counts == [
        (97.0, (0, 0, 0, 1), []),  # asked for, its init not begun: pre-warming
        (99.0, (0, 0, 0, 1), []),  # initialising (for nobody yet): still pre-warming
        (100.5, (1, 0, 0, 0), [1]),  # ready and idle
        (110.5, (0, 1, 0, 0), []),  # serving the request of 110
        (150.0, (0, 0, 0, 0), []),
    ]


def test_retire_ends_an_idle_instance_at_once(write_trace):
    res = scripted(write_trace, [0.0, 20.0], [
        (10.0, lambda ctx, now: ctx.retire(ctx.idle_instances("f")[0])), (10.0, record),
    ], idle_s=600.0)  # fmt: skip
    assert res.invocations["cold"].tolist() == [True, True]
    inst = res.instances.set_index("instance_id")
    assert inst.loc[0, "ended_s"] == 10.0 and inst.loc[0, "end_reason"] == "idle"
    assert tuple(SEEN[0][1]) == (0, 0, 0, 0)


def test_extend_keeps_an_instance_warm_through_its_requests_and_never_shortens(write_trace):
    # Instance 0: busy 0-3 (init 2 s), then idle under a 5 s window. Kept warm to 50 at 4:
    # it serves 40 warm (ends 41) and stays to 50 (not 41 + 5); extending to 20 changes nothing.
    res = scripted(write_trace, [0.0, 40.0], [
        (4.0, lambda ctx, now: ctx.extend(0, 50.0)),
        (5.0, lambda ctx, now: ctx.extend(0, 20.0)),
    ])  # fmt: skip
    assert res.invocations["cold"].tolist() == [True, False]
    np.testing.assert_allclose(res.instances["ended_s"], [50.0])


def test_extend_reaches_a_busy_instances_next_idle_period(write_trace):
    res = scripted(write_trace, [0.0, 25.0], [(2.5, lambda ctx, now: ctx.extend(0, 30.0))])
    assert res.invocations["cold"].tolist() == [True, False]
    np.testing.assert_allclose(res.instances["ended_s"], [31.0])  # 26 + 5: past its floor


def test_retire_frees_host_memory_and_extend_holds_it(write_trace):
    # One 500 MB host, instances of 400 MB. Kept (extended) past its 1 s window, instance 0
    # serves 20 warm; kept again, it holds 400 MB at 30 until the policy retires it then.
    hosts = {"count": 1, "memory_mb": 500, "on_full": "drop"}
    res = scripted(write_trace, [0.0, 20.0, 100.0], [
        (3.5, lambda ctx, now: ctx.extend(0, 500.0)),
        (21.5, lambda ctx, now: ctx.extend(0, 500.0)),
        (30.0, lambda ctx, now: SEEN.append(ctx.host(0))),
        (30.0, lambda ctx, now: ctx.retire(ctx.idle_instances("f")[0])),
        (30.0, lambda ctx, now: SEEN.append(ctx.host(0))),
    ], idle_s=1.0, hosts=hosts)  # fmt: skip
    assert res.invocations["instance_id"].tolist() == [0, 0, 1]
    assert res.invocations["cold"].tolist() == [True, False, True]
    np.testing.assert_allclose(res.instances["ended_s"], [30.0, 104.0])
    before, after = SEEN
    assert before.idle_mb == 400.0 and before.free_mb == 100.0 and before.warm == {"f": 1}
    assert after.idle_mb == 0.0 and after.free_mb == 500.0 and after.warm == {}


def test_ticks_come_every_tick_s_within_the_span(write_trace):
    class Ticking(KeepAlivePolicy):
        tick_s: float = 100.0

        def start(self, function, rng, ctx):
            self._ticks = TICKS

        def keep_alive_s(self, end_s, instance_id):
            return 1.0

        def tick(self, now):
            self._ticks.append(now)

    TICKS: list[float] = []
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 0.1}),
                    duration_s=1000.0)  # fmt: skip
    data["platform"]["keep_alive"] = {"policy": Ticking}
    run(data)
    assert [100.0 * i for i in range(1, 10)] == TICKS


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda ctx, now: ctx.call_at(now - 1.0, print), "ctx.call_at(9.0, ...): the time must"),
        (lambda ctx, now: ctx.prewarm("nope"), "unknown function 'nope'"),
        (lambda ctx, now: ctx.prewarm("f", ready_at_s=now - 5), "is not a finite time >= now"),
        (lambda ctx, now: ctx.retire(0), "instance 0 is busy"),
        (lambda ctx, now: ctx.retire(7), "ctx.retire(7): no such instance"),
        (lambda ctx, now: ctx.extend(0, 5.0), "until_s must be a time >= now"),
        (lambda ctx, now: ctx.retire(0) if ctx.extend(0, 99.0) is None else None,
         "instance 0 is busy: only an idle on-demand instance can be retired"),
        (lambda ctx, now: 1 / 0, "timer: raised ZeroDivisionError"),
    ],
)
def test_misuse_is_a_policy_error_naming_the_policy_and_the_call(write_trace, action, message):
    with pytest.raises(PolicyError, match="keep-alive policy .*Scripted") as err:
        scripted(write_trace, [7.5], [(10.0, action)])  # busy 9.5-10.5
    assert message in str(err.value)


# -- controllers ------------------------------------------------------------------------------


def test_forecast_prewarm_step_by_step(write_trace):
    # Requests every 30 s from 5 s; init 1 s, handler 0.1 s, keep-alive 15 s: alone, every
    # request is cold (an instance expires 15.1 s after its request). The controller sees 2
    # requests a minute (alpha 1: the forecast is the last count) and keeps N = 1 warm: at 60
    # it pre-warms one (ready at 61) and keeps it warm to 180, through the requests it
    # serves; at 120, 180 and 240 it keeps that idle instance two more minutes.
    times = [5.0 + 30.0 * i for i in range(10)]
    data = scenario(function(arrivals={"process": "trace", "path": str(write_trace(times))},
                             init=const(1000), duration=const(100)),
                    duration_s=300.0, idle_s=15.0)  # fmt: skip
    alone = run(data)
    assert alone.invocations["cold"].all()
    data["platform"]["controllers"] = [{"policy": "forecast-prewarm", "alpha": 1.0}]
    res = run(data)
    assert res.invocations["cold"].tolist() == [True, True] + [False] * 8
    inst = res.instances.set_index("instance_id")
    assert inst["prewarmed"].tolist() == [False, False, True]
    assert (inst.loc[2, "created_s"], inst.loc[2, "ready_s"]) == (60.0, 61.0)
    assert inst.loc[2, "invocations"] == 8
    assert math.isnan(inst.loc[2, "ended_s"])  # kept to 360, past the horizon


def test_the_guides_forecast_prewarmer_is_short_and_works(tmp_path):
    code = (ROOT / "notebooks" / "ewma_prewarm.py").read_text()
    assert "```python\n" + code + "```" in (ROOT / "docs" / "policies.md").read_text()
    assert len(code.splitlines()) <= 40
    # 12 requests a minute, 5 s keep-alive: about e^-1 of requests are cold alone; with one
    # instance kept warm through each minute, only those finding it busy or before the first
    # decision.
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 0.2},
                             init=const(1000), duration=const(100)),
                    duration_s=3600.0, idle_s=5.0)  # fmt: skip
    alone = run(data).summary["cold_start_rate"]
    data["platform"]["controllers"] = [{"policy": "ewma_prewarm:EwmaPrewarm"}]
    sc = parse_scenario(data, base_dir=ROOT / "notebooks", allow_import=True)
    with_it = simulate(sc).summary["cold_start_rate"]
    assert alone > 0.3 and with_it < 0.05


def test_controllers_refuse_sharding():
    from coldsim import ScenarioError

    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"]["controllers"] = [{"policy": "forecast-prewarm"}]
    with pytest.raises(ScenarioError, match="platform.controllers"):
        simulate(parse_scenario(data), workers=2)


def test_a_controller_without_tick_s_is_refused():
    class NoPeriod(Controller):
        def tick(self, now):
            pass

    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"]["controllers"] = [{"policy": NoPeriod}]
    with pytest.raises(PolicyError, match="no tick_s"):
        run(data)


def test_the_forecast_prewarm_parameters_are_validated():
    from coldsim import ScenarioError

    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"]["controllers"] = [{"policy": "forecast-prewarm", "quantile": 1.5}]
    with pytest.raises(ScenarioError, match=r"platform.controllers.0.*quantile"):
        parse_scenario(data)


# -- the context's counts, checked against the logs ------------------------------------------


class Prober(Controller):
    """Every tick_s: records each function's counts (and each host's memory), then acts at
    random: pre-warms, retires or extends idle instances."""

    tick_s: float = 3.7
    act: bool = True

    def start(self, ctx, rng):
        self._ctx, self._rng = ctx, rng
        PROBES.clear()

    def tick(self, now):
        ctx, rng = self._ctx, self._rng
        counts = {f.name: ctx.instances(f.name) for f in ctx.functions}
        hosts = [ctx.host(h) for h in range(ctx.hosts)]
        PROBES.append((now, counts, hosts))
        if not self.act:
            return
        for f in ctx.functions:
            idle = ctx.idle_instances(f.name)
            u = rng.random()
            if u < 0.3:
                ctx.prewarm(f.name, int(rng.integers(1, 3)), keep_alive_s=float(rng.uniform(0, 10)))
            elif u < 0.5 and idle:
                ctx.retire(idle[int(rng.integers(len(idle)))])
            elif u < 0.7 and idle:
                ctx.extend(idle[-1], now + float(rng.uniform(0, 20)))


PROBES: list = []


def states_from_logs(res, now):
    """(idle, busy, initialising, prewarming) per function at `now`, from the logs alone."""
    inv, inst = res.invocations, res.instances
    served = inv[inv["status"] == "served"]
    out = {}
    for name in inst["function"].cat.categories:
        mine = inst[(inst["function"] == name) & (inst["end_reason"] != "unplaced")]
        n = [0, 0, 0, 0]
        for row in mine.itertuples():
            ended = math.inf if pd.isna(row.ended_s) else row.ended_s
            # Instances created or retired at `now` were so by the probe's tick, after it:
            # no other event falls on a probe's time (arrivals are Poisson, times continuous).
            if not row.created_s < now <= ended:
                continue
            reqs = served[served["instance_id"] == row.instance_id]
            taken = (reqs["arrival_s"] <= now).any()
            if now < row.ready_s:
                n[2 if taken else 3] += 1  # initialising for a request, or pre-warming
            elif ((reqs["start_s"] <= now) & (now < reqs["end_s"])).any():
                n[1] += 1
            else:
                n[0] += 1
        out[name] = tuple(n)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_fn=st.integers(1, 3),
    hosts=st.sampled_from([None, (1, 1000), (2, 600)]),
    idle_s=st.sampled_from([0.0, 4.0, 30.0]),
    act=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_the_context_counts_what_the_logs_show_and_actions_keep_the_invariants(
    n_fn, hosts, idle_s, act, seed
):
    fns = [{
        "name": f"f{i}", "host_memory_mb": 150 + 100 * i, "memory_mb": 128,
        "init": {"dist": "exponential", "mean_ms": 800},
        "duration": {"dist": "exponential", "mean_ms": 1500},
        "arrivals": {"process": "poisson", "rate_per_s": 0.4 + 0.3 * i},
    } for i in range(n_fn)]  # fmt: skip
    data = scenario(*fns, duration_s=80, seed=seed, idle_s=idle_s, max_lifetime_s=25.0)
    data["platform"]["controllers"] = [{"policy": Prober, "act": act}]
    if hosts is not None:
        data["platform"]["hosts"] = {"count": hosts[0], "memory_mb": hosts[1],
                                     "on_full": "queue", "max_wait_s": 5.0}  # fmt: skip
    sc = parse_scenario(data)
    res = simulate(sc)
    assert PROBES
    for now, counts, host_states in PROBES:
        assert {k: tuple(v) for k, v in counts.items()} == states_from_logs(res, now), now
        if hosts is not None:
            inst = res.instances
            ended = inst["ended_s"].fillna(np.inf)
            alive = (inst["host"] >= 0) & (inst["created_s"] < now) & (now <= ended)
            fp = {f.name: f.footprint_mb() for f in sc.functions}
            mb = inst["function"].astype(str).map(fp)
            for h, state in enumerate(host_states):
                held = mb[alive & (inst["host"] == h)].sum()
                assert state.free_mb == pytest.approx(hosts[1] - held)
                assert state.idle_mb + state.busy_mb == pytest.approx(held)
    # Invariants: every request ends once; a retired instance never serves again; no host
    # over its memory (test_hosts' checks).
    inv, inst = res.invocations, res.instances
    assert inv["request_id"].is_unique
    end_of = inst.set_index("instance_id")["ended_s"].fillna(np.inf)
    served = inv[inv["status"] == "served"]
    assert (served["end_s"].to_numpy() <= end_of[served["instance_id"]].to_numpy() + 1e-9).all()
    if hosts is not None:
        invariants(res, sc)


# -- the Knative autoscaler ------------------------------------------------------------------


def test_knative_scales_to_its_target_and_to_zero_after_the_grace_period(write_trace):
    # 20 requests/s of 1 s on instances of concurrency 10 (target 7): 20 in flight want 3
    # instances. Arrivals stop at 200: the stable average (60 s) falls, ready instances are
    # retired (ceil(avg / 7): 2 at 216, 1 at 240), the last one 30 s after the average
    # reached 0 (258 + 30).
    f = function("api", arrivals={"process": "periodic", "interval_s": 0.05, "end_s": 200.0},
                 init=const(500), duration=const(1000))  # fmt: skip
    f.update(instance_concurrency=10, cpu_bound=0.0)
    data = scenario(f, duration_s=400.0, idle_s=math.inf)
    data["platform"]["controllers"] = [{"policy": "knative"}]
    inst = run(data).instances
    np.testing.assert_allclose(inst["ended_s"], [216.0, 238.0, 288.0])
    assert (inst["end_reason"] == "idle").all()


class FakeContext:
    """A context whose in-flight requests and instances a test sets, recording actions."""

    def __init__(self, concurrency=10):
        from coldsim import FunctionInfo, InstanceCounts

        self.functions = [FunctionInfo(0, "f", None, 128.0, 128.0, 500.0, 100.0, concurrency)]
        self.flight, self.ready, self.actions = 0, 1, []
        self.counts = lambda: InstanceCounts(self.ready, 0, 0, 0)

    def in_flight(self, k):
        return self.flight

    def instances(self, k):
        return self.counts()

    def idle_instances(self, k):
        return list(range(self.ready))

    def prewarm(self, k, n):
        self.actions.append(("up", n))
        self.ready += n

    def retire(self, iid):
        self.actions.append(("down", iid))
        self.ready -= 1


def test_knative_panics_on_a_burst_keeps_its_peak_and_calms_down_after_a_stable_window():
    from coldsim.policies.controllers import Knative

    kpa = Knative(policy="knative")
    ctx = FakeContext()
    kpa.start(ctx, np.random.default_rng(0))
    ctx.flight, ctx.ready = 7, 1  # 7 in flight: 1 instance at target 7
    for t in range(1, 61):
        kpa.tick(float(t))
    assert ctx.actions == [] and ctx.ready == 1
    ctx.flight = 70  # a burst: the 6 s panic window wants 10 instances, 10x the ready one
    for t in range(61, 63):
        kpa.tick(float(t))
    # at 62: panic average (4 x 7 + 2 x 70) / 6 = 28 -> 4 instances >= 2 x 1 ready: panic;
    # the stable one, (58 x 7 + 2 x 70) / 60 = 9.1, wants 2; the panic count wins
    assert ctx.actions == [("up", 3)] and kpa._panic_since[0] == 62.0
    for t in range(63, 69):
        kpa.tick(float(t))
    assert ctx.ready == 10  # the whole panic window at 70: 10 instances
    ctx.flight = 7  # the burst is over; in panic it never scales down, until a stable
    # window (60 s) passed since it was last over the threshold (62): at 124 it leaves
    # panic, and scales down at most by half per decision (max_scale_down_rate 2)
    ready = {}
    for t in range(69, 200):
        kpa.tick(float(t))
        ready[t] = ctx.ready
    assert all(ready[t] == 10 for t in range(69, 124))
    assert kpa._panic_since[0] is None and ready[124] == 5
    assert ready[199] == 1


def test_a_plugin_misusing_its_context_stops_the_cli_with_exit_2(tmp_path):
    import subprocess
    import sys

    import yaml

    (tmp_path / "badctl.py").write_text(
        "from coldsim import Controller\n\n\n"
        "class RetireNothing(Controller):\n"
        "    tick_s: float = 10.0\n\n"
        "    def start(self, ctx, rng):\n"
        "        self._ctx = ctx\n\n"
        "    def tick(self, now):\n"
        "        self._ctx.retire(12345)\n"
    )
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"]["controllers"] = [{"policy": "badctl:RetireNothing"}]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [sys.executable, "-m", "coldsim", "run", "s.yaml", "--allow-import", "-q", "--out", "r"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "controller badctl:RetireNothing: ctx.retire(12345): no such instance" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "summary.json").exists()


class ActsInStart(KeepAlivePolicy):
    def start(self, function, rng, ctx):
        ctx.prewarm(function)

    def keep_alive_s(self, end_s, instance_id):
        return 1.0


def test_actions_in_start_are_refused_with_the_way_to_schedule_them():
    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"]["keep_alive"] = {"policy": ActsInStart}
    with pytest.raises(PolicyError, match=r"not running yet in start\(\); schedule it: ctx.call_at"):
        run(data)


def test_instances_kept_for_min_instances_are_not_retired(write_trace):
    # knative wants 0 instances with no traffic, but the minimum of 2 stays: idle_instances
    # leaves them out, and retiring one is refused.
    f = function("api", arrivals={"process": "trace", "path": str(write_trace([1.0, 250.0]))},
                 duration=const(100))  # fmt: skip
    f.update(instance_concurrency=4, min_instances=2, cpu_bound=0.0)
    data = scenario(f, duration_s=300.0, idle_s=math.inf)
    data["platform"]["controllers"] = [{"policy": "knative"}]
    res = run(data)
    assert res.invocations["cold"].tolist() == [False, False]  # the minimum serves both
