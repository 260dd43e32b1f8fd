"""Plain NumPy twins of clusterlob's K-Means kernels and loop: the specification.

Slow and obvious on purpose; the tests compare :mod:`clusterlob.kmeans` and the
``_core.kmeans_*`` kernels with these over seeded random cases.  ``tools/bench_kmeans.py``
imports :func:`lloyd_pass_numpy` to show what the compiled kernel buys.
"""
import numpy as np


def lloyd_pass(X, centers):
    """Labels (int32, ties to the lowest index), inertia, per-cluster sums and counts."""
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    labels = d2.argmin(axis=1).astype(np.int32)
    inertia = float(d2[np.arange(X.shape[0]), labels].sum())
    k = centers.shape[0]
    sums = np.zeros_like(centers)
    for j in range(k):
        sums[j] = X[labels == j].sum(axis=0)
    counts = np.bincount(labels, minlength=k).astype(np.int64)
    return labels, inertia, sums, counts


def lloyd_pass_numpy(X, centers, chunk_rows=1 << 16):
    """The same in bounded memory with the ||x||^2 - 2 x.c + ||c||^2 expansion (for the bench)."""
    k, d = centers.shape
    labels = np.empty(X.shape[0], dtype=np.int32)
    sums = np.zeros((k, d))
    inertia = 0.0
    cc = (centers ** 2).sum(axis=1)
    for start in range(0, X.shape[0], chunk_rows):
        chunk = X[start:start + chunk_rows]
        dist = chunk @ (-2.0 * centers.T)
        dist += cc
        lab = dist.argmin(axis=1)
        labels[start:start + chunk_rows] = lab
        inertia += float(dist[np.arange(lab.size), lab].sum() + (chunk ** 2).sum())
        for f in range(d):
            sums[:, f] += np.bincount(lab, weights=chunk[:, f], minlength=k)
    return labels, inertia, sums, np.bincount(labels, minlength=k).astype(np.int64)


def column_moments(X):
    """Column means and sums of squared deviations (finite X)."""
    mean = X.mean(axis=0)
    return mean, ((X - mean) ** 2).sum(axis=0)


def seed_potential(X, candidate, closest):
    """sum_i min(closest_i, ||X_i - candidate||^2) and the lowered distances."""
    d2 = ((X - candidate) ** 2).sum(axis=1)
    lowered = np.minimum(closest, d2)
    return float(lowered.sum()), lowered


def kmeans_plusplus(X, k, rng, n_local_trials):
    """Greedy K-Means++ drawing from ``rng`` exactly as clusterlob.cluster.kmeans does."""
    n = X.shape[0]
    idx = [int(rng.integers(n))]
    pot, closest = seed_potential(X, X[idx[0]], np.full(n, np.inf))
    for _ in range(1, k):
        if pot > 0:
            cum = np.cumsum(closest)
            cand = np.minimum(np.searchsorted(cum, rng.random(n_local_trials) * cum[-1], side="right"), n - 1)
        else:
            cand = rng.integers(n, size=n_local_trials)
        pots = [seed_potential(X, X[j], closest)[0] for j in cand]
        idx.append(int(cand[int(np.argmin(pots))]))
        pot, closest = seed_potential(X, X[idx[-1]], closest)
    return X[idx].copy(), np.array(idx)


def lloyd(X, centers, max_iter, tol_abs):
    """Lloyd until the partition repeats, the shift is <= tol_abs, or max_iter (no empty clusters)."""
    prev = None
    for it in range(1, max_iter + 1):
        labels, inertia, sums, counts = lloyd_pass(X, centers)
        if prev is not None and np.array_equal(labels, prev):
            return centers, labels, inertia, it
        assert (counts > 0).all(), "reference does not handle empty clusters"
        new = sums / counts[:, None]
        shift = ((new - centers) ** 2).sum()
        centers, prev = new, labels
        if shift <= tol_abs:
            break
    labels, inertia, _, _ = lloyd_pass(X, centers)
    return centers, labels, inertia, it
