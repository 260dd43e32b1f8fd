"""What a replay returns: fills, the equity series, the summary a maker reads, and the
functions that build them from the compiled engine's buffers (equity marks, markouts, the PnL
split, statistics with their sample sizes).  Shared by the batch engine (:mod:`.engine`), the
day-by-day stream (:mod:`.stream`) and the online replay (:mod:`.online_replay`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._typing import ArrayLike
from ..errors import ParameterError
from ..report import arrow_table
from .strategy import StrategyConfig

if TYPE_CHECKING:
    import pyarrow as pa

    from ..tape.types import Instrument

__all__ = ["EquitySeries", "FILL_REASONS", "Fills", "MARKOUT_HORIZONS_S", "MARK_INTERVAL_US",
           "MIN_MARKS_ANNUALISED", "ReplayResult", "ReplaySummary", "build_equity_series", "fills_from_buffers",
           "markout_mids", "markouts", "currency_of", "summarise"]

FILL_REASONS = _core.FILL_REASONS
#: Default spacing of the equity series (and of the Sharpe ratio's equity changes): one minute.
MARK_INTERVAL_US = 60_000_000
#: An annualised Sharpe ratio needs at least this many equity changes (else NaN, printed "n/a").
MIN_MARKS_ANNUALISED = 30
_US_PER_YEAR = 365 * 86_400_000_000     # crypto futures trade around the clock
#: Horizons of the fill markouts, seconds.
MARKOUT_HORIZONS_S = (1, 10, 60)


@dataclass(frozen=True, eq=False)
class Fills:
    """Our fills, one row each (arrays of equal length).

    ``side`` is +1 when we bought (a sell taker hit our bid), -1 when we sold; ``price``
    our quote's price; ``qty`` the amount filled; ``mid`` the mid at the fill; ``fee``
    the maker fee paid (negative: rebate received); ``inventory`` and ``cash`` after the
    fill; ``trade_index`` the row of the filling trade in the replayed trades (-1: a
    book-through fill); ``reason`` the code of the fill's reason, an index of
    :data:`FILL_REASONS` (queue, touch, trade_through, book_through); ``queue_ahead`` the
    displayed size ahead of the order just before the fill (queue model; NaN otherwise or
    when the order's level was never seen).
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
    reason: np.ndarray | None = None
    queue_ahead: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of fills."""
        return int(self.ts_us.shape[0])

    def columns(self) -> dict:
        """Every column by name (for Parquet or a data frame)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_arrow(self, currency: str | None = None) -> pa.Table:
        """The fills as a ``pyarrow.Table``, one column per field with its dtype (the rows of
        ``fills.parquet``); ``.to_pandas()`` or ``polars.from_arrow`` for a data frame.  Fills
        built without ``reason`` / ``queue_ahead`` get -1 / NaN there.  ``currency`` (the
        summary's: the currency of ``fee`` and ``cash``) goes into the schema metadata."""
        n = len(self)
        cols = self.columns()
        if cols["reason"] is None:
            cols["reason"] = np.full(n, -1, np.int8)
        if cols["queue_ahead"] is None:
            cols["queue_ahead"] = np.full(n, np.nan)
        return arrow_table(cols, None if currency is None else {"currency": currency})


@dataclass(frozen=True, eq=False)
class EquitySeries:
    """Account marked to mid at every minute boundary (state just before it), then at the end.

    ``equity = cash + inventory * mid = spread_capture + inventory_drift - fees - funding``
    (linear; an inverse contract's accounts are in the coin, with ``-contract_size / mid`` in
    place of the mid, see ``docs/replay.md``).  The first row is the start (all zero) at the
    first event's time.
    """

    ts_us: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    inventory: np.ndarray
    mid: np.ndarray
    spread_capture: np.ndarray
    inventory_drift: np.ndarray
    fees: np.ndarray
    funding: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of rows."""
        return int(self.ts_us.shape[0])

    def columns(self) -> dict:
        """Every column by name (for Parquet or a data frame)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_arrow(self, currency: str | None = None) -> pa.Table:
        """The series as a ``pyarrow.Table``, one column per field (the rows of ``equity.parquet``);
        a series built without ``funding`` gets 0.0 there.  ``currency`` (the summary's: the
        currency of every money column) goes into the schema metadata."""
        cols = self.columns()
        if cols["funding"] is None:
            cols["funding"] = np.zeros(len(self))
        return arrow_table(cols, None if currency is None else {"currency": currency})


@dataclass(frozen=True)
class ReplaySummary:
    """Counts and PnL of one replay.  Money (notional, PnL and its parts) in ``currency``, the
    settlement currency: the quote currency of a linear instrument (USDT), the coin of an
    inverse one (BTC for BTCUSD_PERP); amounts (volume, inventory) in the instrument's amount
    unit (BTC for BTCUSDT, contracts for an inverse contract).

    ``pnl_total`` is the account at the end, ``cash + inventory * mid`` (inverse: ``cash -
    inventory * contract_size / mid``); it equals
    ``spread_capture + inventory_drift - fees - funding`` up to float rounding (tested).
    ``sharpe_1min`` is mean / std of the equity changes between marks (one minute apart by
    default; ``minutes`` counts them); ``sharpe_annualised`` multiplies it by sqrt(marks per
    year), and is NaN with fewer than :data:`MIN_MARKS_ANNUALISED` changes.

    What a maker reads (fields after ``sharpe_annualised``): fills by reason; the mean queue
    ahead at a queue fill; markouts ``markout_{1,10,60}s_ticks`` = quantity-weighted mean of
    ``side * (mid(t + h) - mid(t)) / tick``, the mid's move after a fill signed by our side, over
    the fills with a mid h later (``markout_fills`` of them at 60 s; negative = adverse
    selection: the market moved against the position the fill gave us); the share of time
    each side had a live order and one at the touch; decision shares (each side quoted, held
    by the inventory limit, withheld by post-only, and the share widened by the hazard); orders
    rejected by post-only on arrival; the mean quoted half-spread (distance of a quote from the
    mid) in ticks.
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
    fill_model: str = ""
    queue_rule: str = ""
    funding: float = 0.0
    fills_queue: int = 0
    fills_touch: int = 0
    fills_trade_through: int = 0
    fills_book_through: int = 0
    mean_queue_ahead: float = math.nan
    markout_1s_ticks: float = math.nan
    markout_10s_ticks: float = math.nan
    markout_60s_ticks: float = math.nan
    markout_fills: int = 0
    bid_time_quoted: float = math.nan
    ask_time_quoted: float = math.nan
    bid_time_at_touch: float = math.nan
    ask_time_at_touch: float = math.nan
    bid_quoted_share: float = math.nan
    ask_quoted_share: float = math.nan
    bid_limited_share: float = math.nan
    ask_limited_share: float = math.nan
    bid_withheld_share: float = math.nan
    ask_withheld_share: float = math.nan
    widened_share: float = math.nan
    clipped_quotes: int = 0
    rejected_on_arrival: int = 0
    cancels: int = 0
    cancels_after_fill: int = 0
    mean_half_spread_ticks: float = math.nan
    currency: str = "quote"

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


def fills_from_buffers(fill_ints: ArrayLike, fill_floats: ArrayLike) -> Fills:
    """Fills from the kernel's (n, 2) int and (n, 9) float rows (FILL_*_COLUMNS)."""
    floats = np.asarray(fill_floats, np.float64).reshape(-1, len(_core.FILL_FLOAT_COLUMNS))
    ints = np.asarray(fill_ints, np.int64).reshape(-1, 2)
    f = [floats[:, k].copy() for k in range(floats.shape[1])]
    return Fills(ints[:, 0].copy(), ints[:, 1].copy(), floats[:, 0].astype(np.int8), f[1], f[2], f[3], f[4],
                 f[5], f[6], floats[:, 7].astype(np.int8), f[8])


def build_equity_series(first_us: int, mark_ts: np.ndarray, mark_floats: np.ndarray, state: dict, last_us: int) -> EquitySeries:
    end = [state["equity"], state["cash"], state["inventory"], state["mid"], state["spread_capture"],
           state["inventory_drift"], state["fees"], state.get("funding", 0.0)]
    start = [0.0, 0.0, 0.0, math.nan, 0.0, 0.0, 0.0, 0.0]
    mark_floats = np.asarray(mark_floats, np.float64).reshape(-1, len(start))
    floats = np.vstack([np.asarray([start]), mark_floats, np.asarray([end])])
    ts = np.concatenate([[first_us], mark_ts, [last_us]]).astype(np.int64)
    return EquitySeries(ts, *(floats[:, k].copy() for k in range(floats.shape[1])))


def markout_mids(fill_ts_us: np.ndarray, book_ts_us: np.ndarray, mid: np.ndarray,
                 into: np.ndarray | None = None) -> np.ndarray:
    """The mid at each fill's time + h for every h of MARKOUT_HORIZONS_S: a
    (len(MARKOUT_HORIZONS_S), n_fills) array, the mid of the last book update at or before
    that time (NaN: none).  ``into`` (the lookups over earlier days' books) is updated in place where this book has an update at or before the time: a stream
    calls it once per day with that day's book."""
    fill_ts_us = np.asarray(fill_ts_us, np.int64)
    out = np.full((len(MARKOUT_HORIZONS_S), fill_ts_us.shape[0]), np.nan) if into is None else into
    if book_ts_us.shape[0] == 0:
        return out
    for k, h in enumerate(MARKOUT_HORIZONS_S):
        at = fill_ts_us + int(h * 1_000_000)
        here = at >= book_ts_us[0]
        out[k, here] = mid[np.searchsorted(book_ts_us, at[here], side="right") - 1]
    return out


def markouts(fills: Fills, mids: tuple[np.ndarray, np.ndarray] | None, tick_size: float, last_us: int, *,
             at_mids: np.ndarray | None = None) -> tuple:
    """Quantity-weighted mean of ``side * (mid(t + h) - mid(t)) / tick`` (the mid's move after
    the fill, signed by our side: below zero, adverse selection) per horizon of
    MARKOUT_HORIZONS_S, over the fills with t + h <= last_us; and the count at the longest.
    ``mids`` = (book times, mids), or ``at_mids`` = :func:`markout_mids` already looked up."""
    out = []
    n_last = 0
    if at_mids is None:
        if mids is None:
            raise ParameterError("markouts need `mids` (book times, mids) or `at_mids`")
        book_ts, mid = mids
        at_mids = markout_mids(fills.ts_us, book_ts, mid)
    if len(fills) == 0:
        return tuple([math.nan] * len(MARKOUT_HORIZONS_S)), 0
    for k, h in enumerate(MARKOUT_HORIZONS_S):
        at = fills.ts_us + int(h * 1_000_000)
        ok = at <= last_us
        later = at_mids[k][ok]
        seen = ~np.isnan(later)
        ok_idx = np.flatnonzero(ok)[seen]
        later = later[seen]
        n_last = int(ok_idx.shape[0])
        if n_last == 0:
            out.append(math.nan)
            continue
        q = fills.qty[ok_idx]
        m = fills.side[ok_idx] * (later - fills.mid[ok_idx]) / tick_size
        out.append(float((m * q).sum() / q.sum()))
    return tuple(out), n_last


def summarise(config: StrategyConfig, state: dict, fills: Fills, equity: EquitySeries, first_us: int,
              last_us: int, mark_interval_us: int = MARK_INTERVAL_US, *,
              mids: tuple[np.ndarray, np.ndarray] | None = None, tick_size: float | None = None,
              markout_mids: np.ndarray | None = None, currency: str = "quote") -> ReplaySummary:
    """The summary of a replay from the engine's final state, its fills and equity series.
    ``mids`` (book times, mids) give the markouts (with ``tick_size``); a stream that no longer
    holds every mid gives ``markout_mids`` instead (:func:`markout_mids`).  ``currency`` names
    the settlement currency of the money fields (:func:`currency_of`)."""
    # changes between the marks only (the final partial interval is left out)
    minute_equity = equity.equity[:-1]
    changes = np.diff(minute_equity)
    if changes.shape[0] >= 2 and changes.std(ddof=1) > 0:
        sharpe = float(changes.mean() / changes.std(ddof=1))
    else:
        sharpe = math.nan
    pnl_total = state["equity"]         # the engine's mark (cash + inventory at the mid's value)
    trades = int(state["trades"])
    by_reason = state.get("fills_by_reason", {})
    queue_rows = fills.reason == 0 if fills.reason is not None else np.zeros(len(fills), bool)
    qa = fills.queue_ahead[queue_rows] if fills.queue_ahead is not None else np.zeros(0)
    qa = qa[np.isfinite(qa)]
    if (mids is not None or markout_mids is not None) and tick_size:
        mk, mk_n = markouts(fills, mids, tick_size, last_us, at_mids=markout_mids)
    else:
        mk, mk_n = (math.nan,) * len(MARKOUT_HORIZONS_S), 0
    span = max(last_us - first_us, 0)
    decisions = int(state["quote_decisions"])

    def share(x, total):
        return float(x) / total if total else math.nan

    tq = state.get("time_quoted_us", (0, 0))
    tt = state.get("time_at_touch_us", (0, 0))
    dq = state.get("decisions_quoted", (0, 0))
    dl = state.get("decisions_limited", (0, 0))
    dw = state.get("decisions_withheld", (0, 0))
    n_half = state.get("half_spread_quotes", 0)
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
        quote_decisions=decisions, bids_placed=int(state["bids_placed"]),
        asks_placed=int(state["asks_placed"]), posts_rejected=int(state["posts_rejected"]),
        inventory_limited=int(state["inventory_limited"]), minutes=int(changes.shape[0]),
        sharpe_1min=sharpe,
        sharpe_annualised=(sharpe * math.sqrt(_US_PER_YEAR / mark_interval_us)
                           if changes.shape[0] >= MIN_MARKS_ANNUALISED else math.nan),
        fill_model=config.fill_model, queue_rule=config.queue_rule if config.fill_model == "queue" else "",
        funding=state.get("funding", 0.0),
        fills_queue=int(by_reason.get("queue", 0)), fills_touch=int(by_reason.get("touch", 0)),
        fills_trade_through=int(by_reason.get("trade_through", 0)),
        fills_book_through=int(by_reason.get("book_through", 0)),
        mean_queue_ahead=float(qa.mean()) if qa.shape[0] else math.nan,
        markout_1s_ticks=mk[0], markout_10s_ticks=mk[1], markout_60s_ticks=mk[2], markout_fills=mk_n,
        bid_time_quoted=share(tq[0], span), ask_time_quoted=share(tq[1], span),
        bid_time_at_touch=share(tt[0], span), ask_time_at_touch=share(tt[1], span),
        bid_quoted_share=share(dq[0], decisions), ask_quoted_share=share(dq[1], decisions),
        bid_limited_share=share(dl[0], decisions), ask_limited_share=share(dl[1], decisions),
        bid_withheld_share=share(dw[0], decisions), ask_withheld_share=share(dw[1], decisions),
        widened_share=share(state.get("decisions_widened", 0), decisions),
        clipped_quotes=int(state.get("decisions_clipped", 0)),
        rejected_on_arrival=int(sum(state.get("rejected_on_arrival", (0, 0)))),
        cancels=int(state.get("cancels", 0)), cancels_after_fill=int(state.get("cancels_late", 0)),
        mean_half_spread_ticks=(state.get("half_spread_ticks_sum", 0.0) / n_half) if n_half else math.nan,
        currency=currency)


def currency_of(instrument: Instrument | None) -> str:
    """The currency a replay's money is in: the instrument's settlement currency, ``"quote"``
    for a replay of plain arrays without an instrument."""
    return "quote" if instrument is None else instrument.settlement_currency
