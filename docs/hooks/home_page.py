"""MkDocs hook: the site's home page is the README, its links made relative to docs/."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

README = Path(__file__).resolve().parents[2] / "README.md"


def home(text: str) -> str:
    # On a code host the README links docs/x.md and notebooks/; on the site the pages sit
    # beside the home page and the notebooks have an index of their own.
    return text.replace("](docs/", "](").replace("](notebooks/)", "](notebooks.md)")


def on_files(files, config):
    files.append(File.generated(config, "index.md", content=home(README.read_text())))
    return files
