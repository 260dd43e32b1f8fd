"""Diagnostics of a fit: are the features distinct, is the fit stable?

* :class:`RawMoments` / :func:`feature_diagnostics` - Pearson correlation of the *raw*
  features over the rows that were clustered, with a warning for every pair above
  ``CORRELATION_WARNING`` (K-Means then counts one quantity twice), and the rows whose
  z-score window was constant, per feature.
* :func:`start_agreement` - adjusted Rand index between the kept K-Means++ start and every
  other start (``n_init`` > 1), on a seeded sample of the rows.
* :func:`bootstrap_fit` - refit on resampled days (whole days drawn with replacement; a
  tape of one day is cut into ``blocks`` contiguous blocks instead), match each refit's
  centres to the model's, and report the spread of every centroid and how often the
  roles moved to another cluster.

Everything here is descriptive; see ``docs/clustering.md`` for how to read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._typing import Say
from ..errors import ParameterError
from .kmeans import assign_clusters, kmeans
from .model import ClusterModel, align_roles
from .roles import adjusted_rand_index, align_to_reference, role_name

__all__ = ["CORRELATION_WARNING", "RawMoments", "FeatureDiagnostics", "feature_diagnostics",
           "StartAgreement", "start_agreement", "Bootstrap", "bootstrap_fit", "check_bootstrap"]

CORRELATION_WARNING = 0.95
AGREEMENT_SAMPLE = 200_000        # rows on which the starts are compared
BOOTSTRAP_FIT_ROWS = 200_000      # rows each bootstrap refit is fit on at most
BOOTSTRAP_BLOCKS = 20             # blocks of a one-day fit


class RawMoments:
    """Running mean and co-moment matrix of the raw feature rows (Chan et al.'s pairwise
    update), so the correlation over a multi-day tape needs one day in memory."""

    def __init__(self, n_features: int):
        self.n = 0
        self.mean = np.zeros(n_features)
        self.comoment = np.zeros((n_features, n_features))

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64)
        m = rows.shape[0]
        if m == 0:
            return
        mean = rows.mean(axis=0)
        centred = rows - mean
        comoment = centred.T @ centred
        delta = mean - self.mean
        total = self.n + m
        self.comoment += comoment + np.outer(delta, delta) * (self.n * m / total)
        self.mean += delta * (m / total)
        self.n = total

    def add_rows(self, raw: np.ndarray, keep: np.ndarray, chunk: int = 1 << 19) -> None:
        """Add ``raw[keep]`` in chunks (bounded temporary memory on days of millions of rows)."""
        for lo in range(0, raw.shape[0], chunk):
            self.add(raw[lo:lo + chunk][keep[lo:lo + chunk]])

    def correlation(self) -> np.ndarray:
        """(f, f) Pearson correlation; NaN for a feature that is constant over the rows."""
        var = np.diag(self.comoment).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.sqrt(np.where(var > 0, var, np.nan))
            corr = self.comoment / np.outer(scale, scale)
        np.fill_diagonal(corr, np.where(var > 0, 1.0, np.nan))
        return np.clip(corr, -1.0, 1.0)


@dataclass(frozen=True)
class FeatureDiagnostics:
    """Correlation of the raw features on the clustered rows, and the zero-std windows.

    Attributes
    ----------
    feature_names : tuple of str
    n_rows : int
        Rows the correlation is measured on (the clustered rows).
    correlation : ndarray, shape (f, f)
        Pearson correlation of the raw (not z-scored) features.
    high_pairs : tuple of (str, str, float)
        Pairs with ``|corr| > threshold``, strongest first.
    threshold : float
    zero_std_rows : dict
        Per feature (and ``total``): rows whose window was constant, so their z was set to 0.
    rows : int
        Feature rows (the denominator of the zero-std shares).
    """

    feature_names: tuple
    n_rows: int
    correlation: np.ndarray
    high_pairs: tuple
    threshold: float
    zero_std_rows: dict
    rows: int

    def warnings(self) -> list:
        """One sentence per problem, saying what to do."""
        out = []
        for a, b, c in self.high_pairs:
            keep = [n for n in self.feature_names if n != b]
            out.append(f"features {a} and {b} are nearly the same on these rows (raw correlation "
                       f"{c:+.4f}, n = {self.n_rows:,}): K-Means counts that quantity twice; cluster on "
                       f"one of them (e.g. --features {','.join(keep)}) or offer t_queue instead of "
                       f"t_age (docs/features.md)")
        hit = [(n, v) for n, v in self.zero_std_rows.items() if n != "total" and v]
        if hit:
            parts = ", ".join(f"{n} {v:,} ({100 * v / self.rows:.1f}%)" if self.rows else f"{n} {v:,}"
                              for n, v in hit)
            out.append(f"zero-std windows (z set to 0) by feature: {parts}; a feature that is constant "
                       f"over whole windows carries no information there")
        return out

    def to_dict(self) -> dict:
        corr = [[None if not np.isfinite(v) else float(v) for v in row] for row in self.correlation]
        return {"feature_names": list(self.feature_names), "n_rows": self.n_rows,
                "raw_correlation": corr, "threshold": self.threshold,
                "high_pairs": [{"a": a, "b": b, "correlation": c} for a, b, c in self.high_pairs],
                "zero_std_rows": dict(self.zero_std_rows), "rows": self.rows,
                "warnings": self.warnings()}

    def markdown_rows(self) -> list:
        return [[name] + [("-" if not np.isfinite(v) else f"{v:+.3f}") for v in row]
                for name, row in zip(self.feature_names, self.correlation)]


def feature_diagnostics(moments: RawMoments, feature_names: Sequence[str], zero_std_rows: dict, rows: int, *,
                        threshold: float = CORRELATION_WARNING) -> FeatureDiagnostics:
    """Build :class:`FeatureDiagnostics` from accumulated raw moments and the feature counts."""
    names = tuple(feature_names)
    corr = moments.correlation()
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if np.isfinite(corr[i, j]) and abs(corr[i, j]) > threshold:
                pairs.append((names[i], names[j], float(corr[i, j])))
    pairs.sort(key=lambda p: -abs(p[2]))
    zero = {n: int(zero_std_rows.get(n, 0)) for n in names}
    zero["total"] = int(zero_std_rows.get("total", 0))
    return FeatureDiagnostics(names, int(moments.n), corr, tuple(pairs), float(threshold), zero, int(rows))


# -- agreement between starts ----------------------------------------------------------------

@dataclass(frozen=True)
class StartAgreement:
    """Adjusted Rand index between the kept start and each other start (same rows)."""

    kept: int
    inertias: tuple
    ari: tuple            # one per start; 1.0 for the kept one
    n_rows: int

    def to_dict(self) -> dict:
        return {"kept_start": self.kept, "inertias": list(self.inertias), "ari_vs_kept": list(self.ari),
                "n_rows": self.n_rows}

    def summary(self) -> str:
        others = [a for i, a in enumerate(self.ari) if i != self.kept]
        if not others:
            return "one start (n_init 1): no agreement to measure"
        return (f"{len(self.ari)} starts, adjusted Rand index of the kept start vs the others: "
                + ", ".join(f"{a:.3f}" for a in others) + f" (min {min(others):.3f}, n = {self.n_rows:,} rows)")


def start_agreement(z: np.ndarray, model: ClusterModel, *, sample: int = AGREEMENT_SAMPLE,
                    seed: int = 0) -> StartAgreement | None:
    """ARI of every start's partition vs the kept one; None when the model has one start."""
    starts = model.fit.get("init_centers")
    if not starts:
        return None
    inertias = tuple(float(v) for v in model.fit.get("init_inertias", ()))
    kept = int(np.argmin(inertias)) if inertias else 0
    n = z.shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False)) if n > sample else None
    x = np.ascontiguousarray(z[rows] if rows is not None else z)
    labels = [assign_clusters(x, np.asarray(c, dtype=np.float64))[0] for c in starts]
    ari = tuple(1.0 if i == kept else float(adjusted_rand_index(labels[kept], lab))
                for i, lab in enumerate(labels))
    return StartAgreement(kept, inertias, ari, int(x.shape[0]))


# -- bootstrap -------------------------------------------------------------------------------

def check_bootstrap(n: object) -> int:
    """``n`` as an int after checking the rule (>= 2)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ParameterError(f"`--bootstrap` must be an integer >= 2 (refits on resampled days), got {n!r}")
    return int(n)


@dataclass(frozen=True)
class Bootstrap:
    """Refits on resampled days, matched to the model's clusters.

    Attributes
    ----------
    n : int
        Refits.
    unit : str
        ``"day"`` or ``"block"`` (what was resampled), ``n_units`` of them.
    center_std : ndarray, shape (k, f)
        Standard deviation over the refits of each matched centre coordinate (z units).
    center_mean : ndarray, shape (k, f)
    share_std : ndarray, shape (k,)
        Standard deviation of each cluster's share of rows.
    role_agreement : ndarray, shape (k,)
        Share of refits in which the cluster matched to model cluster j has model cluster j's role.
    swapped : int
        Refits in which at least one role moved to another cluster (or went unassigned).
    """

    n: int
    unit: str
    n_units: int
    rows_fit: int
    feature_names: tuple
    roles: tuple
    center_mean: np.ndarray
    center_std: np.ndarray
    share_mean: np.ndarray
    share_std: np.ndarray
    role_agreement: np.ndarray
    swapped: int

    def summary(self) -> str:
        worst = float(np.max(self.center_std)) if self.center_std.size else float("nan")
        text = (f"bootstrap: {self.n} refits on resampled {self.unit}s ({self.n_units} {self.unit}s, "
                f"<= {self.rows_fit:,} rows each); largest centroid std {worst:.3f} z")
        if self.swapped:
            text += (f"; ROLES SWAP: in {self.swapped} of {self.n} refits a role moved to another cluster "
                     f"or went unassigned - the role labels of this model are not stable")
        else:
            text += "; the roles stayed on the same clusters in every refit"
        return text

    def to_dict(self) -> dict:
        return {"n": self.n, "unit": self.unit, "n_units": self.n_units, "rows_fit": self.rows_fit,
                "feature_names": list(self.feature_names), "roles": list(self.roles),
                "center_mean": self.center_mean.tolist(), "center_std": self.center_std.tolist(),
                "share_mean": self.share_mean.tolist(), "share_std": self.share_std.tolist(),
                "role_agreement": self.role_agreement.tolist(), "swapped": self.swapped,
                "summary": self.summary()}

    def markdown_rows(self) -> list:
        out = []
        for j in range(self.center_std.shape[0]):
            out.append([j, self.roles[j], f"{100 * self.share_mean[j]:.1f} +- {100 * self.share_std[j]:.1f}",
                        f"{100 * self.role_agreement[j]:.0f}%"]
                       + [f"{m:+.2f} +- {s:.2f}" for m, s in zip(self.center_mean[j], self.center_std[j])])
        return out


def bootstrap_fit(z: np.ndarray, day_rows: Sequence[int], model: ClusterModel, n: int, *, seed: int = 0,
                  blocks: int = BOOTSTRAP_BLOCKS, fit_rows: int = BOOTSTRAP_FIT_ROWS,
                  progress: Say | None = None) -> Bootstrap:
    """Refit ``n`` times on days drawn with replacement and compare with ``model``.

    Parameters
    ----------
    z : ndarray, shape (rows, f)
        The rows the model was fit on, in time order.
    day_rows : sequence of int
        Rows of ``z`` per day, in order (sum = rows).  With fewer than two days the rows are
        cut into ``blocks`` contiguous blocks, which are resampled instead.
    model : ClusterModel
        The fit to compare with (k, n_init, max_iter, tol and margin are reused).
    n : int
        Refits, >= 2.
    seed : int
    fit_rows : int
        Each refit is fit on at most this many rows drawn from its resample (K-Means++ on a
        sample, as ``--fit-sample``), so the bootstrap costs about ``n`` small fits.
    progress : callable, optional
    """
    n = check_bootstrap(n)
    total = z.shape[0]
    day_rows = [int(r) for r in day_rows if int(r) > 0]
    unit = "day"
    if len(day_rows) < 2:
        unit = "block"
        edges = np.linspace(0, total, blocks + 1).astype(np.int64)
    else:
        edges = np.concatenate([[0], np.cumsum(day_rows)]).astype(np.int64)
    n_units = len(edges) - 1
    rng = np.random.default_rng([seed, 7919])
    k, f = model.centers_z.shape
    centers = np.empty((n, k, f))
    shares = np.empty((n, k))
    agree = np.zeros(k)
    swapped = 0
    fit = model.fit
    for b in range(n):
        chosen = rng.integers(0, n_units, n_units)
        index = np.concatenate([np.arange(edges[u], edges[u + 1]) for u in chosen])
        if index.shape[0] > fit_rows:
            index = np.sort(rng.choice(index, size=fit_rows, replace=False))
        x = np.ascontiguousarray(z[index])
        result = kmeans(x, k, n_init=int(fit.get("n_init", 3)), max_iter=int(fit.get("max_iter", 300)),
                        tol=float(fit.get("tol", 1e-4)), seed=int(rng.integers(0, 2**31)))
        match = align_to_reference(result.centers, model.centers_z)
        order = np.empty(k, dtype=np.int64)
        order[match.reference_of] = np.arange(k)        # refit cluster matched to model cluster j
        centers[b] = result.centers[order]
        shares[b] = result.counts[order] / max(1, int(result.counts.sum()))
        roles = align_roles(result.centers, model.feature_names, margin=model.margin).roles[order]
        same = roles == model.roles
        agree += same
        swapped += int(not same.all())
        if progress is not None:
            progress(f"bootstrap {b + 1}/{n}: {x.shape[0]:,} rows, roles "
                     + ", ".join(role_name(r) for r in roles))
    return Bootstrap(n, unit, n_units, int(min(fit_rows, total)), tuple(model.feature_names),
                     tuple(role_name(r) for r in model.roles), centers.mean(axis=0),
                     centers.std(axis=0, ddof=1), shares.mean(axis=0), shares.std(axis=0, ddof=1),
                     agree / n, swapped)
