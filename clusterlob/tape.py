"""The canonical tape: trades and book snapshots of one instrument, in memory and on disk.

In memory
---------
:class:`Tape` holds an :class:`Instrument`, :class:`Trades` and a :class:`Book`, all plain
NumPy arrays, sorted stably by local receive time (the time a trader saw the event).

* Times are int64 microseconds since the epoch, UTC; every row keeps the exchange time
  (``ts_exch_us``) and the local receive time (``ts_local_us``).
* ``Trades.side`` is int8: +1 buy taker, -1 sell taker, 0 unknown.
* ``Book`` levels are ``(n, L)`` float64 arrays, level 0 the touch, ``L <= 25``; a missing
  level is NaN.

On disk (a *tape directory*)
----------------------------
::

    TAPE_DIR/
      manifest.json                 format, version, instrument, days, row counts, summary
      trades/2024-05-01.parquet     one file per UTC day of ts_local_us
      book/2024-05-01.parquet

Trades files have columns ``ts_exch_us`` (int64), ``ts_local_us`` (int64), ``price``,
``amount`` (float64), ``side`` (int8), ``trade_id`` (int64, or string when the source
ids are not all integers) and any extra columns (for example ``agent`` in synthetic tapes).
Book files have ``ts_exch_us``, ``ts_local_us`` and ``bid_px``, ``bid_sz``, ``ask_px``,
``ask_sz`` as fixed-size lists of L float64 (NaN for a missing level).  Rows are
partitioned by the UTC day of the local time, so concatenating the day files in date
order gives the whole tape in order.  Files are LZ4-compressed Parquet.

A tape directory is written by :class:`TapeWriter` into a temporary folder beside the
target and renamed into place when complete, so a reader never sees half a tape.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import TapeError

__all__ = [
    "Instrument",
    "Trades",
    "Book",
    "Tape",
    "TapeWriter",
    "read_tape",
    "read_manifest",
    "write_tape",
    "iter_days",
    "day_of_us",
    "day_start_us",
    "parse_days",
    "US_PER_DAY",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

FORMAT_NAME = "clusterlob-tape"
FORMAT_VERSION = 1
US_PER_DAY = 86_400_000_000
MAX_LEVELS = 25
_COMPRESSION = "lz4"
_BOOK_SIDES = ("bid_px", "bid_sz", "ask_px", "ask_sz")


# -- days -------------------------------------------------------------------------------

def day_of_us(ts_us: int) -> str:
    """UTC calendar day (``YYYY-MM-DD``) of a time in microseconds since the epoch."""
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=int(ts_us) // US_PER_DAY)).isoformat()


def day_start_us(day: str) -> int:
    """Microseconds since the epoch at 00:00 UTC of ``day`` (``YYYY-MM-DD``)."""
    try:
        d = _dt.date.fromisoformat(day)
    except ValueError:
        raise TapeError(f"day must be YYYY-MM-DD, got {day!r}") from None
    return (d - _dt.date(1970, 1, 1)).days * US_PER_DAY


def parse_days(spec, available: Sequence[str]) -> list[str]:
    """Select days from ``available``.

    ``spec`` is None (all), ``"FROM:TO"`` (inclusive; either end may be empty), a single
    ``"YYYY-MM-DD"``, or a sequence of day strings.  Unknown days in an explicit list are
    an error naming them; a range selects the available days inside it.
    """
    available = list(available)
    if spec is None:
        return available
    if isinstance(spec, str):
        if ":" in spec:
            lo, hi = spec.split(":", 1)
            for part in (lo, hi):
                if part:
                    day_start_us(part)
            chosen = [d for d in available if (not lo or d >= lo) and (not hi or d <= hi)]
            if not chosen:
                raise TapeError(f"days {spec!r} select none of the tape's days "
                                f"({available[0] if available else '-'} .. {available[-1] if available else '-'})")
            return chosen
        spec = [spec]
    wanted = list(spec)
    for d in wanted:
        day_start_us(d)
    missing = [d for d in wanted if d not in available]
    if missing:
        raise TapeError(f"days not in the tape: {', '.join(missing)} (it has {len(available)} days, "
                        f"{available[0] if available else '-'} .. {available[-1] if available else '-'})")
    return sorted(set(wanted))


# -- in-memory types ----------------------------------------------------------------------

@dataclass(frozen=True)
class Instrument:
    """What was traded: venue, symbol and its price and amount increments."""

    exchange: str
    symbol: str
    tick_size: float
    lot_size: float

    def __post_init__(self):
        for name in ("tick_size", "lot_size"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise TapeError(f"instrument `{name}` must be a finite number > 0, got {value!r}")

    def to_dict(self) -> dict:
        return {"exchange": self.exchange, "symbol": self.symbol,
                "tick_size": float(self.tick_size), "lot_size": float(self.lot_size)}

    @classmethod
    def from_dict(cls, d: dict) -> "Instrument":
        try:
            return cls(str(d["exchange"]), str(d["symbol"]), float(d["tick_size"]), float(d["lot_size"]))
        except KeyError as exc:
            raise TapeError(f"instrument is missing `{exc.args[0]}`, got keys {sorted(d)}") from None


_TRADE_CORE = ("ts_exch_us", "ts_local_us", "price", "amount", "side", "trade_id")


@dataclass
class Trades:
    """Trades, one row each: times (int64 us), price, amount (float64), side (int8), id.

    ``trade_id`` is int64 when every source id is an integer, otherwise an object array of
    str.  ``extra`` holds further per-trade columns (for example ``agent``), same length.
    """

    ts_exch_us: np.ndarray
    ts_local_us: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    side: np.ndarray
    trade_id: np.ndarray
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_local_us.shape[0])

    def __repr__(self) -> str:
        extra = f", extra={sorted(self.extra)}" if self.extra else ""
        return f"Trades(n={len(self)}{extra})"

    def columns(self) -> dict:
        """All columns by name, core first."""
        cols = {name: getattr(self, name) for name in _TRADE_CORE}
        cols.update(self.extra)
        return cols

    def take(self, index) -> "Trades":
        """Rows selected by an integer index array, boolean mask or slice."""
        return Trades(*(getattr(self, n)[index] for n in _TRADE_CORE),
                      extra={k: v[index] for k, v in self.extra.items()})

    @classmethod
    def empty(cls, string_ids: bool = False) -> "Trades":
        i8 = np.empty(0, np.int64)
        return cls(i8, i8.copy(), np.empty(0), np.empty(0), np.empty(0, np.int8),
                   np.empty(0, object) if string_ids else i8.copy())

    @classmethod
    def concat(cls, parts: Sequence["Trades"]) -> "Trades":
        parts = [p for p in parts if len(p)] or list(parts[:1]) or [cls.empty()]
        ids = [p.trade_id for p in parts]
        if any(a.dtype == object for a in ids):
            ids = [a.astype(str).astype(object) if a.dtype != object else a for a in ids]
        keys = set(parts[0].extra)
        for p in parts[1:]:
            if set(p.extra) != keys:
                raise TapeError(f"cannot join trades with different extra columns: "
                                f"{sorted(keys)} vs {sorted(p.extra)}")
        return cls(*(np.concatenate([getattr(p, n) for p in parts]) for n in _TRADE_CORE[:5]),
                   np.concatenate(ids),
                   extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(keys)})


@dataclass
class Book:
    """Book snapshots, one row each: times (int64 us) and (n, L) float64 levels (NaN = missing)."""

    ts_exch_us: np.ndarray
    ts_local_us: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray

    def __len__(self) -> int:
        return int(self.ts_local_us.shape[0])

    @property
    def levels(self) -> int:
        return int(self.bid_px.shape[1])

    def __repr__(self) -> str:
        return f"Book(n={len(self)}, levels={self.levels})"

    def take(self, index) -> "Book":
        return Book(*(getattr(self, n)[index] for n in ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))

    @classmethod
    def empty(cls, levels: int = MAX_LEVELS) -> "Book":
        i8 = np.empty(0, np.int64)
        lv = np.empty((0, levels))
        return cls(i8, i8.copy(), lv, lv.copy(), lv.copy(), lv.copy())

    @classmethod
    def concat(cls, parts: Sequence["Book"]) -> "Book":
        parts = [p for p in parts if len(p)] or list(parts[:1]) or [cls.empty()]
        levels = {p.levels for p in parts}
        if len(levels) > 1:
            raise TapeError(f"cannot join book snapshots with different depths: {sorted(levels)} levels")
        return cls(*(np.concatenate([getattr(p, n) for p in parts])
                     for n in ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))

    def mid(self) -> np.ndarray:
        """Mid price of every snapshot, (bid_px[0] + ask_px[0]) / 2."""
        return 0.5 * (self.bid_px[:, 0] + self.ask_px[:, 0])


@dataclass
class Tape:
    """One instrument's trades and book snapshots over a set of UTC days."""

    instrument: Instrument
    trades: Trades
    book: Book
    days: list = field(default_factory=list)

    def __repr__(self) -> str:
        span = f"{self.days[0]}..{self.days[-1]}" if self.days else "no days"
        return (f"Tape({self.instrument.exchange}:{self.instrument.symbol}, {span}, "
                f"{len(self.trades)} trades, {len(self.book)} snapshots x {self.book.levels} levels)")


# -- Arrow conversion ----------------------------------------------------------------------

def _trades_to_table(trades: Trades) -> pa.Table:
    cols = {}
    for name, arr in trades.columns().items():
        if arr.dtype == object:
            cols[name] = pa.array(arr, type=pa.string())
        else:
            cols[name] = pa.array(arr)
    return pa.table(cols)


def _fixed_list(a: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a, dtype=np.float64).ravel()),
                                            a.shape[1])


def _book_to_table(book: Book) -> pa.Table:
    cols = {"ts_exch_us": pa.array(book.ts_exch_us), "ts_local_us": pa.array(book.ts_local_us)}
    for name in _BOOK_SIDES:
        cols[name] = _fixed_list(getattr(book, name))
    return pa.table(cols)


class _Filler:
    """Preallocated output columns filled day by day: one copy from Arrow, no concatenation."""

    def __init__(self, total: int):
        self.total = total
        self.pos = 0
        self.out: dict = {}

    def add(self, table: pa.Table, path) -> None:
        n = table.num_rows
        if self.pos + n > self.total:
            raise TapeError(f"{path}: {n} rows, more than the manifest counts for the days read "
                            f"({self.total}); the tape directory was changed after it was written")
        for name in table.column_names:
            col = table[name]
            if name not in self.out:
                self.out[name] = self._allocate(col.type)
            dest = self.out[name]
            if pa.types.is_fixed_size_list(col.type):
                flat = dest.reshape(-1)
                width = col.type.list_size
                at = self.pos * width
                for chunk in col.chunks:
                    values = chunk.flatten().to_numpy(zero_copy_only=False)
                    flat[at:at + values.shape[0]] = values
                    at += values.shape[0]
            elif dest.dtype == object:
                dest[self.pos:self.pos + n] = col.to_pylist()
            else:
                at = self.pos
                for chunk in col.chunks:
                    values = chunk.to_numpy(zero_copy_only=False)
                    dest[at:at + values.shape[0]] = values
                    at += values.shape[0]
        self.pos += n

    def _allocate(self, typ: pa.DataType) -> np.ndarray:
        if pa.types.is_fixed_size_list(typ):
            return np.empty((self.total, typ.list_size), dtype=typ.value_type.to_pandas_dtype())
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            return np.empty(self.total, dtype=object)
        return np.empty(self.total, dtype=typ.to_pandas_dtype())

    def columns(self, need, kind: str, path) -> dict:
        if self.pos != self.total:
            raise TapeError(f"{path}: the {kind} files hold {self.pos} rows, the manifest counts "
                            f"{self.total}; the tape directory was changed after it was written")
        missing = [c for c in need if c not in self.out]
        if missing:
            raise TapeError(f"{kind} files in {path}: missing columns {missing}, found {sorted(self.out)}")
        return self.out


# -- reading -------------------------------------------------------------------------------

def read_manifest(path) -> dict:
    """Read and check a tape directory's ``manifest.json``."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not path.is_dir():
        raise TapeError(f"tape directory {path} does not exist")
    if not mpath.is_file():
        raise TapeError(f"{path} is not a tape directory: no manifest.json (write one with `python -m clusterlob.convert`)")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TapeError(f"{mpath}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT_NAME:
        raise TapeError(f"{mpath}: `format` must be {FORMAT_NAME!r}, got {manifest.get('format')!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise TapeError(f"{mpath}: format version {manifest.get('version')!r} is not supported "
                        f"(this clusterlob reads version {FORMAT_VERSION})")
    return manifest


def read_tape(path, days=None, *, trades: bool = True, book: bool = True) -> Tape:
    """Read a tape directory, or only some of its days.

    Parameters
    ----------
    path : str or Path
        Tape directory written by :class:`TapeWriter` (``python -m clusterlob.convert``).
    days : None, str or sequence of str
        None for all days; ``"FROM:TO"`` (inclusive, either end optional); one day; or a
        list of days.  Files of other days are not opened.
    trades, book : bool
        Set one to False to skip reading that half.

    Returns
    -------
    Tape
        Arrays concatenated over the chosen days, in local-time order.
    """
    path = Path(path)
    manifest = read_manifest(path)
    instrument = Instrument.from_dict(manifest["instrument"])
    available = [d["date"] for d in manifest["days"]]
    chosen = parse_days(days, available)
    levels = int(manifest.get("book_levels") or MAX_LEVELS)
    counts = {d["date"]: d for d in manifest["days"]}
    out_trades = Trades.empty(manifest.get("trade_id_type") == "string")
    out_book = Book.empty(levels)
    if trades:
        fill = _Filler(sum(counts[d]["trades"] for d in chosen))
        for day in chosen:
            f = path / "trades" / f"{day}.parquet"
            if counts[day]["trades"]:
                fill.add(_read_parquet(f), f)
        if fill.total:
            cols = dict(fill.columns(_TRADE_CORE, "trades", path))
            out_trades = Trades(*(cols.pop(n) for n in _TRADE_CORE), extra=cols)
    if book:
        fill = _Filler(sum(counts[d]["book"] for d in chosen))
        for day in chosen:
            f = path / "book" / f"{day}.parquet"
            if counts[day]["book"]:
                fill.add(_read_parquet(f), f)
        if fill.total:
            cols = fill.columns(("ts_exch_us", "ts_local_us") + _BOOK_SIDES, "book", path)
            out_book = Book(*(cols[n] for n in ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))
    return Tape(instrument, out_trades, out_book, chosen)


def _read_parquet(f: Path) -> pa.Table:
    if not f.exists():
        raise TapeError(f"{f}: missing, though the manifest lists rows for that day")
    try:
        return pq.read_table(f)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"{f}: cannot read Parquet ({str(exc).splitlines()[0]})") from None


# -- writing -------------------------------------------------------------------------------

class TapeWriter:
    """Write a tape directory day by day, atomically.

    Rows can arrive in any number of batches, in any order of days; each batch is split by
    the UTC day of its local time and appended to that day's staging file.  ``close()``
    then, per day, sorts stably by local time if needed (counting rows that were out of
    order), counts duplicate trade ids, writes the final files and the manifest, and
    renames the temporary folder to ``path``.  Until then nothing exists at ``path``; an
    exception (or leaving a ``with`` block by one) removes the temporary folder.

    Parameters
    ----------
    path : str or Path
        Target directory.  Must not exist, or be empty, unless ``force=True`` (then an
        existing tape directory is replaced only after the new one is complete).
    instrument : Instrument
    force : bool
    """

    def __init__(self, path, instrument: Instrument, *, force: bool = False):
        self.path = Path(path)
        self.instrument = instrument
        if self.path.exists():
            if not self.path.is_dir():
                raise TapeError(f"output {self.path} exists and is not a directory")
            if any(self.path.iterdir()) and not force:
                raise TapeError(f"output directory {self.path} is not empty (use --force to replace it)")
        self.force = force
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        (self._tmp / "_stage").mkdir()
        self._writers: dict = {}       # (kind, day) -> ParquetWriter
        self._last_ts: dict = {}       # (kind, day) -> last local time appended
        self._unsorted: dict = {}      # (kind, day) -> rows found behind their predecessor
        self._rows: dict = {}          # (kind, day) -> rows
        self._schemas: dict = {}       # kind -> schema
        self._levels = None
        self._pool = None
        self._pending: list = []
        self._input_last: dict = {}    # kind -> last local time in input order
        self._input_backwards = {"trades": 0, "book": 0}
        self._closed = False

    # context manager: clean up on error
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()
        return False

    def abort(self) -> None:
        """Drop everything written so far (the target is left untouched)."""
        try:
            self._drain()
        except Exception:  # noqa: BLE001 - the write that failed is being thrown away
            pass
        for w in self._writers.values():
            try:
                w.close()
            except Exception:  # noqa: BLE001 - best effort during cleanup
                pass
        self._writers.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._closed = True

    def add_trades(self, trades: Trades) -> None:
        """Append trades (any days, any order)."""
        if len(trades):
            self._add("trades", _trades_to_table(trades), trades.ts_local_us)

    def add_book(self, book: Book) -> None:
        """Append book snapshots (any days, any order); every batch must have the same depth."""
        if not len(book):
            return
        if self._levels is None:
            self._levels = book.levels
        elif book.levels != self._levels:
            raise TapeError(f"book snapshots with {book.levels} levels cannot join a tape of "
                            f"{self._levels} levels")
        self._add("book", _book_to_table(book), book.ts_local_us)

    def _add(self, kind: str, table: pa.Table, ts_local_us: np.ndarray) -> None:
        from . import _core

        schema = self._schemas.setdefault(kind, table.schema)
        if not table.schema.equals(schema):
            raise TapeError(f"{kind} batch has schema {table.schema.names} "
                            f"({[str(t) for t in table.schema.types]}), expected "
                            f"{schema.names} ({[str(t) for t in schema.types]})")
        ts_all = np.ascontiguousarray(ts_local_us, dtype=np.int64)
        back = _core.count_backwards_steps(ts_all)
        if kind in self._input_last and ts_all[0] < self._input_last[kind]:
            back += 1
        self._input_backwards[kind] += back
        self._input_last[kind] = int(ts_all[-1])
        day_index = ts_all // US_PER_DAY
        lo, hi = int(day_index.min()), int(day_index.max())
        for d in range(lo, hi + 1):
            if lo == hi:
                part, ts = table, ts_local_us
            else:
                mask = day_index == d
                if not mask.any():
                    continue
                part, ts = table.filter(pa.array(mask)), ts_local_us[mask]
            day = day_of_us(d * US_PER_DAY)
            key = (kind, day)
            ts = np.ascontiguousarray(ts, dtype=np.int64)
            unsorted = _core.count_backwards_steps(ts)
            if key in self._last_ts and ts[0] < self._last_ts[key]:
                unsorted += 1
            self._last_ts[key] = max(int(ts.max()), self._last_ts.get(key, ts[-1]))
            self._unsorted[key] = self._unsorted.get(key, 0) + unsorted
            self._rows[key] = self._rows.get(key, 0) + len(ts)
            if key not in self._writers:
                self._writers[key] = pq.ParquetWriter(self._tmp / "_stage" / f"{kind}-{day}.parquet",
                                                      schema, compression=_COMPRESSION,
                                                      use_dictionary=kind == "book")
            self._write_behind(self._writers[key], part)

    def _write_behind(self, writer: pq.ParquetWriter, table: pa.Table) -> None:
        # Parquet encoding runs in one background thread (pyarrow releases the GIL), so the
        # caller can parse the next batch meanwhile; at most two writes are in flight.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tape-writer")
        self._pending.append(self._pool.submit(writer.write_table, table, row_group_size=1 << 20))
        while len(self._pending) > 2:
            self._pending.pop(0).result()

    def _drain(self) -> None:
        while self._pending:
            self._pending.pop(0).result()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def close(self, summary: dict | None = None) -> dict:
        """Finish every day, write ``manifest.json`` and move the tape into place.

        ``summary`` (for example reader counts) is stored in the manifest next to the
        writer's own counts.  Returns the manifest.
        """
        if self._closed:
            raise TapeError("tape writer is already closed")
        try:
            manifest = self._finish(summary or {})
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return manifest

    def _finish(self, summary: dict) -> dict:
        self._drain()
        for w in self._writers.values():
            w.close()
        days = sorted({day for _, day in self._rows})
        if not days:
            raise TapeError("nothing to write: the input has no trades and no book snapshots")
        (self._tmp / "trades").mkdir()
        (self._tmp / "book").mkdir()
        entries = []
        duplicate_ids = 0
        string_ids = False
        for day in days:
            entry = {"date": day, "trades": 0, "book": 0}
            for kind in ("trades", "book"):
                key = (kind, day)
                if key not in self._rows:
                    continue
                stage = self._tmp / "_stage" / f"{kind}-{day}.parquet"
                final = self._tmp / kind / f"{day}.parquet"
                n_unsorted = self._unsorted[key]
                if n_unsorted:
                    table = pq.read_table(stage)
                    order = np.argsort(table["ts_local_us"].to_numpy(), kind="stable")
                    pq.write_table(table.take(pa.array(order)), final, compression=_COMPRESSION,
                                   row_group_size=1 << 20)
                    stage.unlink()
                else:
                    os.replace(stage, final)
                if kind == "trades":
                    ids = pq.read_table(final, columns=["trade_id"])["trade_id"]
                    string_ids |= pa.types.is_string(ids.type)
                    duplicate_ids += _duplicates(ids)
                entry[kind] = self._rows[key]
            entries.append(entry)
        (self._tmp / "_stage").rmdir()
        own = {"out_of_order_trades_sorted": self._input_backwards["trades"],
               "out_of_order_book_sorted": self._input_backwards["book"],
               "duplicate_trade_ids": duplicate_ids}
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "instrument": self.instrument.to_dict(),
            "time_key": "ts_local_us",
            "book_levels": self._levels,
            "trade_id_type": "string" if string_ids else "int64",
            "trade_extra_columns": [n for n in self._schemas.get("trades", pa.schema([])).names
                                    if n not in _TRADE_CORE],
            "days": entries,
            "totals": {"trades": sum(e["trades"] for e in entries), "book": sum(e["book"] for e in entries)},
            "summary": {**summary, **own},
            "created_by": _created_by(),
        }
        (self._tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _move_into_place(self._tmp, self.path, self.force)
        return manifest


def _duplicates(ids: pa.ChunkedArray) -> int:
    """Number of ids equal to an earlier id (exchange ids usually increase: then no hashing)."""
    if pa.types.is_integer(ids.type):
        values = ids.to_numpy()
        if values.size < 2 or bool((values[1:] > values[:-1]).all()):
            return 0
    return len(ids) - len(ids.unique())


def _created_by() -> str:
    from . import __version__
    return f"clusterlob {__version__}"


def _move_into_place(tmp: Path, target: Path, force: bool) -> None:
    if target.exists():
        if any(target.iterdir()) and not force:
            raise TapeError(f"output directory {target} is not empty (use --force to replace it)")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def write_tape(tape: Tape, path, *, force: bool = False, summary: dict | None = None) -> dict:
    """Write an in-memory :class:`Tape` as a tape directory (atomically); return the manifest."""
    with TapeWriter(path, tape.instrument, force=force) as writer:
        writer.add_trades(tape.trades)
        writer.add_book(tape.book)
        return writer.close(summary)


def iter_days(path, days=None) -> Iterable[Tape]:
    """Yield one :class:`Tape` per chosen day, so a long tape can be processed day by day."""
    manifest = read_manifest(path)
    for day in parse_days(days, [d["date"] for d in manifest["days"]]):
        yield read_tape(path, [day])
