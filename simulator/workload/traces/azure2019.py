"""Azure Functions Trace 2019: per-minute invocation counts, duration percentiles, memory.

Formats: the dataset's own notes [sources: azure-2019]. Files are found in a
folder under their original names (invocations_per_function_md.anon.dNN.csv,
function_durations_percentiles.anon.dNN.csv, app_memory_percentiles.anon.dNN.csv) or as
invocations.csv, durations.csv, memory.csv (the In-Vitro/Dirigent samples).

The per-minute counts are held sparse: a CSR matrix (functions x minutes, int32 counts,
int32 column indices) of the non-zero cells only. A day file has some 46,000 functions x
1,440 minutes (253 MB dense as int32) of which only 4-16 % are non-zero, most functions
being rarely invoked: sparse, a day is 20-85 MB. The readers build the matrix block by block
of rows as the file is read (each block's non-zero cells kept, the parts joined at the end
and freed as they are copied), so a read peaks at about the sparse matrix plus one block.
Invocations gives dense views where they are wanted: row_counts (one function's row),
sparse_row (a row sliced minute range by minute range, for a replay that holds its row for
the whole run), totals.
"""

from __future__ import annotations

import collections
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy import sparse

from ...errors import ScenarioError
from .common import chunks, hashes, header, numbers, require_columns

KEYS = ["HashOwner", "HashApp", "HashFunction"]
DURATION_PERCENTILES = {0: "percentile_Average_0", 1: "percentile_Average_1",
                        25: "percentile_Average_25", 50: "percentile_Average_50",
                        75: "percentile_Average_75", 99: "percentile_Average_99",
                        100: "percentile_Average_100"}  # fmt: skip
PATTERNS = {
    "invocations": ("invocations.csv", "invocations_per_function_md.anon.d*.csv"),
    "durations": ("durations.csv", "function_durations_percentiles.anon.d*.csv"),
    "memory": ("memory.csv", "app_memory_percentiles.anon.d*.csv"),
}


class SparseRow:
    """One function's per-minute counts over a range of the trace's minute columns, held as
    its busy minutes (views of the trace's sparse matrix: no copy). Sliced as the dense row
    would be: row[a:b] is a dense int32 array of the minutes a..b-1 of the range (clipped to
    it, as numpy clips); len(row) is the range's minutes; np.asarray(row) and dense() give
    the whole dense row."""

    __slots__ = ("columns", "values", "first", "length")

    def __init__(self, columns: np.ndarray, values: np.ndarray, first: int, length: int):
        self.columns = columns  # the busy minutes' columns in the trace, ascending
        self.values = values  # their counts (int32, non-zero)
        self.first = first  # the range's first column in the trace
        self.length = length  # minutes in the range

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, minutes: slice) -> np.ndarray:
        start, stop, step = minutes.indices(self.length)
        if step != 1:
            raise IndexError("a SparseRow is sliced by consecutive minutes")
        dense = np.zeros(max(0, stop - start), dtype=np.int32)
        lo = self.first + start
        a, b = self.columns.searchsorted((lo, lo + len(dense))).tolist()
        if a < b:  # (a replay mostly looks at quiet minutes: none)
            dense[self.columns[a:b] - lo] = self.values[a:b]
        return dense

    def dense(self) -> np.ndarray:
        """The whole range's counts: a new int32 array."""
        return self[:]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("a SparseRow's dense row is always a new array")
        return self.dense() if dtype is None else self.dense().astype(dtype)


@dataclass(frozen=True)
class Invocations:
    """One row per function: its keys, trigger and per-minute counts. The counts are a CSR
    matrix of the non-zero cells (see the module's notes): read them through row_counts,
    sparse_row and totals, or as the scipy matrix they are."""

    owners: np.ndarray
    apps: np.ndarray
    functions: np.ndarray  # HashFunction
    triggers: np.ndarray
    minutes: np.ndarray  # the minute columns' labels, in time order
    counts: sparse.csr_array  # int32, functions x minutes, non-zero cells only

    @property
    def shape(self) -> tuple[int, int]:
        """(functions, minute columns)."""
        return self.counts.shape

    def sparse_row(self, i: int, columns: slice = slice(None)) -> SparseRow:
        """Function i's counts in these minute columns (a slice, as minute_columns gives),
        as its busy minutes: what a replay holds for the whole run (views, no copy)."""
        first, stop, _ = columns.indices(self.shape[1])
        start, end = self.counts.indptr[i], self.counts.indptr[i + 1]
        busy = self.counts.indices[start:end]
        a = start + busy.searchsorted(first)
        b = start + busy.searchsorted(stop)
        return SparseRow(self.counts.indices[a:b], self.counts.data[a:b], first, stop - first)

    def row_counts(self, i: int, columns: slice = slice(None)) -> np.ndarray:
        """Function i's counts in these minute columns: a new dense int32 array."""
        return self.sparse_row(i, columns).dense()

    def _cached(self, name: str, build):
        """A derived table, built once (workloads ask for it for every function)."""
        value = self.__dict__.get(name)
        if value is None:
            value = build()
            object.__setattr__(self, name, value)
        return value

    def row(self, function: str) -> int:
        index = self._cached(
            "_index", lambda: {h: i for i, h in enumerate(self.functions.tolist())}
        )
        if function in index:
            return index[function]
        hits = np.flatnonzero(self.functions == function)
        if len(hits) == 0:
            hits = np.flatnonzero(np.char.startswith(self.functions.astype(str), function))
        if len(hits) != 1:
            raise KeyError(function)
        return int(hits[0])

    def minute_columns(self, minutes: tuple[int, int] | None) -> slice:
        """The columns of minute labels [first, last] (all of them for None); ValueError if
        they are not labels of the file in order."""
        if minutes is None:
            return slice(None)
        first, last = minutes
        at = self._cached("_column", lambda: {m: j for j, m in enumerate(self.minutes.tolist())})
        if first > last or first not in at or last not in at:
            labels = self.minutes.tolist()
            raise ValueError(
                f"minutes {list(minutes)} must be labels of the file's minute columns "
                f"({labels[0]}..{labels[-1]}), first <= last"
            )
        return slice(at[first], at[last] + 1)

    def totals(self, minutes: tuple[int, int] | None = None) -> np.ndarray:
        """Each function's invocations (int64) in the minute labels [first, last] (all)."""
        cache = self._cached("_totals", dict)
        key = None if minutes is None else tuple(minutes)
        if key not in cache:
            columns = self.minute_columns(minutes)
            window = self.counts if minutes is None else self.counts[:, columns]
            cache[key] = window.sum(axis=1, dtype=np.int64)
        return cache[key]

    def app_sizes(self) -> dict[str, int]:
        """Functions per HashApp."""
        return self._cached(
            "_app_sizes",
            lambda: dict(zip(*(a.tolist() for a in np.unique(self.apps, return_counts=True)),
                             strict=True)),
        )  # fmt: skip


def files_for(path: Path) -> dict[str, Path | None]:
    """The trace's files: those of a folder, or a counts file alone."""
    if path.is_dir():
        return find_files(path)
    return {"invocations": path, "durations": None, "memory": None}


def find_files(folder: Path) -> dict[str, Path | None]:
    """The invocations, durations and memory files of a trace folder (None if absent)."""
    found: dict[str, Path | None] = {}
    for kind, (plain, original) in PATTERNS.items():
        candidates = (
            [folder / plain] if (folder / plain).is_file() else sorted(folder.glob(original))
        )
        found[kind] = candidates[0] if candidates else None
    if found["invocations"] is None:
        raise ScenarioError(
            "no invocations file (invocations.csv or invocations_per_function_md.anon.dNN.csv)",
            file=str(folder),
        )
    return found


def read_invocations(path: str | Path) -> Invocations:
    """The per-minute counts (cached: a workload of many functions reads the file once)."""
    return _cached(path, _read_invocations)


#: Tables read, by file contents (device, inode, size, modification time): a file named
#: through a link and by its own name is read once. The few most recent are kept.
_CACHE: collections.OrderedDict = collections.OrderedDict()
CACHED = 6


def _cached(path: str | Path, read):
    """read(the file's resolved path), or the table read before from the same contents.
    (A stat per call: workloads ask for every function; resolving a path costs a stat per
    folder of it, and happens once per file.)"""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ScenarioError("file not found", file=str(path)) from None
    key = (read.__name__, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = read((str(Path(path).resolve()), st.st_size, st.st_mtime_ns))
    _CACHE[key] = value
    while len(_CACHE) > CACHED:
        _CACHE.popitem(last=False)
    return value


def _read_invocations(key: tuple[str, int, int]) -> Invocations:
    path = Path(key[0])
    columns = header(path)
    require_columns(path, columns, [*KEYS, "Trigger"])
    minute_cols = [c for c in columns if c not in (*KEYS, "Trigger")]
    bad = [c for c in minute_cols if not c.strip().isdigit()]
    if bad or not minute_cols:
        raise ScenarioError(
            f"minute columns must be numbered (found {bad[:3] or 'none'})", file=str(path)
        )
    labels = np.array([int(c) for c in minute_cols])
    if len(np.unique(labels)) != len(labels):
        twice = sorted({int(m) for m in labels if (labels == m).sum() > 1})
        raise ScenarioError(f"minute column {twice[0]} appears twice", file=str(path))
    time_order = np.argsort(labels) if (np.diff(labels) < 0).any() else None
    rows, plain = _scan(path)
    read = _read_fast(path, columns, minute_cols, rows, time_order) if plain else None
    if read is None:  # something to report (or an unusual spelling): pandas says where
        read = _read_slow(path, columns, minute_cols, time_order)
    k, counts = read
    if time_order is not None:  # the readers put the counts' columns in time order
        labels = labels[time_order]
    return Invocations(
        owners=k[:, 0], apps=k[:, 1], functions=k[:, 2], triggers=k[:, 3],
        minutes=labels, counts=counts,
    )  # fmt: skip


#: What pandas reads as a missing cell (its default na_values): such a key is reported.
PANDAS_NA = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan",
             "null"]  # fmt: skip
#: Bytes of CSV text per block of the fast reader (about 1,300 rows of a day file: fewer,
#: larger blocks copy faster; a block's dense counts are then about 8 MB).
BLOCK_BYTES = 4 << 20


class _SparseRowsBuilder:
    """A CSR matrix of counts (int32) built from dense blocks of rows, in order: each block
    kept as its non-zero cells, its columns put in `time_order` (a permutation; None: as
    they are). matrix() joins the parts, freeing each once copied: the peak is about the
    matrix plus one part."""

    def __init__(self, width: int, time_order: np.ndarray | None):
        self.width = width  # minute columns
        self.time_order = time_order
        self.busy_per_row: list[np.ndarray] = []
        self.column_parts: list[np.ndarray] = []  # the busy cells' columns, row by row
        self.value_parts: list[np.ndarray] = []  # their counts

    def add(self, block: np.ndarray) -> None:
        """Rows of counts (integers from 0 to 2^31 - 1), columns as in the file."""
        if self.time_order is not None:
            block = block[:, self.time_order]
        busy = block != 0
        self.value_parts.append(block[busy].astype(np.int32, copy=False))  # row by row
        cells = np.flatnonzero(busy)  # row * width + column
        row_ends = cells.searchsorted(np.arange(1, len(block) + 1) * self.width)
        self.busy_per_row.append(np.diff(row_ends, prepend=0))
        self.column_parts.append((cells % self.width).astype(np.int32))

    def matrix(self) -> sparse.csr_array:
        busy_per_row = _joined(self.busy_per_row, np.int64)
        row_starts = np.zeros(len(busy_per_row) + 1, dtype=np.int64)
        np.cumsum(busy_per_row, out=row_starts[1:])
        shape = (len(busy_per_row), self.width)
        # int32 indices unless there are 2^31 non-zero cells (scipy would copy both index
        # arrays to the wider type of the two)
        index = sparse.get_index_dtype(maxval=max(int(row_starts[-1]), *shape))
        counts = sparse.csr_array(
            (_joined(self.value_parts, np.int32), _joined(self.column_parts, index),
             row_starts.astype(index)),
            shape=shape,
        )  # fmt: skip
        counts.has_canonical_format = True  # columns ascending in each row, no zeros
        return counts


def _joined(parts: list[np.ndarray], dtype) -> np.ndarray:
    """np.concatenate(parts), emptying the list: each part is freed once copied."""
    joined = np.empty(sum(len(part) for part in parts), dtype=dtype)
    n = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        joined[n : n + len(part)] = part
        n += len(part)
    return joined


def _read_fast(
    path: Path,
    columns: list[str],
    minute_cols: list[str],
    rows: int,
    time_order: np.ndarray | None,
) -> tuple[np.ndarray, sparse.csr_array] | None:
    """Keys and counts by pyarrow's CSV reader, block by block of rows, each block's non-zero
    cells kept; None for a file the pandas reader must look at: a cell that is missing, not a
    plain integer, negative or above 2^31 - 1, a row of the wrong length, a function listed
    twice, text that is not UTF-8."""
    names = [f"c{i}" for i in range(len(columns))]
    key_at = [columns.index(c) for c in (*KEYS, "Trigger")]
    minute_at = [columns.index(c) for c in minute_cols]
    types = {names[i]: pa.string() for i in key_at} | {names[i]: pa.int32() for i in minute_at}
    counts = _SparseRowsBuilder(len(minute_cols), time_order)
    keys: list[list[np.ndarray]] = [[] for _ in key_at]
    n = 0
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=BLOCK_BYTES, use_threads=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=PANDAS_NA,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        for batch in reader:
            b = batch.num_rows
            if not b:
                continue
            if n + b > rows or any(batch.column(i).null_count for i in range(len(names))):
                return None
            for j, i in enumerate(key_at):
                keys[j].append(batch.column(i).to_numpy(zero_copy_only=False).astype(str))
            # Row-major (the non-zero cells are taken row by row), filled column by column.
            block = np.empty((b, len(minute_at)), dtype=np.int32)
            for j, i in enumerate(minute_at):
                block[:, j] = batch.column(i).to_numpy()
            del batch  # (its memory is then pyarrow's for the next block: 40 MB less peak)
            if (block < 0).any():
                return None
            counts.add(block)
            n += b
    except (pa.ArrowException, OSError, UnicodeDecodeError):
        return None
    finally:  # pyarrow's pool keeps what it freed: give it back before the next allocations
        pa.default_memory_pool().release_unused()
    k = (  # (each block's keys freed once copied)
        np.column_stack([_joined(parts, np.result_type(*parts)) for parts in keys])
        if n
        else np.empty((0, 4), dtype=str)
    )
    if _repeated(k[:, :3]):
        return None
    return k, counts.matrix()


def _read_slow(
    path: Path, columns: list[str], minute_cols: list[str], time_order: np.ndarray | None = None
) -> tuple[np.ndarray, sparse.csr_array]:
    """Keys and counts by pandas, in chunks (each chunk's non-zero cells kept): every problem
    reported by line and column (of the file's own column order)."""
    counts = _SparseRowsBuilder(len(minute_cols), time_order)
    keys, line_of = [], []
    for lines, chunk in chunks(path, len(columns), dtype={c: str for c in (*KEYS, "Trigger")}):
        keys.append(hashes(path, chunk[[*KEYS, "Trigger"]], lines))
        line_of.append(lines)
        counts.add(numbers(path, chunk[minute_cols], lines, integer=True))
    k = np.concatenate(keys) if keys else np.empty((0, 4), dtype=str)
    _no_repeated_rows(path, k[:, :3], np.concatenate(line_of) if line_of else np.empty(0))
    return k, counts.matrix()


def _repeated(keys: np.ndarray) -> bool:
    """Whether some (owner, app, function) appears twice."""
    return bool(len(keys)) and bool(pd.DataFrame(keys).duplicated().any())


def _no_repeated_rows(path: Path, keys: np.ndarray, lines: np.ndarray) -> None:
    """A function listed twice would be replayed twice: name the lines."""
    if not len(keys):
        return
    joined = np.char.add(np.char.add(keys[:, 0], "/"), np.char.add(keys[:, 1], "/"))
    joined = np.char.add(joined, keys[:, 2])
    _, first, counts = np.unique(joined, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = first[counts > 1][0]
        again = np.flatnonzero(joined == joined[dup])[1]
        raise ScenarioError(
            f"line {lines[again]} repeats the function of line {lines[dup]} "
            f"({keys[dup, 2][:12]}...): each function once, please",
            file=str(path),
        )


def _scan(path: Path) -> tuple[int, bool]:
    """Lines after the header (an upper bound on rows: blank lines are not rows), and whether
    the text is plain for pyarrow: no "0x" (pyarrow reads 0x1f as a hexadecimal number,
    pandas as text to report)."""
    newlines = returns = 0
    plain, tail = True, b""
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
            if plain and (b"x" in block or b"X" in block):  # memchr: quick
                plain = re.search(rb"0[xX]", tail + block) is None
            tail = block[-1:]
    return max(newlines, returns) + 1, plain  # old Mac endings; a last line without one


def read_durations(path: str | Path) -> pd.DataFrame:
    """Per function (index HashFunction): Average and the percentile columns, in ms. Rows with
    an Average of 0 are kept (the dataset's notebook drops them as possibly misrecorded, but a
    replay needs every function's times; integer ms make fast handlers 0). Cached by the
    file's contents (as read_invocations): the table is shared, do not modify it."""
    return _cached(path, _read_durations)


def _read_durations(key: tuple[str, int, int]) -> pd.DataFrame:
    path = Path(key[0])
    require_columns(path, header(path), ["HashFunction", "Average", *DURATION_PERCENTILES.values()])
    parts = []
    cols = ["Average", *DURATION_PERCENTILES.values()]
    for lines, chunk in chunks(path, dtype={c: str for c in KEYS}):
        values = numbers(path, chunk[cols], lines)
        index = hashes(path, chunk[["HashFunction"]], lines)[:, 0]
        parts.append(pd.DataFrame(values, columns=cols, index=index))
    table = pd.concat(parts) if parts else pd.DataFrame(columns=cols)
    return table[~table.index.duplicated(keep="first")]


def read_memory(path: str | Path) -> tuple[pd.Series, bool]:
    """AverageAllocatedMb by HashFunction (per-function files, as the In-Vitro samples) or by
    HashApp (the original per-application files); the flag says which. Cached by the file's
    contents: the series is shared, do not modify it."""
    return _cached(path, _read_memory)


def _read_memory(key: tuple[str, int, int]) -> tuple[pd.Series, bool]:
    path = Path(key[0])
    columns = header(path)
    require_columns(path, columns, ["HashApp", "AverageAllocatedMb"])
    per_function = "HashFunction" in columns
    key = "HashFunction" if per_function else "HashApp"
    parts = []
    for lines, chunk in chunks(path, usecols=[key, "AverageAllocatedMb"], dtype={key: str}):
        mb = numbers(path, chunk[["AverageAllocatedMb"]], lines)[:, 0]
        parts.append(pd.Series(mb, index=hashes(path, chunk[[key]], lines)[:, 0]))
    series = pd.concat(parts) if parts else pd.Series(dtype=float)
    return series[~series.index.duplicated(keep="first")], per_function


def memory_mb(average_mb: float) -> int:
    """A Lambda memory size for an Azure allocation: whole MB, at least 128 (AWS's minimum)."""
    return int(min(10240, max(128, math.ceil(average_mb))))


def spread(
    counts: np.ndarray, how: str, rng: np.random.Generator, start_s: float = 0.0
) -> np.ndarray:
    """Arrival times for per-minute counts (minute i covers [start_s + 60 i, start_s + 60 (i+1))):
    equidistant (c requests at the centres of c equal slots), uniform (c uniform times) or
    poisson (exponential gaps rescaled to the minute: the same law as uniform, drawn the
    In-Vitro way)."""
    counts = np.asarray(counts, dtype=np.int64)
    if how not in ("equidistant", "uniform", "poisson"):
        raise ValueError(how)
    return _spread_minutes(counts, 0, how, rng, start_s, 0.0)[0]


#: Requests per piece of a replay spread piece by piece (a piece is at least one minute).
PIECE = 1 << 14
#: Minutes looked ahead at a time for a piece's end.
LOOKAHEAD = 64


def spread_pieces(
    counts: np.ndarray | SparseRow,
    how: str,
    rng: np.random.Generator,
    start_s: float = 0.0,
    piece: int | Callable[[], int] = PIECE,
) -> Iterator[np.ndarray]:
    """spread() in pieces of whole minutes (about `piece` requests each, or one busier minute;
    `piece` may be a function asked before each piece): each piece sorted and at or after
    the previous one; concatenated, they are spread()'s array exactly (the same draws from
    rng, in the same order; the same sums). Holds no copy of the counts, only slices a few
    minutes at a time (of a SparseRow: the trace's own cells): a replay waiting for its turn
    costs little."""
    if how not in ("equidistant", "uniform", "poisson"):
        raise ValueError(how)
    target = piece if callable(piece) else lambda: piece
    a, carry, n = 0, 0.0, len(counts)
    while a < n:
        want, b, got, step = target(), a, 0, LOOKAHEAD
        while b < n:  # the minutes from a whose requests fit in `want` (at least one)
            ahead = np.cumsum(counts[b : b + step], dtype=np.int64) + got
            fit = int(np.searchsorted(ahead, want, side="right"))
            if fit < len(ahead):
                b += fit
                break
            got = int(ahead[-1])
            b += len(ahead)
            step *= 2  # a quiet function: look further at once
        b = max(b, a + 1)
        minutes = np.asarray(counts[a:b], dtype=np.int64)
        times, carry = _spread_minutes(minutes, a, how, rng, start_s, carry)
        yield times
        a = b


def _spread_minutes(
    counts: np.ndarray, first: int, how: str, rng, start_s: float, carry: float
) -> tuple[np.ndarray, float]:
    """Times of minutes first, first + 1, ... with these counts, and the running sum of the
    poisson gaps after them (`carry`: the sum before them; 0 at the trace's start)."""
    total = int(counts.sum())
    local = np.repeat(np.arange(len(counts)), counts)
    minute = local + first if first else local
    if how == "equidistant":
        starts = np.cumsum(counts) - counts
        j = np.arange(total) - np.repeat(starts, counts)
        offset = (j + 0.5) / np.repeat(counts, counts)
    elif how == "uniform":
        offset = rng.random(total)
    else:  # poisson
        gaps = rng.exponential(1.0, total + len(counts))
        ends = np.cumsum(counts + 1)
        # The running sum continues the previous minutes' (the same additions, in order).
        cum = np.cumsum(np.concatenate([[carry], gaps]))[1:] if first else np.cumsum(gaps)
        base = np.concatenate([[carry if first else 0.0], cum[ends[:-1] - 1]])
        span = cum[ends - 1] - base
        idx = np.arange(total) + local  # skip each minute's closing gap
        offset = (cum[idx] - np.repeat(base, counts)) / np.repeat(span, counts)
        carry = float(cum[-1]) if len(cum) else carry
    times = start_s + 60.0 * (minute + offset)
    times.sort()
    return times, carry
