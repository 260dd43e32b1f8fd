"""Readers of outside formats, each producing canonical :class:`~clusterlob.tape.Trades` /
:class:`~clusterlob.tape.Book` batches, and format detection.

| format | module |
|---|---|
| Tardis ``trades`` and ``book_snapshot_25/5`` CSV, CSV.gz | :mod:`.tardis` |
| the same flat columns in Parquet; pointline-style integer Parquet | :mod:`.parquet` |
| Binance stream recordings (`<ns> <JSON>` lines; book rebuilt from depth diffs) | :mod:`.binance` |
| Tardis ``incremental_book_L2``, ``quotes`` / ``book_ticker``, ``derivative_ticker`` CSV(.gz) | :mod:`.tardis_l2` |
| Binance historical depth CSV (``first_update_id``, ``update_type`` snap/set) | :mod:`.binance_depth` |

Many files of one stream (a week of daily recordings) are read as one stream by
:mod:`.streams`.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import TapeError
from .base import READ_ERRORS, Reader, ReaderOptions, read_head
from .binance import BinanceReader
from .binance_depth import BinanceDepthFileReader
from .parquet import (FlatBookParquetReader, FlatTradesParquetReader, PointlineBookReader,
                      PointlineTradesReader)
from .tardis import TardisBookReader, TardisTradesReader
from .tardis_l2 import TardisDerivativeTickerReader, TardisIncrementalReader, TardisQuotesReader

__all__ = ["Reader", "ReaderOptions", "READERS", "detect_reader"]

# Tried in order; the first whose sniff() accepts the file reads it (the formats with the
# most specific headers first: an incremental_book_L2 header also has trades' columns).
READERS: list = [
    BinanceReader,
    TardisIncrementalReader,
    TardisQuotesReader,
    TardisDerivativeTickerReader,
    BinanceDepthFileReader,
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
        try:
            if cls.sniff(path, head):
                return cls
        except READ_ERRORS + (ValueError,):    # a damaged file is not this format
            continue
    if head[:4] == b"PAR1":
        try:
            import pyarrow.parquet as pq
            names = pq.read_schema(path).names
        except READ_ERRORS + (ValueError,) as exc:
            raise TapeError(f"input {path}: a Parquet file that cannot be read "
                            f"({(str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]})") from None
        shown = ", ".join(names[:16]) + (", ..." if len(names) > 16 else "")
        raise TapeError(f"input {path}: a Parquet file of unknown layout (columns: {shown or 'none'}); expected "
                        f"Tardis' flat trades/book columns or pointline's integer columns")
    first = head.split(b"\n", 1)[0][:120].decode("utf-8", "replace")
    raise TapeError(f"input {path}: unrecognised format (first line: {first!r}); expected Tardis "
                    f"trades, book_snapshot, incremental_book_L2, quotes/book_ticker or derivative_ticker "
                    f"CSV(.gz), Binance historical depth CSV, flat or pointline Parquet, or Binance stream "
                    f"recordings (`<ns> <JSON>` lines)")
