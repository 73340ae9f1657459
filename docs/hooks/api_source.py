"""MkDocs hook: lets mkdocstrings read the package `coldsim` from its source folder.

The package's source is simulator/ (the project's fixed layout), which griffe cannot find
under the name coldsim, even through the editable install's mapping. It reads the sources
statically (nothing is imported) through a temporary folder holding `coldsim`, a link to
simulator/.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority

SOURCE = Path(__file__).resolve().parents[2] / "simulator"

_folder: Path | None = None


@event_priority(100)  # before mkdocstrings sets up its handlers
def on_config(config):
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="coldsim-api-"))
        (_folder / "coldsim").symlink_to(SOURCE, target_is_directory=True)
    python = config.plugins["mkdocstrings"].config.handlers.setdefault("python", {})
    python["paths"] = [str(_folder)]
    return config


def on_shutdown():
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
