"""What every reader of an outside format provides, and the helpers they share.

A reader is built from a path and :class:`ReaderOptions`, and yields canonical batches
(:class:`~clusterlob.tape.Trades` or :class:`~clusterlob.tape.Book`) from ``batches()``
in bounded memory.  It fills ``exchange`` and ``symbol`` when the file says them, and counts
what it drops or flags in the :class:`~clusterlob.validate.FileReport` it is given.
"""
from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..._typing import PathLike
from ...errors import TapeError
from ..types import Book, Funding, Trades
from ..validate import FileReport

__all__ = ["ReaderOptions", "Reader", "read_head", "IncrementGuess", "symbol_mask", "text_codes",
           "float_column", "int_column", "time_column", "READ_ERRORS"]

#: What reading a damaged file can raise below the readers' own checks (pyarrow, gzip, the OS,
#: a byte-flipped name that is not UTF-8): ``convert`` turns it into one line naming the file.
READ_ERRORS = (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeDecodeError)


@dataclass(frozen=True)
class ReaderOptions:
    """Settings every reader understands (a reader ignores those that do not apply).

    symbol : pick one symbol from a file that holds several (otherwise that is an error).
    price_increment, amount_increment : the value of one integer unit in pointline-style
        integer columns.
    skip_bad : count and skip malformed lines instead of failing (line-oriented formats).
    keep_non_market : keep trades that are not ordinary market trades (Binance ``X`` other
        than MARKET), counted either way.
    strict : turn every dropped row into an error.
    batch_rows : rows per batch handed to the writer.
    """

    symbol: str | None = None
    price_increment: float | None = None
    amount_increment: float | None = None
    skip_bad: bool = False
    keep_non_market: bool = False
    strict: bool = False
    batch_rows: int = 1 << 20


class Reader:
    """Base class: one input file of one outside format."""

    format_name = "?"
    column_names: dict = {}   # canonical column -> this format's column, for messages

    def __init__(self, path: PathLike, options: ReaderOptions, report: FileReport) -> None:
        self.path = Path(path)
        self.options = options
        self.report = report
        self.exchange: str | None = None
        self.symbol: str | None = None

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        """True when the file (its first bytes, decompressed) is in this format."""
        raise NotImplementedError

    def batches(self) -> Iterator[Trades | Book | Funding]:
        raise NotImplementedError

    def where(self, column: str | None = None) -> str:
        return f"{self.format_name} file {self.path}" + (f", column `{column}`" if column else "")


def read_head(path: Path, nbytes: int = 65536) -> bytes:
    """First bytes of a file, gunzipped when it is gzip (by magic number, not by name)."""
    path = Path(path)
    if not path.exists():
        raise TapeError(f"input {path} does not exist")
    if path.is_dir():
        raise TapeError(f"input {path} is a directory, expected a file")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                return f.read(nbytes)
        except (EOFError, OSError, zlib.error) as exc:
            raise TapeError(f"input {path}: gzip data is truncated or corrupt ({exc})") from None
    with open(path, "rb") as f:
        return f.read(nbytes)


# -- typed columns: the type comes from the schema, checked before any conversion --------------

_DECIMAL_TEXT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _is_text(t) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t)
            or (pa.types.is_dictionary(t) and _is_text(t.value_type)))


def _first_bad_text(col, good, where: str, name: str, offset: int, rule: str) -> TapeError:
    values = col.to_pylist()
    for i, v in enumerate(values):
        if v is None or not good(v):
            return TapeError(f"{where}: column `{name}` has a non-numeric value {v!r} at row {offset + i} "
                             f"({rule})")
    return TapeError(f"{where}: column `{name}` cannot be read as numbers ({rule})")


def _plain(col):
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col


def float_column(col: pa.Array | pa.ChunkedArray, where: str, name: str, offset: int = 0) -> np.ndarray:
    """A column as float64: numbers as they are (an empty cell is NaN, counted by the row rules);
    text only in plain decimal notation (``12.5``, ``-3``, ``1e-4``: not ``1_00.10``, ``1,5``,
    ``nan`` or ``''``), else one line naming the column, the first bad row and the value;
    any other type is refused naming it."""
    col = _plain(col)
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    if _is_text(t):
        ok = pc.match_substring_regex(col, _DECIMAL_TEXT.pattern)
        if col.null_count or not pc.all(ok).as_py():
            raise _first_bad_text(col, lambda v: bool(_DECIMAL_TEXT.match(v)), where, name, offset,
                                  "expected a decimal number")
        return pc.cast(pc.utf8_trim_whitespace(col), pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_null(t):
        return np.full(len(col), np.nan)
    raise TapeError(f"{where}: column `{name}` has type {t}, expected numbers")


_INT_TEXT = re.compile(r"^\s*[+-]?\d{1,19}\s*$")
_I64 = (-(1 << 63), (1 << 63) - 1)


def int_column(col: pa.Array | pa.ChunkedArray, where: str, name: str, offset: int = 0) -> np.ndarray:
    """A column as int64: integers (a float column only when every value is a whole number in
    range), or text of whole numbers; an empty cell, a fraction, text or a value beyond int64
    is one line naming the column, the first bad row and the value."""
    col = _plain(col)
    t = col.type
    if col.null_count:
        i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise TapeError(f"{where}: column `{name}` has {col.null_count:,} empty values (first at row {offset + i})")
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t) and len(col) and pc.max(col).as_py() > _I64[1]:
            i = int(np.argmax(col.to_numpy() > _I64[1]))
            raise TapeError(f"{where}: column `{name}` has a value beyond int64 {col[i].as_py()} at row {offset + i}")
        return col.cast(pa.int64()).to_numpy(zero_copy_only=False)
    if pa.types.is_floating(t):
        v = col.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~np.isfinite(v) | (v != np.rint(v)) | (np.abs(v) >= 2.0 ** 63)
        if bad.any():
            i = int(np.argmax(bad))
            raise TapeError(f"{where}: column `{name}` has a value that is not a whole number in int64 "
                            f"{float(v[i])!r} at row {offset + i}")
        return v.astype(np.int64)
    if _is_text(t):
        def good(v):
            return bool(_INT_TEXT.match(v)) and _I64[0] <= int(v) <= _I64[1]
        ok = pc.match_substring_regex(col, _INT_TEXT.pattern)
        if not pc.all(ok).as_py():
            raise _first_bad_text(col, good, where, name, offset, "expected a whole number")
        try:
            return pc.cast(pc.utf8_trim_whitespace(col), pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            raise _first_bad_text(col, good, where, name, offset, "expected a whole number in int64") from None
    raise TapeError(f"{where}: column `{name}` has type {t}, expected integers")


_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}      # ns: divided instead


def time_column(col: pa.Array | pa.ChunkedArray, where: str, name: str, offset: int = 0) -> np.ndarray:
    """A time column as int64 microseconds since the epoch: a typed Parquet timestamp in any
    unit is converted as its type says; integers and whole-number text are taken as
    microseconds (:func:`~clusterlob.tape.validate.check_timestamps` names a wrong unit)."""
    plain = _plain(col)
    t = plain.type
    if pa.types.is_timestamp(t) or pa.types.is_date64(t):
        if plain.null_count:
            return int_column(plain.cast(pa.int64()), where, name, offset)   # names the empty row
        unit = "ms" if pa.types.is_date64(t) else t.unit
        v = plain.cast(pa.int64()).to_numpy(zero_copy_only=False)
        if unit == "ns":
            return v // 1000
        scale = _UNIT_US[unit]
        if scale > 1 and len(v) and np.abs(v).max() > _I64[1] // scale:
            i = int(np.argmax(np.abs(v) > _I64[1] // scale))
            raise TapeError(f"{where}: column `{name}` has an implausible timestamp {int(v[i])} {unit} at row "
                            f"{offset + i}")
        return v * scale
    return int_column(plain, where, name, offset)


def is_gzip(path: PathLike) -> bool:
    """Whether a file starts with gzip's magic number."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def text_codes(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Integer codes and the distinct values of a text column (dictionary-encoded or not);
    an empty cell is the text ``""``."""
    if col.null_count:
        col = col.cast(pa.string()).fill_null("") if pa.types.is_dictionary(col.type) else col.fill_null("")
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    values = [str(v) for v in col.dictionary.to_pylist()]
    return col.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), values


def symbol_mask(col: pa.Array | pa.ChunkedArray, options: ReaderOptions, where: str, seen: set) -> np.ndarray | None:
    """Rows to keep given a batch's ``symbol`` column (None: all of them).

    ``seen`` accumulates the symbols met so far in the file.  Several symbols without
    ``options.symbol`` are an error naming them.
    """
    codes, values = text_codes(col)
    present = [values[i] for i in np.flatnonzero(np.bincount(codes, minlength=len(values)))]
    seen |= set(present)
    if options.symbol is None:
        if len(seen) > 1:
            raise TapeError(f"{where}: column `symbol` holds several symbols "
                            f"({', '.join(sorted(seen)[:8])}); choose one with --symbol")
        return None
    if present == [options.symbol]:
        return None
    return codes == (values.index(options.symbol) if options.symbol in values else -1)


_DECIMALS = 10
MIN_DISTINCT = 20


class IncrementGuess:
    """Running guess of the price (or amount) increment of a column: the largest decimal step
    that divides every value seen.

    Values are scaled by the smallest power of ten that makes them integers (up to 1e-10),
    and the increment is the greatest common divisor of those integers.  With few distinct
    values the guess can be a multiple of the real tick; give the increment explicitly when
    that matters.
    """

    def __init__(self):
        self.decimals = 0
        self.gcd = 0
        self.count = 0

    def update(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v) & (v > 0) & (v < 1e15)]     # beyond: no exact decimal step in float64
        if v.size == 0:
            return
        v = np.unique(v)
        self.count += v.size
        decimals = self.decimals
        while decimals < _DECIMALS:
            scaled = v * 10.0 ** decimals
            if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled)) + 1e-9):
                break
            decimals += 1
        if decimals > self.decimals:
            self.gcd *= 10 ** (decimals - self.decimals)
            self.decimals = decimals
        ints = np.rint(v * 10.0 ** self.decimals).astype(np.int64)
        self.gcd = int(np.gcd.reduce(np.append(ints, self.gcd)))

    @property
    def reliable(self) -> bool:
        """Whether enough distinct values were seen for the common divisor to mean much."""
        return self.count >= MIN_DISTINCT

    @property
    def value(self) -> float | None:
        """The guess: the common divisor, or with fewer than ``MIN_DISTINCT`` distinct values
        the finest decimal step seen (a lower bound on the real increment)."""
        if self.gcd == 0:
            return None
        if not self.reliable:
            return 10.0 ** -self.decimals
        return round(self.gcd / 10 ** self.decimals, self.decimals)


_ARROW_COLUMN = re.compile(r"column #(\d+)")
_ARROW_VALUE = re.compile(r"invalid value '([^']*)'")


def _find_row(path: Path, column: int, value: str) -> int | None:
    """Data row (0-based, header excluded) whose cell ``column`` is ``value``; error path only."""
    import csv
    import io

    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as raw:
            rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"))
            next(rows, None)
            for i, cells in enumerate(rows):
                if column < len(cells) and cells[column] == value:
                    return i
    except (OSError, EOFError, zlib.error, csv.Error):
        return None
    return None


def explain_arrow_error(exc: Exception, where: str, path: Path, header: Sequence[str]) -> TapeError:
    """Turn a pyarrow CSV error into one line naming the column, row and value."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    col, val = _ARROW_COLUMN.search(text), _ARROW_VALUE.search(text)
    if col and val:
        index = int(col.group(1))
        name = header[index] if index < len(header) else f"#{index}"
        row = _find_row(path, index, val.group(1))
        at = f" at row {row}" if row is not None else ""
        return TapeError(f"{where}: column `{name}` has a non-numeric value {val.group(1)!r}{at}")
    low = text.lower()
    if any(w in low for w in ("gzip", "inflate", "zlib", "truncated", "unexpected end", "compressed")):
        return TapeError(f"{where}: the gzip stream is truncated or corrupt ({first})")
    return TapeError(f"{where}: cannot parse ({first})")
