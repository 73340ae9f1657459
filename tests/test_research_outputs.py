"""Research outputs (issue 18 §2): the logs name each request's app and footprint, the
summary gives ATC'20's per-app cold-start distribution and idle memory by footprint, and
per-app figures agree with the request log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from coldsim import parse_scenario, simulate
from coldsim.reporting.quantiles import FunctionQuantiles
from coldsim.reporting.summary import cold_start_percent_by_app
from conftest import const, function, scenario


def apps_scenario(**kw):
    fs = []
    for k, (app, rate) in enumerate([("a", 0.02), ("a", 0.5), ("b", 0.01), (None, 0.05)]):
        f = function(f"f{k}", arrivals={"process": "poisson", "rate_per_s": rate},
                     duration=const(50 + 10 * k), init=const(300), memory_mb=1024)  # fmt: skip
        if app:
            f["app"] = app
        f["host_memory_mb"] = 256.0
        fs.append(f)
    return parse_scenario(scenario(*fs, duration_s=20_000, idle_s=60, seed=5, **kw))


def test_app_cold_pct_is_the_distribution_of_the_logs_per_app_cold_percentages():
    sc = apps_scenario()
    res = simulate(sc)
    pct = cold_start_percent_by_app(res.invocations, sc)
    got = res.summary["app_cold_pct"]
    assert got["apps"] == len(pct) == 3  # a, b and f3 (no app: its own)
    for q in (50, 75, 90):
        assert got[f"p{q}"] == pytest.approx(np.percentile(pct.to_numpy(), q))


def test_per_app_figures_add_up_and_match_the_request_log():
    sc = apps_scenario()
    res = simulate(sc)
    s, per_app = res.summary, res.summary["per_app"]
    assert list(per_app) == ["a", "b", "f3"]
    assert per_app["a"]["functions"] == 2
    for key in ("invocations", "served", "cold_starts"):
        assert sum(v[key] for v in per_app.values()) == s[key]
        assert per_app["a"][key] == sum(s["per_function"][f][key] for f in ("f0", "f1"))
    rows = res.invocations[res.invocations["counted"] & (res.invocations["status"] == "served")]
    a = np.sort(rows.loc[rows["function"].isin(["f0", "f1"]), "latency_ms"].to_numpy())
    lat = per_app["a"]["latency_ms"]
    assert lat["p99"] == pytest.approx(np.percentile(a, 99)) and lat["max"] == a[-1]
    assert lat["mean"] == pytest.approx(a.mean())
    # Footprint: instances hold 256 MB of their 1,024 MB configured.
    for block in (s, *s["per_function"].values(), *per_app.values()):
        assert block["idle_footprint_gb_s"] == pytest.approx(block["idle_gb_s"] / 4)
    assert sum(v["idle_gb_s"] for v in per_app.values()) == pytest.approx(s["idle_gb_s"])


def test_without_apps_there_is_no_per_app_block_but_the_distribution_is_there():
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.1}, duration=const(10))
    res = simulate(parse_scenario(scenario(f, duration_s=2000)))
    assert "per_app" not in res.summary and res.summary["app_cold_pct"]["apps"] == 1


def test_the_written_logs_name_app_and_footprint(tmp_path):
    sc = apps_scenario()
    out = simulate(sc).save(tmp_path / "r")
    inv = pd.read_parquet(out / "invocations.parquet")
    inst = pd.read_parquet(out / "instances.parquet")
    want = {"f0": "a", "f1": "a", "f2": "b", "f3": "f3"}
    for frame in (inv, inst):
        assert (frame["app"].astype(str) == frame["function"].astype(str).map(want)).all()
        assert (frame["footprint_mb"] == 256.0).all()


def test_merging_many_functions_into_one_adds_their_counts():
    # An app's statistics merge its functions' (several codes onto one): exact and sketched.
    rng = np.random.default_rng(1)
    for limit in (1 << 20, 10):
        q = FunctionQuantiles(3, exact_limit=limit)
        codes = np.repeat([0, 1, 2], [50, 30, 20])
        values = rng.exponential(100, size=100)
        q.add(codes, values)
        apps = FunctionQuantiles(2, exact_limit=limit)
        apps.merge(q, np.array([0, 0, 1]))
        got = apps.stats()
        assert got[0]["mean"] == pytest.approx(values[:80].mean())
        assert got[0]["max"] == values[:80].max() and got[1]["max"] == values[80:].max()
        assert got[2]["mean"] == pytest.approx(values.mean())


def test_a_streamed_run_writes_them_too(tmp_path):
    import yaml
    from coldsim.cli import app
    from typer.testing import CliRunner

    sc = apps_scenario()
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc.to_dict()))
    r = CliRunner().invoke(app, ["run", "-q", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    inv = pd.read_parquet(tmp_path / "out" / "invocations.parquet")
    assert set(inv["app"].astype(str)) == {"a", "b", "f3"} and (inv["footprint_mb"] == 256).all()
