"""Clustering stage: features of a tape -> K-Means++ model -> roles -> centroid report.

Library functions :func:`collect_features`, :func:`centroid_table`,
:func:`interpret_centroid` and :func:`write_cluster_outputs`, and the command line::

    python -m clusterlob.cluster TAPE_DIR [--days FROM:TO] --out OUT_DIR [--json]
        [--k 3] [--n-init 1] [--seed 0] [--fit-sample N] [--max-iter 300] [--tol 1e-4]
        [--levels 5] [--window 100] [--z-clip 5] [--convention paper|aggressor]
        [--asof strict|at_or_before] [--time-key local|exchange] [--margin 0.25] [--force]

It reads the tape day by day (the rolling z-score state carries across days), fits the
model on the valid rows, aligns roles by rule and writes into OUT_DIR: ``model.json``,
``centroids.md``, ``centroids.csv`` and ``centroids.json`` (with the feature summary).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence
from pathlib import Path

import numpy as np

from .._io import Progress
from .._typing import ArrayLike, Days, PathLike, Say
from ..errors import ParameterError
from ..features.build import build_features
from ..features.settings import FEATURE_NAMES, FeatureSettings
from .diagnostics import Bootstrap, FeatureDiagnostics, RawMoments, StartAgreement, feature_diagnostics
from .importance import IMPORTANCE_HEADER, FeatureImportance
from .model import ClusterModel, save_model
from ..report import arrow_table, markdown_table, write_csv, write_json, write_markdown
from .roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE, role_name
from ..tape.location import TapeSource, resolve_tape
from ..tape.store import iter_days, read_manifest
from ..tape.types import parse_days

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FeatureSummary", "collect_features", "CentroidRow", "centroid_table",
           "interpret_centroid", "write_cluster_outputs", "OUTPUT_FILES"]

OUTPUT_FILES = ("model.json", "centroids.md", "centroids.csv", "centroids.json")


# -- features of a whole tape --------------------------------------------------------------

@dataclass(frozen=True)
class FeatureSummary:
    """What happened to the trades on the way to the fit.

    ``rows_used`` valid rows were clustered; ``warmup_rows`` rows were in the z-score
    warm-up; ``zero_std_rows`` rows had at least one feature with a constant window
    (z set to 0); ``unknown_side_trades`` trades had no aggressor side;
    ``no_book_before`` trades came before the first snapshot; ``counts`` are the
    summed per-day feature counts (per feature where the feature step gives them).
    """

    trades: int
    unknown_side_trades: int
    no_book_before: int
    rows: int
    warmup_rows: int
    zero_std_rows: int
    nonfinite_rows: int
    rows_used: int
    days: tuple
    counts: dict
    feature_names: tuple = FEATURE_NAMES
    day_rows: tuple = ()                       # rows used per day, in ``days`` order
    diagnostics: FeatureDiagnostics | None = None

    def zero_std_by_feature(self) -> dict:
        """Rows with a constant window per feature (those with any), e.g. ``{"spread": 264897}``."""
        per = self.counts.get("zero_std_rows", {})
        return {n: int(per.get(n, 0)) for n in self.feature_names if per.get(n, 0)} if isinstance(per, dict) else {}

    def to_dict(self) -> dict:
        return {"trades": self.trades, "unknown_side_trades": self.unknown_side_trades,
                "no_book_before": self.no_book_before, "rows": self.rows,
                "warmup_rows": self.warmup_rows, "zero_std_rows": self.zero_std_rows,
                "zero_std_rows_by_feature": self.zero_std_by_feature(),
                "nonfinite_rows": self.nonfinite_rows, "rows_used": self.rows_used,
                "days": list(self.days), "day_rows": list(self.day_rows),
                "feature_names": list(self.feature_names), "counts": self.counts}


def _add_counts(total: dict, part: dict) -> dict:
    for key, value in part.items():
        if isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, (int, np.integer)):
            total[key] = total.get(key, 0) + int(value)
    return total


def collect_features(tape_dir: TapeSource, settings: FeatureSettings, days: Days = None, *, progress: Say | None = None) -> tuple[np.ndarray, FeatureSummary]:
    """z-scores of the valid trades of a tape directory, day by day with the state carried.

    Parameters
    ----------
    tape_dir : str or Path
        A tape directory: a local folder or a URI (``file://``, ``s3://``, ...).
    settings : FeatureSettings
    days : None or str or list of str
        As :func:`clusterlob.tape.read_tape`.
    progress : callable, optional
        Called with one line of text per day (the CLI prints it to stderr).

    Returns
    -------
    z : ndarray, shape (n, f), float64
        Rows in time order (a view into one buffer sized by the manifest's trade count),
        columns ``settings.features``.
    summary : FeatureSummary
        Counts, rows per day, and the raw-feature diagnostics of the valid rows.
    """
    tape_dir = resolve_tape(tape_dir)
    manifest = read_manifest(tape_dir)
    chosen = parse_days(days, [d["date"] for d in manifest["days"]])
    upper = sum(int(d.get("trades", 0)) for d in manifest["days"] if d["date"] in chosen)
    names = settings.features
    z = np.empty((upper, len(names)))
    moments = RawMoments(len(names))
    day_rows = []
    filled = 0
    counts: dict = {}
    state = None
    steps = Progress("", total=len(chosen), unit="day", quiet=True)     # formats; `progress` prints
    for tape in iter_days(tape_dir, chosen, levels=settings.levels, columns=settings.tape_columns()):
        feats = build_features(tape, settings, state)
        state = feats.state
        valid_z = feats.z[feats.valid]
        moments.add_rows(feats.raw, feats.valid)
        day_rows.append(int(valid_z.shape[0]))
        if filled + valid_z.shape[0] > upper:   # manifest undercounts: grow (rare)
            z = np.concatenate([z[:filled], np.empty((valid_z.shape[0], z.shape[1]))])
            upper = z.shape[0]
        z[filled:filled + valid_z.shape[0]] = valid_z
        filled += valid_z.shape[0]
        _add_counts(counts, feats.counts)
        if progress is not None:
            progress(steps.step(rows=len(tape.trades), note=f"{tape.days[0] if tape.days else '?'}: "
                                f"{int(feats.counts.get('valid_rows', 0)):,} valid rows"))
        del feats, valid_z, tape

    def total(name):
        value = counts.get(name, 0)
        return int(value.get("total", 0)) if isinstance(value, dict) else int(value)

    summary = FeatureSummary(
        trades=total("trades"), unknown_side_trades=total("unknown_side"),
        no_book_before=total("no_book_before"), rows=total("rows"),
        warmup_rows=total("warmup_rows"), zero_std_rows=total("zero_std_rows"),
        nonfinite_rows=total("nonfinite_raw"), rows_used=filled, days=tuple(chosen), counts=counts,
        feature_names=names, day_rows=tuple(day_rows),
        diagnostics=feature_diagnostics(moments, names, counts.get("zero_std_rows", {}), total("rows")))
    return z[:filled], summary


# -- centroid report -----------------------------------------------------------------------

# What a high / low centroid value of each feature means, per convention.
_DESCRIPTIONS = {
    "v_rel": ("large size for the touch", "small size for the touch"),
    "spread": ("wide spread", "tight spread"),
    "t_m": ("long after the last mid change", "soon after a mid change"),
    "t_age": ("old touch on the consumed side", "fresh touch on the consumed side"),
    "t_queue": ("consumed queue long without a new order", "consumed queue just joined"),
}
_SIDE_WORDS = {"paper": ("consumed side", "other side"),
               "aggressor": ("aggressor's own side", "consumed side")}
_ROLE_LEADS = {DIRECTIONAL: "Directional: takes with the book imbalance",
               OPPORTUNISTIC: "Opportunistic: takes into a thick wall",
               PASSIVE: "Passive / noise"}


def interpret_centroid(centroid_z: ArrayLike, role: int, convention: str = "paper", *, threshold: float = 0.25,
                       most: int = 3, feature_names: Sequence[str] = FEATURE_NAMES) -> str:
    """One line describing a centroid: its role, then its most extreme features.

    Parameters
    ----------
    centroid_z : array_like, shape (f,)
        z units, ``feature_names`` order (default ``FEATURE_NAMES``).
    role : int
        Role code of the cluster.
    convention : {"paper", "aggressor"}
        Which book side ``sbs`` measures (changes the words only).
    threshold : float
        Features with ``|z| < threshold`` are not mentioned.
    most : int
        At most this many features are mentioned, largest ``|z|`` first.
    """
    c = np.asarray(centroid_z, dtype=np.float64)
    sbs_side, obs_side = _SIDE_WORDS.get(convention, _SIDE_WORDS["paper"])
    words = dict(_DESCRIPTIONS)
    words["sbs"] = (f"thick {sbs_side}", f"thin {sbs_side}")
    words["obs"] = (f"thick {obs_side}", f"thin {obs_side}")
    order = np.argsort(-np.abs(c), kind="stable")
    names = tuple(feature_names)
    parts = [f"{words[names[j]][0 if c[j] > 0 else 1]} (z_{names[j]} {c[j]:+.2f})"
             for j in order[:most] if abs(c[j]) >= threshold]
    lead = _ROLE_LEADS.get(int(role), "Unassigned")
    return f"{lead}; " + (", ".join(parts) if parts else "close to the average trade") + "."


@dataclass(frozen=True)
class CentroidRow:
    """One line of the centroid report."""

    cluster: int
    role: str
    count: int
    share: float
    centroid_z: tuple
    directional_score: float
    opportunistic_score: float
    interpretation: str
    feature_names: tuple = FEATURE_NAMES

    def to_dict(self) -> dict:
        return {"cluster": self.cluster, "role": self.role, "count": self.count, "share": self.share,
                "centroid_z": dict(zip(self.feature_names, self.centroid_z)),
                "directional_score": self.directional_score,
                "opportunistic_score": self.opportunistic_score,
                "interpretation": self.interpretation}


def centroid_table(model: ClusterModel) -> list[CentroidRow]:
    """The rows of the centroid report (like the log's Experiment 1 table), by cluster id."""
    total = int(model.counts.sum())
    return [CentroidRow(cluster=j, role=role_name(model.roles[j]), count=int(model.counts[j]),
                        share=float(model.counts[j] / total) if total else float("nan"),
                        centroid_z=tuple(float(v) for v in model.centers_z[j]),
                        directional_score=float(model.directional_score[j]),
                        opportunistic_score=float(model.opportunistic_score[j]),
                        interpretation=interpret_centroid(model.centers_z[j], model.roles[j],
                                                          model.settings.convention,
                                                          feature_names=model.feature_names),
                        feature_names=tuple(model.feature_names))
            for j in range(model.k)]


def centroids_to_arrow(rows: Sequence[CentroidRow]) -> pa.Table:
    """The centroid report's rows (:func:`centroid_table`) as a ``pyarrow.Table``: ``cluster``,
    ``role``, ``count``, ``share``, ``z_<feature>`` per feature, ``directional_score``,
    ``opportunistic_score``, ``interpretation``."""
    columns: dict[str, list] = {"cluster": [r.cluster for r in rows], "role": [r.role for r in rows],
                                "count": [r.count for r in rows], "share": [r.share for r in rows]}
    for j, name in enumerate(FEATURE_NAMES):
        columns[f"z_{name}"] = [float(r.centroid_z[j]) for r in rows]
    columns["directional_score"] = [r.directional_score for r in rows]
    columns["opportunistic_score"] = [r.opportunistic_score for r in rows]
    columns["interpretation"] = [r.interpretation for r in rows]
    return arrow_table(columns)


def _header(names) -> list:
    return ["cluster", "role", "count", "share_pct"] + [f"z_{n}" for n in names] + ["interpretation"]


_HEADER = _header(FEATURE_NAMES)


def _markdown(model: ClusterModel, rows: list, summary: FeatureSummary | None,
              importance: FeatureImportance | None = None, agreement: StartAgreement | None = None,
              bootstrap: Bootstrap | None = None) -> str:
    names = tuple(model.feature_names)
    s = model.settings
    lines = ["# Cluster centroids", "",
             f"k = {model.k}, seed {model.seed}, n_init {model.fit.get('n_init')}, inertia "
             f"{model.inertia:.6g} after {model.n_iter} iterations"
             f" ({'converged' if model.converged else 'max_iter reached'}); features W = {s.window}, "
             f"D = {s.levels}, clip {s.z_clip:g}, convention {s.convention!r}, as-of {s.asof!r}, "
             f"time {s.time_key!r}; alignment by rule, margin {model.margin:g}.", ""]
    if summary is not None:
        lines += [f"Days {summary.days[0] if summary.days else '-'} .. "
                  f"{summary.days[-1] if summary.days else '-'} ({len(summary.days)}): "
                  f"{summary.trades:,} trades, {summary.unknown_side_trades:,} of unknown side, "
                  f"{summary.no_book_before:,} before the first snapshot, {summary.warmup_rows:,} "
                  f"warm-up rows, {summary.zero_std_rows:,} rows with a zero-std window (z = 0"
                  f"{_zero_std_words(summary)}), {summary.rows_used:,} rows clustered.", ""]
    unassigned = [name for name, code in (("directional", DIRECTIONAL), ("opportunistic", OPPORTUNISTIC))
                  if model.cluster_of(code) < 0]
    if unassigned:
        lines += [f"Unassigned roles (best score below the margin): {', '.join(unassigned)}.", ""]
    table_rows = [[r.cluster, r.role, f"{r.count:,}", f"{100 * r.share:.1f}", *r.centroid_z, r.interpretation]
                  for r in rows]
    lines.append(markdown_table(_header(names), table_rows, digits=2,
                                align=["r", "l", "r", "r"] + ["r"] * len(names) + ["l"]))
    diag = summary.diagnostics if summary is not None else None
    if diag is not None:
        lines += ["", "## Feature diagnostics", "",
                  f"Pearson correlation of the raw features on the {diag.n_rows:,} clustered rows "
                  f"(a pair above {diag.threshold:g} in absolute value is one quantity counted twice):", "",
                  markdown_table(["feature"] + list(names), diag.markdown_rows(),
                                 align=["l"] + ["r"] * len(names)), ""]
        lines += [f"- WARNING: {w}" for w in diag.warnings()] or ["- no pair above the threshold; "
                                                                  "no zero-std windows"]
    if agreement is not None or bootstrap is not None:
        lines += ["", "## Stability", ""]
        if agreement is not None:
            lines += [f"- K-Means++ starts: {agreement.summary()}."]
        if bootstrap is not None:
            lines += [f"- {bootstrap.summary()}.", "",
                      "Centroids over the refits, mean +- std (z units); role kept = share of refits in "
                      "which the matched cluster has this cluster's role:", "",
                      markdown_table(["cluster", "role", "share_pct", "role_kept"] + [f"z_{n}" for n in names],
                                     bootstrap.markdown_rows(), align=["r", "l", "r", "r"] + ["r"] * len(names))]
    if importance is not None:
        lines += ["## Which features separate the clusters", "",
                  "share = the feature's between-cluster sum of squares over the total (what K-Means "
                  "maximises); r2 = its share of the feature's variance; F = between- over "
                  "within-cluster variance (descriptive, no p-value). See docs/compare.md.", "",
                  markdown_table(list(IMPORTANCE_HEADER), importance.markdown_rows(),
                                 align=["r", "l", "r", "r", "r", "r", "r"])]
    return "\n".join(lines)


def _zero_std_words(summary: FeatureSummary) -> str:
    per = summary.zero_std_by_feature()
    return ("; by feature: " + ", ".join(f"{n} {v:,}" for n, v in per.items())) if per else ""


def write_cluster_outputs(out_dir: PathLike, model: ClusterModel, summary: FeatureSummary | None = None, *,
                          importance: FeatureImportance | None = None, overwrite: bool = False,
                          agreement: StartAgreement | None = None, bootstrap: Bootstrap | None = None) -> dict:
    """Write model.json and the centroid report (Markdown, CSV, JSON) into ``out_dir``.

    Refuses (before writing anything) if any of :data:`OUTPUT_FILES` exists, unless
    ``overwrite``.  Returns ``{file name: path}``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"output {out_dir} exists and is not a directory")
    if not overwrite:
        existing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
        if existing:
            raise ParameterError(f"output directory {out_dir} already has {', '.join(existing)} "
                                 f"(use --force to replace)")
    rows = centroid_table(model)
    paths = {"model.json": save_model(model, out_dir / "model.json", overwrite=overwrite)}
    paths["centroids.csv"] = write_csv(
        out_dir / "centroids.csv", _header(model.feature_names),
        ([r.cluster, r.role, r.count, 100 * r.share, *r.centroid_z, r.interpretation] for r in rows),
        overwrite=overwrite)
    paths["centroids.json"] = write_json(
        out_dir / "centroids.json",
        {"feature_names": list(model.feature_names), "feature_settings": model.settings.to_dict(),
         "feature_summary": summary.to_dict() if summary is not None else None,
         "model": {"k": model.k, "seed": model.seed, "inertia": model.inertia, "n_iter": model.n_iter,
                   "converged": model.converged, "margin": model.margin, "fit": model.fit},
         "clusters": [r.to_dict() for r in rows],
         "feature_importance": importance.to_dict() if importance is not None else None,
         "feature_diagnostics": (summary.diagnostics.to_dict()
                                 if summary is not None and summary.diagnostics is not None else None),
         "start_agreement": agreement.to_dict() if agreement is not None else None,
         "bootstrap": bootstrap.to_dict() if bootstrap is not None else None},
        overwrite=overwrite)
    paths["centroids.md"] = write_markdown(out_dir / "centroids.md",
                                           _markdown(model, rows, summary, importance, agreement, bootstrap),
                                           overwrite=overwrite)
    return paths


# -- command line --------------------------------------------------------------------------
