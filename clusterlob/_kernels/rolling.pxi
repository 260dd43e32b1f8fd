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

# the row flags, for Python (clusterlob.features.build counts and masks with them): defined here only
ROLLING_ROW_WARMUP, ROLLING_ROW_NONFINITE, ROLLING_ROW_ZERO_STD, ROLLING_ROW_CLIPPED = (
    ROW_WARMUP, ROW_NONFINITE, ROW_ZERO_STD, ROW_CLIPPED)
# the columns of ``counts`` (per feature), in the order written at the end of _rolling_column
ROLLING_COUNT_COLUMNS = ("warmup", "nonfinite", "zero_std", "clipped")

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


cdef void _rolling_column(const double[:, ::1] raw, Py_ssize_t f, Py_ssize_t lo, Py_ssize_t hi,
                          double[:, ::1] ring, int64_t[::1] n_seen, int64_t[::1] run_length,
                          int64_t[::1] since_recompute, double[::1] shift, double[::1] mean,
                          double[::1] m2, double[::1] m2_peak, double z_clip,
                          double[:, ::1] z, uint8_t[::1] row_flags,
                          int64_t[:, ::1] counts) noexcept nogil:
    # Rows lo..hi-1 of column f; the column's state lives in locals for the whole block.
    cdef Py_ssize_t W = ring.shape[1]
    cdef double inv_w = 1.0 / W, inv_w1 = 1.0 / (W - 1)
    cdef int64_t seen = n_seen[f], run = run_length[f], since = since_recompute[f]
    cdef double sh = shift[f], mu = mean[f], q = m2[f], q_peak = m2_peak[f]
    cdef int64_t n_warm = 0, n_nonfinite = 0, n_zero = 0, n_clip = 0
    cdef Py_ssize_t i, pos = seen % W, prev
    cdef double x, xs, old_s, delta, new_mu, std, centre, zz, var
    for i in range(lo, hi):
        x = raw[i, f]
        if not isfinite(x):
            z[i, f] = NAN
            row_flags[i] |= ROW_NONFINITE
            n_nonfinite += 1
            continue
        if seen == 0:
            run = 1
            sh = x
            mu = 0.0
            q = 0.0
            q_peak = 0.0
        else:
            prev = W - 1 if pos == 0 else pos - 1
            if x == ring[f, prev]:
                if run < W:
                    run += 1
            else:
                run = 1
            xs = x - sh
            if seen < W:        # the window grows: Welford add
                delta = xs - mu
                mu += delta / (seen + 1)
                q += delta * (xs - mu)
            else:               # the window slides: replace the oldest value
                old_s = ring[f, pos] - sh
                delta = xs - old_s
                new_mu = mu + delta * inv_w
                q += delta * (xs - new_mu + old_s - mu)
                mu = new_mu
        ring[f, pos] = x
        pos = 0 if pos == W - 1 else pos + 1
        seen += 1
        since += 1
        if q > q_peak:
            q_peak = q
        if since >= W or q < _RECOMPUTE_DROP * q_peak:
            _rolling_recompute(ring, f, W if seen >= W else seen, &sh, &mu, &q)
            since = 0
            q_peak = q
        if seen < W:
            z[i, f] = NAN
            row_flags[i] |= ROW_WARMUP
            n_warm += 1
            continue
        centre = sh + mu
        var = q * inv_w1
        std = sqrt(var) if var > 0.0 else 0.0
        if run >= W or std <= _ZERO_STD_REL * (fabs(centre) if fabs(centre) > 1.0 else 1.0):
            z[i, f] = 0.0
            row_flags[i] |= ROW_ZERO_STD
            n_zero += 1
            continue
        zz = ((x - sh) - mu) / std
        if zz > z_clip:
            zz = z_clip
            row_flags[i] |= ROW_CLIPPED
            n_clip += 1
        elif zz < -z_clip:
            zz = -z_clip
            row_flags[i] |= ROW_CLIPPED
            n_clip += 1
        z[i, f] = zz
    n_seen[f] = seen
    run_length[f] = run
    since_recompute[f] = since
    shift[f] = sh
    mean[f] = mu
    m2[f] = q
    m2_peak[f] = q_peak
    counts[f, 0] += n_warm
    counts[f, 1] += n_nonfinite
    counts[f, 2] += n_zero
    counts[f, 3] += n_clip


def rolling_zscore_kernel(const double[:, ::1] raw, object state, double z_clip,
                          double[:, ::1] z, uint8_t[::1] row_flags, int64_t[:, ::1] counts,
                          Py_ssize_t col_lo=0, Py_ssize_t col_hi=-1):
    """Rolling z-scores of columns col_lo..col_hi-1 of ``raw`` over the last W finite values.

    IN: raw (m, F); z_clip.  IN/OUT: state, the window state of F columns
    (``clusterlob.features.RollingState``, read by attribute here and nowhere else; W =
    ring.shape[1]): ring (F, W), n_seen, run_length, since_recompute (F,) int64; shift,
    mean_shifted, m2, m2_peak (F,) float64.
    OUT: z (m, F), row_flags (m,) uint8 (zeroed by the caller; bits are OR-ed in),
    counts (F, 4) int64 (accumulated: warm-up, non-finite, zero std, clipped).

    Rows go in blocks small enough to stay in cache, each block column by column, so a
    column's state stays in registers and the input is read from memory once.  Columns
    are independent: two threads may run disjoint column ranges at once, each with its
    own ``row_flags``.  ``col_hi=-1`` means all columns.
    """
    cdef double[:, ::1] ring = state.ring
    cdef int64_t[::1] n_seen = state.n_seen, run_length = state.run_length
    cdef int64_t[::1] since_recompute = state.since_recompute
    cdef double[::1] shift = state.shift, mean = state.mean_shifted, m2 = state.m2, m2_peak = state.m2_peak
    cdef Py_ssize_t m = raw.shape[0]
    cdef Py_ssize_t n_cols = raw.shape[1] if col_hi < 0 else col_hi
    cdef Py_ssize_t lo = 0, hi, f
    cdef Py_ssize_t block = 4096
    with nogil:
        while lo < m:
            hi = lo + block if lo + block < m else m
            for f in range(col_lo, n_cols):
                _rolling_column(raw, f, lo, hi, ring, n_seen, run_length, since_recompute,
                                shift, mean, m2, m2_peak, z_clip, z, row_flags, counts)
            lo = hi
