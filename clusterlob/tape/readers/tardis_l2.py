"""Tardis.dev CSV and CSV.gz: ``incremental_book_L2``, ``quotes`` / ``book_ticker``, and
``derivative_ticker``.

incremental_book_L2
    ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``: one price
    level a row; ``side`` bid or ask; ``amount`` the new total at that price (0 removes the
    level); ``is_snapshot`` true for the rows of a full book snapshot.  Rows of one exchange
    message share ``local_timestamp``.  By Tardis' documentation, when a snapshot row follows
    a non-snapshot row the book is discarded and rebuilt from the snapshot block, and update
    rows before the first snapshot are skipped (counted here).  One 25-level book row is
    written per group of rows with equal ``local_timestamp`` (``ts_exch_us`` = the group's last
    ``timestamp``), once the book is in sync, never in the middle of a snapshot block.  A
    price that is not a finite number > 0 or an amount that is not a finite number >= 0 is an
    error naming the row; with ``--skip-bad`` it is counted, and the book is out of sync (no
    rows written) until the next snapshot.  The book lives in the compiled L2 book; memory is
    bounded by the book and one block of the file.

quotes, book_ticker
    ``exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount``
    (both data types have these columns, so they are one format here): a one-level book.
    A row with bid >= ask or an empty side is dropped and counted (first row given), as for
    every book.

derivative_ticker
    ``exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,
    predicted_funding_rate,open_interest,last_price,index_price,mark_price``: the tape's
    funding table (:class:`~clusterlob.tape.Funding`).  Rows without a finite funding rate are
    dropped and counted (first row given); other empty cells are NaN (``next_funding_us`` -1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from ..._typing import PathLike
from ...errors import TapeError
from ..types import Book, Funding
from ..validate import FileReport, check_timestamps, clean_book, require_columns
from .base import Reader, ReaderOptions, symbol_mask, text_codes
from .csv_blocks import csv_blocks
from .l2_rows import KIND, L2RowBook, check_level_values, clean_rows, report_counts
from .tardis import _TEXT_CODES, _header, _read_first_line

__all__ = ["TardisIncrementalReader", "TardisQuotesReader", "TardisDerivativeTickerReader",
           "INCREMENTAL_COLUMNS", "QUOTE_COLUMNS", "DERIVATIVE_TICKER_COLUMNS"]

INCREMENTAL_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price",
                       "amount")
QUOTE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price",
                 "bid_amount")
DERIVATIVE_TICKER_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp",
                             "funding_rate", "predicted_funding_rate", "open_interest", "last_price",
                             "index_price", "mark_price")
_NAMES = {"ts_exch_us": "timestamp", "ts_local_us": "local_timestamp"}


class _TardisCsv(Reader):
    """Shared pieces: header check, streaming, symbol selection, row counting."""

    columns: tuple = ()
    column_names = _NAMES

    def _batches(self, types: dict):
        cols = _header(_read_first_line(self))
        require_columns(cols, self.columns, self.where())
        self._rows = 0
        self._symbols: set = set()
        for batch in csv_blocks(self, list(self.columns), types, cols):
            offset = self._rows
            self._rows += batch.num_rows
            self.report.rows_read += batch.num_rows
            keep = symbol_mask(batch.column("symbol"), self.options, self.where(), self._symbols)
            if keep is not None:
                self.report.drop(f"other symbols than {self.options.symbol}", int((~keep).sum()),
                                 offset + int(np.argmax(~keep)) if (~keep).any() else None)
                batch = batch.filter(pa.array(keep))
                rows = np.flatnonzero(keep) + offset
            else:
                rows = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
            if batch.num_rows and self.symbol is None:
                self.symbol = str(batch.column("symbol")[0].as_py())
                self.exchange = str(batch.column("exchange")[0].as_py())
            if batch.num_rows:
                yield batch, offset, rows
        if self._rows == 0:
            raise TapeError(f"{self.where()}: no data rows (empty input)")

    def _ints(self, batch, name: str, offset: int) -> np.ndarray:
        col = batch.column(name)
        if col.null_count:
            i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
            raise TapeError(f"{self.where(name)}: empty value at row {offset + i}")
        out = col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        check_timestamps(out, self.where(), name, offset)
        return out

    @staticmethod
    def _floats(batch, name: str) -> np.ndarray:
        return batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _sniff_columns(head: bytes, needed) -> bool:
    cols = set(_header(head))
    return all(c in cols for c in needed)


class TardisIncrementalReader(_TardisCsv):
    """Tardis ``incremental_book_L2`` CSV or CSV.gz (see the module docstring).

    ``row_book``: the :class:`L2RowBook` to continue (files of one stream share it); a new
    one by default.  ``last_file``: close the last group at the end of this file.
    """

    format_name = "tardis incremental_book_L2 csv"
    columns = INCREMENTAL_COLUMNS
    produces = frozenset({"book"})

    def __init__(self, path: PathLike, options: ReaderOptions, report: FileReport, row_book: L2RowBook | None = None,
                 last_file: bool = True) -> None:
        super().__init__(path, options, report)
        self.row_book = row_book or L2RowBook()
        self.last_file = last_file

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _sniff_columns(head, ("is_snapshot",))   # its own column: a damaged header still names it

    def _codes(self, batch, name: str, allowed: dict, offset: int, rows) -> np.ndarray:
        codes, values = text_codes(batch.column(name))
        lookup = np.array([allowed.get(v.strip().lower(), -1) for v in values] or [-1], dtype=np.int8)
        out = lookup[codes]
        if (out < 0).any():
            i = int(np.argmax(out < 0))
            row = int(rows[i])
            raise TapeError(f"{self.where(name)} has value {values[codes[i]]!r} at row {row} "
                            f"(expected {' or '.join(allowed)})")
        return out

    def batches(self) -> Iterator[Book]:
        types = {"timestamp": pa.int64(), "local_timestamp": pa.int64(), "price": pa.float64(),
                 "amount": pa.float64(), "is_snapshot": _TEXT_CODES, "side": _TEXT_CODES,
                 "exchange": _TEXT_CODES, "symbol": _TEXT_CODES}
        rb = self.row_book
        before = rb.counts.copy()
        where = self.where()
        for batch, offset, rows in self._batches(types):
            ts_exch = self._ints(batch, "timestamp", offset)
            ts_local = self._ints(batch, "local_timestamp", offset)
            snap = self._codes(batch, "is_snapshot", {"true": 1, "false": 0}, offset, rows)
            ask = self._codes(batch, "side", {"bid": 0, "ask": 1}, offset, rows)
            price, amount = self._floats(batch, "price"), self._floats(batch, "amount")
            bad = check_level_values(price, amount, where, rows, "price", "amount",
                                     self.options.skip_bad, self.report)
            kind = (ask * KIND["ask"] + snap * KIND["snapshot"]).astype(np.int8)
            if bad.any():
                kind[bad] |= KIND["break"] | KIND["skip"]
                price, amount = np.where(bad, 1.0, price), np.where(bad, 0.0, amount)
            out = rb.apply(ts_local, ts_exch, ts_local, kind, price, amount, rows)
            book = clean_rows(out, where, self.report, self.options.strict, _NAMES)
            if book is not None:
                yield book
        if self.last_file:
            book = clean_rows(rb.finish(), where, self.report, self.options.strict, _NAMES)
            if book is not None:
                yield book
            if not rb.ever_synced:
                raise TapeError(f"{where}: {rb.count('before_snapshot'):,} update rows but no snapshot row "
                                f"(is_snapshot=true); the book cannot be built without one")
        report_counts(rb, before, self.report)


class TardisQuotesReader(_TardisCsv):
    """Tardis ``quotes`` or ``book_ticker`` CSV or CSV.gz: a one-level book."""

    format_name = "tardis quotes/book_ticker csv"
    columns = QUOTE_COLUMNS
    produces = frozenset({"book"})

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _sniff_columns(head, ("ask_price", "bid_price"))

    def batches(self) -> Iterator[Book]:
        types = {c: pa.float64() for c in QUOTE_COLUMNS[4:]}
        types.update({"timestamp": pa.int64(), "local_timestamp": pa.int64(),
                      "exchange": _TEXT_CODES, "symbol": _TEXT_CODES})
        for batch, offset, rows in self._batches(types):
            col = lambda name: self._floats(batch, name)[:, None].copy()  # noqa: E731
            book = Book(self._ints(batch, "timestamp", offset), self._ints(batch, "local_timestamp", offset),
                        col("bid_price"), col("bid_amount"), col("ask_price"), col("ask_amount"))
            names = dict(_NAMES, bid_px="bid_price", ask_px="ask_price")
            out: Book | None
            if rows[-1] - rows[0] + 1 == len(rows):       # no rows removed: the usual report
                out = clean_book(book, self.where(), self.report, int(rows[0]), self.options.strict, names)
            else:   # rows of other symbols were removed: report file rows
                out = clean_rows((book, rows), self.where(), self.report, self.options.strict, names, "")
            if out is not None and len(out):
                yield out


class TardisDerivativeTickerReader(_TardisCsv):
    """Tardis ``derivative_ticker`` CSV or CSV.gz: the funding table."""

    format_name = "tardis derivative_ticker csv"
    columns = DERIVATIVE_TICKER_COLUMNS
    produces = frozenset({"funding"})

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _sniff_columns(head, ("funding_rate",))

    def batches(self) -> Iterator[Funding]:
        types = {c: pa.float64() for c in DERIVATIVE_TICKER_COLUMNS[5:]}
        types.update({"timestamp": pa.int64(), "local_timestamp": pa.int64(), "funding_timestamp": pa.int64(),
                      "exchange": _TEXT_CODES, "symbol": _TEXT_CODES})
        for batch, offset, rows in self._batches(types):
            rate = self._floats(batch, "funding_rate")
            next_us = batch.column("funding_timestamp").fill_null(-1).to_numpy(zero_copy_only=False)
            funding = Funding(self._ints(batch, "timestamp", offset), self._ints(batch, "local_timestamp", offset),
                              rate, next_us.astype(np.int64, copy=False),
                              *(self._floats(batch, c) for c in ("predicted_funding_rate", "mark_price",
                                                                 "index_price", "last_price", "open_interest")))
            bad = ~np.isfinite(rate)
            if bad.any():
                i = int(np.argmax(bad))
                row = int(rows[i])
                if self.options.strict:
                    raise TapeError(f"{self.where('funding_rate')}: row {row} has a non-finite funding rate "
                                    f"({float(rate[i])!r}); {int(bad.sum())} such rows in this batch (--strict)")
                self.report.drop("derivative ticker rows without a finite `funding_rate`", int(bad.sum()), row)
                funding = funding.take(~bad)
            if len(funding):
                self.report.flag("derivative ticker rows kept (the tape's funding table)", len(funding))
                yield funding
