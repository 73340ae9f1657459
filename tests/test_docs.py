"""The documentation is true: the policy guide's code runs as written, and every source key
the product cites is defined in docs/sources.md (never in the test data users do not have)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml
from coldsim.cli import app
from conftest import ROOT, const, function, scenario
from typer.testing import CliRunner

GUIDE = ROOT / "docs" / "policies.md"


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guides_keep_alive_policy_runs_from_the_cli_and_beats_a_short_fixed_window(tmp_path):
    module = code_blocks("python")[0]
    body = module[module.index("class GapPercentile"):]
    assert len(body.strip().splitlines()) <= 30, "the guide's example should stay short"
    (tmp_path / "mypolicies.py").write_text(module + "\n\n" + code_blocks("python")[1])
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.01},
                 init=const(500), duration=const(100))  # fmt: skip
    data = scenario(f, duration_s=200_000, idle_s=60, seed=3)
    (tmp_path / "fixed.yaml").write_text(yaml.safe_dump(data))
    data["platform"]["keep_alive"] = yaml.safe_load(code_blocks("yaml")[0])["platform"]["keep_alive"]
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(data))
    summaries = {}
    for name in ("fixed", "mine"):
        cmd = [sys.executable, "-m", "coldsim", "run", "-q", f"{name}.yaml", "--out", name]
        if name == "mine":
            cmd.insert(4, "--allow-import")
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        summaries[name] = json.loads((tmp_path / name / "summary.json").read_text())
    # Gaps average 100 s: a 60 s window misses most; the 95th percentile of gaps keeps most.
    assert summaries["fixed"]["cold_start_rate"] > 0.5
    assert summaries["mine"]["cold_start_rate"] < 0.15
    assert summaries["mine"]["idle_gb_s"] > summaries["fixed"]["idle_gb_s"]
    resolved = yaml.safe_load((tmp_path / "mine" / "scenario.yaml").read_text())
    assert resolved["platform"]["keep_alive"] == {
        "policy": "mypolicies:GapPercentile", "scope": None, "q": 95.0, "window": 200,
        "min_s": 10.0, "max_s": 1800.0,
    }  # fmt: skip


def test_every_cited_source_is_defined_and_no_test_data_is_cited():
    defined = set(re.findall(r"^\| `([a-z0-9-]+)` \|", (ROOT / "docs" / "sources.md").read_text(), re.M))
    product = [*(ROOT / "simulator").rglob("*.py"), *(ROOT / "scenarios").glob("*.yaml"),
               ROOT / "README.md", *(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "docs").glob("*.md")]  # fmt: skip
    schema = CliRunner().invoke(app, ["schema"]).output
    cited = set()
    for text in [schema, *(p.read_text() for p in product)]:
        assert "lambda-facts" not in text and "FORMATS.md" not in text and "shared/" not in text
        for group in re.findall(r"\[sources: ([^\]]+)\]", text):
            cited.update(k.strip() for k in group.split(",") if k.strip() != "key")
    assert cited, "the schema cites its sources"
    assert cited <= defined, f"undefined source keys: {sorted(cited - defined)}"


def test_the_readmes_policy_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "class TwiceLastGap" in b]
    (tmp_path / "mypolicies.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    f = function(arrivals={"process": "periodic", "interval_s": 100}, duration=const(10))
    data = scenario(f, duration_s=1000)
    data["platform"]["keep_alive"] = {"policy": "mypolicies:TwiceLastGap", "factor": 3}
    from coldsim import simulate

    res = simulate(data, allow_import=True)
    # Before a gap is seen the window is 3 x 60 s, long enough: one cold start in ten.
    assert res.invocations["cold"].tolist() == [True] + [False] * 9
