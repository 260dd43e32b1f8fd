"""Roles of clusters: which mechanism a cluster of trades stands for, and how to find it.

Role codes used throughout the package (labels per trade are int8 arrays of these):
``DIRECTIONAL`` (the log's phi_1, "toxic"), ``OPPORTUNISTIC`` (phi_2), ``PASSIVE`` (phi_3), and
``UNASSIGNED`` (-1) for a trade whose cluster has no role, or a trade with no label.

Alignment gives each cluster of a fit a role, so that a role means the same thing every
day although K-Means numbers its clusters arbitrarily:

* :func:`align_by_rule` (the log's Experiment 4, Strategy B, the project's default):
  directional is the cluster with the largest ``z_obs - z_sbs`` (taking into a thin
  consumed side against a thick other side), opportunistic the one with the largest
  ``z_sbs - z_obs``, passive the rest.  A role whose best score is below ``margin``
  stays unassigned (no cluster carries it, its signal is off) and its cluster counts
  as passive.
* :func:`align_to_reference` (Strategy A): optimal one-to-one matching of the new
  centres to reference centres (scipy's ``linear_sum_assignment`` on Euclidean
  distances), reporting each matched distance.

:func:`label_stability` measures how often two fits give a trade the same role, and
:func:`adjusted_rand_index` compares two partitions regardless of their numbering.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._io import check_number
from .._typing import ArrayLike
from ..errors import ParameterError

__all__ = ["DIRECTIONAL", "OPPORTUNISTIC", "PASSIVE", "UNASSIGNED", "ROLE_NAMES",
           "DEFAULT_MARGIN", "role_name", "RoleAssignment", "align_by_rule",
           "DistanceAlignment", "align_to_reference", "Stability", "label_stability",
           "adjusted_rand_index"]

UNASSIGNED = -1
DIRECTIONAL = 0
OPPORTUNISTIC = 1
PASSIVE = 2
ROLE_NAMES = ("directional", "opportunistic", "passive")
DEFAULT_MARGIN = 0.25


def role_name(code: int) -> str:
    """``"directional"``, ``"opportunistic"``, ``"passive"`` or ``"unassigned"``."""
    code = int(code)
    return ROLE_NAMES[code] if 0 <= code < len(ROLE_NAMES) else "unassigned"


def _centers(centers_z, name: str = "centers_z") -> np.ndarray:
    c = np.asarray(centers_z, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1:
        raise ParameterError(f"`{name}` must be a 2-D (clusters, features) array, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ParameterError(f"`{name}` must be finite, got {np.count_nonzero(~np.isfinite(c))} NaN/inf values")
    return c


# -- rule-based ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RoleAssignment:
    """Roles of the clusters of one fit.

    Attributes
    ----------
    roles : ndarray, shape (k,), int8
        Role code of each cluster (``PASSIVE`` for the rest, ``UNASSIGNED`` only from
        distance alignment with unmatched clusters).
    directional_score, opportunistic_score : ndarray, shape (k,), float64
        ``z_obs - z_sbs`` and ``z_sbs - z_obs`` of each centroid (z units).
    margin : float
        A role is assigned only when its best score is >= ``margin``.
    unassigned_roles : tuple of str
        Roles no cluster carries (their signals are off).
    """

    roles: np.ndarray
    directional_score: np.ndarray
    opportunistic_score: np.ndarray
    margin: float
    unassigned_roles: tuple

    def cluster_of(self, role: int) -> int:
        """Cluster carrying ``role`` (DIRECTIONAL or OPPORTUNISTIC), or -1 when none."""
        hits = np.flatnonzero(self.roles == role)
        return int(hits[0]) if hits.size else -1

    def to_dict(self) -> dict:
        return {"method": "rule", "margin": float(self.margin),
                "roles": [role_name(r) for r in self.roles],
                "role_codes": [int(r) for r in self.roles],
                "directional_score": [float(v) for v in self.directional_score],
                "opportunistic_score": [float(v) for v in self.opportunistic_score],
                "unassigned_roles": list(self.unassigned_roles)}


def align_by_rule(centers_z: ArrayLike, feature_names: Sequence[str] | None = None, *, margin: float = DEFAULT_MARGIN) -> RoleAssignment:
    """Give each cluster a role from its centroid (rule-based alignment).

    Parameters
    ----------
    centers_z : array_like, shape (k, d)
        Cluster centroids in z units.
    feature_names : sequence of str, optional
        Names of the d columns; must contain ``"sbs"`` and ``"obs"``.  Default
        ``clusterlob.features.FEATURE_NAMES`` order (``sbs`` column 1, ``obs`` column 2).
    margin : float
        Minimum score (z units) for the directional and opportunistic roles.

    Returns
    -------
    RoleAssignment
        Directional = argmax(z_obs - z_sbs); opportunistic = argmax(z_sbs - z_obs) among
        the other clusters; every other cluster, and one whose role missed the margin,
        is passive.  Ties go to the lower cluster id.
    """
    c = _centers(centers_z)
    names = tuple(feature_names) if feature_names is not None else (
        "v_rel", "sbs", "obs", "spread", "t_m", "t_age")
    if len(names) != c.shape[1]:
        raise ParameterError(f"`feature_names` has {len(names)} names for {c.shape[1]} columns")
    for need in ("sbs", "obs"):
        if need not in names:
            raise ParameterError(f"`feature_names` must contain {need!r}, got {list(names)}")
    margin = check_number("margin", margin)
    sbs, obs = c[:, names.index("sbs")], c[:, names.index("obs")]
    directional_score = obs - sbs
    opportunistic_score = sbs - obs
    roles = np.full(c.shape[0], PASSIVE, dtype=np.int8)
    unassigned = []
    d = int(np.argmax(directional_score))
    if directional_score[d] >= margin:
        roles[d] = DIRECTIONAL
    else:
        unassigned.append("directional")
    others = np.flatnonzero(roles != DIRECTIONAL)
    if others.size:
        o = int(others[np.argmax(opportunistic_score[others])])
        if opportunistic_score[o] >= margin:
            roles[o] = OPPORTUNISTIC
        else:
            unassigned.append("opportunistic")
    else:
        unassigned.append("opportunistic")
    if not (roles == PASSIVE).any():
        unassigned.append("passive")
    return RoleAssignment(roles, directional_score, opportunistic_score, float(margin), tuple(unassigned))


# -- distance-based ------------------------------------------------------------------------

@dataclass(frozen=True)
class DistanceAlignment:
    """One-to-one matching of new cluster centres to reference centres.

    Attributes
    ----------
    reference_of : ndarray, shape (k,), int64
        Reference cluster matched to each new cluster (-1 when there are more new
        clusters than reference ones, or the match is farther than ``max_distance``).
    distances : ndarray, shape (k,), float64
        Euclidean distance (z units) to the matched reference centre, also when the
        match was dropped by ``max_distance`` (NaN when there was no reference left).
    roles : ndarray, shape (k,), int8
        Role of the matched reference cluster (``UNASSIGNED`` when unmatched or when no
        reference roles were given).
    total_distance : float
        Sum of the matched distances (what the assignment minimised).
    """

    reference_of: np.ndarray
    distances: np.ndarray
    roles: np.ndarray
    total_distance: float

    def to_dict(self) -> dict:
        return {"method": "distance", "reference_of": [int(v) for v in self.reference_of],
                "distances": [None if np.isnan(v) else float(v) for v in self.distances],
                "roles": [role_name(r) for r in self.roles],
                "total_distance": float(self.total_distance)}


def align_to_reference(centers_z: ArrayLike, reference_centers_z: ArrayLike, reference_roles: ArrayLike | None = None, *,
                       max_distance: float | None = None) -> DistanceAlignment:
    """Match new centres to reference centres one to one, minimising the total distance.

    Parameters
    ----------
    centers_z : array_like, shape (k, d)
        New centroids (z units).
    reference_centers_z : array_like, shape (k_ref, d)
        Reference centroids, e.g. of the first training window.
    reference_roles : array_like, shape (k_ref,), optional
        Role codes of the reference clusters, carried over to the matched new ones.
    max_distance : float, optional
        Matches farther than this are dropped (that cluster gets no role).

    Returns
    -------
    DistanceAlignment
    """
    from scipy.optimize import linear_sum_assignment

    c = _centers(centers_z)
    ref = _centers(reference_centers_z, "reference_centers_z")
    if ref.shape[1] != c.shape[1]:
        raise ParameterError(f"`reference_centers_z` must have {c.shape[1]} columns, got {ref.shape[1]}")
    if reference_roles is not None:
        reference_roles = np.asarray(reference_roles, dtype=np.int8)
        if reference_roles.shape != (ref.shape[0],):
            raise ParameterError(f"`reference_roles` must have shape ({ref.shape[0]},), "
                                 f"got {reference_roles.shape}")
    if max_distance is not None and not (np.isfinite(max_distance) and max_distance >= 0):
        raise ParameterError(f"`max_distance` must be a finite number >= 0, got {max_distance!r}")
    cost = np.sqrt(((c[:, None, :] - ref[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    reference_of = np.full(c.shape[0], -1, dtype=np.int64)
    distances = np.full(c.shape[0], np.nan)
    reference_of[rows] = cols
    distances[rows] = cost[rows, cols]
    if max_distance is not None:
        reference_of[~(distances <= max_distance)] = -1   # distance kept: shows why
    roles = np.full(c.shape[0], UNASSIGNED, dtype=np.int8)
    if reference_roles is not None:
        matched = reference_of >= 0
        roles[matched] = reference_roles[reference_of[matched]]
    return DistanceAlignment(reference_of, distances, roles, float(cost[rows, cols].sum()))


# -- comparing fits ------------------------------------------------------------------------

@dataclass(frozen=True)
class Stability:
    """Agreement of the per-trade roles of two fits.

    Attributes
    ----------
    share_agree : float
        Share of the compared trades whose role is the same in both fits (NaN if none).
    n_compared : int
        Trades compared: those with a role in at least one fit (or ``valid`` if given).
    confusion : ndarray, shape (4, 4), int64
        Counts by (role in a, role in b), index 0..2 the roles and 3 unassigned.
    """

    share_agree: float
    n_compared: int
    confusion: np.ndarray

    def to_dict(self) -> dict:
        return {"share_agree": None if np.isnan(self.share_agree) else float(self.share_agree),
                "n_compared": int(self.n_compared), "confusion": self.confusion.tolist(),
                "confusion_order": list(ROLE_NAMES) + ["unassigned"]}


def label_stability(roles_a: ArrayLike, roles_b: ArrayLike, *, valid: ArrayLike | None = None) -> Stability:
    """Share of trades to which two fits give the same role.

    Parameters
    ----------
    roles_a, roles_b : array_like, shape (n,), int
        Per-trade role codes (``UNASSIGNED`` = -1 allowed) of the same trades.
    valid : array_like of bool, shape (n,), optional
        Trades to compare; default those with a role in at least one of the fits.

    Returns
    -------
    Stability
    """
    a = np.asarray(roles_a)
    b = np.asarray(roles_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ParameterError(f"`roles_a` and `roles_b` must be 1-D of the same length, got {a.shape} and {b.shape}")
    for name, arr in (("roles_a", a), ("roles_b", b)):
        bad = (arr < UNASSIGNED) | (arr >= len(ROLE_NAMES))
        if bad.any():
            raise ParameterError(f"`{name}` has codes outside -1..{len(ROLE_NAMES) - 1} "
                                 f"(first {int(arr[np.argmax(bad)])} at row {int(np.argmax(bad))})")
    if valid is None:
        mask = (a != UNASSIGNED) | (b != UNASSIGNED)
    else:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != a.shape:
            raise ParameterError(f"`valid` must have shape {a.shape}, got {mask.shape}")
    a_idx = np.where(a[mask] == UNASSIGNED, 3, a[mask]).astype(np.int64)
    b_idx = np.where(b[mask] == UNASSIGNED, 3, b[mask]).astype(np.int64)
    confusion = np.bincount(a_idx * 4 + b_idx, minlength=16).reshape(4, 4)
    n = int(mask.sum())
    share = float(np.trace(confusion) / n) if n else float("nan")
    return Stability(share, n, confusion)


def adjusted_rand_index(labels_a: ArrayLike, labels_b: ArrayLike) -> float:
    """Adjusted Rand index of two partitions of the same items (Hubert & Arabie 1985).

    1 for identical partitions up to renumbering, about 0 for independent ones.  Labels
    are any integers (e.g. cluster ids and planted agent types).  Returns 1.0 when both
    partitions put everything in one group (the index is undefined there).
    """
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ParameterError(f"labels must be 1-D of the same length, got {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise ParameterError(f"the adjusted Rand index needs >= 2 items, got {n}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.bincount(ia * (ib.max() + 1) + ib, minlength=(ia.max() + 1) * (ib.max() + 1))

    def pairs(x):
        x = x.astype(np.float64)
        return float((x * (x - 1) / 2).sum())

    table = table.reshape(ia.max() + 1, ib.max() + 1)
    index = pairs(table)
    sum_a = pairs(table.sum(axis=1))
    sum_b = pairs(table.sum(axis=0))
    expected = sum_a * sum_b / (n * (n - 1) / 2)
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)
