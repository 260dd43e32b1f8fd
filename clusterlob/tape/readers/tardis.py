"""Tardis.dev CSV and CSV.gz: ``trades`` and ``book_snapshot_25`` / ``book_snapshot_5``.

Trades: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; ``side`` is the
taker side (buy, sell or unknown); ``id`` may be a non-numeric string (kept as text when the
file's first batch of ids is not all integers).  ``timestamp`` is the exchange time and
``local_timestamp`` the receive time, both microseconds since the epoch.

Book snapshots: ``exchange,symbol,timestamp,local_timestamp`` then, for each level i,
``asks[i].price,asks[i].amount,bids[i].price,bids[i].amount``; an empty cell is a missing
level (NaN).  The number of levels is read from the header.

The same flat columns in a Parquet file are read by :mod:`clusterlob.readers.parquet`, which
shares the batch conversion below.  Files are read in blocks with pyarrow's streaming CSV
reader, so memory stays bounded whatever the file size.
"""
from __future__ import annotations

import csv as _csv
import re
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...errors import TapeError
from ..types import Book, Trades
from ..validate import clean_book, clean_trades, require_columns
from .base import Reader, explain_arrow_error, is_gzip, float_column, symbol_mask, text_codes, time_column

__all__ = ["TardisTradesReader", "TardisBookReader", "TRADE_COLUMNS", "book_columns"]

TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
_HEAD = ("exchange", "symbol", "timestamp", "local_timestamp")
_SIDES = {"buy": 1, "sell": -1, "unknown": 0, "": 0}
_ANY_LEVEL = re.compile(r"^(?:asks|bids)\[(\d+)\]\.(?:price|amount)$")
_BLOCK_BYTES = 8 << 20
_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())  # few distinct values: parse once each


def book_columns(levels: int) -> list[str]:
    cols = list(_HEAD)
    for i in range(levels):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    return cols


def _header(head: bytes) -> list[str]:
    """The column names of a CSV's first line: quotes removed, whitespace trimmed."""
    line = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lstrip("\ufeff")
    try:
        cells = next(_csv.reader([line]), [])
    except _csv.Error:
        cells = line.split(",")
    return [c.strip() for c in cells]


def _levels_in(columns) -> int:
    """Book depth from the deepest level any of its four columns names (a missing column of
    that level is then an error naming it, never a silently shallower book)."""
    found = sorted(int(m.group(1)) for c in columns if (m := _ANY_LEVEL.match(c)))
    return (found[-1] + 1) if found else 0


class _FlatBatches:
    """Turns Arrow record batches with Tardis' flat columns into canonical batches."""

    def __init__(self, reader: Reader):
        self.reader = reader
        self.rows = 0
        self.symbols: set = set()
        self.string_ids: bool | None = None

    def _common(self, batch: pa.RecordBatch):
        r = self.reader
        n = batch.num_rows
        offset = self.rows
        self.rows += n
        r.report.rows_read += n
        keep = symbol_mask(batch.column("symbol"), r.options, r.where(), self.symbols)
        if keep is not None:
            r.report.drop(f"other symbols than {r.options.symbol}", int((~keep).sum()))
            batch = batch.filter(pa.array(keep))
        if batch.num_rows and r.symbol is None:
            r.symbol = str(batch.column("symbol")[0].as_py())
            r.exchange = str(batch.column("exchange")[0].as_py())
        return batch, offset

    def _time(self, batch, name: str, offset: int) -> np.ndarray:
        return time_column(batch.column(name), self.reader.where(), name, offset)

    def _float(self, batch, name: str, offset: int) -> np.ndarray:
        return float_column(batch.column(name), self.reader.where(), name, offset)

    def trades(self, batch: pa.RecordBatch) -> Trades | None:
        r = self.reader
        batch, offset = self._common(batch)
        if batch.num_rows == 0:
            return None
        codes, values = text_codes(batch.column("side"))
        lookup = np.array([_SIDES.get(v.lower(), 9) for v in values] or [9], dtype=np.int8)
        side = lookup[codes]
        if (side == 9).any():
            i = int(np.argmax(side == 9))
            raise TapeError(f"{r.where('side')} has value {values[codes[i]]!r} at row {offset + i} "
                            f"(expected buy, sell or unknown)")
        ids = batch.column("id")
        if ids.null_count:
            i = int(np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))[0])
            raise TapeError(f"{r.where('id')} has {ids.null_count:,} empty values (first at row {offset + i})")
        ids_int = None
        if self.string_ids is not True:
            try:
                ids_int = pc.cast(ids, pa.int64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if self.string_ids is False:
                    raise TapeError(f"{r.where('id')} has non-integer ids after integer ones "
                                    f"(row {offset} onwards); ids must be all integers or all text") from None
        if self.string_ids is None:
            self.string_ids = ids_int is None
        trade_id = ids_int if ids_int is not None else np.asarray(ids.cast(pa.string()).to_pylist(), dtype=object)
        trades = Trades(self._time(batch, "timestamp", offset), self._time(batch, "local_timestamp", offset),
                        self._float(batch, "price", offset), self._float(batch, "amount", offset),
                        side, trade_id)
        return clean_trades(trades, r.where(), r.report, offset, r.options.strict, r.column_names)

    def book(self, batch: pa.RecordBatch, levels: int) -> Book | None:
        r = self.reader
        batch, offset = self._common(batch)
        if batch.num_rows == 0:
            return None
        n = batch.num_rows
        arrays = {}
        for side, name in (("asks", "ask"), ("bids", "bid")):
            for field, suffix in (("price", "px"), ("amount", "sz")):
                out = np.empty((n, levels))
                for i in range(levels):
                    out[:, i] = self._float(batch, f"{side}[{i}].{field}", offset)
                arrays[f"{name}_{suffix}"] = out
        book = Book(self._time(batch, "timestamp", offset), self._time(batch, "local_timestamp", offset),
                    arrays["bid_px"], arrays["bid_sz"], arrays["ask_px"], arrays["ask_sz"])
        return clean_book(book, r.where(), r.report, offset, r.options.strict, r.column_names)


def _csv_batches(reader: Reader, columns: list[str], types: dict, header: list[str]):
    """Stream a (possibly gzipped) CSV as record batches, translating parse errors."""
    compression = "gzip" if is_gzip(reader.path) else None
    where = reader.where()
    try:
        stream = pa.input_stream(str(reader.path), compression=compression)
        csv = pacsv.open_csv(stream,
                             read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES, column_names=header,
                                                            skip_rows=1),
                             convert_options=pacsv.ConvertOptions(column_types=types, include_columns=columns,
                                                                  strings_can_be_null=False))
        while True:
            try:
                batch = csv.read_next_batch()
            except StopIteration:
                return
            yield batch
    except (pa.ArrowException, OSError, EOFError, zlib.error) as exc:
        raise explain_arrow_error(exc, where, reader.path, header) from None


class TardisTradesReader(Reader):
    """Tardis ``trades`` CSV or CSV.gz."""

    format_name = "tardis trades csv"
    column_names = {"ts_exch_us": "timestamp", "ts_local_us": "local_timestamp"}

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        cols = _header(head)
        return "side" in cols and "local_timestamp" in cols and "price" in cols and "," in head[:200].decode("latin-1")

    def batches(self) -> Iterator[Trades | Book]:
        cols = _header(_read_first_line(self))
        require_columns(cols, TRADE_COLUMNS, self.where())
        types = {"timestamp": pa.int64(), "local_timestamp": pa.int64(), "price": pa.float64(),
                 "amount": pa.float64(), "id": pa.string(), "side": _TEXT_CODES,
                 "exchange": _TEXT_CODES, "symbol": _TEXT_CODES}
        conv = _FlatBatches(self)
        for batch in _csv_batches(self, list(TRADE_COLUMNS), types, cols):
            out = conv.trades(batch)
            if out is not None and len(out):
                yield out
        if conv.rows == 0:
            raise TapeError(f"{self.where()}: no data rows (empty input)")


class TardisBookReader(Reader):
    """Tardis ``book_snapshot_25`` / ``book_snapshot_5`` CSV or CSV.gz."""

    format_name = "tardis book snapshot csv"
    column_names = {"ts_exch_us": "timestamp", "ts_local_us": "local_timestamp"}

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        cols = _header(head)
        return "asks[0].price" in cols and "local_timestamp" in cols

    def batches(self) -> Iterator[Trades | Book]:
        cols = _header(_read_first_line(self))
        levels = _levels_in(cols)
        if levels == 0:
            raise TapeError(f"{self.where()}: no `asks[0].price` column (found: {', '.join(cols[:8])}, ...)")
        need = book_columns(levels)
        require_columns(cols, need, self.where())
        types = {c: pa.float64() for c in need[4:]}
        types.update({"timestamp": pa.int64(), "local_timestamp": pa.int64(),
                      "exchange": _TEXT_CODES, "symbol": _TEXT_CODES})
        conv = _FlatBatches(self)
        for batch in _csv_batches(self, need, types, cols):
            out = conv.book(batch, levels)
            if out is not None and len(out):
                yield out
        if conv.rows == 0:
            raise TapeError(f"{self.where()}: no data rows (empty input)")


def _read_first_line(reader: Reader) -> bytes:
    from .base import read_head
    head = read_head(reader.path)
    if not head.strip():
        raise TapeError(f"{reader.where()}: the file is empty")
    seen: set = set()
    for name in _header(head):
        if name in seen:
            raise TapeError(f"{reader.where()}: column `{name}` appears twice in the header")
        seen.add(name)
    return head
