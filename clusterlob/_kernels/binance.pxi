# Binance order book: one instrument's price levels, updated from [price, qty] string pairs.
#
# A stateful extension type rather than functions over Python-allocated buffers: the book
# is updated ~70 levels at a time, ~10^4 times a second, and acquiring memoryviews on every
# call would cost more than the updates.  Its plain-Python twin is in
# tests/test_binance_reader.py (a dict per side, sorted on demand).
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


# -- line scanner: the commonest USD-M line shapes, without json ------------------------------

from libc.string cimport memchr, memcmp

cdef enum:
    _BF_NAME = 1    # [a-z0-9_]+  (stream name before '@')
    _BF_INT = 2     # [0-9]+
    _BF_SYM = 3     # [A-Z0-9_]+
    _BF_DEC = 4     # [0-9]+ ( '.' [0-9]+ )?
    _BF_BOOL = 5    # true | false
    _BF_SPEED = 6   # ( '@' [0-9]+ 'ms' )?   (a diff stream's update speed, or nothing)
    _BF_LEVELS = 7  # '[' ( '["' DEC '","' DEC '"]' ( ',' ... )* )? ']'

# Templates: literal bytes, and field codes 1..7.  Each field's character class excludes the
# literal that follows it, so greedy matching is exact, and a matching line is valid JSON.
_BINANCE_BOOK_TICKER = (b'{"stream":"\x01@bookTicker","data":{"e":"bookTicker","u":\x02,"s":"\x03",'
                        b'"b":"\x04","B":"\x04","a":"\x04","A":"\x04","T":\x02,"E":\x02}}')
_BINANCE_TRADE = (b'{"stream":"\x01@trade","data":{"e":"trade","E":\x02,"T":\x02,"s":"\x03",'
                  b'"t":\x02,"p":"\x04","q":"\x04","X":"MARKET","m":\x05}}')
_BINANCE_DEPTH = (b'{"stream":"\x01@depth\x06","data":{"e":"depthUpdate","E":\x02,"T":\x02,"s":"\x03",'
                  b'"U":\x02,"u":\x02,"pu":\x02,"b":\x07,"a":\x07}}')


cdef inline bint _binance_in_class(char code, char ch) noexcept nogil:
    if ch >= 48 and ch <= 57 or ch == 95:
        return code != _BF_INT or ch != 95
    if code == _BF_NAME:
        return ch >= 97 and ch <= 122
    if code == _BF_SYM:
        return ch >= 65 and ch <= 90
    return False


cdef inline Py_ssize_t _binance_skip_dec(const char* s, Py_ssize_t j, Py_ssize_t sn) noexcept nogil:
    """The end of a decimal starting at j, or -1."""
    cdef Py_ssize_t start = j
    while j < sn and s[j] >= 48 and s[j] <= 57:
        j += 1
    if j == start:
        return -1
    if j < sn and s[j] == 46:
        j += 1
        start = j
        while j < sn and s[j] >= 48 and s[j] <= 57:
            j += 1
        if j == start:
            return -1
    return j


cdef inline bint _binance_dec(const char* s, Py_ssize_t a, Py_ssize_t b, double* out) noexcept nogil:
    """Decimal s[a:b] (digits, optional '.digits') as the double float() gives (<= 15 digits)."""
    cdef int64_t v = 0
    cdef int digits = 0, frac = -1
    cdef Py_ssize_t i
    for i in range(a, b):
        if s[i] == 46:
            frac = 0
            continue
        v = v * 10 + (s[i] - 48)
        digits += 1
        if frac >= 0:
            frac += 1
    if digits > 15:
        return False
    out[0] = v / _BINANCE_POW10[frac if frac > 0 else 0]
    return True


cdef Py_ssize_t _binance_levels(const char* s, Py_ssize_t j, Py_ssize_t sn, double* px, double* qty,
                                Py_ssize_t cap, Py_ssize_t* count) noexcept nogil:
    """Parse a level list at j into px/qty from index count[0]; return its end, or -1 (other
    shape, more than cap levels, a price of 0, or a value float() would round differently)."""
    cdef Py_ssize_t a, b, n = count[0]
    if j >= sn or s[j] != 91:                               # [
        return -1
    j += 1
    if j < sn and s[j] == 93:                               # ]
        return j + 1
    while True:
        if n >= cap or j + 2 > sn or s[j] != 91 or s[j + 1] != 34:    # ["
            return -1
        a = j + 2
        b = _binance_skip_dec(s, a, sn)
        if b < 0 or b + 3 > sn or s[b] != 34 or s[b + 1] != 44 or s[b + 2] != 34:   # ","
            return -1
        if not _binance_dec(s, a, b, px + n) or not px[n] > 0:
            return -1
        a = b + 3
        b = _binance_skip_dec(s, a, sn)
        if b < 0 or b + 2 > sn or s[b] != 34 or s[b + 1] != 93:      # "]
            return -1
        if not _binance_dec(s, a, b, qty + n):
            return -1
        n += 1
        j = b + 2
        if j < sn and s[j] == 44:                           # ,
            j += 1
        elif j < sn and s[j] == 93:
            count[0] = n
            return j + 1
        else:
            return -1


cdef Py_ssize_t _binance_match(const char* t, Py_ssize_t tn, const char* s, Py_ssize_t sn,
                               Py_ssize_t* spans, double* px, double* qty, Py_ssize_t cap) noexcept nogil:
    """Match s[:sn] against template t[:tn]; write each field's (start, end) into spans (for a
    level list: the level counts before and after it, its levels into px/qty); return the
    number of fields, or -1 when the line does not have exactly this shape."""
    cdef Py_ssize_t i = 0, j = 0, f = 0, start, k, n_levels = 0
    cdef char c
    while i < tn:
        c = t[i]
        if c > _BF_LEVELS:
            if j >= sn or s[j] != c:
                return -1
            i += 1
            j += 1
            continue
        start = j
        if c == _BF_BOOL:
            if j + 4 <= sn and memcmp(s + j, b"true", 4) == 0:
                j += 4
            elif j + 5 <= sn and memcmp(s + j, b"false", 5) == 0:
                j += 5
            else:
                return -1
        elif c == _BF_DEC:
            j = _binance_skip_dec(s, j, sn)
            if j < 0:
                return -1
        elif c == _BF_SPEED:
            if j < sn and s[j] == 64:                       # @
                j += 1
                k = j
                while j < sn and s[j] >= 48 and s[j] <= 57:
                    j += 1
                if j == k or j + 2 > sn or s[j] != 109 or s[j + 1] != 115:   # ms
                    return -1
                j += 2
        elif c == _BF_LEVELS:
            start = n_levels
            j = _binance_levels(s, j, sn, px, qty, cap, &n_levels)
            if j < 0:
                return -1
            spans[2 * f] = start
            spans[2 * f + 1] = n_levels
            f += 1
            i += 1
            continue
        else:
            while j < sn and _binance_in_class(c, s[j]):
                j += 1
            if j == start:
                return -1
        spans[2 * f] = start
        spans[2 * f + 1] = j
        f += 1
        i += 1
    return f if j == sn else -1


cdef inline bint _binance_int(const char* s, Py_ssize_t a, Py_ssize_t b, int64_t* out) noexcept nogil:
    """Digits s[a:b] as int64 (at most 18 digits)."""
    cdef int64_t v = 0
    cdef Py_ssize_t i
    if b - a > 18:
        return False
    for i in range(a, b):
        v = v * 10 + (s[i] - 48)
    out[0] = v
    return True


cdef enum:
    SCAN_END = 0        # the buffer is consumed
    SCAN_OTHER = 1      # a line the scanner does not take: read it with json
    SCAN_DEPTH = 2      # a depth update, parsed into ``header`` and ``levels``
    SCAN_FULL = 3       # the trade output is full (before this line)

BINANCE_SCAN_END, BINANCE_SCAN_OTHER, BINANCE_SCAN_DEPTH, BINANCE_SCAN_FULL = SCAN_END, SCAN_OTHER, SCAN_DEPTH, SCAN_FULL


cdef class BinanceLineScanner:
    """Consumes, in C, recording lines of the commonest USD-M shapes for one symbol, exactly as
    ``json`` would read them: combined-stream ``bookTicker`` messages (counted), ``trade``
    messages with X = MARKET (written as trade rows) and ``@depth`` diffs (parsed and handed
    back).  Any other line is handed back for the Python reader, which writes its trades into
    the same output, so rows stay in line order.

    Set ``symbol`` (bytes; empty: take nothing), ``take_trades``, ``take_depth``, the trade
    output with ``set_output(ints, floats)``: ``ints`` (rows, 4) int64 = ts_exch_us,
    ts_local_us, trade_id, side; ``floats`` (rows, 2) float64 = price, amount; ``n_trades`` rows
    used; and the depth output with ``set_depth_output(header, levels)``: ``header`` (8,) int64
    = ts_local_us, E, T, U, u, pu, n_bids, n_asks; ``levels`` (2, cap) float64 = prices and
    quantities, bids first (a diff with more than cap levels is handed back as other).
    ``lines`` counts the lines it took (depth lines included), ``book_tickers`` and ``trades``
    those of each kind.
    """

    cdef public bytes symbol
    cdef public bint take_trades, take_depth
    cdef public Py_ssize_t n_trades, lines, book_tickers, trades
    cdef int64_t[:, ::1] ints
    cdef double[:, ::1] floats
    cdef int64_t[::1] header
    cdef double[:, ::1] levels
    cdef bytes book_ticker_template, trade_template, depth_template

    def __init__(self):
        self.symbol = b""
        self.take_trades = self.take_depth = False
        self.n_trades = self.lines = self.book_tickers = self.trades = 0
        self.book_ticker_template = _BINANCE_BOOK_TICKER
        self.trade_template = _BINANCE_TRADE
        self.depth_template = _BINANCE_DEPTH

    def set_output(self, int64_t[:, ::1] ints not None, double[:, ::1] floats not None):
        """Start a new trade output (shapes (rows, 4) and (rows, 2)); ``n_trades`` = 0."""
        if ints.shape[1] != 4 or floats.shape[1] != 2 or floats.shape[0] != ints.shape[0]:
            raise ValueError("set_output needs int64 (rows, 4) and float64 (rows, 2) arrays")
        self.ints = ints
        self.floats = floats
        self.n_trades = 0

    def set_depth_output(self, int64_t[::1] header not None, double[:, ::1] levels not None):
        """Where parsed depth updates go: header (8,) int64 and levels (2, cap) float64."""
        if header.shape[0] != 8 or levels.shape[0] != 2:
            raise ValueError("set_depth_output needs int64 (8,) and float64 (2, cap) arrays")
        self.header = header
        self.levels = levels

    def scan(self, bytes buf not None, Py_ssize_t pos):
        """Consume lines of ``buf`` from offset ``pos``; return ``(start, end, kind)``: kind
        BINANCE_SCAN_OTHER or _DEPTH with the span of the line handed back,
        BINANCE_SCAN_FULL with the span of the line before which the trade output filled,
        or BINANCE_SCAN_END with ``(len(buf), len(buf))``."""
        cdef const char* c = buf
        cdef const char* line
        cdef Py_ssize_t n = len(buf), end, p, start, sym_n = len(self.symbol), width
        cdef const char* sym = self.symbol
        cdef const char* t_book_ticker = self.book_ticker_template
        cdef const char* t_trade = self.trade_template
        cdef const char* t_depth = self.depth_template
        cdef Py_ssize_t n_book_ticker = len(self.book_ticker_template)
        cdef Py_ssize_t n_trade = len(self.trade_template), n_depth = len(self.depth_template)
        cdef const void* nl
        cdef Py_ssize_t spans[40]
        cdef int64_t ts_ns, value
        cdef double price, amount
        cdef Py_ssize_t row, k, cap = self.ints.shape[0] if self.ints is not None else 0
        cdef bint depth = self.take_depth and self.levels is not None
        cdef Py_ssize_t level_cap = self.levels.shape[1] if depth else 0
        cdef double* px = &self.levels[0, 0] if depth and level_cap else NULL
        cdef double* qty = &self.levels[1, 0] if depth and level_cap else NULL
        while pos < n:
            nl = memchr(c + pos, 10, n - pos)
            end = (<const char*> nl - c) if nl != NULL else n
            p = pos
            while p < end and c[p] >= 48 and c[p] <= 57:
                p += 1
            if sym_n == 0 or p == pos or p - pos > 19 or (p - pos == 19 and c[pos] > 56) \
                    or p >= end or c[p] != 32:
                return pos, end, SCAN_OTHER
            ts_ns = 0
            for k in range(pos, p):
                ts_ns = ts_ns * 10 + (c[k] - 48)
            start = p + 1
            line = c + start
            width = end - start
            if _binance_match(t_book_ticker, n_book_ticker, line, width, spans, NULL, NULL, 0) > 0:
                if spans[5] - spans[4] != sym_n or memcmp(line + spans[4], sym, sym_n) != 0:
                    return pos, end, SCAN_OTHER
                self.book_tickers += 1
            elif self.take_trades and _binance_match(t_trade, n_trade, line, width, spans, NULL, NULL, 0) > 0:
                if spans[7] - spans[6] != sym_n or memcmp(line + spans[6], sym, sym_n) != 0:
                    return pos, end, SCAN_OTHER
                if self.n_trades >= cap:
                    return pos, end, SCAN_FULL
                row = self.n_trades
                if not (_binance_int(line, spans[4], spans[5], &value)
                        and _binance_int(line, spans[8], spans[9], &self.ints[row, 2])
                        and _binance_dec(line, spans[10], spans[11], &price)
                        and _binance_dec(line, spans[12], spans[13], &amount)):
                    return pos, end, SCAN_OTHER
                self.ints[row, 0] = value * 1000
                self.ints[row, 1] = ts_ns // 1000
                self.ints[row, 3] = -1 if spans[15] - spans[14] == 4 else 1
                self.floats[row, 0] = price
                self.floats[row, 1] = amount
                self.n_trades = row + 1
                self.trades += 1
            elif depth and _binance_match(t_depth, n_depth, line, width, spans, px, qty, level_cap) > 0:
                if spans[9] - spans[8] != sym_n or memcmp(line + spans[8], sym, sym_n) != 0:
                    return pos, end, SCAN_OTHER
                self.header[0] = ts_ns // 1000
                for k in range(5):      # E, T, U, u, pu
                    if not _binance_int(line, spans[4 + 2 * k + (2 if k >= 2 else 0)],
                                        spans[5 + 2 * k + (2 if k >= 2 else 0)], &self.header[1 + k]):
                        return pos, end, SCAN_OTHER
                self.header[6] = spans[17] - spans[16]
                self.header[7] = spans[19] - spans[18]
                self.lines += 1
                return pos, end, SCAN_DEPTH
            else:
                return pos, end, SCAN_OTHER
            self.lines += 1
            pos = end + 1
        return n, n, SCAN_END
