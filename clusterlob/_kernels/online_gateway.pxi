# The simulated gateway's exchange (clusterlob.replay.gateway.SimulatedGateway).
#
# It is the batch replay's exchange, not a copy of it: the same ReplayState and the same
# functions of replay.pxi (_arrivals: orders and cancels reaching the exchange, post-only on
# arrival, the queue they join, responses reaching the strategy; _on_trade / _on_book: the fill
# models, the queue rules, book-through fills; _fill: the accounts), driven one event at a time.
# Only the quote decision is missing: order actions come from the engine (OrderAction,
# online.pxi) through submit(), which sends them as the batch replay's _send does.  Responses
# (fills, cancel acks, rejects) are handed back as tuples once the response latency has passed,
# so the engine learns what the batch replay's strategy learns, when it learns it
# (tests/test_online.py compares the two under every fill model).  Funding is paid by the batch
# replay's _pay_funding at the batch clock's times (a rate series or the constant rate) and
# reported as a ("funding", ...) response at the event that reached the funding time.
# Latencies from data (set_data_latencies) are the batch replay's too: the order-latency table
# interpolated at each submit (_latencies, as at each batch decision), and with feed latency from
# data the exchange's work (_arrivals, _on_trade, _on_book) at each event's exchange time.

from libc.stdint cimport int64_t, INT64_MAX


cdef class _SimExchange:
    """Matching engine of the simulated gateway (private: use clusterlob.gateway)."""

    cdef QuoteParams p
    cdef ReplayState s
    cdef double[:, ::1] book            # the last book update (4, L): bid_px, bid_sz, ask_px, ask_sz
    cdef int has_book
    cdef int any_event
    cdef int64_t[::1] funding_ts
    cdef double[::1] funding_rate
    cdef double funding_constant        # with no series: this rate every funding_interval_us
    cdef int64_t funding_interval_us
    cdef int64_t[:, ::1] fill_ints      # scratch rows for one event's fills
    cdef double[:, ::1] fill_floats
    cdef readonly list events           # responses delivered and not yet taken: tuples, gateway.py
    cdef readonly list fills            # every fill: (trade_index, ts_us, FILL_FLOAT_COLUMNS...)
    cdef readonly list marks            # (ts_us, MARK_FLOAT_COLUMNS...)
    cdef readonly int64_t n_unknown_cancels
    cdef readonly int64_t n_trades_seen
    # latencies from data (set_data_latencies)
    cdef int feed_data                  # feed_latency "data": the exchange works at each event's exchange time
    cdef int64_t exch_offset_us         # subtracted from the exchange times (onto the local clock)
    cdef int64_t last_x                 # the last event's exchange time, on the local clock
    cdef int64_t[::1] lat_req           # the order-latency table (empty: the config's constants)
    cdef int64_t[::1] lat_entry
    cdef int64_t[::1] lat_resp

    def __init__(self, dict params, int levels, funding_ts_us=None, funding_rate=None,
                 double funding_constant=0.0, int64_t funding_interval_us=0):
        import numpy
        _params_from_dict(&self.p, params)
        self.p.keep_unchanged = 0           # it sends what the engine sent, nothing else
        _state_init(&self.s, params, INT64_MAX)
        self.s.log_deliveries = 1
        self.book = numpy.full((4, max(levels, 1)), numpy.nan)
        self.funding_ts = numpy.ascontiguousarray(funding_ts_us if funding_ts_us is not None else [], numpy.int64)
        self.funding_rate = numpy.ascontiguousarray(funding_rate if funding_rate is not None else [], numpy.float64)
        self.funding_constant = funding_constant
        self.funding_interval_us = funding_interval_us
        self.fill_ints = numpy.zeros((8, 2), numpy.int64)
        self.fill_floats = numpy.zeros((8, 9))
        self.events = []
        self.fills = []
        self.marks = []
        self.lat_req = self.lat_entry = self.lat_resp = numpy.zeros(0, numpy.int64)

    def set_data_latencies(self, bint feed_data, int64_t exchange_offset_us, const int64_t[::1] lat_req_us,
                           const int64_t[::1] lat_entry_us, const int64_t[::1] lat_response_us):
        """Latencies from data, before the first event: feed latency from the events' exchange
        times (minus ``exchange_offset_us``) and an order-latency table (empty: the constants)."""
        import numpy
        if self.any_event:
            raise ParameterError("latencies from data are set before the first event")
        self.feed_data = feed_data
        self.exch_offset_us = exchange_offset_us
        self.lat_req = numpy.array(lat_req_us, numpy.int64)
        self.lat_entry = numpy.array(lat_entry_us, numpy.int64)
        self.lat_resp = numpy.array(lat_response_us, numpy.int64)

    # -- orders from the engine: the batch replay's _send, with the sides the engine acted on ----
    def submit(self, tuple actions, int64_t ts_us):
        """Send order actions decided at ``ts_us``; they reach the exchange a latency later."""
        cdef OrderAction a
        cdef int k, slot, placed[2]
        cdef int64_t ids[2]
        cdef int cancel[2]
        cancel[0] = cancel[1] = 0
        placed[0] = placed[1] = 0
        self.s.dec_size[0] = self.s.dec_size[1] = 0.0
        for obj in actions:
            a = <OrderAction?>obj
            k = _BID if a.side > 0 else _ASK
            if a.kind_code == ACTION_CANCEL:
                slot = self.s.cur[k]
                if self.s.orders[slot].order_id == a.order_id and self.s.orders[slot].state != _ORDER_FREE:
                    cancel[k] = 1
                else:
                    self.n_unknown_cancels += 1     # not our current order there: nothing to do
            else:
                if placed[k]:
                    raise ParameterError("one place per side per decision")
                placed[k] = 1
                ids[k] = a.order_id
                self.s.dec_ticks[k] = a.price_ticks
                self.s.dec_size[k] = a.size
        _latencies(&self.s, ts_us, self.lat_req, self.lat_entry, self.lat_resp)
        _send_sides(&self.s, &self.p, ts_us, cancel)
        for k in range(2):
            if placed[k]:
                self.s.orders[self.s.cur[k]].order_id = ids[k]

    # -- the clock and the events ----------------------------------------------------------------
    cdef int _clock(self, int64_t t, int64_t x) except -1:
        """Marks, funding, then orders, cancels and responses due by t (the batch replay's
        clock work, in the same order)."""
        cdef double row[8]
        cdef double rate, pay
        cdef int64_t due
        cdef list paid = []
        if not self.any_event:
            self.any_event = 1
            self.s.next_mark_us = (t // self.p.mark_interval_us + 1) * self.p.mark_interval_us
            if self.funding_ts.shape[0]:
                self.s.next_funding_us = self.funding_ts[0]
            elif self.funding_constant != 0.0:
                self.s.next_funding_us = (t // self.funding_interval_us + 1) * self.funding_interval_us
        while t >= self.s.next_mark_us or t >= self.s.next_funding_us:
            if self.s.next_mark_us <= self.s.next_funding_us:
                _write_mark(&self.s, &self.p, row)
                self.marks.append((self.s.next_mark_us, row[0], row[1], row[2], row[3], row[4],
                                   row[5], row[6], row[7]))
                self.s.next_mark_us += self.p.mark_interval_us
            else:
                due = self.s.next_funding_us
                if self.funding_ts.shape[0]:
                    rate = self.funding_rate[self.s.i_funding]
                    self.s.i_funding += 1
                    self.s.next_funding_us = (self.funding_ts[self.s.i_funding]
                                              if self.s.i_funding < self.funding_ts.shape[0] else INT64_MAX)
                else:
                    rate = self.funding_constant
                    self.s.next_funding_us += self.funding_interval_us
                if self.s.has_mid:
                    pay = _pay_funding(&self.s, &self.p, rate)
                    paid.append(("funding", due, rate, pay, t))
        if t >= self.s.next_event_us:
            _arrivals(&self.s, &self.p, t, x, self.book[0:1, :], self.book[1:2, :], self.book[2:3, :],
                      self.book[3:4, :], 0 if self.has_book else -1)
            _flags(&self.s, &self.p, t)
            self._take_delivered()
        if paid:        # reported at t, the event that reached the funding time: after the
            self.events.extend(paid)    # responses of this step (they reached us by t)
        self.s.last_ts_us = t
        return 0

    cdef void _take_delivered(self):
        cdef int j
        cdef Note* n
        for j in range(self.s.n_delivered):
            n = &self.s.delivered[j]
            side = 1 if n.side == _BID else -1
            if n.kind == _NOTE_FILL:
                self.events.append(("fill", n.exchange_us, n.order_id, side, n.price, n.qty,
                                    n.remaining, n.at_us))
            elif n.kind == _NOTE_CANCELLED:
                self.events.append(("cancelled", n.exchange_us, n.order_id, "", side, n.qty, n.at_us))
            else:
                self.events.append(("rejected", n.exchange_us, n.order_id,
                                    "post-only: would cross the book on arrival", side, n.qty, n.at_us))
        self.s.n_delivered = 0

    cdef void _keep_fills(self, Py_ssize_t nf):
        cdef Py_ssize_t j
        for j in range(nf):
            self.fills.append((self.fill_ints[j, 0], self.fill_ints[j, 1],
                               *[self.fill_floats[j, c] for c in range(9)]))

    cdef int64_t _x(self, int64_t ts_us, object exch_us) except? -1:
        """The exchange's clock for an event at ts_us: its exchange time on the local clock
        with feed latency from data, else ts_us."""
        if not self.feed_data:
            return ts_us
        if exch_us is None:
            raise ParameterError(f"feed_latency 'data': the event at {ts_us} us needs its exchange time")
        self.last_x = <int64_t>exch_us - self.exch_offset_us
        return self.last_x

    def advance(self, int64_t ts_us):
        """The clock work up to ``ts_us`` (the exchange's clock stays at the last event's
        exchange time); True if responses are waiting."""
        self._clock(ts_us, self.last_x if self.feed_data and self.any_event else ts_us)
        return len(self.events) > 0

    def on_trade(self, int64_t ts_us, double price, double amount, int side, exch_us=None):
        """The clock work up to ``ts_us``, then one trade; True if responses are waiting.

        ``exch_us``: the trade's exchange time (used with feed latency from data)."""
        cdef Py_ssize_t nf
        cdef int64_t x = self._x(ts_us, exch_us)
        self._clock(ts_us, x)
        nf = _on_trade(&self.s, &self.p, ts_us, x, self.n_trades_seen, price, amount, side, -1,
                       self.fill_ints, self.fill_floats, 0)
        self.s.n_trades += 1
        self.n_trades_seen += 1
        if nf:
            self._keep_fills(nf)
        return len(self.events) > 0

    def on_book(self, int64_t ts_us, const double[:, :] levels, exch_us=None):
        """The clock work up to ``ts_us``, then one book update ``levels`` (4, >= 1)."""
        cdef Py_ssize_t nf, lv, nl = self.book.shape[1]
        cdef int r
        cdef int64_t x = self._x(ts_us, exch_us)
        self._clock(ts_us, x)
        for lv in range(nl):
            for r in range(4):
                self.book[r, lv] = levels[r, lv] if lv < levels.shape[1] else NAN
        self.has_book = 1
        nf = _on_book(&self.s, &self.p, ts_us, x, self.book[0:1, :], self.book[1:2, :],
                      self.book[2:3, :], self.book[3:4, :], 0, self.fill_ints, self.fill_floats, 0)
        if nf:
            self._keep_fills(nf)
        return len(self.events) > 0

    def take_events(self):
        """The waiting responses (and forget them)."""
        out = self.events
        self.events = []
        return out

    def finish(self):
        """Close the time shares at the last event's time."""
        _flags(&self.s, &self.p, self.s.last_ts_us)

    def snapshot(self):
        """Accounts and exchange counters (the keys of _ReplayEngine.snapshot)."""
        return _snapshot(&self.s, &self.p)

    def resting(self):
        """((bid id, ticks, size), (ask id, ticks, size)) of the newest live order per side."""
        out = []
        for k in range(2):
            o = &self.s.orders[self.s.cur[k]]
            if o.state == _ORDER_LIVE and o.size > 0.0:
                out.append((o.order_id, o.ticks, o.size))
            else:
                out.append((0, 0, 0.0))
        return tuple(out)

    @property
    def in_flight(self):
        """Places and cancels sent that have not reached the exchange yet."""
        cdef int j, n = 0
        for j in range(4):
            if self.s.orders[j].state == _ORDER_IN_FLIGHT:
                n += 1
            if self.s.orders[j].state != _ORDER_FREE and self.s.orders[j].cancel_at_us != INT64_MAX:
                n += 1
        return n

    @property
    def last_ts_us(self):
        return self.s.last_ts_us if self.any_event else None

    @property
    def n_cancelled(self):
        return self.s.n_cancels

    @property
    def n_rejected(self):
        return self.s.n_rejected[0] + self.s.n_rejected[1]
