# K-Means kernels: one pass over the rows of a (n, d) float64 matrix each.
#
# Loop control (seeding choices, convergence, empty clusters, n_init) stays in
# clusterlob/kmeans.py; these only fill buffers that Python allocated.  Distances are
# computed directly, sum_f (x_f - c_f)^2, in float64: with d = 6 that costs no more than
# the ||x||^2 - 2 x.c + ||c||^2 expansion and has no cancellation.  Ties go to the
# lowest cluster index (as numpy.argmin).  Rows are read through raw pointers so the
# compiler sees plain loops.  Reference twins: tests/twins/kmeans.py.

from libc.stdint cimport int32_t, int64_t


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
    cdef Py_ssize_t i, j, f, best
    cdef double dist, best_dist, diff, inertia = 0.0
    cdef Py_ssize_t n_changed = 0
    cdef const double* row
    cdef const double* centre
    cdef const double* c0 = &centers[0, 0]
    cdef double* acc = &sums[0, 0]
    sums[:, :] = 0.0
    counts[:] = 0
    if n == 0:
        return 0.0, 0
    cdef const double* x0 = &X[0, 0]
    with nogil:
        for i in range(n):
            row = x0 + i * d
            best = 0
            best_dist = 0.0
            for f in range(d):
                diff = row[f] - c0[f]
                best_dist = best_dist + diff * diff
            for j in range(1, k):
                centre = c0 + j * d
                dist = 0.0
                for f in range(d):
                    diff = row[f] - centre[f]
                    dist = dist + diff * diff
                if dist < best_dist:
                    best_dist = dist
                    best = j
            if labels[i] != best:
                labels[i] = <int32_t>best
                n_changed = n_changed + 1
            inertia = inertia + best_dist
            counts[best] = counts[best] + 1
            for f in range(d):
                acc[best * d + f] = acc[best * d + f] + row[f]
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
    cdef Py_ssize_t i, c, f
    cdef double dist, diff, nearest
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
    cdef const double* row
    cdef const double* cand
    with nogil:
        for i in range(n):
            row = x0 + i * d
            nearest = closest_sq_dist[i]
            for c in range(t):
                cand = cand0 + c * d
                dist = 0.0
                for f in range(d):
                    diff = row[f] - cand[f]
                    dist = dist + diff * diff
                acc[c] = acc[c] + (dist if dist < nearest else nearest)
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
    with nogil:
        for i in range(n):
            row = x0 + i * d
            dist = 0.0
            for f in range(d):
                diff = row[f] - c[f]
                dist = dist + diff * diff
            if dist < closest_sq_dist[i]:
                closest_sq_dist[i] = dist
            total = total + closest_sq_dist[i]
            cumulative[i] = total
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
