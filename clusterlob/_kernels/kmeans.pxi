# K-Means kernels: one pass over the rows of a (n, d) float64 matrix each.
#
# Loop control (seeding choices, convergence, empty clusters, n_init) stays in
# clusterlob/kmeans.py; these only fill buffers that Python allocated.  Distances are
# computed directly, sum_f (x_f - c_f)^2, in float64: with d = 6 that costs no more than
# the ||x||^2 - 2 x.c + ||c||^2 expansion and has no cancellation.  Ties go to the
# lowest cluster index (as numpy.argmin).  Reference twins: tests/kmeans_reference.py.

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
    sums[:, :] = 0.0
    counts[:] = 0
    with nogil:
        for i in range(n):
            best = 0
            best_dist = 0.0
            for f in range(d):
                diff = X[i, f] - centers[0, f]
                best_dist = best_dist + diff * diff
            for j in range(1, k):
                dist = 0.0
                for f in range(d):
                    diff = X[i, f] - centers[j, f]
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
                sums[best, f] = sums[best, f] + X[i, f]
    return inertia, n_changed


def kmeans_seed_potential(const double[:, ::1] X, const double[::1] candidate,
                          double[::1] closest_sq_dist, bint update):
    """K-Means++ potential of adding ``candidate`` as a centre.

    IN: X (n, d), candidate (d,).  IN (OUT when ``update``): closest_sq_dist (n,), each
    row's squared distance to its nearest chosen centre so far; with ``update`` it is
    lowered to the distance to ``candidate`` where that is nearer.

    Returns sum_i min(closest_sq_dist[i], ||X[i] - candidate||^2).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t i, f
    cdef double dist, diff, total = 0.0
    with nogil:
        for i in range(n):
            dist = 0.0
            for f in range(d):
                diff = X[i, f] - candidate[f]
                dist = dist + diff * diff
            if dist < closest_sq_dist[i]:
                if update:
                    closest_sq_dist[i] = dist
                total = total + dist
            else:
                total = total + closest_sq_dist[i]
    return total
