"""MkDocs hook: the notebooks in notebooks/ as pages, executed with their figures.

Each notebook runs in a real kernel (nbclient, as tests/test_notebooks.py runs them) inside a
temporary copy of the repository's layout, so what it writes under ../results never lands in
the user's results/; mkdocs-jupyter then renders the executed copy. COLDSIM_DOCS_EXECUTE=0
renders them unexecuted (the strict build in the test suite does, since the notebook test
already runs every notebook). The notebooks that replay Azure trace excerpts need them in the
folder COLDSIM_TRACES names: without it they are shown unexecuted, and their page says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
#: Notebooks that read the Azure trace excerpts (as in tests/test_notebooks.py).
TRACED = {"atc20_tradeoff.ipynb", "faascache.ipynb", "forecast_prewarm.ipynb"}
TIMEOUT_S = 300  # per cell; a notebook's whole run is checked (under a minute) by the tests

_workdir: Path | None = None


def traces() -> Path:
    return Path(os.environ.get("COLDSIM_TRACES") or ROOT.parent / "shared" / "traces")


def executing() -> bool:
    return os.environ.get("COLDSIM_DOCS_EXECUTE", "1").strip().lower() not in {"0", "false", "no"}


def note(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(f"> **Note.** {text}")


def prepare(path: Path, layout: Path) -> None:
    """Write the notebook as its page shows it into `layout`: executed there, or with a note
    saying why not."""
    nb = nbformat.read(path, as_version=4)
    out = layout / "notebooks" / path.name
    if not executing():
        nb.cells.insert(1, note("Shown without outputs: this copy of the site was built with "
                                "`COLDSIM_DOCS_EXECUTE=0`. `make docs` runs every notebook."))
    elif path.name in TRACED and not traces().is_dir():
        nb.cells.insert(1, note(
            "Shown without outputs: this notebook replays excerpts of the Azure Functions "
            "traces, which were not found when this site was built. Set `COLDSIM_TRACES` to "
            "the folder that holds them and run `make docs` (or the notebook) to see them."))
    else:
        from nbclient import NotebookClient

        print(f"INFO    -  executing notebooks/{path.name}", flush=True)
        client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                resources={"metadata": {"path": str(out.parent)}})  # fmt: skip
        # The kernel's own log (its transport, its start-up) is noise here; a failing cell
        # still stops the build with its traceback.
        # Jupyter's inline backend, as a reader's kernel has: a notebook's plt.show() draws
        # nothing under a non-interactive MPLBACKEND inherited from the caller.
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
        client.execute(env={**env, "COLDSIM_TRACES": str(traces())}, stderr=subprocess.DEVNULL)
    nbformat.write(nb, out)


def layout_copy() -> Path:
    """A temporary copy of what the notebooks reach: ../scenarios, ../benchmarks, the
    policies they import from their own folder, and an empty ../results."""
    work = Path(tempfile.mkdtemp(prefix="coldsim-docs-"))
    (work / "notebooks").mkdir()
    for module in NOTEBOOKS.glob("*.py"):
        (work / "notebooks" / module.name).symlink_to(module)
    for name in ("scenarios", "benchmarks"):
        (work / name).symlink_to(ROOT / name)
    (work / "results").mkdir()
    return work


@event_priority(100)  # before mkdocs-jupyter looks for notebooks among the files
def on_files(files, config):
    global _workdir
    on_shutdown()  # `mkdocs serve` rebuilds: one copy at a time
    _workdir = layout_copy()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        prepare(path, _workdir)
        # An ordinary file whose source folder is the copy (mkdocs-jupyter wraps it).
        files.append(File(f"notebooks/{path.name}", str(_workdir), config.site_dir,
                          config.use_directory_urls))  # fmt: skip
    return files


def on_shutdown():
    if _workdir is not None:
        shutil.rmtree(_workdir, ignore_errors=True)


def on_page_markdown(markdown, page, config, files):
    # Pages link notebooks as ../notebooks/x.ipynb, which is right on a code host, where
    # docs/ and notebooks/ are siblings; on the site the notebooks live under docs' root.
    if "/" not in page.file.src_uri:
        markdown = markdown.replace("](../notebooks/", "](notebooks/")
    return markdown
