"""Output folders and files: where coldsim may write, and writing atomically.

The rule, for every command that writes (run, sweep, compare, trace inspect, trace
to-scenario) and the Python API behind them: coldsim never deletes or overwrites what it did
not write. A folder is written only if it is new, empty, or holds earlier output of the same
kind and nothing else: each output folder carries a manifest (`.coldsim.json`) listing what
coldsim wrote there (for folders written before manifests, the kind's own file names stand in
for it). Anything else in the folder stops the command, naming what it found. A whole folder
is written beside its destination and renamed into place (`write_folder`); single files are
written under a temporary name and renamed (`write_file`), so a reader never sees half a
result.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

MANIFEST = ".coldsim.json"
#: What marks a folder as earlier output of each kind...
MARKERS = {"run": "summary.json", "sweep": "runs", "compare": "compare.csv",
           "inspect": "inspect.json", "logs-fit": "fit.json", "logs": ".export.json",
           "logs-backtest": "backtest.json"}  # fmt: skip
#: ...and the exact names each kind wrote before manifests existed (older coldsim versions):
#: in a folder without a manifest only these count as coldsim's.
_FIGURES = ("latency_cdf", "cold_start_rate", "cost_vs_p99", "instances_over_time",
            "cold_starts_per_minute", "cold_starts_over_time")  # fmt: skip
OWN_NAMES = {
    "run": ("summary.json", "scenario.yaml", "invocations.parquet", "instances.parquet",
            "throttles.parquet", "latency_cdf.png", "instances_over_time.png",
            "cold_starts_per_minute.png", "cold_starts_over_time.png"),
    "sweep": ("runs", "sweep.parquet", "sweep.csv", "runs.parquet"),
    "compare": ("compare.csv", *(f"{f}.{x}" for f in _FIGURES for x in ("png", "svg")),
                "*_vs_knob.png", "*_vs_knob.svg", "heatmap_*.png", "heatmap_*.svg"),
    "inspect": ("inspect.json", "invocations_per_minute.png", "invocations_over_time.png"),
    "logs-fit": (),  # newer than manifests
    "logs": (),
    "logs-backtest": (),
}  # fmt: skip
#: Shown of the foreign entries in an error.
SHOWN = 5


class OutputDirError(OSError):
    """The output folder (or file) cannot be written."""


def check_output_dir(out_dir: str | Path, kind: str, key: str | None = None) -> Path:
    """The absolute output folder, if writing `kind` output there touches nothing coldsim
    did not write. `key` (sweeps: the scenario's identity) must match the earlier output's."""
    out = Path(out_dir).resolve()
    if out.parent == out:
        raise OutputDirError(f"{out} cannot be an output folder")
    if not out.exists():
        return out
    if not out.is_dir():
        raise OutputDirError(f"{out} exists and is not a folder; choose another --out")
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return out
    manifest = read_manifest(out)
    if manifest is None and not (out / MARKERS[kind]).exists():
        raise OutputDirError(
            f"{out} is not empty and holds no earlier coldsim {kind} output (no "
            f"{MARKERS[kind]}): refusing to replace it; choose another --out"
        )
    if manifest is not None and manifest.get("kind") != kind:
        raise OutputDirError(
            f"{out} holds coldsim {manifest.get('kind')} output, not {kind} output; "
            "choose another --out"
        )
    own = set(manifest["files"]) if manifest is not None else _legacy_own(kind, entries)
    _refuse_foreign(out, entries - own - {MANIFEST})
    if key is not None and manifest is not None and manifest.get("key") not in (None, key):
        raise OutputDirError(
            f"{out} holds a {kind} of scenario {manifest.get('about', 'unnamed')!r} with other "
            "settings (the scenario changed since): refusing to replace its tables; choose "
            "another --out"
        )
    return out


def _refuse_foreign(out: Path, foreign: Iterable[str]) -> None:
    foreign = sorted(foreign)
    if foreign:
        more = f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        raise OutputDirError(
            f"{out} holds files coldsim did not write ({', '.join(foreign[:SHOWN])}{more}): "
            "refusing to write there, as it would replace them; move them or choose another --out"
        )


def own_entries(folder: Path, kind: str) -> set[str]:
    """What coldsim wrote in a folder of `kind` output (its manifest, or the legacy names)."""
    entries = {p.name for p in folder.iterdir()}
    manifest = read_manifest(folder)
    own = set(manifest["files"]) if manifest is not None else _legacy_own(kind, entries)
    return own | {MANIFEST}


def _legacy_own(kind: str, entries: Iterable[str]) -> set[str]:
    return {e for e in entries if any(fnmatch.fnmatch(e, p) for p in OWN_NAMES[kind])}


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def write_manifest(
    folder: Path, kind: str, files: Iterable[str], key: str | None = None, about: str = ""
) -> None:
    from ..version import __version__

    data = {"kind": kind, "files": sorted(set(files)), "key": key, "about": about,
            "coldsim_version": __version__}  # fmt: skip
    write_file(folder / MANIFEST, lambda p: p.write_text(json.dumps(data, indent=1) + "\n"))


def write_folder(out: Path, kind: str, fill: Callable[[Path], None]) -> None:
    """Fill a temporary sibling of `out`, record what it holds, then put it in out's place by
    renames (callers check first with check_output_dir that `out` may be replaced)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fill(tmp)
        write_manifest(tmp, kind, (p.name for p in tmp.iterdir()))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            # Something may have been added since the check: look again before deleting.
            foreign = {p.name for p in old.iterdir()} - own_entries(old, kind)
            if foreign:
                old.rename(out)
                _refuse_foreign(out, foreign)
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


#: The first line of a scenario `coldsim trace to-scenario` writes says so, with a digest of
#: the rest: a file edited since is not overwritten.
GENERATED = "written by coldsim trace to-scenario"


def generated_text(first_line: str, body: str) -> str:
    """A generated scenario: its first line (which names GENERATED) carries the body's digest."""
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return f"{first_line} (sha256 {digest})\n{body}"


def check_output_file(path: Path, force: bool = False) -> Path:
    """A scenario file to write: new, or one coldsim wrote and nobody edited since (its first
    line says so and carries a digest of the rest), or any file with `force`."""
    path = path.resolve()
    if path.is_dir():
        raise OutputDirError(f"{path} is a folder: give a file name, e.g. scenario.yaml")
    if path.exists() and not force:
        try:
            first, _, body = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        except OSError as err:
            raise OutputDirError(f"cannot read {path}: {err.strerror}") from None
        if GENERATED not in first:
            raise OutputDirError(
                f"{path} exists and was not written by coldsim: refusing to overwrite it; "
                "choose another --out, or pass --force"
            )
        digest = re.search(r"\(sha256 ([0-9a-f]+)\)", first)
        if digest and digest.group(1) != hashlib.sha256(body.encode()).hexdigest()[:16]:
            raise OutputDirError(
                f"{path} was written by coldsim but edited since: refusing to overwrite it; "
                "choose another --out, or pass --force"
            )
    return path
