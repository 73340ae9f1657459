"""Platform presets: each is its table's values, set fields win, errors at values a preset
filled in say so, memory follows the preset's range (traces included), Azure's billing rules
(128 MB steps, 100 ms minimum) cost what they should, and docs/presets.md is current."""

from __future__ import annotations

import math

import pytest
import yaml
from coldsim import ScenarioError, load_scenario, parse_scenario, simulate
from coldsim.cli import app
from coldsim.scenario.presets import NO_PRICES, PRESETS, markdown
from conftest import ROOT, TRACES, const, needs_traces
from typer.testing import CliRunner

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="coldsim")


def data(preset: str | None = None, **function_fields) -> dict:
    f = {
        "name": "f",
        "init": const(500),
        "duration": const(100),
        "arrivals": {"process": "poisson", "rate_per_s": 2},
        **function_fields,
    }
    out = {"name": "p", "seed": 3, "duration_s": 600, "functions": [f]}
    if preset is not None:
        out["platform"] = {"preset": preset}
    return out


def holds(got, want) -> bool:
    """got has every value of want (mappings and lists compared item by item)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(holds(got.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return len(got) == len(want) and all(holds(g, w) for g, w in zip(got, want, strict=True))
    return got == want


def test_the_default_is_aws_lambda_and_changes_nothing():
    plain, named = parse_scenario(data()), parse_scenario(data("aws-lambda"))
    assert plain.platform.preset == "aws-lambda"
    assert plain.to_dict() == named.to_dict()
    assert plain.platform.concurrency_limit == 1000 and plain.platform.max_lifetime_s is not None


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "aws-lambda"])
def test_each_preset_applies_its_table_and_runs(name):
    preset = PRESETS[name]
    sc = parse_scenario(data(name))
    dumped = sc.to_dict()
    for key, value in preset.platform.items():
        assert holds(dumped["platform"][key], value), key
    for key, value in preset.function.items():
        assert dumped["functions"][0][key] == value, key
    result = simulate(sc)
    assert result.summary["cold_starts"] >= 1
    if preset.platform.get("pricing") == NO_PRICES:
        assert result.summary["cost_usd"]["total"] == 0


def test_fields_set_in_the_scenario_win_and_mappings_merge():
    d = data("azure-functions")
    d["platform"].update(
        keep_alive={"policy": "fixed", "idle_s": 60}, pricing={"request_usd": 1e-6}
    )
    sc = parse_scenario(d)
    assert sc.platform.keep_alive.idle_s == 60
    assert sc.platform.pricing.request_usd == 1e-6
    assert sc.platform.pricing.min_billed_ms == 100  # the rest of the preset's prices stay
    assert sc.platform.instance_scope == "app"


def test_a_non_lambda_preset_asks_for_each_functions_init():
    d = data("research")
    del d["functions"][0]["init"]
    with pytest.raises(ScenarioError) as err:
        parse_scenario(d)
    assert err.value.field == "functions[0].init"
    assert "required with platform.preset research" in err.value.message
    d["functions"][0]["runtime"] = "nodejs22.x"  # a runtime's measured init is a choice
    assert parse_scenario(d).functions[0].init.expected() > 0


def test_an_error_at_a_value_the_preset_filled_in_says_so():
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data("cloud-run", provisioned_concurrency=2))
    assert err.value.field == "functions[0].billing"
    assert "functions[0].billing comes from platform.preset cloud-run" in err.value.message
    written = data("aws-lambda", provisioned_concurrency=2, instance_concurrency=4)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(written)
    assert "comes from" not in err.value.message  # the user wrote this one


def test_memory_follows_the_presets_range():
    assert parse_scenario(data("research", memory_mb=51)).functions[0].memory_mb == 51
    for preset, mb in (("aws-lambda", 64), ("openwhisk", 1024), ("azure-functions", 2048)):
        with pytest.raises(ScenarioError) as err:
            parse_scenario(data(preset, memory_mb=mb))
        low, high = PRESETS[preset].memory_mb
        assert err.value.field == "functions[0].memory_mb"
        assert f"outside {preset}'s range, {low:,}-{high:,} MB" in err.value.message


def test_azure_billing_rounds_memory_to_128_mb_and_bills_at_least_100_ms():
    # Constant gaps (one request every 10 s) and a keep-alive of 20 min: one cold start, and
    # every request billed 100 ms (30 ms rounded up to the minimum) at 256 MB (200 rounded up).
    d = data("azure-functions", memory_mb=200, duration=const(30))
    d["functions"][0]["arrivals"] = {"process": "periodic", "interval_s": 10}
    r = simulate(parse_scenario(d))
    n = r.summary["invocations"]
    cost = r.summary["cost_usd"]
    assert n == 60
    assert cost["compute"] == pytest.approx(n * 0.25 * 0.1 * 0.000016)
    assert cost["requests"] == pytest.approx(n * 2e-7)
    assert cost["init"] == 0  # Azure does not bill the start of an instance


def test_switching_preset_with_updated_restores_the_new_presets_defaults():
    sc = parse_scenario(data("cloud-run"))
    back = sc.updated({"platform.preset": "aws-lambda"})
    assert back.platform.concurrency_limit == 1000
    assert back.functions[0].instance_concurrency == 1 and back.functions[0].memory_mb == 128
    research = back.updated({"platform.preset": "research"})
    assert research.platform.concurrency_limit is None
    assert research.platform.keep_alive.idle_s == 600
    kept = sc.updated({"platform.keep_alive.idle_s": 30})  # same preset: as before
    assert kept.platform.keep_alive.idle_s == 30 and kept.functions[0].instance_concurrency == 80


def test_set_overrides_start_from_the_preset(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data().items()}))
    sc = load_scenario(
        path, ["platform.preset=openwhisk", "platform.keep_alive.idle_s=60"]
    )
    assert sc.platform.preset == "openwhisk"
    assert sc.platform.keep_alive.policy == "fixed" and sc.platform.keep_alive.idle_s == 60
    assert sc.platform.concurrency_limit == 100


def test_an_unknown_preset_is_refused_with_the_allowed_names(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data("lambda")))
    r = invoke("validate", path)
    assert r.exit_code == 2
    assert "platform.preset" in r.output and "research" in r.output


def test_docs_list_each_presets_values():
    text = (ROOT / "docs" / "presets.md").read_text()
    marker = "<!-- generated: coldsim schema --presets -->\n"
    assert text.split(marker, 1)[1] == markdown(), "regenerate: coldsim schema --presets"
    r = invoke("schema")
    assert r.exit_code == 0 and '"x-presets"' in r.output


@needs_traces
def test_azure_trace_to_scenario_takes_the_research_preset(tmp_path):
    trace = TRACES / "azure2019_dirigent_100"
    out = tmp_path / "az.yaml"
    r = invoke("trace", "to-scenario", trace, "--out", out)
    assert r.exit_code == 0, r.output
    assert "platform.preset research" in r.output and "init" in r.output
    written = yaml.safe_load(out.read_text())
    assert written["platform"] == {"preset": "research"}
    sc = load_scenario(out, duration_s=600)
    mem = [f.memory_mb for f in sc.functions]
    assert sc.platform.concurrency_limit is None and sc.platform.max_lifetime_s is None
    assert min(mem) < 128, "no Lambda memory floor under research"
    for f in sc.functions:  # memory_mb: the trace's figure rounded up to a whole MB
        assert f.memory_mb == max(1, math.ceil(f.host_memory_mb))
    lam = tmp_path / "lambda.yaml"
    assert invoke("trace", "to-scenario", trace, "--out", lam, "--preset", "aws-lambda").exit_code == 0
    assert min(f.memory_mb for f in load_scenario(lam, duration_s=600).functions) >= 128
    bad = invoke("trace", "to-scenario", trace, "--out", tmp_path / "x.yaml", "--preset", "gcp")
    assert bad.exit_code == 2 and "--preset" in bad.output


# A review's findings, each fixed with its test.


def test_a_sweep_over_presets_runs_each_preset():
    from coldsim.studies.sweep import point_scenario

    base = parse_scenario(data("research"))
    lam = point_scenario(base, {"platform.preset": "aws-lambda"})
    assert lam.platform.concurrency_limit == 1000 and lam.platform.keep_alive.policy == "random"
    kn = point_scenario(lam, {"platform.preset": "knative"})
    assert kn.platform.controllers and kn.functions[0].instance_concurrency == 100
    back = point_scenario(kn, {"platform.preset": "research"})
    assert not back.platform.controllers and back.functions[0].instance_concurrency == 1
    assert back.to_dict() == base.to_dict()  # the round trip restores every value


def test_switching_back_drops_the_old_presets_merged_prices():
    d = data("azure-functions")
    d["platform"]["pricing"] = {"request_usd": 1e-6}
    lam = parse_scenario(d).updated({"platform.preset": "aws-lambda"})
    p = lam.platform.pricing
    assert p.request_usd == 1e-6  # what the scenario set stays
    assert p.min_billed_ms == 0 and p.billed_memory_step_mb is None and p.bill_init
    assert p.x86_64.gb_s_usd == pytest.approx(0.0000166667)


@pytest.mark.parametrize("order", [0, 1])
def test_set_overrides_give_the_same_scenario_in_any_order(tmp_path, order):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data()))
    sets = ["platform.preset=knative", "platform.keep_alive.idle_s=60",
            "platform.pricing.request_usd=1e-6"]  # fmt: skip
    sc = load_scenario(path, sets if order == 0 else sets[::-1])
    assert sc.platform.keep_alive.policy == "fixed" and sc.platform.keep_alive.idle_s == 60
    assert sc.platform.pricing.request_usd == 1e-6 and sc.platform.pricing.x86_64.gb_s_usd == 0


def test_cloud_run_bills_each_busy_stretch_in_100_ms_units():
    d = data("cloud-run", duration=const(30), memory_mb=1024)
    d["functions"][0]["arrivals"] = {"process": "periodic", "interval_s": 10}
    r = simulate(parse_scenario(d))
    n = r.summary["invocations"]
    per_s = (1.0 * 0.0864 + 1.0 * 0.009) / 3600  # 1 vCPU and 1 GiB
    busy_s = 0.5 + 0.1 + (n - 1) * 0.1  # the first: init 500 ms + 30 ms -> 600 ms
    assert r.summary["cost_usd"]["instances"] == pytest.approx(busy_s * per_s)


def test_a_minimum_billed_time_covers_the_init_too():
    d = data("azure-functions", duration=const(30), init=const(50))
    d["functions"][0]["arrivals"] = {"process": "periodic", "interval_s": 10}
    d["platform"]["pricing"] = {"bill_init": True}
    r = simulate(parse_scenario(d))
    n = r.summary["invocations"]
    assert r.summary["cost_usd"]["init"] == 0  # 30 + 50 ms is within the 100 ms minimum
    assert r.summary["cost_usd"]["compute"] == pytest.approx(n * 0.125 * 0.1 * 0.000016)


def test_sharding_refusals_name_the_preset_that_set_the_field():
    from coldsim.engine.sharding import check_shardable

    d = data("knative")
    d["functions"].append({**d["functions"][0], "name": "g"})
    with pytest.raises(ScenarioError, match="comes from platform.preset knative"):
        check_shardable(parse_scenario(d))


@needs_traces
def test_trace_scenarios_switch_presets_with_their_memory_rule(tmp_path):
    trace = TRACES / "azure2019_dirigent_100"
    out = tmp_path / "az.yaml"
    assert invoke("trace", "to-scenario", trace, "--out", out).exit_code == 0
    research = load_scenario(out, duration_s=600)
    lam = research.updated({"platform.preset": "aws-lambda"})
    assert min(f.memory_mb for f in lam.functions) >= 128 < max(f.memory_mb for f in lam.functions)
    assert min(f.memory_mb for f in lam.updated({"platform.preset": "research"}).functions) < 128
    # A function replaying one trace function takes the trace's memory under any preset.
    one = {"name": "x", "duration_s": 600, "platform": {"preset": "cloud-run"}, "functions": [{
        "name": "f", "init": const(500),
        "arrivals": {"process": "azure2019", "invocations": str(trace),
                     "function": research.functions[0].arrivals.function}}]}  # fmt: skip
    f = parse_scenario(one).functions[0]
    assert f.memory_mb == max(128, math.ceil(f.host_memory_mb))
