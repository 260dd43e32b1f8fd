"""Parquet inputs: Tardis' flat columns, and pointline-style integer columns.

Flat Parquet
    The same columns as the Tardis CSV files (:mod:`clusterlob.readers.tardis`), trades or
    book snapshots, with numeric or text cells.

pointline-style Parquet (the research log's data lake)
    Trades: ``ts_local_us``, ``ts_exch_us`` (int64 microseconds), ``price_int``, ``qty_int``
    (integers), ``side`` (0 = buy taker, 1 = sell taker, 2 = unknown); optional ``trade_id``
    (else the row number in the file, flagged), ``exchange`` and ``symbol``.
    Book: ``ts_local_us``, ``ts_exch_us`` and list columns ``bids_px``, ``bids_sz``,
    ``asks_px``, ``asks_sz`` of integers, best level first; at most 25 levels are kept
    (deeper ones are dropped and flagged) and shorter lists leave NaN levels.
    Prices are ``price_int * price_increment`` and amounts ``qty_int * amount_increment``;
    both increments must be given (``--price-increment``, ``--amount-increment``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...errors import TapeError
from ..types import MAX_LEVELS, Book, Trades
from ..validate import clean_book, clean_trades, require_columns
from .base import READ_ERRORS, Reader, float_column, int_column, symbol_mask, time_column
from .tardis import TRADE_COLUMNS, _FlatBatches, _levels_in, book_columns

__all__ = ["FlatTradesParquetReader", "FlatBookParquetReader", "PointlineTradesReader",
           "PointlineBookReader", "POINTLINE_TRADE_COLUMNS", "POINTLINE_BOOK_COLUMNS"]

POINTLINE_TRADE_COLUMNS = ("ts_local_us", "ts_exch_us", "price_int", "qty_int", "side")
POINTLINE_BOOK_COLUMNS = ("ts_local_us", "ts_exch_us", "bids_px", "bids_sz", "asks_px", "asks_sz")
_POINTLINE_SIDE = {0: 1, 1: -1, 2: 0}


def _schema_names(path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except READ_ERRORS + (ValueError,):       # damaged footer, a byte-flipped name not UTF-8
        return []


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _is_parquet(head: bytes) -> bool:
    return head[:4] == b"PAR1"


class _ParquetReader(Reader):
    def _file(self) -> pq.ParquetFile:
        try:
            pf = pq.ParquetFile(self.path)
            names = pf.schema_arrow.names
        except READ_ERRORS + (ValueError,) as exc:
            raise TapeError(f"{self.where()}: cannot read Parquet ({_first_line(exc)})") from None
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TapeError(f"{self.where()}: column `{dup[0]}` appears twice in the schema")
        return pf

    def _iter(self, columns):
        pf = self._file()
        require_columns(pf.schema_arrow.names, columns, self.where())
        if pf.metadata.num_rows == 0:
            raise TapeError(f"{self.where()}: no data rows (empty input)")
        try:
            yield from pf.iter_batches(batch_size=self.options.batch_rows, columns=list(columns))
        except READ_ERRORS + (ValueError,) as exc:
            raise TapeError(f"{self.where()}: cannot read Parquet ({_first_line(exc)})") from None


class FlatTradesParquetReader(_ParquetReader):
    format_name = "flat trades parquet"
    column_names = {"ts_exch_us": "timestamp", "ts_local_us": "local_timestamp"}

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _is_parquet(head) and {"side", "local_timestamp", "price", "id"} <= set(_schema_names(path))

    def batches(self) -> Iterator[Trades | Book]:
        conv = _FlatBatches(self)
        for batch in self._iter(TRADE_COLUMNS):
            out = conv.trades(batch)
            if out is not None and len(out):
                yield out


class FlatBookParquetReader(_ParquetReader):
    format_name = "flat book snapshot parquet"
    column_names = {"ts_exch_us": "timestamp", "ts_local_us": "local_timestamp"}

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _is_parquet(head) and "asks[0].price" in _schema_names(path)

    def batches(self) -> Iterator[Trades | Book]:
        levels = _levels_in(self._file().schema_arrow.names)
        conv = _FlatBatches(self)
        for batch in self._iter(book_columns(levels)):
            out = conv.book(batch, levels)
            if out is not None and len(out):
                yield out


def _increment(value, name: str, where: str) -> float:
    if value is None:
        raise TapeError(f"{where}: pointline integer columns need --{name.replace('_', '-')} "
                        f"(the value of one integer unit), none given")
    if not (np.isfinite(value) and value > 0):
        raise TapeError(f"{where}: --{name.replace('_', '-')} must be > 0, got {value!r}")
    return float(value)


class _PointlineReader(_ParquetReader):
    def _symbol_filter(self, batch: pa.RecordBatch, offset: int, seen: set) -> pa.RecordBatch:
        names = batch.schema.names
        if "symbol" in names:
            keep = symbol_mask(batch.column("symbol"), self.options, self.where(), seen)
            if keep is not None:
                self.report.drop(f"other symbols than {self.options.symbol}", int((~keep).sum()))
                batch = batch.filter(pa.array(keep))
            if batch.num_rows and self.symbol is None:
                self.symbol = str(batch.column("symbol")[0].as_py())
        if "exchange" in names and batch.num_rows and self.exchange is None:
            self.exchange = str(batch.column("exchange")[0].as_py())
        return batch

    def _optional(self, wanted):
        names = self._file().schema_arrow.names
        return [c for c in wanted if c in names]


class PointlineTradesReader(_PointlineReader):
    format_name = "pointline trades parquet"
    column_names = {"price": "price_int", "amount": "qty_int"}

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _is_parquet(head) and {"price_int", "qty_int"} <= set(_schema_names(path))

    def batches(self) -> Iterator[Trades | Book]:
        where = self.where()
        px_inc = _increment(self.options.price_increment, "price_increment", where)
        qty_inc = _increment(self.options.amount_increment, "amount_increment", where)
        extra = self._optional(("trade_id", "symbol", "exchange"))
        if "trade_id" not in extra:
            self.report.flag("no `trade_id` column: ids are row numbers in the file", 1)
        offset = 0
        seen: set = set()
        for batch in self._iter(list(POINTLINE_TRADE_COLUMNS) + extra):
            n = batch.num_rows
            self.report.rows_read += n
            batch_offset = offset
            ids = (int_column(batch.column("trade_id"), where, "trade_id", offset)
                   if "trade_id" in extra else np.arange(offset, offset + n, dtype=np.int64))
            offset += n
            batch = batch.append_column("_id", pa.array(ids))
            batch = self._symbol_filter(batch, batch_offset, seen)
            if batch.num_rows == 0:
                continue
            side_code = int_column(batch.column("side"), where, "side", batch_offset)
            bad = ~np.isin(side_code, [0, 1, 2])
            if bad.any():
                i = int(np.argmax(bad))
                raise TapeError(f"{self.where('side')} has value {side_code[i]!r} at row {batch_offset + i} "
                                f"(expected 0 buy, 1 sell, 2 unknown)")
            side = np.choose(side_code.astype(np.int64), [1, -1, 0]).astype(np.int8)
            trades = Trades(time_column(batch.column("ts_exch_us"), where, "ts_exch_us", batch_offset),
                            time_column(batch.column("ts_local_us"), where, "ts_local_us", batch_offset),
                            float_column(batch.column("price_int"), where, "price_int", batch_offset) * px_inc,
                            float_column(batch.column("qty_int"), where, "qty_int", batch_offset) * qty_inc,
                            side, batch.column("_id").to_numpy())
            out = clean_trades(trades, where, self.report, batch_offset, self.options.strict, self.column_names)
            if len(out):
                yield out


def _list_to_levels(col: pa.Array, levels: int, scale: float, where: str = "", name: str = "",
                    offset: int = 0) -> tuple[np.ndarray, int]:
    """(n, levels) float array from a list column (NaN-padded), and how many rows were longer."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)):
        raise TapeError(f"{where}: column `{name}` has type {col.type}, expected lists of numbers")
    n = len(col)
    lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
    values = float_column(pc.list_flatten(col), where, name, offset) * scale
    out = np.full((n, levels), np.nan)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for lv in range(levels):
        has = lengths > lv
        out[has, lv] = values[starts[has] + lv]
    return out, int((lengths > levels).sum())


class PointlineBookReader(_PointlineReader):
    format_name = "pointline book parquet"

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _is_parquet(head) and {"bids_px", "asks_px"} <= set(_schema_names(path))

    def batches(self) -> Iterator[Trades | Book]:
        where = self.where()
        px_inc = _increment(self.options.price_increment, "price_increment", where)
        qty_inc = _increment(self.options.amount_increment, "amount_increment", where)
        extra = self._optional(("symbol", "exchange"))
        offset = 0
        seen: set = set()
        for batch in self._iter(list(POINTLINE_BOOK_COLUMNS) + extra):
            self.report.rows_read += batch.num_rows
            batch_offset = offset
            offset += batch.num_rows
            batch = self._symbol_filter(batch, batch_offset, seen)
            if batch.num_rows == 0:
                continue
            arrays, deeper = {}, 0
            for name, scale in (("bids_px", px_inc), ("bids_sz", qty_inc), ("asks_px", px_inc), ("asks_sz", qty_inc)):
                arrays[name], longer = _list_to_levels(batch.column(name), MAX_LEVELS, scale, where, name,
                                                       batch_offset)
                deeper = max(deeper, longer)
            self.report.flag(f"more than {MAX_LEVELS} levels (deeper levels not kept)", deeper)
            book = Book(time_column(batch.column("ts_exch_us"), where, "ts_exch_us", batch_offset),
                        time_column(batch.column("ts_local_us"), where, "ts_local_us", batch_offset),
                        arrays["bids_px"], arrays["bids_sz"], arrays["asks_px"], arrays["asks_sz"])
            out = clean_book(book, where, self.report, batch_offset, self.options.strict, self.column_names)
            if len(out):
                yield out
