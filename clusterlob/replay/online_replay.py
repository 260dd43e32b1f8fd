"""Playing a tape or a raw Binance recording through the online engine and the simulated
gateway, event by event, with the batch replay's result objects: :func:`replay_online`.
"""
from __future__ import annotations

import itertools
from typing import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cluster.model import ClusterModel
from .._typing import ArrayLike, PathLike
from ..errors import ParameterError
from ..features.build import RollingState
from ..tape.convert import is_inverse
from ..tape.types import MAX_LEVELS, Instrument, Tape, settlement_currency_of
from .engine import exchange_offset, funding_series
from .latency import OrderLatency
from .results import MARK_INTERVAL_US, ReplayResult, build_equity_series, fills_from_buffers, currency_of, summarise
from .events import TradeEvent, tape_events
from .gateway import BinanceDecoder, SimulatedGateway, gateway_message, deliver
from .online import OnlineEngine
from .strategy import StrategyConfig

__all__ = ["OnlineReplay", "replay_online"]


@dataclass(frozen=True, eq=False)
class OnlineReplay:
    """What :func:`replay_online` returns.

    ``result`` is a :class:`~clusterlob.replay.ReplayResult` (fills, equity, summary), as
    the batch replay gives.  ``cluster`` / ``role`` (n_trades,) int8 are the labels the
    engine gave each trade online (-1 none); ``raw`` / ``z`` (n_trades, 6) its features
    (NaN where none) when ``record_features`` was set, else None.  ``state`` the rolling
    state at the end, ``acks`` the gateway's acknowledgement counts.
    """

    result: ReplayResult
    cluster: np.ndarray
    role: np.ndarray
    raw: np.ndarray | None
    z: np.ndarray | None
    state: RollingState
    acks: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "acks": dict(self.acks), "source": dict(self.source)}


def replay_online(source: Tape | PathLike, model: ClusterModel, config: StrategyConfig | None = None, *,
                  tick_size: float | None = None, state: RollingState | None = None,
                  record_features: bool = False, symbol: str | None = None,
                  quote_updates: str | None = None,
                  mark_interval_us: int = MARK_INTERVAL_US, order_latency: OrderLatency | None = None,
                  exchange_offset_us: int | None = None, instrument: Instrument | None = None,
                  funding: tuple[ArrayLike, ArrayLike] | None = None) -> OnlineReplay:
    """Play a tape or a raw Binance recording through the engine and a simulated gateway.

    Parameters
    ----------
    source : Tape, an iterable of Tapes, or str / Path of a Binance stream recording (``.gz`` or text)
        A tape is played in the batch replay's event order; consecutive tapes (for example one
        per day, read as they are needed) one after the other, as one; a recording is decoded
        line by line (:class:`clusterlob.gateway.BinanceDecoder`) as if it were live.
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
    quote_updates : {"replace", "changes"}, optional
        As :class:`OnlineEngine` (default ``config.quote_updates``); equal to the batch replay
        when it is the config's.
    mark_interval_us : int
        Spacing of the equity marks (default one minute).
    order_latency : OrderLatency, optional
        Order latencies from data, for the engine and the simulated gateway alike (a tape's
        events must lie in the period it covers, as for the batch replay).
    exchange_offset_us : int, optional
        With ``config.feed_latency = "data"``: subtracted from the events' exchange times
        (see :class:`OnlineEngine`).  Default: the largest ``exchange - local`` gap of a tape's
        events, as the batch replay takes it (a recording is decoded once more for it);
        required for an iterable of tapes.
    instrument : Instrument, optional
        The contract (an inverse one: money in the coin, depths in flow units); default the
        tape's (the first tape's of an iterable); a recording without it is a plain linear
        instrument.
    funding : (ts_us array, rate array), optional
        A funding rate series (e.g. :func:`clusterlob.replay.funding.funding_payments` of a
        tape's funding table), as :func:`~clusterlob.replay.replay` takes it: the simulated
        gateway pays it with the batch replay's rule and reports each payment to the engine
        (:class:`~clusterlob.replay.gateway.FundingPayment`).  Default the config's constant
        ``funding_rate``.

    Returns
    -------
    OnlineReplay
    """
    config = StrategyConfig() if config is None else config
    tape_levels = None
    if isinstance(source, Tape):
        instrument = source.instrument if instrument is None else instrument
        tick = source.instrument.tick_size if tick_size is None else tick_size
        events = tape_events(source)
        decoder = None
    elif isinstance(source, (str, Path)):
        if tick_size is None:
            raise ParameterError("`tick_size` is required to play a recording (it is not in the messages)")
        tick = tick_size
        # every level a converted tape keeps: the exchange's queue model looks for our price
        # among them (with the model's D only, an order deeper than D would join an unknown queue)
        decoder = BinanceDecoder(symbol=symbol, levels=MAX_LEVELS)
        tape_levels = decoder.levels
        events = decoder.events_from_file(source)
        if instrument is None:          # the symbol is known from the first message decoded
            head = next(events, None)
            if decoder.symbol and is_inverse("", decoder.symbol):
                raise ParameterError(f"recording {source} is of the inverse contract {decoder.symbol}: give "
                                     f"`instrument` (an Instrument with its contract_size and inverse=True)")
            events = itertools.chain([] if head is None else [head], events)
    elif hasattr(source, "__iter__"):
        if tick_size is None:
            raise ParameterError("`tick_size` is required to play an iterable of tapes")
        tick = tick_size
        tapes: Iterator[Tape] = iter(source)  # type: ignore[call-overload]   # not a path: checked above
        first = next(tapes, None)           # its book levels size the exchange's book
        tape_levels = first.book.levels if isinstance(first, Tape) else None
        if instrument is None and isinstance(first, Tape):
            instrument = first.instrument
        if first is not None:
            tapes = itertools.chain([first], tapes)
        events = itertools.chain.from_iterable(tape_events(t) for t in tapes)
        decoder = None
    else:
        raise ParameterError(f"`source` must be a Tape, tapes or a recording path, got {type(source).__name__}")
    if config.feed_latency == "data" and exchange_offset_us is None:
        if isinstance(source, Tape):
            t, b = source.trades, source.book
            exchange_offset_us = exchange_offset(t.ts_local_us, b.ts_local_us, t.ts_exch_us, b.ts_exch_us)
        elif decoder is not None:
            exchange_offset_us = _recording_offset(source, symbol)
    if order_latency is not None and isinstance(source, Tape) and isinstance(order_latency, OrderLatency):
        span = [a for a in (source.trades.ts_local_us, source.book.ts_local_us) if len(a)]
        if span:
            order_latency.check_covers(int(min(a[0] for a in span)), int(max(a[-1] for a in span)))
    engine = OnlineEngine(model, config, tick_size=tick, state=state, quote_updates=quote_updates,
                          trades_before_book="count", mark_interval_us=mark_interval_us,
                          order_latency=order_latency, exchange_offset_us=exchange_offset_us,
                          instrument=instrument)
    levels = max(model.settings.levels, source.book.levels if isinstance(source, Tape) else
                 (tape_levels if tape_levels is not None else model.settings.levels))
    if isinstance(source, Tape) and (funding is not None or config.funding_rate != 0.0) \
            and len(source.trades) + len(source.book):
        ts = np.concatenate([source.trades.ts_local_us, source.book.ts_local_us])
        funding = funding_series(config, int(ts.min()), int(ts.max()), funding)
    gateway = SimulatedGateway(tick, config, levels=levels, funding=funding,
                               mark_interval_us=mark_interval_us, order_latency=order_latency,
                               exchange_offset_us=exchange_offset_us, instrument=instrument)
    out = _run(engine, gateway, events, record_features,
               None if instrument is not None or decoder is None else settlement_currency_of(decoder.symbol or "", False))
    if decoder is not None:
        out.source.update({"recording": str(source), "symbol": decoder.symbol,
                           "dropped": dict(decoder.dropped), "ignored": dict(decoder.ignored)})
    return out


def _recording_offset(path, symbol) -> int:
    """The largest exchange - local gap of a recording's events (feed latency from data): the
    recording is decoded once for it, as a converted tape would give it."""
    gap = 0
    for ev in BinanceDecoder(symbol=symbol, levels=1).events_from_file(path):
        if ev.ts_exch_us is not None and ev.ts_exch_us - ev.ts_us > gap:
            gap = ev.ts_exch_us - ev.ts_us
    return gap


def _run(engine, gateway, events, record_features, currency=None) -> OnlineReplay:
    """The loop: the exchange sees each event first (its clock work delivers the responses due,
    then it matches the event), the engine books the responses, then sees the event and may
    decide; its actions go to the exchange.  The batch replay's order, step for step.
    ``currency``: of a recording without an instrument (from its symbol); else the engine's."""
    sim = gateway._exchange
    cluster, role, raws, zs = [], [], [], []
    book_ts, book_mid = [], []
    first_us = last_us = None
    n_actions = 0
    on_trade, on_book, sim_trade, sim_book = engine.on_trade, engine.on_book, sim.on_trade, sim.on_book
    for ev in events:
        t = ev.ts_us
        if first_us is None:
            first_us = t
        last_us = t
        if type(ev) is TradeEvent:
            if sim_trade(t, ev.price, ev.amount, ev.side, ev.ts_exch_us):
                deliver(engine, [gateway_message(e) for e in sim.take_events()])
            actions = on_trade(t, ev.price, ev.amount, ev.side, ev.ts_exch_us)
            cluster.append(engine.last_cluster)
            role.append(engine.last_role)
            if record_features:
                raw, z = engine.features()
                raws.append(raw)
                zs.append(z)
        else:
            levels = ev.levels
            if sim_book(t, levels, ev.ts_exch_us):
                deliver(engine, [gateway_message(e) for e in sim.take_events()])
            actions = on_book(t, levels, ev.ts_exch_us)
            book_ts.append(t)
            book_mid.append(0.5 * (levels[0, 0] + levels[2, 0]))
        if actions is not None:
            sim.submit(actions, t)
            n_actions += len(actions)
    sim.finish()
    state = sim.snapshot()                      # accounts and the exchange's counters
    decided = engine.snapshot()                 # the decisions' counters
    for key in ("quote_decisions", "bids_placed", "asks_placed", "posts_rejected", "inventory_limited",
                "decisions_quoted", "decisions_limited", "decisions_withheld", "decisions_widened",
                "decisions_clipped", "half_spread_ticks_sum", "half_spread_quotes", "trades"):
        state[key] = decided[key]
    rows = sim.fills
    fills = fills_from_buffers([r[:2] for r in rows], [r[2:] for r in rows])
    first_us = 0 if first_us is None else first_us
    last_us = 0 if last_us is None else last_us
    marks = sim.marks
    mark_ts = np.asarray([m[0] for m in marks], np.int64)
    mark_floats = np.asarray([m[1:] for m in marks], np.float64).reshape(len(marks), 8)
    equity = build_equity_series(first_us, mark_ts, mark_floats, state, last_us)
    summary = summarise(engine.config, state, fills, equity, first_us, last_us, engine._mark_interval_us,
                        mids=(np.asarray(book_ts, np.int64), np.asarray(book_mid, np.float64)),
                        tick_size=engine.tick_size, currency=currency or currency_of(engine.instrument))
    result = ReplayResult(fills, equity, summary, engine.config, engine.tick_size)
    n = len(cluster)
    acks = {"actions": n_actions, "cancelled": sim.n_cancelled, "rejected": sim.n_rejected}
    return OnlineReplay(result, np.asarray(cluster, np.int8).reshape(n), np.asarray(role, np.int8).reshape(n),
                        np.asarray(raws).reshape(n, 6) if record_features else None,
                        np.asarray(zs).reshape(n, 6) if record_features else None,
                        engine.rolling_state(), acks)
