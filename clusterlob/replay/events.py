"""The events the online engine and the simulated gateway exchange: a trade, a book update,
an order action, and a tape's events in the replay's order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, NamedTuple

import numpy as np

from .. import _core

if TYPE_CHECKING:
    from ..tape.types import Tape

__all__ = ["BookEvent", "OrderAction", "TradeEvent", "merged_order", "tape_events"]

#: An order action of the engine: ``kind`` "place"/"cancel", ``side``, ``order_id``, ``price``, ``size``.
OrderAction = _core.OrderAction


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


def tape_events(tape: Tape) -> Iterator:
    """The events of a tape in the replay's order (local time; a trade first at equal time)."""
    levels = np.stack([tape.book.bid_px, tape.book.bid_sz, tape.book.ask_px, tape.book.ask_sz], axis=1)
    for kind, i in merged_order(tape.trades.ts_local_us, tape.book.ts_local_us):
        if kind == 0:
            t = tape.trades
            yield TradeEvent(int(t.ts_local_us[i]), float(t.price[i]), float(t.amount[i]),
                             int(t.side[i]), int(t.ts_exch_us[i]))
        else:
            yield BookEvent(int(tape.book.ts_local_us[i]), levels[i], int(tape.book.ts_exch_us[i]))


def merged_order(trade_ts: np.ndarray, book_ts: np.ndarray) -> Iterator[tuple[int, int]]:
    """(kind, index) pairs: kind 0 trade, 1 book; by time, trades first at equal time."""
    ts = np.concatenate([trade_ts, book_ts])
    kind = np.concatenate([np.zeros(len(trade_ts), np.int8), np.ones(len(book_ts), np.int8)])
    index = np.concatenate([np.arange(len(trade_ts)), np.arange(len(book_ts))])
    order = np.lexsort((index, kind, ts))
    return zip(kind[order].tolist(), index[order].tolist())
