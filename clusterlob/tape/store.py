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
      funding/2024-05-01.parquet    optional: derivative ticker rows (funding rate, mark, index)

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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NoReturn, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._typing import ArrayLike, Days, PathLike
from ..errors import TapeError

__all__ = [
    "Instrument",
    "Trades",
    "Book",
    "Tape",
    "Funding",
    "FUNDING_COLUMNS",
    "read_tape",
    "read_funding",
    "read_manifest",
    "iter_days",
    "time_span",
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
    """What was traded: venue, symbol, its price and amount increments, and its contract.

    ``contract_size`` and ``inverse`` describe what one unit of ``amount`` is worth.  Linear
    contracts and spot (``inverse`` False): an amount is in the base asset (times
    ``contract_size`` when given), and the notional is ``price * amount`` in the quote
    currency.  Inverse contracts (Binance COIN-M): an amount is a number of contracts worth
    ``contract_size`` quote-currency units each (100 USD for BTCUSD_PERP), the notional is
    ``amount * contract_size`` in the quote currency and ``amount * contract_size / price`` in
    the settlement coin.  An inverse instrument needs a contract size.
    """

    exchange: str
    symbol: str
    tick_size: float
    lot_size: float
    contract_size: float | None = None
    inverse: bool = False

    def __post_init__(self):
        for name in ("tick_size", "lot_size"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise TapeError(f"instrument `{name}` must be a finite number > 0, got {value!r}")
        size = self.contract_size
        if size is not None and not (isinstance(size, (int, float)) and np.isfinite(size) and size > 0):
            raise TapeError(f"instrument `contract_size` must be a finite number > 0, got {size!r}")
        if not isinstance(self.inverse, (bool, np.bool_)):
            raise TapeError(f"instrument `inverse` must be true or false, got {self.inverse!r}")
        if self.inverse and size is None:
            raise TapeError(f"instrument {self.exchange}:{self.symbol} is inverse (amounts are contracts) "
                            f"but has no `contract_size`; give it (--contract-size, e.g. 100 for "
                            f"BTCUSD_PERP, 10 for other COIN-M contracts)")

    def notional(self, price: ArrayLike, amount: np.ndarray | float) -> np.ndarray | float:
        """Quote-currency value of ``amount`` at ``price`` (scalars or arrays): ``price *
        amount * contract_size`` (linear; size 1 when not given) or ``amount *
        contract_size`` (inverse)."""
        if self.inverse:
            assert self.contract_size is not None     # __post_init__: an inverse instrument has one
            return np.asarray(amount, dtype=np.float64) * self.contract_size * np.ones_like(price, dtype=np.float64)
        return np.asarray(price, dtype=np.float64) * amount * (self.contract_size or 1.0)

    def settlement_value(self, price: ArrayLike, amount: np.ndarray | float) -> np.ndarray | float:
        """Value in the settlement currency: the quote currency for linear instruments, the
        coin (``amount * contract_size / price``) for inverse ones."""
        if self.inverse:
            assert self.contract_size is not None     # __post_init__: an inverse instrument has one
            return np.asarray(amount, dtype=np.float64) * self.contract_size / np.asarray(price, dtype=np.float64)
        return self.notional(price, amount)

    def to_dict(self) -> dict:
        d = {"exchange": self.exchange, "symbol": self.symbol,
             "tick_size": float(self.tick_size), "lot_size": float(self.lot_size)}
        if self.contract_size is not None or self.inverse:
            d["contract_size"] = None if self.contract_size is None else float(self.contract_size)
            d["inverse"] = bool(self.inverse)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Instrument":
        try:
            size = d.get("contract_size")
            return cls(str(d["exchange"]), str(d["symbol"]), float(d["tick_size"]), float(d["lot_size"]),
                       None if size is None else float(size), bool(d.get("inverse", False)))
        except KeyError as exc:
            raise TapeError(f"instrument is missing `{exc.args[0]}`, got keys {sorted(d)}") from None
        except (TypeError, ValueError) as exc:
            raise TapeError(f"instrument: {exc}") from None


_TRADE_CORE = ("ts_exch_us", "ts_local_us", "price", "amount", "side", "trade_id")


# A column left unread by ``read_tape(columns=...)`` is None, though the fields of Trades and Book
# are typed for the columns read (what users index); the helpers below pass None through, so
# they return Any.

def _take(column: np.ndarray | None, index: Any) -> Any:
    """Rows of a column; a column left unread (None, see ``read_tape(columns=...)``) stays None."""
    return None if column is None else column[index]


def _columns(cols: dict, names: Sequence[str]) -> list[Any]:
    """The columns ``names`` of ``cols``, None for a column not read."""
    return [cols.get(n) for n in names]


def _concat(columns: Sequence[np.ndarray | None]) -> Any:
    if any(c is None for c in columns):
        if not all(c is None for c in columns):
            raise TapeError("cannot join parts of which only some have a column read")
        return None
    return np.concatenate([c for c in columns if c is not None])     # (all of them)


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

    @classmethod
    def _of(cls, core: Sequence[Any], extra: dict) -> "Trades":
        """From the columns of ``_TRADE_CORE``, in that order (None for a column not read)."""
        ts_exch_us, ts_local_us, price, amount, side, trade_id = core
        return cls(ts_exch_us, ts_local_us, price, amount, side, trade_id, extra=extra)

    def take(self, index: np.ndarray | slice) -> "Trades":
        """Rows selected by an integer index array, boolean mask or slice."""
        return Trades._of([_take(getattr(self, n), index) for n in _TRADE_CORE],
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
        if any(a is not None and a.dtype == object for a in ids):
            ids = [a.astype(str).astype(object) if a is not None and a.dtype != object else a for a in ids]
        keys = set(parts[0].extra)
        for p in parts[1:]:
            if set(p.extra) != keys:
                raise TapeError(f"cannot join trades with different extra columns: "
                                f"{sorted(keys)} vs {sorted(p.extra)}")
        return cls._of([*(_concat([getattr(p, n) for p in parts]) for n in _TRADE_CORE[:5]), _concat(ids)],
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
        return Book(*(_take(getattr(self, n), index) for n in ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))

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
        return cls(*(_concat([getattr(p, n) for p in parts])
                     for n in ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))

    def mid(self) -> np.ndarray:
        """Mid price of every snapshot, (bid_px[0] + ask_px[0]) / 2."""
        return 0.5 * (self.bid_px[:, 0] + self.ask_px[:, 0])


FUNDING_COLUMNS = ("ts_exch_us", "ts_local_us", "funding_rate", "next_funding_us", "predicted_funding_rate",
                   "mark_price", "index_price", "last_price", "open_interest")


@dataclass
class Funding:
    """Derivative ticker rows (Tardis ``derivative_ticker``), one per update.

    ``ts_exch_us``, ``ts_local_us`` int64 us; ``funding_rate`` float64 (a fraction per
    funding interval, 0.0001 = 1 bp; always finite); ``next_funding_us`` int64, the time the
    rate applies (-1 when not given); ``predicted_funding_rate``, ``mark_price``,
    ``index_price``, ``last_price``, ``open_interest`` float64 (NaN when not given).
    """

    ts_exch_us: np.ndarray
    ts_local_us: np.ndarray
    funding_rate: np.ndarray
    next_funding_us: np.ndarray
    predicted_funding_rate: np.ndarray
    mark_price: np.ndarray
    index_price: np.ndarray
    last_price: np.ndarray
    open_interest: np.ndarray

    def __len__(self) -> int:
        return int(self.ts_local_us.shape[0])

    def __repr__(self) -> str:
        return f"Funding(n={len(self)})"

    def columns(self) -> dict:
        return {name: getattr(self, name) for name in FUNDING_COLUMNS}

    def take(self, index: np.ndarray | slice) -> "Funding":
        return Funding(*(getattr(self, n)[index] for n in FUNDING_COLUMNS))

    @classmethod
    def empty(cls) -> "Funding":
        i8, f8 = np.empty(0, np.int64), np.empty(0)
        return cls(i8, i8.copy(), f8, i8.copy(), *(f8.copy() for _ in range(5)))


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

    def __init__(self, total: int, levels: int | None = None):
        self.total = total
        self.levels = levels        # book levels kept (None: all)
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
                width = col.type.list_size
                at = self.pos
                for chunk in col.chunks:
                    values = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
                    dest[at:at + values.shape[0]] = values[:, :dest.shape[1]]
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
            width = typ.list_size if self.levels is None else min(self.levels, typ.list_size)
            return np.empty((self.total, width), dtype=typ.value_type.to_pandas_dtype())
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
    _check_manifest(manifest, mpath)
    return manifest


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_manifest(m: dict, mpath: Path) -> None:
    """Every field a reader uses, checked for type and range (a hand-edited manifest gets one
    line naming the field and the value, never a KeyError later)."""
    def fail(field: str, rule: str, value: object) -> NoReturn:
        raise TapeError(f"{mpath}: `{field}` must be {rule}, got {_short(value)}")

    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 63

    def positive(v) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return False
        try:
            return math.isfinite(float(v)) and v > 0
        except OverflowError:
            return False

    inst = m.get("instrument")
    if not isinstance(inst, dict):
        fail("instrument", "an object", inst)
    for key in ("exchange", "symbol"):
        if not isinstance(inst.get(key), str):
            fail(f"instrument.{key}", "text", inst.get(key))
    for key in ("tick_size", "lot_size"):
        if not positive(inst.get(key)):
            fail(f"instrument.{key}", "a finite number > 0", inst.get(key))
    days = m.get("days")
    if not isinstance(days, list):
        fail("days", "a list of {date, trades, book}", days)
    previous = ""
    for i, day in enumerate(days):
        if not isinstance(day, dict):
            fail(f"days[{i}]", "an object {date, trades, book}", day)
        date = day.get("date")
        try:
            ok = isinstance(date, str) and _dt.date.fromisoformat(date).isoformat() == date
        except ValueError:
            ok = False
        if not ok or not isinstance(date, str):      # (ok implies text)
            fail(f"days[{i}].date", "a day YYYY-MM-DD", date)
        if date <= previous:
            fail(f"days[{i}].date", f"after the previous day {previous}", date)
        previous = date
        for key in ("trades", "book"):
            if not count(day.get(key)):
                fail(f"days[{i}].{key}", "a row count (an integer >= 0)", day.get(key, "nothing"))
    levels = m.get("book_levels")
    if levels is not None and not (count(levels) and 1 <= levels <= MAX_LEVELS):
        fail("book_levels", f"null or an integer in 1..{MAX_LEVELS}", levels)
    if m.get("trade_id_type", "int64") not in ("int64", "string"):
        fail("trade_id_type", "'int64' or 'string'", m.get("trade_id_type"))
    extra = m.get("trade_extra_columns", [])
    if not (isinstance(extra, list) and all(isinstance(c, str) for c in extra)):
        fail("trade_extra_columns", "a list of column names", extra)
    if m.get("time_key", "ts_local_us") != "ts_local_us":
        fail("time_key", "'ts_local_us'", m.get("time_key"))
    for key in ("totals", "summary"):
        if key in m and not isinstance(m[key], dict):
            fail(key, "an object", m[key])


def read_tape(path: PathLike, days: Days = None, *, trades: bool = True, book: bool = True,
              levels: int | None = None, columns: Iterable[str] | None = None) -> Tape:
    """Read a tape directory, or only some of its days, columns and book levels.

    Parameters
    ----------
    path : str or Path
        Tape directory written by :class:`TapeWriter` (``python -m clusterlob.convert``).
    days : None, str or sequence of str
        None for all days; ``"FROM:TO"`` (inclusive, either end optional); one day; or a
        list of days.  Files of other days are not opened.
    trades, book : bool
        Set one to False to skip reading that half.
    levels : int, optional
        Keep only the first ``levels`` book levels (default: all).  The files are decoded one
        row group at a time, so the full depth is never held in memory.
    columns : collection of str, optional
        Trade columns to read (default: all, extras included).  ``ts_local_us`` is always read;
        a core column left out is None in the result (``Trades.trade_id is None``), an extra
        left out is absent.  The book's ``ts_exch_us`` is read only when listed here too.

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
    depth = int(manifest.get("book_levels") or MAX_LEVELS)
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= depth:
            raise TapeError(f"`levels` must be an integer in 1..{depth} (the depth of tape {path}), got {levels!r}")
        depth = int(levels)
    wanted = None if columns is None else set(columns) | {"ts_local_us"}
    counts = {d["date"]: d for d in manifest["days"]}
    out_trades = Trades.empty(manifest.get("trade_id_type") == "string")
    out_book = Book.empty(depth)
    if trades:
        need = _TRADE_CORE if wanted is None else tuple(c for c in _TRADE_CORE if c in wanted)
        cols = _read_days(path, "trades", chosen, counts, need, wanted, None)
        if cols is not None:
            out_trades = Trades._of([cols.pop(n, None) for n in _TRADE_CORE], extra=cols)
        elif wanted is not None:
            out_trades = out_trades.take(slice(0, 0))
            for name in _TRADE_CORE:
                if name not in wanted:
                    setattr(out_trades, name, None)
    if book:
        times = ("ts_local_us",) if wanted is not None and "ts_exch_us" not in wanted else ("ts_exch_us", "ts_local_us")
        need = times + _BOOK_SIDES
        cols = _read_days(path, "book", chosen, counts, need, set(need), depth)
        if cols is not None:
            out_book = Book(*_columns(cols, ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))
        elif "ts_exch_us" not in times:
            setattr(out_book, "ts_exch_us", None)      # not read (the field is typed for a column read)
    return Tape(instrument, out_trades, out_book, chosen)


def _read_days(path: Path, kind: str, chosen, counts: dict, need, wanted, levels) -> dict | None:
    """Columns of one half of the tape (``kind`` trades or book) over the chosen days: only the
    ``wanted`` columns (None: all) and the first ``levels`` book levels (None: all)."""
    fill = _Filler(sum(counts[d][kind] for d in chosen), levels)
    for day in chosen:
        if counts[day][kind]:
            f = path / kind / f"{day}.parquet"
            for table in _read_parquet(f, wanted):
                fill.add(table, f)
    return dict(fill.columns(need, kind, path)) if fill.total else None


def _read_parquet(f: Path, wanted=None):
    """The row groups of one day file, one Arrow table each (only the ``wanted`` columns)."""
    if not f.exists():
        raise TapeError(f"{f}: missing, though the manifest lists rows for that day")
    try:
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        cols = names if wanted is None else [c for c in names if c in wanted]
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i, columns=cols)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"{f}: cannot read Parquet ({str(exc).splitlines()[0]})") from None


def time_span(path: PathLike, days: Days = None) -> tuple[int, int] | None:
    """(first, last) local time (us) of the events of the chosen days of a tape directory, from
    the Parquet files' statistics (the ``ts_local_us`` column is read only where a file has
    none); None when the days hold no events."""
    path = Path(path)
    manifest = read_manifest(path)
    counts = {d["date"]: d for d in manifest["days"]}
    lo = hi = None
    for day in parse_days(days, list(counts)):
        for kind in ("trades", "book"):
            if not counts[day][kind]:
                continue
            f = path / kind / f"{day}.parquet"
            try:
                meta = pq.ParquetFile(f).metadata
                col = meta.schema.names.index("ts_local_us")
                stats = [meta.row_group(i).column(col).statistics for i in range(meta.num_row_groups)]
                if all(s is not None and s.has_min_max for s in stats):
                    pairs = [(s.min, s.max) for s in stats]
                else:
                    ts = pq.read_table(f, columns=["ts_local_us"])["ts_local_us"].to_numpy()
                    pairs = [(int(ts.min()), int(ts.max()))] if ts.size else []
            except (pa.ArrowInvalid, OSError, ValueError) as exc:
                raise TapeError(f"{f}: cannot read Parquet ({str(exc).splitlines()[0]})") from None
            for a, b in pairs:
                lo = int(a) if lo is None else min(lo, int(a))
                hi = int(b) if hi is None else max(hi, int(b))
    return None if lo is None or hi is None else (lo, hi)


def iter_days(path: PathLike, days: Days = None, *, levels: int | None = None,
              columns: Iterable[str] | None = None) -> Iterator[Tape]:
    """Yield one :class:`Tape` per chosen day, so a long tape can be processed day by day
    (``levels`` and ``columns`` as for :func:`read_tape`)."""
    manifest = read_manifest(path)
    for day in parse_days(days, [d["date"] for d in manifest["days"]]):
        yield read_tape(path, [day], levels=levels, columns=columns)



def read_funding(path: PathLike, days: Days = None) -> Funding:
    """The funding table of a tape directory (``funding/DAY.parquet``), over the chosen days.

    ``days`` as in :func:`read_tape` (days of the tape without funding rows give none).  A
    tape written without a ``derivative_ticker`` input has no funding table: an error saying
    so.  Rows are in local-time order.
    """
    path = Path(path)
    manifest = read_manifest(path)
    table = manifest.get("funding")
    if not table:
        raise TapeError(f"tape {path} has no funding table (convert a Tardis derivative_ticker file "
                        f"with the trades to add one)")
    counts = {d["date"]: d["rows"] for d in table["days"]}
    available = sorted(set(counts) | {d["date"] for d in manifest["days"]})
    chosen = [d for d in parse_days(days, available) if counts.get(d)]
    fill = _Filler(sum(counts[d] for d in chosen))
    for day in chosen:
        f = path / "funding" / f"{day}.parquet"
        for table in _read_parquet(f):
            fill.add(table, f)
    if not fill.total:
        return Funding.empty()
    cols = fill.columns(FUNDING_COLUMNS, "funding", path)
    return Funding(*(cols[n] for n in FUNDING_COLUMNS))
