"""The tape's data types: :class:`Instrument`, :class:`Trades`, :class:`Book`, :class:`Funding`
and :class:`Tape`, the format constants and the UTC-day helpers.  Reading a tape directory is
:mod:`.store`, writing one :mod:`.writer`.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .._typing import ArrayLike, Days
from ..errors import TapeError

__all__ = ['Book', 'FORMAT_NAME', 'FORMAT_VERSION', 'FUNDING_COLUMNS', 'Funding', 'Instrument', 'MAX_LEVELS', 'Tape', 'Trades', 'US_PER_DAY', 'day_of_us', 'day_start_us', 'level_column', 'parse_days', 'parse_level_column', 'READ_VERSIONS', 'settlement_currency_of']

FORMAT_NAME = "clusterlob-tape"
# version 2 stores each book level as its own column (``bid_px_0`` ... ``ask_sz_24``), so a reader
# decodes only the levels it asks for; version 1 stored each side as one list column (still read)
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
US_PER_DAY = 86_400_000_000
MAX_LEVELS = 25
_BOOK_SIDES = ("bid_px", "bid_sz", "ask_px", "ask_sz")
_LEVEL_COLUMN = re.compile(r"^(bid_px|bid_sz|ask_px|ask_sz)_(\d{1,2})$")


def level_column(side: str, level: int) -> str:
    """The column of one book level in a tape's book files (format 2): ``bid_px_0`` is the best bid."""
    return f"{side}_{level}"


def parse_level_column(name: str) -> tuple[str, int] | None:
    """(side, level) of a book level column name (``ask_sz_3`` -> ("ask_sz", 3)); None for any other name."""
    m = _LEVEL_COLUMN.match(name)
    return (m.group(1), int(m.group(2))) if m else None
# quote assets a linear symbol may end with, longest first (BTCFDUSD is FDUSD, not USD)
_QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "USD", "EUR", "TRY", "BRL",
                 "BTC", "ETH", "BNB")


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

def settlement_currency_of(symbol: str, inverse: bool) -> str:
    """The currency an instrument's PnL is settled in, read from its symbol: an inverse
    contract's coin (the base asset: ``BTCUSD_PERP`` -> ``BTC``, ``XBTUSD`` -> ``XBT``,
    ``BTC-PERPETUAL`` -> ``BTC``), a linear one's quote asset (``BTCUSDT`` -> ``USDT``);
    ``"coin"`` / ``"quote"`` when the symbol does not say."""
    head = symbol.upper().replace("-", "_").replace("/", "_").split("_")
    if inverse:
        if len(head) > 1 and head[0].isalnum() and not head[0].endswith("USD"):
            return head[0]                                      # BTC-PERPETUAL
        base = head[0][:-3] if head[0].endswith("USD") else ""
        return base if base.isalnum() else "coin"
    if len(head) > 1 and head[-1] in _QUOTE_ASSETS:             # BTC-USDT, BTC/USDT
        return head[-1]
    for quote in _QUOTE_ASSETS:                                 # longest first
        if head[0].endswith(quote) and len(head[0]) > len(quote):
            return quote
    return "quote"


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

    def base_amount(self, price: ArrayLike, amount: np.ndarray | float) -> np.ndarray | float:
        """Amount in the base asset (BTC for BTCUSDT and BTCUSD_PERP): ``amount *
        contract_size`` (linear; ``amount`` as is when there is no contract size) or ``amount *
        contract_size / price`` (inverse: the coins the contracts are worth)."""
        if self.inverse:
            return self.settlement_value(price, amount)
        return self.flow_size(amount)

    def settlement_value(self, price: ArrayLike, amount: np.ndarray | float) -> np.ndarray | float:
        """Value in the settlement currency: the quote currency for linear instruments, the
        coin (``amount * contract_size / price``) for inverse ones."""
        if self.inverse:
            assert self.contract_size is not None     # __post_init__: an inverse instrument has one
            return np.asarray(amount, dtype=np.float64) * self.contract_size / np.asarray(price, dtype=np.float64)
        return self.notional(price, amount)

    @property
    def flow_unit(self) -> float:
        """What one unit of ``amount`` (and of a book size) counts for in order flow: the
        features' depths and the OFI weigh sizes by it (:meth:`flow_size`).

        Inverse: ``contract_size``, so flow is the quote-currency notional (contracts x USD
        per contract).  Linear with a contract size: ``contract_size``, so flow is in base
        units.  Plain linear (no contract size, every USD-M and spot tape): 1.0, the amount
        itself (base units, the research log's convention).
        """
        return 1.0 if self.contract_size is None else float(self.contract_size)

    def flow_size(self, amount: ArrayLike) -> np.ndarray:
        """``amount`` (trade amounts or book sizes, any shape) in flow units: ``amount *
        flow_unit`` (see :attr:`flow_unit`); a plain linear instrument's amounts unchanged."""
        amount = np.asarray(amount, dtype=np.float64)
        return amount if self.contract_size is None else amount * float(self.contract_size)

    @property
    def settlement_currency(self) -> str:
        """The currency PnL is settled in: :func:`settlement_currency_of` its symbol."""
        return settlement_currency_of(self.symbol, bool(self.inverse))

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
