"""Multi-request instances (functions' instance_concurrency > 1): routing (pack and
least-loaded), requests joining an instance still initialising, keep-alive from load 0,
recycling, CPU sharing, limits counted in requests, validation and busy time in the report,
stepped by hand; invariants under hypothesis, with an independent processor-sharing replay."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import userpolicies  # noqa: F401  (its policies are trusted by name)
from coldsim import KeepAlivePolicy, ScenarioError, parse_scenario
from coldsim.reporting.intervals import _weighted_peaks, multi_request_functions, occupancy
from coldsim.reporting.summary import per_host
from coldsim.rng import stream
from conftest import const, function, run, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def multi(tmp_path):
    """Run one function whose requests arrive at `times` (with their own handler times when
    `works_ms` is given, else `dur_ms` each), on instances serving up to `n` requests.
    cpu_bound 0 (no CPU contention) unless asked."""

    def go(
        times, *, n, routing=None, init_ms=0.0, dur_ms=1000.0, works_ms=None, idle_s=600.0,
        max_lifetime_s=None, cpu_bound=0.0, vcpus=None, memory_mb=1024, selection="newest",
        function_extra=None, platform_extra=None, **kw,
    ):  # fmt: skip
        path = tmp_path / "arrivals.csv"
        if works_ms is None:
            path.write_text("timestamp_s\n" + "".join(f"{t!r}\n" for t in times))
        else:
            rows = "".join(f"{t!r},{w!r}\n" for t, w in zip(times, works_ms, strict=True))
            path.write_text("timestamp_s,duration_ms\n" + rows)
        f = function(
            arrivals={"process": "csv" if works_ms is not None else "trace", "path": str(path)},
            init=const(init_ms),
            duration=None if works_ms is not None else const(dur_ms),
            memory_mb=memory_mb,
        )
        if works_ms is not None:
            del f["duration"]
        if n is not None:
            f["instance_concurrency"] = n
        f["cpu_bound"] = cpu_bound
        if vcpus is not None:
            f["instance_vcpus"] = vcpus
        f.update(function_extra or {})
        data = scenario(f, duration_s=100.0, idle_s=idle_s, selection=selection,
                        max_lifetime_s=max_lifetime_s, **kw)  # fmt: skip
        if routing is not None:
            data["platform"]["routing"] = routing
        data["platform"].update(platform_extra or {})
        return run(data)

    return go


def column(res, name):
    return res.invocations[name].tolist()


def ended(res):
    inst = res.instances
    return list(zip(inst["ended_s"].tolist(), inst["end_reason"].astype(str), strict=True))


# -- routing ---------------------------------------------------------------------------------

# N = 2, init 0.5 s, handler 4 s. At 0 instance 0 is created (ready 0.5); the request at 0.1
# joins it while it initialises (cold, 0.4 s wait); at 0.2 it is full: instance 1 (ready 0.7).
# Instance 0 is idle from 4.5, instance 1 from 4.7 (newest first in the idle pool). At 5, 5.5
# and 6: pack fills instance 1 (5 and 5.5), then takes idle instance 0 (6); least-loaded takes
# the idle ones first (1 at 5, 0 at 5.5), then the least busy: both at load 1, instance 1
# reached it first (at 5).
TWO = [0.0, 0.1, 0.2, 5.0, 5.5, 6.0]


@pytest.mark.parametrize(
    ("routing", "late", "ends"),
    [
        (None, [1, 1, 0], [(20.0, "idle"), (19.5, "idle")]),  # the default is pack
        ("pack", [1, 1, 0], [(20.0, "idle"), (19.5, "idle")]),
        ("least-loaded", [1, 0, 1], [(19.5, "idle"), (20.0, "idle")]),
    ],
)
def test_pack_and_least_loaded_stepped_by_hand(multi, routing, late, ends):
    res = multi(TWO, n=2, routing=routing, init_ms=500, dur_ms=4000, idle_s=10.0)
    assert column(res, "instance_id") == [0, 0, 1, *late]
    assert column(res, "cold") == [True, True, True, False, False, False]
    np.testing.assert_allclose(column(res, "start_s"), [0.5, 0.5, 0.7, 5.0, 5.5, 6.0])
    np.testing.assert_allclose(column(res, "end_s"), [4.5, 4.5, 4.7, 9.0, 9.5, 10.0])
    np.testing.assert_allclose(column(res, "init_ms"), [500, 400, 500, 0, 0, 0])
    np.testing.assert_allclose(column(res, "latency_ms"), [4500, 4400, 4500, 4000, 4000, 4000])
    assert res.summary["instances_created"] == 2
    assert ended(res) == ends
    assert res.instances["invocations"].tolist() == [3, 3]


# N = 3, no init, handler 10 s. 0, 1, 2 fill instance 0 (ending 10, 11, 12); 3 opens instance
# 1 (ends 13). At 10.5 instance 0 serves 2, instance 1 serves 1: pack joins the busiest (0),
# least-loaded the least busy (1). At 11.5: pack, instance 0 at 2 vs 1 at 1 -> 0 again;
# least-loaded, 0 at 1 vs 1 at 2 -> 0.
@pytest.mark.parametrize(
    ("routing", "picks", "ends", "served"),
    [
        ("pack", [0, 0], [(31.5, "idle"), (23.0, "idle")], [5, 1]),
        ("least-loaded", [1, 0], [(31.5, "idle"), (30.5, "idle")], [4, 2]),
    ],
)
def test_busiest_versus_least_busy_open_instance(multi, routing, picks, ends, served):
    res = multi([0.0, 1.0, 2.0, 3.0, 10.5, 11.5], n=3, routing=routing, dur_ms=10_000,
                idle_s=10.0)  # fmt: skip
    assert column(res, "instance_id") == [0, 0, 0, 1, *picks]
    assert column(res, "cold") == [True, False, False, True, False, False]
    np.testing.assert_allclose(column(res, "start_s"), [0, 1, 2, 3, 10.5, 11.5])
    np.testing.assert_allclose(column(res, "end_s"), [10, 11, 12, 13, 20.5, 21.5])
    assert ended(res) == ends
    assert res.instances["invocations"].tolist() == served


@pytest.mark.parametrize("routing", ["pack", "least-loaded"])
def test_ties_go_to_the_instance_that_reached_the_load_first(multi, routing):
    # N = 3: instance 1 reaches load 2 at 4 (its 2nd request); instance 0 comes down to load 2
    # at 10 (its first request ends). At 10.5 both serve 2: instance 1 reached 2 first, and
    # takes the request (not the lower id).
    res = multi([0.0, 1.0, 2.0, 3.0, 4.0, 10.5], n=3, routing=routing, dur_ms=10_000,
                idle_s=10.0)  # fmt: skip
    assert column(res, "instance_id") == [0, 0, 0, 1, 1, 1]
    assert ended(res) == [(22.0, "idle"), (30.5, "idle")]


# N = 2, init 2 s, handler 0.1 s. Instance 0 (created 0, ready 2) takes the requests at 0 and
# 0.1 (the second waits 1.9 s of its init); at 0.2 it is full: instance 1 (ready 2.2). At 2.15
# instance 0 is idle (since 2.1) and instance 1 still initialises with room for one more.
JOIN = [0.0, 0.1, 0.2, 2.15]


#: As JOIN, but the fourth request comes at 0.3, when no instance is idle: it joins instance 1.
JOIN_BUSY = [0.0, 0.1, 0.2, 0.3]


@pytest.mark.parametrize("routing", ["pack", "least-loaded"])
def test_a_request_joining_an_initialising_instance_waits_for_the_rest_of_its_init(multi, routing):
    res = multi(JOIN_BUSY, n=2, routing=routing, init_ms=2000, dur_ms=100)
    assert column(res, "instance_id") == [0, 0, 1, 1]
    assert column(res, "cold") == [True, True, True, True]
    np.testing.assert_allclose(column(res, "start_s"), [2.0, 2.0, 2.2, 2.2])
    np.testing.assert_allclose(column(res, "end_s"), [2.1, 2.1, 2.3, 2.3])
    np.testing.assert_allclose(column(res, "init_ms"), [2000, 1900, 2000, 1900])
    np.testing.assert_allclose(column(res, "latency_ms"), [2100, 2000, 2100, 2000])
    np.testing.assert_allclose(column(res, "duration_ms"), [100] * 4)
    assert res.summary["cold_starts"] == 4 and res.summary["instances_created"] == 2
    assert res.instances["init_ms"].tolist() == [2000.0, 2000.0]  # each instance's whole init


def test_pack_takes_an_idle_instance_rather_than_wait_for_an_init(multi):
    # At 2.15 instance 0 is idle and instance 1 initialises with room: pack fills ready
    # instances first, and an idle one spares the request the rest of an init.
    res = multi(JOIN, n=2, routing="pack", init_ms=2000, dur_ms=100)
    assert column(res, "instance_id") == [0, 0, 1, 0]
    assert column(res, "cold") == [True, True, True, False]


def test_least_loaded_takes_the_idle_instance_rather_than_wait_for_an_init(multi):
    res = multi(JOIN, n=2, routing="least-loaded", init_ms=2000, dur_ms=100)
    assert column(res, "instance_id") == [0, 0, 1, 0]
    assert column(res, "cold") == [True, True, True, False]
    np.testing.assert_allclose(column(res, "start_s"), [2.0, 2.0, 2.2, 2.15])
    np.testing.assert_allclose(column(res, "end_s"), [2.1, 2.1, 2.3, 2.25])
    np.testing.assert_allclose(column(res, "init_ms"), [2000, 1900, 2000, 0])


def test_requests_join_a_claimed_pre_warmed_instance_during_its_init(multi):
    # Init 1 s, handler 1 s, N = 2; each instance unloaded as it goes idle, and a pre-warmed
    # one asked for, ready 2 s later. Instance 0 (0..2) asks for instance 1, ready at 4
    # (created 3). The request at 3.5 claims it (waits 0.5 s); the one at 3.7 joins it (waits
    # 0.3 s); at 3.8 it is full: a new instance 2.
    prewarm = {"policy": "userpolicies:PrewarmAfter", "after_s": 2.0, "keep_s": 10.0}
    res = multi([0.0, 3.5, 3.7, 3.8], n=2, init_ms=1000, platform_extra={"keep_alive": prewarm})
    assert column(res, "instance_id") == [0, 1, 1, 2]
    assert column(res, "cold") == [True] * 4
    np.testing.assert_allclose(column(res, "start_s"), [1.0, 4.0, 4.0, 4.8])
    np.testing.assert_allclose(column(res, "init_ms"), [1000, 500, 300, 1000])
    inst = res.instances
    assert inst["prewarmed"].tolist()[:3] == [False, True, False]
    assert inst["invocations"].tolist()[:3] == [1, 2, 1]
    np.testing.assert_allclose(inst["ended_s"][:3], [2.0, 5.0, 5.8])  # at load 0, window 0


# -- keep-alive and recycling -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("third", "ids", "ends"),
    [
        # Requests 0..10 and 5..15 on instance 0 (N = 2), keep-alive 3 s: its first request's
        # end at 10 does not start the clock (it still serves one): it is idle from 15 and
        # would expire at 18. At 17.5 it is warm (and idle again from 27.5: ends 30.5).
        (17.5, [0, 0, 0], [(30.5, "idle")]),
        # At 18 it expired (measured from 15, not 10): a new instance.
        (18.0, [0, 0, 1], [(18.0, "idle"), (31.0, "idle")]),
    ],
)
def test_keep_alive_runs_from_the_last_request_on_the_instance(multi, third, ids, ends):
    res = multi([0.0, 5.0, third], n=2, dur_ms=10_000, idle_s=3.0)
    assert column(res, "instance_id") == ids
    assert column(res, "cold") == [True, False, ids[2] == 1]
    assert ended(res) == ends


def test_a_busy_instance_never_expires_while_requests_overlap(multi):
    # A request every 4 s, 10 s each, N = 3, keep-alive 1 s: the instance is never at load 0
    # until the last ends at 26 + 10 = 36, so one instance serves all and ends at 37.
    times = [0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 26.0]
    res = multi(times, n=3, dur_ms=10_000, idle_s=1.0)
    assert set(column(res, "instance_id")) == {0}
    assert ended(res) == [(37.0, "idle")]


def test_recycling_a_busy_instance_takes_no_new_request_and_ends_after_its_last(multi):
    # Lifetime 5 s, N = 3, handler 4 s. Instance 0 serves 0..4 and 3..7, and 4.9..8.9 (created
    # 0, it takes requests until 5). At 5 exactly it is past its recycling time though it has
    # room: a new instance 1 (created 5, recycled from 10). It ends at its last request's end,
    # 8.9, reason lifetime. Instance 1's requests end at 9 and 10: it ends at 10 (lifetime).
    res = multi([0.0, 3.0, 4.9, 5.0, 6.0], n=3, dur_ms=4000, idle_s=100.0, max_lifetime_s=5.0)
    assert column(res, "instance_id") == [0, 0, 0, 1, 1]
    assert column(res, "cold") == [True, False, False, True, False]
    np.testing.assert_allclose(column(res, "end_s"), [4.0, 7.0, 8.9, 9.0, 10.0])
    assert ended(res) == [(8.9, "lifetime"), (10.0, "lifetime")]
    assert res.summary["instances_ended"]["lifetime"] == 2


@pytest.mark.parametrize("routing", ["pack", "least-loaded"])
def test_an_idle_instance_past_its_lifetime_is_recycled_when_idle(multi, routing):
    # Lifetime 5 s: instance 0 serves 0..1 and 0.5..1.5 and, idle, is recycled at 5; the
    # request at 6 finds a new instance.
    res = multi([0.0, 0.5, 6.0], n=2, routing=routing, idle_s=100.0, max_lifetime_s=5.0)
    assert column(res, "instance_id") == [0, 0, 1]
    assert ended(res)[0] == (5.0, "lifetime")


# -- CPU sharing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "works_ms", "vcpus", "cpu_bound", "ends"),
    [
        # One vCPU, CPU-bound handlers: two together run at half speed.
        ([0.0, 0.0], [1000, 1000], 1.0, 1.0, [2.0, 2.0]),
        # Staggered: alone 0..0.5 (0.5 s done), then half speed: the first needs 0.5 s more
        # (1 s), ending at 1.5; the second has 0.5 s done by then, alone again: 2.0.
        ([0.0, 0.5], [1000, 1000], 1.0, 1.0, [1.5, 2.0]),
        # Half of the handler is CPU: one vCPU runs C = 2 requests at full speed...
        ([0.0, 0.0], [1000, 1000], 1.0, 0.5, [1.0, 1.0]),
        # ... and three at 2/3 speed.
        ([0.0, 0.0, 0.0], [1000, 1000, 1000], 1.0, 0.5, [1.5, 1.5, 1.5]),
        # Handlers that only wait never slow each other.
        ([0.0, 0.0, 0.0, 0.0], [1000] * 4, 1.0, 0.0, [1.0] * 4),
        # Half a vCPU: C = max(0.5, 1) / 1 = 1, a request alone runs at its duration.
        ([0.0, 3.0], [1000, 1000], 0.5, 1.0, [1.0, 4.0]),
        # Two vCPUs: two together at full speed, a third slows all to 2/3.
        ([0.0, 0.0], [1000, 1000], 2.0, 1.0, [1.0, 1.0]),
        ([0.0, 0.0, 0.0], [1000, 1000, 1000], 2.0, 1.0, [1.5, 1.5, 1.5]),
        # Works 1, 2 and 0.5 s at 0, 0 and 0.5 on one vCPU: 0..0.5 two at 1/2 (0.25 each),
        # then three at 1/3: the 0.5 s one needs 1.5 s (ends 2.0; the others have 0.25 and
        # 1.25 left); two at 1/2: 0.5 s more (2.5); the last alone: 1 s more (3.5).
        ([0.0, 0.0, 0.5], [1000, 2000, 500], 1.0, 1.0, [2.5, 3.5, 2.0]),
    ],
)
def test_processor_sharing_stepped_by_hand(multi, times, works_ms, vcpus, cpu_bound, ends):
    res = multi(times, works_ms=works_ms, n=4, vcpus=vcpus, cpu_bound=cpu_bound, idle_s=10.0)
    assert set(column(res, "instance_id")) == {0}
    np.testing.assert_allclose(column(res, "start_s"), times)
    np.testing.assert_allclose(column(res, "end_s"), ends)
    # The log's duration is the elapsed handler time, not the work.
    np.testing.assert_allclose(column(res, "duration_ms"), (np.array(ends) - times) * 1000)
    np.testing.assert_allclose(column(res, "latency_ms"), (np.array(ends) - times) * 1000)
    assert ended(res) == [(max(ends) + 10.0, "idle")]  # idle from the last (stretched) end
    assert res.summary["horizon_s"] == 100.0


def test_vcpus_default_to_memory_over_1769(multi):
    # 3,538 MB: 2 vCPUs. Two requests together run at full speed, three at 2/3; 1,769 MB: one
    # vCPU, two at half speed.
    res = multi([0.0, 0.0, 0.0], n=4, cpu_bound=1.0, memory_mb=3538)
    np.testing.assert_allclose(column(res, "end_s"), [1.5, 1.5, 1.5])
    res = multi([0.0, 0.0], n=4, cpu_bound=1.0, memory_mb=3538)
    np.testing.assert_allclose(column(res, "end_s"), [1.0, 1.0])
    res = multi([0.0, 0.0], n=4, cpu_bound=1.0, memory_mb=1769)
    np.testing.assert_allclose(column(res, "end_s"), [2.0, 2.0])


def test_no_contention_when_the_concurrency_fits_the_cpus(multi):
    # N = 2 on 2 vCPUs, CPU-bound: C = 2 is never exceeded, nothing changes.
    res = multi([0.0, 0.0, 0.0, 0.5], n=2, vcpus=2.0, cpu_bound=1.0)
    assert column(res, "instance_id") == [0, 0, 1, 1]
    np.testing.assert_allclose(column(res, "end_s"), [1.0, 1.0, 1.0, 1.5])
    np.testing.assert_allclose(column(res, "duration_ms"), [1000] * 4)


def test_requests_sharing_an_instance_start_together_after_its_init(multi):
    # Init 0.5 s, one vCPU: the requests at 0 and 0.2 both start at 0.5 and share the CPU:
    # both end at 2.5; the second waited 0.3 s of the init.
    res = multi([0.0, 0.2], n=4, vcpus=1.0, cpu_bound=1.0, init_ms=500, idle_s=10.0)
    assert column(res, "instance_id") == [0, 0]
    assert column(res, "cold") == [True, True]
    np.testing.assert_allclose(column(res, "start_s"), [0.5, 0.5])
    np.testing.assert_allclose(column(res, "end_s"), [2.5, 2.5])
    np.testing.assert_allclose(column(res, "init_ms"), [500, 300])
    np.testing.assert_allclose(column(res, "duration_ms"), [2000, 2000])
    np.testing.assert_allclose(column(res, "latency_ms"), [2500, 2300])
    assert ended(res) == [(12.5, "idle")]


def test_shared_requests_running_past_the_horizon_finish(multi):
    # Two 60 s CPU-bound requests at 90 on one vCPU end at 210, past duration_s 100.
    res = multi([90.0, 90.0], n=2, vcpus=1.0, cpu_bound=1.0, dur_ms=60_000, idle_s=10.0)
    np.testing.assert_allclose(column(res, "end_s"), [210.0, 210.0])
    assert res.summary["horizon_s"] == pytest.approx(210.0)
    assert res.instances["end_reason"].tolist() == ["alive"]  # still there at the horizon
    assert res.instances["ended_s"].isna().all()


# -- limits and hosts ------------------------------------------------------------------------


def test_account_concurrency_counts_requests_not_instances(multi):
    # Limit 2, N = 4: two requests at 0 fill the account though one instance has room for
    # four; the third at 0 and one at 0.5 are throttled; at 1 both ended.
    res = multi([0.0, 0.0, 0.0, 0.5, 1.0], n=4, concurrency_limit=2)
    assert res.invocations["status"].astype(str).tolist() == [
        "served", "served", "throttled", "throttled", "served",
    ]  # fmt: skip
    assert column(res, "instance_id") == [0, 0, -1, -1, 0]
    assert res.throttles["reason"].astype(str).tolist() == ["account", "account"]
    assert res.summary["instances_created"] == 1


def test_reserved_concurrency_counts_requests(multi):
    res = multi([0.0, 0.0, 0.0], n=4, function_extra={"reserved_concurrency": 2})
    assert res.invocations["status"].astype(str).tolist() == ["served", "served", "throttled"]
    assert res.throttles["reason"].astype(str).tolist() == ["reserved"]


def test_the_scaling_rate_limits_new_instances_not_requests(multi):
    # One token: one new instance, which takes three requests (N = 3); the fourth needs a
    # second instance and is throttled for the scaling rate.
    res = multi([0.0] * 4, n=3, scaling={"instances": 1, "per_s": 0.001})
    assert column(res, "instance_id") == [0, 0, 0, -1]
    assert res.throttles["reason"].astype(str).tolist() == ["scaling"]


def test_limits_count_stretched_requests_until_they_end(multi):
    # Two CPU-bound requests on one vCPU end at 2.0 (not 1.0): at 1.5 the account (limit 2)
    # is still full.
    res = multi([0.0, 0.0, 1.5, 2.0], n=4, vcpus=1.0, cpu_bound=1.0, concurrency_limit=2)
    assert res.invocations["status"].astype(str).tolist() == [
        "served", "served", "throttled", "served",
    ]  # fmt: skip
    np.testing.assert_allclose(res.invocations["end_s"], [2.0, 2.0, np.nan, 3.0])


@pytest.mark.parametrize(
    ("on_full", "status", "starts", "waits"),
    [
        # One 1,024 MB host holds one instance: N = 2 serves two at 0, the third is dropped...
        ("drop", ["served", "served", "dropped"], [0.0, 0.0, np.nan], [0, 0, 0]),
        # ... or waits for room on that instance (at 1, when its requests end).
        ("queue", ["served", "served", "served"], [0.0, 0.0, 1.0], [0, 0, 1000]),
    ],
)
def test_hosts_hold_one_instance_for_all_its_requests(multi, on_full, status, starts, waits):
    hosts = {"count": 1, "memory_mb": 1024, "on_full": on_full, "max_wait_s": 5.0}
    res = multi([0.0, 0.0, 0.0], n=2, platform_extra={"hosts": hosts})
    assert res.invocations["status"].astype(str).tolist() == status
    np.testing.assert_allclose(column(res, "start_s"), starts)
    np.testing.assert_allclose(column(res, "memory_wait_ms"), waits)
    assert res.summary["instances_created"] == 1


def test_a_waiting_request_is_not_looked_at_when_nothing_ended(tmp_path):
    # One 2,048 MB host, account limit 3. S (N = 4, one vCPU, CPU-bound) runs a 1 s request
    # from 0; G holds the other 1,024 MB from 0.1 to 10.1; W at 0.2 finds no memory and waits.
    # At 0.5 a second S request joins: S's first now ends at 1.5 (not 1.0), the second at 2.0,
    # when S's instance goes (keep-alive 0) and W takes its memory: W starts at 2.0. Nothing
    # ends at 1.0, yet W is dispatched then, finds the account full (S, S, G) and is throttled.
    def fn(name, rows, **extra):
        path = tmp_path / f"{name}.csv"
        path.write_text("timestamp_s,duration_ms\n" + "".join(f"{t!r},{d!r}\n" for t, d in rows))
        f = function(name, arrivals={"process": "csv", "path": str(path)})
        del f["duration"]
        f.update({"cpu_bound": 0.0, **extra})
        return f

    s = fn("S", [(0.0, 1000.0), (0.5, 1000.0)], instance_concurrency=4, instance_vcpus=1.0,
           cpu_bound=1.0)  # fmt: skip
    data = scenario(s, fn("G", [(0.1, 10_000.0)]), fn("W", [(0.2, 1000.0)]), duration_s=30.0,
                    idle_s=0.0, concurrency_limit=3)  # fmt: skip
    data["platform"]["hosts"] = {"count": 1, "memory_mb": 2048, "on_full": "queue",
                                 "max_wait_s": 5.0}  # fmt: skip
    res = run(data)
    inv = res.invocations.set_index("function")
    np.testing.assert_allclose(inv.loc["S", "end_s"], [1.5, 2.0])
    assert res.throttles.empty, res.throttles[["function", "time_s", "reason"]]
    assert inv.loc["W", "status"] == "served"
    assert inv.loc["W", "start_s"] == 2.0 and inv.loc["W", "memory_wait_ms"] == 1800.0


# -- validation ------------------------------------------------------------------------------


def _base(**extra):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(100))
    f.update(extra)
    return scenario(f, duration_s=100)


@pytest.mark.parametrize(
    ("extra", "platform", "message"),
    [
        ({"provisioned_concurrency": 2}, {},
         r"functions\[0\]\.instance_concurrency: 2: not modelled with provisioned_concurrency"),
        ({"provisioned_concurrency": [{"at_s": 10, "count": 1}]}, {},
         r"\[0\]\.instance_concurrency: 2: not modelled with provisioned_concurrency"),
        ({"app": "a"}, {"instance_scope": "app"},
         r"\[0\]\.instance_concurrency: 2: not modelled with platform\.instance_scope app"),
    ],
)  # fmt: skip
def test_unsupported_combinations_are_refused_naming_the_field(extra, platform, message):
    data = _base(instance_concurrency=2, **extra)
    data["platform"].update(platform)
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data)
    # With one request per instance, both are fine.
    parse_scenario({**data, "functions": [{**data["functions"][0], "instance_concurrency": 1}]})


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"instance_concurrency": 0}, "functions[0].instance_concurrency"),
        ({"instance_concurrency": 10**7}, "functions[0].instance_concurrency"),
        ({"instance_concurrency": 2.5}, "functions[0].instance_concurrency"),
        ({"instance_vcpus": 0}, "functions[0].instance_vcpus"),
        ({"instance_vcpus": float("nan")}, "functions[0].instance_vcpus"),
        ({"cpu_bound": 1.5}, "functions[0].cpu_bound"),
    ],
)
def test_out_of_range_values_are_refused(extra, field):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_base(**extra))
    assert err.value.field == field


def test_an_unknown_routing_rule_is_refused():
    data = _base(instance_concurrency=2)
    data["platform"]["routing"] = "round-robin"
    with pytest.raises(ScenarioError, match="routing") as err:
        parse_scenario(data)
    assert "pack" in str(err.value) and "least-loaded" in str(err.value)


def test_the_command_line_refuses_them_with_exit_2(tmp_path):
    from coldsim.cli import app
    from typer.testing import CliRunner

    path = tmp_path / "s.yaml"
    path.write_text(
        "name: bad\nduration_s: 60\n"
        "functions:\n"
        "  - name: api\n    instance_concurrency: 4\n    provisioned_concurrency: 1\n"
        "    duration: {dist: constant, value_ms: 10}\n"
        "    arrivals: {process: poisson, rate_per_s: 1}\n"
    )
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 2, res.output
    assert "functions[0].instance_concurrency: 4" in res.output
    assert "provisioned_concurrency" in res.output
    assert "Traceback" not in res.output


# -- one request per instance is today's model ----------------------------------------------------


def _today(seed):
    fns = [
        {"name": "a", "memory_mb": 1769, "init": {"dist": "exponential", "mean_ms": 400},
         "duration": {"dist": "exponential", "mean_ms": 1500},
         "arrivals": {"process": "poisson", "rate_per_s": 3}, "invocation": "async",
         "max_event_age_s": 60},
        {"name": "b", "memory_mb": 512, "init": const(800), "cpu_bound": 0.7,
         "duration": {"dist": "lognormal", "median_ms": 300, "sigma": 1},
         "arrivals": {"process": "mmpp", "rates_per_s": [0.2, 6], "mean_durations_s": [20, 5]},
         "reserved_concurrency": 4},
    ]  # fmt: skip
    data = scenario(*fns, duration_s=300, warmup_s=30, seed=seed, idle_s=8.0,
                    max_lifetime_s=40.0, concurrency_limit=110,
                    scaling={"instances": 5, "per_s": 2})  # fmt: skip
    return data


@pytest.mark.parametrize("seed", [1, 2])
def test_instance_concurrency_1_gives_todays_results(seed):
    base = run(_today(seed))
    assert base.summary["throttled"] > 0 and base.summary["cold_starts"] > 10
    variants = []
    for routing in ("pack", "least-loaded"):
        data = _today(seed)
        data["platform"]["routing"] = routing
        for f in data["functions"]:
            f["instance_concurrency"] = 1
        variants.append(run(data))
    for res in variants:
        pd.testing.assert_frame_equal(res.invocations, base.invocations)
        pd.testing.assert_frame_equal(res.instances, base.instances)
        pd.testing.assert_frame_equal(res.throttles, base.throttles)
        strip = lambda s: {k: v for k, v in s.items() if not k.endswith("wall_s")}  # noqa: E731
        assert strip(res.summary) == strip(base.summary)


# -- the report ------------------------------------------------------------------------------


def test_an_instance_serving_overlapping_requests_is_busy_once(multi):
    # [0, 1] and [0.5, 1.5] on one instance (N = 2, no contention): busy 1.5 s, not 2 s; it is
    # alive 0..11.5 (keep-alive 10 s), so idle 10 s. 1 GB.
    res = multi([0.0, 0.5], n=2, idle_s=10.0)
    assert column(res, "instance_id") == [0, 0]
    s = res.summary
    assert s["busy_gb_s"] == pytest.approx(1.5)
    assert s["idle_gb_s"] == pytest.approx(10.0)
    assert s["mean_busy_instances"] == pytest.approx(0.015)
    assert s["mean_instances"] == pytest.approx(0.115)
    per = s["per_function"]["f"]
    assert per["busy_gb_s"] == pytest.approx(1.5) and per["idle_gb_s"] == pytest.approx(10.0)


def test_busy_time_counts_a_shared_init_once(multi):
    # Init 0.5 s: requests at 0 and 0.2 (both wait for the init) and 1.0, 1 s each: busy from
    # creation (0) to the last end (2.0) once: 2 s; with a gap, two stretches: 0..1.5 and
    # 3..4 -> 2.5 s.
    res = multi([0.0, 0.2, 1.0], n=3, init_ms=500, idle_s=10.0)
    assert res.summary["busy_gb_s"] == pytest.approx(2.0)
    res = multi([0.0, 0.2, 3.0], n=3, init_ms=500, idle_s=10.0)
    assert res.summary["busy_gb_s"] == pytest.approx(2.5)
    assert res.summary["idle_gb_s"] == pytest.approx(14.0 - 2.5)


def test_busy_time_is_clipped_to_the_window(multi):
    # Warm-up 0.75 s: of the busy stretch 0..1.5 only 0.75..1.5 counts.
    res = multi([0.0, 0.5], n=2, idle_s=10.0, warmup_s=0.75)
    assert res.summary["busy_gb_s"] == pytest.approx(0.75)


# -- what keep-alive policies see ------------------------------------------------------------

SEEN: list = []


class Recorder(KeepAlivePolicy):
    """A fixed 10 s window that records what the engine tells policies."""

    def observe(self, invocation):
        SEEN.append(invocation)

    def keep_alive_s(self, end_s, instance_id):
        return 10.0


def _observed(multi, **kw):
    SEEN.clear()
    res = multi(platform_extra={"keep_alive": {"policy": f"{__name__}:Recorder"}}, **kw)
    seen = pd.DataFrame([inv._asdict() for inv in SEEN]).set_index("request_id")
    return res.invocations.set_index("request_id"), seen


def test_policies_see_joining_requests_as_cold_with_their_start(multi):
    inv, seen = _observed(multi, times=JOIN_BUSY, n=2, init_ms=2000, dur_ms=100)
    assert seen["cold"].tolist() == inv["cold"].tolist() == [True] * 4
    np.testing.assert_allclose(seen["start_s"], inv["start_s"])
    np.testing.assert_allclose(seen["end_s"], inv["end_s"])
    assert seen["instance_id"].tolist() == inv["instance_id"].tolist()


def test_policies_see_a_requests_end_without_cpu_sharing(multi):
    # Two 1 s CPU-bound requests on one vCPU end at 2.0; a policy is told 1.0, the end they
    # would have alone (the real one depends on requests that have not arrived yet).
    inv, seen = _observed(multi, times=[0.0, 0.0], n=4, vcpus=1.0, cpu_bound=1.0)
    np.testing.assert_allclose(inv["end_s"], [2.0, 2.0])
    np.testing.assert_allclose(seen["end_s"], [1.0, 1.0])


# -- invariants ------------------------------------------------------------------------------


@st.composite
def multi_scenarios(draw):
    n_fn = draw(st.integers(1, 2))
    hosts = draw(st.booleans())
    functions = []
    for k in range(n_fn):
        f = {
            "name": f"fn{k}",
            "memory_mb": draw(st.sampled_from([512, 1024])),
            "instance_concurrency": draw(st.integers(1, 6)),
            "init": draw(st.sampled_from([const(0), const(700),
                                          {"dist": "exponential", "mean_ms": 800}])),
            "duration": {"dist": "exponential", "mean_ms": draw(st.floats(200, 4000))},
            "arrivals": {"process": "poisson", "rate_per_s": draw(st.floats(0.2, 4))},
            "invocation": draw(st.sampled_from(["sync", "async"])),
            "max_event_age_s": 60.0,
            "cpu_bound": 0.0,
        }  # fmt: skip
        if f["instance_concurrency"] > 1 and draw(st.booleans()):  # CPU sharing
            f["cpu_bound"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
            f["instance_vcpus"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
        functions.append(f)
    data = scenario(
        *functions,
        duration_s=60.0,
        warmup_s=draw(st.sampled_from([0.0, 10.0])),
        seed=draw(st.integers(0, 2**32 - 1)),
        idle_s=draw(st.sampled_from([0.0, 5.0, 60.0])),
        selection=draw(st.sampled_from(["newest", "mru", "lru"])),
        max_lifetime_s=draw(st.one_of(st.none(), st.floats(2, 40))),
        concurrency_limit=draw(st.one_of(st.none(), st.integers(1, 8))),
    )
    data["platform"]["routing"] = draw(st.sampled_from(["pack", "least-loaded"]))
    if hosts:
        data["platform"]["hosts"] = {
            "count": draw(st.integers(1, 2)),
            "memory_mb": draw(st.sampled_from([1024, 2048, 3072])),
            "on_full": draw(st.sampled_from(["drop", "queue"])),
            "max_wait_s": 5.0,
        }
    return data


def drawn_work_ms(sc, f) -> np.ndarray:
    """The handler times the engine drew for f's requests, in arrival order."""
    arrivals = stream(sc.seed, f.name, "arrivals")
    rng = stream(sc.seed, f.name, "duration")
    works = [np.empty(0)]
    for times, per_request in f.arrivals.batches_with_durations(arrivals, sc.duration_s):
        works.append(f.duration.sample(rng, len(times)) if per_request is None else per_request)
    return np.concatenate(works)


def ps_replay(starts, works_s, capacity) -> np.ndarray:
    """End times under egalitarian processor sharing: n requests running progress at
    min(1, capacity / n) each. A reference written independently of the engine's clock."""
    order = np.argsort(starts, kind="stable")
    ends = np.full(len(starts), np.nan)
    left: dict[int, float] = {}
    t, i = 0.0, 0
    while i < len(order) or left:
        rate = 1.0 if len(left) <= capacity else capacity / len(left)
        nxt = starts[order[i]] if i < len(order) else math.inf
        j = min(left, key=left.__getitem__) if left else -1
        finish = t + left[j] / rate if left else math.inf
        now = min(nxt, finish)
        for r in left:
            left[r] -= (now - t) * rate
        t = now
        if finish <= nxt:  # ends before starts at equal times
            ends[j] = t
            del left[j]
        else:
            left[int(order[i])] = works_s[order[i]]
            i += 1
    return ends


#: Placement times are rebuilt from arrival + waits (ms): a request placed as another ends may
#: come out a rounding error early. Ends within EPS of a placement count as before it.
EPS = 1e-9


def sweep(begin, end):
    """(time, +1/-1) events in order, ends before starts at equal times."""
    return sorted([(e - EPS, -1) for e in end] + [(b, 1) for b in begin])


def in_flight(dispatch, end, t):
    """Requests placed by t and not ended then."""
    return int(np.count_nonzero((dispatch <= t + EPS) & (end > t + EPS)))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multi_scenarios())
def test_multi_request_invariants(data):
    res = run(data)
    sc = parse_scenario(data)
    inv, inst, thr = res.invocations, res.instances, res.throttles
    pf = sc.platform
    idle_s = pf.keep_alive.idle_s
    life = pf.max_lifetime_s if pf.max_lifetime_s is not None else math.inf
    horizon = res.summary["horizon_s"]
    status = inv["status"].astype(str).to_numpy()
    ok = status == "served"

    # Every request ends exactly once: one row, served or not; served rows ran once.
    assert inv["request_id"].is_unique
    assert sorted(thr.loc[thr["outcome"] != "retry", "request_id"]) == sorted(
        inv.loc[~ok, "request_id"]
    )
    served = inv[ok]
    assert np.isfinite(served[["start_s", "end_s"]].to_numpy()).all()
    assert (served["start_s"] <= served["end_s"]).all()
    assert (served["start_s"] >= served["arrival_s"]).all()
    assert (served["instance_id"] >= 0).all()
    assert inv.loc[~ok, ["start_s", "end_s"]].isna().all().all()
    assert (inv.loc[~ok, "instance_id"] == -1).all()

    # Conservation, and each request's handler time: its drawn work alone, or stretched by
    # CPU sharing exactly as an independent processor-sharing replay says.
    dispatch = served["arrival_s"] + (served["queue_delay_ms"] + served["memory_wait_ms"]) / 1000
    dispatch = dispatch.to_numpy()
    iid = served["instance_id"].to_numpy()
    start, end = served["start_s"].to_numpy(), served["end_s"].to_numpy()
    work_s = np.full(len(served), np.nan)
    capacity = {}
    for k, f in enumerate(sc.functions):
        rows = inv[(inv["function"] == f.name)].sort_values("request_id")
        work = drawn_work_ms(sc, f)
        assert len(rows) == len(work)
        mine = (served["function"] == f.name).to_numpy()
        by_rid = pd.Series(work, index=rows["request_id"].to_numpy())
        work_s[mine] = by_rid[served.loc[mine, "request_id"]].to_numpy() / 1000
        vcpus = f.instance_vcpus if f.instance_vcpus is not None else f.memory_mb / 1769
        c = max(vcpus, f.cpu_bound) / f.cpu_bound if f.cpu_bound > 0 else math.inf
        capacity[k] = c if f.instance_concurrency > c else math.inf
    np.testing.assert_allclose(served["duration_ms"], (end - start) * 1000, rtol=1e-9, atol=1e-6)
    fn_of = inst["function"].cat.codes.to_numpy()
    shared = np.array([capacity[fn_of[i]] < math.inf for i in iid], dtype=bool)
    np.testing.assert_allclose(end[~shared] - start[~shared], work_s[~shared], rtol=1e-9, atol=1e-9)
    for i in np.unique(iid[shared]):
        on = iid == i
        expected = ps_replay(start[on], work_s[on], capacity[fn_of[i]])
        np.testing.assert_allclose(end[on], expected, rtol=1e-9, atol=1e-6)
    assert (end - start >= work_s - 1e-9).all()

    # Instances: a request starts when it is placed, or when its instance's init ends; the
    # first on an instance creates it; later ones are cold exactly when they wait for the init.
    created = inst["created_s"].to_numpy()
    ready = inst["ready_s"].to_numpy()
    ended_s = inst["ended_s"].to_numpy()
    ends_at = np.where(np.isnan(ended_s), np.inf, ended_s)
    assert (fn_of[iid] == served["function"].cat.codes.to_numpy()).all()
    np.testing.assert_allclose(start, np.maximum(dispatch, ready[iid]), atol=1e-9)
    assert (start >= ready[iid] - 1e-9).all() and (start <= ends_at[iid]).all()
    assert (end <= ends_at[iid] + 1e-9).all()
    np.testing.assert_allclose(served["init_ms"], (start - dispatch) * 1000, atol=1e-6)
    cold = served["cold"].to_numpy()
    # (Requests placed at one instant, e.g. served from the memory queue together, may be
    # logged in any order: the one that created the instance is not told apart from them.)
    first_at = np.full(len(inst), np.inf)
    np.minimum.at(first_at, iid, dispatch)
    np.testing.assert_allclose(first_at, created, atol=EPS)
    waits = dispatch < ready[iid]
    clear = np.abs(dispatch - ready[iid]) > EPS
    assert (cold[clear] == waits[clear]).all()
    # Placed as the instance is ready: warm, except its creator (no init).
    creators = np.bincount(iid[cold & ~clear], minlength=len(inst))
    assert (creators <= 1).all()
    assert ((creators == 1) == (inst["init_ms"].to_numpy() == 0)).all()
    assert (inst["invocations"].to_numpy() == np.bincount(iid, minlength=len(inst))).all()
    assert (inst["invocations"] > 0).all()

    # Per instance: never more than N requests at once (from placement to end); idle only at
    # load 0, and reused within the keep-alive window from then; no request after recycling;
    # the end as keep-alive and lifetime say.
    n_of = np.array([f.instance_concurrency for f in sc.functions])
    reasons = inst["end_reason"].astype(str).to_numpy()
    for i in range(len(inst)):
        on = np.flatnonzero(iid == i)
        d_i, e_i = dispatch[on], end[on]
        retire = created[i] + life
        assert (d_i < retire + EPS).all()  # (the boundary is stepped by hand above)
        load, zero_at, peak = 0, None, 0
        for t, step in sweep(d_i, e_i):
            if step == 1 and load == 0 and zero_at is not None:
                assert t < zero_at + idle_s  # warm: within the keep-alive window
            load += step
            peak = max(peak, load)
            if load == 0:
                zero_at = t + EPS  # the end itself
        assert peak <= n_of[fn_of[i]]
        last = e_i.max()
        if last >= retire or last + idle_s > retire:
            expected, why = max(last, retire), "lifetime"
        else:
            expected, why = last + idle_s, "idle"
        if reasons[i] == "alive":
            assert expected > horizon - 1e-9
        elif reasons[i] == "pressure":
            assert last - 1e-9 <= ended_s[i] <= expected + 1e-9
        else:
            assert reasons[i] == why
            assert ended_s[i] == pytest.approx(expected)

    # A new instance only when no instance of its function had room: every other one alive
    # and not past its recycling time was full.
    for i in range(len(inst)):
        t = created[i]
        others = np.flatnonzero(
            (fn_of == fn_of[i]) & (np.arange(len(inst)) < i)  # created before it
            & (t < ends_at) & (t < created + life)
        )  # fmt: skip
        for j in others:
            on = iid == j
            assert in_flight(dispatch[on], end[on], t) >= n_of[fn_of[i]]

    # Limits count requests in flight (placement to end), not instances.
    limit = pf.concurrency_limit
    if limit is not None:
        for t in dispatch:
            assert in_flight(dispatch, end, t) <= limit
        for t in thr.loc[thr["reason"] == "account", "time_s"]:
            # (exact ends here: a request ending a rounding error after t still held its unit)
            assert np.count_nonzero((dispatch <= t + EPS) & (end > t)) >= limit

    # Hosts: an instance holds its memory once, however many requests it serves.
    if pf.hosts is not None:
        mb = np.array([f.footprint_mb() for f in sc.functions])[fn_of]
        peaks = _weighted_peaks(created, ends_at, mb, inst["host"].to_numpy(), pf.hosts.count)
        assert (peaks <= pf.hosts.memory_mb + 1e-9).all()
        assert (inst["host"] >= 0).all()
        table = per_host(inv, inst, sc)
        assert (table["mean_busy_mb"] <= table["mean_used_mb"] + 1e-6).all()

    # Busy time: the union of an instance's requests (from its creation, for cold ones).
    w0, w1 = sc.warmup_s, sc.duration_s
    busy = 0.0
    begin = np.where(cold, created[iid], start)
    for i in range(len(inst)):
        on = np.flatnonzero(iid == i)
        stretch_b = stretch_e = None
        for b, e in sorted(zip(begin[on], end[on], strict=True)):
            if stretch_e is not None and b <= stretch_e:
                stretch_e = max(stretch_e, e)
                continue
            if stretch_e is not None:
                busy += max(0.0, min(stretch_e, w1) - max(stretch_b, w0)) * mb_gb(sc, fn_of[i])
            stretch_b, stretch_e = b, e
        if stretch_e is not None:
            busy += max(0.0, min(stretch_e, w1) - max(stretch_b, w0)) * mb_gb(sc, fn_of[i])
    assert res.summary["busy_gb_s"] == pytest.approx(busy, rel=1e-9, abs=1e-6)
    assert res.summary["mean_busy_instances"] <= res.summary["mean_instances"] + 1e-9
    # The same in the instances-over-time figure's series, bin by bin.
    edges = np.linspace(0.0, horizon, 41)
    busy_t, alive_t = occupancy(inv, inst, edges, multi_request_functions(sc))
    assert (busy_t <= alive_t + 1e-9).all()


def mb_gb(sc, k) -> float:
    return sc.functions[k].memory_mb / 1024


def test_an_instances_init_is_billed_once_however_many_requests_joined_it(multi):
    # Two instances of 2 s init; four cold requests (two joined an init): 2 inits billed.
    res = multi(JOIN_BUSY, n=2, init_ms=2000, dur_ms=100)
    gb_s = 1.0 * 0.0000166667 / 1000  # per ms at 1,024 MB
    assert res.summary["cost_usd"]["init"] == pytest.approx(2 * 2000 * gb_s)
    assert res.summary["cost_usd"]["compute"] == pytest.approx(4 * 100 * gb_s)
