"""Market-making tape replay: the compiled event-driven engine and ``python -m clusterlob.replay``.

:func:`replay` runs the quoting rules of :mod:`clusterlob.strategy` over a tape's trades
and book touch, event by event in local-time order, with order latency, conservative
fills at the trade's own price, post-only quotes, an inventory limit and maker fees, and
returns the fills, a one-minute equity series and a summary whose PnL is split into
spread capture, inventory drift and fees.  The engine's rules, step by step, are in
``docs/replay.md``; ``tests/reference_replay.py`` is their plain-Python twin.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._io import check_number
from ..errors import ParameterError, TapeError
from ..cluster.roles import UNASSIGNED
from ..report import arrow_table
from .strategy import StrategyConfig

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Fills", "EquitySeries", "ReplaySummary", "ReplayResult", "replay", "replay_arrays",
           "MARK_INTERVAL_US", "MIN_MARKS_ANNUALISED"]

#: Default spacing of the equity series (and of the Sharpe ratio's equity changes): one minute.
MARK_INTERVAL_US = 60_000_000
#: An annualised Sharpe ratio needs at least this many equity changes (else NaN, printed "n/a").
MIN_MARKS_ANNUALISED = 30
_US_PER_YEAR = 365 * 86_400_000_000     # crypto futures trade around the clock
_FILL_CHUNK = 1 << 16


@dataclass(frozen=True, eq=False)
class Fills:
    """Our fills, one row each (arrays of equal length).

    ``side`` is +1 when we bought (a sell taker hit our bid), -1 when we sold; ``price``
    our quote's price; ``qty`` the amount filled; ``mid`` the mid at the fill; ``fee``
    the maker fee paid (negative: rebate received); ``inventory`` and ``cash`` after the
    fill; ``trade_index`` the row of the filling trade in the replayed trades.
    """

    trade_index: np.ndarray
    ts_us: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    mid: np.ndarray
    fee: np.ndarray
    inventory: np.ndarray
    cash: np.ndarray

    def __len__(self) -> int:
        """Number of fills."""
        return int(self.ts_us.shape[0])

    def columns(self) -> dict:
        """Every column by name (for Parquet or a data frame)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_arrow(self) -> pa.Table:
        """The fills as a ``pyarrow.Table``, one column per field with its dtype (the rows of
        ``fills.parquet``); ``.to_pandas()`` or ``polars.from_arrow`` for a data frame."""
        return arrow_table(self.columns())


@dataclass(frozen=True, eq=False)
class EquitySeries:
    """Account marked to mid at every minute boundary (state just before it), then at the end.

    ``equity = cash + inventory * mid = spread_capture + inventory_drift - fees``.
    The first row is the start (all zero) at the first event's time.
    """

    ts_us: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    inventory: np.ndarray
    mid: np.ndarray
    spread_capture: np.ndarray
    inventory_drift: np.ndarray
    fees: np.ndarray

    def __len__(self) -> int:
        """Number of rows."""
        return int(self.ts_us.shape[0])

    def columns(self) -> dict:
        """Every column by name (for Parquet or a data frame)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_arrow(self) -> pa.Table:
        """The series as a ``pyarrow.Table``, one column per field (the rows of ``equity.parquet``)."""
        return arrow_table(self.columns())


@dataclass(frozen=True)
class ReplaySummary:
    """Counts and PnL of one replay.  Money in quote currency (USDT), amounts in base (BTC).

    ``pnl_total`` is the account at the end, ``cash + inventory * mid``; it equals
    ``spread_capture + inventory_drift - fees`` up to float rounding (tested).  ``sharpe_1min`` is
    mean / std of the equity changes between marks (one minute apart by default; ``minutes``
    counts them); ``sharpe_annualised`` multiplies it by sqrt(marks per year), and is NaN
    with fewer than :data:`MIN_MARKS_ANNUALISED` changes.
    """

    mapping: str
    alpha_role: str
    hazard_role: str
    first_ts_us: int
    last_ts_us: int
    events: int
    trades: int
    book_updates: int
    fills: int
    fill_rate: float
    buy_fills: int
    sell_fills: int
    volume: float
    notional: float
    pnl_total: float
    spread_capture: float
    inventory_drift: float
    fees: float
    ending_inventory: float
    largest_inventory: float
    quote_decisions: int
    bids_placed: int
    asks_placed: int
    posts_rejected: int
    inventory_limited: int
    minutes: int
    sharpe_1min: float
    sharpe_annualised: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """What :func:`replay` returns: fills, equity series, summary and the parameters used."""

    fills: Fills
    equity: EquitySeries
    summary: ReplaySummary
    config: StrategyConfig
    tick_size: float

    def to_dict(self) -> dict:
        """Summary and parameters (the arrays stay out: write them with the CLI's ``--out``)."""
        return {"summary": self.summary.to_dict(), "config": self.config.to_dict(),
                "tick_size": self.tick_size}


# -- validation --------------------------------------------------------------------------

def _column(values, name: str, dtype, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise TapeError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise TapeError(f"`{name}` has {arr.shape[0]} rows, expected {n} (one per trade)")
    if dtype is np.float64:
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise TapeError(f"`{name}` must be numeric, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise TapeError(f"`{name}` has {int(bad.sum())} non-finite values (first at row {int(np.argmax(bad))})")
    else:
        if not np.issubdtype(arr.dtype, np.integer):
            raise TapeError(f"`{name}` must be integers, got dtype {arr.dtype}")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise TapeError(f"`{name}` has values outside {dtype.__name__}: {arr.min()}..{arr.max()}")
        arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr


def _check_sorted(ts: np.ndarray, name: str) -> None:
    if _core.count_backwards_steps(ts):
        row = int(np.argmax(ts[1:] < ts[:-1])) + 1
        raise TapeError(f"`{name}` is not sorted by local time: row {row} ({ts[row]}) is earlier "
                        f"than row {row - 1} ({ts[row - 1]})")


def _validate(trade_ts_us, trade_price, trade_amount, trade_side, roles, book_ts_us, book_bid,
              book_ask, tick_size):
    check_number("tick_size", tick_size, 0, lo_open=True)
    ts = _column(trade_ts_us, "trade_ts_us", np.int64)
    n = ts.shape[0]
    price = _column(trade_price, "trade_price", np.float64, n)
    amount = _column(trade_amount, "trade_amount", np.float64, n)
    side = _column(trade_side, "trade_side", np.int8, n)
    role = _column(roles, "roles", np.int8, n)
    bts = _column(book_ts_us, "book_ts_us", np.int64)
    nb = bts.shape[0]
    bid = _column(book_bid, "book_bid", np.float64, nb)
    ask = _column(book_ask, "book_ask", np.float64, nb)
    if n and (price <= 0).any():
        raise TapeError(f"`trade_price` must be > 0, got {price.min()} (row {int(np.argmin(price))})")
    if n and (amount <= 0).any():
        raise TapeError(f"`trade_amount` must be > 0, got {amount.min()} (row {int(np.argmin(amount))})")
    if n and ((side < -1) | (side > 1)).any():
        row = int(np.argmax((side < -1) | (side > 1)))
        raise TapeError(f"`trade_side` must be -1, 0 or +1, got {side[row]} (row {row})")
    if n and (role < UNASSIGNED).any():
        row = int(np.argmax(role < UNASSIGNED))
        raise TapeError(f"`roles` must be role codes >= {UNASSIGNED}, got {role[row]} (row {row})")
    _check_sorted(ts, "trade_ts_us")
    _check_sorted(bts, "book_ts_us")
    return ts, price, amount, side, role, bts, bid, ask


# -- the replay --------------------------------------------------------------------------

def replay(tape, roles, config: StrategyConfig | None = None, *,
           mark_interval_us: int = MARK_INTERVAL_US) -> ReplayResult:
    """Replay the market maker over a :class:`clusterlob.Tape`.

    Parameters
    ----------
    tape : clusterlob.Tape
        Trades and book snapshots, in local-time order; only the touch (level 0) is used.
    roles : array of int, shape (n_trades,)
        Role code per trade (``clusterlob.roles``; ``UNASSIGNED`` = -1 feeds nothing).
    config : StrategyConfig, optional
        Quoting parameters (defaults: :class:`StrategyConfig`).
    mark_interval_us : int
        Spacing of the equity marks (default one minute).

    Returns
    -------
    ReplayResult
    """
    book = tape.book
    bid = book.bid_px[:, 0] if book.bid_px.ndim == 2 else book.bid_px
    ask = book.ask_px[:, 0] if book.ask_px.ndim == 2 else book.ask_px
    return replay_arrays(tape.trades.ts_local_us, tape.trades.price, tape.trades.amount,
                         tape.trades.side, roles, book.ts_local_us, bid, ask,
                         tick_size=tape.instrument.tick_size, config=config,
                         mark_interval_us=mark_interval_us)


def replay_arrays(trade_ts_us, trade_price, trade_amount, trade_side, roles, book_ts_us,
                  book_bid, book_ask, *, tick_size: float,
                  config: StrategyConfig | None = None,
                  mark_interval_us: int = MARK_INTERVAL_US) -> ReplayResult:
    """Replay over plain arrays (what :func:`replay` does after taking them from a tape).

    Parameters
    ----------
    trade_ts_us : int64 array (n_trades,)
        Local receive times, microseconds, non-decreasing.
    trade_price, trade_amount : float arrays (n_trades,)
        Trade price and amount (> 0, finite).
    trade_side : int array (n_trades,)
        +1 buy taker, -1 sell taker, 0 unknown (counted, fills nothing, feeds nothing).
    roles : int array (n_trades,)
        Role code per trade, -1 unassigned.
    book_ts_us : int64 array (n_book,)
        Local times of book updates, non-decreasing.
    book_bid, book_ask : float arrays (n_book,)
        Best bid and best ask at each update (finite).
    tick_size : float
        Price increment (> 0).
    config : StrategyConfig, optional
    mark_interval_us : int
        Spacing of the equity marks (> 0; default one minute).

    Returns
    -------
    ReplayResult
    """
    config = StrategyConfig() if config is None else config
    mark_interval_us = check_mark_interval(mark_interval_us)
    if not isinstance(config, StrategyConfig):
        raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
    ts, price, amount, side, role, bts, bid, ask = _validate(
        trade_ts_us, trade_price, trade_amount, trade_side, roles, book_ts_us, book_bid, book_ask,
        tick_size)
    tick_size = float(tick_size)
    firsts = [a[0] for a in (ts, bts) if a.shape[0]]
    lasts = [a[-1] for a in (ts, bts) if a.shape[0]]
    first_us = int(min(firsts)) if firsts else 0
    last_us = int(max(lasts)) if lasts else 0
    first_mark = (first_us // mark_interval_us + 1) * mark_interval_us
    n_marks = max(0, (last_us - first_mark) // mark_interval_us + 1)

    engine = _new_engine(config, tick_size, first_mark, mark_interval_us)
    mark_ts = np.empty(n_marks, np.int64)
    mark_floats = np.empty((n_marks, len(_core.MARK_FLOAT_COLUMNS)))
    fill_int_parts, fill_float_parts = [], []
    marks_done, finished = 0, False
    while not finished:
        fill_ints = np.empty((_FILL_CHUNK, 2), np.int64)
        fill_floats = np.empty((_FILL_CHUNK, len(_core.FILL_FLOAT_COLUMNS)))
        nf, nm, finished = engine.run(ts, price, amount, side, role, bts, bid, ask,
                                      fill_ints, fill_floats, mark_ts[marks_done:],
                                      mark_floats[marks_done:])
        marks_done += nm
        fill_int_parts.append(fill_ints[:nf])
        fill_float_parts.append(fill_floats[:nf])
        if not finished and nf < _FILL_CHUNK:   # the kernel stops only on a full buffer
            raise RuntimeError("replay kernel stopped early with room left")  # pragma: no cover
    state = engine.snapshot()
    fill_ints = np.concatenate(fill_int_parts)
    fill_floats = np.concatenate(fill_float_parts)
    fills = Fills(fill_ints[:, 0].copy(), fill_ints[:, 1].copy(), fill_floats[:, 0].astype(np.int8),
                  *(fill_floats[:, k].copy() for k in range(1, fill_floats.shape[1])))
    equity = build_equity_series(first_us, mark_ts[:marks_done], mark_floats[:marks_done], state, last_us)
    summary = summarise(config, state, fills, equity, first_us, last_us, mark_interval_us)
    return ReplayResult(fills, equity, summary, config, tick_size)


def check_mark_interval(mark_interval_us) -> int:
    """``mark_interval_us`` as an int > 0, or a one-line ParameterError naming it."""
    if isinstance(mark_interval_us, bool) or not isinstance(mark_interval_us, (int, np.integer)) \
            or mark_interval_us <= 0:
        raise ParameterError(f"`mark_interval_us` must be an integer > 0 (microseconds), got {mark_interval_us!r}")
    return int(mark_interval_us)


def _new_engine(config: StrategyConfig, tick_size: float, first_mark_us: int,
                mark_interval_us: int = MARK_INTERVAL_US):
    """A fresh compiled engine for ``config``; its equity marks start at ``first_mark_us``."""
    return _core._ReplayEngine(
        tick_size, config.skew_ticks, config.theta, config.inventory_mode == "dynamic",
        config.min_half_ticks, config.half_spread_bps, config.hazard_k, config.hazard_threshold,
        config.quote_size, config.max_inventory, config.maker_fee_bps,
        config.requote_interval_us, config.order_latency_us, config.fill_mode == "touch",
        config.alpha_code, config.hazard_code, math.log(2.0) / (config.half_life_s * 1e6),
        config.size_weight, config.signal_scale_trades, first_mark_us, mark_interval_us)


def build_equity_series(first_us: int, mark_ts: np.ndarray, mark_floats: np.ndarray, state: dict, last_us: int) -> EquitySeries:
    end = [state["cash"] + state["inventory"] * (0.0 if math.isnan(state["mid"]) else state["mid"]),
           state["cash"], state["inventory"], state["mid"], state["spread_capture"],
           state["inventory_drift"], state["fees"]]
    start = [0.0, 0.0, 0.0, math.nan, 0.0, 0.0, 0.0]
    floats = np.vstack([np.asarray([start]), mark_floats, np.asarray([end])])
    ts = np.concatenate([[first_us], mark_ts, [last_us]]).astype(np.int64)
    return EquitySeries(ts, *(floats[:, k].copy() for k in range(floats.shape[1])))


def summarise(config, state, fills, equity, first_us, last_us,
              mark_interval_us: int = MARK_INTERVAL_US) -> ReplaySummary:
    # changes between the marks only (the final partial interval is left out)
    minute_equity = equity.equity[:-1]
    changes = np.diff(minute_equity)
    if changes.shape[0] >= 2 and changes.std(ddof=1) > 0:
        sharpe = float(changes.mean() / changes.std(ddof=1))
    else:
        sharpe = math.nan
    mid = state["mid"]
    pnl_total = state["cash"] + state["inventory"] * (0.0 if math.isnan(mid) else mid)
    trades = int(state["trades"])
    return ReplaySummary(
        mapping=config.mapping, alpha_role=config.alpha_role, hazard_role=config.hazard_role,
        first_ts_us=first_us, last_ts_us=last_us,
        events=trades + int(state["book_updates"]), trades=trades,
        book_updates=int(state["book_updates"]), fills=int(state["fills"]),
        fill_rate=(state["fills"] / trades) if trades else math.nan,
        buy_fills=int((fills.side > 0).sum()), sell_fills=int((fills.side < 0).sum()),
        volume=state["volume"], notional=state["notional"], pnl_total=pnl_total,
        spread_capture=state["spread_capture"], inventory_drift=state["inventory_drift"],
        fees=state["fees"], ending_inventory=state["inventory"],
        largest_inventory=state["max_abs_inventory"],
        quote_decisions=int(state["quote_decisions"]), bids_placed=int(state["bids_placed"]),
        asks_placed=int(state["asks_placed"]), posts_rejected=int(state["posts_rejected"]),
        inventory_limited=int(state["inventory_limited"]), minutes=int(changes.shape[0]),
        sharpe_1min=sharpe,
        sharpe_annualised=(sharpe * math.sqrt(_US_PER_YEAR / mark_interval_us)
                           if changes.shape[0] >= MIN_MARKS_ANNUALISED else math.nan))
