"""Playing a tape or a raw Binance recording through the online engine and the simulated
gateway, event by event, with the batch replay's result objects: :func:`replay_online`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cluster.model import ClusterModel
from ..errors import ParameterError
from ..features.build import RollingState
from ..tape.store import Tape
from .engine import Fills, ReplayResult, build_equity_series, summarise
from .events import TradeEvent, tape_events
from .gateway import BinanceDecoder, SimulatedGateway
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
    mark_floats = np.asarray([m[1:] for m in marks], np.float64).reshape(len(marks), 8)
    equity = build_equity_series(first_us, mark_ts, mark_floats, state, last_us)
    summary = summarise(engine.config, state, fills, equity, first_us, last_us)
    result = ReplayResult(fills, equity, summary, engine.config, engine.tick_size)
    n = len(cluster)
    acks = {"accepted": sim.n_accepted, "cancelled": sim.n_cancelled, "rejected": sim.n_rejected}
    return OnlineReplay(result, np.asarray(cluster, np.int8).reshape(n), np.asarray(role, np.int8).reshape(n),
                        np.asarray(raws).reshape(n, 6) if record_features else None,
                        np.asarray(zs).reshape(n, 6) if record_features else None,
                        engine.rolling_state(), acks)
