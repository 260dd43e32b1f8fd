# Binance recording lines of the commonest USD-M shapes, read without json.
#
# Uses _BINANCE_POW10 and int64_t from binance.pxi (included before this file).  Its reference
# twin is the reader's json path: tests/test_binance_reader.py compares the two on fixtures,
# seeded random recordings and the real recording.

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

# The scanner's output layout (the reader allocates and reads with these; defined here only)
BINANCE_TRADE_INTS = ("ts_exch_us", "ts_local_us", "trade_id", "side")      # int64 (rows, 4)
BINANCE_TRADE_FLOATS = ("price", "amount")                                  # float64 (rows, 2)
BINANCE_DEPTH_HEADER = ("ts_local_us", "E", "T", "U", "u", "pu", "n_bids", "n_asks")   # int64 (8,)


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
        if ints.shape[1] != len(BINANCE_TRADE_INTS) or floats.shape[1] != len(BINANCE_TRADE_FLOATS) \
                or floats.shape[0] != ints.shape[0]:
            raise ValueError("set_output needs int64 (rows, 4) and float64 (rows, 2) arrays")
        self.ints = ints
        self.floats = floats
        self.n_trades = 0

    def set_depth_output(self, int64_t[::1] header not None, double[:, ::1] levels not None):
        """Where parsed depth updates go: header (8,) int64 and levels (2, cap) float64."""
        if header.shape[0] != len(BINANCE_DEPTH_HEADER) or levels.shape[0] != 2:
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
