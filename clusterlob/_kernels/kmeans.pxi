# K-Means kernels: one pass over the rows of a (n, d) float64 matrix each.
#
# Loop control (seeding choices, convergence, empty clusters, n_init) stays in
# clusterlob/kmeans.py; these only fill buffers that Python allocated.  Distances are
# computed directly, sum_f (x_f - c_f)^2, in float64: with d = 6 that costs no more than
# the ||x||^2 - 2 x.c + ||c||^2 expansion and has no cancellation.  Ties go to the
# lowest cluster index (as numpy.argmin).  Rows are read through raw pointers so the
# compiler sees plain loops.  Reference twins: tests/twins/kmeans.py.

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free


cdef enum:
    DIST_BLOCK = 256           # rows whose distances to every centre are computed together


cdef void _block_sq_dists(const double* blk, Py_ssize_t m, Py_ssize_t d, const double* c0,
                          Py_ssize_t k, double* dist) noexcept nogil:
    """dist[j * DIST_BLOCK + r] = sum_f (blk[r, f] - c0[j, f])^2 for m <= DIST_BLOCK rows.

    Each row's sum runs over f in order, exactly as a row-at-a-time loop would add it, so
    the result is bit for bit the same; only the loop order differs: rows inner, so the
    adds of different rows are independent (no latency chain through one accumulator).
    """
    cdef Py_ssize_t j, f, r
    cdef double cf, diff
    cdef double* dj
    for j in range(k):
        dj = dist + j * DIST_BLOCK
        cf = c0[j * d]
        for r in range(m):
            diff = blk[r * d] - cf
            dj[r] = diff * diff
        for f in range(1, d):
            cf = c0[j * d + f]
            for r in range(m):
                diff = blk[r * d + f] - cf
                dj[r] = dj[r] + diff * diff


def kmeans_lloyd_pass(const double[:, ::1] X, const double[:, ::1] centers,
                      int32_t[::1] labels, double[:, ::1] sums, int64_t[::1] counts):
    """Assign every row to its nearest centre and accumulate the per-cluster sums.

    IN: X (n, d), centers (k, d).  IN/OUT: labels (n,), the previous labels in (any
    value, e.g. -1, when there are none) and the nearest centre out.  OUT: sums (k, d)
    and counts (k,) of the rows assigned to each centre (overwritten).

    Returns ``(inertia, n_changed)``: the sum of squared distances of the rows to their
    nearest centre, and how many labels differ from the ones passed in.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t i, j, f, r, m, start, best
    cdef double dist_j, best_dist, inertia = 0.0
    cdef Py_ssize_t n_changed = 0
    cdef bint closer
    cdef const double* row
    cdef const double* blk
    cdef const double* c0 = &centers[0, 0]
    cdef double* acc = &sums[0, 0]
    sums[:, :] = 0.0
    counts[:] = 0
    if n == 0:
        return 0.0, 0
    cdef const double* x0 = &X[0, 0]
    cdef int32_t* lab = &labels[0]
    cdef int64_t* cnt = &counts[0]
    cdef double* dist = <double*> malloc(k * DIST_BLOCK * sizeof(double))
    if dist == NULL:
        raise MemoryError(f"kmeans_lloyd_pass: no memory for {k} x {DIST_BLOCK} distances")
    with nogil:
        start = 0
        while start < n:
            m = n - start if n - start < DIST_BLOCK else DIST_BLOCK
            blk = x0 + start * d
            _block_sq_dists(blk, m, d, c0, k, dist)
            for r in range(m):
                best = 0
                best_dist = dist[r]
                for j in range(1, k):          # strict <: ties go to the lowest index
                    dist_j = dist[j * DIST_BLOCK + r]
                    closer = dist_j < best_dist
                    best = j if closer else best
                    best_dist = dist_j if closer else best_dist
                i = start + r
                n_changed = n_changed + (lab[i] != best)
                lab[i] = <int32_t>best
                inertia = inertia + best_dist
                cnt[best] = cnt[best] + 1
                row = blk + r * d
                for f in range(d):
                    acc[best * d + f] = acc[best * d + f] + row[f]
            start = start + m
    free(dist)
    return inertia, n_changed


cdef enum:
    MAX_SEED_CANDIDATES = 64   # size of the stack buffer of kmeans_seed_potentials

KMEANS_MAX_SEED_CANDIDATES = MAX_SEED_CANDIDATES    # for Python (kmeans_plusplus checks it)


def kmeans_seed_potentials(const double[:, ::1] X, const double[:, ::1] candidates,
                           const double[::1] closest_sq_dist, double[::1] potentials):
    """K-Means++ potential of adding each candidate as a centre, in one pass over X.

    IN: X (n, d), candidates (t, d) with t <= 64, closest_sq_dist (n,), each row's
    squared distance to its nearest chosen centre so far.  OUT: potentials (t,),
    potentials[c] = sum_i min(closest_sq_dist[i], ||X[i] - candidates[c]||^2).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], t = candidates.shape[0]
    cdef Py_ssize_t c
    cdef double dist_c, nearest
    cdef double acc[MAX_SEED_CANDIDATES]
    if t > MAX_SEED_CANDIDATES:
        raise ValueError(f"at most {MAX_SEED_CANDIDATES} candidates per call, got {t}")
    potentials[:] = 0.0
    if n == 0 or t == 0:
        return
    for c in range(t):
        acc[c] = 0.0
    cdef const double* x0 = &X[0, 0]
    cdef const double* cand0 = &candidates[0, 0]
    cdef Py_ssize_t m, r, start = 0
    cdef double* dist = <double*> malloc(t * DIST_BLOCK * sizeof(double))
    if dist == NULL:
        raise MemoryError(f"kmeans_seed_potentials: no memory for {t} x {DIST_BLOCK} distances")
    with nogil:
        while start < n:
            m = n - start if n - start < DIST_BLOCK else DIST_BLOCK
            _block_sq_dists(x0 + start * d, m, d, cand0, t, dist)
            for r in range(m):
                nearest = closest_sq_dist[start + r]
                for c in range(t):
                    dist_c = dist[c * DIST_BLOCK + r]
                    acc[c] = acc[c] + (dist_c if dist_c < nearest else nearest)
            start = start + m
    free(dist)
    for c in range(t):
        potentials[c] = acc[c]


def kmeans_seed_update(const double[:, ::1] X, const double[::1] centre, double[::1] closest_sq_dist,
                       double[::1] cumulative):
    """Lower each row's squared distance to its nearest centre by a new ``centre``.

    IN: X (n, d), centre (d,).  IN/OUT: closest_sq_dist (n,) (``inf`` before the first
    centre).  OUT: cumulative (n,), the running sum of the lowered distances (what the
    next draw searches).  Returns the new potential, sum_i closest_sq_dist[i].
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t i, f
    cdef double dist, diff, total = 0.0
    if n == 0:
        return 0.0
    cdef const double* x0 = &X[0, 0]
    cdef const double* c = &centre[0]
    cdef const double* row
    cdef double* cl = &closest_sq_dist[0]
    cdef double* cu = &cumulative[0]
    cdef double old
    with nogil:
        for i in range(n):
            row = x0 + i * d
            dist = 0.0
            for f in range(d):
                diff = row[f] - c[f]
                dist = dist + diff * diff
            old = cl[i]
            old = dist if dist < old else old        # min without a branch to mispredict
            cl[i] = old
            total = total + old
            cu[i] = total
    return total


def kmeans_column_moments(const double[:, ::1] X, double[::1] mean, double[::1] sq_dev):
    """Column means and sums of squared deviations, two passes, no temporaries.

    IN: X (n, d).  OUT: mean (d,), sq_dev (d,) = sum_i (X[i, f] - mean[f])^2.
    Returns the number of rows with a non-finite value (then mean and sq_dev are not
    meaningful) and stops counting at the first pass.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t i, f, bad = 0
    cdef double v, diff
    cdef bint row_bad
    mean[:] = 0.0
    sq_dev[:] = 0.0
    if n == 0:
        return 0
    cdef const double* x0 = &X[0, 0]
    cdef const double* row
    with nogil:
        for i in range(n):
            row = x0 + i * d
            row_bad = False
            for f in range(d):
                v = row[f]
                if v - v != 0.0:          # NaN or inf
                    row_bad = True
                mean[f] = mean[f] + v
            if row_bad:
                bad = bad + 1
        if bad == 0:
            for f in range(d):
                mean[f] = mean[f] / n
            for i in range(n):
                row = x0 + i * d
                for f in range(d):
                    diff = row[f] - mean[f]
                    sq_dev[f] = sq_dev[f] + diff * diff
    return bad
