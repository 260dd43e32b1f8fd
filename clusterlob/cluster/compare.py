"""Compare two tapes: activity, cluster centroids and which features separate the clusters.

The question of the log's Experiment 1 ("Key findings vs. spot": futures clusters separate by
book imbalance, spot clusters by spread and time, futures carry about 12 times the spot
volume), asked of any two tapes (two venues, two symbols, two periods)::

    python -m clusterlob.compare TAPE_A TAPE_B [--days FROM:TO] [--days-b FROM:TO] --out OUT_DIR
        [--json] [--model-a MODEL.json] [--model-b MODEL.json] [--k 3] [--n-init 1] [--seed 0]
        [--fit-sample N|all] [--max-iter 300] [--tol 1e-4] [--margin 0.25] [--min-rows-per-cluster 50]
        [--levels 5] [--window 100] [--z-clip 5] [--convention paper|aggressor]
        [--asof strict|at_or_before] [--time-key local|exchange] [--force]

Each tape's features are built day by day (:func:`clusterlob.cluster.collect_features`);
the tape is fit with K-Means++ (or labelled by the given model), and the feature importance
(:mod:`clusterlob.importance`) is computed from its labelled rows.  Both tapes use the same
feature settings.  Activity is reported two ways, because a short recording and a full day
must not be compared per calendar day:

* per day: the count (or volume) divided by the number of days selected;
* per day of recorded time: divided by the recorded time, the sum over days of the time
  from the first to the last trade of the day (``time_key`` clock), scaled to 24 h.

Ratios are A / B.  Trade-count ratios are exact (integer arithmetic, one rounding).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from pathlib import Path

import numpy as np

from .._typing import Days, PathLike, Say
from .centroids import CentroidRow, FeatureSummary, centroid_table, collect_features
from .._io import check_choice, check_int
from ..errors import ParameterError
from .fit import FitSettings, resolve_fit
from ..features.settings import FEATURE_NAMES, TIME_KEYS, FeatureSettings
from .importance import IMPORTANCE_HEADER, FeatureImportance, feature_importance, importance_for_centers
from .model import ClusterModel, fit_model, save_model
from ..report import arrow_table, markdown_table, write_csv, write_json, write_markdown
from ..tape.store import read_manifest, read_tape
from ..tape.types import US_PER_DAY, Instrument, parse_days

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TapeActivity", "tape_activity", "activity_ratios", "TapeAnalysis", "analyse_tape",
           "Comparison", "compare_tapes", "write_compare_outputs", "OUTPUT_FILES",
           "DEFAULT_MIN_ROWS_PER_CLUSTER"]

OUTPUT_FILES = ("compare.md", "compare.json", "activity.csv", "importance.csv", "centroids.csv")
MODEL_FILES = ("model_a.json", "model_b.json")
DEFAULT_MIN_ROWS_PER_CLUSTER = 50


# -- activity --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TapeActivity:
    """How much a tape trades.

    Attributes
    ----------
    days : tuple of str
        Days selected.
    trades : int
        All trades, unknown side included.
    unknown_side_trades : int
    volume_base : float
        Traded amount in the base asset, e.g. BTC (:meth:`Instrument.base_amount`: the amounts
        themselves on a plain linear tape; an inverse contract's contracts in coins).
    notional_quote : float
        Traded value in the quote asset, e.g. USDT (:meth:`Instrument.notional`: price * amount
        on a plain linear tape; contracts x contract size for an inverse contract).
    recorded_us : int
        Sum over days of (last trade time - first trade time), microseconds.
    instrument : Instrument
    """

    days: tuple
    trades: int
    unknown_side_trades: int
    volume_base: float
    notional_quote: float
    recorded_us: int
    instrument: Instrument

    @property
    def recorded_days(self) -> float:
        """Recorded time in days of 24 h."""
        return self.recorded_us / US_PER_DAY

    def per_day(self, value: float) -> float:
        """``value`` per calendar day selected."""
        return value / len(self.days) if self.days else float("nan")

    def per_recorded_day(self, value: float) -> float:
        """``value`` per 24 h of recorded time (NaN when nothing was recorded)."""
        return value * US_PER_DAY / self.recorded_us if self.recorded_us > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"instrument": self.instrument.to_dict(), "days": list(self.days),
                "trades": self.trades, "unknown_side_trades": self.unknown_side_trades,
                "volume_base": self.volume_base, "notional_quote": self.notional_quote,
                "recorded_hours": self.recorded_us / 3.6e9,
                "trades_per_day": self.per_day(self.trades),
                "trades_per_recorded_day": self.per_recorded_day(self.trades),
                "volume_base_per_day": self.per_day(self.volume_base),
                "volume_base_per_recorded_day": self.per_recorded_day(self.volume_base),
                "notional_quote_per_day": self.per_day(self.notional_quote),
                "notional_quote_per_recorded_day": self.per_recorded_day(self.notional_quote)}


def tape_activity(tape_dir: PathLike, days: Days = None, *, time_key: str = "local") -> TapeActivity:
    """Trades, volume and recorded time of a tape directory, read day by day (trades only).

    Parameters
    ----------
    tape_dir : str or Path
    days : None, str or list of str
        As :func:`clusterlob.tape.read_tape`.
    time_key : {"local", "exchange"}
        Clock of the recorded time.

    Returns
    -------
    TapeActivity
    """
    check_choice("time_key", time_key, TIME_KEYS)
    manifest = read_manifest(tape_dir)
    instrument = Instrument.from_dict(manifest["instrument"])
    chosen = parse_days(days, [d["date"] for d in manifest["days"]])
    trades = unknown = recorded = 0
    volume = notional = 0.0
    for day in chosen:
        t = read_tape(tape_dir, [day], book=False, columns=("ts_local_us" if time_key == "local" else "ts_exch_us", "price", "amount", "side")).trades
        if len(t) == 0:
            continue
        ts = t.ts_local_us if time_key == "local" else t.ts_exch_us
        trades += len(t)
        unknown += int((t.side == 0).sum())
        if instrument.inverse or instrument.contract_size is not None:
            volume += float(np.sum(instrument.base_amount(t.price, t.amount)))
            notional += float(np.sum(instrument.notional(t.price, t.amount)))
        else:       # a plain linear tape: the sums as they always were, to the last bit
            volume += float(t.amount.sum())
            notional += float(np.dot(t.price, t.amount))
        recorded += int(ts.max()) - int(ts.min())
    return TapeActivity(tuple(chosen), trades, unknown, volume, notional, recorded, instrument)


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def activity_ratios(a: TapeActivity, b: TapeActivity) -> dict:
    """A / B of trades, volume and notional, per day and per day of recorded time.

    Trade-count ratios are computed in integers (exact up to the final rounding).
    """
    da, db = len(a.days), len(b.days)
    ra, rb = a.recorded_us, b.recorded_us
    return {"trades_per_day": _ratio(a.trades * db, b.trades * da),
            "trades_per_recorded_day": _ratio(a.trades * rb, b.trades * ra),
            "volume_base_per_day": _ratio(a.volume_base * db, b.volume_base * da),
            "volume_base_per_recorded_day": _ratio(a.volume_base * rb, b.volume_base * ra),
            "notional_quote_per_day": _ratio(a.notional_quote * db, b.notional_quote * da),
            "notional_quote_per_recorded_day": _ratio(a.notional_quote * rb, b.notional_quote * ra)}


# -- one tape --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TapeAnalysis:
    """One side of a comparison: activity, features, model, centroid rows, importance."""

    tape: str
    activity: TapeActivity
    features: FeatureSummary
    model: ClusterModel
    fitted: bool
    centroids: tuple      # CentroidRow, counts of this tape's rows
    importance: FeatureImportance

    def to_dict(self) -> dict:
        return {"tape": self.tape, "fitted": self.fitted, "activity": self.activity.to_dict(),
                "feature_summary": self.features.to_dict(),
                "model": {key: value for key, value in self.model.to_dict().items() if key != "source"},
                "clusters": [r.to_dict() for r in self.centroids],
                "importance": self.importance.to_dict()}


def _too_short(tape_dir, summary: FeatureSummary, settings: FeatureSettings, need: int, k: int,
               per_cluster: int, what: str) -> ParameterError:
    return ParameterError(
        f"tape {tape_dir} (days {_days_text(summary.days)}) is too short to {what}: "
        f"{summary.rows_used:,} valid feature rows from {summary.trades:,} trades "
        f"({summary.warmup_rows:,} in the z-score warm-up of W={settings.window}, "
        f"{summary.unknown_side_trades:,} of unknown side), need at least {need:,} "
        f"({per_cluster} per cluster for k={k}; see --window, --min-rows-per-cluster)")


def analyse_tape(tape_dir: PathLike, settings: FeatureSettings, days: Days = None, *, model: ClusterModel | None = None,
                 fit: FitSettings | None = None, min_rows_per_cluster: int = DEFAULT_MIN_ROWS_PER_CLUSTER,
                 progress: Say | None = None, **legacy: Any) -> TapeAnalysis:
    """Build a tape's features, fit (or apply ``model``), and measure activity and importance.

    Parameters
    ----------
    tape_dir : str or Path
    settings : FeatureSettings
        Must equal ``model.settings`` when a model is given.
    days : None, str or list of str
    model : ClusterModel, optional
        Label with this model instead of fitting.
    fit : FitSettings, optional
        How the tape is fit (unused with ``model``); the older keywords ``k=, n_init=, seed=,
        fit_sample=, margin=`` still work instead (as :func:`clusterlob.model.fit_model`).
    min_rows_per_cluster : int
        The tape needs at least ``min_rows_per_cluster * k`` valid feature rows, otherwise a
        one-line :class:`ParameterError` says how many it has.
    progress : callable, optional
        Called with one line per step.

    Returns
    -------
    TapeAnalysis
    """
    fit = resolve_fit(fit, legacy, "analyse_tape")
    min_rows_per_cluster = check_int("min_rows_per_cluster", min_rows_per_cluster, 1)
    k = fit.k
    if model is not None:
        model.check_settings(settings, where="the model")
        k = model.k
    activity = tape_activity(tape_dir, days, time_key=settings.time_key)
    z, summary = collect_features(tape_dir, settings, days, progress=progress)
    need = max(int(min_rows_per_cluster) * int(k), int(k))
    if summary.rows_used < need:
        raise _too_short(tape_dir, summary, settings, need, k, min_rows_per_cluster,
                         "label" if model is not None else "fit")
    if model is None:
        if progress is not None:
            progress(f"fitting k={k} on {summary.rows_used:,} rows of {tape_dir}")
        model, labels = fit_model(z, settings, fit, source={"tape": str(tape_dir), "days": list(summary.days)})
        importance = feature_importance(z, labels, model.k)
        del labels
        fitted = True
    else:
        importance = importance_for_centers(z, model.centers_z)
        fitted = False
    del z
    total = int(importance.counts.sum())
    rows = tuple(dataclasses.replace(r, count=int(importance.counts[r.cluster]),
                                     share=float(importance.counts[r.cluster] / total))
                 for r in centroid_table(model))
    return TapeAnalysis(str(tape_dir), activity, summary, model, fitted, rows, importance)


# -- two tapes -------------------------------------------------------------------------------

_ACTIVITY_ROWS = (  # (label, TapeActivity value, per "day" or "recorded", ratio key)
    ("trades per day", "trades", "day", "trades_per_day"),
    ("trades per day of recorded time", "trades", "recorded", "trades_per_recorded_day"),
    ("volume per day (base)", "volume_base", "day", "volume_base_per_day"),
    ("volume per day of recorded time (base)", "volume_base", "recorded", "volume_base_per_recorded_day"),
    ("notional per day (quote)", "notional_quote", "day", "notional_quote_per_day"),
    ("notional per day of recorded time (quote)", "notional_quote", "recorded",
     "notional_quote_per_recorded_day"),
)


@dataclass(frozen=True)
class Comparison:
    """Two :class:`TapeAnalysis` and the A / B activity ratios."""

    a: TapeAnalysis
    b: TapeAnalysis
    ratios: dict

    def activity_rows(self) -> list:
        """``[metric, A, B, A/B]`` rows (days, recorded hours, trades, then the rates)."""
        a, b = self.a.activity, self.b.activity
        rows = [["days", len(a.days), len(b.days), float("nan")],
                ["recorded hours", a.recorded_us / 3.6e9, b.recorded_us / 3.6e9, float("nan")],
                ["trades", a.trades, b.trades, float("nan")],
                ["trades of unknown side", a.unknown_side_trades, b.unknown_side_trades, float("nan")],
                ["valid feature rows", self.a.features.rows_used, self.b.features.rows_used, float("nan")]]
        for label, field_name, per, key in _ACTIVITY_ROWS:
            va, vb = getattr(a, field_name), getattr(b, field_name)
            if per == "day":
                rows.append([label, a.per_day(va), b.per_day(vb), self.ratios[key]])
            else:
                rows.append([label, a.per_recorded_day(va), b.per_recorded_day(vb), self.ratios[key]])
        return rows

    def to_arrow(self) -> pa.Table:
        """:meth:`activity_rows` as a ``pyarrow.Table``: ``metric`` (str), ``a``, ``b`` and
        ``a_over_b`` (float64, NaN where a ratio is not meaningful)."""
        rows = self.activity_rows()
        return arrow_table({"metric": [str(r[0]) for r in rows],
                            "a": np.array([r[1] for r in rows], np.float64),
                            "b": np.array([r[2] for r in rows], np.float64),
                            "a_over_b": np.array([r[3] for r in rows], np.float64)})

    def summary(self) -> str:
        """One line: the activity ratios and the top separating features of each tape."""
        r = self.ratios
        return (f"A has {r['trades_per_recorded_day']:.3g}x the trades and "
                f"{r['notional_quote_per_recorded_day']:.3g}x the notional of B per day of recorded "
                f"time ({r['trades_per_day']:.3g}x and {r['notional_quote_per_day']:.3g}x per day); "
                f"A's clusters separate mainly by {self.a.importance.summary(3)}, "
                f"B's by {self.b.importance.summary(3)}.")

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "feature_names": list(FEATURE_NAMES),
                "feature_settings": self.a.model.settings.to_dict(), "ratios_a_over_b": dict(self.ratios),
                "a": self.a.to_dict(), "b": self.b.to_dict()}


def compare_tapes(tape_a: PathLike, tape_b: PathLike, settings: FeatureSettings, *, days_a: Days = None, days_b: Days = None,
                  model_a: ClusterModel | None = None, model_b: ClusterModel | None = None,
                  fit: FitSettings | None = None, min_rows_per_cluster: int = DEFAULT_MIN_ROWS_PER_CLUSTER,
                  progress: Say | None = None, **legacy: Any) -> Comparison:
    """Analyse two tapes with the same feature settings and compare them.

    Parameters
    ----------
    tape_a, tape_b : str or Path
        Tape directories.
    settings : FeatureSettings
        Feature settings of both tapes (a given model must have been fit with them).
    days_a, days_b : None, str or list of str
        Days of each tape.
    model_a, model_b : ClusterModel, optional
        Label that tape with this model instead of fitting it.
    fit : FitSettings, optional
        How a tape without a model is fit; the older keywords (``k=2, seed=0``) still work instead.
    min_rows_per_cluster : int
        As :func:`analyse_tape`.
    progress : callable, optional

    Returns
    -------
    Comparison
    """
    fit = resolve_fit(fit, legacy, "compare_tapes")                 # fail before the long work
    min_rows_per_cluster = check_int("min_rows_per_cluster", min_rows_per_cluster, 1)
    for tape_dir, days in ((tape_a, days_a), (tape_b, days_b)):
        parse_days(days, [d["date"] for d in read_manifest(tape_dir)["days"]])
    a = analyse_tape(tape_a, settings, days_a, model=model_a, fit=fit,
                     min_rows_per_cluster=min_rows_per_cluster, progress=progress)
    b = analyse_tape(tape_b, settings, days_b, model=model_b, fit=fit,
                     min_rows_per_cluster=min_rows_per_cluster, progress=progress)
    return Comparison(a, b, activity_ratios(a.activity, b.activity))


# -- outputs ---------------------------------------------------------------------------------

_CENTROID_HEADER = (["cluster", "role", "count", "share_pct"] + [f"z_{n}" for n in FEATURE_NAMES]
                    + ["interpretation"])


def _centroid_cells(r: CentroidRow) -> list:
    return [r.cluster, r.role, r.count, 100 * r.share, *r.centroid_z, r.interpretation]


def _days_text(days) -> str:
    if not days:
        return "-"
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)})"


def _describe(side: str, t: TapeAnalysis) -> str:
    act, ins = t.activity, t.activity.instrument
    days = _days_text(act.days)
    how = "fitted" if t.fitted else f"model {t.model.source.get('tape', 'given')}"
    return (f"{side}: {t.tape} ({ins.exchange} {ins.symbol}, days {days}, {act.recorded_us / 3.6e9:.2f} h "
            f"recorded; {how}, k={t.model.k}, inertia {t.model.inertia:.6g})")


def _markdown(c: Comparison) -> str:
    s = c.a.model.settings
    lines = ["# Tape comparison", "", _describe("A", c.a), "", _describe("B", c.b), "",
             f"Features W = {s.window}, D = {s.levels}, clip {s.z_clip:g}, convention {s.convention!r}, "
             f"as-of {s.asof!r}, time {s.time_key!r}.", "", f"**{c.summary()}**", "", "## Activity", "",
             markdown_table(["metric", "A", "B", "A/B"], _format_activity(c.activity_rows()),
                            align=["l", "r", "r", "r"]),
             "## Which features separate the clusters", "",
             "share = between-cluster sum of squares of the feature over the total; r2 = its share "
             "of the feature's variance; F = between- over within-cluster variance (descriptive).", ""]
    for side, t in (("A", c.a), ("B", c.b)):
        lines += [f"### {side}", "", markdown_table(list(IMPORTANCE_HEADER), t.importance.markdown_rows(),
                                                    align=["r", "l", "r", "r", "r", "r", "r"])]
    lines += ["## Cluster centroids (z units)", ""]
    for side, t in (("A", c.a), ("B", c.b)):
        lines += [f"### {side}", "",
                  markdown_table(_CENTROID_HEADER, [_centroid_cells(r) for r in t.centroids], digits=2,
                                 align=["r", "l", "r", "r"] + ["r"] * len(FEATURE_NAMES) + ["l"])]
    return "\n".join(lines)


def _format_activity(rows) -> list:
    def cell(v):
        if isinstance(v, (int, np.integer)):
            return f"{int(v):,}"
        if not np.isfinite(v):
            return ""
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return [[label, cell(a), cell(b), cell(r)] for label, a, b, r in rows]


def text_report(c: Comparison) -> str:
    """The side-by-side report the CLI prints."""
    act = _format_activity(c.activity_rows())
    w = max(len(r[0]) for r in act)
    lines = [_describe("A", c.a), _describe("B", c.b), "",
             f"{'':<{w}}  {'A':>16}  {'B':>16}  {'A/B':>10}"]
    lines += [f"{label:<{w}}  {a:>16}  {b:>16}  {r:>10}" for label, a, b, r in act]
    lines += ["", f"{'rank':>4}  {'A feature':<9} {'share':>6} {'r2':>6} {'F':>10}   |  "
                  f"{'B feature':<9} {'share':>6} {'r2':>6} {'F':>10}"]
    ra, rb = c.a.importance.markdown_rows(), c.b.importance.markdown_rows()
    for x, y in zip(ra, rb):
        lines.append(f"{x[0]:>4}  {x[1]:<9} {x[2]:>6} {x[3]:>6} {x[4]:>10}   |  "
                     f"{y[1]:<9} {y[2]:>6} {y[3]:>6} {y[4]:>10}")
    for side, t in (("A", c.a), ("B", c.b)):
        lines += ["", f"{side} centroids (z)"]
        for r in t.centroids:
            lines.append(f"  {r.cluster} {r.role:<13} {r.count:>10,} {100 * r.share:5.1f}%  "
                         + " ".join(f"{n}={v:+.2f}" for n, v in zip(FEATURE_NAMES, r.centroid_z)))
    lines += ["", "summary: " + c.summary()]
    return "\n".join(lines)


def _existing(out_dir: Path, names) -> list:
    return [n for n in names if (out_dir / n).exists()]


def write_compare_outputs(out_dir: PathLike, comparison: Comparison, *, overwrite: bool = False) -> dict:
    """Write compare.md/.json, activity/importance/centroids CSV, and fitted models into ``out_dir``.

    Refuses (before writing anything) when any output file exists, unless ``overwrite``.
    Returns ``{file name: path}``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"output {out_dir} exists and is not a directory")
    names = list(OUTPUT_FILES) + [m for m, t in zip(MODEL_FILES, (comparison.a, comparison.b)) if t.fitted]
    if not overwrite and _existing(out_dir, names):
        raise ParameterError(f"output directory {out_dir} already has {', '.join(_existing(out_dir, names))} "
                             f"(use --force to replace)")
    c = comparison
    paths = {}
    for name, t in zip(MODEL_FILES, (c.a, c.b)):
        if t.fitted:
            paths[name] = save_model(t.model, out_dir / name, overwrite=overwrite)
    paths["activity.csv"] = write_csv(out_dir / "activity.csv", ["metric", "a", "b", "a_over_b"],
                                      c.activity_rows(), overwrite=overwrite)
    paths["importance.csv"] = write_csv(
        out_dir / "importance.csv", ["tape"] + list(IMPORTANCE_HEADER),
        ([side] + row for side, t in (("a", c.a), ("b", c.b)) for row in t.importance.rows()),
        overwrite=overwrite)
    paths["centroids.csv"] = write_csv(
        out_dir / "centroids.csv", ["tape"] + _CENTROID_HEADER,
        ([side] + _centroid_cells(r) for side, t in (("a", c.a), ("b", c.b)) for r in t.centroids),
        overwrite=overwrite)
    paths["compare.json"] = write_json(out_dir / "compare.json", c.to_dict(), overwrite=overwrite)
    paths["compare.md"] = write_markdown(out_dir / "compare.md", _markdown(c), overwrite=overwrite)
    return paths


# -- command line ----------------------------------------------------------------------------
