"""Information coefficients of bucketed OFI against future returns (Experiments 2 and 9).

The IC of a group is the correlation, over buckets, of the group's OFI at bucket ``b`` with the
return from bucket ``b``'s close ``h`` buckets ahead (``r_h[b]``, see :mod:`clusterlob.signals`).
Pearson and Spearman are both reported: with 288 five-minute buckets a day, a Pearson IC has a
standard error near 0.06 and is driven by a few large buckets; Spearman is the robust check.
Single-window numbers are noise-dominated, so :func:`aggregate_ic` summarizes many windows
(mean, std, t = mean / (std / sqrt(n)), share positive) - the research notes' defect 11.

:func:`in_vs_out_of_sample` puts the IC on the days a model was fitted on beside the ICs on
later days scored with the same fit (Experiment 9).

``python -m clusterlob.ic TAPE_DIR --model MODEL.json --out OUT_DIR`` runs all of it, plus the
timeframe analysis of :mod:`clusterlob.timeframes`; see ``docs/signals.md``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import stats

from .._typing import ArrayLike, PathLike
from ..errors import ParameterError
from ..report import rows_to_arrow
from .ofi import ALL_TRADES, BucketSignals

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "WEIGHTINGS",
    "MIN_BUCKETS",
    "ConstantSeriesWarning",
    "ICValue",
    "ICRow",
    "ic_standard_error",
    "below_its_error",
    "ICTable",
    "ICAggregateRow",
    "ICAggregate",
    "InOutRow",
    "InOutTable",
    "information_coefficient",
    "ic_table",
    "window_ic_tables",
    "aggregate_ic",
    "in_vs_out_of_sample",
    "plot_in_vs_out",
]

WEIGHTINGS = ("size", "count")
MIN_BUCKETS = 3


class ConstantSeriesWarning(RuntimeWarning):
    """A correlation was asked of a constant series; the result is NaN."""


# -- one correlation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ICValue:
    """Pearson and Spearman correlation of a signal with a target over ``n`` usable buckets."""

    pearson: float
    spearman: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    # scipy.stats.pearsonr's arithmetic: centre, scale by the norm, then the dot product
    xm = x - x.mean()
    ym = y - y.mean()
    nx, ny = np.linalg.norm(xm), np.linalg.norm(ym)
    if nx == 0.0 or ny == 0.0:
        return math.nan
    r = float(np.dot(xm / nx, ym / ny))
    return max(-1.0, min(1.0, r))


def _constant(a: np.ndarray) -> bool:
    return bool(a.shape[0]) and bool(np.all(a == a[0]))


def information_coefficient(signal: ArrayLike, target: ArrayLike, *, name: str = "signal") -> ICValue:
    """Pearson and Spearman correlation over the buckets where both series are finite.

    Parameters
    ----------
    signal, target : array_like, shape (n,)
        For example a group's OFI and the forward return ``r_h``.
    name : str
        Used in the error and warning messages.

    Returns
    -------
    ICValue
        NaN correlations (and a :class:`ConstantSeriesWarning`) when either series is constant
        over the usable buckets.

    Raises
    ------
    ParameterError
        Shapes differ, or fewer than 3 buckets have both values finite.
    """
    x = np.asarray(signal, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ParameterError(f"{name}: signal and target must be 1-d of one length, got shapes "
                             f"{x.shape} and {y.shape}")
    use = np.isfinite(x) & np.isfinite(y)
    n = int(use.sum())
    if n < MIN_BUCKETS:
        raise ParameterError(f"{name}: an IC needs at least {MIN_BUCKETS} usable buckets "
                             f"(signal and return both finite), got {n} of {x.shape[0]}; a short tape "
                             f"needs narrower buckets (--bucket, in seconds)")
    x, y = x[use], y[use]
    if _constant(x) or _constant(y):
        which = "signal" if _constant(x) else "target"
        warnings.warn(f"{name}: the {which} is constant over {n} buckets; IC is NaN",
                      ConstantSeriesWarning, stacklevel=2)
        return ICValue(math.nan, math.nan, n)
    rho = _pearson(stats.rankdata(x), stats.rankdata(y))
    return ICValue(_pearson(x, y), rho, n)


# -- IC tables ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ICRow:
    """IC of one (group, weighting, horizon); ``vs_benchmark_pct`` compares with all trades.

    ``vs_benchmark_pct = 100 * (ic - ic_all) / |ic_all|`` for the same weighting and horizon
    (the log's "Performance vs. Benchmark"), per statistic; NaN for the benchmark itself and
    when ``|ic_all|`` is not above its own standard error (:func:`ic_standard_error`): a ratio
    against noise is not a percentage.
    """

    group: str
    weighting: str
    horizon: int
    pearson: float
    spearman: float
    n_buckets: int
    vs_benchmark_pearson_pct: float
    vs_benchmark_spearman_pct: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ICTable:
    """IC rows of one window (``label``: a day, a day range or ``"all days"``)."""

    label: str
    rows: tuple[ICRow, ...]
    bucket_s: float

    def get(self, group: str, weighting: str, horizon: int) -> ICRow:
        for row in self.rows:
            if (row.group, row.weighting, row.horizon) == (group, weighting, horizon):
                return row
        raise ParameterError(f"no IC row for group {group!r}, weighting {weighting!r}, horizon {horizon!r}")

    def to_dict(self) -> dict:
        return {"label": self.label, "bucket_s": self.bucket_s, "rows": [r.to_dict() for r in self.rows]}

    def to_arrow(self) -> pa.Table:
        """One row per :class:`ICRow` (its fields are the columns); ``label`` and ``bucket_s``
        in the schema metadata."""
        return rows_to_arrow(self.rows, [f.name for f in fields(ICRow)],
                             {"label": self.label, "bucket_s": repr(self.bucket_s)})


def ic_standard_error(ic: float, n: int) -> float:
    """Standard error of a correlation ``ic`` over ``n`` buckets, sqrt((1 - ic^2) / (n - 2));
    NaN with fewer than 3 buckets or a non-finite ic."""
    if not math.isfinite(ic) or n < 3:
        return math.nan
    return math.sqrt(max(0.0, 1.0 - ic * ic) / (n - 2))


def below_its_error(value: float, n: int) -> bool:
    """True when ``|value|`` is not above its own standard error over ``n`` buckets (or either is
    unknown): a ratio against it is noise, not a percentage."""
    se = ic_standard_error(value, n)
    return not (math.isfinite(se) and abs(value) > se)


def _vs(ic: float, bench: float, bench_n: int) -> float:
    if not (math.isfinite(ic) and math.isfinite(bench)) or below_its_error(bench, bench_n):
        return math.nan
    return 100.0 * (ic - bench) / abs(bench)


def _check_horizons(horizons) -> tuple:
    try:
        hs = tuple(int(h) for h in horizons)
    except (TypeError, ValueError):
        raise ParameterError(f"`horizons` must be integers >= 1, got {horizons!r}") from None
    if not hs or any(h < 1 for h in hs) or any(h != float(v) for h, v in zip(hs, horizons)):
        raise ParameterError(f"`horizons` must be integers >= 1, got {horizons!r}")
    return hs


def _check_weightings(weightings) -> tuple:
    ws = tuple(weightings)
    bad = [w for w in ws if w not in WEIGHTINGS]
    if not ws or bad:
        raise ParameterError(f"`weightings` must be among {list(WEIGHTINGS)}, got {list(ws)}")
    return ws


def ic_table(signals: BucketSignals, horizons: Sequence[int] = (1, 2, 5), weightings: Sequence[str] = WEIGHTINGS, *,
             buckets: slice | np.ndarray = slice(None), label: str = "all days") -> ICTable:
    """IC of every group's OFI against ``r_h`` for every horizon and weighting.

    Parameters
    ----------
    signals : BucketSignals
    horizons : sequence of int
        Horizons in buckets (``r_1`` is FRNB).
    weightings : sequence of {"size", "count"}
    buckets : slice, index or bool mask over buckets
        The window.  Returns are computed on the whole grid first, so the last bucket of a window
        is scored against the mid after it (the target, never the signal, reaches past the window).
    label : str

    Returns
    -------
    ICTable
        Rows ordered by weighting, horizon, then group (``"all"`` first).
    """
    if not isinstance(signals, BucketSignals):
        raise ParameterError(f"`signals` must be BucketSignals, got {type(signals).__name__}")
    hs = _check_horizons(horizons)
    ws = _check_weightings(weightings)
    covered = signals.covered[buckets]
    rows = []
    for w in ws:
        for h in hs:
            target = signals.forward_returns(h)[buckets]
            target = np.where(covered, target, np.nan)
            values = {g: information_coefficient(signals.ofi(g, w)[buckets], target,
                                                 name=f"{label}: {g} OFI ({w}) vs r_{h}")
                      for g in signals.group_names}
            bench = values[ALL_TRADES]
            for g in signals.group_names:
                v = values[g]
                is_bench = g == ALL_TRADES
                rows.append(ICRow(g, w, h, v.pearson, v.spearman, v.n,
                                  math.nan if is_bench else _vs(v.pearson, bench.pearson, bench.n),
                                  math.nan if is_bench else _vs(v.spearman, bench.spearman, bench.n)))
    return ICTable(label, tuple(rows), signals.grid.bucket_us / 1e6)


def window_ic_tables(signals: BucketSignals, windows: Sequence[tuple[str, np.ndarray]] | None = None, horizons: Sequence[int] = (1, 2, 5),
                     weightings: Sequence[str] = WEIGHTINGS) -> tuple:
    """One :class:`ICTable` per window, and the windows skipped for lack of buckets.

    Parameters
    ----------
    windows : sequence of (label, buckets), optional
        Default: one window per UTC day (:meth:`BucketSignals.day_windows`).

    Returns
    -------
    (list of ICTable, list of (label, reason))
    """
    if windows is None:
        windows = signals.day_windows()
    tables, skipped = [], []
    for label, buckets in windows:
        try:
            tables.append(ic_table(signals, horizons, weightings, buckets=buckets, label=label))
        except ParameterError as exc:
            skipped.append((label, str(exc)))
    return tables, skipped


# -- across windows -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ICAggregateRow:
    """One (group, weighting, horizon, statistic) over windows with a finite IC."""

    group: str
    weighting: str
    horizon: int
    statistic: str
    n_windows: int
    mean: float
    std: float
    t_stat: float
    share_positive: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ICAggregate:
    rows: tuple[ICAggregateRow, ...]
    windows: tuple

    def get(self, group: str, weighting: str, horizon: int, statistic: str = "pearson") -> ICAggregateRow:
        for row in self.rows:
            if (row.group, row.weighting, row.horizon, row.statistic) == (group, weighting, horizon, statistic):
                return row
        raise ParameterError(f"no aggregate row for {group!r}, {weighting!r}, {horizon!r}, {statistic!r}")

    def to_dict(self) -> dict:
        return {"windows": list(self.windows), "rows": [r.to_dict() for r in self.rows]}

    def to_arrow(self) -> pa.Table:
        """One row per :class:`ICAggregateRow` (its fields are the columns)."""
        return rows_to_arrow(self.rows, [f.name for f in fields(ICAggregateRow)],
                             {"windows": ",".join(map(str, self.windows))})


def _summary(values: np.ndarray) -> tuple:
    v = values[np.isfinite(values)]
    n = int(v.shape[0])
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n >= 2 else math.nan
    t = mean / (std / math.sqrt(n)) if n >= 2 and std > 0 else math.nan
    return n, mean, std, t, float(np.mean(v > 0))


def aggregate_ic(tables: Sequence[ICTable]) -> ICAggregate:
    """Mean, std (ddof 1), t = mean / (std / sqrt(n)) and share positive of ICs over windows.

    Windows whose IC is NaN (a constant series) are left out of that row's ``n_windows``.
    """
    tables = list(tables)
    if not tables:
        raise ParameterError("`tables` must hold at least one ICTable, got none")
    keys = [(r.group, r.weighting, r.horizon) for r in tables[0].rows]
    rows = []
    for key in keys:
        for statistic in ("pearson", "spearman"):
            values = []
            for t in tables:
                try:
                    values.append(getattr(t.get(*key), statistic))
                except ParameterError:
                    values.append(math.nan)
            rows.append(ICAggregateRow(*key, statistic, *_summary(np.asarray(values, dtype=np.float64))))
    return ICAggregate(tuple(rows), tuple(t.label for t in tables))


# -- in-sample vs out-of-sample (Experiment 9) ------------------------------------------------------

@dataclass(frozen=True)
class InOutRow:
    """In-sample IC beside the out-of-sample ICs of the same fit, for one (group, horizon, weighting).

    ``ratio_*`` = out-of-sample mean / in-sample IC (1 = no decay, near 0 = the in-sample IC was
    mostly fit noise, negative = the sign flipped); NaN when the in-sample IC is not above its
    own standard error over ``in_sample_buckets``.
    """

    group: str
    horizon: int
    weighting: str
    in_sample_pearson: float
    oos_pearson_mean: float
    oos_pearson_std: float
    ratio_pearson: float
    in_sample_spearman: float
    oos_spearman_mean: float
    oos_spearman_std: float
    ratio_spearman: float
    in_sample_buckets: int
    oos_windows: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InOutTable:
    in_sample_label: str
    oos_labels: tuple
    rows: tuple[InOutRow, ...]

    def to_dict(self) -> dict:
        return {"in_sample": self.in_sample_label, "out_of_sample": list(self.oos_labels),
                "rows": [r.to_dict() for r in self.rows]}

    def to_arrow(self) -> pa.Table:
        """One row per :class:`InOutRow` (its fields are the columns)."""
        return rows_to_arrow(self.rows, [f.name for f in fields(InOutRow)],
                             {"in_sample": self.in_sample_label, "out_of_sample": ",".join(self.oos_labels)})


def _ratio(a: float, b: float, b_n: int) -> float:
    return a / b if math.isfinite(a) and not below_its_error(b, b_n) else math.nan


def in_vs_out_of_sample(in_sample: ICTable, out_of_sample: Sequence[ICTable]) -> InOutTable:
    """Compare the IC on the fitting days with the ICs on later days scored with the same fit.

    Parameters
    ----------
    in_sample : ICTable
        IC over the days the model was fitted on (all of them as one window).
    out_of_sample : sequence of ICTable
        One table per later window (typically per day), labelled with the same fit.

    Returns
    -------
    InOutTable
        One row per (group, horizon, weighting) of ``in_sample``.
    """
    if not isinstance(in_sample, ICTable):
        raise ParameterError(f"`in_sample` must be an ICTable, got {type(in_sample).__name__}")
    oos = list(out_of_sample)
    agg = aggregate_ic(oos) if oos else None
    rows = []
    for r in in_sample.rows:
        if agg is not None:
            p = agg.get(r.group, r.weighting, r.horizon, "pearson")
            s = agg.get(r.group, r.weighting, r.horizon, "spearman")
            p_stats, s_stats, n_win = (p.mean, p.std), (s.mean, s.std), p.n_windows
        else:
            p_stats = s_stats = (math.nan, math.nan)
            n_win = 0
        rows.append(InOutRow(r.group, r.horizon, r.weighting,
                             r.pearson, *p_stats, _ratio(p_stats[0], r.pearson, r.n_buckets),
                             r.spearman, *s_stats, _ratio(s_stats[0], r.spearman, r.n_buckets),
                             r.n_buckets, n_win))
    return InOutTable(in_sample.label, tuple(t.label for t in oos), tuple(rows))


def plot_in_vs_out(table: InOutTable, path: PathLike, *, weighting: str = "size") -> bool:
    """Bar chart of in-sample IC beside the out-of-sample mean (+- std) per group and horizon.

    Returns False (and draws nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in table.rows if r.weighting == weighting]
    labels = [f"{r.group}\nh={r.horizon}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(rows) + 2), 4.0))
    ax.bar(x - 0.2, [r.in_sample_pearson for r in rows], 0.4, label=f"in sample ({table.in_sample_label})")
    ax.bar(x + 0.2, [r.oos_pearson_mean for r in rows], 0.4,
           yerr=[0.0 if not math.isfinite(r.oos_pearson_std) else r.oos_pearson_std for r in rows],
           capsize=3, label=f"out of sample, mean +- std over {len(table.oos_labels)} windows")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8, rotation=30, ha="right")
    ax.set_ylabel(f"Pearson IC ({weighting}-weighted OFI vs r_h)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
