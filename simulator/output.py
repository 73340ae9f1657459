"""Output folders: the one rule for where coldsim may write, and atomic writes.

Every command that writes a folder (run, sweep, compare, trace inspect, and the Python API
behind them) goes through `check_output_dir` with its kind: a folder is (re)written only if it
is new, empty, or holds earlier output of the same kind (its marker file or folder). A whole
folder is written beside its destination and renamed into place (`write_folder`); single files
are written to a temporary name and renamed (`write_file`), so a reader never sees half a
result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

#: What marks a folder as earlier output of each kind.
MARKERS = {"run": "summary.json", "sweep": "runs", "compare": "compare.csv",
           "inspect": "inspect.json"}  # fmt: skip


class OutputDirError(OSError):
    """The output folder cannot be (re)placed."""


def check_output_dir(out_dir: str | Path, kind: str) -> Path:
    """The absolute output folder, if writing there replaces nothing but earlier output of
    the same kind (a folder holding its marker)."""
    marker = MARKERS[kind]
    out = Path(out_dir).resolve()
    if out.exists():
        if not out.is_dir():
            raise OutputDirError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / marker).exists():
            raise OutputDirError(
                f"{out} is not empty and holds no earlier coldsim {kind} output (no "
                f"{marker}): refusing to replace it; choose another --out"
            )
    if out.parent == out:
        raise OutputDirError(f"{out} cannot be an output folder")
    return out


def write_folder(out: Path, fill: Callable[[Path], None]) -> None:
    """Fill a temporary sibling of `out`, then put it in out's place by renames, so a reader
    never sees a half-written folder (callers check first that `out` may be replaced)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_file(path: Path, write: Callable[[Path], None]) -> None:
    """write(tmp) a temporary sibling of `path`, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
