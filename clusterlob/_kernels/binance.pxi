# Binance order book: one instrument's price levels, updated from [price, qty] string pairs.
#
# A stateful extension type rather than functions over Python-allocated buffers: the book
# is updated ~70 levels at a time, ~10^4 times a second, and acquiring memoryviews on every
# call would cost more than the updates.  Its plain-Python twin is tests/twins/binance.py
# (a dict per side, sorted on demand).
#
# Each side is an ordered list of sorted blocks of at most 64 levels (a one-level B-tree):
# the levels of a BTCUSDT book span thousands of prices and diffs touch all of them, so one
# flat sorted array would move kilobytes per insert.  Keys ascend with the best level LAST:
# key = +price for bids, key = -price for asks (price = sign * key, sign +1 or -1).

from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memmove
from libc.math cimport isfinite, NAN

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

cdef double[16] _BINANCE_POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                  1e11, 1e12, 1e13, 1e14, 1e15]


cdef inline double _binance_decimal(object text) except? -1.0:
    """A decimal string such as "61800.20" as a double, exactly as float() parses it.

    Up to 15 digits the value mantissa / 10**k is one correctly rounded division of two
    exact doubles, i.e. the same double float() gives; anything else goes to float().
    """
    cdef Py_ssize_t i, n
    cdef const char* c
    cdef int64_t mantissa = 0
    cdef int digits = 0, frac = -1
    cdef char ch
    if type(text) is str:
        c = PyUnicode_AsUTF8AndSize(text, &n)
        for i in range(n):
            ch = c[i]
            if ch >= 48 and ch <= 57:
                mantissa = mantissa * 10 + (ch - 48)
                digits += 1
                if frac >= 0:
                    frac += 1
            elif ch == 46 and frac < 0:
                frac = 0
            else:
                digits = 99
                break
        if 0 < digits <= 15:
            return mantissa / _BINANCE_POW10[frac if frac > 0 else 0]
    return float(text)


cdef inline Py_ssize_t _binance_lower_bound(const double* keys, Py_ssize_t n, double key) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef enum:
    _BINANCE_BLOCK = 64     # levels per block: an insert or delete moves at most this many


cdef struct _BinanceSide:
    # one side as an ordered list of sorted blocks (keys ascending across blocks, best last)
    double** keys
    double** sizes
    double* lasts           # the last (largest) key of each block, contiguous for the search
    Py_ssize_t* counts
    Py_ssize_t nblocks
    Py_ssize_t cap
    Py_ssize_t n


cdef void _binance_side_clear(_BinanceSide* s) noexcept:
    cdef Py_ssize_t b
    for b in range(s.nblocks):
        free(s.keys[b])
        free(s.sizes[b])
    s.nblocks = 0
    s.n = 0


cdef void _binance_side_free(_BinanceSide* s) noexcept:
    _binance_side_clear(s)
    free(s.keys)
    free(s.sizes)
    free(s.counts)
    free(s.lasts)
    s.lasts = NULL
    s.keys = NULL
    s.sizes = NULL
    s.counts = NULL
    s.cap = 0


cdef int _binance_side_new_block(_BinanceSide* s, Py_ssize_t b) except -1:
    """Insert an empty block at position b."""
    cdef Py_ssize_t cap
    cdef void* p
    if s.nblocks == s.cap:
        cap = max(16, 2 * s.cap)
        p = realloc(s.keys, cap * sizeof(double*))
        if p == NULL:
            raise MemoryError()
        s.keys = <double**> p
        p = realloc(s.sizes, cap * sizeof(double*))
        if p == NULL:
            raise MemoryError()
        s.sizes = <double**> p
        p = realloc(s.counts, cap * sizeof(Py_ssize_t))
        if p == NULL:
            raise MemoryError()
        s.counts = <Py_ssize_t*> p
        p = realloc(s.lasts, cap * sizeof(double))
        if p == NULL:
            raise MemoryError()
        s.lasts = <double*> p
        s.cap = cap
    cdef double* keys = <double*> malloc(_BINANCE_BLOCK * sizeof(double))
    cdef double* sizes = <double*> malloc(_BINANCE_BLOCK * sizeof(double))
    if keys == NULL or sizes == NULL:
        free(keys)
        free(sizes)
        raise MemoryError()
    cdef Py_ssize_t move = s.nblocks - b
    if move > 0:
        memmove(s.keys + b + 1, s.keys + b, move * sizeof(double*))
        memmove(s.sizes + b + 1, s.sizes + b, move * sizeof(double*))
        memmove(s.counts + b + 1, s.counts + b, move * sizeof(Py_ssize_t))
        memmove(s.lasts + b + 1, s.lasts + b, move * sizeof(double))
    s.keys[b] = keys
    s.sizes[b] = sizes
    s.counts[b] = 0
    s.nblocks += 1
    return 0


cdef void _binance_side_drop_block(_BinanceSide* s, Py_ssize_t b) noexcept:
    free(s.keys[b])
    free(s.sizes[b])
    cdef Py_ssize_t move = s.nblocks - b - 1
    if move > 0:
        memmove(s.keys + b, s.keys + b + 1, move * sizeof(double*))
        memmove(s.sizes + b, s.sizes + b + 1, move * sizeof(double*))
        memmove(s.counts + b, s.counts + b + 1, move * sizeof(Py_ssize_t))
        memmove(s.lasts + b, s.lasts + b + 1, move * sizeof(double))
    s.nblocks -= 1


cdef inline Py_ssize_t _binance_side_find(_BinanceSide* s, double key) noexcept nogil:
    """The first block whose last key is >= key (nblocks when there is none)."""
    cdef Py_ssize_t lo = 0, hi = s.nblocks, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if s.lasts[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _binance_side_set(_BinanceSide* s, double key, double qty) except -1:
    """Set the level at key to qty (0 removes it; removing a missing level is a no-op)."""
    cdef Py_ssize_t b, i, n, half
    b = _binance_side_find(s, key)
    if qty == 0.0:
        if b == s.nblocks:
            return 0
        n = s.counts[b]
        i = _binance_lower_bound(s.keys[b], n, key)
        if i < n and s.keys[b][i] == key:
            if n - i - 1 > 0:
                memmove(s.keys[b] + i, s.keys[b] + i + 1, (n - i - 1) * sizeof(double))
                memmove(s.sizes[b] + i, s.sizes[b] + i + 1, (n - i - 1) * sizeof(double))
            s.counts[b] = n - 1
            s.n -= 1
            if n == 1:
                _binance_side_drop_block(s, b)
            else:
                s.lasts[b] = s.keys[b][n - 2]
        return 0
    if s.nblocks == 0:
        _binance_side_new_block(s, 0)
    if b == s.nblocks:
        b -= 1                       # beyond every level: append to the last block
    n = s.counts[b]
    i = _binance_lower_bound(s.keys[b], n, key)
    if i < n and s.keys[b][i] == key:
        s.sizes[b][i] = qty
        return 0
    if n == _BINANCE_BLOCK:          # full: split in two halves
        _binance_side_new_block(s, b + 1)
        half = _BINANCE_BLOCK // 2
        memmove(s.keys[b + 1], s.keys[b] + half, (n - half) * sizeof(double))
        memmove(s.sizes[b + 1], s.sizes[b] + half, (n - half) * sizeof(double))
        s.counts[b] = half
        s.counts[b + 1] = n - half
        s.lasts[b] = s.keys[b][half - 1]
        s.lasts[b + 1] = s.keys[b + 1][n - half - 1]
        if i > half:
            b += 1
            i -= half
        n = s.counts[b]
    if n - i > 0:
        memmove(s.keys[b] + i + 1, s.keys[b] + i, (n - i) * sizeof(double))
        memmove(s.sizes[b] + i + 1, s.sizes[b] + i, (n - i) * sizeof(double))
    s.keys[b][i] = key
    s.sizes[b][i] = qty
    s.counts[b] = n + 1
    s.lasts[b] = s.keys[b][n]
    s.n += 1
    return 0


cdef Py_ssize_t _binance_side_top(_BinanceSide* s, double sign, double[:, :, ::1] out, Py_ssize_t row,
                                  Py_ssize_t px_col, Py_ssize_t levels) noexcept:
    """Write the best levels (price = sign * key) into out[row, px_col / px_col + 1]."""
    cdef Py_ssize_t b = s.nblocks - 1, i = -1, k
    if b >= 0:
        i = s.counts[b] - 1
    for k in range(levels):
        if b < 0:
            out[row, px_col, k] = NAN
            out[row, px_col + 1, k] = NAN
            continue
        out[row, px_col, k] = sign * s.keys[b][i]
        out[row, px_col + 1, k] = s.sizes[b][i]
        i -= 1
        if i < 0:
            b -= 1
            if b >= 0:
                i = s.counts[b] - 1
    return 0


def binance_parse_levels(list bids not None, list asks not None):
    """Parse a message's bid and ask lists of ``[price, qty]`` pairs into ``(levels, n_bids)``:
    ``levels`` (2, m) float64 = prices and quantities, bids first.  Raises ValueError naming
    the first pair that is not a finite price > 0 and a quantity >= 0."""
    import numpy
    cdef BinanceL2Book parser = BinanceL2Book(len(bids) + len(asks))
    parser._parse(bids, 0)
    parser._parse(asks, len(bids))
    cdef Py_ssize_t j, m = len(bids) + len(asks)
    out = numpy.empty((2, m))
    cdef double[:, ::1] view = out
    for j in range(m):
        view[0, j] = parser.px[j]
        view[1, j] = parser.qty[j]
    return out, len(bids)


cdef class BinanceL2Book:
    """Price levels of one instrument, rebuilt from Binance depth snapshots and diffs.

    ``apply(bids, asks)`` takes the ``b`` / ``a`` lists of a depth update (``[price, qty]``
    pairs of decimal strings or numbers; qty 0 removes the level), ``reset(bids, asks)``
    replaces the book by a REST snapshot.  Both validate every pair first and raise
    ValueError naming the first bad one, leaving the book unchanged.  Prices are compared
    exactly as parsed, so one decimal string always names one level.
    """

    cdef _BinanceSide bids
    cdef _BinanceSide asks
    cdef double* px
    cdef double* qty
    cdef Py_ssize_t scratch_cap

    def __cinit__(self, Py_ssize_t capacity=1024):
        self.scratch_cap = max(capacity, 16)
        self.px = <double*> malloc(self.scratch_cap * sizeof(double))
        self.qty = <double*> malloc(self.scratch_cap * sizeof(double))
        if self.px == NULL or self.qty == NULL:
            raise MemoryError()

    def __dealloc__(self):
        _binance_side_free(&self.bids)
        _binance_side_free(&self.asks)
        free(self.px)
        free(self.qty)

    cdef int _reserve(self, Py_ssize_t scratch) except -1:
        cdef void* p
        if scratch > self.scratch_cap:
            size = max(scratch, 2 * self.scratch_cap)
            p = realloc(self.px, size * sizeof(double))
            if p == NULL:
                raise MemoryError()
            self.px = <double*> p
            p = realloc(self.qty, size * sizeof(double))
            if p == NULL:
                raise MemoryError()
            self.qty = <double*> p
            self.scratch_cap = size
        return 0

    cdef int _parse(self, list levels, Py_ssize_t start) except -1:
        cdef Py_ssize_t i
        cdef double p, q
        for i in range(len(levels)):
            pair = levels[i]
            if type(pair) is not list or len(<list> pair) != 2:
                raise ValueError(f"level {pair!r} is not a [price, qty] pair")
            try:
                p = _binance_decimal((<list> pair)[0])
                q = _binance_decimal((<list> pair)[1])
            except (TypeError, ValueError):
                raise ValueError(f"level {pair!r} is not numeric") from None
            if not (isfinite(p) and p > 0 and isfinite(q) and q >= 0):
                raise ValueError(f"level {pair!r} needs a finite price > 0 and a quantity >= 0")
            self.px[start + i] = p
            self.qty[start + i] = q
        return 0

    cdef int _apply_scratch(self, Py_ssize_t n_bids, Py_ssize_t n_asks, bint replace) noexcept:
        cdef Py_ssize_t j
        if replace:
            _binance_side_clear(&self.bids)
            _binance_side_clear(&self.asks)
        for j in range(n_bids):
            _binance_side_set(&self.bids, self.px[j], self.qty[j])
        for j in range(n_bids, n_bids + n_asks):
            _binance_side_set(&self.asks, -self.px[j], self.qty[j])
        return 0

    cdef int _update(self, list bids, list asks, bint replace) except -1:
        cdef Py_ssize_t mb = len(bids), ma = len(asks)
        self._reserve(mb + ma)
        self._parse(bids, 0)
        self._parse(asks, mb)
        self._apply_scratch(mb, ma, replace)
        return 0

    cdef int _update_levels(self, const double[:, ::1] levels, Py_ssize_t n_bids, bint replace) except -1:
        cdef Py_ssize_t j, m = levels.shape[1]
        cdef double p, q
        if levels.shape[0] != 2 or not 0 <= n_bids <= m:
            raise ValueError(f"levels must have shape (2, m) and 0 <= n_bids <= m, got shape "
                             f"{tuple(levels.shape)[:2]} and n_bids {n_bids}")
        self._reserve(m)
        for j in range(m):
            p = levels[0, j]
            q = levels[1, j]
            if not (isfinite(p) and p > 0 and isfinite(q) and q >= 0):
                raise ValueError(f"level [{p!r}, {q!r}] needs a finite price > 0 and a quantity >= 0")
            self.px[j] = p
            self.qty[j] = q
        self._apply_scratch(n_bids, m - n_bids, replace)
        return 0

    def apply(self, list bids not None, list asks not None):
        """Apply one depth update's ``b`` and ``a`` lists, in order."""
        self._update(bids, asks, False)

    def reset(self, list bids not None, list asks not None):
        """Replace every level by a snapshot's ``bids`` and ``asks`` lists."""
        self._update(bids, asks, True)

    def apply_levels(self, const double[:, ::1] levels not None, Py_ssize_t n_bids):
        """Apply parsed levels: ``levels`` (2, m) = prices and quantities, bids first (n_bids),
        then asks (the form :func:`binance_parse_levels` and the line scanner produce)."""
        self._update_levels(levels, n_bids, False)

    def reset_levels(self, const double[:, ::1] levels not None, Py_ssize_t n_bids):
        """Replace every level by parsed snapshot levels (same form as ``apply_levels``)."""
        self._update_levels(levels, n_bids, True)

    def top_into(self, double[:, :, ::1] out, Py_ssize_t row):
        """Write the best levels into ``out[row]`` (OUT, shape (rows, 4, L)): bid_px, bid_sz,
        ask_px, ask_sz, best first, NaN past the last level."""
        if not 0 <= row < out.shape[0] or out.shape[1] != 4:
            raise ValueError(f"top_into needs out of shape (rows, 4, L) and 0 <= row < rows, "
                             f"got shape {tuple(out.shape)[:3]} and row {row}")
        _binance_side_top(&self.bids, 1.0, out, row, 0, out.shape[2])
        _binance_side_top(&self.asks, -1.0, out, row, 2, out.shape[2])

    def top(self, Py_ssize_t levels=25):
        """The best ``levels`` levels as a (4, levels) array: bid_px, bid_sz, ask_px, ask_sz."""
        import numpy
        out = numpy.empty((1, 4, levels))
        self.top_into(out, 0)
        return out[0]

    def best(self):
        """``(bid_px, bid_sz, ask_px, ask_sz)`` at the touch (NaN for an empty side)."""
        cdef double bid_px = NAN, bid_sz = NAN, ask_px = NAN, ask_sz = NAN
        cdef Py_ssize_t b
        if self.bids.nblocks:
            b = self.bids.nblocks - 1
            bid_px, bid_sz = self.bids.keys[b][self.bids.counts[b] - 1], self.bids.sizes[b][self.bids.counts[b] - 1]
        if self.asks.nblocks:
            b = self.asks.nblocks - 1
            ask_px, ask_sz = -self.asks.keys[b][self.asks.counts[b] - 1], self.asks.sizes[b][self.asks.counts[b] - 1]
        return bid_px, bid_sz, ask_px, ask_sz

    @property
    def depth(self):
        """Number of price levels ``(bids, asks)``."""
        return self.bids.n, self.asks.n

    def crossed(self):
        """True when both sides are present and the best bid >= the best ask."""
        bid_px, _, ask_px, _ = self.best()
        return bool(bid_px >= ask_px)
