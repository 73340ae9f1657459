"""Notebooks are stored without outputs and their code runs top to bottom."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] for c in code), "store notebooks without outputs"
    monkeypatch.chdir(path.parent)
    namespace: dict = {}
    for cell in code:
        exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)  # noqa: S102
    assert os.getcwd() == str(path.parent)
