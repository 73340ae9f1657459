"""The `coldsim` command line (Typer): `main` is the console script."""

from . import logs  # noqa: F401  (registers `coldsim logs`)
from .common import app
from .main import main

__all__ = ["app", "main"]
