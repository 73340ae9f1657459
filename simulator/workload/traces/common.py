"""Shared reading helpers."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import ScenarioError

INT32_MAX = np.iinfo(np.int32).max

#: Cells per chunk: a 1,444-column Azure 2019 file is read ~2,800 rows at a time.
CHUNK_CELLS = 4_000_000


def file_key(path: str | Path) -> tuple[str, int, int]:
    """Identifies a file's contents for caching: path, size and modification time."""
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def header(path: Path) -> list[str]:
    """The column names; an unreadable or empty file is a ScenarioError."""
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except FileNotFoundError:
        raise ScenarioError("file not found", file=str(path)) from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"not UTF-8 text (byte {err.start})", file=str(path)) from None
    except pd.errors.EmptyDataError:
        raise ScenarioError("the file is empty (a header line is needed)", file=str(path)) from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise ScenarioError(f"cannot read as CSV: {err}", file=str(path)) from None


def chunks(path: Path, columns: int = 4, **kw) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """(line numbers, chunk) pairs, chunks of about CHUNK_CELLS cells for a file of `columns`
    columns. Blank lines are skipped but counted, so line numbers are the file's own. CSV
    problems become ScenarioErrors."""
    line = 2
    try:
        rows = max(100, CHUNK_CELLS // columns)
        with pd.read_csv(path, chunksize=rows, skip_blank_lines=False, **kw) as reader:
            for chunk in reader:
                lines = np.arange(line, line + len(chunk))
                line += len(chunk)
                blank = chunk.isna().all(axis=1).to_numpy()
                if blank.any():
                    chunk, lines = chunk[~blank], lines[~blank]
                if len(chunk):
                    yield lines, chunk
    except FileNotFoundError:
        raise ScenarioError("file not found", file=str(path)) from None
    except UnicodeDecodeError as err:
        raise ScenarioError(
            f"not UTF-8 text (byte {err.start} of a block near line {line})", file=str(path)
        ) from None
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
    lines: np.ndarray,
    *,
    integer: bool = False,
    minimum: float | None = 0.0,
) -> np.ndarray:
    """The frame's cells as a float (or int64) matrix; a cell that is not a finite number,
    not whole where `integer` (and then at most 2^31 - 1), or below `minimum` is reported by
    line and column."""  # fmt: skip
    if integer and all(pd.api.types.is_integer_dtype(t) for t in frame.dtypes):
        ints = frame.to_numpy()  # the common case for counts: no float copy
        if (minimum is None or not (ints < minimum).any()) and not (ints > INT32_MAX).any():
            return ints
    values = frame.to_numpy(dtype=float, na_value=np.nan) if _numeric(frame) else None
    if values is None:
        values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if integer:
        bad |= (values != np.round(values)) | (np.abs(values) > INT32_MAX)
    if minimum is not None:
        bad |= values < minimum
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = frame.iat[row, col]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        if integer:
            what = f"a whole number from {minimum or 0:g} to {INT32_MAX}"
        else:
            what = "a number" + (f" >= {minimum:g}" if minimum is not None else "")
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            fields = len(header(path))
            problem = (
                f"no value (is the line shorter than the header's {fields} fields?); need {what}"
            )
        else:
            problem = f"{raw!r} is not {what}"
        raise ScenarioError(
            f"line {lines[row]}, column {frame.columns[col]}: {problem}", file=str(path)
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


def hashes(path: Path, frame: pd.DataFrame, lines: np.ndarray) -> np.ndarray:
    """The frame's identifier cells as a str matrix; a blank one is reported by line."""
    missing = frame.isna().to_numpy()
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise ScenarioError(
            f"line {lines[row]}, column {frame.columns[col]}: missing", file=str(path)
        )
    return frame.to_numpy(dtype=str)
