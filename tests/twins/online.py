"""Plain-Python twin of the online engine's per-trade work (``_kernels/online.pxi``): features,
rolling z-scores and labels, one event at a time.

Written from the definitions in ``docs/features.md`` and ``docs/online.md``, not from the
kernels nor the whole-array twins in :mod:`twins.features`: the current book is a few Python
values, each feature's window a ``deque`` of its last W finite values, the statistics
``math.fsum`` sums, the label the nearest centre by a loop.  Slow on purpose.

Event order is part of the specification: events go in local time; at equal times a trade
sees the book strictly before it (``asof="strict"``: trades first) or at or before it
(``asof="at_or_before"``: books first).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

_ZERO_STD_REL = 1e-12


def _same(a: float, b: float) -> bool:
    """Equal prices, a missing price (NaN) equal to another missing one."""
    return a == b or (a != a and b != b)


def _ticks(x: float) -> float:
    """A spread within 1e-6 of a whole number of ticks is that number (rounding noise)."""
    r = round(x)
    return float(r) if abs(x - r) < 1e-6 else x


class OnlineTwin:
    """Features, z-scores, cluster and role of each trade, fed one event at a time.

    Parameters
    ----------
    model : ClusterModel
        Its ``settings`` (levels, window, z_clip, convention) and centres / roles are used.
    tick_size : float
    """

    def __init__(self, model, tick_size: float):
        s = model.settings
        self.levels, self.window, self.z_clip = s.levels, s.window, s.z_clip
        self.aggressor = s.convention == "aggressor"
        self.centers = [list(map(float, c)) for c in model.centers_z]
        self.roles = [int(r) for r in model.roles]
        self.tick_size = float(tick_size)
        self.book = None                       # (bid0, ask0, bid sizes, ask sizes) of the last snapshot
        self.t_mid = self.t_bid = self.t_ask = None
        self.windows = [deque(maxlen=self.window) for _ in range(6)]

    def on_book(self, ts_us: int, bid_px, bid_sz, ask_px, ask_sz) -> None:
        bid0, ask0 = float(bid_px[0]), float(ask_px[0])
        if self.book is not None:
            old_bid, old_ask = self.book[0], self.book[1]
            if not _same(0.5 * (bid0 + ask0), 0.5 * (old_bid + old_ask)):
                self.t_mid = ts_us
            if not _same(bid0, old_bid):
                self.t_bid = ts_us
            if not _same(ask0, old_ask):
                self.t_ask = ts_us
        self.book = (bid0, ask0, [float(x) for x in bid_sz], [float(x) for x in ask_sz])

    def _raw(self, ts_us: int, amount: float, side: int) -> list:
        bid0, ask0, bid_sz, ask_sz = self.book
        depth_bid = 0.0
        depth_ask = 0.0
        for lv in range(self.levels):          # a missing level counts 0
            if bid_sz[lv] == bid_sz[lv]:
                depth_bid += bid_sz[lv]
            if ask_sz[lv] == ask_sz[lv]:
                depth_ask += ask_sz[lv]
        if side > 0:                           # a buy taker consumes the asks
            consumed, other, t_side = depth_ask, depth_bid, self.t_ask
        else:
            consumed, other, t_side = depth_bid, depth_ask, self.t_bid
        if self.aggressor:
            consumed, other = other, consumed
        return [amount / (bid_sz[0] + ask_sz[0]),
                math.log1p(consumed), math.log1p(other),
                _ticks((ask0 - bid0) / self.tick_size),
                math.nan if self.t_mid is None else (ts_us - self.t_mid) * 1e-6,
                math.nan if t_side is None else (ts_us - t_side) * 1e-6]

    def _z(self, f: int, x: float) -> float:
        if not math.isfinite(x):
            return math.nan                    # does not enter the window
        w = self.windows[f]
        w.append(x)
        if len(w) < self.window:
            return math.nan                    # warm-up
        mean = math.fsum(w) / len(w)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in w) / (len(w) - 1))
        if std <= _ZERO_STD_REL * max(1.0, abs(mean)):
            return 0.0
        return min(max((x - mean) / std, -self.z_clip), self.z_clip)

    def on_trade(self, ts_us: int, amount: float, side: int):
        """``(raw, z, cluster, role)`` of the trade; None when it has no features (unknown
        side or no book yet)."""
        if side == 0 or self.book is None:
            return None
        raw = self._raw(ts_us, float(amount), int(side))
        z = [self._z(f, x) for f, x in enumerate(raw)]
        if not all(math.isfinite(v) for v in z):
            return raw, z, -1, -1
        best, best_d = -1, math.inf
        for j, c in enumerate(self.centers):   # ties go to the lowest index
            d = sum((a - b) ** 2 for a, b in zip(z, c))
            if d < best_d:
                best, best_d = j, d
        return raw, z, best, self.roles[best]


def online_twin(tape, model):
    """Run :class:`OnlineTwin` over a tape (local time).

    Returns ``raw`` and ``z`` (n_trades, 6) NaN where a trade has no features, and ``cluster``
    and ``role`` (n_trades,) int8, -1 where none; rows in the tape's trade order.
    """
    twin = OnlineTwin(model, tape.instrument.tick_size)
    trades, book = tape.trades, tape.book
    trades_first = model.settings.asof == "strict"
    # (time, kind order at equal time, row): kind 0 goes first
    events = [(int(t), 0 if trades_first else 1, "trade", i) for i, t in enumerate(trades.ts_local_us)]
    events += [(int(t), 1 if trades_first else 0, "book", i) for i, t in enumerate(book.ts_local_us)]
    events.sort(key=lambda e: (e[0], e[1], e[3]))
    n = len(trades)
    raw = np.full((n, 6), np.nan)
    z = np.full((n, 6), np.nan)
    cluster = np.full(n, -1, np.int8)
    role = np.full(n, -1, np.int8)
    for t, _, kind, i in events:
        if kind == "book":
            twin.on_book(t, book.bid_px[i], book.bid_sz[i], book.ask_px[i], book.ask_sz[i])
            continue
        out = twin.on_trade(t, trades.amount[i], trades.side[i])
        if out is not None:
            raw[i], z[i], cluster[i], role[i] = out
    return raw, z, cluster, role
