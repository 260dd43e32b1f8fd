"""Where the online engine meets an exchange: the gateway interface, a simulated gateway, and
a decoder from Binance futures stream messages to online-engine events.

Nothing here opens a network connection.  A live gateway is whatever implements
:class:`Gateway` (send order actions, hand back acknowledgements and fills); the
:class:`SimulatedGateway` implements it with the batch replay's rules (the order latency,
one resting quote per side, fills at the trade's own price, quote size used up), so a loop
written against the interface (:func:`drive`) runs unchanged in simulation and live.
:class:`BinanceDecoder` turns the messages a Binance USD-M futures stream delivers (the JSON
that :mod:`clusterlob.readers.binance` reads from recordings) into :class:`TradeEvent` and
:class:`BookEvent`, keeping the L2 book with the reader's own :class:`DepthSync`, so a
recording can be played through the online path as if it were live.  See ``docs/online.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple, Protocol, runtime_checkable, Sequence

import numpy as np

from .._typing import ArrayLike, PathLike
from .. import _core
from .._io import check_int, check_number
from ..errors import ParameterError, TapeError
from .events import BookEvent, OrderAction, TradeEvent
from ..tape.readers.binance import DIFF_STREAM, parse_line, iter_messages
from ..tape.readers.binance_book import DepthSync, parse_levels
from .strategy import StrategyConfig
from ..tape.types import MAX_LEVELS, Instrument

if TYPE_CHECKING:
    from .latency import OrderLatency
    from .online import OnlineEngine

__all__ = ["Ack", "Fill", "FundingPayment", "Gateway", "SimulatedGateway", "BinanceDecoder", "deliver", "drive"]


class Ack(NamedTuple):
    """An order acknowledgement: ``status`` "cancelled" or "rejected" (with ``reason``), the
    exchange time it happened (us), the order id, our side (+1 bid, -1 ask), the size it
    concerns (cancelled: the unfilled size; rejected: the order's size) and the time it reached
    the strategy (the exchange time plus the response latency)."""

    status: str
    ts_us: int
    order_id: int
    reason: str = ""
    side: int = 0
    qty: float = 0.0
    received_us: int | None = None


class Fill(NamedTuple):
    """A fill of one of our orders: exchange time (us), order id, our side (+1 bought, -1
    sold), price, quantity, the order's remaining size (0: the order is done), and the time it
    reached the strategy."""

    ts_us: int
    order_id: int
    side: int
    price: float
    qty: float
    remaining: float
    received_us: int | None = None


class FundingPayment(NamedTuple):
    """A funding payment on our position: the funding time (us), the rate paid, the amount paid
    (negative: received) and the time the report reached the strategy.  Live: Binance's
    ``ACCOUNT_UPDATE`` with reason ``FUNDING_FEE`` (its balance change is ``-amount``)."""

    ts_us: int
    rate: float
    amount: float
    received_us: int | None = None


@runtime_checkable
class Gateway(Protocol):
    """What the online engine needs from an exchange connection.

    ``submit(actions, ts_us)`` sends :class:`OrderAction` objects (place / cancel) decided at
    local time ``ts_us``; ``poll(ts_us)`` returns the :class:`Ack`, :class:`Fill` and
    :class:`FundingPayment` objects received up to ``ts_us``, oldest first, each once; ``on_market(event)`` shows the gateway
    a market event before the engine sees it (a live gateway ignores it; the simulated one
    matches its resting orders against trades there).
    """

    def submit(self, actions: Sequence[OrderAction], ts_us: int) -> None: ...

    def poll(self, ts_us: int) -> list: ...

    def on_market(self, event: TradeEvent | BookEvent) -> None: ...


class SimulatedGateway:
    """A :class:`Gateway` with the tape replay's exchange (``docs/replay.md``): the same
    compiled code, driven one event at a time.

    Actions reach the simulated exchange ``config.order_latency_us`` (places) or
    ``config.cancel_latency_us`` (cancels) after they are sent; a place is rejected if
    post-only would cross the book then; resting orders fill by ``config.fill_model`` (queue
    position with ``queue_rule``, cross or touch) and when the opposite best price reaches them;
    fills, cancel acks and rejects reach the strategy ``config.response_latency_us`` later
    (:meth:`poll`).  At each funding time it charges the position it holds with the batch
    replay's rule (the same compiled function) and reports a :class:`FundingPayment` with the
    event that reaches that time.  Show it every market event (:meth:`on_market`) before the
    engine.

    Parameters
    ----------
    tick_size : float
    config : StrategyConfig
    levels : int
        Book levels kept (the queue model looks for our price among them).
    funding : (ts_us array, rate array), optional
        A funding rate series (payment times, non-decreasing; the rate paid at each), e.g.
        :func:`clusterlob.replay.funding.funding_payments` of a tape's funding table: the
        exchange knows its rates, so it takes them up front.  Default the config's constant
        ``funding_rate`` every ``funding_interval_h`` hours (a series replaces it: an empty
        series pays nothing, as in the batch replay).
    mark_interval_us : int, optional
        Spacing of the equity marks it keeps (default one minute).
    order_latency : OrderLatency, optional
        Order latencies from data, as :class:`~clusterlob.replay.online.OnlineEngine` takes
        them (the same table for both: the engine expects its responses when the gateway sends
        them).
    exchange_offset_us : int, optional
        With ``config.feed_latency = "data"`` (required then): the exchange works at each
        event's exchange time minus this offset (as the engine's).
    instrument : Instrument, optional
        The contract (inverse: the accounts in the coin), as for the batch replay; its tick
        must be ``tick_size``.
    """

    def __init__(self, tick_size: float, config: StrategyConfig | None = None, *, levels: int = MAX_LEVELS,
                 funding: tuple[ArrayLike, ArrayLike] | None = None, mark_interval_us: int | None = None,
                 order_latency: OrderLatency | None = None, exchange_offset_us: int | None = None,
                 instrument: Instrument | None = None):
        from .engine import (
            check_data_latencies,
            check_funding,
            check_instrument,
            check_mark_interval,
            kernel_params,
            latency_arrays,
        )
        from .results import MARK_INTERVAL_US
        config = StrategyConfig() if config is None else config
        if not isinstance(config, StrategyConfig):
            raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
        check_number("tick_size", tick_size, 0, lo_open=True)
        check_instrument(instrument, tick_size)
        n_levels = int(check_int("levels", levels, 1) or 1)
        marks_us = check_mark_interval(MARK_INTERVAL_US if mark_interval_us is None else mark_interval_us)
        feed_data, offset = check_data_latencies(config, exchange_offset_us)
        lat = latency_arrays(order_latency)
        f_ts, f_rate = (None, None) if funding is None else check_funding(funding)
        self.config = config
        self._exchange = _core._SimExchange(kernel_params(config, float(tick_size), marks_us, instrument),
                                            n_levels, f_ts, f_rate,
                                            config.funding_rate if funding is None else 0.0,
                                            config.funding_interval_h * 3_600_000_000)
        self._exchange.set_data_latencies(feed_data, offset, *lat)

    def submit(self, actions: Sequence[OrderAction], ts_us: int) -> None:
        """Send order actions decided at ``ts_us``."""
        if actions:
            self._exchange.submit(tuple(actions), int(ts_us))

    def on_market(self, event: TradeEvent | BookEvent) -> None:
        """Advance the simulated exchange to the event's time; match the event."""
        if isinstance(event, TradeEvent):
            self._exchange.on_trade(event.ts_us, event.price, event.amount, event.side, event.ts_exch_us)
        else:
            self._exchange.on_book(event.ts_us, np.ascontiguousarray(event.levels, dtype=np.float64),
                                   event.ts_exch_us)

    def poll(self, ts_us: int) -> list:
        """Acks and fills that have reached the strategy by ``ts_us``, oldest first.

        A response due at the time of the last market event shown arrives with the next one
        (as in the batch replay, where the strategy hears it at its next event)."""
        last = self._exchange.last_ts_us
        if last is None or int(ts_us) > last:
            self._exchange.advance(int(ts_us))
        return [gateway_message(e) for e in self._exchange.take_events()]

    def resting(self) -> dict:
        """The newest live order per side: ``{"bid": (order_id, price_ticks, size) or None, "ask": ...}``."""
        bid, ask = self._exchange.resting()
        return {"bid": bid if bid[0] else None, "ask": ask if ask[0] else None}

    @property
    def in_flight(self) -> int:
        """Places and cancels sent that have not reached the exchange yet."""
        return self._exchange.in_flight


def gateway_message(e: tuple) -> Fill | Ack | FundingPayment:
    """A simulated exchange's response tuple as a :class:`Fill`, :class:`Ack` or :class:`FundingPayment`."""
    if e[0] == "fill":
        return Fill(*e[1:])
    if e[0] == "funding":
        return FundingPayment(*e[1:])
    return Ack(*e)


def deliver(engine: OnlineEngine, messages: Iterable[Fill | Ack | FundingPayment]) -> None:
    """Book the gateway's responses in the engine (fills, funding payments, and the cancels /
    rejects that end an order), each at the time it reached the strategy."""
    for msg in messages:
        if isinstance(msg, Fill):
            engine.on_fill(msg.received_us if msg.received_us is not None else msg.ts_us, msg.side,
                           msg.order_id, msg.price, msg.qty, msg.remaining <= 0.0)
        elif isinstance(msg, FundingPayment):
            engine.on_funding(msg.received_us if msg.received_us is not None else msg.ts_us, msg.amount)
        elif msg.status in ("cancelled", "rejected"):
            engine.order_gone(msg.order_id, msg.side, msg.qty)


def drive(engine: OnlineEngine, gateway: Gateway, events: Iterable) -> Iterator[tuple]:
    """The event loop of a strategy written against :class:`Gateway` (live or simulated).

    For each market event: show it to the gateway, book the fills and acks received, let the
    engine decide, send its actions.  Yields ``(event, actions, received)`` per event
    (``actions`` None when the engine did not decide; ``received`` the Acks, Fills and
    FundingPayments).
    """
    for event in events:
        gateway.on_market(event)
        received = gateway.poll(event.ts_us)
        deliver(engine, received)
        actions = engine.on_event(event)
        if actions:
            gateway.submit(actions, event.ts_us)
        yield event, actions, received


class BinanceDecoder:
    """Binance USD-M futures stream messages -> :class:`TradeEvent` / :class:`BookEvent`.

    Takes the messages a recorder writes (``<receive time ns> <JSON>`` lines) or a live
    client receives (the JSON text or the parsed dict, with the local receive time), one at a
    time.  The rules are the recording reader's (``docs/binance.md``), with its own code:
    ``trade`` messages with ``X`` = MARKET (or no ``X``) become trades (``aggTrade`` instead
    with ``trade_stream="aggTrade"``); ``depthUpdate`` diffs and REST depth snapshots keep
    the L2 book in sync with :class:`~clusterlob.readers.binance_book.DepthSync`, and every
    update that leaves it in sync emits the top ``levels`` levels.  Like the tape's rules, a
    book whose touch is missing or crossed, and a trade with a non-finite or non-positive
    price or amount, are dropped and counted (:attr:`dropped`).  Other messages are ignored
    (counted in :attr:`ignored`).

    Parameters
    ----------
    symbol : str, optional
        Keep this symbol's messages; by default the first symbol seen (another is an error).
    levels : int
        Book levels per event (the model's D or more; default 25).
    trade_stream : {"trade", "aggTrade"}
    """

    def __init__(self, symbol: str | None = None, levels: int = MAX_LEVELS, trade_stream: str = "trade"):
        if trade_stream not in ("trade", "aggTrade"):
            raise ParameterError(f"`trade_stream` must be 'trade' or 'aggTrade', got {trade_stream!r}")
        check_int("levels", levels, 1, MAX_LEVELS)
        self.symbol = symbol.upper() if symbol else None
        self.levels = int(levels)
        self.trade_stream = trade_stream
        self.sync = DepthSync(self._bad)
        self.dropped: dict = {}
        self.ignored: dict = {}
        self._line_no = 0

    def _bad(self, line_no: int, reason: str) -> None:
        raise TapeError(f"binance message {line_no}: {reason}")

    def _count(self, table: dict, reason: str) -> None:
        table[reason] = table.get(reason, 0) + 1

    def _symbol_ok(self, symbol: str) -> bool:
        if self.symbol is None:
            self.symbol = symbol
        elif symbol != self.symbol:
            self._count(self.ignored, "other symbol")
            return False
        return True

    def decode_line(self, line: bytes | str) -> list:
        """One recorder line ``<receive time ns> <JSON>``; returns the events (0 or 1)."""
        raw = line.encode() if isinstance(line, str) else line
        self._line_no += 1
        if not raw.strip():
            return []
        try:
            ts_ns, stream, data = parse_line(raw.rstrip(b"\r\n"))
        except ValueError as exc:
            raise TapeError(f"binance message {self._line_no}: {exc}") from None
        return self.decode(data, ts_ns // 1000, stream)

    def decode(self, data: dict, ts_local_us: int, stream: str | None = None) -> list:
        """One parsed message (``data`` the payload, ``stream`` the combined-stream name if
        any) received at ``ts_local_us``; returns the events it gives (0 or 1)."""
        try:
            event = data.get("e")
            if event == "depthUpdate":
                if stream is not None and not DIFF_STREAM.search(stream):
                    self._count(self.ignored, f"stream {stream}")
                    return []
                if not self._symbol_ok(str(data["s"])):
                    return []
                levels, n_bids = parse_levels(data["b"], data["a"])
                prev = data.get("pu")
                ts_exch = int(data["T"] if "T" in data else data["E"]) * 1000
                if self.sync.diff(int(data["U"]), int(data["u"]), None if prev is None else int(prev),
                                  levels, n_bids, ts_exch, ts_local_us, self._line_no):
                    return self._book_event(ts_local_us)
                return []
            if event in ("trade", "aggTrade"):
                if event != self.trade_stream:
                    self._count(self.ignored, f"{event} messages")
                    return []
                if not self._symbol_ok(str(data["s"])):
                    return []
                if data.get("X", "MARKET") != "MARKET":
                    self._count(self.dropped, f"non-market trades (X = {data['X']})")
                    return []
                maker = data["m"]
                if type(maker) is not bool:
                    raise ValueError(f"`m` must be true or false, got {maker!r}")
                price, amount = float(data["p"]), float(data["q"])
                if not (np.isfinite(price) and price > 0 and np.isfinite(amount) and amount > 0):
                    self._count(self.dropped, "trades with a non-finite or non-positive price or amount")
                    return []
                return [TradeEvent(ts_local_us, price, amount, 1 - 2 * maker, int(data["T"]) * 1000)]
            if event is None and "lastUpdateId" in data and "bids" in data and "asks" in data:
                levels, n_bids = parse_levels(data["bids"], data["asks"])
                if self.sync.snapshot(int(data["lastUpdateId"]), levels, n_bids, ts_local_us, self._line_no):
                    return self._book_event(ts_local_us)
                return []
            self._count(self.ignored, stream or (f"e={event}" if event else "other messages"))
            return []
        except KeyError as exc:
            raise TapeError(f"binance message {self._line_no}: no field `{exc.args[0]}`") from None
        except (TypeError, ValueError) as exc:
            raise TapeError(f"binance message {self._line_no}: {exc}") from None

    def _book_event(self, ts_local_us: int) -> list:
        top = self.sync.book.top(self.levels)           # (4, L): bid_px, bid_sz, ask_px, ask_sz
        if not (np.isfinite(top[0, 0]) and np.isfinite(top[2, 0])):
            self._count(self.dropped, "books with an empty side")
            return []
        if top[0, 0] >= top[2, 0]:
            self._count(self.dropped, "crossed or locked books")
            return []
        return [BookEvent(ts_local_us, top, self.sync.last_ts_exch_us)]

    def events_from_file(self, path: PathLike) -> Iterator:
        """Every event of a recording file, in the file's order (line by line, as if live)."""
        path = Path(path)
        for msg in iter_messages(path):
            self._line_no = msg.line_no
            yield from self.decode(msg.data, msg.ts_local_ns // 1000, msg.stream)
