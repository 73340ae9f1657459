"""The command line: runs, overrides, and bad input (exit 2, the field named, no traceback,
nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from coldsim.cli import app
from conftest import ROOT
from typer.testing import CliRunner

runner = CliRunner()

GOOD = """\
name: tiny
seed: 3
duration_s: 600
warmup_s: 60
platform:
  keep_alive: {policy: fixed, idle_s: 120}
functions:
  - name: api
    memory_mb: 256
    duration: {dist: exponential, mean_ms: 80}
    arrivals: {process: poisson, rate_per_s: 2}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_run_writes_every_output(tmp_path):
    out = tmp_path / "out"
    res = invoke("run", write(tmp_path, GOOD), "--out", out)
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert names == {
        ".coldsim.json",
        "summary.json",
        "scenario.yaml",
        "invocations.parquet",
        "instances.parquet",
        "throttles.parquet",
        "latency_cdf.png",
        "instances_over_time.png",
        "cold_starts_over_time.png",
    }
    summary = json.loads((out / "summary.json").read_text())
    inv = pd.read_parquet(out / "invocations.parquet")
    assert summary["invocations"] == int(inv["counted"].sum())
    assert summary["seed"] == 3 and summary["coldsim_version"]
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())
    # Defaults are recorded.
    assert resolved["platform"]["max_lifetime_s"] == {
        "dist": "uniform",
        "low_s": 6300.0,
        "high_s": 8100.0,
    }
    assert resolved["functions"][0]["init"]["dist"] == "lognormal"
    # The resolved scenario reproduces the run exactly.
    again = tmp_path / "again"
    assert invoke("run", out / "scenario.yaml", "--out", again, "--quiet").exit_code == 0
    pd.testing.assert_frame_equal(inv, pd.read_parquet(again / "invocations.parquet"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_overrides_seed_and_duration(tmp_path):
    out = tmp_path / "out"
    res = invoke("run", write(tmp_path, GOOD), "--out", out, "--quiet", "--seed", "9",
                 "--duration-s", "300", "--set", "functions.0.arrivals.rate_per_s=20",
                 "--set", "platform.idle_selection=lru")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output == ""
    sc = yaml.safe_load((out / "scenario.yaml").read_text())
    assert (sc["seed"], sc["duration_s"]) == (9, 300)
    assert sc["functions"][0]["arrivals"]["rate_per_s"] == 20
    assert sc["platform"]["idle_selection"] == "lru"
    inv = pd.read_parquet(out / "invocations.parquet")
    assert inv["arrival_s"].max() < 300 and len(inv) > 20 * 300 * 0.8


def test_rerun_replaces_its_own_output_and_never_a_users_file(tmp_path):
    out = tmp_path / "out"
    path = write(tmp_path, GOOD)
    assert invoke("run", path, "--out", out, "-q").exit_code == 0
    assert invoke("run", path, "--out", out, "-q", "--seed", "4").exit_code == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 4
    (out / "notes.txt").write_text("my analysis")
    (out / "figures").mkdir()
    res = invoke("run", path, "--out", out, "-q", "--seed", "5")
    assert res.exit_code == 2
    assert "files coldsim did not write (figures, notes.txt)" in res.output
    assert (out / "notes.txt").read_text() == "my analysis"
    assert json.loads((out / "summary.json").read_text())["seed"] == 4


BAD = [
    ("name: x\nfunctions: [\n", "malformed YAML: line"),
    (GOOD + "colour: blue\n", "colour: unknown field (allowed here: name, seed"),
    (GOOD.replace("rate_per_s: 2", "rate_per_s: -2"), "functions[0].arrivals.rate_per_s: Input should be greater than 0"),
    (GOOD.replace("mean_ms: 80", "mean_ms: 80, extra: 1"), "functions[0].duration.extra: unknown field"),
    (GOOD.replace("exponential", "weibull"), "functions[0].duration.dist: unknown dist 'weibull'"),
    (GOOD.replace("warmup_s: 60", "warmup_s: 600"), "warmup_s: must be less than duration_s (600.0)"),
    (GOOD.replace("{process: poisson, rate_per_s: 2}", "{process: trace, path: missing.csv}"),
     "functions[0].arrivals.path: file not found"),
    (GOOD.replace("policy: fixed, idle_s: 120", "policy: fixed, idle_s: -1"), "platform.keep_alive.idle_s"),
    (GOOD.replace("memory_mb: 256", "memory_mb: 64"), "functions[0].memory_mb: 64 MB is outside aws-lambda's range, 128-10,240 MB"),
    (GOOD + GOOD[GOOD.index("  - name"):], "functions[1].name: 'api' repeats [0].name"),
]  # fmt: skip


BAD += [
    (GOOD.replace("rate_per_s: 2", "rate_per_s: .inf"), "functions[0].arrivals.rate_per_s: Input should be a finite number"),
    (GOOD.replace("rate_per_s: 2", "rate_per_s: 1.0e+300"), "functions: about 6e+302 requests expected"),
    (GOOD.replace("{process: poisson, rate_per_s: 2}", "{process: periodic, interval_s: 10, offset_s: .nan}"), "functions[0].arrivals.offset_s"),
    (GOOD.replace("mean_ms: 80", "mean_ms: 80, cv: 1.0e-200").replace("exponential", "gamma"), "functions[0].duration.cv"),
    (GOOD.replace("{policy: fixed, idle_s: 120}", "{policy: random, idle_s: {dist: uniform, low_ms: 1, high_ms: 2}}"), "platform.keep_alive.idle_s.low_s: required field is missing"),
    (GOOD.replace("  keep_alive:", "  max_lifetime_s: -3\n  keep_alive:"), "platform.max_lifetime_s: Input should be greater than 0"),
    (GOOD + "platform: {max_lifetime_s: 3}\n", "line 12, column 1: key 'platform' repeats the one on line 5"),
    (GOOD.replace("memory_mb: 256", "memory_mb: 256\n    provisioned_concurrency: [{at_s: 5, count: 2}, {at_s: 1, count: 1}]"), "provisioned_concurrency steps must have increasing at_s"),
    (GOOD.replace("memory_mb: 256", "memory_mb: 256\n    invocation: maybe"), "functions[0].invocation: Input should be 'sync' or 'async'"),
    (GOOD.replace("memory_mb: 256", "memory_mb: 256\n    runtime: cobol"), "functions[0].runtime: Input should be"),
    (GOOD.replace("memory_mb: 256", "memory_mb: 256\n    reserved_concurrency: 950"), "leaving 50 of the concurrency_limit 1000 unreserved"),
    ("name: x\nduration_s: 10\nfunctions: null\n", "functions: Input should be a valid list"),
    ("", "the top level must be a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_input_names_the_field_and_exits_2(tmp_path, text, message):
    path = write(tmp_path, text)
    out = tmp_path / "out"
    res = invoke("run", path, "--out", out)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert str(path) in res.output
    assert "Traceback" not in res.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]
    assert invoke("validate", path).exit_code == 2


def test_missing_scenario_file_and_bad_set(tmp_path):
    res = invoke("run", tmp_path / "nope.yaml")
    assert res.exit_code == 2 and "scenario file not found" in res.output
    path = write(tmp_path, GOOD)
    res = invoke("run", path, "--set", "functions.5.memory_mb=512")
    assert res.exit_code == 2 and "--set functions.5.memory_mb" in res.output
    res = invoke("run", path, "--set", "functions.0.memory_mb=lots")
    assert res.exit_code == 2 and "functions[0].memory_mb" in res.output


def test_malformed_trace_rows_name_file_and_line(tmp_path):
    (tmp_path / "t.csv").write_text("timestamp_s\n1.0\n2.0\nsoon\n")
    path = write(
        tmp_path, GOOD.replace("{process: poisson, rate_per_s: 2}", "{process: trace, path: t.csv}")
    )
    res = invoke("run", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert "t.csv" in res.output and "line 4" in res.output and "'soon'" in res.output
    assert not (tmp_path / "out").exists()


def test_validate_and_schema(tmp_path):
    res = invoke("validate", write(tmp_path, GOOD))
    assert res.exit_code == 0 and "valid" in res.output
    res = invoke("schema")
    schema = json.loads(res.output)
    assert schema["additionalProperties"] is False
    assert "duration_s" in schema["required"]
    assert "keep_alive" in json.dumps(schema)


def test_bundled_scenarios_are_valid():
    paths = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        assert invoke("validate", path).exit_code == 0, path


def test_console_script_exit_code_without_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("rate_per_s: 2", "rate_per_s: 0"))
    proc = subprocess.run([sys.executable, "-m", "coldsim", "run", str(path)],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert "rate_per_s" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_output_folder_that_is_not_a_run_is_never_replaced(tmp_path):
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "thesis.tex").write_text("x")
    for target in (keep, tmp_path / ".", Path("/")):
        res = invoke("run", write(tmp_path, GOOD), "--out", target, "-q")
        assert res.exit_code == 2, target
        assert "refusing to replace" in res.output or "cannot be an output folder" in res.output
    assert (keep / "thesis.tex").read_text() == "x"


def test_non_utf8_scenario_and_markup_in_messages(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: t\n# caf\xe9\n")
    res = invoke("run", path)
    assert res.exit_code == 2 and "not UTF-8" in res.output
    res = invoke("run", write(tmp_path, GOOD), "--set", "name=a[/b]")
    assert res.exit_code == 2 and "name" in res.output and "a[/b]" in res.output
    bad = GOOD.replace(
        "exponential, mean_ms: 80", "empirical, percentiles_ms: {0: 1, 100: 2, x: 3}"
    )
    res = invoke("run", write(tmp_path, bad))
    assert res.exit_code == 2 and "percentiles_ms.x" in res.output


def test_trace_column_is_checked_by_validate(tmp_path):
    (tmp_path / "t.csv").write_text("ts\n1.0\n")
    text = GOOD.replace("{process: poisson, rate_per_s: 2}", "{process: trace, path: t.csv}")
    res = invoke("validate", write(tmp_path, text))
    assert res.exit_code == 2
    assert "functions[0].arrivals" in res.output and "no column 'timestamp_s'" in res.output


def test_resolved_scenario_with_a_trace_reruns_from_anywhere(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("timestamp_s\n1.0\n2.5\n")
    text = GOOD.replace("{process: poisson, rate_per_s: 2}", "{process: trace, path: data/t.csv}")
    monkeypatch.chdir(tmp_path)
    assert invoke("run", write(tmp_path, text), "--out", "res", "-q").exit_code == 0
    monkeypatch.chdir(tmp_path / "res")
    assert invoke("run", "scenario.yaml", "--out", tmp_path / "again", "-q").exit_code == 0


def test_readme_scenario_block_is_valid(tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Scenario format")[1].split("```yaml\n")[1].split("```")[0]
    res = invoke("validate", write(tmp_path, block))
    assert res.exit_code == 0, res.output


def test_a_run_of_many_functions_prints_the_busiest(tmp_path):
    """A trace day has thousands of functions: the table shows the 20 busiest and says how
    many more summary.json holds."""
    fns = [{"name": f"f{i:02d}", "duration": {"dist": "constant", "value_ms": 10},
            "arrivals": {"process": "poisson", "rate_per_s": 0.05 * (i + 1)}} for i in range(25)]
    path = write(tmp_path, yaml.safe_dump({"name": "many", "duration_s": 600, "functions": fns}))
    out = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o")], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "the 20 busiest of 25 functions" in out.output and "5 more functions" in out.output
    assert "f24" in out.output and "f00 " not in out.output  # the busiest in, the quietest out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(summary["per_function"]) == 25
