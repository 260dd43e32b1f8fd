"""The batch replay fed one day at a time: :class:`ReplayStream`.

:func:`clusterlob.replay.replay_arrays` replays arrays held whole in memory.  A week of a busy
instrument does not fit that way, so the main job (:func:`clusterlob.replay.run_pipeline`)
feeds the same compiled engine one day after another: :meth:`ReplayStream.feed` runs the
engine over one day's trades and book levels and keeps its state (orders in flight, queue
positions, inventory, the signal accumulator, the requote, mark and funding clocks) for the
next day (the kernel's ``next_arrays``: the cursors restart on the new arrays and the last
book row of the day before is kept for an order that reaches the exchange before the new
day's first book update); :meth:`ReplayStream.finish` returns the
:class:`~clusterlob.replay.results.ReplayResult` that ``replay_arrays`` gives on the days
joined, bit for bit (tested).  Memory: one day's input plus the fills and marks (and, per
fill, the three markout mids).

Days are fed in time order (a tape's day files partition its events by the UTC day of the
local time, so every event of a day comes before the next day's first event).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from .._typing import ArrayLike
from ..errors import ParameterError, TapeError
from .engine import (FILL_CHUNK_ROWS, new_engine, validate_inputs, check_instrument, check_mark_interval,
                     exchange_times, funding_series, latency_arrays)
from .results import (MARK_INTERVAL_US, MARKOUT_HORIZONS_S, ReplayResult, build_equity_series, fills_from_buffers,
                      markout_mids, currency_of, summarise)
from .latency import OrderLatency
from .strategy import StrategyConfig
from ..tape.types import Instrument

__all__ = ["ReplayStream"]

_MARK_CHUNK = 1 << 12


class ReplayStream:
    """One batch replay over days fed in time order.

    Parameters
    ----------
    config : StrategyConfig
    tick_size : float
        Price increment (> 0).
    mark_interval_us : int
        Spacing of the equity marks (default one minute).
    funding : (ts_us array, rate array), optional
        A funding rate series for the whole stream (default the config's constant
        ``funding_rate``), as for :func:`~clusterlob.replay.replay_arrays`.
    order_latency : OrderLatency, optional
        Order latencies from data, covering every day fed.
    exchange_offset_us : int, optional
        With ``feed_latency = "data"`` (required then): the largest ``exchange - local`` gap
        over every day to be fed (:func:`~clusterlob.replay.engine.exchange_offset`), which a
        one-pass replay takes from the whole tape.
    instrument : Instrument, optional
        The contract (inverse: money in the coin), as for
        :func:`~clusterlob.replay.replay_arrays`; its tick must be ``tick_size``.

    Examples
    --------
    >>> stream = ReplayStream(StrategyConfig(), tick_size=0.1)        # doctest: +SKIP
    >>> for day in days:                                             # doctest: +SKIP
    ...     stream.feed(ts, price, amount, side, roles, book_ts, bid, ask,
    ...                 book_bid_sz=bid_sz, book_ask_sz=ask_sz)
    >>> result = stream.finish()                                     # doctest: +SKIP
    """

    def __init__(self, config: StrategyConfig, tick_size: float, mark_interval_us: int = MARK_INTERVAL_US, *,
                 funding: tuple[ArrayLike, ArrayLike] | None = None, order_latency: OrderLatency | None = None,
                 exchange_offset_us: int | None = None, instrument: Instrument | None = None):
        if not isinstance(config, StrategyConfig):
            raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
        check_instrument(instrument, tick_size)
        self.instrument = instrument
        if config.feed_latency == "data" and exchange_offset_us is None:
            raise ParameterError("feed_latency 'data' in a stream of days needs `exchange_offset_us` (the "
                                 "whole replay's largest exchange - local gap: engine.exchange_offset)")
        self.config = config
        self.tick_size = tick_size
        self.mark_interval_us = check_mark_interval(mark_interval_us)
        self._funding = funding
        self._order_latency = order_latency
        self._exchange_offset_us = exchange_offset_us
        self._engine: Any = None        # the compiled engine, made at the first event
        self._first_us: int = 0
        self._last_us: int | None = None
        self._last_trade_us: int | None = None
        self._last_book_us: int | None = None
        self._last_book_row: np.ndarray | None = None   # (4, L): the last book update fed, for the queue join
        self._trades_before = 0         # trades fed on earlier days: fill rows index all trades
        self._n_parts_before = 0
        self._fill_ints: list[np.ndarray] = []
        self._fill_floats: list[np.ndarray] = []
        self._marks_ts: list[np.ndarray] = []
        self._marks_floats: list[np.ndarray] = []
        self._fill_ts = np.empty(0, np.int64)
        self._markout_mids = np.empty((len(MARKOUT_HORIZONS_S), 0))
        self._finished = False

    def feed(self, trade_ts_us: ArrayLike, trade_price: ArrayLike, trade_amount: ArrayLike,
             trade_side: ArrayLike, roles: ArrayLike, book_ts_us: ArrayLike, book_bid: ArrayLike,
             book_ask: ArrayLike, *, book_bid_sz: ArrayLike | None = None,
             book_ask_sz: ArrayLike | None = None, trade_exch_us: ArrayLike | None = None,
             book_exch_us: ArrayLike | None = None) -> None:
        """Replay one more day (arrays as for :func:`~clusterlob.replay.replay_arrays`), after the
        days fed before; the events must not be earlier than the last ones fed."""
        if self._finished:
            raise ParameterError("this ReplayStream is finished; start a new one")
        ts, price, amount, side, role, bts, bid, bid_sz, ask, ask_sz = validate_inputs(
            trade_ts_us, trade_price, trade_amount, trade_side, roles, book_ts_us, book_bid, book_ask,
            self.tick_size, book_bid_sz, book_ask_sz, self.config.fill_model)
        for arr, name, last in ((ts, "trade_ts_us", self._last_trade_us), (bts, "book_ts_us", self._last_book_us)):
            if arr.shape[0] and last is not None and arr[0] < last:
                raise TapeError(f"`{name}` goes back in time between fed days: {arr[0]} after {last}")
        if not (ts.shape[0] or bts.shape[0]):
            return
        exch = exchange_times(self.config, ts, bts, trade_exch_us, book_exch_us, self._exchange_offset_us)
        first = int(min(a[0] for a in (ts, bts) if a.shape[0]))
        last = int(max(a[-1] for a in (ts, bts) if a.shape[0]))
        if self._engine is None:
            self._first_us = first
            self._start(first)
            since = first
        else:
            self._engine.next_arrays(self._last_book_row, funding=True, latency=False)
            since = first if self._last_us is None else self._last_us
        # funding payments after the events fed so far, up to this day's last event
        f_ts, f_rate = funding_series(self.config, since, last, self._funding)
        lat = latency_arrays(self._order_latency, first, last)
        self._last_us = last if self._last_us is None else max(self._last_us, last)
        if ts.shape[0]:
            self._last_trade_us = int(ts[-1])
        if bts.shape[0]:
            self._last_book_us = int(bts[-1])
            self._last_book_row = np.stack([bid[-1], bid_sz[-1], ask[-1], ask_sz[-1]])
        n_fills_before = self._fill_ts.shape[0]
        self._run(ts, price, amount, side, role, bts, bid, bid_sz, ask, ask_sz, f_ts, f_rate, *lat, *exch)
        self._trades_before += ts.shape[0]
        # the markouts' later mids: fills of this and earlier days looked up in this day's book
        new_ts = [f[:, 1] for f in self._fill_ints[self._n_parts_before:]]
        if new_ts:
            self._fill_ts = np.concatenate([self._fill_ts, *new_ts])
        grown = np.full((len(MARKOUT_HORIZONS_S), self._fill_ts.shape[0]), np.nan)
        grown[:, :n_fills_before] = self._markout_mids
        if bts.shape[0]:
            markout_mids(self._fill_ts, bts, 0.5 * (bid[:, 0] + ask[:, 0]), into=grown)
        self._markout_mids = grown

    def _start(self, first_us: int) -> None:
        first_mark = (first_us // self.mark_interval_us + 1) * self.mark_interval_us
        self._engine = new_engine(self.config, float(self.tick_size), first_mark, self.mark_interval_us,
                                  self.instrument)

    def _run(self, *inputs) -> None:
        n_fill_cols, n_mark_cols = len(_core.FILL_FLOAT_COLUMNS), len(_core.MARK_FLOAT_COLUMNS)
        self._n_parts_before = len(self._fill_ints)
        finished = False
        while not finished:
            fill_ints = np.empty((FILL_CHUNK_ROWS, 2), np.int64)
            fill_floats = np.empty((FILL_CHUNK_ROWS, n_fill_cols))
            mark_ts = np.empty(_MARK_CHUNK, np.int64)
            mark_floats = np.empty((_MARK_CHUNK, n_mark_cols))
            nf, nm, finished = self._engine.run(*inputs, fill_ints, fill_floats, mark_ts, mark_floats)
            rows = fill_ints[:nf, 0]
            rows[rows >= 0] += self._trades_before     # -1 (a book-through fill) stays -1
            self._fill_ints.append(fill_ints[:nf].copy())      # copies: free the chunk buffers
            self._fill_floats.append(fill_floats[:nf].copy())
            self._marks_ts.append(mark_ts[:nm].copy())
            self._marks_floats.append(mark_floats[:nm].copy())
            if not finished and nf < FILL_CHUNK_ROWS - 4 and nm < _MARK_CHUNK:   # the kernel stops on a full buffer
                raise RuntimeError("replay kernel stopped early with room left")  # pragma: no cover

    def finish(self) -> ReplayResult:
        """The result over every day fed (fills' ``trade_index`` counts all trades fed)."""
        if self._finished:
            raise ParameterError("this ReplayStream is already finished")
        self._finished = True
        if self._engine is None:        # nothing fed: the empty replay
            self._first_us = self._last_us = 0
            i8, f8 = np.empty(0, np.int64), np.empty(0)
            validate_inputs(i8, f8, f8, i8, i8, i8, f8, f8, self.tick_size, f8, f8)
            self._start(0)
        self._engine.finish()
        state = self._engine.snapshot()
        fill_ints = np.concatenate(self._fill_ints) if self._fill_ints else np.empty((0, 2), np.int64)
        fill_floats = (np.concatenate(self._fill_floats) if self._fill_floats
                       else np.empty((0, len(_core.FILL_FLOAT_COLUMNS))))
        fills = fills_from_buffers(fill_ints, fill_floats)
        mark_ts = np.concatenate(self._marks_ts) if self._marks_ts else np.empty(0, np.int64)
        mark_floats = (np.concatenate(self._marks_floats) if self._marks_floats
                       else np.empty((0, len(_core.MARK_FLOAT_COLUMNS))))
        self._fill_ints = self._fill_floats = self._marks_ts = self._marks_floats = []
        last_us = self._first_us if self._last_us is None else self._last_us
        equity = build_equity_series(self._first_us, mark_ts, mark_floats, state, last_us)
        summary = summarise(self.config, state, fills, equity, self._first_us, last_us,
                            self.mark_interval_us, tick_size=float(self.tick_size),
                            markout_mids=self._markout_mids, currency=currency_of(self.instrument))
        return ReplayResult(fills, equity, summary, self.config, float(self.tick_size))
