"""The online engine: market events in, one at a time; order actions out.

:class:`OnlineEngine` is what a trading stack embeds.  Feed it every book update
(:meth:`~OnlineEngine.on_book`: the touch and at least D levels) and every trade
(:meth:`~OnlineEngine.on_trade`) as they arrive, and the fills of its own orders
(:meth:`~OnlineEngine.on_fill`); it keeps, in constant time per event, the as-of book,
the six features of each trade and their rolling z-scores, the trade's cluster and role
(nearest centre of a :class:`~clusterlob.model.ClusterModel`), the signal accumulator,
the inventory and the accounts, and runs the quote rule of :mod:`clusterlob.strategy` on
the requote clock.  When it decides, it returns the order actions (cancel the old quote,
place the new one, per side) as :class:`OrderAction` objects; otherwise None.

The numbers are the batch pipeline's, bit for bit: driving the engine over a tape with the
simulated gateway (:func:`replay_online`) gives the same features, labels, quotes, fills
and PnL as :func:`~clusterlob.features.build_features` + :func:`~clusterlob.model.label_trades`
+ :func:`~clusterlob.replay.replay` (``tests/test_online.py``).  See ``docs/online.md``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from . import _core
from .errors import ParameterError
from .features import FEATURE_NAMES, RollingState
from .model import ClusterModel
from .strategy import StrategyConfig

__all__ = ["OnlineEngine", "OrderAction", "TradeEvent", "BookEvent", "OnlineReplay",
           "replay_online", "tape_events"]

OrderAction = _core.OrderAction
_NO_FEATURES = 16       # last_flags of a trade without features (side 0 or no book yet)


class TradeEvent(NamedTuple):
    """A trade as it arrives: local receive time (us), price, amount, aggressor side
    (+1 buy taker, -1 sell taker, 0 unknown) and the exchange time (us, informative)."""

    ts_us: int
    price: float
    amount: float
    side: int
    ts_exch_us: int | None = None


class BookEvent(NamedTuple):
    """A book update: local receive time (us), ``levels`` (4, L) float64 = bid_px, bid_sz,
    ask_px, ask_sz, best first, NaN past the last level (L >= the model's D), exchange time."""

    ts_us: int
    levels: np.ndarray
    ts_exch_us: int | None = None


class OnlineEngine(_core._OnlineCore):
    """The ClusterLOB market maker, one event at a time (see the module doc).

    Parameters
    ----------
    model : ClusterModel
        Centres, roles and the feature settings (D, W, clip, convention, as-of rule).  The
        online path orders events by local receive time, so ``time_key`` must be "local".
    config : StrategyConfig, optional
        Quoting parameters (default :class:`StrategyConfig`).
    tick_size : float
        The instrument's price increment (spread feature, quote grid).
    state : RollingState, optional
        Rolling windows and book carried from earlier data (``Features.state`` of the
        batch pipeline, or :meth:`rolling_state` of an earlier engine); not modified.
        Without it the z-scores warm up over the first W trades.
    quote_updates : {"replace", "changes"}
        "replace" (default): every decision cancels and re-places both quotes, which is what
        the batch replay models (results identical to it).  "changes": a side whose new
        price equals its resting, never-filled order is left alone (fewer messages for a
        live venue; differs from the replay only when such an order fills between a decision
        and the moment its replacement would have arrived).
    trades_before_book : {"raise", "count"}
        A trade before any book update: "raise" a :class:`ParameterError` (default, the
        engine unchanged), or "count" it as the batch pipeline does (no features, unassigned
        role, it still feeds the accumulator's mean trade size).

    Notes
    -----
    Per event: :meth:`on_trade` ``(ts_us, price, amount, side)`` and :meth:`on_book`
    ``(ts_us, levels)`` return a tuple of :class:`OrderAction` when the requote clock fired
    (empty when "changes" finds nothing to change), else None.  :meth:`on_fill` ``(ts_us, side, order_id, price, qty, done)`` books our
    fill (side +1 we bought) and returns the fee.  Bad input (time going backwards, NaN or
    non-positive prices, a crossed book, a trade before any book) raises
    :class:`ParameterError` and leaves every part of the state unchanged.
    """

    def __init__(self, model: ClusterModel, config: StrategyConfig | None = None, *,
                 tick_size: float, state: RollingState | None = None,
                 quote_updates: str = "replace", trades_before_book: str = "raise"):
        if not isinstance(model, ClusterModel):
            raise ParameterError(f"`model` must be a ClusterModel, got {type(model).__name__}")
        config = StrategyConfig() if config is None else config
        if not isinstance(config, StrategyConfig):
            raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
        if isinstance(tick_size, bool) or not isinstance(tick_size, (int, float, np.integer, np.floating)) \
                or not math.isfinite(tick_size) or tick_size <= 0:
            raise ParameterError(f"`tick_size` must be a finite number > 0, got {tick_size!r}")
        if quote_updates not in ("replace", "changes"):
            raise ParameterError(f"`quote_updates` must be 'replace' or 'changes', got {quote_updates!r}")
        if trades_before_book not in ("raise", "count"):
            raise ParameterError(f"`trades_before_book` must be 'raise' or 'count', got {trades_before_book!r}")
        settings = model.settings
        if settings.time_key != "local":
            raise ParameterError(f"the online engine orders events by local time; the model's "
                                 f"`time_key` must be 'local', got {settings.time_key!r}")
        if state is None:
            state = RollingState.new(settings)
        elif not isinstance(state, RollingState):
            raise ParameterError(f"`state` must be a RollingState, got {type(state).__name__}")
        else:
            state.check(settings)
            state = state.copy()
        from .replay import MARK_INTERVAL_US
        self.model = model
        self.config = config
        self.tick_size = float(tick_size)
        self._settings_key = state.settings_key
        super().__init__(
            settings.levels, settings.asof == "strict", settings.convention == "aggressor",
            settings.z_clip, state.ring, state.n_seen, state.run_length, state.since_recompute,
            state.shift, state.mean_shifted, state.m2, state.m2_peak, state.book_state,
            state.book_times, state.rows,
            np.ascontiguousarray(model.centers_z, dtype=np.float64),
            np.ascontiguousarray(model.roles, dtype=np.int8),
            float(tick_size), config.skew_ticks, config.theta, config.inventory_mode == "dynamic",
            config.min_half_ticks, config.half_spread_bps, config.hazard_k, config.hazard_threshold,
            config.quote_size, config.max_inventory, config.maker_fee_bps,
            config.requote_interval_us, config.order_latency_us, config.alpha_code,
            config.hazard_code, math.log(2.0) / (config.half_life_s * 1e6), config.size_weight,
            config.signal_scale_trades, MARK_INTERVAL_US)
        self._state = state         # owns the arrays the compiled core works in
        self.count_trades_before_book = trades_before_book == "count"
        self.changes_only = quote_updates == "changes"

    def on_event(self, event):
        """Dispatch a :class:`TradeEvent` or :class:`BookEvent` (convenience; the typed
        methods are faster)."""
        if isinstance(event, TradeEvent):
            return self.on_trade(event.ts_us, event.price, event.amount, event.side)
        if isinstance(event, BookEvent):
            return self.on_book(event.ts_us, np.asarray(event.levels, dtype=np.float64))
        raise ParameterError(f"`event` must be a TradeEvent or BookEvent, got {type(event).__name__}")

    # -- read-outs ---------------------------------------------------------------------
    def last_trade(self) -> dict:
        """The last trade's ``raw`` and ``z`` features (6,), ``valid``, ``cluster``, ``role``."""
        raw, z = self.features()
        return {"raw": raw, "z": z, "valid": self.last_flags & (1 | 2 | _NO_FEATURES) == 0,
                "cluster": self.last_cluster, "role": self.last_role,
                "feature_names": FEATURE_NAMES}

    def rolling_state(self) -> RollingState:
        """A copy of the rolling windows and the book, to save (``to_dict``) or start another engine."""
        st = self._state.copy()
        st.rows = int(self.feature_rows)
        return st

    def __repr__(self) -> str:
        return (f"OnlineEngine(k={self.model.k}, D={self.model.settings.levels}, "
                f"W={self.model.settings.window}, mapping={self.config.mapping!r}, "
                f"last_ts_us={self.last_ts_us}, inventory={self.inventory:g})")


# -- playing a tape or a recording through the online path ----------------------------------

def tape_events(tape) -> Iterator:
    """The events of a tape in the replay's order (local time; a trade first at equal time)."""
    levels = np.stack([tape.book.bid_px, tape.book.bid_sz, tape.book.ask_px, tape.book.ask_sz], axis=1)
    for kind, i in _merged_order(tape.trades.ts_local_us, tape.book.ts_local_us):
        if kind == 0:
            t = tape.trades
            yield TradeEvent(int(t.ts_local_us[i]), float(t.price[i]), float(t.amount[i]),
                             int(t.side[i]), int(t.ts_exch_us[i]))
        else:
            yield BookEvent(int(tape.book.ts_local_us[i]), levels[i], int(tape.book.ts_exch_us[i]))


def _merged_order(trade_ts, book_ts):
    """(kind, index) pairs: kind 0 trade, 1 book; by time, trades first at equal time."""
    ts = np.concatenate([trade_ts, book_ts])
    kind = np.concatenate([np.zeros(len(trade_ts), np.int8), np.ones(len(book_ts), np.int8)])
    index = np.concatenate([np.arange(len(trade_ts)), np.arange(len(book_ts))])
    order = np.lexsort((index, kind, ts))
    return zip(kind[order].tolist(), index[order].tolist())


@dataclass(frozen=True, eq=False)
class OnlineReplay:
    """What :func:`replay_online` returns.

    ``result`` is a :class:`~clusterlob.replay.ReplayResult` (fills, equity, summary), as
    the batch replay gives.  ``cluster`` / ``role`` (n_trades,) int8 are the labels the
    engine gave each trade online (-1 none); ``raw`` / ``z`` (n_trades, 6) its features
    (NaN where none) when ``record_features`` was set, else None.  ``state`` the rolling
    state at the end, ``acks`` the gateway's acknowledgement counts.
    """

    result: object
    cluster: np.ndarray
    role: np.ndarray
    raw: np.ndarray | None
    z: np.ndarray | None
    state: RollingState
    acks: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "acks": dict(self.acks), "source": dict(self.source)}


def replay_online(source, model: ClusterModel, config: StrategyConfig | None = None, *,
                  tick_size: float | None = None, state: RollingState | None = None,
                  record_features: bool = False, symbol: str | None = None,
                  quote_updates: str = "replace") -> OnlineReplay:
    """Play a tape or a raw Binance recording through the engine and a simulated gateway.

    Parameters
    ----------
    source : Tape, or str / Path of a Binance stream recording (``.gz`` or text)
        A tape is played in the batch replay's event order; a recording is decoded line by
        line (:class:`clusterlob.gateway.BinanceDecoder`) as if it were live.
    model : ClusterModel
    config : StrategyConfig, optional
    tick_size : float, optional
        Price increment; default the tape's.  Required for a recording.
    state : RollingState, optional
        Rolling state before the first event (e.g. the training days' ``Features.state``).
    record_features : bool
        Keep every trade's raw and z features (memory: 96 bytes a trade).
    symbol : str, optional
        For a recording holding several symbols.
    quote_updates : {"replace", "changes"}
        As :class:`OnlineEngine`; "replace" (default) equals the batch replay.

    Returns
    -------
    OnlineReplay
    """
    from .gateway import BinanceDecoder, SimulatedGateway
    from .tape import Tape

    config = StrategyConfig() if config is None else config
    if isinstance(source, Tape):
        tick = source.instrument.tick_size if tick_size is None else tick_size
        events = tape_events(source)
        decoder = None
    elif isinstance(source, (str, Path)):
        if tick_size is None:
            raise ParameterError("`tick_size` is required to play a recording (it is not in the messages)")
        tick = tick_size
        decoder = BinanceDecoder(symbol=symbol, levels=model.settings.levels)
        events = decoder.events_from_file(source)
    else:
        raise ParameterError(f"`source` must be a Tape or a recording path, got {type(source).__name__}")
    engine = OnlineEngine(model, config, tick_size=tick, state=state, quote_updates=quote_updates,
                          trades_before_book="count")
    gateway = SimulatedGateway(tick, config)
    out = _run(engine, gateway, events, record_features)
    if decoder is not None:
        out.source.update({"recording": str(source), "symbol": decoder.symbol,
                           "dropped": dict(decoder.dropped), "ignored": dict(decoder.ignored)})
    return out


def _run(engine, gateway, events, record_features) -> OnlineReplay:
    from .replay import Fills, ReplayResult, _equity_series, _summarise

    sim = gateway._exchange
    sim.quiet = True            # acks that change nothing for the engine are only counted
    fills_rows = []
    cluster, role, raws, zs = [], [], [], []
    first_us = last_us = None
    i_trade = 0
    on_trade, on_book, sim_trade, sim_advance = engine.on_trade, engine.on_book, sim.on_trade, sim.advance
    for ev in events:
        t = ev.ts_us
        if first_us is None:
            first_us = t
        last_us = t
        if type(ev) is TradeEvent:
            if sim_trade(t, ev.price, ev.amount, ev.side):
                for e in sim.take_events():
                    if e[0] == "fill":
                        _, ts, oid, side, px, q, remaining = e
                        fee = engine.on_fill(ts, side, oid, px, q, remaining <= 0.0)
                        fills_rows.append((i_trade, ts, side, px, q, engine.mid, fee,
                                           engine.inventory, engine.cash))
                    else:
                        engine.order_gone(e[2])         # a rejected action
            actions = on_trade(t, ev.price, ev.amount, ev.side)
            cluster.append(engine.last_cluster)
            role.append(engine.last_role)
            if record_features:
                raw, z = engine.features()
                raws.append(raw)
                zs.append(z)
            i_trade += 1
        else:
            if sim_advance(t):
                for e in sim.take_events():
                    engine.order_gone(e[2])             # a rejected action
            actions = on_book(t, ev.levels)
        if actions is not None:
            sim.submit(actions, t)
    state = engine.snapshot()
    cols = list(zip(*fills_rows)) if fills_rows else [[]] * 9
    fills = Fills(np.asarray(cols[0], np.int64), np.asarray(cols[1], np.int64),
                  np.asarray(cols[2], np.int8), *(np.asarray(c, np.float64) for c in cols[3:]))
    first_us = 0 if first_us is None else first_us
    last_us = 0 if last_us is None else last_us
    marks = engine.marks
    mark_ts = np.asarray([m[0] for m in marks], np.int64)
    mark_floats = np.asarray([m[1:] for m in marks], np.float64).reshape(len(marks), 7)
    equity = _equity_series(first_us, mark_ts, mark_floats, state, last_us)
    summary = _summarise(engine.config, state, fills, equity, first_us, last_us)
    result = ReplayResult(fills, equity, summary, engine.config, engine.tick_size)
    n = len(cluster)
    acks = {"accepted": sim.n_accepted, "cancelled": sim.n_cancelled, "rejected": sim.n_rejected}
    return OnlineReplay(result, np.asarray(cluster, np.int8).reshape(n), np.asarray(role, np.int8).reshape(n),
                        np.asarray(raws).reshape(n, 6) if record_features else None,
                        np.asarray(zs).reshape(n, 6) if record_features else None,
                        engine.rolling_state(), acks)
