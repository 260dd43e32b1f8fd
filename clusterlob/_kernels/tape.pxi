# Tape kernels: one pass over a time column.

from libc.stdint cimport int64_t


def count_backwards_steps(const int64_t[::1] ts_us):
    """Number of rows whose time is earlier than the row before it (IN: ts_us).

    A sorted column gives 0.  Used by the tape layer to count out-of-order rows without
    a temporary array the size of the column.
    """
    cdef Py_ssize_t i, n = ts_us.shape[0]
    cdef Py_ssize_t count = 0
    with nogil:
        for i in range(1, n):
            if ts_us[i] < ts_us[i - 1]:
                count += 1
    return count
