"""The merged arrival stream dispatches in exactly SimPy's order.

The reference is the engine as it was before the stream: one SimPy process per function
walking its arrivals (`ProcessPerFunction` below). Scenarios with many exact ties (periodic
arrivals on one grid, warmers and provisioning steps on it, async retries after throttling,
a memory queue) must give byte-identical logs both ways.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from coldsim import ArrivalProcess as ArrivalProcessBase
from coldsim import parse_scenario
from coldsim.engine.arrival_stream import ArrivalStream, timeout_keys
from coldsim.engine.core import USER, Engine
from hypothesis import given, settings
from hypothesis import strategies as st


class ProcessPerFunction(Engine):
    """The former arrival path: a SimPy process per function, a timeout per request."""

    def _serve_arrivals(self, stream) -> None:
        pass  # no stream: the processes below do it

    def _start_arrivals(self, functions, stream) -> None:
        for k in functions:
            self.env.process(self._process(k, self.scenario.functions[k]))

    def _process(self, k, f):
        self.events += 2
        env = self.env
        for times, durations in self._arrival_batches(k, f):
            for t, d_ms in zip(times.tolist(), durations.tolist(), strict=True):
                delay = t - env.now
                yield env.timeout(delay if delay > 0.0 else 0.0)
                self.dispatch(k, t, d_ms, t, 1, USER, self.next_request_id())


def _logs(engine_class, data) -> dict:
    log = engine_class(parse_scenario(data)).run()
    return {"inv": log.invocations, "inst": log.instances, "thr": log.throttles,
            "events": log.events, "horizon": log.horizon_s}  # fmt: skip


def _assert_same(a: dict, b: dict) -> None:
    assert a["events"] == b["events"] and a["horizon"] == b["horizon"]
    for table in ("inv", "inst", "thr"):
        assert a[table].keys() == b[table].keys()
        for column in a[table]:
            np.testing.assert_array_equal(a[table][column], b[table][column], err_msg=column)


def _function(name, interval_s, offset_s=0.0, **extra) -> dict:
    return {"name": name, "init": {"dist": "constant", "value_ms": 250},
            "duration": {"dist": "exponential", "mean_ms": 900},
            "arrivals": {"process": "periodic", "interval_s": interval_s, "offset_s": offset_s},
            **extra}  # fmt: skip


TIED = {
    # Four functions on one 10 s grid (their arrivals tie), a warmer and a provisioning step
    # on it, reserved concurrency that throttles (async retries land on the grid too).
    "grid": {
        "name": "ties", "seed": 4, "duration_s": 4000,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": 30},
                     "async_retry": {"first_delay_s": 10, "max_delay_s": 40}},
        "functions": [
            _function("a", 1, reserved_concurrency=1),
            _function("b", 1, invocation="async", reserved_concurrency=1),
            _function("c", 5, warmer={"interval_s": 20, "concurrency": 2}),
            _function("d", 10, reserved_concurrency=3,
                      provisioned_concurrency=[{"at_s": 0, "count": 0},
                                               {"at_s": 1000, "count": 1}]),
        ],
    },
    # Hosts with a memory queue: its looks are timeouts at the grid's times.
    "hosts": {
        "name": "ties-hosts", "seed": 2, "duration_s": 3000,
        "platform": {"keep_alive": {"policy": "fixed", "idle_s": 20},
                     "hosts": {"count": 1, "memory_mb": 512, "on_full": "queue",
                               "max_wait_s": 15}},
        "functions": [_function(n, 4, memory_mb=256) for n in "pqrs"],
    },
    # One function alone at each key, against a warmer's pings at the same times: the order
    # of an untied arrival and a scheduled event at its key.
    "alone": {
        "name": "ties-alone", "seed": 3, "duration_s": 600,
        "functions": [_function("p", 5, warmer={"interval_s": 20, "concurrency": 2})],
    },
    # Arrivals at 0 s, before and with everything else that starts then.
    "zero": {
        "name": "ties-zero", "seed": 1, "duration_s": 600,
        "functions": [_function(n, 1) for n in "xyz"]
                     + [_function("w", 2, warmer={"interval_s": 1})],
    },
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TIED))
def test_the_stream_dispatches_in_simpys_order(case):
    _assert_same(_logs(Engine, TIED[case]), _logs(ProcessPerFunction, TIED[case]))


@settings(max_examples=25, deadline=None)
@given(
    functions=st.integers(1, 6),
    rate=st.floats(0.05, 20.0),
    grid=st.sampled_from([None, 0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**16),
    reserved=st.sampled_from([None, 1, 3]),
)
def test_random_scenarios_give_identical_logs(functions, rate, grid, seed, reserved):
    """Poisson or grid-aligned (periodic) traffic, sync and async, limits binding or not."""
    fns = []
    for i in range(functions):
        f = _function(f"f{i}", grid or 1.0, invocation="async" if i % 2 else "sync",
                      reserved_concurrency=reserved)
        if grid is None:
            f["arrivals"] = {"process": "poisson", "rate_per_s": rate}
        fns.append(f)
    data = {"name": "random", "seed": seed, "duration_s": 300, "functions": fns,
            "platform": {"keep_alive": {"policy": "fixed", "idle_s": 5}}}  # fmt: skip
    _assert_same(_logs(Engine, data), _logs(ProcessPerFunction, data))


def _sequential_keys(times, last):
    keys, now = [], last
    for t in times:
        delay = t - now
        now = now + (delay if delay > 0.0 else 0.0)
        keys.append(now)
    return keys


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False), min_size=1,
             max_size=40),
    st.floats(0.0, 1e3),
)  # fmt: skip
def test_timeout_keys_are_simpys_times(times, last):
    """now + max(t - now, 0), chained: vectorised where exact, sequential where it rounds."""
    times = np.sort(np.asarray(times, dtype=float))
    assert timeout_keys(times, last).tolist() == _sequential_keys(times.tolist(), last)


def test_rounding_chains_are_followed():
    """Times that double each step round in the subtraction: the chain is redone."""
    times = np.array([1e-300, 0.1, 0.30000000000000004, 0.7, 1.9, 3.3, 7.1, 7.1, 1e6])
    assert timeout_keys(times, 0.0).tolist() == _sequential_keys(times.tolist(), 0.0)


def test_chunks_hold_every_arrival_once_in_key_order():
    rng = np.random.default_rng(1)
    batches = {k: [np.sort(rng.uniform(0, 1000, n)) for n in (5, 40, 300)] for k in range(7)}
    batches[3] = [np.full(4, 500.0), np.full(3, 600.0)]  # equal times: tied segments
    stream = ArrivalStream(target=64)
    for k, parts in batches.items():
        # within a function batches are in time order
        parts = [np.sort(np.concatenate(parts))]
        stream.start(k, iter([(p, p * 0 + k) for p in parts]))
    seen = []
    while (chunk := stream.next_chunk()) is not None:
        assert chunk.keys == sorted(chunk.keys)
        for first, end, tied in chunk.segments:
            if tied:
                assert len(set(chunk.keys[first:end])) == 1 and end - first >= 2
        covered = [i for first, end, _ in chunk.segments for i in range(first, end)]
        assert covered == list(range(len(chunk.keys)))
        assert not seen or seen[-1][0] < chunk.keys[0] or math.isclose(seen[-1][0], chunk.keys[0])
        seen += list(zip(chunk.keys, chunk.functions, strict=True))
    assert len(seen) == sum(len(np.concatenate(p)) for p in batches.values())
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)


# --- rows handed over in blocks as the run goes --------------------------------------------


def _blocked(data: dict, rows: int) -> dict:
    engine = Engine(parse_scenario(data))
    engine.flush_rows, engine.chunk_arrivals = rows, 3 * rows
    log = engine.run()
    assert engine.handovers > 1 or len(log.invocations["arrival_s"]) <= rows
    return {"inv": log.invocations, "inst": log.instances, "thr": log.throttles,
            "events": log.events, "horizon": log.horizon_s}  # fmt: skip


def _bundled(name: str, duration_s: float) -> dict:
    import yaml
    from conftest import ROOT

    data = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    return {**data, "duration_s": duration_s, "warmup_s": 0, "sweep": None}


BLOCKS = {
    **TIED,  # async retries pending across blocks, a memory queue, warmers
    "cpu-sharing": _bundled("multi-request", 1800),  # rows whose end comes later
    "cluster": _bundled("cluster-pressure", 1800),  # evictions, drops, waits
    "allocation": _bundled("provisioned-allocation", 3600),
}


@pytest.mark.parametrize("case", sorted(BLOCKS))
@pytest.mark.parametrize("rows", [1, 37])
def test_rows_handed_over_in_blocks_make_the_same_logs(case, rows):
    """Rows of requests still under way (retries, waits for memory, shared CPUs) stay until
    they end; every block follows the previous one in request-id order."""
    _assert_same(_blocked(BLOCKS[case], rows), _logs(Engine, BLOCKS[case]))


class Reuse(ArrivalProcessBase):
    """A plug-in that yields slices of one buffer it refills (numpy-style reuse)."""

    process: str = "reuse"
    interval_s: float = 1.0
    size: int = 4

    def generate(self, rng, t0, t1):
        buf = np.empty(self.size)
        t = t0
        while t < t1:
            n = 0
            while n < self.size and t < t1:
                buf[n] = t
                n, t = n + 1, t + self.interval_s
            yield buf[:n]


def test_a_plug_in_may_reuse_its_buffer():
    """Batches are copied as they are checked: refilling the buffer changes nothing."""
    data = {"name": "reuse", "seed": 1, "duration_s": 40,
            "functions": [{**_function("a", 1), "arrivals": {"process": Reuse, "size": 4}}]}
    log = Engine(parse_scenario(data)).run()
    assert log.invocations["arrival_s"].tolist() == [float(i) for i in range(40)]


def test_a_burst_after_a_quiet_stretch_is_cut_into_chunks_of_bounded_size():
    quiet = np.arange(0.0, 10_000.0, 10.0)
    burst = np.sort(np.random.default_rng(2).uniform(10_000, 11_000, 50_000))
    stream = ArrivalStream(target=1000)
    stream.start(0, iter([(quiet, quiet * 0)]))
    stream.start(1, iter([(burst[:30_000], burst[:30_000] * 0),
                          (burst[30_000:], burst[30_000:] * 0)]))  # fmt: skip
    sizes, seen = [], []
    while (chunk := stream.next_chunk()) is not None:
        sizes.append(len(chunk.keys))
        seen += chunk.keys
    assert max(sizes) <= 2000 and len(seen) == len(quiet) + len(burst)
    assert seen == sorted(seen)
    # and through the engine: the same logs with chunks of any size
    fn = {"init": {"dist": "constant", "value_ms": 100}, "duration": {"dist": "constant", "value_ms": 1}}
    data = {"name": "burst", "seed": 1, "duration_s": 3000, "platform": {"concurrency_limit": None},
            "functions": [{**fn, "name": "quiet", "arrivals": {"process": "periodic", "interval_s": 10}},
                          {**fn, "name": "burst", "arrivals": {"process": "poisson", "rate_per_s": 50,
                                                               "start_s": 1000, "end_s": 1100}}]}  # fmt: skip
    engine = Engine(parse_scenario(data))
    engine.chunk_arrivals = 64
    log = engine.run()
    _assert_same({"inv": log.invocations, "inst": log.instances, "thr": log.throttles,
                  "events": log.events, "horizon": log.horizon_s}, _logs(Engine, data))  # fmt: skip
