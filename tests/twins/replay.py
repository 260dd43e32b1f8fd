"""Plain-Python reference of the tape replay and the signal accumulator (test-only, slow).

This file is the specification the compiled engine (``clusterlob/_kernels/replay.pxi``,
``accumulator.pxi``) is tested against: the same rules, written as obviously as possible,
with the quote rule taken from :func:`clusterlob.replay.strategy.decide_quotes` (one definition).
Benchmarks load it by path (``tools/bench_replay.py``).

The rules (docs/replay.md):

* Events in local-time order, a trade before a book update at equal time.
* Before an event, its time's clock work, in time order: equity marks (state before the event),
  funding payments (mark first at equal time), then exchange work: cancels and places of
  our orders reaching the exchange (a cancel first at equal time), responses reaching the
  strategy (after the exchange work at equal time).
* A place reaching the exchange is rejected if post-only would cross the book then; else it
  rests, with the displayed size at its price ahead of it (queue model).
* A trade fills our orders on the side it consumes, the older order first, by the fill model;
  a book update moves the queue ahead of our orders by the queue rule and fills any order the
  opposite best price has reached (book-through), then moves the mid.
* A decision (requote interval passed, every response to the last decision received, mid
  known) cancels each side's current order (unless it has heard that order filled
  completely) and places the new one; with quote_updates "changes" an order it has heard no
  fill of, at the decided price, is kept.
"""
from __future__ import annotations

import math

from clusterlob.replay.strategy import GRID_TOLERANCE_TICKS, SIZE_TOLERANCE, StrategyConfig, decide_quotes

TOL = GRID_TOLERANCE_TICKS
REASONS = ("queue", "touch", "trade_through", "book_through")


class ReferenceAccumulator:
    """Decayed alpha / hazard flow sums, as shares of the decayed total flow ("flow") or in
    units of `scale` EW mean trade sizes ("trades")."""

    def __init__(self, half_life_s=10.0, size_weight=0.001, signal_scale_trades=50.0,
                 alpha_role=0, hazard_role=1, signal_norm="flow"):
        self.decay_per_us = math.log(2.0) / (half_life_s * 1e6)
        self.size_weight = size_weight
        self.scale = signal_scale_trades
        self.norm = signal_norm
        self.alpha_role, self.hazard_role = alpha_role, hazard_role
        self.alpha_sum = self.hazard_sum = self.total_sum = self.mean_size = 0.0
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
                self.total_sum = self.total_sum * f
                self.last_ts_us = ts_us
            self.mean_size = self.mean_size + self.size_weight * (amount - self.mean_size)
        if role >= 0 and role == self.alpha_role:
            self.alpha_sum = self.alpha_sum + (1.0 if side > 0 else -1.0) * amount
        if role >= 0 and role == self.hazard_role:       # a role may feed both
            self.hazard_sum = self.hazard_sum + amount
        self.total_sum = self.total_sum + amount

    def _value(self, total, ts_us):
        if self.last_ts_us is None or self.mean_size <= 0.0:
            return 0.0
        if self.norm == "flow":
            return total / self.total_sum if self.total_sum > 0.0 else 0.0
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


class Order:
    """One of our orders as the exchange sees it."""

    def __init__(self, side, ticks, size, arrive_us, seq):
        self.side = side            # "bid" / "ask"
        self.ticks = ticks
        self.size = size            # remaining
        self.arrive_us = arrive_us  # the place reaches the exchange
        self.cancel_us = None       # our cancel reaches the exchange
        self.live = False
        self.queue = math.inf       # displayed size ahead of us (inf: never seen)
        self.shown = math.nan       # displayed size at our price at the last book update
        self.traded = 0.0           # traded at our price since then
        self.seq = seq              # send order: older first
        self.known_done = False
        self.known_touched = False


def level_size(prices, sizes, ticks, tick, side):
    """Displayed size at our price: 0 when we are inside the spread or in a gap between
    levels, NaN beyond the deepest level shown."""
    for px, sz in zip(prices, sizes):
        if math.isnan(px):
            return math.nan
        better = (px / tick - ticks) if side == "bid" else (ticks - px / tick)
        if better < -TOL:
            return 0.0
        if better <= TOL:
            return float(sz)
    return math.nan


def queue_probability(rule, n, front, back):
    """Probability a decrease came from behind us: f(back) / (f(front) + f(back))."""
    f = (lambda x: max(x, 0.0) ** n) if rule == "power" else (lambda x: math.log1p(max(x, 0.0)) ** n)
    a, b = f(front), f(back)
    return 1.0 if a + b <= 0.0 else b / (a + b)


def reference_replay(trade_ts, trade_price, trade_amount, trade_side, roles, book_ts, book_bid,
                     book_ask, tick, config: StrategyConfig, mark_interval_us=60_000_000,
                     book_bid_sz=None, book_ask_sz=None, funding=(), order_latency=None,
                     trade_exch=None, book_exch=None, contract_size=None, inverse=False):
    """Replay with the engine's rules; returns a dict of fills, accounts, counters and marks.

    book_bid / book_ask (and the sizes) are sequences of rows of levels, best first, or of
    plain touch prices; funding a sequence of (time us, rate); order_latency an OrderLatency
    (entry = cancel and response latency of a request at t: order_latency.at(t)); trade_exch /
    book_exch the events' exchange times on the local clock (feed latency from data: the
    exchange does its work at those times, the strategy at the local ones).  contract_size /
    inverse: the instrument's contract; an inverse one keeps the accounts in the coin."""
    unit = 1.0 if contract_size is None else float(contract_size)     # what one amount unit is

    def value(price):
        """What the accounts book one amount unit at ``price`` at: its quote-currency value
        (linear), or minus its value in coins (inverse: a long gains as 1/price falls)."""
        return -unit / price if inverse else price * unit

    def notional(price):
        """Notional of one amount unit in the settlement currency (fees, funding)."""
        return unit / price if inverse else price * unit

    def rows(a):
        return [list(r) if hasattr(r, "__len__") else [r] for r in a]
    bid_px, ask_px = rows(book_bid), rows(book_ask)
    bid_sz = rows(book_bid_sz) if book_bid_sz is not None else [[math.nan] * len(r) for r in bid_px]
    ask_sz = rows(book_ask_sz) if book_ask_sz is not None else [[math.nan] * len(r) for r in ask_px]
    acc = ReferenceAccumulator(config.half_life_s, config.size_weight, config.signal_scale_trades,
                               config.alpha_code, config.hazard_code, config.signal_norm)
    model, rule = config.fill_model, config.queue_rule
    whole = config.fill_size == "whole"        # an order that fills, fills whole
    acct = {"cash": 0.0, "inventory": 0.0, "fees": 0.0, "funding": 0.0, "spread_capture": 0.0,
            "inventory_drift": 0.0, "volume": 0.0}
    mid = best_bid = best_ask = math.nan
    last_book = None
    orders = []                         # every order not yet finished, oldest first
    current = {"bid": None, "ask": None}
    responses = []                      # (time it reaches the strategy, d_inventory, side, d_outstanding)
    known = {"inventory": 0.0, "bid": 0.0, "ask": 0.0}
    next_decision = None
    seq = 0
    fills, marks = [], []
    counters = {"posts_rejected": 0, "inventory_limited": 0, "quote_decisions": 0,
                "rejected_on_arrival": 0, "cancels": 0, "cancels_late": 0,
                **{r: 0 for r in REASONS}}
    funding = sorted(((int(t), float(r)) for t, r in funding), key=lambda f: f[0])   # stable
    events = merged_events(trade_ts, book_ts)
    next_mark = (events[0][0] // mark_interval_us + 1) * mark_interval_us if events else 0

    def respond(at, *news):
        """A response reaches the strategy at `at`, but never before an earlier one."""
        if responses and at < responses[-1][0]:
            at = responses[-1][0]
        responses.append((at, *news))

    def fill(o, q, t, x, reason, index, queue_before):
        px = o.ticks * tick
        o.size -= q
        if o.size <= SIZE_TOLERANCE:
            o.size = 0.0
        if o.side == "ask":
            acct["inventory"] -= q
            acct["cash"] += q * value(px)
            acct["spread_capture"] += q * (value(px) - value(mid))
        else:
            acct["inventory"] += q
            acct["cash"] -= q * value(px)
            acct["spread_capture"] += q * (value(mid) - value(px))
        fee = q * notional(px) * config.maker_fee_bps * 1e-4
        acct["cash"] -= fee
        acct["fees"] += fee
        acct["volume"] += q
        respond(x + o.response_us, q if o.side == "bid" else -q, o.side, -q, o, o.size <= 0.0)
        fills.append((index, t, 1 if o.side == "bid" else -1, px, q, mid, fee, acct["inventory"],
                      acct["cash"], REASONS.index(reason), queue_before if math.isfinite(queue_before) else math.nan))
        counters[reason] += 1
        return q

    def exchange_work(t, x):
        """Cancels and places due at the exchange by x, responses due at the strategy by t, in
        time order."""
        while True:
            due = []
            for o in orders:
                if o.cancel_us is not None:
                    due.append((o.cancel_us, 0, o.seq, o))
                if not o.live:
                    due.append((o.arrive_us, 1, o.seq, o))
            due = [d for d in due if d[0] <= x]
            if responses and responses[0][0] <= t:
                due.append((responses[0][0], 2, 0, None))
            if not due:
                return
            at, kind, _, o = min(due, key=lambda d: (d[0], d[1], d[2]))
            if kind == 2:
                _, d_inv, side, d_out, filled, done = responses.pop(0)
                if filled is not None:
                    filled.known_touched = True     # the strategy heard of a fill of it
                    filled.known_done |= done       # ... that finished it
                known["inventory"] += d_inv
                known[side] += d_out
                if known[side] < SIZE_TOLERANCE:
                    known[side] = 0.0
            elif kind == 0:                 # our cancel arrives
                if o.size > 0.0:
                    counters["cancels"] += 1
                    respond(at + o.response_us, 0.0, o.side, -o.size, None, False)
                else:
                    counters["cancels_late"] += 1
                orders.remove(o)
            else:                           # our place arrives
                crosses = (o.ticks >= best_ask / tick - TOL) if o.side == "bid" else (o.ticks <= best_bid / tick + TOL)
                if crosses:
                    counters["rejected_on_arrival"] += 1
                    respond(at + o.response_us, 0.0, o.side, -o.size, None, False)
                    orders.remove(o)
                    continue
                o.live = True
                if model == "queue" and last_book is not None:
                    px, sz = (bid_px, bid_sz) if o.side == "bid" else (ask_px, ask_sz)
                    shown = level_size(px[last_book], sz[last_book], o.ticks, tick, o.side)
                    o.shown = shown
                    o.queue = math.inf if math.isnan(shown) else shown

    for t, kind, i in events:
        while True:                     # marks and funding, in time order (mark first)
            f_next = funding[0][0] if funding else math.inf
            if t < next_mark and t < f_next:
                break
            if next_mark <= f_next:
                marks.append((next_mark, acct["cash"] + acct["inventory"] * (0.0 if math.isnan(mid) else value(mid))))
                next_mark += mark_interval_us
            else:
                _, rate = funding.pop(0)
                if not math.isnan(mid):
                    pay = acct["inventory"] * notional(mid) * rate
                    acct["cash"] -= pay
                    acct["funding"] += pay
        if trade_exch is not None:
            x = int((trade_exch if kind == 0 else book_exch)[i])
        else:
            x = t
        exchange_work(t, x)
        if kind == 0:
            side, amount = int(trade_side[i]), float(trade_amount[i])
            if side != 0:
                consumed = "ask" if side > 0 else "bid"
                left = amount
                for o in sorted([o for o in orders if o.side == consumed and o.live and o.size > 0.0],
                                key=lambda o: o.seq):
                    beyond = side * (float(trade_price[i]) / tick - o.ticks)
                    if beyond < -TOL:
                        continue                # the trade did not reach our price
                    queue_before = o.queue
                    if model == "queue":
                        if beyond > TOL:        # through our price: filled in full
                            fill(o, o.size, t, x, "trade_through", i, queue_before)
                        else:                   # at our price: what exceeds the queue ahead
                            o.traded += amount
                            excess = amount - o.queue
                            if excess > 0.0:
                                o.queue = 0.0
                                q = o.size if whole else min(excess, o.size, left)
                                if q > 0.0:
                                    left -= fill(o, q, t, x, "queue", i, queue_before)
                            else:
                                o.queue = -excess
                    elif beyond > TOL or model == "touch":
                        q = o.size if whole else min(o.size, left)
                        if q > 0.0:
                            left -= fill(o, q, t, x, "trade_through" if beyond > TOL else "touch", i, queue_before)
                acc.update(t, side, amount, int(roles[i]))
        else:
            for o in sorted([o for o in orders if o.live and o.size > 0.0],
                            key=lambda o: (o.side != "bid", o.seq)):
                if model == "queue":
                    px, sz = (bid_px, bid_sz) if o.side == "bid" else (ask_px, ask_sz)
                    shown = level_size(px[i], sz[i], o.ticks, tick, o.side)
                    if not math.isnan(shown):
                        if rule == "risk_averse" or math.isnan(o.shown):
                            o.queue = min(o.queue, shown)
                        else:
                            unexplained = o.shown - shown - o.traded
                            if unexplained <= 0.0:
                                o.queue = min(o.queue, shown)
                            else:
                                front, back = o.queue, o.shown - o.queue
                                p = queue_probability(rule, config.queue_power, front, back)
                                est = front - (1.0 - p) * unexplained + min(back - p * unexplained, 0.0)
                                o.queue = max(min(est, shown), 0.0)
                        o.shown = shown
                        o.traded = 0.0
                reached = (o.ticks >= ask_px[i][0] / tick - TOL) if o.side == "bid" else (o.ticks <= bid_px[i][0] / tick + TOL)
                if reached:
                    fill(o, o.size, t, x, "book_through", -1, o.queue)
            new_mid = 0.5 * (float(bid_px[i][0]) + float(ask_px[i][0]))
            if not math.isnan(mid):
                acct["inventory_drift"] += acct["inventory"] * (value(new_mid) - value(mid))
            mid, best_bid, best_ask = new_mid, float(bid_px[i][0]), float(ask_px[i][0])
            last_book = i
        busy = trade_exch is not None and any(not o.live or o.cancel_us is not None for o in orders)
        if not math.isnan(mid) and (next_decision is None or t >= next_decision) and not busy:
            d = decide_quotes(mid, acc.alpha(t), acc.hazard(t), known["inventory"], tick, config,
                              best_bid, best_ask, known["bid"], known["ask"])
            counters["quote_decisions"] += 1
            for reason in (d.bid_reason, d.ask_reason):
                if reason == "post_only":
                    counters["posts_rejected"] += 1
                elif reason == "inventory_limit":
                    counters["inventory_limited"] += 1
            last_response = t
            if order_latency is None:
                entry, cancel, response = (config.order_latency_us, config.cancel_latency_us,
                                           config.response_latency_us)
            else:
                entry, response = order_latency.at(t)
                cancel = entry
            for side, ticks, size in (("bid", d.bid_ticks, d.bid_size), ("ask", d.ask_ticks, d.ask_size)):
                cur = current[side]
                if (config.quote_updates == "changes" and cur is not None and cur in orders
                        and cur.cancel_us is None and not cur.known_touched and ticks == cur.ticks):
                    continue                    # the same quote works already: keep it
                if cur is not None and cur in orders and cur.cancel_us is None and cur.known_done:
                    orders.remove(cur)          # known to be filled: nothing to cancel
                elif cur is not None and cur in orders and cur.cancel_us is None:
                    cur.cancel_us = t + cancel
                    cur.response_us = response
                    last_response = max(last_response, cur.cancel_us + response)
                if ticks is not None:
                    seq += 1
                    o = Order(side, ticks, size, t + entry, seq)
                    o.response_us = response
                    orders.append(o)
                    current[side] = o
                    known[side] += size
                    last_response = max(last_response, o.arrive_us + response)
            next_decision = max(t + config.requote_interval_us, last_response)
    return {"fills": fills, **acct, "marks": marks, **counters,
            "known_inventory": known["inventory"]}
