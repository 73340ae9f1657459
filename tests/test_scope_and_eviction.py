"""Keep-alive scope (function or app, apart from instance sharing), eviction that chooses
its victims at the moment of eviction, greedy-dual's function frequency, and placement that
looks at the hosts through its context."""

from __future__ import annotations

import numpy as np
import pytest
from coldsim import (
    EvictionPolicy,
    KeepAlivePolicy,
    PlacementPolicy,
    PolicyError,
    ScenarioError,
    parse_scenario,
)
from coldsim.policies.eviction import BUILTINS as EVICTIONS
from coldsim.policies.eviction import Candidate, FunctionFacts
from conftest import const, function, run, scenario
from test_hosts import THREE, hosted, rows

SEEN: dict[str, list[str]] = {}


class Watching(KeepAlivePolicy):
    """A 5 s window; records which functions' requests each copy sees."""

    def start(self, function, rng):
        self._mine = SEEN.setdefault(function, [])

    def observe(self, invocation):
        self._mine.append(invocation.function)

    def keep_alive_s(self, end_s, instance_id):
        return 5.0


def two_functions_of_one_app(write_trace, scope, instance_scope="function"):
    SEEN.clear()
    fns = [function(name, arrivals={"process": "trace", "path": str(write_trace(t, name=f"{name}.csv"))},
                    duration=const(1000))
           for name, t in (("a", [0.0, 10.0]), ("b", [2.0, 4.0]))]  # fmt: skip
    for f in fns:
        f["app"] = "shop"
    data = scenario(*fns, duration_s=100.0)
    data["platform"]["keep_alive"] = {"policy": Watching, "scope": scope}
    data["platform"]["instance_scope"] = instance_scope
    return run(data)


def test_scope_app_sees_the_apps_traffic_while_functions_keep_their_instances(write_trace):
    res = two_functions_of_one_app(write_trace, "app")
    assert SEEN == {"a": ["a", "b", "b", "a"]}  # one copy, started with the app's first
    inv = res.invocations
    # b's instance (idle from 3) is not a's: a's request at 10 finds its own (idle from 1,
    # gone at 6) gone, and is cold.
    got = zip(inv["function"].astype(str), inv["instance_id"], inv["cold"], strict=True)
    assert list(got) == [("a", 0, True), ("b", 1, True), ("b", 1, False), ("a", 2, True)]


def test_scope_function_is_per_function_and_app_sharing_needs_one_policy(write_trace):
    two_functions_of_one_app(write_trace, "function")
    assert SEEN == {"a": ["a", "a"], "b": ["b", "b"]}
    res = two_functions_of_one_app(write_trace, None, "app")  # the default follows sharing
    assert SEEN == {"a": ["a", "b", "b", "a"]}
    assert res.invocations["instance_id"].tolist() == [0, 0, 0, 1]  # shared: b takes a's
    with pytest.raises(ScenarioError, match="keep_alive.scope function: not with instance_scope"):
        two_functions_of_one_app(write_trace, "function", "app")


# -- eviction that chooses --------------------------------------------------------------------


class MemoryTimesIdle(EvictionPolicy):
    """Evict the candidate with the most memory x idle time, now."""

    def choose(self, host, needed_mb, candidates, now):
        CHOICES.append((host, needed_mb, list(candidates), now))
        ranked = sorted(candidates, key=lambda c: -c.memory_mb * (now - c.idle_since_s))
        out, freed = [], 0.0
        for c in ranked:
            out.append(c.instance_id)
            freed += c.memory_mb
            if freed >= needed_mb:
                return out
        return out


CHOICES: list = []


def test_choose_sees_candidates_at_the_moment_of_eviction(write_trace):
    # THREE: at 30, C needs 400 MB with 200 free; idle are B (400 MB since 11.4, 7440
    # MB-s) and A (400 MB since 21, 3600 MB-s): B goes. At 40 A is warm.
    CHOICES.clear()
    res = hosted(write_trace, THREE, eviction={"policy": MemoryTimesIdle})
    assert rows(res) == [("A", 0, True), ("B", 1, True), ("A", 0, False), ("C", 2, True),
                         ("A", 0, False)]  # fmt: skip
    ((host, needed, candidates, now),) = CHOICES
    assert (host, needed, now) == (0, 200.0, 30.0)
    assert candidates == [Candidate(1, 1, 400.0, 11.4, 0.0), Candidate(0, 0, 400.0, 21.0, 0.0)]


class Bad(EvictionPolicy):
    answer: list = []

    def choose(self, host, needed_mb, candidates, now):
        return self.answer


@pytest.mark.parametrize(
    ("answer", "problem"),
    [([], "free less than the 200 MB needed"), ([7], "one of the candidates, once"),
     ([1, 1], "one of the candidates, once"), (["x"], "a list of instance ids")],
)  # fmt: skip
def test_a_wrong_choice_is_a_policy_error(write_trace, answer, problem):
    with pytest.raises(PolicyError, match=f"eviction policy .*Bad: choose.*{problem}"):
        hosted(write_trace, THREE, eviction={"policy": Bad, "answer": answer})


def test_a_policy_needs_priority_or_choose():
    class Neither(EvictionPolicy):
        pass

    data = scenario(function(arrivals={"process": "poisson", "rate_per_s": 1.0}))
    data["platform"]["hosts"] = {"count": 1, "memory_mb": 4096}
    data["platform"]["eviction"] = {"policy": Neither}
    with pytest.raises(ScenarioError, match="does not define priority or choose"):
        parse_scenario(data)


# -- greedy-dual with FaasCache's function frequency ------------------------------------------


def test_greedy_dual_function_frequency_arithmetic():
    gd = EVICTIONS["greedy-dual"](policy="greedy-dual", frequency="function")
    facts = [FunctionFacts("A", 400, 100), FunctionFacts("B", 400, 400)]
    gd.start(facts, 1, np.random.default_rng(0))
    assert gd.priority(0, 0, 0, 1.0) == 0.25  # A's residents have served 1: 1 x 100/400
    assert gd.priority(1, 0, 0, 2.0) == 0.5  # a second instance of A: A's count is 2
    assert gd.priority(2, 1, 0, 3.0) == 1.0  # B: 1 x 400/400
    cands = [Candidate(0, 0, 400.0, 1.0, 0.25), Candidate(1, 0, 400.0, 2.0, 0.5),
             Candidate(2, 1, 400.0, 3.0, 1.0)]  # fmt: skip
    # Both of A's instances share A's latest priority, 0.5: instance 0 (idle longest) goes.
    assert gd.choose(0, 300.0, cands, 5.0) == [0]
    assert gd._clock == [0.5]
    gd.evicted(0, 0, 0, 0.25)  # its count leaves A's sum
    assert gd.priority(1, 0, 0, 6.0) == 0.5 + 2 * 0.25  # A: 1 (left) + 1 (this request)
    gd.departed(1, 0, 0)  # instance 1's keep-alive ended: A's residents have served none
    assert gd.priority(3, 0, 0, 7.0) == 0.5 + 1 * 0.25


def test_greedy_dual_rules_differ_where_a_functions_instances_share_a_priority(write_trace):
    # A's two instances (ids 0 and 1, 300 MB) have served 1 and 3 requests; B (id 2) 2. On a
    # full 1,000 MB host, D needs 300 MB at 50. Per instance, A's instance 0 (1 x 1) goes;
    # per function, A has served 4 and both its instances rank above B (2 x 1): B goes.
    fns = {"A": ([0.0, 0.5, 10.0, 20.0], 300, 300, 1000), "B": ([5.0, 15.0], 300, 300, 1000),
           "D": ([50.0], 300, 300, 1000)}  # fmt: skip
    per_instance = hosted(write_trace, fns, eviction={"policy": "greedy-dual"})
    per_function = hosted(write_trace, fns,
                          eviction={"policy": "greedy-dual", "frequency": "function"})  # fmt: skip
    victim = {name: r.instances.set_index("instance_id")["end_reason"].eq("pressure").idxmax()
              for name, r in (("instance", per_instance), ("function", per_function))}  # fmt: skip
    assert victim == {"instance": 0, "function": 2}


# -- placement with a context ------------------------------------------------------------------


class Consolidate(PlacementPolicy):
    """Only the host whose idle instances hold the most memory, if any does (its idle
    instances make room: empty hosts stay empty); else every host."""

    def start(self, hosts, capacity_mb, functions, rng, ctx):
        self._ctx, self._hosts = ctx, range(hosts)

    def order(self, function, memory_mb, free_mb):
        idle = [self._ctx.host(h).idle_mb for h in self._hosts]
        best = max(self._hosts, key=lambda h: idle[h])
        return [best] if idle[best] > 0 else list(self._hosts)


def test_placement_sees_idle_memory_through_its_context(write_trace):
    # Two 500 MB hosts, instances of 400 MB, keep-alive long: A (0) goes on host 0; at 10, B
    # is sent to host 0, where A's idle instance is evicted for it, and host 1 stays empty.
    fns = {"A": ([0.0], 400, 0, 1000), "B": ([10.0], 400, 0, 1000)}
    res = hosted(write_trace, fns, count=2, memory_mb=500, placement={"policy": Consolidate})
    inst = res.instances.set_index("instance_id")
    assert inst["host"].tolist() == [0, 0]
    assert inst.loc[0, "end_reason"] == "pressure"
