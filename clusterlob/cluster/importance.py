"""Which features separate the clusters: the between-cluster sum of squares, feature by feature.

For labelled rows ``z`` (n rows, f features, z units) in k clusters with sizes ``n_c``,
cluster means ``m_c`` and grand mean ``m``, the total sum of squares of every feature
``j`` splits exactly into a between-cluster and a within-cluster part::

    TSS_j = sum_i (z_ij - m_j)^2 = BSS_j + WSS_j
    BSS_j = sum_c n_c (m_cj - m_j)^2                    between clusters
    WSS_j = sum_c sum_{i in c} (z_ij - m_cj)^2          within clusters

For each feature the report gives

``share``
    ``BSS_j / sum_l BSS_l``: the feature's share of the between-cluster separation.  The
    ranking uses it.  K-Means minimises ``sum_j WSS_j``, i.e. (for fixed data) maximises
    ``sum_j BSS_j``, and that total is a plain sum over features; so the share says how much
    of exactly what the clustering optimised each feature carries, the shares add up to 1,
    and no model beyond the fitted labels is needed (no refitting without the feature, no
    permutations, no randomness).  The features are z-scores, so their BSS are in comparable
    units and a large-variance feature does not win by its scale.
``r2``
    ``BSS_j / TSS_j`` (eta squared): the fraction of the feature's own variance the
    clusters explain, scale free, in [0, 1].
``f_ratio``
    ``(BSS_j / (k' - 1)) / (WSS_j / (n - k'))`` with ``k'`` the non-empty clusters: the
    one-way ANOVA F ratio, between-cluster variance over within-cluster variance.  It
    says how cleanly the feature separates (large when the clusters differ a lot for
    their spread).  It is a descriptive number, not a test: the clusters were chosen to
    separate these very rows, so no p-value is given (it would be far too small).

The statistics are computed in one pass over the rows, chunk by chunk (a compiled kernel
updates the per-cluster count, mean and centred sum of squares row by row, Welford's
update), so memory does not grow with ``n`` and large values lose no precision to a
sum-of-squares cancellation.  The cluster means are those of the rows
given: with labels from a converged fit they equal the model's centres; with a model
applied to other rows they are that data's own means (the decomposition needs them).

Degenerate inputs warn and give NaN, not a crash: with one non-empty cluster or equal
cluster means there is no separation to share (``share`` NaN); ``f_ratio`` is NaN when
``n <= k'`` or ``k' < 2``, and ``inf`` when a feature is constant within every cluster but
not across them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .._typing import ArrayLike
from .. import _core
from .._io import check_int
from ..errors import ParameterError
from ..features.settings import FEATURE_NAMES
from ..report import arrow_table

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FeatureImportance", "feature_importance", "importance_for_centers",
           "IMPORTANCE_HEADER", "DEFAULT_CHUNK_ROWS"]

DEFAULT_CHUNK_ROWS = 1 << 16
IMPORTANCE_HEADER = ("rank", "feature", "share_pct", "r2", "f_ratio", "between_ss", "within_ss")


@dataclass(frozen=True)
class FeatureImportance:
    """Per-feature separation of the clusters (see the module doc for the definitions).

    Attributes
    ----------
    feature_names : tuple of str, length f
    n_rows : int
        Rows used.
    counts : ndarray, shape (k,), int64
        Rows in each cluster.
    cluster_means : ndarray, shape (k, f), float64
        Mean of every feature in every cluster (z units); NaN for an empty cluster.
    between_ss, within_ss : ndarray, shape (f,), float64
        Between- and within-cluster sums of squares (z units squared).
    share : ndarray, shape (f,)
        ``between_ss / between_ss.sum()``; NaN when there is no separation.
    r2 : ndarray, shape (f,)
        ``between_ss / (between_ss + within_ss)``; NaN for a constant feature.
    f_ratio : ndarray, shape (f,)
        One-way ANOVA F ratio; NaN or inf in the degenerate cases of the module doc.
    order : tuple of int
        Feature indices, most separating first (by ``share``, ties in feature order).
    """

    feature_names: tuple
    n_rows: int
    counts: np.ndarray
    cluster_means: np.ndarray
    between_ss: np.ndarray
    within_ss: np.ndarray
    share: np.ndarray
    r2: np.ndarray
    f_ratio: np.ndarray
    order: tuple

    @property
    def k(self) -> int:
        return int(self.counts.shape[0])

    @property
    def ranking(self) -> tuple:
        """Feature names, most separating first."""
        return tuple(self.feature_names[j] for j in self.order)

    def top(self, n: int = 2) -> tuple:
        """The ``n`` most separating features as ``(name, share)`` pairs."""
        return tuple((self.feature_names[j], float(self.share[j])) for j in self.order[:n])

    def summary(self, n: int = 2) -> str:
        """``"t_m 41%, t_age 40%"``: the top ``n`` features with their shares (percent)."""
        if not np.isfinite(self.share).any():
            return "no separation (all cluster means equal)"
        return ", ".join(f"{name} {100 * s:.0f}%" for name, s in self.top(n))

    def __repr__(self) -> str:
        return f"FeatureImportance(k={self.k}, n_rows={self.n_rows}, top: {self.summary(3)})"

    def rows(self) -> list:
        """Table rows in rank order: rank, feature, share (percent), r2, F, BSS, WSS."""
        return [[rank + 1, self.feature_names[j], 100 * float(self.share[j]), float(self.r2[j]),
                 float(self.f_ratio[j]), float(self.between_ss[j]), float(self.within_ss[j])]
                for rank, j in enumerate(self.order)]

    def markdown_rows(self) -> list:
        """:meth:`rows` formatted for ``report.markdown_table(IMPORTANCE_HEADER, ...)``."""
        return [[rank, name, f"{share:.1f}" if np.isfinite(share) else "",
                 f"{r2:.3f}" if np.isfinite(r2) else "", _format_f(f), f"{bss:.6g}", f"{wss:.6g}"]
                for rank, name, share, r2, f, bss, wss in self.rows()]

    def to_dict(self) -> dict:
        """JSON-able dict; features in rank order (non-finite values become null on writing)."""
        return {"measure": "between-cluster sum of squares per feature (share of the total), "
                           "eta squared (r2) and one-way ANOVA F ratio",
                "n_rows": self.n_rows, "k": self.k, "counts": self.counts.tolist(),
                "ranking": list(self.ranking),
                "features": [{"rank": rank + 1, "feature": self.feature_names[j],
                              "share": float(self.share[j]), "r2": float(self.r2[j]),
                              "f_ratio": float(self.f_ratio[j]),
                              "between_ss": float(self.between_ss[j]),
                              "within_ss": float(self.within_ss[j])}
                             for rank, j in enumerate(self.order)],
                "cluster_means": {name: self.cluster_means[:, j].tolist()
                                  for j, name in enumerate(self.feature_names)}}

    def to_arrow(self) -> pa.Table:
        """One row per feature, in feature order: ``feature``, ``rank`` (1 = most separating),
        ``share``, ``r2``, ``f_ratio``, ``between_ss``, ``within_ss``."""
        rank = np.empty(len(self.feature_names), np.int64)
        rank[list(self.order)] = np.arange(1, len(self.order) + 1)
        return arrow_table({"feature": list(self.feature_names), "rank": rank, "share": self.share,
                            "r2": self.r2, "f_ratio": self.f_ratio, "between_ss": self.between_ss,
                            "within_ss": self.within_ss}, {"n_rows": str(self.n_rows)})


def _format_f(f: float) -> str:
    if np.isnan(f):
        return ""
    return "inf" if np.isinf(f) else f"{f:.4g}"


# -- one-pass accumulator --------------------------------------------------------------------

class _ClusterMoments:
    """Per-cluster count, mean and centred sum of squares, updated row by row (Welford)."""

    def __init__(self, k: int, f: int):
        self.count = np.zeros(k, dtype=np.int64)
        self.mean = np.zeros((k, f))
        self.m2 = np.zeros((k, f))

    def add(self, z, labels: np.ndarray, first_row: int) -> None:
        """Add a chunk (labels already checked to be in 0..k-1); refuse non-finite rows."""
        chunk = np.ascontiguousarray(z, dtype=np.float64)
        bad = _core.cluster_moments_update(chunk, np.ascontiguousarray(labels, dtype=np.int64),
                                           self.count, self.mean, self.m2)
        if bad >= 0:
            raise ParameterError(f"`z` has NaN or inf values (first at row {first_row + bad}); "
                                 f"pass only valid rows (features.z[features.valid])")


def _check_labels(labels, n: int, k: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ParameterError(f"`labels` must have shape ({n},) like the rows of `z`, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError(f"`labels` must be integers, got dtype {labels.dtype}")
    if n:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise ParameterError(f"`labels` must be in 0..{k - 1} (k={k}), got {bad}")
    return labels


def _check_z(z, feature_names) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != len(feature_names):
        raise ParameterError(f"`z` must have shape (n, {len(feature_names)}), got {z.shape}")
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise ParameterError(f"`z` must be numeric, got dtype {z.dtype}")
    if z.shape[0] < 1:
        raise ParameterError("`z` has no rows")
    return z


def _check_chunk(chunk_rows) -> int:
    return check_int("chunk_rows", chunk_rows, 1)


def _result(moments: _ClusterMoments, feature_names: tuple) -> FeatureImportance:
    count, mean, m2 = moments.count, moments.mean, moments.m2
    n = int(count.sum())
    present = count > 0
    k_used = int(present.sum())
    grand = (count[:, None] * mean).sum(axis=0) / n
    dev = mean[present] - grand
    between = (count[present, None] * dev * dev).sum(axis=0)
    within = m2.sum(axis=0)
    total_between = float(between.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        share = between / total_between if total_between > 0 else np.full(between.shape, np.nan)
        r2 = np.where(between + within > 0, between / (between + within), np.nan)
        if k_used >= 2 and n > k_used:
            f_ratio = (between / (k_used - 1)) / (within / (n - k_used))
            f_ratio = np.where((between == 0) & (within == 0), np.nan, f_ratio)
        else:
            f_ratio = np.full(between.shape, np.nan)
    if not total_between > 0:
        warnings.warn(f"feature importance: no between-cluster separation ({k_used} non-empty "
                      f"cluster(s), equal means); shares are NaN", RuntimeWarning, stacklevel=3)
    key = np.where(np.isfinite(share), share, -np.inf)
    order = tuple(int(j) for j in np.argsort(-key, kind="stable"))
    means = np.where(present[:, None], mean, np.nan)
    return FeatureImportance(feature_names=tuple(feature_names), n_rows=n, counts=count.copy(),
                             cluster_means=means, between_ss=between, within_ss=within,
                             share=share, r2=r2, f_ratio=f_ratio, order=order)


# -- public ------------------------------------------------------------------------------------

def feature_importance(z: ArrayLike, labels: ArrayLike, k: int | None = None, *, feature_names: Sequence[str] = FEATURE_NAMES,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS) -> FeatureImportance:
    """Each feature's share of the between-cluster separation of labelled rows.

    Parameters
    ----------
    z : array_like, shape (n, f)
        Finite feature rows (z units), for example ``features.z[features.valid]``.
        Read chunk by chunk (a NumPy memmap works; nothing of size n is allocated).
    labels : array_like of int, shape (n,)
        Cluster of every row, in ``0..k-1`` (as returned by ``fit_model``).
    k : int, optional
        Number of clusters (a model's ``k``; clusters without rows are counted as empty).
        Default ``labels.max() + 1``.
    feature_names : sequence of str, length f
        Column names, ``FEATURE_NAMES`` by default.
    chunk_rows : int
        Rows per chunk; memory is about ``chunk_rows * f * 24`` bytes.

    Returns
    -------
    FeatureImportance
        ``share``, ``r2`` and ``f_ratio`` per feature, ranked by ``share``.
    """
    feature_names = tuple(feature_names)
    z = _check_z(z, feature_names)
    chunk_rows = _check_chunk(chunk_rows)
    n = z.shape[0]
    labels_arr = np.asarray(labels)
    if k is None:
        if labels_arr.size == 0 or not np.issubdtype(labels_arr.dtype, np.integer):
            _check_labels(labels_arr, n, 1)
        k = max(int(labels_arr.max()) + 1, 1)
    k = check_int("k", k, 1)
    labels_arr = _check_labels(labels_arr, n, int(k))
    moments = _ClusterMoments(int(k), len(feature_names))
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        moments.add(z[start:stop], labels_arr[start:stop], start)
    return _result(moments, feature_names)


def importance_for_centers(z: ArrayLike, centers_z: ArrayLike, *, feature_names: Sequence[str] = FEATURE_NAMES,
                           chunk_rows: int = DEFAULT_CHUNK_ROWS) -> FeatureImportance:
    """Label rows by their nearest centre and compute :func:`feature_importance`, in one pass.

    Use it for a model applied to other rows (``model.centers_z`` on another tape): the
    labels are made chunk by chunk, never for all rows at once.

    Parameters
    ----------
    z : array_like, shape (n, f)
        Finite feature rows (z units).
    centers_z : array_like, shape (k, f)
        Cluster centres (``ClusterModel.centers_z``).
    feature_names, chunk_rows
        As :func:`feature_importance`.

    Returns
    -------
    FeatureImportance
        With ``k`` = the number of centres; ``counts`` are this data's rows per cluster.
    """
    from .kmeans import assign_clusters

    feature_names = tuple(feature_names)
    z = _check_z(z, feature_names)
    chunk_rows = _check_chunk(chunk_rows)
    centers = np.asarray(centers_z, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != len(feature_names) or centers.shape[0] < 1:
        raise ParameterError(f"`centers_z` must have shape (k, {len(feature_names)}), got {centers.shape}")
    if not np.isfinite(centers).all():
        raise ParameterError("`centers_z` has NaN or inf values")
    moments = _ClusterMoments(centers.shape[0], len(feature_names))
    for start in range(0, z.shape[0], chunk_rows):
        chunk = np.ascontiguousarray(z[start:start + chunk_rows], dtype=np.float64)
        if not np.isfinite(chunk.sum()):    # cheap test first; name the row in all of z
            bad = ~np.isfinite(chunk).all(axis=1)
            if bad.any():
                raise ParameterError(f"`z` has NaN or inf values (first at row "
                                     f"{start + int(np.argmax(bad))}); pass only valid rows "
                                     f"(features.z[features.valid])")
        labels, _, _ = assign_clusters(chunk, centers)
        moments.add(chunk, labels, start)
    return _result(moments, feature_names)
