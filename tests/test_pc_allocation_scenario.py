"""scenarios/provisioned-allocation.yaml says what it claims: a provisioned-concurrency raise
scheduled at the ramp's start is still being allocated when the traffic arrives (cold starts),
one scheduled minutes ahead is not, and with instant allocation the timing barely matters."""

from __future__ import annotations

import pytest
from coldsim import load_scenario, simulate
from conftest import ROOT

AT = "functions.0.provisioned_concurrency.1.at_s"
ALLOC = "platform.provisioned_allocation"
PEAK_S = 900.0  # the ramp starts at 08:00, 900 s after the run's 07:45


@pytest.fixture(scope="module")
def runs():
    base = load_scenario(ROOT / "scenarios" / "provisioned-allocation.yaml")
    modelled = base.platform.provisioned_allocation.model_dump()
    out = {}
    for name, alloc in (("modelled", modelled), ("instant", None)):
        for lead_s in (0, 300):
            sc = base.updated({AT: PEAK_S - lead_s, ALLOC: alloc})
            out[name, lead_s] = simulate(sc)
    return out


def cold(result) -> int:
    return result.summary["cold_starts"]


def test_the_scenario_is_the_documented_one():
    sc = load_scenario(ROOT / "scenarios" / "provisioned-allocation.yaml")
    f = sc.functions[0]
    rates = f.arrivals.rates_per_s
    assert f.arrivals.interval_s * next(i for i, r in enumerate(rates) if r > rates[0]) == PEAK_S
    assert [(st.at_s, st.count) for st in f.provisioned_schedule()] == [(0, 25), (PEAK_S, 300)]
    assert sc.platform.provisioned_allocation.ready_after_s(275) == pytest.approx(92.75)
    assert sc.warmup_s < min(sc.sweep.grid[AT]), "every swept raise falls in the billed window"


def test_a_raise_at_the_peak_is_allocated_too_late(runs):
    late, early = runs["modelled", 0], runs["modelled", 300]
    # Many more cold starts when raised at 08:00 than 5 minutes ahead ...
    assert cold(late) > cold(early) + 40
    # ... because the raise is usable only 92.75 s later (90 s + 60 x 275 / 6000) ...
    pc = late.instances[late.instances["provisioned"] & (late.instances["created_s"] > 0)]
    assert len(pc) == 275
    assert pc["ready_s"].min() == pytest.approx(PEAK_S + 92.75)
    # ... and the extra cold starts all arrive in the ramp before then.
    inv = late.invocations
    gap = inv["cold"] & inv["arrival_s"].between(PEAK_S, PEAK_S + 92.75)
    assert gap.sum() >= cold(late) - cold(early)
    assert late.summary["latency_ms"]["p999"] > early.summary["latency_ms"]["p999"]


def test_instant_allocation_makes_the_timing_matter_little(runs):
    # Instant: the raise serves one init (~2.8 s) after the step, so at 08:00 sharp only the
    # ramp's first seconds start cold.
    assert cold(runs["instant", 0]) < cold(runs["modelled", 0]) - 40
    assert cold(runs["instant", 0]) - cold(runs["instant", 300]) < 40
    # Five minutes ahead, the allocation is done long before the ramp: the same as instant.
    assert abs(cold(runs["modelled", 300]) - cold(runs["instant", 300])) <= 2


def test_an_early_raise_costs_one_more_billing_block(runs):
    late, early = runs["modelled", 0], runs["modelled", 300]
    pc_late = late.summary["cost_usd"]["provisioned"]
    pc_early = early.summary["cost_usd"]["provisioned"]
    # 275 more 1 GB environments for one more 5-minute block, at $0.0000041667 per GB-s.
    assert pc_early - pc_late == pytest.approx(275 * 300 * 0.0000041667, rel=1e-6)
