# Rolling z-score kernel: per column, a window over the last W finite values.
#
# Each column keeps a ring buffer of its last W finite values and a Welford accumulator
# (mean and sum of squared deviations, M2) of the values in the ring, measured from a
# shift (the window mean at the last exact recompute) so that large offsets such as
# prices near 60000 do not cost precision.  Welford's add/remove update drifts slowly;
# the accumulator is recomputed exactly (two passes over the ring) every W updates, and
# also as soon as M2 has fallen below 1/100 of its largest value since the last
# recompute (after a burst of variance leaves the window, the small remaining variance
# would otherwise carry the burst's rounding error).  A window whose W values are all
# identical is recognised exactly from the run length of equal values.
#
# Row flags (OR over columns): bit 0 warm-up, bit 1 non-finite raw value, bit 2 zero std,
# bit 3 clipped.  Per-column counts columns: 0 warm-up, 1 non-finite, 2 zero std, 3 clipped.

from libc.math cimport sqrt, fabs, isfinite, NAN
from libc.stdint cimport int64_t, uint8_t

cdef enum:
    ROW_WARMUP = 1
    ROW_NONFINITE = 2
    ROW_ZERO_STD = 4
    ROW_CLIPPED = 8

cdef double _RECOMPUTE_DROP = 1e-2
cdef double _ZERO_STD_REL = 1e-12


cdef inline void _rolling_recompute(double[:, ::1] ring, Py_ssize_t f, Py_ssize_t n,
                                    double* shift, double* mean, double* m2) noexcept nogil:
    # Exact (corrected two-pass) mean and M2 of the n values in ring[f, :n]; new shift.
    cdef Py_ssize_t k
    cdef double s = 0.0, c = 0.0, q = 0.0, d
    for k in range(n):
        s += ring[f, k]
    s /= n
    for k in range(n):
        d = ring[f, k] - s
        c += d
        q += d * d
    shift[0] = s
    mean[0] = c / n
    m2[0] = q - c * c / n


def rolling_zscore_kernel(const double[:, ::1] raw,
                          double[:, ::1] ring, int64_t[::1] n_seen, int64_t[::1] run_length,
                          int64_t[::1] since_recompute, double[::1] shift, double[::1] mean,
                          double[::1] m2, double[::1] m2_peak,
                          double z_clip,
                          double[:, ::1] z, uint8_t[::1] row_flags, int64_t[:, ::1] counts):
    """Rolling z-scores of every column of ``raw`` over the last W finite values.

    IN: raw (m, F).  IN/OUT (the window state, F columns, W = ring.shape[1]): ring (F, W),
    n_seen, run_length, since_recompute (F,) int64; shift, mean, m2, m2_peak (F,) float64.
    OUT: z (m, F), row_flags (m,) uint8 (zeroed by the caller), counts (F, 4) int64
    (accumulated: warm-up, non-finite, zero std, clipped).
    """
    cdef Py_ssize_t m = raw.shape[0], n_cols = raw.shape[1], W = ring.shape[1]
    cdef Py_ssize_t i, f, pos, n
    cdef double x, xs, old_s, delta, new_mean, std, centre, zz, var
    cdef int64_t seen
    with nogil:
        for f in range(n_cols):
            for i in range(m):
                x = raw[i, f]
                if not isfinite(x):
                    z[i, f] = NAN
                    row_flags[i] |= ROW_NONFINITE
                    counts[f, 1] += 1
                    continue
                seen = n_seen[f]
                pos = seen % W
                if seen == 0:
                    run_length[f] = 1
                    shift[f] = x
                    mean[f] = 0.0
                    m2[f] = 0.0
                    m2_peak[f] = 0.0
                else:
                    if x == ring[f, (seen - 1) % W]:
                        if run_length[f] < W:
                            run_length[f] += 1
                    else:
                        run_length[f] = 1
                    xs = x - shift[f]
                    if seen < W:        # the window grows: Welford add
                        delta = xs - mean[f]
                        mean[f] += delta / (seen + 1)
                        m2[f] += delta * (xs - mean[f])
                    else:               # the window slides: replace the oldest value
                        old_s = ring[f, pos] - shift[f]
                        delta = xs - old_s
                        new_mean = mean[f] + delta / W
                        m2[f] += delta * (xs - new_mean + old_s - mean[f])
                        mean[f] = new_mean
                ring[f, pos] = x
                n_seen[f] = seen + 1
                n = W if seen + 1 >= W else seen + 1
                since_recompute[f] += 1
                if m2[f] > m2_peak[f]:
                    m2_peak[f] = m2[f]
                if since_recompute[f] >= W or m2[f] < _RECOMPUTE_DROP * m2_peak[f]:
                    _rolling_recompute(ring, f, n, &shift[f], &mean[f], &m2[f])
                    since_recompute[f] = 0
                    m2_peak[f] = m2[f]
                if seen + 1 < W:
                    z[i, f] = NAN
                    row_flags[i] |= ROW_WARMUP
                    counts[f, 0] += 1
                    continue
                centre = shift[f] + mean[f]
                var = m2[f] / (W - 1)
                std = sqrt(var) if var > 0.0 else 0.0
                if run_length[f] >= W or std <= _ZERO_STD_REL * (fabs(centre) if fabs(centre) > 1.0 else 1.0):
                    z[i, f] = 0.0
                    row_flags[i] |= ROW_ZERO_STD
                    counts[f, 2] += 1
                    continue
                zz = ((x - shift[f]) - mean[f]) / std
                if zz > z_clip:
                    zz = z_clip
                    row_flags[i] |= ROW_CLIPPED
                    counts[f, 3] += 1
                elif zz < -z_clip:
                    zz = -z_clip
                    row_flags[i] |= ROW_CLIPPED
                    counts[f, 3] += 1
                z[i, f] = zz
