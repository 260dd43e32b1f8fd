"""Readers of outside formats, each producing canonical :class:`~clusterlob.tape.Trades` /
:class:`~clusterlob.tape.Book` batches, and format detection.

| format | module |
|---|---|
| Tardis ``trades`` and ``book_snapshot_25/5`` CSV, CSV.gz | :mod:`.tardis` |
| the same flat columns in Parquet; pointline-style integer Parquet | :mod:`.parquet` |
| Binance stream recordings (`<ns> <JSON>` lines; book rebuilt from depth diffs) | :mod:`.binance` |
"""
from __future__ import annotations

from pathlib import Path

from ...errors import TapeError
from .base import Reader, ReaderOptions, read_head
from .binance import BinanceReader
from .parquet import (FlatBookParquetReader, FlatTradesParquetReader, PointlineBookReader,
                      PointlineTradesReader)
from .tardis import TardisBookReader, TardisTradesReader

__all__ = ["Reader", "ReaderOptions", "READERS", "detect_reader"]

# Tried in order; the first whose sniff() accepts the file reads it.
READERS: list = [
    BinanceReader,
    TardisTradesReader,
    TardisBookReader,
    FlatTradesParquetReader,
    FlatBookParquetReader,
    PointlineTradesReader,
    PointlineBookReader,
]


def detect_reader(path: str | Path) -> type[Reader]:
    """The reader class for a file, from its content (not its name)."""
    path = Path(path)
    head = read_head(path)
    if not head:
        raise TapeError(f"input {path}: the file is empty")
    for cls in READERS:
        if cls.sniff(path, head):
            return cls
    first = head.split(b"\n", 1)[0][:120].decode("utf-8", "replace")
    raise TapeError(f"input {path}: unrecognised format (first line: {first!r}); expected Tardis "
                    f"trades/book_snapshot CSV(.gz), flat or pointline Parquet, or Binance stream recordings "
                    f"(`<ns> <JSON>` lines)")
