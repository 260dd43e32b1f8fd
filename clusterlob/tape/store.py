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

A tape directory is written by :class:`~clusterlob.tape.writer.TapeWriter` (in
:mod:`clusterlob.tape_writer`, re-exported here) into a temporary folder beside the target
and renamed into place when complete, so a reader never sees half a tape.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._typing import Days, PathLike
from ..errors import TapeError

__all__ = [
    "Instrument",
    "Trades",
    "Book",
    "Tape",
    "read_tape",
    "read_manifest",
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


def parse_days(spec: Days, available: Sequence[str]) -> list[str]:
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

    def take(self, index: np.ndarray | slice) -> "Trades":
        """Rows selected by an integer index array, boolean mask or slice."""
        return Trades(self.ts_exch_us[index], self.ts_local_us[index], self.price[index],
                      self.amount[index], self.side[index], self.trade_id[index],
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
        ts_exch_us, ts_local_us, price, amount, side = (
            np.concatenate([getattr(p, n) for p in parts]) for n in _TRADE_CORE[:5])
        return cls(ts_exch_us, ts_local_us, price, amount, side, np.concatenate(ids),
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

    def take(self, index: np.ndarray | slice) -> "Book":
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

def read_manifest(path: PathLike) -> dict:
    """Read and check a tape directory's ``manifest.json``."""
    path = Path(path)
    mpath = path / "manifest.json"
    if path.is_file():
        raise TapeError(f"{path} is a file, not a tape directory (convert it with `python -m clusterlob.convert`)")
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


def read_tape(path: PathLike, days: Days = None, *, trades: bool = True, book: bool = True) -> Tape:
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
        cols = _read_days(path, "trades", chosen, counts, _TRADE_CORE)
        if cols is not None:
            ts_exch_us, ts_local_us, price, amount, side, trade_id = (cols.pop(n) for n in _TRADE_CORE)
            out_trades = Trades(ts_exch_us, ts_local_us, price, amount, side, trade_id, extra=cols)
    if book:
        need = ("ts_exch_us", "ts_local_us") + _BOOK_SIDES
        cols = _read_days(path, "book", chosen, counts, need)
        if cols is not None:
            out_book = Book(*(cols[n] for n in need))
    return Tape(instrument, out_trades, out_book, chosen)


def _read_days(path: Path, kind: str, chosen, counts: dict, need) -> dict | None:
    """Columns of one half of the tape (``kind`` trades or book) over the chosen days."""
    fill = _Filler(sum(counts[d][kind] for d in chosen))
    for day in chosen:
        if counts[day][kind]:
            f = path / kind / f"{day}.parquet"
            fill.add(_read_parquet(f), f)
    return dict(fill.columns(need, kind, path)) if fill.total else None


def _read_parquet(f: Path) -> pa.Table:
    if not f.exists():
        raise TapeError(f"{f}: missing, though the manifest lists rows for that day")
    try:
        return pq.read_table(f)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"{f}: cannot read Parquet ({str(exc).splitlines()[0]})") from None


def iter_days(path: PathLike, days: Days = None) -> Iterable[Tape]:
    """Yield one :class:`Tape` per chosen day, so a long tape can be processed day by day."""
    manifest = read_manifest(path)
    for day in parse_days(days, [d["date"] for d in manifest["days"]]):
        yield read_tape(path, [day])

