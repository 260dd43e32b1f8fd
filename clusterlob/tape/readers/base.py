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
from ..store import Book, Trades
from ..validate import FileReport

__all__ = ["ReaderOptions", "Reader", "read_head", "IncrementGuess", "symbol_mask", "text_codes"]


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

    def batches(self) -> Iterator[Trades | Book]:
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
        v = v[np.isfinite(v) & (v > 0)]
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

    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
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
