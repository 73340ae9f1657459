"""The notebooks run top to bottom in a real kernel (nbclient), stored without outputs: a
reader sees them executed, with their figures, on the documentation site (`make docs`
executes them; the strict build in tests/test_docs.py does not, since this test runs them)."""

from __future__ import annotations

import json
import time

import nbformat
import pytest
from conftest import ROOT, TRACES
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Checks run in the notebook's own kernel after its last cell, on the objects it made.
CHECKS = {
    "global_state.ipynb": (
        "titles = [fig.axes[0].get_title() for fig in figures.values()]\n"
        "assert titles == ['Connection cached in global state: connections held to db',\n"
        "                  'Connection opened per request (not cached): connections held to db'],"
        " titles\n"
        "assert len({fig.axes[0].get_ylim() for fig in figures.values()}) == 1  # one scale"
    ),
}


def test_there_are_two_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"exploration.ipynb", "capacity_planning.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    traced = {"atc20_tradeoff.ipynb", "faascache.ipynb", "forecast_prewarm.ipynb"}
    if path.name in traced and not TRACES.is_dir():
        pytest.skip(f"no trace excerpts at {TRACES} (set COLDSIM_TRACES)")
    monkeypatch.setenv("COLDSIM_TRACES", str(TRACES))
    raw = json.loads(path.read_text())
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code), (
        "store notebooks without outputs"
    )
    nb = nbformat.read(path, as_version=4)
    if path.name in CHECKS:
        nb.cells.append(nbformat.v4.new_code_cell(CHECKS[path.name]))
    # Run in a copy of the layout, so that what the notebook writes under ../results lands
    # in a temporary folder, not in the user's results/.
    (tmp_path / "notebooks").mkdir()
    for module in (ROOT / "notebooks").glob("*.py"):  # policies the notebooks import
        (tmp_path / "notebooks" / module.name).symlink_to(module)
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    (tmp_path / "results").mkdir()
    started = time.perf_counter()
    NotebookClient(
        nb, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path / "notebooks")}},
    ).execute()  # fmt: skip
    assert time.perf_counter() - started < 60, "a notebook should run in under a minute"


def test_figures_coldsim_returns_show_as_images():
    # coldsim draws without pyplot: without its PNG formatter, Jupyter prints the figure's
    # repr, "<Figure size ...>", instead of the image.
    cell = "import coldsim\nfrom coldsim import style\nfig, ax = style.figure()\nax.plot([0, 1])\nfig"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert any("image/png" in out.get("data", {}) for out in nb.cells[0].outputs)
