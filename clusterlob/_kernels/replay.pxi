# The tape replay engine: one pass over trades and book updates merged in local-time order, with
# a simulated exchange (orders in flight, queue position, post-only on arrival) between the
# strategy and the market.
#
# Rules (docs/replay.md; reference twin tests/reference_replay.py):
#   events are merged by local time, a trade before a book update at equal time;
#   every event first does the clock work its time has reached, in time order: equity marks
#   (state before the event), funding payments, arrivals at the exchange (a cancel before a place
#   at equal time; a place is rejected if post-only would cross the book then, else it joins the
#   back of the displayed size at its price), then responses reaching the strategy (fills, cancel
#   acks, rejects: the strategy's *known* position and outstanding size change only then);
#   a trade then (a) is checked against our live orders on the side it consumes, by the fill
#   model, (b) feeds the accumulator; a book update (a) moves the queue ahead of our orders by
#   the queue rule, (b) fills an order the opposite best price has reached (book-through), (c)
#   refreshes the touch and mid and marks the position to the new mid;
#   finally a quote decision is taken when requote_interval has passed since the last one, every
#   response to the last one's orders has arrived (with feed latency from data: and they have all
#   reached the exchange), and a mid is known: it cancels the current
#   order on each side and places the new one (size clipped so that no fill can pass the
#   inventory limit), order_latency / cancel_latency later at the exchange.
# Constant work per event, no Python objects in the loop.  The kernel stops early when the fill or
# mark buffer is full; its state lives in the engine object, so Python calls run() again with
# fresh buffers (loop control stays in Python).

from libc.math cimport tanh, floor, ceil, fabs, log1p, pow, NAN, INFINITY, isfinite
from libc.stdint cimport int64_t, int8_t, uint8_t, INT64_MIN, INT64_MAX

cdef enum:
    _BID = 0
    _ASK = 1
    _MODEL_CROSS = 0
    _MODEL_TOUCH = 1
    _MODEL_QUEUE = 2
    _RULE_RISK_AVERSE = 0
    _RULE_POWER = 1
    _RULE_LOG = 2
    _REASON_QUEUE = 0           # a trade at our price, after the queue ahead (queue model)
    _REASON_TOUCH = 1           # a trade at our price (touch model: front of the queue)
    _REASON_TRADE_THROUGH = 2   # a trade beyond our price
    _REASON_BOOK_THROUGH = 3    # the opposite best price reached ours (no trade print)
    _N_REASONS = 4
    _ORDER_FREE = 0
    _ORDER_IN_FLIGHT = 1
    _ORDER_LIVE = 2
    _NOTE_CAP = 256             # responses in flight at once (overflow: merged into the newest)
    _DELIVERED_CAP = 600        # responses delivered by one _arrivals call, kept for the gateway
    _NOTE_FILL = 1
    _NOTE_CANCELLED = 2
    _NOTE_REJECTED = 3

cdef double _GRID_TOL = 1e-6        # two prices this close in ticks are the same price
cdef double _ROUND_GUARD = 1e-9     # added before floor / subtracted before ceil
cdef double _SIZE_TOL = 1e-12       # a clipped order smaller than this is not sent

# The constants Python shares with the kernels (clusterlob.replay.strategy imports them).
GRID_TOLERANCE_TICKS = _GRID_TOL
ROUNDING_GUARD_TICKS = _ROUND_GUARD
FILL_MODELS = ("cross", "touch", "queue")            # index = _MODEL_*
QUEUE_RULES = ("risk_averse", "power", "log")        # index = _RULE_*
QUOTE_UPDATES = ("replace", "changes")               # index = QuoteParams.keep_unchanged
FILL_SIZES = ("partial", "whole")                    # index = QuoteParams.whole
FILL_REASONS = ("queue", "touch", "trade_through", "book_through")   # index = _REASON_*
# column order of the output buffers (clusterlob.replay names them)
FILL_INT_COLUMNS = ("trade_index", "ts_us")
FILL_FLOAT_COLUMNS = ("side", "price", "qty", "mid", "fee", "inventory", "cash", "reason",
                      "queue_ahead")
MARK_FLOAT_COLUMNS = ("equity", "cash", "inventory", "mid", "spread_capture", "inventory_drift",
                      "fees", "funding")
# the kernel's parameters by name: clusterlob.replay.engine.kernel_params builds this dict from
# a StrategyConfig (the one place), _params_from_dict reads it
KERNEL_PARAMS = ("tick", "skew_ticks", "theta", "dynamic", "min_half_ticks", "half_spread_bps",
                 "hazard_k", "hazard_threshold", "quote_size", "max_inventory", "maker_fee_bps",
                 "requote_us", "entry_latency_us", "cancel_latency_us", "response_latency_us",
                 "fill_model", "queue_rule", "queue_power", "quote_updates", "fill_size", "alpha_role", "hazard_role",
                 "decay_per_us", "size_weight", "signal_scale_trades", "signal_norm",
                 "mark_interval_us", "contract_size", "inverse")


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
    int64_t entry_us
    int64_t cancel_us
    int64_t response_us
    int64_t mark_interval_us
    int model
    int rule
    double power
    int keep_unchanged          # quote_updates "changes": an untouched order at the decided price stays
    int whole                   # fill_size "whole": an order that fills, fills whole (no partial fills)
    double to_alpha[256]        # by <uint8_t>role: 1.0 when that role feeds alpha (a table
    double to_hazard[256]       # lookup, not a branch: roles arrive in random order)
    double contract_size        # Instrument.flow_unit: contract_size, or 1.0 when none
    int inverse                 # inverse contract: the accounts are in the coin (_unit_value)


cdef struct Order:
    int state                   # _ORDER_FREE / _IN_FLIGHT / _LIVE
    int64_t order_id
    int64_t ticks
    double size                 # remaining (the amount still to fill)
    double placed               # size sent
    double queue                # displayed size ahead of us at our price (INFINITY: unknown)
    double shown                # displayed size at our price at the last book update (NAN: unseen)
    double traded               # traded at our price since that update (probability rules)
    int known_done              # the strategy has heard that it filled completely
    int known_touched           # the strategy has heard of a fill of it
    int64_t arrive_us           # the place reaches the exchange (in flight)
    int64_t cancel_at_us        # our cancel reaches the exchange (INT64_MAX: none sent)
    int64_t response_us         # response latency of its news (of its last request)


cdef struct Note:
    int64_t at_us               # when the response reaches the strategy
    int64_t exchange_us         # when it happened at the exchange
    int kind                    # _NOTE_FILL / _NOTE_CANCELLED / _NOTE_REJECTED
    int side                    # _BID / _ASK
    int slot
    int done                    # a fill that finished the order
    int64_t order_id
    double d_inventory          # what it changes in what the strategy knows
    double d_outstanding[2]
    double price
    double qty                  # fill: the amount; cancelled: the size cancelled; rejected: its size
    double remaining


cdef struct ReplayState:
    Py_ssize_t i_trade
    Py_ssize_t i_book
    Py_ssize_t i_funding
    int64_t last_ts_us
    double best_bid
    double best_ask
    double mid
    int has_mid
    double cash
    double inventory
    double fees
    double funding
    double capture
    double drift
    double volume
    double notional
    double max_abs_inventory
    # latencies of the requests of the current decision (constants, or from the latency table)
    int64_t lat_entry_us
    int64_t lat_cancel_us
    int64_t lat_response_us
    Py_ssize_t i_lat
    # the exchange: two order slots per side ([2 * side + j]); cur[side] is the newest
    Order orders[4]
    int cur[2]
    int64_t next_order_id
    # what the strategy knows: position and outstanding size as of the responses received
    double known_inventory
    double outstanding[2]
    Note notes[_NOTE_CAP]       # responses in flight, a FIFO ring
    int note_head
    int note_len
    int64_t note_overflow
    int log_deliveries          # keep the delivered responses (the simulated gateway reads them)
    Note delivered[_DELIVERED_CAP]
    int n_delivered
    # the last decision's quotes (online.pxi reads them)
    int64_t dec_ticks[2]
    double dec_size[2]
    int64_t next_decision_us    # INT64_MIN before the first decision: due at once
    int64_t next_wake_us        # the earliest clock work: below it an event needs none
    int64_t next_event_us       # the earliest arrival or response (part of next_wake_us)
    int64_t next_funding_us
    AccState acc
    int64_t next_mark_us
    # time shares: since flags_ts_us the sides were quoted / at the touch as flagged
    int64_t flags_ts_us
    int has_flags_ts
    int quoted[2]
    int at_touch[2]
    int64_t time_quoted_us[2]
    int64_t time_touch_us[2]
    # counters
    int64_t n_trades
    int64_t n_book
    int64_t n_fills
    int64_t n_fills_by_reason[_N_REASONS]
    int64_t n_decisions
    int64_t n_bids_placed
    int64_t n_asks_placed
    int64_t n_post_only            # withheld at the decision (would cross the book it saw)
    int64_t n_inventory_limited
    int64_t n_dec_quoted[2]
    int64_t n_dec_limited[2]
    int64_t n_dec_withheld[2]
    int64_t n_dec_widened
    int64_t n_dec_clipped          # sent smaller than quote_size by the inventory limit
    int64_t n_rejected[2]          # rejected on arrival by post-only
    int64_t n_cancels
    int64_t n_cancels_late         # the cancel arrived after the order had filled
    int64_t n_slot_busy
    double half_ticks_sum          # quoted distance from the mid in ticks, summed over quotes
    int64_t half_ticks_n


cdef int _params_from_dict(QuoteParams* p, dict d) except -1:
    """Fill the parameter struct from kernel_params' dict (every key of KERNEL_PARAMS)."""
    missing = [k for k in KERNEL_PARAMS if k not in d]
    if missing:
        raise ParameterError(f"kernel parameters lack {missing}")
    p.tick = d["tick"]
    p.skew_ticks = d["skew_ticks"]
    p.theta = d["theta"]
    p.dynamic = d["dynamic"]
    p.min_half_ticks = d["min_half_ticks"]
    p.half_spread_bps = d["half_spread_bps"]
    p.hazard_k = d["hazard_k"]
    p.hazard_threshold = d["hazard_threshold"]
    p.quote_size = d["quote_size"]
    p.max_inventory = d["max_inventory"]
    p.maker_fee_bps = d["maker_fee_bps"]
    p.requote_us = d["requote_us"]
    p.entry_us = d["entry_latency_us"]
    p.cancel_us = d["cancel_latency_us"]
    p.response_us = d["response_latency_us"]
    p.mark_interval_us = d["mark_interval_us"]
    p.model = FILL_MODELS.index(d["fill_model"])
    p.rule = QUEUE_RULES.index(d["queue_rule"])
    p.power = d["queue_power"]
    p.keep_unchanged = QUOTE_UPDATES.index(d["quote_updates"])
    p.whole = FILL_SIZES.index(d["fill_size"])
    p.contract_size = d["contract_size"]
    p.inverse = d["inverse"]
    cdef int r
    cdef int alpha_key = acc_role_key(d["alpha_role"]), hazard_key = acc_role_key(d["hazard_role"])
    for r in range(256):
        p.to_alpha[r] = acc_weight(<int8_t><uint8_t>r, alpha_key)
        p.to_hazard[r] = acc_weight(<int8_t><uint8_t>r, hazard_key)
    return 0


# -- the accounts' currency -------------------------------------------------------------------
# The accounts (cash, equity, spread capture, inventory drift, fees, funding) are in the
# settlement currency.  Linear: one amount unit at price p is worth p * contract_size of the
# quote currency (x 1.0, exact, for a plain tape: the numbers are the plain formulas').
# Inverse: one contract is worth contract_size / p coins, and a long gains when 1/p falls, so
# the accounts run on x = -contract_size / p in place of the price (a long of q from p0 to p1
# earns q * contract_size * (1/p0 - 1/p1) coins); fees and funding are charged on the coin
# notional |x| per unit.

cdef inline double _unit_value(const QuoteParams* p, double price) noexcept nogil:
    """What the accounts book one amount unit at ``price`` at (cash, equity, capture, drift)."""
    if p.inverse:
        return -p.contract_size / price
    return price * p.contract_size


cdef inline double _unit_notional(const QuoteParams* p, double price) noexcept nogil:
    """Notional of one amount unit at ``price`` in the settlement currency (fees, funding)."""
    if p.inverse:
        return p.contract_size / price
    return price * p.contract_size


cdef void _state_init(ReplayState* s, dict d, int64_t first_mark_us) noexcept:
    """Every field zero, then the few that start elsewhere."""
    cdef int j
    s.best_bid = NAN
    s.best_ask = NAN
    s.next_mark_us = first_mark_us
    s.next_decision_us = INT64_MIN
    s.next_funding_us = INT64_MAX
    s.next_event_us = INT64_MAX
    s.next_order_id = 1
    s.lat_entry_us = d["entry_latency_us"]
    s.lat_cancel_us = d["cancel_latency_us"]
    s.lat_response_us = d["response_latency_us"]
    s.cur[_BID] = 0
    s.cur[_ASK] = 2
    for j in range(4):
        s.orders[j].state = _ORDER_FREE
        s.orders[j].cancel_at_us = INT64_MAX
    acc_init(&s.acc, d["decay_per_us"], d["size_weight"], d["signal_scale_trades"],
             SIGNAL_NORMS.index(d["signal_norm"]))


# -- the strategy ----------------------------------------------------------------------------

cdef inline void _decide(ReplayState* s, const QuoteParams* p, int64_t t) noexcept nogil:
    """The quote rule (strategy.decide_quotes in C), on what the strategy knows.

    Writes dec_ticks / dec_size (size 0: no quote on that side) and the decision counters.
    """
    cdef double alpha, hazard, size
    acc_values(&s.acc, t, &alpha, &hazard)
    cdef double inv = s.known_inventory
    cdef double th = tanh(alpha)
    cdef double theta_eff = p.theta * (1.0 - fabs(th)) if p.dynamic else p.theta
    cdef double reservation = s.mid + p.skew_ticks * th * p.tick - theta_eff * inv * p.tick
    cdef double excess = hazard - p.hazard_threshold
    if excess > 0.0:
        s.n_dec_widened += 1
    else:
        excess = 0.0
    cdef double widening = 1.0 + p.hazard_k * excess
    cdef double half = p.min_half_ticks * p.tick
    cdef double proportional = p.half_spread_bps * s.mid * 1e-4 * widening
    if proportional > half:
        half = proportional
    cdef int64_t bid = <int64_t>floor((reservation - half) / p.tick + _ROUND_GUARD)
    cdef int64_t ask = <int64_t>ceil((reservation + half) / p.tick - _ROUND_GUARD)
    s.dec_ticks[_BID] = bid
    s.dec_ticks[_ASK] = ask
    s.dec_size[_BID] = 0.0
    s.dec_size[_ASK] = 0.0
    # hard inventory limit: every order that may still fill counts (known position plus the
    # outstanding size the strategy has not heard the end of)
    size = p.max_inventory - inv - s.outstanding[_BID]
    if size > p.quote_size:
        size = p.quote_size
    if size <= _SIZE_TOL:
        s.n_inventory_limited += 1
        s.n_dec_limited[_BID] += 1
    elif <double>bid >= s.best_ask / p.tick - _GRID_TOL:
        s.n_post_only += 1
        s.n_dec_withheld[_BID] += 1
    else:
        if size < p.quote_size:
            s.n_dec_clipped += 1
        s.dec_size[_BID] = size
        s.n_bids_placed += 1
        s.n_dec_quoted[_BID] += 1
        s.half_ticks_sum += s.mid / p.tick - <double>bid
        s.half_ticks_n += 1
    size = p.max_inventory + inv - s.outstanding[_ASK]
    if size > p.quote_size:
        size = p.quote_size
    if size <= _SIZE_TOL:
        s.n_inventory_limited += 1
        s.n_dec_limited[_ASK] += 1
    elif <double>ask <= s.best_bid / p.tick + _GRID_TOL:
        s.n_post_only += 1
        s.n_dec_withheld[_ASK] += 1
    else:
        if size < p.quote_size:
            s.n_dec_clipped += 1
        s.dec_size[_ASK] = size
        s.n_asks_placed += 1
        s.n_dec_quoted[_ASK] += 1
        s.half_ticks_sum += <double>ask - s.mid / p.tick
        s.half_ticks_n += 1
    s.n_decisions += 1


cdef inline void _send_sides(ReplayState* s, const QuoteParams* p, int64_t t,
                             const int* cancel) noexcept nogil:
    """_send for the sides whose cancel[side] is set (the simulated gateway: the sides the
    engine sent a cancel for), placing dec_size[side] > 0 on either side."""
    cdef int k, c, n
    cdef Order* o
    cdef int64_t last_response = t
    for k in range(2):
        c = s.cur[k]
        o = &s.orders[c]
        if (p.keep_unchanged and o.state != _ORDER_FREE and o.cancel_at_us == INT64_MAX
                and not o.known_touched and s.dec_size[k] > 0.0 and o.ticks == s.dec_ticks[k]):
            continue                        # the same quote works already: nothing to send
        if (cancel[k] or s.dec_size[k] > 0.0) and o.state == _ORDER_LIVE and o.known_done and o.cancel_at_us == INT64_MAX:
            o.state = _ORDER_FREE           # heard it filled completely: nothing to cancel
        elif cancel[k] and o.state != _ORDER_FREE and o.cancel_at_us == INT64_MAX:
            o.cancel_at_us = t + s.lat_cancel_us
            o.response_us = s.lat_response_us
            if o.cancel_at_us < s.next_event_us:
                s.next_event_us = o.cancel_at_us
            if o.cancel_at_us + s.lat_response_us > last_response:
                last_response = o.cancel_at_us + s.lat_response_us
        if s.dec_size[k] > 0.0:
            n = 2 * k + (1 - (c & 1))          # the other slot of this side
            o = &s.orders[n]
            if o.state != _ORDER_FREE:
                # cannot happen: a decision waits for every response to the last one, so the
                # order two decisions old has had its cancel arrive (counted if it ever does)
                s.n_slot_busy += 1
                continue
            o.state = _ORDER_IN_FLIGHT
            o.order_id = s.next_order_id
            s.next_order_id += 1
            o.ticks = s.dec_ticks[k]
            o.size = s.dec_size[k]
            o.placed = s.dec_size[k]
            o.queue = INFINITY
            o.shown = NAN
            o.traded = 0.0
            o.known_done = 0
            o.known_touched = 0
            o.arrive_us = t + s.lat_entry_us
            o.response_us = s.lat_response_us
            o.cancel_at_us = INT64_MAX
            s.cur[k] = n
            s.outstanding[k] += o.size
            if o.arrive_us < s.next_event_us:
                s.next_event_us = o.arrive_us
            if o.arrive_us + s.lat_response_us > last_response:
                last_response = o.arrive_us + s.lat_response_us
    s.next_decision_us = t + p.requote_us
    if last_response > s.next_decision_us:
        s.next_decision_us = last_response


cdef inline void _send(ReplayState* s, const QuoteParams* p, int64_t t) noexcept nogil:
    """Send the decision: cancel the current order of each side, place the new one."""
    cdef int cancel[2]
    cancel[0] = 1
    cancel[1] = 1
    _send_sides(s, p, t, cancel)


cdef inline void _latencies(ReplayState* s, int64_t t, const int64_t[::1] req,
                            const int64_t[::1] entry, const int64_t[::1] resp) noexcept nogil:
    """Entry (= cancel) and response latency of a request at t, interpolated linearly in the
    latency table's request times (clusterlob.replay.latency.OrderLatency.at); no table: the
    constants stay."""
    cdef Py_ssize_t n = req.shape[0], i
    cdef double w, e, r
    if n == 0:
        return
    while s.i_lat + 1 < n and req[s.i_lat + 1] <= t:
        s.i_lat += 1
    i = s.i_lat
    if i + 1 >= n or req[i + 1] == req[i]:
        e = <double>entry[i]
        r = <double>resp[i]
    else:
        w = <double>(t - req[i]) / <double>(req[i + 1] - req[i])
        if w < 0.0:
            w = 0.0
        if w > 1.0:
            w = 1.0
        e = <double>entry[i] + w * <double>(entry[i + 1] - entry[i])
        r = <double>resp[i] + w * <double>(resp[i + 1] - resp[i])
    s.lat_entry_us = <int64_t>(e + 0.5)
    s.lat_cancel_us = s.lat_entry_us
    s.lat_response_us = <int64_t>(r + 0.5)


# -- the exchange ----------------------------------------------------------------------------

cdef inline void _notify(ReplayState* s, const QuoteParams* p, int64_t t, int kind, int slot,
                         double d_inventory, double d_outstanding, double qty) noexcept nogil:
    """A response (fill, cancel ack, reject) reaches the strategy response_latency after t."""
    cdef Order* o = &s.orders[slot]
    cdef int k = slot >> 1
    cdef Note* n
    if s.note_len == _NOTE_CAP:
        # full: merged into the newest response, whose news then arrives with this one (later,
        # never earlier: the strategy's bound on its position stays safe)
        n = &s.notes[(s.note_head + s.note_len - 1) % _NOTE_CAP]
        s.note_overflow += 1
    else:
        n = &s.notes[(s.note_head + s.note_len) % _NOTE_CAP]
        s.note_len += 1
        n.d_inventory = 0.0
        n.d_outstanding[0] = 0.0
        n.d_outstanding[1] = 0.0
    n.at_us = t + o.response_us
    if s.note_len > 1 and n.at_us < s.notes[(s.note_head + s.note_len - 2) % _NOTE_CAP].at_us:
        n.at_us = s.notes[(s.note_head + s.note_len - 2) % _NOTE_CAP].at_us   # responses in order
    n.exchange_us = t
    n.kind = kind
    n.side = k
    n.slot = slot
    n.order_id = o.order_id
    n.done = kind == _NOTE_FILL and o.size <= 0.0
    n.price = <double>o.ticks * p.tick
    n.qty = qty
    n.remaining = o.size
    n.d_inventory += d_inventory
    n.d_outstanding[k] += d_outstanding
    if n.at_us < s.next_event_us:
        s.next_event_us = n.at_us


cdef inline double _shown_at(const double[:, ::1] px, const double[:, ::1] sz, Py_ssize_t i,
                             int64_t ticks, double tick, int k) noexcept nogil:
    """Displayed size at our price on side k in book row i: 0 inside the spread or in a gap,
    NAN beyond the deepest level shown (or no sizes in the book).

    Levels are best first, strictly monotone, NaN only past the last one (the tape's rule), so
    two O(1) looks settle the usual cases: the level one tick-distance deep is ours (levels a
    tick apart), or the deepest level is still better than our price; else a scan.
    """
    cdef Py_ssize_t lv, g, nl = px.shape[1]
    cdef double x, d, d0, sign = 1.0 if k == _BID else -1.0
    x = px[i, 0]
    if x != x:
        return NAN
    d0 = sign * (x / tick - <double>ticks)          # > 0: the best level is better than us
    if d0 < -_GRID_TOL:
        return 0.0                                  # we are inside the spread
    if d0 <= _GRID_TOL:
        return sz[i, 0]
    g = <Py_ssize_t>(d0 + 0.5)
    if g < nl:
        x = px[i, g]
        if x == x and fabs(sign * (x / tick - <double>ticks)) <= _GRID_TOL:
            return sz[i, g]
    else:
        x = px[i, nl - 1]
        if x == x and sign * (x / tick - <double>ticks) > _GRID_TOL:
            return NAN                              # deeper than every level shown
    for lv in range(1, nl):
        x = px[i, lv]
        if x != x:
            return NAN
        d = sign * (x / tick - <double>ticks)
        if d < -_GRID_TOL:
            return 0.0                              # we are better than this level: a gap
        if d <= _GRID_TOL:
            return sz[i, lv]
    return NAN


cdef inline void _flags(ReplayState* s, const QuoteParams* p, int64_t t) noexcept nogil:
    """Close the time-share interval at t, then read the sides' flags anew."""
    cdef int k, j
    cdef int64_t dt
    cdef Order* o
    cdef double best_ticks
    if s.has_flags_ts:
        dt = t - s.flags_ts_us
        for k in range(2):
            if s.quoted[k]:
                s.time_quoted_us[k] += dt
            if s.at_touch[k]:
                s.time_touch_us[k] += dt
    s.flags_ts_us = t
    s.has_flags_ts = 1
    for k in range(2):
        s.quoted[k] = 0
        s.at_touch[k] = 0
        best_ticks = (s.best_bid if k == _BID else s.best_ask) / p.tick
        for j in range(2 * k, 2 * k + 2):
            o = &s.orders[j]
            if o.state == _ORDER_LIVE and o.size > 0.0:
                s.quoted[k] = 1
                if (<double>o.ticks >= best_ticks - _GRID_TOL) if k == _BID else (<double>o.ticks <= best_ticks + _GRID_TOL):
                    s.at_touch[k] = 1


cdef inline void _arrivals(ReplayState* s, const QuoteParams* p, int64_t t, int64_t x,
                           const double[:, ::1] bpx, const double[:, ::1] bsz,
                           const double[:, ::1] apx, const double[:, ::1] asz,
                           Py_ssize_t row) noexcept nogil:
    """Orders and cancels due at the exchange by x (the event's exchange time; = t without
    feed latency) and responses due at the strategy by t (its local time), in time order (a
    cancel before a place, and both before responses, at equal time)."""
    cdef int j, k, best, kind
    cdef int64_t at, earliest
    cdef Order* o
    cdef Note* n
    cdef double shown
    while True:
        best = -1
        kind = 0
        at = INT64_MAX
        earliest = INT64_MAX                # the next one of any kind, due or not
        for j in range(4):
            o = &s.orders[j]
            if o.state != _ORDER_FREE and o.cancel_at_us < earliest:
                earliest = o.cancel_at_us
            if o.state != _ORDER_FREE and o.cancel_at_us < at and o.cancel_at_us <= x:
                at = o.cancel_at_us
                best = j
                kind = 1
        for j in range(4):
            o = &s.orders[j]
            if o.state == _ORDER_IN_FLIGHT and o.arrive_us < earliest:
                earliest = o.arrive_us
            if o.state == _ORDER_IN_FLIGHT and o.arrive_us < at and o.arrive_us <= x:
                at = o.arrive_us
                best = j
                kind = 2
        if s.note_len and s.notes[s.note_head].at_us < earliest:
            earliest = s.notes[s.note_head].at_us
        if s.note_len and s.notes[s.note_head].at_us < at and s.notes[s.note_head].at_us <= t:
            at = s.notes[s.note_head].at_us
            kind = 3
        if kind == 0:
            s.next_event_us = earliest
            return
        if kind == 3:
            n = &s.notes[s.note_head]
            s.known_inventory += n.d_inventory
            for k in range(2):
                s.outstanding[k] += n.d_outstanding[k]
                if s.outstanding[k] < _SIZE_TOL:
                    s.outstanding[k] = 0.0
            if n.kind == _NOTE_FILL and s.orders[n.slot].order_id == n.order_id:
                s.orders[n.slot].known_touched = 1
                if n.done:
                    s.orders[n.slot].known_done = 1
            if s.log_deliveries and s.n_delivered < _DELIVERED_CAP:
                s.delivered[s.n_delivered] = n[0]
                s.n_delivered += 1
            s.note_head = (s.note_head + 1) % _NOTE_CAP
            s.note_len -= 1
            continue
        o = &s.orders[best]
        k = best >> 1
        if kind == 1:                       # our cancel arrives
            if o.size > 0.0:                # live, or cancelled before it arrived (never rests)
                s.n_cancels += 1
                _notify(s, p, at, _NOTE_CANCELLED, best, 0.0, -o.size, o.size)
            else:
                s.n_cancels_late += 1
            o.state = _ORDER_FREE
            o.size = 0.0
            o.cancel_at_us = INT64_MAX
            continue
        # the place arrives: post-only against the book now, then the back of the queue
        if (<double>o.ticks >= s.best_ask / p.tick - _GRID_TOL) if k == _BID else (<double>o.ticks <= s.best_bid / p.tick + _GRID_TOL):
            s.n_rejected[k] += 1
            _notify(s, p, at, _NOTE_REJECTED, best, 0.0, -o.size, o.size)
            o.state = _ORDER_FREE
            o.size = 0.0
            o.cancel_at_us = INT64_MAX
            continue
        o.state = _ORDER_LIVE
        if p.model == _MODEL_QUEUE and row >= 0:
            if k == _BID:
                shown = _shown_at(bpx, bsz, row, o.ticks, p.tick, _BID)
            else:
                shown = _shown_at(apx, asz, row, o.ticks, p.tick, _ASK)
            o.shown = shown
            o.queue = INFINITY if shown != shown else shown


cdef inline double _fill(ReplayState* s, const QuoteParams* p, int slot, double q,
                         int64_t t, int64_t x, int reason, double queue_before, int64_t index,
                         int64_t[:, ::1] fill_ints, double[:, ::1] fill_floats, Py_ssize_t nf) noexcept nogil:
    """Book a fill of q at the order's price (accounts, response, output row nf); returns q."""
    cdef Order* o = &s.orders[slot]
    cdef int k = slot >> 1
    cdef double px = <double>o.ticks * p.tick, fee
    cdef double value = _unit_value(p, px), mid_value = _unit_value(p, s.mid) if s.has_mid else 0.0
    cdef double notional = _unit_notional(p, px)
    o.size = o.size - q
    if o.size <= _SIZE_TOL:
        o.size = 0.0
    if k == _ASK:                   # we sell
        s.inventory = s.inventory - q
        s.cash = s.cash + q * value
        s.capture = s.capture + q * (value - mid_value)
    else:                           # we buy
        s.inventory = s.inventory + q
        s.cash = s.cash - q * value
        s.capture = s.capture + q * (mid_value - value)
    fee = q * notional * p.maker_fee_bps * 1e-4
    s.cash = s.cash - fee
    s.fees = s.fees + fee
    s.volume = s.volume + q
    s.notional = s.notional + q * notional
    if fabs(s.inventory) > s.max_abs_inventory:
        s.max_abs_inventory = fabs(s.inventory)
    _notify(s, p, x, _NOTE_FILL, slot, q if k == _BID else -q, -q, q)
    fill_ints[nf, 0] = index
    fill_ints[nf, 1] = t
    fill_floats[nf, 0] = 1.0 if k == _BID else -1.0
    fill_floats[nf, 1] = px
    fill_floats[nf, 2] = q
    fill_floats[nf, 3] = s.mid
    fill_floats[nf, 4] = fee
    fill_floats[nf, 5] = s.inventory
    fill_floats[nf, 6] = s.cash
    fill_floats[nf, 7] = <double>reason
    fill_floats[nf, 8] = queue_before if isfinite(queue_before) else NAN
    s.n_fills += 1
    s.n_fills_by_reason[reason] += 1
    return q


cdef inline double _queue_prob(const QuoteParams* p, double front, double back) noexcept nogil:
    """Probability that a size decrease came from behind us (power / log families)."""
    cdef double fa, fb
    if front < 0.0:
        front = 0.0
    if back < 0.0:
        back = 0.0
    if p.rule == _RULE_POWER:
        fa = pow(front, p.power)
        fb = pow(back, p.power)
    else:
        fa = pow(log1p(front), p.power)
        fb = pow(log1p(back), p.power)
    if fa + fb <= 0.0:
        return 1.0
    return fb / (fa + fb)


cdef inline void _queue_on_book(const QuoteParams* p, Order* o, double shown) noexcept nogil:
    """The queue rule on one book update; shown = displayed size at our price now (NAN: not seen)."""
    cdef double chg, front, back, prob, est
    if shown != shown:
        return                          # our price is beyond the levels shown: nothing learnt
    if p.rule == _RULE_RISK_AVERSE or o.shown != o.shown:
        if shown < o.queue:
            o.queue = shown
    else:
        chg = o.shown - shown - o.traded      # a decrease the trades at our price did not explain
        if chg <= 0.0:
            if shown < o.queue:
                o.queue = shown
        else:
            front = o.queue
            back = o.shown - front
            prob = _queue_prob(p, front, back)
            est = front - (1.0 - prob) * chg
            if back - prob * chg < 0.0:
                est = est + (back - prob * chg)
            if est > shown:
                est = shown
            if est < 0.0:
                est = 0.0
            o.queue = est
    o.shown = shown
    o.traded = 0.0


cdef inline Py_ssize_t _on_trade(ReplayState* s, const QuoteParams* p, int64_t t, int64_t x, int64_t index,
                                 double price, double amount, int side, int8_t role,
                                 int64_t[:, ::1] fill_ints, double[:, ::1] fill_floats,
                                 Py_ssize_t nf) noexcept nogil:
    """One trade: fills of our orders on the side the taker consumes (the older order first, by
    the fill model), then the accumulator.  Returns the fills written from row nf on (<= 2)."""
    cdef int k, j, slot
    cdef double left, q, edge, queue_before
    cdef Order* o
    cdef Py_ssize_t n0 = nf
    if side == 0:
        return 0
    k = (side + 1) >> 1             # -1 -> _BID, +1 -> _ASK (indexed: sides arrive at random)
    left = amount
    for j in range(2):
        slot = 2 * k + ((1 - (s.cur[k] & 1)) if j == 0 else (s.cur[k] & 1))
        o = &s.orders[slot]
        if o.state != _ORDER_LIVE or o.size <= 0.0:
            continue
        edge = <double>side * (price / p.tick - <double>o.ticks)
        if edge < -_GRID_TOL:
            continue                # the trade did not reach our price
        queue_before = o.queue
        if p.model == _MODEL_QUEUE:
            if edge > _GRID_TOL:    # through our price: filled in full
                _fill(s, p, slot, o.size, t, x, _REASON_TRADE_THROUGH, queue_before, index,
                      fill_ints, fill_floats, nf)
                nf += 1
            else:                   # at our price: only what exceeds the queue ahead
                o.traded = o.traded + amount
                q = amount - o.queue
                if q > 0.0:
                    o.queue = 0.0
                    if q > o.size or p.whole:
                        q = o.size
                    if q > left and not p.whole:
                        q = left
                    if q > 0.0:
                        left = left - _fill(s, p, slot, q, t, x, _REASON_QUEUE, queue_before, index,
                                            fill_ints, fill_floats, nf)
                        nf += 1
                else:
                    o.queue = -q
        elif edge > _GRID_TOL or p.model == _MODEL_TOUCH:
            q = o.size
            if q > left and not p.whole:
                q = left
            if q > 0.0:
                left = left - _fill(s, p, slot, q, t, x,
                                    _REASON_TRADE_THROUGH if edge > _GRID_TOL else _REASON_TOUCH,
                                    queue_before, index, fill_ints, fill_floats, nf)
                nf += 1
    if nf > n0:
        _flags(s, p, t)
    acc_add(&s.acc, t, <double>side, amount, p.to_alpha[<uint8_t>role], p.to_hazard[<uint8_t>role])
    return nf - n0


cdef inline Py_ssize_t _on_book(ReplayState* s, const QuoteParams* p, int64_t t, int64_t x,
                                const double[:, ::1] bpx, const double[:, ::1] bsz,
                                const double[:, ::1] apx, const double[:, ::1] asz, Py_ssize_t i,
                                int64_t[:, ::1] fill_ints, double[:, ::1] fill_floats,
                                Py_ssize_t nf) noexcept nogil:
    """One book update (row i): the queue ahead of our orders, orders the opposite best has
    reached (book-through), then the touch and mid.  Returns the fills written (<= 4)."""
    cdef int j, k, slot
    cdef double shown, new_mid
    cdef Order* o
    cdef Py_ssize_t n0 = nf
    for j in range(4):              # per side, the older order first
        k = j >> 1
        slot = 2 * k + ((1 - (s.cur[k] & 1)) if (j & 1) == 0 else (s.cur[k] & 1))
        o = &s.orders[slot]
        if o.state != _ORDER_LIVE or o.size <= 0.0:
            continue
        if p.model == _MODEL_QUEUE:
            if k == _BID:
                shown = _shown_at(bpx, bsz, i, o.ticks, p.tick, _BID)
            else:
                shown = _shown_at(apx, asz, i, o.ticks, p.tick, _ASK)
            _queue_on_book(p, o, shown)
        if (<double>o.ticks >= apx[i, 0] / p.tick - _GRID_TOL) if k == _BID else (<double>o.ticks <= bpx[i, 0] / p.tick + _GRID_TOL):
            _fill(s, p, slot, o.size, t, x, _REASON_BOOK_THROUGH, o.queue, -1, fill_ints, fill_floats, nf)
            nf += 1
    new_mid = 0.5 * (bpx[i, 0] + apx[i, 0])
    if s.has_mid:
        s.drift = s.drift + s.inventory * (_unit_value(p, new_mid) - _unit_value(p, s.mid))
    s.mid = new_mid
    s.best_bid = bpx[i, 0]
    s.best_ask = apx[i, 0]
    s.has_mid = 1
    s.n_book += 1
    _flags(s, p, t)
    return nf - n0


cdef inline int _exchange_busy(const ReplayState* s) noexcept nogil:
    """An order or cancel is still on its way to the exchange (only with feed latency from
    data can one outlive the decision's wait for its responses: the exchange is behind)."""
    cdef int j
    for j in range(4):
        if s.orders[j].state == _ORDER_IN_FLIGHT or (s.orders[j].state != _ORDER_FREE and s.orders[j].cancel_at_us != INT64_MAX):
            return 1
    return 0


cdef inline int64_t _next_wake(ReplayState* s) noexcept nogil:
    cdef int64_t w = s.next_mark_us
    if s.next_funding_us < w:
        w = s.next_funding_us
    if s.next_event_us < w:
        w = s.next_event_us
    if s.next_decision_us < w:
        w = s.next_decision_us
    return w


cdef inline double _pay_funding(ReplayState* s, const QuoteParams* p, double rate) noexcept nogil:
    """The one funding rule (batch replay and simulated gateway): at a funding time the carried
    position pays ``inventory * notional of a unit at the mid * rate`` (longs pay a positive rate;
    an inverse contract pays in the coin); nothing before the first book update.  Returns the
    amount paid (0.0 when nothing was paid)."""
    cdef double pay = 0.0
    if s.has_mid:                   # longs pay a positive rate, on the position's notional
        pay = s.inventory * _unit_notional(p, s.mid) * rate
        s.cash = s.cash - pay
        s.funding = s.funding + pay
    return pay


cdef inline double _equity(const ReplayState* s, const QuoteParams* p) noexcept nogil:
    """The account marked to the mid: cash + inventory * the value of a unit at the mid (no mid: cash)."""
    return s.cash + s.inventory * (_unit_value(p, s.mid) if s.has_mid else 0.0)


cdef inline void _write_mark(ReplayState* s, const QuoteParams* p, double* row) noexcept nogil:
    """One equity mark, MARK_FLOAT_COLUMNS, into row[0..7]."""
    row[0] = _equity(s, p)
    row[1] = s.cash
    row[2] = s.inventory
    row[3] = s.mid if s.has_mid else NAN
    row[4] = s.capture
    row[5] = s.drift
    row[6] = s.fees
    row[7] = s.funding


cdef class _ReplayEngine:
    """State and parameters of one replay; ``run`` advances it (private: use clusterlob.replay)."""

    cdef QuoteParams p
    cdef ReplayState s
    cdef double[:, ::1] carried      # the last book row of earlier arrays (4, L), see next_arrays
    cdef int has_carried

    def __init__(self, dict params, int64_t first_mark_us):
        import numpy
        _params_from_dict(&self.p, params)
        _state_init(&self.s, params, first_mark_us)
        self.carried = numpy.full((4, 1), numpy.nan)

    def next_arrays(self, last_book_row=None, bint funding=True, bint latency=True):
        """Continue on new arrays (the next day of a stream): the cursors into the trades and
        the book (and, unless told otherwise, the funding and latency tables) start again at 0;
        every other part of the state carries on.  ``last_book_row`` (4, L): bid_px, bid_sz,
        ask_px, ask_sz of the last book update of the earlier arrays (an order reaching the
        exchange before the new arrays' first book update joins the queue by it)."""
        import numpy
        if last_book_row is not None:
            row = numpy.ascontiguousarray(last_book_row, dtype=numpy.float64)
            if row.ndim != 2 or row.shape[0] != 4:
                raise ParameterError(f"`last_book_row` must have shape (4, levels), got {row.shape}")
            self.carried = row
            self.has_carried = 1
        self.s.i_trade = 0
        self.s.i_book = 0
        if funding:
            self.s.i_funding = 0
        if latency:
            self.s.i_lat = 0

    def run(self,
            const int64_t[::1] trade_ts_us, const double[::1] trade_price,
            const double[::1] trade_amount, const int8_t[::1] trade_side,
            const int8_t[::1] trade_role,
            const int64_t[::1] book_ts_us, const double[:, ::1] book_bid_px,
            const double[:, ::1] book_bid_sz, const double[:, ::1] book_ask_px,
            const double[:, ::1] book_ask_sz,
            const int64_t[::1] funding_ts_us, const double[::1] funding_rate,
            const int64_t[::1] lat_req_us, const int64_t[::1] lat_entry_us,
            const int64_t[::1] lat_response_us,
            const int64_t[::1] trade_exch_us, const int64_t[::1] book_exch_us,
            int64_t[:, ::1] fill_ints, double[:, ::1] fill_floats,
            int64_t[::1] mark_ts_us, double[:, ::1] mark_floats):
        """Advance until the events end or an output buffer is full.

        IN: trades (n_trades,); book levels (n_book, L) best first (L >= 1; sizes may be NaN
        unless the fill model is queue); funding payments (n_funding,) time and rate, sorted;
        an order-latency table (n_lat,) request time, entry and response latency (empty:
        the constant latencies); the events' exchange times, aligned to the local clock
        (empty: the exchange sees each event at its local time, no feed latency).
        OUT: fill_ints (cap, 2) FILL_INT_COLUMNS, fill_floats (cap, 9) FILL_FLOAT_COLUMNS;
        mark_ts_us (mcap,), mark_floats (mcap, 8) MARK_FLOAT_COLUMNS.
        Needs room for 4 fills per call (a book update can fill every order).
        Returns (fills written, marks written, finished).
        """
        cdef ReplayState s = self.s
        cdef QuoteParams p = self.p
        cdef Py_ssize_t nt = trade_ts_us.shape[0], nb = book_ts_us.shape[0]
        cdef Py_ssize_t nfund = funding_ts_us.shape[0]
        cdef Py_ssize_t fcap = fill_ints.shape[0] - 4, mcap = mark_ts_us.shape[0]
        cdef Py_ssize_t nf = 0, nm = 0, i
        cdef int is_trade, wake, full = 0
        cdef int64_t t, x
        cdef const double[:, ::1] cb_px = self.carried[0:1, :]
        cdef const double[:, ::1] cb_sz = self.carried[1:2, :]
        cdef const double[:, ::1] ca_px = self.carried[2:3, :]
        cdef const double[:, ::1] ca_sz = self.carried[3:4, :]
        cdef int exch = trade_exch_us.shape[0] == nt and book_exch_us.shape[0] == nb and (nt + nb) > 0
        cdef double row[8]
        cdef int c
        if fcap < 0:
            raise ValueError("the fill buffer needs at least 4 rows")
        if mark_floats.shape[1] != 8 or fill_floats.shape[1] != 9:
            raise ValueError("output buffers must have the columns of MARK/FILL_FLOAT_COLUMNS")
        s.next_funding_us = funding_ts_us[s.i_funding] if s.i_funding < nfund else INT64_MAX
        if s.next_funding_us < s.next_wake_us:      # new funding arrays (next_arrays): wake for them
            s.next_wake_us = s.next_funding_us
        with nogil:
            while s.i_trade < nt or s.i_book < nb:
                if nf >= fcap:
                    break
                is_trade = s.i_book >= nb or (s.i_trade < nt and trade_ts_us[s.i_trade] <= book_ts_us[s.i_book])
                t = trade_ts_us[s.i_trade] if is_trade else book_ts_us[s.i_book]
                x = t
                if exch:
                    x = trade_exch_us[s.i_trade] if is_trade else book_exch_us[s.i_book]
                wake = t >= s.next_wake_us
                if wake:
                    # marks (state before the event) and funding payments this event has reached
                    while t >= s.next_mark_us or t >= s.next_funding_us:
                        if s.next_mark_us <= s.next_funding_us:
                            if nm >= mcap:
                                full = 1
                                break
                            mark_ts_us[nm] = s.next_mark_us
                            _write_mark(&s, &p, row)
                            for c in range(8):
                                mark_floats[nm, c] = row[c]
                            nm += 1
                            s.next_mark_us += p.mark_interval_us
                        else:
                            _pay_funding(&s, &p, funding_rate[s.i_funding])
                            s.i_funding += 1
                            s.next_funding_us = funding_ts_us[s.i_funding] if s.i_funding < nfund else INT64_MAX
                    if full:
                        break
                    if t >= s.next_event_us:
                        if s.i_book > 0 or not self.has_carried:
                            _arrivals(&s, &p, t, x, book_bid_px, book_bid_sz, book_ask_px, book_ask_sz, s.i_book - 1)
                        else:           # the book as the earlier arrays left it
                            _arrivals(&s, &p, t, x, cb_px, cb_sz, ca_px, ca_sz, 0)
                        _flags(&s, &p, t)
                s.last_ts_us = t
                if is_trade:
                    i = s.i_trade
                    nf += _on_trade(&s, &p, t, x, i, trade_price[i], trade_amount[i], trade_side[i],
                                    trade_role[i], fill_ints, fill_floats, nf)
                    s.n_trades += 1
                    s.i_trade += 1
                else:
                    nf += _on_book(&s, &p, t, x, book_bid_px, book_bid_sz, book_ask_px, book_ask_sz,
                                   s.i_book, fill_ints, fill_floats, nf)
                    s.i_book += 1
                # the requote clock
                if wake:
                    if s.has_mid and t >= s.next_decision_us and not (exch and _exchange_busy(&s)):
                        _decide(&s, &p, t)
                        _latencies(&s, t, lat_req_us, lat_entry_us, lat_response_us)
                        _send(&s, &p, t)
                    s.next_wake_us = _next_wake(&s)
                elif s.next_event_us < s.next_wake_us:
                    s.next_wake_us = s.next_event_us    # a fill's response
        self.s = s
        return nf, nm, not (s.i_trade < nt or s.i_book < nb)

    def finish(self):
        """Close the time shares at the last event's time (call once, after the last run)."""
        _flags(&self.s, &self.p, self.s.last_ts_us)

    def snapshot(self):
        """The state's accounts and counters as a dict of Python numbers."""
        return _snapshot(&self.s, &self.p)


cdef dict _snapshot(ReplayState* s, const QuoteParams* p):
    return {
        "last_ts_us": s.last_ts_us, "mid": s.mid if s.has_mid else float("nan"),
        "equity": _equity(s, p), "cash": s.cash, "inventory": s.inventory, "fees": s.fees, "funding": s.funding,
        "spread_capture": s.capture, "inventory_drift": s.drift,
        "volume": s.volume, "notional": s.notional, "max_abs_inventory": s.max_abs_inventory,
        "trades": s.n_trades, "book_updates": s.n_book, "fills": s.n_fills,
        "fills_by_reason": {FILL_REASONS[r]: s.n_fills_by_reason[r] for r in range(_N_REASONS)},
        "quote_decisions": s.n_decisions, "bids_placed": s.n_bids_placed,
        "asks_placed": s.n_asks_placed, "posts_rejected": s.n_post_only,
        "inventory_limited": s.n_inventory_limited,
        "decisions_quoted": (s.n_dec_quoted[0], s.n_dec_quoted[1]),
        "decisions_limited": (s.n_dec_limited[0], s.n_dec_limited[1]),
        "decisions_withheld": (s.n_dec_withheld[0], s.n_dec_withheld[1]),
        "decisions_widened": s.n_dec_widened, "decisions_clipped": s.n_dec_clipped,
        "rejected_on_arrival": (s.n_rejected[0], s.n_rejected[1]),
        "cancels": s.n_cancels, "cancels_late": s.n_cancels_late,
        "half_spread_ticks_sum": s.half_ticks_sum, "half_spread_quotes": s.half_ticks_n,
        "time_quoted_us": (s.time_quoted_us[0], s.time_quoted_us[1]),
        "time_at_touch_us": (s.time_touch_us[0], s.time_touch_us[1]),
        "known_inventory": s.known_inventory, "responses_merged": s.note_overflow,
        "slot_busy": s.n_slot_busy,
    }
