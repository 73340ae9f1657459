"""The documentation is true: the policy guide's code runs as written, every source key
the product cites is defined in docs/sources.md (never in the test data users do not have),
the README's first scenario gives what it says, and the site builds strictly (a broken link
or reference fails) with every field, command and notebook on it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
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


def test_the_guides_first_policy_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "own-policy.md").read_text(), flags=re.S)
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


# --- the README's first scenario -----------------------------------------------------------


def test_the_readmes_first_scenario_gives_the_cold_starts_it_states(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Scenario format")[1].split("\n## ")[0]
    block = section.split("```yaml\n")[1].split("```")[0]
    (tmp_path / "first.yaml").write_text(block)
    commands = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0].replace("\\\n", " ")
    runs = []
    for line in commands.splitlines():
        args = line.split("#")[0].replace("'", "").split(maxsplit=1)[1]  # `.venv/bin/coldsim ...`
        parts = args.split(" --set ")
        cmd = [sys.executable, "-m", "coldsim", *parts[0].split(), "-q"]
        cmd += [x for p in parts[1:] for x in ("--set", p.strip())]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        out = parts[0].split("--out ")[1].split()[0] if "--out" in parts[0] else "results/first"
        runs.append(json.loads((tmp_path / out / "summary.json").read_text()))
    default, longer = runs
    stated = re.search(r"(\d+) of the (\d+) requests start cold \(([\d.]+)%\); keeping instances "
                       r"30 minutes leaves (\d+) \(([\d.]+)%\) for (\d+)% more idle GB-s",
                       " ".join(section.split()))  # fmt: skip
    assert stated, "the README states the first scenario's cold starts"
    cold, total, pct, cold_30, pct_30, more = stated.groups()
    assert (default["cold_starts"], default["invocations"]) == (int(cold), int(total))
    assert longer["cold_starts"] == int(cold_30) and longer["invocations"] == int(total)
    assert f"{100 * default['cold_start_rate']:.1f}" == pct
    assert f"{100 * longer['cold_start_rate']:.1f}" == pct_30
    assert round(100 * (longer["idle_gb_s"] / default["idle_gb_s"] - 1)) == int(more)


def test_the_scenario_guides_example_is_valid(tmp_path):
    block = (ROOT / "docs" / "scenarios.md").read_text().split("```yaml\n")[1].split("```")[0]
    (tmp_path / "s.yaml").write_text(block)
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0, res.output


def test_relative_links_in_the_readme_and_docs_point_at_files_that_exist():
    """As a code host shows them (the strict site build checks the site's own links)."""
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    generated = {ROOT / "docs" / hook(name).PAGE for name in ("schema_page", "cli_page")}
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            path = (page.parent / target).resolve()
            if "://" not in target and not path.exists() and path not in generated:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken


# --- the documentation site ------------------------------------------------------------------


def hook(name: str):
    path = ROOT / "docs" / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scenario_reference_has_every_field_of_every_block_with_its_default():
    from coldsim import Scenario

    schema, reference = Scenario.model_json_schema(), hook("schema_page")
    page = reference.render(schema)
    sections = dict(re.findall(r"^## .*?\{ #([\w-]+) \}\n(.*?)(?=^## |\Z)", page, flags=re.M | re.S))
    blocks = {"def-scenario": schema} | {
        reference.anchor(name): model for name, model in schema["$defs"].items()}
    assert set(sections) == set(blocks)
    for anchor, model in blocks.items():
        for name, prop in model.get("properties", {}).items():
            (row,) = [r for r in sections[anchor].splitlines() if r.startswith(f"| `{name}` |")]
            if name in model.get("required", []):
                assert "*required*" in row
            elif "default" in prop:
                assert json.dumps(prop["default"], ensure_ascii=False).replace("|", "\\|") in row
    # A row read by hand: the type, bound, default and meaning of `seed`.
    assert "| `seed` | integer; ≥ 0 | `0` | Drives every random stream of the run. |" in page
    # Every link in the page goes to a block the page holds (or to the sources page).
    for target in re.findall(r"\]\(([^)]+)\)", page):
        assert target == "../sources.md" or target[1:] in sections, target


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site as the strict build makes it, notebooks unexecuted: tests/test_notebooks.py
    runs every notebook already, and `make docs` runs them for the site."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "COLDSIM_DOCS_EXECUTE": "0", "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    return out


def test_the_site_builds_strictly_with_the_guide_references_and_notebooks(site):
    home = (site / "index.html").read_text()
    assert "A first scenario" in home and 'href="usage/"' in home  # README, links made local
    for page in ("usage", "scenarios", "outputs", "policies", "sources", "reference/scenario",
                 "reference/api", "reference/cli", "notebooks"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "reference" / "api" / "index.html").read_text()
    for name in ("simulate", "load_scenario", "KeepAlivePolicy", "sweep", "plan"):
        assert f'id="coldsim.{name}"' in api, name
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("run", "validate", "schema", "sweep", "compare", "plan", "logs fit", "trace inspect"):
        assert f"coldsim {command}</code>" in cli, command
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / nb.stem / "index.html").read_text()
        assert "COLDSIM_DOCS_EXECUTE=0" in html, nb.name  # says why it shows no outputs
        assert (site / "notebooks" / nb.stem / nb.name).is_file()  # offered for download
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!ENV", ""))["nav"]
    listed = {p for section in nav if "Notebooks" in section for p in section["Notebooks"]}
    assert {f"notebooks/{nb.name}" for nb in (ROOT / "notebooks").glob("*.ipynb")} <= listed


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path):
    """The strictness the site relies on, with its own validation settings."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!ENV", ""))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n[gone](gone.md), [here](#nowhere)\n")
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(
        {"site_name": "t", "strict": True, "validation": config["validation"]}))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-d", str(tmp_path / "site")],
                          cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0
    assert "gone.md" in proc.stderr and "#nowhere" in proc.stderr


def test_make_docs_executes_a_notebook_in_a_copy_of_the_layout_with_its_figures(tmp_path, monkeypatch):
    """The site's notebooks run where ../scenarios is the repository's and ../results a
    temporary folder (a small notebook here: tests/test_notebooks.py runs the real ones)."""
    pages = hook("notebook_pages")
    monkeypatch.setenv("COLDSIM_DOCS_EXECUTE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the caller's; pyplot must still show inline
    cell = ("from pathlib import Path\nfrom coldsim import load_scenario, style\n"
            "import matplotlib.pyplot as plt\n"
            "sc = load_scenario(Path('../scenarios/default.yaml'))\n"
            "Path('../results/written.txt').write_text(sc.name)\n"
            "plt.plot([0, 1])\nplt.show()\n"
            "fig, ax = style.figure()\nax.plot([0, 1])\nfig")  # fmt: skip
    source = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Probe"),
                                                   nbformat.v4.new_code_cell(cell)]), source)
    before = sorted((ROOT / "results").iterdir())
    layout = pages.layout_copy()
    try:
        pages.prepare(source, layout)
        nb = json.loads((layout / "notebooks" / "probe.ipynb").read_text())
        assert (layout / "results" / "written.txt").read_text() == "checkout-api"
    finally:
        shutil.rmtree(layout)
    images = [o for o in nb["cells"][1]["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 2  # pyplot's and coldsim's
    assert sorted((ROOT / "results").iterdir()) == before


def test_a_notebook_that_needs_the_traces_is_shown_unexecuted_and_says_why(tmp_path, monkeypatch):
    pages = hook("notebook_pages")
    monkeypatch.setenv("COLDSIM_DOCS_EXECUTE", "1")
    monkeypatch.setenv("COLDSIM_TRACES", str(tmp_path / "absent"))
    (tmp_path / "notebooks").mkdir()
    for name in sorted(pages.TRACED):
        pages.prepare(ROOT / "notebooks" / name, tmp_path)
        nb = json.loads((tmp_path / "notebooks" / name).read_text())
        assert "COLDSIM_TRACES" in "".join(nb["cells"][1]["source"]), name
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), name
