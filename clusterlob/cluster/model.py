"""The fitted cluster model: centres in z units, the feature settings, the roles; as JSON.

A :class:`ClusterModel` is everything needed to label new trades the same way: the
centres (z units, columns in ``FEATURE_NAMES`` order), the :class:`FeatureSettings` the
features were built with (D levels, W window, clip, convention, as-of rule, time key),
the role of every cluster with its alignment scores, and how it was fit (seed, n_init,
inertia, iterations, package version).  It is stored as JSON (never pickle) by
:func:`save_model`, written atomically, and :func:`load_model` validates the file and
refuses a model whose features or settings do not match what the caller uses.

:func:`label_trades` is the one way to turn a tape (or its features) into per-trade
cluster ids and roles; the IC, walk-forward and replay stages call it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Sequence

import numpy as np

from .._io import check_int, check_number
from .._typing import ArrayLike
from ..errors import ClusterlobError, ParameterError
from ..features.build import Features, RollingState, build_features
from ..features.settings import FEATURE_NAMES, FeatureSettings, check_feature_names
from .fit import FitSettings, resolve_fit
from .kmeans import assign_clusters, kmeans
from ..report import write_json, arrow_table
from .roles import DEFAULT_MARGIN, PASSIVE, ROLE_NAMES, UNASSIGNED, RoleAssignment, align_by_rule, role_name
from ..tape.types import Tape

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MODEL_FORMAT", "MODEL_VERSION", "ClusterModel", "align_roles", "fit_model", "save_model",
           "load_model", "TradeLabels", "label_trades"]

MODEL_FORMAT = "clusterlob-model"
MODEL_VERSION = 1


@dataclass(frozen=True)
class ClusterModel:
    """A fitted model (see the module doc).

    Attributes
    ----------
    centers_z : ndarray, shape (k, f), float64
        Cluster centres in z units, columns in ``feature_names`` order (``settings.features``,
        the six of ``FEATURE_NAMES`` by default).
    settings : FeatureSettings
        How the features were built (levels D, window W, z_clip, convention, asof, time_key).
    roles : ndarray, shape (k,), int8
        Role code of each cluster (``clusterlob.roles``).
    directional_score, opportunistic_score : ndarray, shape (k,)
        Rule-alignment scores ``z_obs - z_sbs`` and ``z_sbs - z_obs`` of each centre.
    margin : float
        Alignment margin the roles were assigned with.
    counts : ndarray, shape (k,), int64
        Trades of the fit data in each cluster.
    inertia : float
        Sum of squared distances (z units squared) of the fit data to their centres.
    n_iter : int
    converged : bool
    seed : int
    fit : dict
        ``n_init``, ``max_iter``, ``tol``, ``fit_sample``, ``rows_fit``, ``init_inertias``.
    feature_names : tuple of str
    package_version : str
    source : dict
        Free-form provenance (tape path, days); not validated.
    """

    centers_z: np.ndarray
    settings: FeatureSettings
    roles: np.ndarray
    directional_score: np.ndarray
    opportunistic_score: np.ndarray
    margin: float
    counts: np.ndarray
    inertia: float
    n_iter: int
    converged: bool
    seed: int
    fit: dict = field(default_factory=dict)
    feature_names: tuple = FEATURE_NAMES
    package_version: str = ""
    source: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centers_z.shape[0])

    def cluster_of(self, role: int) -> int:
        """Cluster carrying ``role``, or -1 when no cluster does."""
        hits = np.flatnonzero(self.roles == role)
        return int(hits[0]) if hits.size else -1

    def __repr__(self) -> str:
        roles = ", ".join(f"{j}:{role_name(r)}" for j, r in enumerate(self.roles))
        return (f"ClusterModel(k={self.k}, roles=[{roles}], W={self.settings.window}, "
                f"D={self.settings.levels}, convention={self.settings.convention!r}, "
                f"inertia={self.inertia:.6g})")

    def to_dict(self) -> dict:
        """The JSON document :func:`save_model` writes."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "package_version": self.package_version,
            "feature_names": list(self.feature_names),
            "feature_settings": self.settings.to_dict(),
            "k": self.k,
            "centers_z": self.centers_z.tolist(),
            "roles": [role_name(r) for r in self.roles],
            "role_codes": [int(r) for r in self.roles],
            "alignment": {"method": "rule", "margin": float(self.margin),
                          "directional_score": self.directional_score.tolist(),
                          "opportunistic_score": self.opportunistic_score.tolist()},
            "counts": [int(c) for c in self.counts],
            "inertia": float(self.inertia),
            "n_iter": int(self.n_iter),
            "converged": bool(self.converged),
            "seed": self.seed,
            "fit": dict(self.fit),
            "source": dict(self.source),
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "model") -> "ClusterModel":
        """Validate a model document and build the model; errors name ``where``."""
        def fail(msg: str) -> NoReturn:
            raise ParameterError(f"{where}: {msg}")

        if not isinstance(d, dict):
            fail(f"expected a JSON object, got {type(d).__name__}")
        if d.get("format") != MODEL_FORMAT:
            fail(f"`format` must be {MODEL_FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != MODEL_VERSION:
            fail(f"model version {d.get('version')!r} is not supported (this clusterlob reads {MODEL_VERSION})")
        missing = [key for key in ("feature_names", "feature_settings", "centers_z", "role_codes",
                                   "alignment", "counts", "inertia", "n_iter", "converged", "seed")
                   if key not in d]
        if missing:
            fail(f"missing keys {missing}")
        try:
            return cls._from_checked(d)
        except ParameterError as exc:
            fail(str(exc))

    @classmethod
    def _from_checked(cls, d: dict) -> "ClusterModel":
        """The model of a document whose every field is checked: type, shape, range (a
        :class:`ParameterError` naming the field and its value)."""
        names = d["feature_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ParameterError(f"`feature_names` must be a list of names, got {_short(names)}")
        names = check_feature_names(names)      # known, no repeats, at least two
        if not isinstance(d["feature_settings"], dict):
            raise ParameterError(f"`feature_settings` must be an object, got {_short(d['feature_settings'])}")
        try:
            settings = FeatureSettings.from_dict(d["feature_settings"], source="`feature_settings`")
        except ClusterlobError as exc:
            raise ParameterError(f"`feature_settings`: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise ParameterError(f"`feature_settings` is malformed ({exc})") from None
        if names != settings.features:
            raise ParameterError(f"`feature_names` {list(names)} do not match the feature settings' "
                                 f"{list(settings.features)}")
        centers = _numbers("centers_z", d["centers_z"], ndim=2)
        if centers.shape[1] != len(names) or centers.shape[0] < 1:
            raise ParameterError(f"`centers_z` must be (k, {len(names)}) numbers, got shape {centers.shape}")
        k = centers.shape[0]
        if k > 127:
            raise ParameterError(f"k must be <= 127 (cluster ids are int8), got {k}")
        if "k" in d and (isinstance(d["k"], bool) or d["k"] != k):
            raise ParameterError(f"`k` must equal the number of centres ({k}), got {_short(d['k'])}")
        alignment = d["alignment"]
        if not isinstance(alignment, dict):
            raise ParameterError(f"`alignment` must be an object, got {_short(alignment)}")
        for key in ("directional_score", "opportunistic_score", "margin"):
            if key not in alignment:
                raise ParameterError(f"`alignment` has no `{key}`")
        roles = _numbers("role_codes", d["role_codes"], ndim=1, integer=True, lo=UNASSIGNED, hi=len(ROLE_NAMES) - 1)
        counts = _numbers("counts", d["counts"], ndim=1, integer=True, lo=0)
        dscore = _numbers("alignment.directional_score", alignment["directional_score"], ndim=1)
        oscore = _numbers("alignment.opportunistic_score", alignment["opportunistic_score"], ndim=1)
        for name, arr in (("role_codes", roles), ("counts", counts), ("directional_score", dscore),
                          ("opportunistic_score", oscore)):
            if arr.shape != (k,):
                raise ParameterError(f"`{name}` must have {k} entries (one per centre), got shape {arr.shape}")
        if "roles" in d and d["roles"] != [role_name(int(r)) for r in roles]:
            raise ParameterError(f"`roles` {_short(d['roles'])} do not match `role_codes` {roles.tolist()}")
        margin = check_number("alignment.margin", alignment["margin"], 0)
        inertia = check_number("inertia", d["inertia"], 0)
        n_iter = check_int("n_iter", d["n_iter"], 0)
        if not isinstance(d["converged"], bool):
            raise ParameterError(f"`converged` must be true or false, got {_short(d['converged'])}")
        seed = d["seed"]
        if seed is not None:
            seed = check_int("seed", seed, 0)
        fit = d.get("fit", {})
        if not isinstance(fit, dict):
            raise ParameterError(f"`fit` must be an object, got {_short(fit)}")
        for key, lo in (("n_init", 1), ("max_iter", 1), ("rows_fit", 0)):
            if key in fit:
                check_int(f"fit.{key}", fit[key], lo)
        if fit.get("fit_sample") is not None:
            check_int("fit.fit_sample", fit["fit_sample"], 1)
        if "tol" in fit:
            check_number("fit.tol", fit["tol"], 0)
        if "init_inertias" in fit:
            _numbers("fit.init_inertias", fit["init_inertias"], ndim=1)
        version = d.get("package_version", "")
        if not isinstance(version, str):
            raise ParameterError(f"`package_version` must be text, got {_short(version)}")
        source = d.get("source", {})
        if not isinstance(source, dict):
            raise ParameterError(f"`source` must be an object, got {_short(source)}")
        return cls(centers_z=centers, settings=settings, roles=roles.astype(np.int8),
                   directional_score=dscore, opportunistic_score=oscore, margin=margin,
                   counts=counts, inertia=inertia, n_iter=n_iter,
                   converged=d["converged"], seed=seed, fit=dict(fit),
                   feature_names=tuple(names), package_version=version, source=dict(source))

    def check_settings(self, settings: FeatureSettings, where: str = "model") -> None:
        """Raise a one-line :class:`ParameterError` if ``settings`` differ from the model's."""
        if not isinstance(settings, FeatureSettings):
            raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
        mine, theirs = self.settings.to_dict(), settings.to_dict()
        mine.setdefault("features", list(FEATURE_NAMES))
        theirs.setdefault("features", list(FEATURE_NAMES))
        diff = [k for k in mine if mine[k] != theirs.get(k)]
        if diff:
            raise ParameterError(
                f"{where} was fit with features " + ", ".join(f"{k}={mine[k]!r}" for k in diff)
                + " but the features use " + ", ".join(f"{k}={theirs.get(k)!r}" for k in diff))


def align_roles(centers_z: ArrayLike, feature_names: Sequence[str], margin: float = DEFAULT_MARGIN) -> RoleAssignment:
    """Rule alignment of :func:`align_by_rule`; without ``sbs`` and ``obs`` among the features
    no role can be read from the centres, so every cluster is passive (roles unassigned)."""
    names = tuple(feature_names)
    if "sbs" in names and "obs" in names:
        return align_by_rule(centers_z, names, margin=margin)
    k = np.asarray(centers_z).shape[0]
    return RoleAssignment(np.full(k, PASSIVE, dtype=np.int8), np.zeros(k), np.zeros(k), float(margin),
                          ("directional", "opportunistic"))


def fit_model(z: np.ndarray, settings: FeatureSettings, fit: FitSettings | None = None, *,
              source: dict | None = None, **legacy: Any) -> tuple[ClusterModel, np.ndarray]:
    """Cluster z-scored features and align the clusters to roles by rule.

    Parameters
    ----------
    z : array_like, shape (n, f)
        z-scores of the valid trades (``features.z[features.valid]``), finite, columns
        ``settings.features``.
    settings : FeatureSettings
        The settings ``z`` was built with (stored in the model).
    fit : FitSettings, optional
        How K-Means++ is fit and the roles aligned (k, n_init, seed, fit_sample, max_iter,
        tol, margin); default ``FitSettings()``.  The older keyword form
        ``fit_model(z, settings, k=3, seed=0, ...)`` still works: the keywords are the
        fields of :class:`FitSettings` and build one (not together with ``fit``).
    source : dict, optional
        Provenance stored in the model (tape path, days).

    Returns
    -------
    model : ClusterModel
    labels : ndarray, shape (n,), int32
        Cluster of every row of ``z``.
    """
    from .. import __version__
    fit = resolve_fit(fit, legacy, "fit_model")
    if not isinstance(settings, FeatureSettings):
        raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
    z = np.asarray(z)
    names = settings.features
    if z.ndim != 2 or z.shape[1] != len(names):
        raise ParameterError(f"`z` must have shape (n, {len(names)}), got {z.shape}")
    result = kmeans(z, fit.k, n_init=fit.n_init, max_iter=fit.max_iter, tol=fit.tol, seed=fit.seed,
                    fit_sample=fit.fit_sample)
    aligned = align_roles(result.centers, names, margin=fit.margin)
    model = ClusterModel(
        centers_z=result.centers, settings=settings, roles=aligned.roles,
        directional_score=aligned.directional_score, opportunistic_score=aligned.opportunistic_score,
        margin=fit.margin, counts=result.counts, inertia=result.inertia, n_iter=result.n_iter,
        converged=result.converged, seed=fit.seed,
        fit={"k": fit.k, "n_init": fit.n_init, "max_iter": fit.max_iter, "tol": fit.tol,
             "fit_sample": fit.fit_sample, "rows": int(z.shape[0]), "rows_fit": result.rows_fit,
             "fit_inertia": result.fit_inertia, "init_inertias": list(result.init_inertias)},
        feature_names=names, package_version=__version__, source=dict(source or {}))
    if len(result.init_centers) > 1:   # every start's centres, for the agreement between starts
        model.fit["init_centers"] = [c.tolist() for c in result.init_centers]
    return model, result.labels


def save_model(model: ClusterModel, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` as JSON to ``path`` atomically; refuse to replace a file unless ``overwrite``."""
    if not isinstance(model, ClusterModel):
        raise ParameterError(f"`model` must be a ClusterModel, got {type(model).__name__}")
    return write_json(path, model.to_dict(), overwrite=overwrite)


def load_model(path: str | Path, *, settings: FeatureSettings | None = None) -> ClusterModel:
    """Read and validate a model file.

    Parameters
    ----------
    path : str or Path
        A JSON file written by :func:`save_model` (``python -m clusterlob.cluster``).
    settings : FeatureSettings, optional
        The settings the caller will build features with; a model fit with other
        settings is refused with a one-line :class:`ParameterError`.

    Returns
    -------
    ClusterModel
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"model file {path} does not exist")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(f"model file {path}: not valid JSON ({exc})") from None
    model = ClusterModel.from_dict(doc, where=f"model file {path}")
    if settings is not None:
        model.check_settings(settings, where=f"model file {path}")
    return model


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _numbers(name: str, value, *, ndim: int, integer: bool = False, lo=None, hi=None) -> np.ndarray:
    """A JSON array of numbers of ``ndim`` dimensions (rectangular, finite, ints in int64 when
    ``integer``, within ``lo``..``hi``), or a :class:`ParameterError` naming the field and the
    first bad value."""
    def flat(v, depth):
        if depth == 0:
            ok = (isinstance(v, int) if integer else isinstance(v, (int, float))) and not isinstance(v, bool)
            if not ok or (isinstance(v, float) and not np.isfinite(v)) or (isinstance(v, int) and abs(v) >= 2 ** 63) \
                    or (lo is not None and v < lo) or (hi is not None and v > hi):
                rule = ("integers" if integer else "finite numbers") + (
                    f" in {lo}..{hi}" if lo is not None and hi is not None else f" >= {lo}" if lo is not None else "")
                raise ParameterError(f"`{name}` must hold {rule}, got {_short(v)}")
            return [v]
        if not isinstance(v, list):
            raise ParameterError(f"`{name}` must be {'a list' if depth == ndim else 'a list of lists'} of numbers, "
                                 f"got {_short(v)}")
        out = []
        for item in v:
            out.extend(flat(item, depth - 1))
        return out

    values = flat(value, ndim)
    shape = [len(value)] + ([len(value[0])] if ndim == 2 and value else [])
    if ndim == 2 and any(len(row) != shape[1] for row in value):
        raise ParameterError(f"`{name}` must be rectangular, got rows of {sorted({len(r) for r in value})} numbers")
    if ndim == 2 and not value:
        shape = [0, 0]
    return np.asarray(values, dtype=np.int64 if integer else np.float64).reshape(shape)


class TradeLabels(NamedTuple):
    """Per-trade labels of one tape.

    Attributes
    ----------
    cluster : ndarray, shape (n_trades,), int8
        Cluster id of every trade of the tape, -1 where the trade has no valid features
        (unknown side, no book snapshot before it, z-score warm-up, non-finite feature).
    role : ndarray, shape (n_trades,), int8
        Role code of that cluster, ``UNASSIGNED`` (-1) where there is no cluster or the
        cluster has no role.
    state : RollingState or None
        Rolling state after the tape (pass it with the next day's tape); None when
        labels came from a :class:`Features` object (use its own ``state``).
    counts : dict
        The feature counts (``trades``, ``unknown_side``, ``valid_rows``, ...).
    """

    cluster: np.ndarray
    role: np.ndarray
    state: RollingState | None
    counts: dict

    def to_arrow(self) -> pa.Table:
        """``cluster`` and ``role`` (int8, one row per trade of the tape, -1 where none) as a
        ``pyarrow.Table``."""
        return arrow_table({"cluster": self.cluster, "role": self.role})


def label_trades(source: Tape | Features, model: ClusterModel, *, state: RollingState | None = None) -> TradeLabels:
    """Cluster id and role of every trade of a tape, by the nearest model centre.

    Parameters
    ----------
    source : Tape or Features
        A tape (its features are built with ``model.settings``, continuing from
        ``state``), or features already built for one tape with the model's settings.
    model : ClusterModel
    state : RollingState, optional
        Rolling state of the previous day, only with a tape; labelling day by day with
        the returned state passed on equals labelling the whole tape at once.

    Returns
    -------
    TradeLabels
        ``cluster`` and ``role`` have one int8 entry per trade of the tape, in the
        tape's row order (``tape.trades``), -1 where none.
    """
    if not isinstance(model, ClusterModel):
        raise ParameterError(f"`model` must be a ClusterModel, got {type(model).__name__}")
    if isinstance(source, Tape):
        features = build_features(source, model.settings, state)
        out_state = features.state
    elif isinstance(source, Features):
        if state is not None:
            raise ParameterError("`state` is only used with a Tape; Features already carry theirs")
        model.check_settings(source.settings)
        features = source
        out_state = None
    else:
        raise ParameterError(f"`source` must be a Tape or Features, got {type(source).__name__}")
    n_trades = int(features.counts["trades"])
    cluster = np.full(n_trades, -1, dtype=np.int8)
    role = np.full(n_trades, UNASSIGNED, dtype=np.int8)
    every = bool(features.valid.all())          # the usual case after the warm-up: no copies
    rows = features.trade_index if every else features.trade_index[features.valid]
    if rows.size:
        labels, _, _ = assign_clusters(features.z if every else features.z[features.valid], model.centers_z)
        cluster[rows] = labels
        role[rows] = model.roles[labels]
    return TradeLabels(cluster, role, out_state, dict(features.counts))
