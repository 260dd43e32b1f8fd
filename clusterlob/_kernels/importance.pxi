# Feature-importance kernel: per-cluster moments of labelled rows, one pass.
#
# Validation (label range, shapes) and chunking stay in clusterlob/importance.py; this only
# updates buffers that Python allocated.  Welford's update per row keeps the centred sum of
# squares exact up to rounding whatever the size of the values (no sum-of-squares
# cancellation).  Reference twin: tests/twins/importance.py.

from libc.math cimport isnan, isinf
from libc.stdint cimport int64_t


def cluster_moments_update(const double[:, ::1] z, const int64_t[::1] labels,
                           int64_t[::1] count, double[:, ::1] mean, double[:, ::1] m2):
    """Add the rows of ``z`` to the per-cluster count, mean and centred sum of squares.

    IN: z (m, f), labels (m,) in 0..k-1 (checked by the caller).  IN/OUT: count (k,),
    mean (k, f), m2 (k, f): the moments of the rows added so far (zeros to start).

    Returns -1, or the index of the first row with a NaN or inf value; the rows before it
    have been added, that row and the later ones have not.
    """
    cdef Py_ssize_t m = z.shape[0], f = z.shape[1]
    cdef Py_ssize_t i, j, bad = -1
    cdef int64_t c
    cdef double x, delta, inv_n
    with nogil:
        for i in range(m):
            for j in range(f):
                x = z[i, j]
                if isnan(x) or isinf(x):
                    bad = i
                    break
            if bad >= 0:
                break
            c = labels[i]
            count[c] = count[c] + 1
            inv_n = 1.0 / <double>count[c]
            for j in range(f):
                x = z[i, j]
                delta = x - mean[c, j]
                mean[c, j] = mean[c, j] + delta * inv_n
                m2[c, j] = m2[c, j] + delta * (x - mean[c, j])
    return bad
