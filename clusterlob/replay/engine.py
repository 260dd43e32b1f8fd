"""Market-making tape replay: the compiled event-driven engine and ``python -m clusterlob.replay``.

:func:`replay` runs the quoting rules of :mod:`clusterlob.strategy` over a tape's trades
and book levels, event by event in local-time order, through a simulated exchange: order
entry, cancel and response latencies, post-only checked on arrival, queue position (or the
cross / touch fill rules), book-through fills, a hard inventory limit, maker fees and
funding; it returns the fills (with their reason and queue position), a one-minute equity
series and a summary whose PnL is split into spread capture, inventory drift, fees and
funding.  The engine's rules, step by step, are in
``docs/replay.md``; ``tests/twins/replay.py`` is their plain-Python twin.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from .._io import check_number
from ..errors import ParameterError, TapeError
from ..cluster.roles import UNASSIGNED
from .._typing import ArrayLike
from .latency import OrderLatency
from .results import (FILL_REASONS, MARK_INTERVAL_US, MARKOUT_HORIZONS_S, MIN_MARKS_ANNUALISED, EquitySeries,
                      Fills, ReplayResult, ReplaySummary, build_equity_series, fills_from_buffers,
                      currency_of, summarise)
from .strategy import StrategyConfig
from ..tape.types import Instrument

if TYPE_CHECKING:

    from ..tape.types import Tape


__all__ = ["Fills", "EquitySeries", "ReplaySummary", "ReplayResult", "replay", "replay_arrays", "FILL_REASONS",
           "MARK_INTERVAL_US", "MIN_MARKS_ANNUALISED", "MARKOUT_HORIZONS_S", "kernel_params",
           "funding_series", "check_funding"]

FILL_CHUNK_ROWS = 1 << 16


# -- validation --------------------------------------------------------------------------

def _column(values, name: str, dtype, n: int | None = None, per: str = "trade") -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise TapeError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        arr = arr.astype(dtype)             # an empty list is float64 to numpy
    if n is not None and arr.shape[0] != n:
        raise TapeError(f"`{name}` has {arr.shape[0]} rows, expected {n} (one per {per})")
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


def _levels(values, name: str, nb: int, required_finite: bool) -> np.ndarray:
    """A book column as (n_book, L) float64: 1-D (the touch) or 2-D (levels, best first)."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != nb or arr.shape[1] < 1:
        raise TapeError(f"`{name}` must have shape ({nb},) or ({nb}, levels), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TapeError(f"`{name}` must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = ~np.isfinite(arr[:, 0]) if required_finite else np.zeros(nb, bool)
    if bad.any():
        raise TapeError(f"`{name}` has {int(bad.sum())} non-finite values at the touch (first at row "
                        f"{int(np.argmax(bad))})")
    return arr


def validate_inputs(trade_ts_us: ArrayLike, trade_price: ArrayLike, trade_amount: ArrayLike, trade_side: ArrayLike,
                    roles: ArrayLike, book_ts_us: ArrayLike, book_bid: ArrayLike, book_ask: ArrayLike,
                    tick_size: float, book_bid_sz: ArrayLike | None = None, book_ask_sz: ArrayLike | None = None,
                    fill_model: str = "cross") -> tuple:
    """The replay's inputs as checked, contiguous arrays of the kernel's dtypes (one-line errors)."""
    check_number("tick_size", tick_size, 0, lo_open=True)
    ts = _column(trade_ts_us, "trade_ts_us", np.int64)
    n = ts.shape[0]
    price = _column(trade_price, "trade_price", np.float64, n)
    amount = _column(trade_amount, "trade_amount", np.float64, n)
    side = _column(trade_side, "trade_side", np.int8, n)
    role = _column(roles, "roles", np.int8, n)
    bts = _column(book_ts_us, "book_ts_us", np.int64)
    nb = bts.shape[0]
    bid = _levels(book_bid, "book_bid", nb, True)
    ask = _levels(book_ask, "book_ask", nb, True)
    if (book_bid_sz is None) != (book_ask_sz is None):
        raise ParameterError("give both `book_bid_sz` and `book_ask_sz`, or neither")
    if book_bid_sz is None:
        if fill_model == "queue":
            raise TapeError("fill_model 'queue' needs the book's displayed sizes (book_bid_sz / "
                            "book_ask_sz, a tape's book levels); this input has prices only: give "
                            "them, or use fill_model 'cross' or 'touch'")
        bid_sz = np.full((nb, 1), np.nan)
        ask_sz = np.full((nb, 1), np.nan)
    else:
        bid_sz = _levels(book_bid_sz, "book_bid_sz", nb, fill_model == "queue")
        ask_sz = _levels(book_ask_sz, "book_ask_sz", nb, fill_model == "queue")
        if bid_sz.shape != bid.shape or ask_sz.shape != ask.shape or bid.shape != ask.shape:
            raise TapeError(f"book prices and sizes must have the same shape, got book_bid {bid.shape}, "
                            f"book_bid_sz {bid_sz.shape}, book_ask {ask.shape}, book_ask_sz {ask_sz.shape}")
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
    return ts, price, amount, side, role, bts, bid, bid_sz, ask, ask_sz


def funding_series(config: StrategyConfig, first_us: int, last_us: int,
                   funding: tuple[ArrayLike, ArrayLike] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Funding payments as (ts_us int64, rate float64) arrays within (first_us, last_us].

    ``funding`` None: ``config.funding_rate`` at every ``funding_interval_h`` boundary from
    00:00 UTC (none when the rate is 0).  Otherwise a pair of arrays (funding times in us,
    non-decreasing; rate per payment), e.g. a tape's funding table.
    """
    if funding is None:
        if config.funding_rate == 0.0:
            return np.zeros(0, np.int64), np.zeros(0)
        step = config.funding_interval_h * 3_600_000_000
        ts = np.arange((first_us // step + 1) * step, last_us + 1, step, dtype=np.int64)
        return ts, np.full(ts.shape[0], config.funding_rate)
    f_ts, f_rate = check_funding(funding)
    keep = (f_ts > first_us) & (f_ts <= last_us)
    return np.ascontiguousarray(f_ts[keep]), np.ascontiguousarray(f_rate[keep])


def check_funding(funding: tuple[ArrayLike, ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """A funding rate series as checked (ts_us int64, rate float64) arrays: times
    non-decreasing, rates finite, one rate per time (one-line errors)."""
    try:
        f_ts, f_rate = funding
    except (TypeError, ValueError):
        raise ParameterError("`funding` must be None or a pair (times in us, rates)") from None
    f_ts = _column(f_ts, "funding times", np.int64)
    f_rate = _column(f_rate, "funding rates", np.float64, f_ts.shape[0], per="funding time")
    _check_sorted(f_ts, "funding times")
    return f_ts, f_rate


# -- the replay --------------------------------------------------------------------------

def replay(tape: Tape, roles: ArrayLike, config: StrategyConfig | None = None, *,
           funding: tuple[ArrayLike, ArrayLike] | None = None,
           order_latency: OrderLatency | None = None,
           mark_interval_us: int = MARK_INTERVAL_US) -> ReplayResult:
    """Replay the market maker over a :class:`clusterlob.Tape`.

    Parameters
    ----------
    tape : clusterlob.Tape
        Trades and book snapshots, in local-time order; the book's levels (prices and sizes)
        give the queue model the displayed size at our price.
    roles : array of int, shape (n_trades,)
        Role code per trade (``clusterlob.roles``; ``UNASSIGNED`` = -1 feeds nothing).
    config : StrategyConfig, optional
        Quoting parameters (defaults: :class:`StrategyConfig`).
    funding : (ts_us array, rate array), optional
        A funding rate series (e.g. the tape's funding table); default the config's constant
        ``funding_rate``.
    order_latency : OrderLatency, optional
        Order latencies from data (:func:`clusterlob.replay.latency.load_order_latency`)
        instead of the config's constants.
    mark_interval_us : int
        Spacing of the equity marks (default one minute).

    Returns
    -------
    ReplayResult
        Money in the instrument's settlement currency (``summary.currency``): the quote
        currency of a linear instrument, the coin of an inverse one (amounts stay contracts).
    """
    book = tape.book
    return replay_arrays(tape.trades.ts_local_us, tape.trades.price, tape.trades.amount,
                         tape.trades.side, roles, book.ts_local_us, book.bid_px, book.ask_px,
                         tick_size=tape.instrument.tick_size, instrument=tape.instrument, config=config,
                         book_bid_sz=book.bid_sz, book_ask_sz=book.ask_sz, funding=funding,
                         order_latency=order_latency, trade_exch_us=tape.trades.ts_exch_us,
                         book_exch_us=book.ts_exch_us, mark_interval_us=mark_interval_us)


def replay_arrays(trade_ts_us: ArrayLike, trade_price: ArrayLike, trade_amount: ArrayLike,
                  trade_side: ArrayLike, roles: ArrayLike, book_ts_us: ArrayLike,
                  book_bid: ArrayLike, book_ask: ArrayLike, *, tick_size: float,
                  config: StrategyConfig | None = None, book_bid_sz: ArrayLike | None = None,
                  book_ask_sz: ArrayLike | None = None, funding: tuple[ArrayLike, ArrayLike] | None = None,
                  order_latency: OrderLatency | None = None, trade_exch_us: ArrayLike | None = None,
                  book_exch_us: ArrayLike | None = None, mark_interval_us: int = MARK_INTERVAL_US,
                  instrument: Instrument | None = None) -> ReplayResult:
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
    book_bid, book_ask : float arrays (n_book,) or (n_book, levels)
        Best bid and best ask at each update (finite), or every level, best first (deeper
        levels NaN when absent).
    tick_size : float
        Price increment (> 0).
    config : StrategyConfig, optional
    book_bid_sz, book_ask_sz : float arrays shaped like book_bid / book_ask, optional
        Displayed sizes; required by the ``queue`` fill model.
    funding : (ts_us array, rate array), optional
        See :func:`funding_series`.
    order_latency : OrderLatency, optional
        Order-entry (and cancel) and response latencies interpolated from data at each
        decision (must cover the replayed period); default the config's constants.
    trade_exch_us, book_exch_us : int64 arrays, optional
        The events' exchange times; used (and required) with ``feed_latency = "data"``.
    mark_interval_us : int
        Spacing of the equity marks (> 0; default one minute).
    instrument : Instrument, optional
        The contract the amounts are in: its ``contract_size`` and ``inverse`` set how the
        accounts value a fill and a position, and the settlement currency (the coin of an
        inverse contract); its ``tick_size`` must equal ``tick_size``.  None: a plain linear
        instrument, money in its (unnamed) quote currency.

    Returns
    -------
    ReplayResult
    """
    config = StrategyConfig() if config is None else config
    mark_interval_us = check_mark_interval(mark_interval_us)
    check_instrument(instrument, tick_size)
    if not isinstance(config, StrategyConfig):
        raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
    ts, price, amount, side, role, bts, bid, bid_sz, ask, ask_sz = validate_inputs(
        trade_ts_us, trade_price, trade_amount, trade_side, roles, book_ts_us, book_bid, book_ask,
        tick_size, book_bid_sz, book_ask_sz, config.fill_model)
    tick_size = float(tick_size)
    firsts = [a[0] for a in (ts, bts) if a.shape[0]]
    lasts = [a[-1] for a in (ts, bts) if a.shape[0]]
    first_us = int(min(firsts)) if firsts else 0
    last_us = int(max(lasts)) if lasts else 0
    first_mark = (first_us // mark_interval_us + 1) * mark_interval_us
    n_marks = max(0, (last_us - first_mark) // mark_interval_us + 1)
    f_ts, f_rate = funding_series(config, first_us, last_us, funding)
    lat = latency_arrays(order_latency, first_us, last_us)
    exch = exchange_times(config, ts, bts, trade_exch_us, book_exch_us)
    engine = new_engine(config, tick_size, first_mark, mark_interval_us, instrument)
    mark_ts = np.empty(n_marks, np.int64)
    mark_floats = np.empty((n_marks, len(_core.MARK_FLOAT_COLUMNS)))
    fill_int_parts, fill_float_parts = [], []
    marks_done, finished = 0, False
    while not finished:
        fill_ints = np.empty((FILL_CHUNK_ROWS, 2), np.int64)
        fill_floats = np.empty((FILL_CHUNK_ROWS, len(_core.FILL_FLOAT_COLUMNS)))
        nf, nm, finished = engine.run(ts, price, amount, side, role, bts, bid, bid_sz, ask, ask_sz,
                                      f_ts, f_rate, *lat, *exch, fill_ints, fill_floats, mark_ts[marks_done:],
                                      mark_floats[marks_done:])
        marks_done += nm
        fill_int_parts.append(fill_ints[:nf])
        fill_float_parts.append(fill_floats[:nf])
        if not finished and nf < FILL_CHUNK_ROWS - 4:   # the kernel stops only on a full buffer
            raise RuntimeError("replay kernel stopped early with room left")  # pragma: no cover
    engine.finish()
    state = engine.snapshot()
    fills = fills_from_buffers(np.concatenate(fill_int_parts), np.concatenate(fill_float_parts))
    equity = build_equity_series(first_us, mark_ts[:marks_done], mark_floats[:marks_done], state, last_us)
    mids = (bts, 0.5 * (bid[:, 0] + ask[:, 0]))
    summary = summarise(config, state, fills, equity, first_us, last_us, mark_interval_us,
                        mids=mids, tick_size=tick_size, currency=currency_of(instrument))
    return ReplayResult(fills, equity, summary, config, tick_size)


def check_instrument(instrument: Instrument | None, tick_size: Any) -> None:
    """One-line ParameterError unless ``instrument`` is None or an Instrument whose tick is
    ``tick_size`` (a replay has one quote grid)."""
    if instrument is None:
        return
    if not isinstance(instrument, Instrument):
        raise ParameterError(f"`instrument` must be a clusterlob Instrument or None, got {type(instrument).__name__}")
    if float(instrument.tick_size) != float(tick_size):
        raise ParameterError(f"`tick_size` must be the instrument's tick ({instrument.tick_size:g} for "
                             f"{instrument.symbol}), got {tick_size!r}")


def check_mark_interval(mark_interval_us: Any) -> int:
    """``mark_interval_us`` as an int > 0, or a one-line ParameterError naming it."""
    if isinstance(mark_interval_us, bool) or not isinstance(mark_interval_us, (int, np.integer)) \
            or mark_interval_us <= 0:
        raise ParameterError(f"`mark_interval_us` must be an integer > 0 (microseconds), got {mark_interval_us!r}")
    return int(mark_interval_us)


def latency_arrays(order_latency: OrderLatency | None, first_us: int | None = None,
                   last_us: int | None = None) -> tuple:
    """The kernels' latency table (request times, entry, response; empty: the config's
    constants) from an :class:`OrderLatency`, checked to cover ``[first_us, last_us]`` when
    given (the online engine checks each event instead)."""
    if order_latency is None:
        return (np.zeros(0, np.int64),) * 3
    if not isinstance(order_latency, OrderLatency):
        raise ParameterError(f"`order_latency` must be an OrderLatency (load_order_latency), got "
                             f"{type(order_latency).__name__}")
    if first_us is not None and last_us is not None:
        order_latency.check_covers(first_us, last_us)
    return order_latency.req_ts_us, order_latency.entry_us, order_latency.response_us


def check_data_latencies(config: StrategyConfig, exchange_offset_us: int | None) -> tuple[bool, int]:
    """(feed latency from data, the exchange-time offset) of the online engine and the simulated
    gateway: with ``feed_latency = "data"`` the offset is required (an event arrives alone, so the
    largest ``exchange - local`` gap of the data cannot be taken from it: :func:`exchange_offset`)."""
    if config.feed_latency != "data":
        return False, 0
    if exchange_offset_us is None:
        raise ParameterError("feed_latency 'data' online needs `exchange_offset_us` (the largest exchange - "
                             "local gap of the events: clusterlob.replay.engine.exchange_offset of the data)")
    if isinstance(exchange_offset_us, bool) or not isinstance(exchange_offset_us, (int, np.integer)):
        raise ParameterError(f"`exchange_offset_us` must be an integer (microseconds), got {exchange_offset_us!r}")
    return True, int(exchange_offset_us)


def exchange_times(config: StrategyConfig, trade_ts: np.ndarray, book_ts: np.ndarray,
                   trade_exch_us: ArrayLike | None, book_exch_us: ArrayLike | None,
                   offset_us: int | None = None) -> tuple:
    """The events' exchange times on the local clock, for ``feed_latency = "data"`` (else two
    empty arrays): exchange time minus the largest ``exchange - local`` gap, so that every
    feed latency (local - exchange) is >= 0 (a recorder's clock may run behind the exchange's).
    ``offset_us``: that gap, given (a stream of days uses the whole replay's:
    :func:`exchange_offset`); default these events' own."""
    if config.feed_latency != "data":
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if trade_exch_us is None or book_exch_us is None:
        raise ParameterError("feed_latency 'data' needs the events' exchange times (trade_exch_us and "
                             "book_exch_us; a tape has them)")
    tx = _column(trade_exch_us, "trade_exch_us", np.int64, trade_ts.shape[0])
    bx = _column(book_exch_us, "book_exch_us", np.int64)
    if bx.shape[0] != book_ts.shape[0]:
        raise TapeError(f"`book_exch_us` has {bx.shape[0]} rows, expected {book_ts.shape[0]} (one per book update)")
    offset = exchange_offset(trade_ts, book_ts, tx, bx) if offset_us is None else int(offset_us)
    return np.ascontiguousarray(tx - offset), np.ascontiguousarray(bx - offset)


def exchange_offset(trade_ts: ArrayLike, book_ts: ArrayLike, trade_exch_us: ArrayLike,
                    book_exch_us: ArrayLike) -> int:
    """The largest ``exchange - local`` time gap of the events (0 when none is positive): what
    :func:`exchange_times` subtracts from the exchange times."""
    gaps = [int((np.asarray(x, np.int64) - np.asarray(t, np.int64)).max())
            for t, x in ((trade_ts, trade_exch_us), (book_ts, book_exch_us)) if np.size(t)]
    return max(0, max(gaps)) if gaps else 0


def kernel_params(config: StrategyConfig, tick_size: float,
                  mark_interval_us: int = MARK_INTERVAL_US, instrument: Instrument | None = None) -> dict:
    """The compiled engines' parameters (``_core.KERNEL_PARAMS``) from a config and the
    instrument's contract (None: plain linear): the one place."""
    return {
        "tick": float(tick_size), "skew_ticks": config.skew_ticks, "theta": config.theta,
        "dynamic": config.inventory_mode == "dynamic", "min_half_ticks": config.min_half_ticks,
        "half_spread_bps": config.half_spread_bps, "hazard_k": config.hazard_k,
        "hazard_threshold": config.hazard_threshold, "quote_size": config.quote_size,
        "max_inventory": config.max_inventory, "maker_fee_bps": config.maker_fee_bps,
        "requote_us": config.requote_interval_us, "entry_latency_us": config.order_latency_us,
        "cancel_latency_us": config.cancel_latency_us,
        "response_latency_us": config.response_latency_us, "fill_model": config.fill_model,
        "queue_rule": config.queue_rule, "queue_power": config.queue_power,
        "quote_updates": config.quote_updates, "fill_size": config.fill_size,
        "alpha_role": config.alpha_code, "hazard_role": config.hazard_code,
        "decay_per_us": math.log(2.0) / (config.half_life_s * 1e6),
        "size_weight": config.size_weight, "signal_scale_trades": config.signal_scale_trades,
        "signal_norm": config.signal_norm, "mark_interval_us": int(mark_interval_us),
        "contract_size": 1.0 if instrument is None else instrument.flow_unit,
        "inverse": False if instrument is None else bool(instrument.inverse),
    }


def new_engine(config: StrategyConfig, tick_size: float, first_mark_us: int,
               mark_interval_us: int = MARK_INTERVAL_US,
               instrument: Instrument | None = None) -> Any:       # a _core._ReplayEngine
    """A fresh compiled engine for ``config`` (and the ``instrument``'s contract); its equity
    marks start at ``first_mark_us`` and follow every ``mark_interval_us``."""
    return _core._ReplayEngine(kernel_params(config, tick_size, mark_interval_us, instrument), first_mark_us)


