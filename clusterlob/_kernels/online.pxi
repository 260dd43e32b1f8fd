# The online engine's compiled core: one market event at a time, O(1) work per event.
#
# It reuses the batch kernels' own code wherever they expose it as C functions, so the
# numbers are the same to the last bit:
#   features.pxi  _pass_snapshot / _read_sizes (the as-of book: touch, log1p top-D depths,
#                 spread, times of the last mid and best-price changes)
#   rolling.pxi   _rolling_column (the rolling z-score of one column over a block of rows,
#                 here a block of one row)
#   replay.pxi    QuoteParams, ReplayState, _decide (the quote rule)
#   accumulator.pxi  acc_add / acc_weight / acc_values (the signal accumulator)
# Only the fill accounting (replay.pxi keeps it inline in its loop) and the nearest-centre
# search (kmeans_lloyd_pass's inner loop) are repeated here, operation for operation; the
# tests compare the engine with the batch pipeline bit for bit (tests/test_online.py).
#
# Book updates at one timestamp form a group: a trade at that same timestamp must see the
# book as it was strictly before it (asof="strict"), so the state before the group is kept.
#
# Latencies from data follow the batch replay: a decision takes its latencies from the
# order-latency table (_latencies) and, with feed latency from data, waits until the requests
# it sent have reached the exchange, whose clock is the latest exchange time fed.
#
# OrderAction (the engine's output) is defined here; the simulated gateway's matching
# engine is in online_gateway.pxi.

from libc.math cimport isfinite, fabs, NAN
from libc.stdint cimport int64_t, int8_t, uint8_t, INT64_MIN

cdef enum:
    _ONLINE_N_FEATURES = 6
    ACTION_PLACE = 1
    ACTION_CANCEL = 2


cdef class OrderAction:
    """One order instruction from the online engine to a gateway.

    Attributes
    ----------
    kind : str
        ``"place"`` (a new post-only limit order) or ``"cancel"`` (of ``order_id``).
    side : int
        +1 bid (we buy), -1 ask (we sell).
    order_id : int
        The engine's id of the order (a cancel names the order it cancels).
    price_ticks : int
        Limit price in ticks (0 for a cancel).
    price : float
        ``price_ticks * tick_size`` (0.0 for a cancel).
    size : float
        Amount (0.0 for a cancel).
    ts_us : int
        Local time of the decision, microseconds.
    """

    cdef readonly int kind_code
    cdef readonly int side
    cdef readonly int64_t order_id
    cdef readonly int64_t price_ticks
    cdef readonly double price
    cdef readonly double size
    cdef readonly int64_t ts_us

    @property
    def kind(self):
        return "place" if self.kind_code == ACTION_PLACE else "cancel"

    def to_dict(self):
        return {"kind": self.kind, "side": self.side, "order_id": self.order_id,
                "price_ticks": self.price_ticks, "price": self.price, "size": self.size,
                "ts_us": self.ts_us}

    def __repr__(self):
        side = "bid" if self.side > 0 else "ask"
        if self.kind_code == ACTION_CANCEL:
            return f"OrderAction(cancel {side} #{self.order_id} at {self.ts_us})"
        return (f"OrderAction(place {side} #{self.order_id} {self.size:g} @ {self.price:.10g} "
                f"at {self.ts_us})")

    def __eq__(self, other):
        if not isinstance(other, OrderAction):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


cdef OrderAction _new_action(int kind, int side, int64_t order_id, int64_t ticks, double tick,
                             double size, int64_t ts_us):
    cdef OrderAction a = OrderAction.__new__(OrderAction)
    a.kind_code = kind
    a.side = side
    a.order_id = order_id
    a.price_ticks = ticks
    a.price = <double>ticks * tick if kind == ACTION_PLACE else 0.0
    a.size = size
    a.ts_us = ts_us
    return a


cdef class _OnlineCore:
    """State of one online engine (private: use clusterlob.online.OnlineEngine)."""

    # feature settings
    cdef int levels
    cdef bint strict
    cdef bint aggressor
    cdef double z_clip
    cdef Py_ssize_t window
    # the as-of book of the features: the current one, and the one before the current group
    cdef double[::1] book_state
    cdef int64_t[::1] book_times
    cdef double[::1] book_state_before
    cdef int64_t[::1] book_times_before
    cdef int64_t[::1] snap_ts
    cdef int64_t group_ts_us
    cdef int has_group
    # rolling windows (the RollingState arrays)
    cdef double[:, ::1] ring
    cdef int64_t[::1] n_seen
    cdef int64_t[::1] run_length
    cdef int64_t[::1] since_recompute
    cdef double[::1] shift
    cdef double[::1] mean
    cdef double[::1] m2
    cdef double[::1] m2_peak
    cdef readonly int64_t feature_rows
    # model
    cdef double[:, ::1] centers
    cdef int8_t[::1] cluster_roles
    # the last trade's outputs, as a block of one row for _rolling_column
    cdef double[:, ::1] raw
    cdef double[:, ::1] z
    cdef uint8_t[::1] row_flags
    cdef int64_t[:, ::1] z_counts
    cdef readonly int last_cluster
    cdef readonly int last_role
    cdef readonly int last_flags       # rolling.pxi row flags; 16 = no features (no book / side 0)
    cdef readonly int64_t trades_before_book
    cdef public bint count_trades_before_book
    # quoting and accounts
    cdef QuoteParams p
    cdef ReplayState s
    cdef int any_event
    cdef int64_t next_order_id
    cdef int64_t order_ids[2]          # [_BID], [_ASK]: our last order on that side, 0 = none
    cdef int64_t order_ticks[2]        # its price
    cdef int order_touched[2]          # it has had a fill
    cdef int order_known_done[2]       # it has filled completely (as the responses say)
    cdef public bint changes_only      # keep an untouched order whose price the decision repeats
    cdef readonly list marks
    cdef int64_t mark_interval_us
    # latencies from data (set_data_latencies): the batch replay's rules, event by event
    cdef int feed_data                 # feed_latency "data": events carry their exchange times
    cdef int64_t exch_offset_us        # subtracted from them (the largest exchange - local gap)
    cdef int64_t exchange_clock_us     # the latest exchange time fed (on the local clock)
    cdef int64_t exchange_due_us       # every request of the decisions so far reaches the exchange by then
    cdef int64_t[::1] lat_req          # the order-latency table (empty: the config's constants)
    cdef int64_t[::1] lat_entry
    cdef int64_t[::1] lat_resp
    cdef object lat_source

    def __init__(self, int levels, bint strict, bint aggressor, double z_clip,
                 double[:, ::1] ring, int64_t[::1] n_seen, int64_t[::1] run_length,
                 int64_t[::1] since_recompute, double[::1] shift, double[::1] mean,
                 double[::1] m2, double[::1] m2_peak, double[::1] book_state,
                 int64_t[::1] book_times, int64_t feature_rows,
                 double[:, ::1] centers, int8_t[::1] cluster_roles,
                 dict params):
        import numpy
        self.levels = levels
        self.strict = strict
        self.aggressor = aggressor
        self.z_clip = z_clip
        self.window = ring.shape[1]
        self.ring, self.n_seen, self.run_length = ring, n_seen, run_length
        self.since_recompute, self.shift, self.mean = since_recompute, shift, mean
        self.m2, self.m2_peak = m2, m2_peak
        self.book_state, self.book_times = book_state, book_times
        self.book_state_before = numpy.array(book_state)
        self.book_times_before = numpy.array(book_times)
        self.snap_ts = numpy.zeros(1, numpy.int64)
        self.feature_rows = feature_rows
        self.centers, self.cluster_roles = centers, cluster_roles
        self.raw = numpy.full((1, _ONLINE_N_FEATURES), numpy.nan)
        self.z = numpy.full((1, _ONLINE_N_FEATURES), numpy.nan)
        self.row_flags = numpy.zeros(1, numpy.uint8)
        self.z_counts = numpy.zeros((_ONLINE_N_FEATURES, 4), numpy.int64)
        self.last_cluster = -1
        self.last_role = -1
        _params_from_dict(&self.p, params)
        _state_init(&self.s, params, INT64_MAX)
        self.next_order_id = 1
        self.marks = []
        self.exchange_clock_us = INT64_MIN
        self.exchange_due_us = INT64_MIN
        self.lat_req = self.lat_entry = self.lat_resp = numpy.zeros(0, numpy.int64)
        self.mark_interval_us = self.p.mark_interval_us

    def set_data_latencies(self, bint feed_data, int64_t exchange_offset_us, const int64_t[::1] lat_req_us,
                           const int64_t[::1] lat_entry_us, const int64_t[::1] lat_response_us,
                           str source="order latency"):
        """Latencies from data, before the first event: ``feed_data`` (feed_latency "data": every
        event carries its exchange time, ``exchange_offset_us`` is subtracted from it) and an
        order-latency table (request times, entry and response latencies; empty: the constants),
        validated by clusterlob.replay.latency.OrderLatency."""
        import numpy
        if self.any_event:
            raise ParameterError("latencies from data are set before the first event")
        self.feed_data = feed_data
        self.exch_offset_us = exchange_offset_us
        self.lat_req = numpy.array(lat_req_us, numpy.int64)
        self.lat_entry = numpy.array(lat_entry_us, numpy.int64)
        self.lat_resp = numpy.array(lat_response_us, numpy.int64)
        self.lat_source = source

    # -- checks (before any state changes) -----------------------------------------------
    cdef int _check_time(self, int64_t ts_us) except -1:
        if self.any_event and ts_us < self.s.last_ts_us:
            raise ParameterError(f"`ts_us` must not go backwards: {ts_us} < the last event's {self.s.last_ts_us}")
        return 0

    cdef int64_t _exchange_time(self, int64_t ts_us, object exch_us) except? -1:
        """A market event's checks of the latencies from data (the state unchanged): the
        order-latency table covers ts_us; with feed latency from data, the event's exchange
        time on the local clock (exch_us - offset), which must not be after ts_us."""
        cdef Py_ssize_t n = self.lat_req.shape[0]
        cdef int64_t x
        if n and (ts_us < self.lat_req[0] or ts_us > self.lat_req[n - 1]):
            raise ParameterError(f"{self.lat_source} covers requests from {self.lat_req[0]} to "
                                 f"{self.lat_req[n - 1]} us, but an event arrived at {ts_us} us: it must "
                                 f"cover the whole period")
        if not self.feed_data:
            return ts_us
        if exch_us is None:
            raise ParameterError(f"feed_latency 'data': the event at {ts_us} us needs its exchange time "
                                 f"(`exch_us`)")
        x = <int64_t>exch_us - self.exch_offset_us
        if x > ts_us:
            raise ParameterError(f"feed_latency 'data': the event at {ts_us} us has exchange time "
                                 f"{exch_us} - `exchange_offset_us` {self.exch_offset_us} = {x} us, after it "
                                 f"(a negative feed latency): give a larger `exchange_offset_us`")
        return x

    cdef void _exchange_clock(self, int64_t x) noexcept:
        if x > self.exchange_clock_us:
            self.exchange_clock_us = x

    # -- the clock: equity marks, as the replay writes them (state before the event) -------
    cdef int _clock(self, int64_t t) except -1:
        if not self.any_event:
            self.any_event = 1
            self.s.next_mark_us = (t // self.mark_interval_us + 1) * self.mark_interval_us
        while t >= self.s.next_mark_us:
            self.marks.append((self.s.next_mark_us, _equity(&self.s, &self.p),
                               self.s.cash, self.s.inventory, self.s.mid if self.s.has_mid else NAN,
                               self.s.capture, self.s.drift, self.s.fees, self.s.funding))
            self.s.next_mark_us += self.mark_interval_us
        self.s.last_ts_us = t
        return 0

    # -- features, cluster and role of one trade (asof_trade_features' body) -----------------
    cdef inline int _trade_features(self, int64_t t, int side, double amount) noexcept:
        cdef double[::1] bs = self.book_state
        cdef int64_t[::1] bt = self.book_times
        cdef double consumed, other, sw, dist, best_dist, diff
        cdef int64_t t_change
        cdef int flags = 0, f, j, best
        cdef int k = self.centers.shape[0]
        if self.strict and self.has_group and t == self.group_ts_us:
            bs = self.book_state_before      # the book strictly before this instant
            bt = self.book_times_before
        self.last_cluster = -1
        self.last_role = -1
        if side == 0 or not bt[BT_HAS]:
            self.last_flags = 16
            for f in range(_ONLINE_N_FEATURES):
                self.raw[0, f] = NAN
                self.z[0, f] = NAN
            return 0
        self.raw[0, 0] = amount / bs[BS_TOUCH_SZ]
        if side > 0:
            consumed = bs[BS_LOG_ASK_DEPTH]
            other = bs[BS_LOG_BID_DEPTH]
            t_change = bt[BT_ASK_CHANGE]
        else:
            consumed = bs[BS_LOG_BID_DEPTH]
            other = bs[BS_LOG_ASK_DEPTH]
            t_change = bt[BT_BID_CHANGE]
        if self.aggressor:
            sw = consumed
            consumed = other
            other = sw
        self.raw[0, 1] = consumed
        self.raw[0, 2] = other
        self.raw[0, 3] = bs[BS_SPREAD]
        self.raw[0, 4] = NAN if bt[BT_MID_CHANGE] == _NO_TIME else (t - bt[BT_MID_CHANGE]) * 1e-6
        self.raw[0, 5] = NAN if t_change == _NO_TIME else (t - t_change) * 1e-6
        self.row_flags[0] = 0
        for f in range(_ONLINE_N_FEATURES):
            _rolling_column(self.raw, f, 0, 1, self.ring, self.n_seen, self.run_length,
                            self.since_recompute, self.shift, self.mean, self.m2, self.m2_peak,
                            self.z_clip, self.z, self.row_flags, self.z_counts)
        flags = self.row_flags[0]
        self.feature_rows += 1
        self.last_flags = flags
        if flags & (ROW_WARMUP | ROW_NONFINITE):
            return 0
        # nearest centre (kmeans_lloyd_pass's loop: ties to the lowest index)
        best = 0
        best_dist = 0.0
        for f in range(_ONLINE_N_FEATURES):
            diff = self.z[0, f] - self.centers[0, f]
            best_dist = best_dist + diff * diff
        for j in range(1, k):
            dist = 0.0
            for f in range(_ONLINE_N_FEATURES):
                diff = self.z[0, f] - self.centers[j, f]
                dist = dist + diff * diff
            if dist < best_dist:
                best_dist = dist
                best = j
        self.last_cluster = best
        self.last_role = self.cluster_roles[best]
        return 0

    # -- the quote decision -> order actions -----------------------------------------------
    cdef object _maybe_decide(self, int64_t t):
        """The batch replay's decision (_decide) and what _send sends, as order actions.

        Decides on what the responses have told the engine (known position, outstanding size);
        the next decision waits for the requote interval and every response to this one, and,
        with feed latency from data, until every request sent has reached the exchange (its
        clock: the latest exchange time fed), as the batch replay's does.  The latencies are
        the config's constants or the order-latency table's at t (_latencies).
        """
        if not (self.s.has_mid and t >= self.s.next_decision_us):
            return None
        if self.feed_data and self.exchange_clock_us < self.exchange_due_us:
            return None                  # the batch replay's _exchange_busy, as the engine knows it
        _decide(&self.s, &self.p, t)
        _latencies(&self.s, t, self.lat_req, self.lat_entry, self.lat_resp)
        cdef list out = []
        cdef int k, side
        cdef int64_t last_response = t
        cdef int64_t due = INT64_MIN
        for k in range(2):
            side = 1 if k == _BID else -1
            if (self.changes_only and self.order_ids[k] and not self.order_touched[k]
                    and self.s.dec_size[k] > 0.0 and self.s.dec_ticks[k] == self.order_ticks[k]):
                continue                 # the same quote rests already: nothing to send
            if self.order_ids[k] and not self.order_known_done[k]:
                out.append(_new_action(ACTION_CANCEL, side, self.order_ids[k], 0, self.p.tick, 0.0, t))
                if t + self.s.lat_cancel_us > due:
                    due = t + self.s.lat_cancel_us
                if t + self.s.lat_cancel_us + self.s.lat_response_us > last_response:
                    last_response = t + self.s.lat_cancel_us + self.s.lat_response_us
            self.order_ids[k] = 0
            if self.s.dec_size[k] > 0.0:
                self.order_ids[k] = self.next_order_id
                self.order_ticks[k] = self.s.dec_ticks[k]
                self.order_touched[k] = 0
                self.order_known_done[k] = 0
                self.next_order_id += 1
                self.s.outstanding[k] += self.s.dec_size[k]
                out.append(_new_action(ACTION_PLACE, side, self.order_ids[k], self.s.dec_ticks[k],
                                       self.p.tick, self.s.dec_size[k], t))
                if t + self.s.lat_entry_us > due:
                    due = t + self.s.lat_entry_us
                if t + self.s.lat_entry_us + self.s.lat_response_us > last_response:
                    last_response = t + self.s.lat_entry_us + self.s.lat_response_us
        if due > self.exchange_due_us:
            self.exchange_due_us = due
        self.s.next_decision_us = t + self.p.requote_us
        if last_response > self.s.next_decision_us:
            self.s.next_decision_us = last_response
        return tuple(out)

    # -- events ----------------------------------------------------------------------------
    def on_trade(self, int64_t ts_us, double price, double amount, int side, exch_us=None):
        """One trade; returns a tuple of OrderAction when a decision was taken, else None.
        ``exch_us``: its exchange time (needed with feed latency from data)."""
        if not (isfinite(price) and price > 0.0):
            raise ParameterError(f"trade `price` must be a finite number > 0, got {price!r}")
        if not (isfinite(amount) and amount > 0.0):
            raise ParameterError(f"trade `amount` must be a finite number > 0, got {amount!r}")
        if side < -1 or side > 1:
            raise ParameterError(f"trade `side` must be -1, 0 or +1, got {side}")
        self._check_time(ts_us)
        if not self.book_times[BT_HAS] and not self.count_trades_before_book:
            raise ParameterError(f"a trade at {ts_us} arrived before any book update; send a book "
                                 f"update first")
        cdef int64_t x = self._exchange_time(ts_us, exch_us)
        self._clock(ts_us)
        self._exchange_clock(x)
        if not self.book_times[BT_HAS] and side != 0:
            self.trades_before_book += 1
        self._trade_features(ts_us, side, amount)
        if side != 0:
            acc_add(&self.s.acc, ts_us, <double>side, amount,
                    self.p.to_alpha[<uint8_t><int8_t>self.last_role],
                    self.p.to_hazard[<uint8_t><int8_t>self.last_role])
        self.s.n_trades += 1
        return self._maybe_decide(ts_us)

    def on_book(self, int64_t ts_us, const double[:, :] levels, exch_us=None):
        """One book update, ``levels`` (4, >= D): bid_px, bid_sz, ask_px, ask_sz, best first;
        ``exch_us`` its exchange time (needed with feed latency from data)."""
        cdef Py_ssize_t lv
        cdef int64_t x_us
        cdef int row
        cdef double b0, a0, x
        if levels.shape[0] != 4 or levels.shape[1] < self.levels:
            raise ParameterError(f"book `levels` must have shape (4, >= {self.levels}), got "
                                 f"{tuple(levels.shape)[:2]}")
        b0 = levels[0, 0]
        a0 = levels[2, 0]
        if not (isfinite(b0) and isfinite(a0) and levels[1, 0] > 0.0 and levels[3, 0] > 0.0
                and isfinite(levels[1, 0]) and isfinite(levels[3, 0])):
            raise ParameterError(f"book touch must be finite prices with sizes > 0, got bid {b0!r} x "
                                 f"{levels[1, 0]!r}, ask {a0!r} x {levels[3, 0]!r}")
        if not b0 < a0:
            raise ParameterError(f"book is crossed or locked: best bid {b0!r} >= best ask {a0!r}")
        for lv in range(1, self.levels):      # a missing level is NaN; a present one has size > 0
            for row in (1, 3):
                x = levels[row, lv]
                if not (x != x or (x > 0.0 and isfinite(x))):
                    raise ParameterError(f"book level {lv}: {'bid' if row == 1 else 'ask'} size must be "
                                         f"> 0 and finite (NaN: no level), got {x!r}")
        self._check_time(ts_us)
        x_us = self._exchange_time(ts_us, exch_us)
        self._clock(ts_us)
        self._exchange_clock(x_us)
        if not self.has_group or ts_us != self.group_ts_us:
            self.book_state_before[:] = self.book_state
            self.book_times_before[:] = self.book_times
            self.group_ts_us = ts_us
            self.has_group = 1
        self.snap_ts[0] = ts_us
        _pass_snapshot(0, self.snap_ts, levels[0:1, :], levels[2:3, :], self.book_state, self.book_times)
        _read_sizes(0, levels[1:2, :], levels[3:4, :], self.levels, self.p.tick, self.p.contract_size,
                    self.book_state)     # contract_size: the instrument's flow unit (features.pxi)
        cdef double new_mid = 0.5 * (b0 + a0)
        if self.s.has_mid:
            self.s.drift = self.s.drift + self.s.inventory * (_unit_value(&self.p, new_mid) - _unit_value(&self.p, self.s.mid))
        self.s.mid = new_mid
        self.s.best_bid = b0
        self.s.best_ask = a0
        self.s.has_mid = 1
        self.s.n_book += 1
        return self._maybe_decide(ts_us)

    def on_fill(self, int64_t ts_us, int side, int64_t order_id, double price, double qty, bint done):
        """Our fill, as the gateway reports it at ``ts_us``: ``side`` +1 we bought (bid), -1 we
        sold; ``done`` it finished the order.  Books it in the engine's accounts (as known) and
        in what the next decision knows; returns the fee paid."""
        if side != 1 and side != -1:
            raise ParameterError(f"fill `side` must be +1 (bought) or -1 (sold), got {side}")
        if not (isfinite(price) and price > 0.0 and isfinite(qty) and qty > 0.0):
            raise ParameterError(f"fill `price` and `qty` must be finite numbers > 0, got {price!r}, {qty!r}")
        if self.feed_data and self.any_event and ts_us < self.s.last_ts_us:
            # feed latency from data: the notice of a fill can beat the market data showing its
            # trade (it left the exchange at the trade's exchange time); booked at the last event
            ts_us = self.s.last_ts_us
        self._check_time(ts_us)
        self._clock(ts_us)
        cdef double q = qty, px = price, fee
        cdef double value = _unit_value(&self.p, px)        # replay.pxi's _fill, step for step
        cdef double mid_value = _unit_value(&self.p, self.s.mid) if self.s.has_mid else 0.0
        cdef double notional = _unit_notional(&self.p, px)
        if side < 0:        # a buy taker lifted our ask: we sold
            self.s.inventory = self.s.inventory - q
            self.s.cash = self.s.cash + q * value
            self.s.capture = self.s.capture + q * (value - mid_value)
        else:
            self.s.inventory = self.s.inventory + q
            self.s.cash = self.s.cash - q * value
            self.s.capture = self.s.capture + q * (mid_value - value)
        fee = q * notional * self.p.maker_fee_bps * 1e-4
        self.s.cash = self.s.cash - fee
        self.s.fees = self.s.fees + fee
        self.s.volume = self.s.volume + q
        self.s.notional = self.s.notional + q * notional
        if fabs(self.s.inventory) > self.s.max_abs_inventory:
            self.s.max_abs_inventory = fabs(self.s.inventory)
        self.s.n_fills += 1
        cdef int k = _BID if side > 0 else _ASK
        # what the decision knows (the batch replay's response, field for field)
        self.s.known_inventory += q if side > 0 else -q
        self.s.outstanding[k] += -q
        self._clamp_outstanding()
        if self.order_ids[k] == order_id:
            self.order_touched[k] = 1
            if done:
                self.order_known_done[k] = 1
        return fee

    def on_funding(self, int64_t ts_us, double amount):
        """A funding payment on our position, as the gateway reports it at ``ts_us``: ``amount``
        paid (negative: received).  Books it in the engine's accounts (cash, funding); the
        venue computed it (the simulated gateway with the batch replay's rule), so the engine
        holds no second copy of the rule, and the quote decision does not use it."""
        if not isfinite(amount):
            raise ParameterError(f"funding `amount` must be a finite number, got {amount!r}")
        if self.feed_data and self.any_event and ts_us < self.s.last_ts_us:
            ts_us = self.s.last_ts_us       # as a fill's notice (on_fill)
        self._check_time(ts_us)
        self._clock(ts_us)
        self.s.cash = self.s.cash - amount
        self.s.funding = self.s.funding + amount

    def order_gone(self, int64_t order_id, int side=0, double qty=0.0):
        """The gateway says ``order_id`` (on ``side`` +1 bid / -1 ask) is cancelled or rejected,
        ``qty`` of it unfilled: forget it, and count that size out of what may still fill."""
        cdef int k
        for k in range(2):
            if self.order_ids[k] == order_id:
                self.order_ids[k] = 0
        if side != 0:
            k = _BID if side > 0 else _ASK
            self.s.outstanding[k] += -qty
            self._clamp_outstanding()

    cdef void _clamp_outstanding(self):
        cdef int k
        for k in range(2):
            if self.s.outstanding[k] < _SIZE_TOL:
                self.s.outstanding[k] = 0.0

    # -- read-outs -----------------------------------------------------------------------
    def features(self):
        """(raw (6,), z (6,)) copies for the last trade."""
        import numpy
        return numpy.array(self.raw[0]), numpy.array(self.z[0])

    def signals(self, int64_t ts_us):
        cdef double alpha, hazard
        acc_values(&self.s.acc, ts_us, &alpha, &hazard)
        return alpha, hazard

    def live_order_ids(self):
        """(bid id, ask id) of the orders the engine believes may still fill; 0 = none."""
        return (0 if self.order_known_done[_BID] else self.order_ids[_BID],
                0 if self.order_known_done[_ASK] else self.order_ids[_ASK])

    def last_decision(self):
        """(bid_ticks or None, ask_ticks or None) of the last decision."""
        if not self.s.n_decisions:
            return None, None
        return (self.s.dec_ticks[_BID] if self.s.dec_size[_BID] > 0 else None,
                self.s.dec_ticks[_ASK] if self.s.dec_size[_ASK] > 0 else None)

    @property
    def has_book(self):
        return bool(self.book_times[BT_HAS])

    @property
    def last_ts_us(self):
        return self.s.last_ts_us if self.any_event else None

    @property
    def mid(self):
        return self.s.mid if self.s.has_mid else NAN

    @property
    def inventory(self):
        return self.s.inventory

    @property
    def cash(self):
        return self.s.cash

    def snapshot(self):
        """Accounts and counters, the keys of _ReplayEngine.snapshot."""
        return _snapshot(&self.s, &self.p)

    def _state_bytes(self):
        """Every field of the state, as bytes, for the tests' "unchanged on error" check."""
        import numpy
        arrays = [self.book_state, self.book_times, self.book_state_before, self.book_times_before,
                  self.ring, self.n_seen, self.run_length, self.since_recompute, self.shift,
                  self.mean, self.m2, self.m2_peak, self.raw, self.z]
        parts = [numpy.asarray(a).tobytes() for a in arrays]
        parts.append(bytes((<char*>&self.s)[:sizeof(ReplayState)]))
        parts.append(repr((self.exchange_clock_us, self.exchange_due_us, self.group_ts_us, self.has_group, self.feature_rows, self.last_cluster,
                           self.last_role, self.last_flags, self.trades_before_book, self.any_event,
                           self.next_order_id, self.order_ids[0], self.order_ids[1],
                           self.order_ticks[0], self.order_ticks[1], self.order_touched[0],
                           self.order_touched[1], self.order_known_done[0], self.order_known_done[1],
                           len(self.marks))).encode())
        return b"".join(parts)
