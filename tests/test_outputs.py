"""outputs.requests: a run writes every request, none, or a seeded sample that says so."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from coldsim import ScenarioError, parse_scenario, simulate
from coldsim.cli import app
from coldsim.reporting.logs import FUNCTION_COLUMNS
from typer.testing import CliRunner

runner = CliRunner()
DATA = {"name": "outputs", "seed": 7, "duration_s": 4000,
        "functions": [{"name": "api", "duration": {"dist": "exponential", "mean_ms": 90},
                       "arrivals": {"process": "poisson", "rate_per_s": 10}}]}  # fmt: skip


def _about(path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[b"coldsim.requests"])


def _run(tmp_path, name: str, requests) -> tuple:
    res = simulate({**DATA, "outputs": {"requests": requests}})
    return res, res.save(tmp_path / name)


def test_all_requests_by_default_and_said_so(tmp_path):
    res, out = _run(tmp_path, "all", "all")
    assert parse_scenario(DATA).outputs.requests == "all"
    written = pd.read_parquet(out / "invocations.parquet")
    # The file adds each row's app and footprint (FUNCTION_COLUMNS) to the frame's columns.
    assert list(written.columns[-2:]) == list(FUNCTION_COLUMNS)
    written = written.drop(columns=list(FUNCTION_COLUMNS))
    pd.testing.assert_frame_equal(written, res.invocations, check_categorical=False)
    assert _about(out / "invocations.parquet") == {
        "requests": "all", "rows_total": len(res.invocations), "rows_written": len(written)}


def test_a_sample_is_a_seeded_uniform_subset_flagged_in_its_metadata(tmp_path):
    sampled, out = _run(tmp_path, "sample", 0.2)  # streamed: it keeps only its sample
    res = simulate({**DATA, "outputs": {"requests": "all"}})
    n = len(res.invocations)
    sample = pd.read_parquet(out / "invocations.parquet").drop(columns=list(FUNCTION_COLUMNS))
    pd.testing.assert_frame_equal(sample, sampled.invocations, check_categorical=False)
    about = _about(out / "invocations.parquet")
    assert about["requests"] == "sample" and about["fraction"] == 0.2
    assert about["rows_total"] == n and about["rows_written"] == len(sample)
    # Binomial(n, 0.2): within 5 standard deviations.
    assert abs(len(sample) - 0.2 * n) <= 5 * math.sqrt(n * 0.2 * 0.8)
    full = res.invocations.set_index("request_id")
    rows = full.loc[sample["request_id"]].reset_index()
    pd.testing.assert_frame_equal(sample, rows[sample.columns], check_categorical=False)
    again = pd.read_parquet(_run(tmp_path, "again", 0.2)[1] / "invocations.parquet")
    pd.testing.assert_frame_equal(sample, again.drop(columns=list(FUNCTION_COLUMNS)))  # the same run writes the same sample
    # Cold and warm requests alike: the sample's cold share is the run's, within its error.
    p = res.invocations["cold"].mean()
    assert abs(sample["cold"].mean() - p) <= 5 * math.sqrt(p * (1 - p) / len(sample)) + 1e-9


def test_none_writes_no_request_log_and_the_summary_still_counts_every_request(tmp_path):
    res, out = _run(tmp_path, "none", "none")
    assert not (out / "invocations.parquet").exists()
    assert (out / "instances.parquet").is_file() and (out / "summary.json").is_file()
    full = simulate(DATA)
    assert res.summary["invocations"] == full.summary["invocations"]
    assert res.summary["latency_ms"] == full.summary["latency_ms"]


@pytest.mark.parametrize("bad", [0, 1.5, -1, "some", True, float("nan")])
def test_a_bad_value_names_the_field(bad):
    with pytest.raises(ScenarioError, match=r"outputs\.requests: must be all, none or a fraction"):
        parse_scenario({**DATA, "outputs": {"requests": bad}})


def test_cli_requests_option_and_what_needs_every_request(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(DATA))
    for name, value in (("sample", "0.1"), ("none", "none")):
        out = runner.invoke(app, ["run", str(path), "-q", "--requests", value, "--out",
                                  str(tmp_path / name)])  # fmt: skip
        assert out.exit_code == 0, out.output
    assert yaml.safe_load((tmp_path / "sample" / "scenario.yaml").read_text())["outputs"] == {
        "requests": 0.1}
    bad = runner.invoke(app, ["run", str(path), "--requests", "2", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--requests" in bad.output and not (tmp_path / "x").exists()
    for folder, said in (("sample", "holds a sample"), ("none", "wrote no invocations.parquet")):
        for cmd in (["compare", str(tmp_path / folder), "--out", str(tmp_path / f"c-{folder}")],
                    ["logs", "export", str(tmp_path / folder)]):  # fmt: skip
            out = runner.invoke(app, cmd)
            assert out.exit_code == 2, out.output
            assert said in out.output and "--requests all" in out.output
            assert "Traceback" not in out.output


@pytest.mark.parametrize("epoch", ["nan", "inf", "-1e12", "1e20"])
def test_logs_export_refuses_a_time_zero_that_is_no_date(tmp_path, epoch):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(DATA))
    assert runner.invoke(app, ["run", str(path), "-q", "--out", str(tmp_path / "r")]).exit_code == 0
    out = runner.invoke(app, ["logs", "export", str(tmp_path / "r"), "--epoch-s", epoch,
                              "--out", str(tmp_path / "logs")])  # fmt: skip
    assert out.exit_code == 2, out.output
    assert "--epoch-s" in out.output and "seconds since 1970" in out.output
    assert "Traceback" not in out.output and not (tmp_path / "logs").exists()
