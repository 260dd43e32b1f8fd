# The tape replay engine: one pass over trades and book updates merged in local-time order.
#
# Rules (docs/replay.md; reference twin tests/reference_replay.py):
#   events are merged by local time, a trade before a book update at equal time;
#   every event first writes the equity marks whose time it has reached (state before the event),
#   then lets pending quotes whose latency has elapsed go live (replacing the live ones: the old
#   quotes stay live until the replacement arrives);
#   a trade then (a) is checked against the live quotes at its own price, (b) feeds the
#   accumulator; a book update refreshes the touch and mid and marks the position to the new mid;
#   finally, if requote_interval has passed since the last decision (and a mid is known), new quotes
#   are decided; they go live order_latency later.
# Constant work per event, no Python objects in the loop.  The kernel stops early when the fill or
# mark buffer is full; its state lives in the engine object, so Python calls run() again with
# fresh buffers (loop control stays in Python).

from libc.math cimport tanh, floor, ceil, fabs, NAN
from libc.stdint cimport int64_t, int8_t, uint8_t, INT64_MIN

cdef enum:
    _BID = 0
    _ASK = 1

cdef double _GRID_TOL = 1e-6        # == strategy.GRID_TOLERANCE_TICKS
cdef double _ROUND_GUARD = 1e-9     # == strategy.ROUNDING_GUARD_TICKS

# column order of the output buffers (clusterlob.replay names them)
FILL_FLOAT_COLUMNS = ("side", "price", "qty", "mid", "fee", "inventory", "cash")
MARK_FLOAT_COLUMNS = ("equity", "cash", "inventory", "mid", "spread_capture", "inventory_drift", "fees")


cdef struct QuoteParams:
    double tick
    double skew_ticks
    double theta
    int dynamic
    double min_half_ticks
    double half_spread_bps
    double hazard_k
    double hazard_threshold
    double quote_size
    double max_inventory
    double maker_fee_bps
    int64_t requote_us
    int64_t latency_us
    int64_t mark_interval_us
    int touch
    double to_alpha[256]        # by <uint8_t>role: 1.0 when that role feeds alpha (a table
    double to_hazard[256]       # lookup, not a branch: roles arrive in random order)


cdef struct ReplayState:
    Py_ssize_t i_trade
    Py_ssize_t i_book
    int64_t last_ts_us
    double best_bid
    double best_ask
    double mid
    int has_mid
    double cash
    double inventory
    double fees
    double capture
    double drift
    double volume
    double notional
    double max_abs_inventory
    int64_t live_ticks[2]       # [_BID], [_ASK]: price in ticks
    double live_size[2]         # remaining size; 0 = no live quote on that side
    int has_pending
    int64_t pending_at_us
    int64_t pending_ticks[2]
    double pending_size[2]
    int64_t next_decision_us    # INT64_MIN before the first decision: due at once
    int64_t next_wake_us        # min(next mark, pending arrival, next decision): below it an
                                # event needs no clock work at all
    AccState acc
    int64_t next_mark_us
    int64_t n_trades
    int64_t n_book
    int64_t n_fills
    int64_t n_decisions
    int64_t n_bids_placed
    int64_t n_asks_placed
    int64_t n_post_only
    int64_t n_inventory_limited


cdef inline void _decide(ReplayState* s, const QuoteParams* p, int64_t t) noexcept nogil:
    """The quote rule (strategy.decide_quotes in C); the result goes live at t + latency."""
    cdef double alpha, hazard
    acc_values(&s.acc, t, &alpha, &hazard)
    cdef double th = tanh(alpha)
    cdef double theta_eff = p.theta * (1.0 - fabs(th)) if p.dynamic else p.theta
    cdef double reservation = s.mid + p.skew_ticks * th * p.tick - theta_eff * s.inventory * p.tick
    cdef double excess = hazard - p.hazard_threshold
    if excess < 0.0:
        excess = 0.0
    cdef double widening = 1.0 + p.hazard_k * excess
    cdef double half = p.min_half_ticks * p.tick
    cdef double proportional = p.half_spread_bps * s.mid * 1e-4 * widening
    if proportional > half:
        half = proportional
    cdef int64_t bid = <int64_t>floor((reservation - half) / p.tick + _ROUND_GUARD)
    cdef int64_t ask = <int64_t>ceil((reservation + half) / p.tick - _ROUND_GUARD)
    s.pending_ticks[_BID] = bid
    s.pending_ticks[_ASK] = ask
    s.pending_size[_BID] = 0.0
    s.pending_size[_ASK] = 0.0
    if s.inventory >= p.max_inventory:
        s.n_inventory_limited += 1
    elif <double>bid >= s.best_ask / p.tick - _GRID_TOL:
        s.n_post_only += 1
    else:
        s.pending_size[_BID] = p.quote_size
        s.n_bids_placed += 1
    if s.inventory <= -p.max_inventory:
        s.n_inventory_limited += 1
    elif <double>ask <= s.best_bid / p.tick + _GRID_TOL:
        s.n_post_only += 1
    else:
        s.pending_size[_ASK] = p.quote_size
        s.n_asks_placed += 1
    s.has_pending = 1
    s.pending_at_us = t + p.latency_us
    s.next_decision_us = t + p.requote_us
    s.n_decisions += 1


cdef inline void _set_wake(ReplayState* s) noexcept nogil:
    s.next_wake_us = s.next_mark_us
    if s.has_pending and s.pending_at_us < s.next_wake_us:
        s.next_wake_us = s.pending_at_us
    if s.next_decision_us < s.next_wake_us:
        s.next_wake_us = s.next_decision_us


cdef class _ReplayEngine:
    """State and parameters of one replay; ``run`` advances it (private: use clusterlob.replay)."""

    cdef QuoteParams p
    cdef ReplayState s

    def __init__(self, double tick, double skew_ticks, double theta, bint dynamic,
                 double min_half_ticks, double half_spread_bps, double hazard_k,
                 double hazard_threshold, double quote_size, double max_inventory,
                 double maker_fee_bps, int64_t requote_us, int64_t latency_us, bint touch,
                 int alpha_role, int hazard_role, double decay_per_us, double size_weight,
                 double signal_scale_trades, int64_t first_mark_us, int64_t mark_interval_us):
        self.p.tick = tick
        self.p.skew_ticks = skew_ticks
        self.p.theta = theta
        self.p.dynamic = dynamic
        self.p.min_half_ticks = min_half_ticks
        self.p.half_spread_bps = half_spread_bps
        self.p.hazard_k = hazard_k
        self.p.hazard_threshold = hazard_threshold
        self.p.quote_size = quote_size
        self.p.max_inventory = max_inventory
        self.p.maker_fee_bps = maker_fee_bps
        self.p.requote_us = requote_us
        self.p.latency_us = latency_us
        self.p.mark_interval_us = mark_interval_us
        self.p.touch = touch
        cdef int r
        for r in range(256):
            self.p.to_alpha[r] = acc_weight(<int8_t><uint8_t>r, acc_role_key(alpha_role))
            self.p.to_hazard[r] = acc_weight(<int8_t><uint8_t>r, acc_role_key(hazard_role))
        # every other field of the state starts at zero
        self.s.best_bid = NAN
        self.s.best_ask = NAN
        self.s.next_mark_us = first_mark_us
        self.s.next_decision_us = INT64_MIN
        _set_wake(&self.s)
        acc_init(&self.s.acc, decay_per_us, size_weight, signal_scale_trades)

    def run(self,
            const int64_t[::1] trade_ts_us, const double[::1] trade_price,
            const double[::1] trade_amount, const int8_t[::1] trade_side,
            const int8_t[::1] trade_role,
            const int64_t[::1] book_ts_us, const double[::1] book_bid, const double[::1] book_ask,
            int64_t[:, ::1] fill_ints, double[:, ::1] fill_floats,
            int64_t[::1] mark_ts_us, double[:, ::1] mark_floats):
        """Advance until the events end or an output buffer is full.

        IN: trades (n_trades,) and book touch (n_book,), validated and sorted by local time.
        OUT: fill_ints (cap, 2) [trade index, time us], fill_floats (cap, 7) FILL_FLOAT_COLUMNS;
        mark_ts_us (mcap,), mark_floats (mcap, 7) MARK_FLOAT_COLUMNS.
        Returns (fills written, marks written, finished).
        """
        cdef ReplayState s = self.s
        cdef QuoteParams p = self.p
        cdef Py_ssize_t nt = trade_ts_us.shape[0], nb = book_ts_us.shape[0]
        cdef Py_ssize_t fcap = fill_ints.shape[0], mcap = mark_ts_us.shape[0]
        cdef Py_ssize_t nf = 0, nm = 0, i
        cdef int is_trade, wake, full = 0
        cdef int8_t side
        cdef int64_t t
        cdef double q, px, fee, new_mid, sign, size, edge
        cdef int64_t quote_ticks
        cdef int k
        with nogil:
            while s.i_trade < nt or s.i_book < nb:
                if nf >= fcap:
                    break
                is_trade = s.i_book >= nb or (s.i_trade < nt and trade_ts_us[s.i_trade] <= book_ts_us[s.i_book])
                t = trade_ts_us[s.i_trade] if is_trade else book_ts_us[s.i_book]
                wake = t >= s.next_wake_us
                if wake:
                    # equity marks this event has reached: the state before it
                    while t >= s.next_mark_us:
                        if nm >= mcap:
                            full = 1
                            break
                        mark_ts_us[nm] = s.next_mark_us
                        mark_floats[nm, 0] = s.cash + s.inventory * s.mid
                        mark_floats[nm, 1] = s.cash
                        mark_floats[nm, 2] = s.inventory
                        mark_floats[nm, 3] = s.mid if s.has_mid else NAN
                        mark_floats[nm, 4] = s.capture
                        mark_floats[nm, 5] = s.drift
                        mark_floats[nm, 6] = s.fees
                        nm += 1
                        s.next_mark_us += p.mark_interval_us
                    if full:
                        break
                    # (1) quotes whose latency has elapsed replace the live ones
                    if s.has_pending and t >= s.pending_at_us:
                        s.live_ticks[_BID] = s.pending_ticks[_BID]
                        s.live_ticks[_ASK] = s.pending_ticks[_ASK]
                        s.live_size[_BID] = s.pending_size[_BID]
                        s.live_size[_ASK] = s.pending_size[_ASK]
                        s.has_pending = 0
                s.last_ts_us = t
                if is_trade:
                    i = s.i_trade
                    side = trade_side[i]
                    q = 0.0
                    if side != 0:
                        # (2) fill check at the trade's own price against the quote on the side
                        # the taker consumes (indexed, not branched on: sides arrive at random)
                        sign = <double>side
                        k = (side + 1) >> 1             # -1 -> _BID, +1 -> _ASK
                        quote_ticks = s.live_ticks[k]
                        size = s.live_size[k]
                        if size > 0.0:
                            edge = sign * (trade_price[i] / p.tick - <double>quote_ticks)
                            if (edge >= -_GRID_TOL) if p.touch else (edge > _GRID_TOL):
                                q = trade_amount[i]
                                if size < q:
                                    q = size
                                px = <double>quote_ticks * p.tick
                                s.live_size[k] = size - q
                                if side > 0:        # a buy taker lifts our ask: we sell
                                    s.inventory = s.inventory - q
                                    s.cash = s.cash + q * px
                                    s.capture = s.capture + q * (px - s.mid)
                                else:               # a sell taker hits our bid: we buy
                                    s.inventory = s.inventory + q
                                    s.cash = s.cash - q * px
                                    s.capture = s.capture + q * (s.mid - px)
                        # (3) the accumulator takes the trade
                        acc_add(&s.acc, t, sign, trade_amount[i],
                                p.to_alpha[<uint8_t>trade_role[i]],
                                p.to_hazard[<uint8_t>trade_role[i]])
                    if q > 0.0:
                        fee = q * px * p.maker_fee_bps * 1e-4
                        s.cash = s.cash - fee
                        s.fees = s.fees + fee
                        s.volume = s.volume + q
                        s.notional = s.notional + q * px
                        if fabs(s.inventory) > s.max_abs_inventory:
                            s.max_abs_inventory = fabs(s.inventory)
                        fill_ints[nf, 0] = i
                        fill_ints[nf, 1] = t
                        fill_floats[nf, 0] = -1.0 if side > 0 else 1.0
                        fill_floats[nf, 1] = px
                        fill_floats[nf, 2] = q
                        fill_floats[nf, 3] = s.mid
                        fill_floats[nf, 4] = fee
                        fill_floats[nf, 5] = s.inventory
                        fill_floats[nf, 6] = s.cash
                        nf += 1
                        s.n_fills += 1
                    s.n_trades += 1
                    s.i_trade += 1
                else:
                    i = s.i_book
                    new_mid = 0.5 * (book_bid[i] + book_ask[i])
                    if s.has_mid:
                        s.drift = s.drift + s.inventory * (new_mid - s.mid)
                    s.mid = new_mid
                    s.best_bid = book_bid[i]
                    s.best_ask = book_ask[i]
                    s.has_mid = 1
                    s.n_book += 1
                    s.i_book += 1
                # (4) requote clock
                if wake:
                    if s.has_mid and t >= s.next_decision_us:
                        _decide(&s, &p, t)
                    _set_wake(&s)
        self.s = s
        return nf, nm, not (s.i_trade < nt or s.i_book < nb)

    def next_input(self):
        """Read the next input arrays from their first row (the next day of the same replay,
        after ``run`` returned finished on this one): the state carries over, only the read
        positions restart.  Fill rows then index the new arrays."""
        self.s.i_trade = 0
        self.s.i_book = 0

    def snapshot(self):
        """The state's accounts and counters as a dict of Python numbers."""
        s = self.s
        return {
            "last_ts_us": s.last_ts_us, "mid": s.mid if s.has_mid else float("nan"),
            "cash": s.cash, "inventory": s.inventory, "fees": s.fees,
            "spread_capture": s.capture, "inventory_drift": s.drift,
            "volume": s.volume, "notional": s.notional, "max_abs_inventory": s.max_abs_inventory,
            "trades": s.n_trades, "book_updates": s.n_book, "fills": s.n_fills,
            "quote_decisions": s.n_decisions, "bids_placed": s.n_bids_placed,
            "asks_placed": s.n_asks_placed, "posts_rejected": s.n_post_only,
            "inventory_limited": s.n_inventory_limited,
        }
