# The simulated gateway's matching engine (clusterlob.gateway.SimulatedGateway).
#
# One resting order per side; order actions (OrderAction, online.pxi) reach it
# order_latency later, in FIFO order; a trade fills the order on the side it consumes at
# the trade's own price, replay.pxi's fill rule (cross: beyond our price, touch: at or
# beyond, within _GRID_TOL ticks), for at most the order's remaining size.  Acks and fills
# are kept as small tuples until the gateway takes them.  The batch replay (and its plain
# twin tests/reference_replay.py) is the reference: tests/test_online.py, test_gateway.py.

from libc.stdint cimport int64_t, INT64_MIN

cdef enum:
    _SIM_QUEUE = 64                 # actions in flight at once (a decision sends <= 4)


cdef class _SimExchange:
    """Matching engine of the simulated gateway (private: use clusterlob.gateway)."""

    cdef double tick
    cdef int64_t latency_us
    cdef bint touch
    # resting orders, [_BID] / [_ASK]
    cdef int64_t live_id[2]
    cdef int64_t live_ticks[2]
    cdef double live_size[2]
    # in flight: a FIFO ring of actions
    cdef int64_t q_arrive[_SIM_QUEUE]
    cdef int q_kind[_SIM_QUEUE]
    cdef int q_side[_SIM_QUEUE]
    cdef int64_t q_id[_SIM_QUEUE]
    cdef int64_t q_ticks[_SIM_QUEUE]
    cdef double q_size[_SIM_QUEUE]
    cdef Py_ssize_t q_head
    cdef Py_ssize_t q_len
    cdef readonly int64_t last_ts_us
    cdef readonly list events          # acks and fills not yet polled: tuples, see gateway.py
    cdef public bint quiet             # count "accepted" / "cancelled" acks instead of listing them
    cdef readonly int64_t n_accepted
    cdef readonly int64_t n_cancelled
    cdef readonly int64_t n_rejected

    def __init__(self, double tick, int64_t latency_us, bint touch):
        self.tick = tick
        self.latency_us = latency_us
        self.touch = touch
        self.events = []
        self.last_ts_us = INT64_MIN

    def submit(self, tuple actions, int64_t ts_us):
        """Queue order actions sent at ``ts_us``; they reach the exchange latency later."""
        cdef OrderAction a
        cdef Py_ssize_t slot
        if self.q_len + len(actions) > _SIM_QUEUE:
            raise ParameterError(f"more than {_SIM_QUEUE} order actions in flight")
        for obj in actions:
            a = <OrderAction?>obj
            slot = (self.q_head + self.q_len) % _SIM_QUEUE
            self.q_arrive[slot] = ts_us + self.latency_us
            self.q_kind[slot] = a.kind_code
            self.q_side[slot] = a.side
            self.q_id[slot] = a.order_id
            self.q_ticks[slot] = a.price_ticks
            self.q_size[slot] = a.size
            self.q_len += 1

    cdef inline void _arrive(self, int64_t t):
        cdef Py_ssize_t h
        cdef int k
        while self.q_len and self.q_arrive[self.q_head] <= t:
            h = self.q_head
            k = _BID if self.q_side[h] > 0 else _ASK
            if self.q_kind[h] == ACTION_CANCEL:
                if self.live_id[k] == self.q_id[h] and self.live_size[k] > 0.0:
                    self.live_id[k] = 0
                    self.live_size[k] = 0.0
                    self.n_cancelled += 1
                    if not self.quiet:
                        self.events.append(("cancelled", self.q_arrive[h], self.q_id[h], ""))
                else:
                    self.n_rejected += 1
                    self.events.append(("rejected", self.q_arrive[h], self.q_id[h],
                                        "cancel of an order that is not resting"))
            elif self.live_size[k] > 0.0:
                self.n_rejected += 1
                self.events.append(("rejected", self.q_arrive[h], self.q_id[h],
                                    "one resting order per side: cancel the other first"))
            else:
                self.live_id[k] = self.q_id[h]
                self.live_ticks[k] = self.q_ticks[h]
                self.live_size[k] = self.q_size[h]
                self.n_accepted += 1
                if not self.quiet:
                    self.events.append(("accepted", self.q_arrive[h], self.q_id[h], ""))
            self.q_head = (h + 1) % _SIM_QUEUE
            self.q_len -= 1

    def advance(self, int64_t ts_us):
        """Let actions whose latency has elapsed reach the exchange; True if events are waiting."""
        self._arrive(ts_us)
        self.last_ts_us = ts_us
        return len(self.events) > 0

    def on_trade(self, int64_t ts_us, double price, double amount, int side):
        """Arrivals up to ``ts_us``, then the fill check of one trade; True if events are waiting."""
        cdef int k
        cdef double size, edge, q
        self._arrive(ts_us)
        self.last_ts_us = ts_us
        if side != 0:
            k = (side + 1) >> 1
            size = self.live_size[k]
            if size > 0.0:
                edge = <double>side * (price / self.tick - <double>self.live_ticks[k])
                if (edge >= -_GRID_TOL) if self.touch else (edge > _GRID_TOL):
                    q = amount
                    if size < q:
                        q = size
                    self.live_size[k] = size - q
                    self.events.append(("fill", ts_us, self.live_id[k], -side,
                                        <double>self.live_ticks[k] * self.tick, q, self.live_size[k]))
                    if self.live_size[k] <= 0.0:
                        self.live_id[k] = 0
        return len(self.events) > 0

    def take_events(self):
        """The waiting events (and forget them)."""
        out = self.events
        self.events = []
        return out

    def resting(self):
        """((bid id, ticks, size), (ask id, ticks, size)); id 0 = none."""
        return ((self.live_id[_BID], self.live_ticks[_BID], self.live_size[_BID]),
                (self.live_id[_ASK], self.live_ticks[_ASK], self.live_size[_ASK]))

    @property
    def in_flight(self):
        return self.q_len
