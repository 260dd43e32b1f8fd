# Trade features: one merge pass over trades and book snapshots (both in time order).
#
# For each trade the book pointer advances over the snapshots strictly before the trade
# (or at-or-before it); each snapshot passed updates the "current book" (touch prices)
# and the times of the last change of the mid and of each side's best price; the sizes
# (touch size, top-D depth per side, already through log1p) are read once per snapshot
# that a trade actually sees.  The current book is carried in two small arrays so that
# a tape processed day by day gives exactly the one-pass result.

from libc.math cimport log1p, NAN, fabs, round as c_round
from libc.stdint cimport int64_t, int8_t, INT64_MIN

# book_state (float64): the current snapshot's touch prices, touch size (bid_sz[0] +
# ask_sz[0]), log1p of the top-D depth of each side, spread in ticks
cdef enum:
    BS_BID_PX = 0
    BS_ASK_PX = 1
    BS_TOUCH_SZ = 2
    BS_LOG_BID_DEPTH = 3
    BS_LOG_ASK_DEPTH = 4
    BS_SPREAD = 5
# book_times (int64): has a snapshot, its time, last change of mid / best bid / best ask
cdef enum:
    BT_HAS = 0
    BT_TS = 1
    BT_MID_CHANGE = 2
    BT_BID_CHANGE = 3
    BT_ASK_CHANGE = 4

cdef int64_t _NO_TIME = INT64_MIN   # "no change seen yet"

# The columns of ``raw`` in the order the merge pass writes them (clusterlob.features re-exports
# this as FEATURE_NAMES).
FEATURE_COLUMNS = ("v_rel", "sbs", "obs", "spread", "t_m", "t_age")

# The layout above, for Python (the feature cache patches carried book times): defined here only.
BOOK_STATE_SIZE = BS_SPREAD + 1
BOOK_TIMES_SIZE = BT_ASK_CHANGE + 1
BOOK_TIMES_HAS, BOOK_TIMES_TS = BT_HAS, BT_TS
BOOK_TIMES_MID_CHANGE, BOOK_TIMES_BID_CHANGE, BOOK_TIMES_ASK_CHANGE = BT_MID_CHANGE, BT_BID_CHANGE, BT_ASK_CHANGE
BOOK_NO_TIME = INT64_MIN


def new_book_state():
    """``(book_state, book_times)`` of a book that has seen no snapshot: NaN (6,) float64 and
    int64 (5,) with no snapshot and no change seen yet (the layout above)."""
    import numpy
    book_state = numpy.full(BOOK_STATE_SIZE, numpy.nan)
    book_times = numpy.full(BOOK_TIMES_SIZE, INT64_MIN, dtype=numpy.int64)
    book_times[BT_HAS] = 0
    book_times[BT_TS] = 0
    return book_state, book_times


# Everything the merge pass needs from FeatureSettings and the instrument, as one struct: Python
# builds it in one place (clusterlob.features.build._kernel_params) and passes it as a dict with
# these keys, so two numbers cannot be swapped by position.
cdef struct FeatureParams:
    int levels              # D, top book levels summed into the depths
    bint strict             # asof "strict": only snapshots strictly before the trade
    double tick_size        # spread in ticks
    bint aggressor          # convention "aggressor": sbs and obs swapped


cdef inline bint _differs(double a, double b) noexcept nogil:
    # a missing value (NaN) equals another missing value
    return not (a == b or (a != a and b != b))


cdef inline void _pass_snapshot(Py_ssize_t b, const int64_t[::1] book_ts_us,
                                const double[:, :] bid_px, const double[:, :] ask_px,
                                double[::1] book_state, int64_t[::1] book_times) noexcept nogil:
    # Snapshot row b becomes current: record which touch prices it changed.  Its sizes
    # are read later, by _read_sizes, and only if a trade sees it.
    cdef double b0 = bid_px[b, 0], a0 = ask_px[b, 0]
    if book_times[BT_HAS]:
        if _differs(0.5 * (b0 + a0), 0.5 * (book_state[BS_BID_PX] + book_state[BS_ASK_PX])):
            book_times[BT_MID_CHANGE] = book_ts_us[b]
        if _differs(b0, book_state[BS_BID_PX]):
            book_times[BT_BID_CHANGE] = book_ts_us[b]
        if _differs(a0, book_state[BS_ASK_PX]):
            book_times[BT_ASK_CHANGE] = book_ts_us[b]
    book_state[BS_BID_PX] = b0
    book_state[BS_ASK_PX] = a0
    book_times[BT_HAS] = 1
    book_times[BT_TS] = book_ts_us[b]


cdef inline void _read_sizes(Py_ssize_t b, const double[:, :] bid_sz, const double[:, :] ask_sz,
                             int levels, double tick_size, double flow_unit,
                             double[::1] book_state) noexcept nogil:
    # The per-snapshot numbers the features use, from snapshot row b (already current).  The
    # depths are in flow units (an inverse contract's quote-currency notional; x 1.0, exact,
    # for a plain linear tape); the touch size is left in amounts: v_rel is a ratio of two
    # amounts, the same in any unit.
    cdef double dbid = 0.0, dask = 0.0, x
    cdef Py_ssize_t lv
    for lv in range(levels):    # a missing level (NaN) counts 0
        x = bid_sz[b, lv]
        if x == x:
            dbid += x
        x = ask_sz[b, lv]
        if x == x:
            dask += x
    book_state[BS_TOUCH_SZ] = bid_sz[b, 0] + ask_sz[b, 0]
    book_state[BS_LOG_BID_DEPTH] = log1p(dbid * flow_unit)
    book_state[BS_LOG_ASK_DEPTH] = log1p(dask * flow_unit)
    book_state[BS_SPREAD] = _ticks((book_state[BS_ASK_PX] - book_state[BS_BID_PX]) / tick_size)


cdef inline double _ticks(double x) noexcept nogil:
    # Prices on the tick grid give a whole number of ticks; the division leaves float noise
    # (1.00000000006) that a rolling std would standardise into a fake feature.  Snap to the
    # whole number when within 1e-6 of it; an off-grid spread keeps its fraction.
    cdef double r = c_round(x)
    return r if fabs(x - r) < 1e-6 else x


# queue_state (float64, 8): per side (bid 0..3, ask 4..7) the best price, its size, the
# level-2 price and its size of the last snapshot passed; queue_times (int64, 4): per side
# (bid 0..1, ask 2..3) when the best level and the level-2 queue last grew.  Used for
# t_queue only (with_queue); kept apart so the six features' state keeps its layout.
cdef enum:
    QS_PX1 = 0
    QS_SZ1 = 1
    QS_PX2 = 2
    QS_SZ2 = 3
    QS_ASK = 4          # offset of the ask side in queue_state
    QT_ASK = 2          # offset of the ask side in queue_times


cdef inline void _pass_queue_side(double p1, double q1, double p2, double q2, double better,
                                  int64_t t, double[::1] qs, Py_ssize_t o,
                                  int64_t[::1] qt, Py_ssize_t ot, bint has_prev) noexcept nogil:
    # One side of a snapshot at time t: when did its best queue and its level-2 queue last
    # grow?  A queue grew when its price is unchanged and its size rose, or when a new price
    # level formed (the best price improved: better * (p1 - old p1) > 0).  A queue that moves
    # up from level 2 keeps level 2's time unless it also grew; one we never saw in the top
    # two levels counts as grown now (its history is unknown to an L2 top-2 view).
    cdef double P1 = qs[o + QS_PX1], Q1 = qs[o + QS_SZ1], P2 = qs[o + QS_PX2], Q2 = qs[o + QS_SZ2]
    cdef int64_t G1 = qt[ot], G2 = qt[ot + 1], g1 = G1, g2 = G2
    if p1 != p1:        # no best level in this snapshot: nothing to say
        return
    if has_prev and P1 == P1:
        if p1 == P1:
            g1 = t if q1 > Q1 else G1
        elif better * (p1 - P1) > 0:
            g1 = t
        elif p1 == P2:
            g1 = t if q1 > Q2 else G2
        else:
            g1 = t
        if p2 != p2:
            g2 = _NO_TIME
        elif p2 == P2:
            g2 = t if q2 > Q2 else G2
        elif p2 == P1:
            g2 = t if q2 > Q1 else G1
        else:
            g2 = t
    else:
        g1 = _NO_TIME
        g2 = _NO_TIME
    qt[ot] = g1
    qt[ot + 1] = g2
    qs[o + QS_PX1] = p1
    qs[o + QS_SZ1] = q1
    qs[o + QS_PX2] = p2
    qs[o + QS_SZ2] = q2


cdef inline void _pass_queue(Py_ssize_t b, const int64_t[::1] book_ts_us,
                             const double[:, :] bid_px, const double[:, :] ask_px,
                             const double[:, :] bid_sz, const double[:, :] ask_sz,
                             double[::1] qs, int64_t[::1] qt) noexcept nogil:
    cdef bint two = bid_px.shape[1] > 1
    cdef bint has_prev = qs[QS_PX1] == qs[QS_PX1] or qs[QS_ASK + QS_PX1] == qs[QS_ASK + QS_PX1]
    _pass_queue_side(bid_px[b, 0], bid_sz[b, 0], bid_px[b, 1] if two else NAN,
                     bid_sz[b, 1] if two else NAN, 1.0, book_ts_us[b], qs, 0, qt, 0, has_prev)
    _pass_queue_side(ask_px[b, 0], ask_sz[b, 0], ask_px[b, 1] if two else NAN,
                     ask_sz[b, 1] if two else NAN, -1.0, book_ts_us[b], qs, QS_ASK, qt, QT_ASK, has_prev)


def asof_trade_features(const int64_t[::1] trade_ts_us, const int8_t[::1] side,
                        const double[::1] amount, const int64_t[::1] trade_rows,
                        const int64_t[::1] book_ts_us, const int64_t[::1] book_rows,
                        const double[:, :] bid_px, const double[:, :] ask_px,
                        const double[:, :] bid_sz, const double[:, :] ask_sz,
                        FeatureParams params,
                        double[::1] book_state, int64_t[::1] book_times,
                        double[:, ::1] raw, double[::1] queue_state=None,
                        int64_t[::1] queue_times=None, double flow_unit=1.0):
    """Six raw features for the trades ``trade_rows`` (processed in that order).

    IN: trade_ts_us, side, amount (n_trades,); trade_rows (k,) int64, rows to process, in
    time order, all of known side; book_ts_us (n_book,), book_rows (n_book,) int64 snapshot
    rows in time order; bid/ask px/sz (n_book, L); params (a dict with the keys of
    ``FeatureParams``: levels, strict, tick_size, aggressor).  IN/OUT: book_state (6,) float64 and
    book_times (5,) int64, the current book (see the layout above).  OUT: raw (k, 6) in the
    order v_rel, sbs, obs, spread, t_m, t_age.  With queue_state (8,) and queue_times (4,)
    (IN/OUT, layout above) given, raw has a 7th column, t_queue: seconds since the consumed
    side's best queue last grew (NaN while unknown).  flow_unit: the instrument's
    (``Instrument.flow_unit``); sbs and obs are log1p of the depths in amount x flow_unit.

    Returns the number of leading trades that had no snapshot before them (their rows of
    ``raw`` are left untouched).
    """
    cdef Py_ssize_t k = trade_rows.shape[0], n_book = book_rows.shape[0]
    cdef Py_ssize_t i, j = 0, r, unread = -1     # unread: current snapshot, sizes not read yet
    cdef Py_ssize_t n_no_book = 0
    cdef int64_t t, t_change
    cdef double consumed, other, s
    cdef int levels = params.levels
    cdef bint strict = params.strict, aggressor = params.aggressor
    cdef double tick_size = params.tick_size
    if book_state.shape[0] != BOOK_STATE_SIZE or book_times.shape[0] != BOOK_TIMES_SIZE:
        raise ValueError(f"book_state / book_times must have {BOOK_STATE_SIZE} / {BOOK_TIMES_SIZE} entries")
    if n_book and (levels < 1 or levels > bid_sz.shape[1] or levels > ask_sz.shape[1]):
        raise ValueError(f"params.levels must be in 1..{bid_sz.shape[1]} (the book's levels), got {levels}")
    cdef bint with_queue = queue_state is not None
    cdef int64_t t_grow
    if with_queue and (queue_times is None or queue_state.shape[0] != 8 or queue_times.shape[0] != 4
                       or raw.shape[1] < 7):
        raise ValueError("queue_state (8,), queue_times (4,) and raw (k, 7) go together")
    with nogil:
        for i in range(k):
            r = trade_rows[i]
            t = trade_ts_us[r]
            while j < n_book and (book_ts_us[book_rows[j]] < t or
                                  (not strict and book_ts_us[book_rows[j]] == t)):
                unread = book_rows[j]
                _pass_snapshot(unread, book_ts_us, bid_px, ask_px, book_state, book_times)
                if with_queue:
                    _pass_queue(unread, book_ts_us, bid_px, ask_px, bid_sz, ask_sz, queue_state, queue_times)
                j += 1
            if not book_times[BT_HAS]:
                n_no_book += 1
                continue
            if unread >= 0:
                _read_sizes(unread, bid_sz, ask_sz, levels, tick_size, flow_unit, book_state)
                unread = -1
            raw[i, 0] = amount[r] / book_state[BS_TOUCH_SZ]
            if side[r] > 0:     # a buy taker consumes the asks
                consumed = book_state[BS_LOG_ASK_DEPTH]
                other = book_state[BS_LOG_BID_DEPTH]
                t_change = book_times[BT_ASK_CHANGE]
            else:
                consumed = book_state[BS_LOG_BID_DEPTH]
                other = book_state[BS_LOG_ASK_DEPTH]
                t_change = book_times[BT_BID_CHANGE]
            if aggressor:
                s = consumed
                consumed = other
                other = s
            raw[i, 1] = consumed
            raw[i, 2] = other
            raw[i, 3] = book_state[BS_SPREAD]
            if book_times[BT_MID_CHANGE] == _NO_TIME:
                raw[i, 4] = NAN
            else:
                raw[i, 4] = (t - book_times[BT_MID_CHANGE]) * 1e-6
            if t_change == _NO_TIME:
                raw[i, 5] = NAN
            else:
                raw[i, 5] = (t - t_change) * 1e-6
            if with_queue:
                t_grow = queue_times[QT_ASK] if side[r] > 0 else queue_times[0]
                raw[i, 6] = NAN if t_grow == _NO_TIME else (t - t_grow) * 1e-6
        # snapshots after the last trade still move the current book forward
        while j < n_book:
            unread = book_rows[j]
            _pass_snapshot(unread, book_ts_us, bid_px, ask_px, book_state, book_times)
            if with_queue:
                _pass_queue(unread, book_ts_us, bid_px, ask_px, bid_sz, ask_sz, queue_state, queue_times)
            j += 1
        if unread >= 0:
            _read_sizes(unread, bid_sz, ask_sz, levels, tick_size, flow_unit, book_state)
    return n_no_book
