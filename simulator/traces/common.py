"""Shared reading helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScenarioError

#: Cells per chunk: a 1,444-column Azure 2019 file is read ~2,800 rows at a time.
CHUNK_CELLS = 4_000_000


def file_key(path: str | Path) -> tuple[str, int, int]:
    """Identifies a file's contents for caching: path, size and modification time."""
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def chunks(path: Path, columns: int = 4, **kw) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first data line number, chunk) pairs, chunks of about CHUNK_CELLS cells for a file
    of `columns` columns; CSV problems become ScenarioErrors."""
    line = 2
    try:
        with pd.read_csv(path, chunksize=max(100, CHUNK_CELLS // columns), **kw) as reader:
            for chunk in reader:
                yield line, chunk
                line += len(chunk)
    except FileNotFoundError:
        raise ScenarioError("file not found", file=str(path)) from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"not UTF-8 text (byte {err.start})", file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ScenarioError(f"malformed CSV: {err}", file=str(path)) from None
    except ValueError as err:  # e.g. usecols naming a column the file lacks
        raise ScenarioError(str(err), file=str(path)) from None


def require_columns(path: Path, columns: list[str], need: list[str]) -> None:
    missing = [c for c in need if c not in columns]
    if missing:
        raise ScenarioError(
            f"missing column(s) {', '.join(missing)} (the file has: {', '.join(columns[:12])}"
            f"{', …' if len(columns) > 12 else ''})",
            file=str(path),
        )


def numbers(
    path: Path,
    frame: pd.DataFrame,
    first_line: int,
    *,
    integer: bool = False,
    minimum: float | None = 0.0,
) -> np.ndarray:
    """The frame's cells as a float (or int64) matrix; a cell that is not a finite number,
    not whole where `integer`, or below `minimum` is reported by line and column."""  # fmt: skip
    if integer and all(pd.api.types.is_integer_dtype(t) for t in frame.dtypes):
        ints = frame.to_numpy()  # the common case for counts: no float copy
        if minimum is None or not (ints < minimum).any():
            return ints
    values = frame.to_numpy(dtype=float, na_value=np.nan) if _numeric(frame) else None
    if values is None:
        values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if integer:
        bad |= values != np.round(values)
    if minimum is not None:
        bad |= values < minimum
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = frame.iat[row, col]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        what = "a whole number" if integer else "a number"
        if minimum is not None:
            what += f" >= {minimum:g}"
        raise ScenarioError(
            f"line {first_line + row}: {raw!r} is not {what}",
            file=str(path),
            field=str(frame.columns[col]),
        )
    return values.astype(np.int64) if integer else values


def _numeric(frame: pd.DataFrame) -> bool:
    return all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes)


def short_names(hashes: list[str], minimum: int = 8) -> list[str]:
    """The shortest prefixes (at least `minimum` characters) that tell the hashes apart."""
    n = minimum
    while True:
        names = [h[:n] for h in hashes]
        if len(set(names)) == len(set(hashes)) or n >= max(map(len, hashes), default=0):
            return names
        n += 2
