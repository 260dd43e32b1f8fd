"""Plain-Python twin of the bucketed OFI kernel (``_kernels/signals.pxi``) and the mid closes."""
import numpy as np


def bucket_signals(ts, side, amount, labels, book_ts, mids, grid, groups):
    n = grid.n_buckets
    codes = [None] + [c for _, c in groups]
    size = np.zeros((len(codes), n))
    count = np.zeros((len(codes), n))
    for t, s, a, lab in zip(ts, side, amount, labels):
        b = (int(t) - grid.start_us) // grid.bucket_us
        if s == 0 or not 0 <= b < n:
            continue
        for row, code in enumerate(codes):
            if code is None or code == lab:
                size[row, b] += s * a
                count[row, b] += s
    closes = np.full(n, np.nan)
    for b in range(n):
        end = grid.start_us + (b + 1) * grid.bucket_us
        best = None
        for i, (t, m) in enumerate(zip(book_ts, mids)):
            if t < end and np.isfinite(m) and (best is None or (t, i) >= best[:2]):
                best = (t, i, m)
        if best is not None:
            closes[b] = best[2]
    return size, count, closes
