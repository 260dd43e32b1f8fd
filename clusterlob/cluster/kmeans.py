"""K-Means++ by hand: greedy seeding, Lloyd iterations, n_init restarts, labelling.

The algorithm is the textbook one (Arthur & Vassilvitskii 2007 with the greedy variant
of scikit-learn): the first centre is a uniformly drawn row; every further centre is
the best of ``2 + int(ln k)`` candidates drawn with probability proportional to the
squared distance to the nearest centre so far, "best" meaning the lowest resulting
potential (sum of those squared distances).  Lloyd iterations then alternate
assignment and mean update until the labels stop changing or the centres move less
than ``tol`` (squared shift summed over centres, relative to the mean per-feature
variance of the data, as scikit-learn), or ``max_iter`` is reached.  After the loop
the rows are labelled once more against the final centres, so labels, centres and
inertia always agree.

Memory is bounded: every pass over the rows is one compiled loop
(:mod:`clusterlob._core`: ``kmeans_column_moments``, ``kmeans_seed_update``,
``kmeans_seed_potentials``, ``kmeans_lloyd_pass``) that keeps only per-cluster or
per-column sums, so besides the input there are only a few arrays of length n
(labels; distances and their running sum while seeding), never an n x k x d
temporary.  Seeding reads the data 1 + 2 (k - 1) times (all candidates of a centre are
scored in one pass), each Lloyd iteration once.

Randomness comes from ``seed`` (an int, None or a :class:`numpy.random.Generator`);
the same seed gives the same result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._typing import ArrayLike, Seed
from .. import _core
from .._io import check_int, check_number
from ..errors import ParameterError

__all__ = ["KMeansResult", "kmeans", "kmeans_plusplus", "assign_clusters", "check_matrix"]

_CHUNK_ROWS = 1 << 18


@dataclass(frozen=True)
class KMeansResult:
    """A fitted K-Means.

    Attributes
    ----------
    centers : ndarray, shape (k, d), float64
        Cluster centres in the units of the input (z units for features).
    labels : ndarray, shape (n,), int32
        Nearest centre of every input row (all rows, also when fit on a sample).
    inertia : float
        Sum of squared distances of all n rows to their nearest centre.
    fit_inertia : float
        The same over the rows the centres were fit on (equals ``inertia`` without
        ``fit_sample``); the best of the ``n_init`` runs by this value is kept.
    n_iter : int
        Lloyd iterations of the kept run.
    converged : bool
        Whether the kept run stopped before ``max_iter``.
    rows_fit : int
        Rows the centres were fit on.
    counts : ndarray, shape (k,), int64
        Rows of all n assigned to each centre.
    init_inertias : tuple of float
        ``fit_inertia`` of every run, in order.
    init_centers : tuple of ndarray
        Final centres of every run, in order (the kept run's are ``centers``).
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    fit_inertia: float
    n_iter: int
    converged: bool
    rows_fit: int
    counts: np.ndarray
    init_inertias: tuple
    init_centers: tuple = ()

    @property
    def k(self) -> int:
        return int(self.centers.shape[0])

    def __repr__(self) -> str:
        return (f"KMeansResult(k={self.k}, rows={self.labels.shape[0]}, rows_fit={self.rows_fit}, "
                f"inertia={self.inertia:.6g}, n_iter={self.n_iter}, converged={self.converged})")

    def to_dict(self) -> dict:
        """Everything except the per-row labels, as plain Python types."""
        return {"k": self.k, "centers": self.centers.tolist(), "inertia": float(self.inertia),
                "fit_inertia": float(self.fit_inertia), "n_iter": int(self.n_iter),
                "converged": bool(self.converged), "rows_fit": int(self.rows_fit),
                "rows": int(self.labels.shape[0]), "counts": self.counts.tolist(),
                "init_inertias": [float(v) for v in self.init_inertias]}


# -- validation ----------------------------------------------------------------------------

def check_matrix(X: ArrayLike, name: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous float64 (n, d) array with only finite values.

    Copies only when the dtype or layout requires it.  Raises :class:`ParameterError`
    naming ``name``, the shape, or the first non-finite row.
    """
    X = _as_matrix(X, name)
    _moments(X, name)
    return X


def _as_matrix(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ParameterError(f"`{name}` must be a 2-D (rows, features) array, got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise ParameterError(f"`{name}` must be numeric, got dtype {X.dtype}")
    return np.ascontiguousarray(X, dtype=np.float64)


def _moments(X: np.ndarray, name: str = "X"):
    """Column means and population variances of a C-contiguous float64 matrix (one kernel call).

    Raises the one-line error of :func:`check_matrix` if a value is NaN or inf.
    """
    mean, sq_dev = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    n_bad = _core.kmeans_column_moments(X, mean, sq_dev)
    if n_bad:
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            bad = ~np.isfinite(X[start:start + _CHUNK_ROWS]).all(axis=1)
            if bad.any():
                raise ParameterError(f"`{name}` has {n_bad} rows with NaN or inf "
                                     f"(first at row {start + int(np.argmax(bad))})")
    return mean, sq_dev / max(X.shape[0], 1)


def _check_k(k, n: int) -> int:
    k = check_int("k", k, 1)
    if k > n:
        raise ParameterError(f"`k` must be <= the number of rows ({n}), got {k}")
    return int(k)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(check_int("seed", seed, 0, none_ok=True))
    except ParameterError:
        raise ParameterError(f"`seed` must be None, an integer >= 0 or a numpy Generator, got {seed!r}") from None


# -- seeding -------------------------------------------------------------------------------

def kmeans_plusplus(X: ArrayLike, k: int, *, seed: Seed = None, n_local_trials: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Choose ``k`` initial centres by greedy K-Means++.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Finite data.
    k : int
        Number of centres, 1 <= k <= n.
    seed : int, None or numpy.random.Generator
    n_local_trials : int, optional
        Candidates drawn per centre after the first; default ``2 + int(ln k)``.

    Returns
    -------
    centers : ndarray, shape (k, d), float64
        Rows of ``X``.
    indices : ndarray, shape (k,), int64
        Their row numbers.
    """
    X = check_matrix(X)
    k = _check_k(k, X.shape[0])
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(k))
    n_local_trials = check_int("n_local_trials", n_local_trials, 1)
    if n_local_trials > _core.KMEANS_MAX_SEED_CANDIDATES:
        raise ParameterError(f"`n_local_trials` must be <= {_core.KMEANS_MAX_SEED_CANDIDATES}, got {n_local_trials}")
    return _seed(X, k, _rng(seed), n_local_trials)


def _seed(X: np.ndarray, k: int, rng: np.random.Generator, n_local_trials: int):
    n = X.shape[0]
    indices = np.empty(k, dtype=np.int64)
    indices[0] = rng.integers(n)
    closest = np.full(n, np.inf)
    cumulative = np.empty(n)
    potential = _core.kmeans_seed_update(X, X[indices[0]], closest, cumulative)
    trial_potentials = np.empty(n_local_trials)
    for c in range(1, k):
        if potential > 0.0:
            draws = rng.random(n_local_trials) * cumulative[-1]
            candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), n - 1)
        else:  # every row sits on a chosen centre: any row will do
            candidates = rng.integers(n, size=n_local_trials)
        _core.kmeans_seed_potentials(X, X[candidates], closest, trial_potentials)
        indices[c] = candidates[int(np.argmin(trial_potentials))]
        potential = _core.kmeans_seed_update(X, X[indices[c]], closest, cumulative)
    return X[indices].copy(), indices


# -- Lloyd ---------------------------------------------------------------------------------

def _relocate_empty(X: np.ndarray, centers: np.ndarray, labels: np.ndarray, empty: np.ndarray) -> None:
    """Move the centres of empty clusters onto the rows farthest from their own centre."""
    want = int(empty.size)
    best_d = np.full(want, -1.0)
    best_i = np.zeros(want, dtype=np.int64)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        chunk = X[start:start + _CHUNK_ROWS]
        d = ((chunk - centers[labels[start:start + _CHUNK_ROWS]]) ** 2).sum(axis=1)
        top = np.argsort(-d, kind="stable")[:want]
        merged_d = np.concatenate([best_d, d[top]])
        merged_i = np.concatenate([best_i, top + start])
        keep = np.argsort(-merged_d, kind="stable")[:want]
        best_d, best_i = merged_d[keep], merged_i[keep]
    for c, i in zip(empty, best_i):
        if best_d[0] > 0.0:
            centers[c] = X[i]


def _lloyd(X: np.ndarray, centers: np.ndarray, max_iter: int, tol_abs: float):
    """Run Lloyd from ``centers``; return (centers, labels, inertia, counts, n_iter, converged)."""
    k, d = centers.shape
    centers = centers.copy()
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    sums = np.zeros((k, d))
    counts = np.zeros(k, dtype=np.int64)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        inertia, n_changed = _core.kmeans_lloyd_pass(X, centers, labels, sums, counts)
        if n_changed == 0:
            # Same partition as the pass before, whose means are ``centers``: a fixed
            # point, and labels, counts and inertia already belong to ``centers``.
            return centers, labels, float(inertia), counts, n_iter, True
        new_centers = centers.copy()
        filled = counts > 0
        new_centers[filled] = sums[filled] / counts[filled, None]
        empty = np.flatnonzero(~filled)
        if empty.size:
            _relocate_empty(X, new_centers, labels, empty)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol_abs and not empty.size:
            converged = True
            break
    # label once more so that labels, counts and inertia belong to the final centres
    inertia, _ = _core.kmeans_lloyd_pass(X, centers, labels, sums, counts)
    return centers, labels, float(inertia), counts, n_iter, converged


# -- public --------------------------------------------------------------------------------

def assign_clusters(X: ArrayLike, centers: ArrayLike) -> tuple[np.ndarray, float, np.ndarray]:
    """Label every row of ``X`` with its nearest centre.

    Parameters
    ----------
    X : array_like, shape (n, d)
    centers : array_like, shape (k, d)

    Returns
    -------
    labels : ndarray, shape (n,), int32
    inertia : float
        Sum of squared distances to the nearest centre.
    counts : ndarray, shape (k,), int64
    """
    X = check_matrix(X)
    centers = check_matrix(centers, "centers")
    if centers.shape[1] != X.shape[1]:
        raise ParameterError(f"`centers` must have {X.shape[1]} columns like `X`, got {centers.shape[1]}")
    return _assign(X, centers)


def _assign(X: np.ndarray, centers: np.ndarray):
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    sums = np.zeros(centers.shape)
    counts = np.zeros(centers.shape[0], dtype=np.int64)
    inertia, _ = _core.kmeans_lloyd_pass(X, centers, labels, sums, counts)
    return labels, float(inertia), counts


def kmeans(X: ArrayLike, k: int = 3, *, n_init: int = 1, max_iter: int = 300, tol: float = 1e-4,
           seed: Seed = None, fit_sample: int | None = None, init: ArrayLike | None = None) -> KMeansResult:
    """Cluster the rows of ``X`` with K-Means++ and Lloyd iterations.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Finite data, e.g. the z-scored features of the valid trades.  float64
        C-contiguous input is used without a copy.
    k : int
        Number of clusters.
    n_init : int
        Independent seedings; the run with the lowest inertia on the fit rows is kept.
    max_iter : int
        Lloyd iterations per run at most.
    tol : float
        Stop when the summed squared centre shift is <= ``tol`` times the mean
        per-feature variance of the fit rows.  0 iterates until the labels stop changing.
    seed : int, None or numpy.random.Generator
        All randomness (sample, seeding) comes from here.
    fit_sample : int, optional
        Fit on this many rows drawn without replacement (seeded), then label all rows.
        None (or >= n) fits on all rows.
    init : array_like, shape (k, d), optional
        Start Lloyd from these centres instead of seeding (then ``n_init`` must be 1).

    Returns
    -------
    KMeansResult
    """
    X = _as_matrix(X)
    _, variance = _moments(X)          # validates (finite) and gives the tolerance's scale
    k = _check_k(k, X.shape[0])
    n_init = check_int("n_init", n_init, 1)
    max_iter = check_int("max_iter", max_iter, 1)
    tol = check_number("tol", tol, 0)
    for name, value, hi in (("n_init", n_init, 1000), ("max_iter", max_iter, 1_000_000)):
        if value > hi:      # a typo that would run for days
            raise ParameterError(f"`{name}` must be an integer in 1..{hi}, got {value!r}")
    if fit_sample is not None:
        fit_sample = check_int("fit_sample", fit_sample, k)
    if init is not None:
        init = check_matrix(init, "init")
        if init.shape != (k, X.shape[1]):
            raise ParameterError(f"`init` must have shape {(k, X.shape[1])}, got {init.shape}")
        if n_init != 1:
            raise ParameterError(f"`n_init` must be 1 when `init` is given, got {n_init}")
    rng = _rng(seed)

    n = X.shape[0]
    if fit_sample is not None and fit_sample < n:
        rows = np.sort(rng.choice(n, size=fit_sample, replace=False))
        X_fit = X[rows]
        variance = _moments(X_fit)[1]
    else:
        X_fit = X
    tol_abs = float(tol) * float(variance.mean())
    n_local_trials = 2 + int(np.log(k))

    best = None
    init_inertias = []
    init_centers = []
    for _ in range(n_init):
        start = init if init is not None else _seed(X_fit, k, rng, n_local_trials)[0]
        run = _lloyd(X_fit, start, max_iter, tol_abs)
        init_inertias.append(run[2])
        init_centers.append(run[0])
        if best is None or run[2] < best[2]:
            best = run
    assert best is not None                # n_init >= 1 was checked
    centers, labels, fit_inertia, counts, n_iter, converged = best
    del best, run
    rows_fit = X_fit.shape[0]
    if X_fit is X:
        inertia = fit_inertia
    else:
        del X_fit, labels
        labels, inertia, counts = _assign(X, centers)
    return KMeansResult(centers=centers, labels=labels, inertia=inertia, fit_inertia=fit_inertia,
                        n_iter=n_iter, converged=converged, rows_fit=rows_fit, counts=counts,
                        init_inertias=tuple(init_inertias), init_centers=tuple(init_centers))
