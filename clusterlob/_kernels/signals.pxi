# Signal kernels: bucketed order-flow imbalance in one pass over the trades.

from libc.stdint cimport int8_t, int64_t


def ofi_accumulate(const int64_t[::1] ts_us, const int8_t[::1] side, const double[::1] amount,
                   const int8_t[::1] labels, const int64_t[::1] row_of_code,
                   object grid,
                   double[:, ::1] ofi_size, double[:, ::1] ofi_count, int64_t[::1] trades):
    """Add trades to bucketed OFI sums, in input order.

    IN: ts_us, side (+1/-1/0), amount (n,); labels (n,) int8 codes, or an empty array when
    only the all-trades row 0 is wanted; row_of_code (256,): OFI row of code + 128, <= 0 for
    codes in no group; grid: the bucket grid (``clusterlob.signals.BucketGrid``; its
    ``start_us`` and ``bucket_us`` are read here).
    OUT (added to): ofi_size, ofi_count (rows, n_buckets): row 0 every trade of known side,
    row r the trades whose code maps to r; trades (rows,) counts.
    Returns (unknown_side, outside_grid) counts.  Its twin: tests/twins/signals.py.
    """
    cdef int64_t start_us = grid.start_us, bucket_us = grid.bucket_us
    if bucket_us <= 0:
        raise ValueError(f"grid.bucket_us must be > 0, got {bucket_us}")
    cdef Py_ssize_t i, n = ts_us.shape[0]
    cdef int64_t n_buckets = ofi_size.shape[1]
    cdef bint grouped = labels.shape[0] == n and n > 0
    cdef int64_t offset, b, row
    cdef Py_ssize_t unknown = 0, outside = 0
    cdef double s, w
    with nogil:
        for i in range(n):
            if side[i] == 0:
                unknown += 1
                continue
            offset = ts_us[i] - start_us
            if offset < 0:
                outside += 1
                continue
            b = offset // bucket_us
            if b >= n_buckets:
                outside += 1
                continue
            s = <double>side[i]
            w = s * amount[i]
            ofi_size[0, b] += w
            ofi_count[0, b] += s
            trades[0] += 1
            if grouped:
                row = row_of_code[<int64_t>labels[i] + 128]
                if row > 0:
                    ofi_size[row, b] += w
                    ofi_count[row, b] += s
                    trades[row] += 1
    return unknown, outside
