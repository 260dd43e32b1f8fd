"""Plain-Python reference of the tape replay and the signal accumulator (test-only, slow).

This file is the specification the compiled engine (``clusterlob/_kernels/replay.pxi``,
``accumulator.pxi``) is tested against: the same rules, written as obviously as possible,
with the quote rule taken from :func:`clusterlob.replay.strategy.decide_quotes` (one definition).
Benchmarks load it by path (``tools/bench_replay.py``).
"""
from __future__ import annotations

import math

from clusterlob.replay.strategy import GRID_TOLERANCE_TICKS, StrategyConfig, decide_quotes


class ReferenceAccumulator:
    """Decayed alpha / hazard flow sums in units of `scale` EW mean trade sizes."""

    def __init__(self, half_life_s=10.0, size_weight=0.001, signal_scale_trades=50.0,
                 alpha_role=0, hazard_role=1):
        self.decay_per_us = math.log(2.0) / (half_life_s * 1e6)
        self.size_weight = size_weight
        self.scale = signal_scale_trades
        self.alpha_role, self.hazard_role = alpha_role, hazard_role
        self.alpha_sum = self.hazard_sum = self.mean_size = 0.0
        self.last_ts_us = None

    def update(self, ts_us, side, amount, role):
        if side == 0:
            return
        if self.last_ts_us is None:
            self.last_ts_us, self.mean_size = ts_us, amount
        else:
            if ts_us > self.last_ts_us:
                f = math.exp(-self.decay_per_us * float(ts_us - self.last_ts_us))
                self.alpha_sum = self.alpha_sum * f
                self.hazard_sum = self.hazard_sum * f
                self.last_ts_us = ts_us
            self.mean_size = self.mean_size + self.size_weight * (amount - self.mean_size)
        if role >= 0 and role == self.alpha_role:
            self.alpha_sum = self.alpha_sum + (1.0 if side > 0 else -1.0) * amount
        if role >= 0 and role == self.hazard_role:       # a role may feed both
            self.hazard_sum = self.hazard_sum + amount

    def _value(self, total, ts_us):
        if self.last_ts_us is None or self.mean_size <= 0.0:
            return 0.0
        f = 1.0
        if ts_us > self.last_ts_us:
            f = math.exp(-self.decay_per_us * float(ts_us - self.last_ts_us))
        return (total * f) / (self.mean_size * self.scale)

    def alpha(self, ts_us):
        return self._value(self.alpha_sum, ts_us)

    def hazard(self, ts_us):
        return self._value(self.hazard_sum, ts_us)


def merged_events(trade_ts, book_ts):
    """(time, kind, index) in local-time order, a trade before a book update at equal time."""
    events = [(int(t), 0, i) for i, t in enumerate(trade_ts)] + [(int(t), 1, j) for j, t in enumerate(book_ts)]
    events.sort()          # by time, then trade (0) before book (1), then original position
    return events


def reference_replay(trade_ts, trade_price, trade_amount, trade_side, roles, book_ts, book_bid,
                     book_ask, tick, config: StrategyConfig, mark_interval_us=60_000_000):
    """Replay with the engine's rules; returns a dict of fills, accounts, counters and marks."""
    acc = ReferenceAccumulator(config.half_life_s, config.size_weight, config.signal_scale_trades,
                               config.alpha_code, config.hazard_code)
    touch = config.fill_mode == "touch"
    cash = inventory = fees = capture = drift = volume = 0.0
    mid = best_bid = best_ask = math.nan
    live = {"bid": (0, 0.0), "ask": (0, 0.0)}          # (price in ticks, remaining size)
    pending = None                                      # (time it goes live, bid, ask)
    last_decision = None
    fills, marks = [], []
    counters = {"posts_rejected": 0, "inventory_limited": 0, "quote_decisions": 0}
    events = merged_events(trade_ts, book_ts)
    next_mark = (events[0][0] // mark_interval_us + 1) * mark_interval_us if events else 0
    for t, kind, i in events:
        while t >= next_mark:                           # state just before this event
            marks.append((next_mark, cash + inventory * (0.0 if math.isnan(mid) else mid)))
            next_mark += mark_interval_us
        if pending is not None and t >= pending[0]:     # the replacement arrives
            live = {"bid": pending[1], "ask": pending[2]}
            pending = None
        if kind == 0:
            side, amount = int(trade_side[i]), float(trade_amount[i])
            price_ticks = float(trade_price[i]) / tick
            fill = None
            # how far the trade went through our quote, in ticks (> 0: beyond it)
            if side > 0 and live["ask"][1] > 0.0:
                ask, size = live["ask"]
                through = price_ticks - ask
                hit = through >= -GRID_TOLERANCE_TICKS if touch else through > GRID_TOLERANCE_TICKS
                if hit:
                    q = min(amount, size)
                    px = ask * tick
                    live["ask"] = (ask, size - q)
                    inventory -= q
                    cash += q * px
                    capture += q * (px - mid)
                    fill = (-1, px, q)
            elif side < 0 and live["bid"][1] > 0.0:
                bid, size = live["bid"]
                through = -(price_ticks - bid)
                hit = through >= -GRID_TOLERANCE_TICKS if touch else through > GRID_TOLERANCE_TICKS
                if hit:
                    q = min(amount, size)
                    px = bid * tick
                    live["bid"] = (bid, size - q)
                    inventory += q
                    cash -= q * px
                    capture += q * (mid - px)
                    fill = (1, px, q)
            if fill is not None:
                our_side, px, q = fill
                fee = q * px * config.maker_fee_bps * 1e-4
                cash -= fee
                fees += fee
                volume += q
                fills.append((i, t, our_side, px, q, mid, fee, inventory, cash))
            acc.update(t, side, amount, int(roles[i]))
        else:
            new_mid = 0.5 * (float(book_bid[i]) + float(book_ask[i]))
            if not math.isnan(mid):
                drift += inventory * (new_mid - mid)
            mid, best_bid, best_ask = new_mid, float(book_bid[i]), float(book_ask[i])
        if not math.isnan(mid) and (last_decision is None or t - last_decision >= config.requote_interval_us):
            d = decide_quotes(mid, acc.alpha(t), acc.hazard(t), inventory, tick, config, best_bid, best_ask)
            counters["quote_decisions"] += 1
            for reason in (d.bid_reason, d.ask_reason):
                if reason == "post_only":
                    counters["posts_rejected"] += 1
                elif reason == "inventory_limit":
                    counters["inventory_limited"] += 1
            pending = (t + config.order_latency_us,
                       (d.bid_ticks, config.quote_size) if d.bid_ticks is not None else (0, 0.0),
                       (d.ask_ticks, config.quote_size) if d.ask_ticks is not None else (0, 0.0))
            last_decision = t
    return {"fills": fills, "cash": cash, "inventory": inventory, "fees": fees,
            "spread_capture": capture, "inventory_drift": drift, "volume": volume,
            "marks": marks, **counters}
