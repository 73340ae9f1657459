"""The package's layout: imports go one way, down the layers, and docs/layout.md names every
module. A module may import from its own layer and the layers below it, never from above (at
run time: imports under TYPE_CHECKING are only annotations)."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

SRC = ROOT / "simulator"
#: Bottom first. A top-level module is its own entry; a subpackage is one layer.
LAYERS = [
    {"errors", "model", "version", "rng", "distributions", "runtimes"},
    {"policies"},
    {"workload"},
    {"scenario"},
    {"engine"},
    {"reporting"},
    {"simulation"},
    {"studies", "cloudwatch"},
    {"cli"},
    {"__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in SRC.rglob("*.py"):
        out[path.relative_to(SRC).with_suffix("").as_posix()] = ast.parse(path.read_text())
    return out


def _runtime_imports(tree: ast.Module, module: str) -> list[str]:
    """Absolute targets (as top-level entries) of the module's relative imports, skipping
    `if TYPE_CHECKING:` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    package = module.split("/")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level and id(node) not in skip:
            base = package[: len(package) - (node.level - 1)]
            parts = base + (node.module.split(".") if node.module else [])
            names = parts or [alias.name for alias in node.names]
            out += [names[0]] if parts else names
    return out


def _entry(module: str) -> str:
    return module.split("/")[0]


def test_every_module_has_a_layer():
    unknown = {_entry(m) for m in _modules()} - RANK.keys()
    assert not unknown, f"modules with no layer in tests/test_layout.py: {sorted(unknown)}"


def test_imports_go_down_the_layers():
    upward = []
    for module, tree in _modules().items():
        mine = RANK[_entry(module)]
        for target in _runtime_imports(tree, module):
            if RANK.get(target, -1) > mine:
                upward.append(f"{module} imports {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(set(upward)))


def test_the_layout_page_names_every_module():
    page = (ROOT / "docs" / "layout.md").read_text()
    sections = dict(re.findall(r"## `?([^`\n]+?)/?`?\n\n((?:- .*\n)+)", page))
    listed = {
        (f"{folder}/" if folder != "top level" else "") + name
        for folder, body in sections.items()
        for name in re.findall(r"^- `([^`]+\.py)`", body, flags=re.M)
    }
    actual = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert actual - listed == set(), f"not in docs/layout.md: {sorted(actual - listed)}"
    assert listed - actual == set(), f"in docs/layout.md but gone: {sorted(listed - actual)}"
