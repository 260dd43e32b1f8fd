"""The whole signal study of a tape directory: IC tables, windows, timeframes, in vs out of sample.

:func:`run_ic_study` reads a tape day by day (memory holds one day plus the bucket arrays),
labels every trade (roles or clusters from a model, or the planted ``agent`` column of a
synthetic tape), accumulates bucketed OFI at the IC bucket width and at every timeframe, and
computes:

* the IC table over all chosen days pooled (Experiment 2);
* one IC table per UTC day and their aggregate: mean, std, t, share positive (defect 11);
* the taker timeframe analysis, honest and BIASED side by side (Experiment 5);
* in-sample (the days the model was fitted on) vs out-of-sample (the later days) (Experiment 9).

:func:`write_ic_outputs` writes Markdown, CSV and JSON (atomically) and the plot when
matplotlib is installed; :func:`main` is ``python -m clusterlob.ic``.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._io import check_choice, check_int, check_number, Progress
from .._typing import Days, PathLike, Say
from ..errors import ParameterError, TapeError
from .ic import (WEIGHTINGS, ConstantSeriesWarning, ICAggregate, ICTable, InOutTable, aggregate_ic,
                 below_its_error, ic_standard_error, ic_table, in_vs_out_of_sample, plot_in_vs_out,
                 window_ic_tables)
from ..cluster.model import label_trades
from ..report import markdown_table, write_csv, write_json, write_markdown
from .ofi import (ALL_TRADES, ROLE_GROUPS, BucketGrid, BucketSignals, BucketAccumulator, check_bucket_s,
                      cluster_groups, covered_buckets)
from ..tape.location import TapeSource, resolve_tape
from ..tape.store import read_manifest, read_tape
from ..tape.types import MAX_LEVELS, US_PER_DAY, day_start_us, parse_days
from .book_flow import BookFlowState, book_flow_events
from .timeframes import BIASED, MIN_BUCKETS_ANNUALISED, ThresholdRule, TimeframeTable, timeframe_analysis

if TYPE_CHECKING:
    from ..cluster.model import ClusterModel

__all__ = ["GROUP_BY", "ICSettings", "ICStudy", "run_ic_study", "write_ic_outputs"]

GROUP_BY = ("role", "cluster", "agent")
_TIME_KEY_COLUMN = {"local": "ts_local_us", "exchange": "ts_exch_us"}


@dataclass(frozen=True)
class ICSettings:
    """Everything the signal study needs besides the tape and the labels.

    Parameters
    ----------
    bucket_s : float
        IC bucket width in seconds (default 300).
    horizons : tuple of int
        Return horizons in buckets (default 1, 2, 5).
    timeframes_min : tuple of float
        Bucket widths of the taker timeframe analysis, minutes (default 5, 15, 30).
    fee_bps : float
        Taker fee per side for the net returns (default 3).
    threshold : ThresholdRule
        Rolling |OFI| quantile from past buckets.
    time_key : {"local", "exchange"}
        Clock that puts trades and snapshots into buckets.
    book_levels : int
        D of the book order-flow imbalance rows (touch, D levels, each with and without the
        trades' part; ``clusterlob.signals.book_flow``); 0 leaves them out (default 5).
    """

    bucket_s: float = 300
    horizons: tuple = (1, 2, 5)
    timeframes_min: tuple = (5, 15, 30)
    fee_bps: float = 3.0
    threshold: ThresholdRule = field(default_factory=ThresholdRule)
    time_key: str = "local"
    book_levels: int = 5

    def __post_init__(self):
        check_bucket_s(self.bucket_s)
        object.__setattr__(self, "book_levels", check_int("book_levels", self.book_levels, 0, MAX_LEVELS))
        if not self.horizons:
            raise ParameterError(f"`horizons` must be integers >= 1, got {self.horizons!r}")
        for h in self.horizons:
            check_int("horizons", h, 1)
        for m in self.timeframes_min:
            check_number("timeframes_min", m, 0, lo_open=True)
        check_number("fee_bps", self.fee_bps, 0)
        check_choice("time_key", self.time_key, tuple(_TIME_KEY_COLUMN))

    def to_dict(self) -> dict:
        return {"bucket_s": self.bucket_s, "horizons": list(self.horizons),
                "timeframes_min": list(self.timeframes_min), "fee_bps": self.fee_bps,
                "threshold": self.threshold.to_dict(), "time_key": self.time_key,
                "book_levels": self.book_levels}


@dataclass
class ICStudy:
    """Results of :func:`run_ic_study` (every table, plus what was counted on the way)."""

    tape: str
    days: tuple
    group_by: str
    settings: ICSettings
    signals: BucketSignals
    pooled: ICTable
    windows: tuple[ICTable, ...]
    skipped_windows: tuple
    aggregate: ICAggregate | None
    timeframes: TimeframeTable
    in_out: InOutTable | None
    counts: dict
    notes: list

    def to_dict(self) -> dict:
        return {"tape": self.tape, "days": list(self.days), "group_by": self.group_by,
                "settings": self.settings.to_dict(), "signals": self.signals.to_dict(),
                "counts": self.counts, "ic_pooled": self.pooled.to_dict(),
                "ic_windows": [t.to_dict() for t in self.windows],
                "skipped_windows": [{"window": w, "reason": r} for w, r in self.skipped_windows],
                "ic_aggregate": self.aggregate.to_dict() if self.aggregate else None,
                "timeframes": self.timeframes.to_dict(),
                "in_vs_out_of_sample": self.in_out.to_dict() if self.in_out else None,
                "notes": list(self.notes)}


def _labeller(group_by: str, model):
    """(groups, function(day_tape, state) -> (labels, state, counts))."""
    if group_by == "agent":
        def by_agent(tape, state):
            agent = tape.trades.extra.get("agent")
            if agent is None:
                raise TapeError(f"day {tape.days[0]}: no `agent` trade column "
                                f"(only synthetic tapes have the planted types); use --model")
            return np.asarray(agent, dtype=np.int8), state, {}
        return ROLE_GROUPS, by_agent
    if model is None:
        raise ParameterError(f"--group-by {group_by} needs --model MODEL.json")
    groups = ROLE_GROUPS if group_by == "role" else cluster_groups(int(model.centers_z.shape[0]))

    def by_model(tape, state):
        lab = label_trades(tape, model, state=state)
        return (lab.role if group_by == "role" else lab.cluster), lab.state, lab.counts
    return groups, by_model


def _add_counts(total: dict, part: dict) -> None:
    for k, v in part.items():
        if isinstance(v, (int, np.integer)):
            total[k] = total.get(k, 0) + int(v)


def _in_sample_days(in_sample, model, days) -> list:
    if in_sample is None and model is not None:
        source = getattr(model, "source", None) or {}
        fit_days = source.get("days") if isinstance(source, dict) else None
        if fit_days:
            return [d for d in days if d in set(fit_days)]
        return []
    if in_sample is None:
        return []
    return parse_days(in_sample, days)


def run_ic_study(tape_dir: TapeSource, *, model: ClusterModel | None = None, group_by: str = "role", days: Days = None, in_sample: Days = None,
                 settings: ICSettings = ICSettings(), progress: Say | None = None) -> ICStudy:
    """Label a tape's trades and measure their signal.

    Parameters
    ----------
    tape_dir : str or Path
        A tape directory: a local folder or a URI (``file://``, ``s3://``, ...).
    model : ClusterModel, optional
        Needed for ``group_by="role"`` or ``"cluster"``.
    group_by : {"role", "cluster", "agent"}
        ``"agent"`` uses the planted type column of a synthetic tape (no model needed).
    days : None, str or list of str
        Days of the tape to use (``"FROM:TO"``); default all.
    in_sample : None or str or list of str
        Days treated as in sample for Experiment 9; default the model's fit days when the
        model records them.  Out of sample are the chosen days after the last in-sample day.
    settings : ICSettings
    progress : callable(str), optional
        Called with one line per day (the CLI prints it to stderr).

    Returns
    -------
    ICStudy
    """
    if group_by not in GROUP_BY:
        raise ParameterError(f"`group_by` must be one of {list(GROUP_BY)}, got {group_by!r}")
    if not isinstance(settings, ICSettings):
        raise ParameterError(f"`settings` must be ICSettings, got {type(settings).__name__}")
    loc = resolve_tape(tape_dir)
    manifest = read_manifest(loc)
    chosen = parse_days(days, [d["date"] for d in manifest["days"]])
    groups, label = _labeller(group_by, model)
    column = _TIME_KEY_COLUMN[settings.time_key]
    widths = {"ic": check_bucket_s(settings.bucket_s)}
    for m in settings.timeframes_min:
        widths[m] = check_bucket_s(m * 60)
    notes: list = []
    depth = int(manifest.get("book_levels", settings.book_levels) or 0)
    book_levels = min(settings.book_levels, depth)
    if book_levels < settings.book_levels:
        notes.append(f"book OFI over {book_levels} levels: the tape's book has {depth} "
                     f"(asked for {settings.book_levels})")
    flow = BookFlowState(book_levels) if book_levels else None
    accs = {key: BucketAccumulator(BucketGrid.for_days(chosen, us), groups, time_key=column,
                                   book_levels=book_levels)
            for key, us in widths.items()}
    counts: dict = {}
    state = None
    steps = Progress("", total=len(chosen), unit="day", quiet=True)     # formats; `progress` prints
    # read only what the labels, the OFI and the mid need
    levels = max(model.settings.levels if model is not None and group_by != "agent" else 1, book_levels, 1)
    columns = {column, "side", "amount"} | ({"agent"} if group_by == "agent" or model is None  # (None: _labeller refused it)
                                               else set(model.settings.tape_columns()))
    for day in chosen:
        tape = read_tape(loc, [day], levels=levels, columns=columns)
        labels, state, day_counts = label(tape, state)
        _add_counts(counts, day_counts)
        ts, book_ts, mid = getattr(tape.trades, column), getattr(tape.book, column), tape.book.mid()
        if flow is not None:
            book = tape.book
            e_touch, e_depth = (tape.instrument.flow_size(e) for e in
                                book_flow_events(book.bid_px, book.bid_sz, book.ask_px, book.ask_sz, flow))
        amount = tape.instrument.flow_size(tape.trades.amount)     # flow units, as the book OFI
        for acc in accs.values():
            acc.add_trades(ts, tape.trades.side, amount, labels)
            acc.add_book(book_ts, mid)
            if flow is not None:
                acc.add_book_flow(book_ts, e_touch, e_depth)
        if progress is not None:
            progress(steps.step(rows=len(tape.trades), note=day))
        del tape
    signals_by = {key: acc.finish(covered_buckets(acc.grid, chosen)) for key, acc in accs.items()}
    signals = signals_by.pop("ic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConstantSeriesWarning)
        pooled = ic_table(signals, settings.horizons, WEIGHTINGS, label=_span(chosen))
        tables, skipped = window_ic_tables(signals, None, settings.horizons, WEIGHTINGS)
        aggregate = aggregate_ic(tables) if tables else None
        in_days = _in_sample_days(in_sample, model, chosen)
        in_out = None
        if in_days:
            later = {d for d in chosen if d > max(in_days)}
            mask = np.isin(signals.grid.starts_us // US_PER_DAY,
                           [day_start_us(d) // US_PER_DAY for d in in_days]) & signals.covered
            ins = ic_table(signals, settings.horizons, WEIGHTINGS, buckets=mask, label=_span(in_days))
            in_out = in_vs_out_of_sample(ins, [t for t in tables if t.label in later])
            if not later:
                notes.append(f"in vs out of sample: no chosen day after the in-sample days {_span(in_days)}")
        else:
            notes.append("in vs out of sample: skipped (no in-sample days: pass --in-sample FROM:TO "
                         "or a model that records its fit days)")
    notes += _constant_notes(signals, [pooled] + list(tables),
                             sum(issubclass(w.category, ConstantSeriesWarning) for w in caught))
    notes += [f"window {w} skipped: {r}" for w, r in skipped]
    timeframes = timeframe_analysis(signals_by, rule=settings.threshold, fee_bps=settings.fee_bps)
    counts.update(trades_known_side=int(signals.trades[0]), unknown_side=int(signals.unknown_side),
                  **{f"trades_{g}": int(n) for g, n in zip(signals.group_names[1:], signals.trades[1:])})
    return ICStudy(loc.where(), tuple(chosen), group_by, settings, signals, pooled, tuple(tables),
                   tuple(skipped), aggregate, timeframes, in_out, counts, notes)


def _constant_notes(signals: BucketSignals, tables, n_warnings: int) -> list:
    """One line per group whose IC came out NaN (a constant series), instead of one per warning."""
    notes = []
    for g, n in zip(signals.group_names, signals.trades):
        if n == 0:
            notes.append(f"group {g}: no trades (for a role: unassigned by the model), its OFI is 0 "
                         f"and its IC NaN - the signal is off")
    for g in signals.group_names:
        hit = [t.label for t in tables if any(r.group == g and not math.isfinite(r.pearson) for r in t.rows)]
        if hit and signals.trades[signals.group_names.index(g)] > 0:
            notes.append(f"group {g}: IC is NaN (a constant OFI or return series) in {len(hit)} of "
                         f"{len(tables)} windows (first: {hit[0]})")
    if n_warnings:
        notes.append(f"{n_warnings} IC values are NaN because a series was constant")
    return notes


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _span(days) -> str:
    days = sorted(days)
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"



# -- outputs ------------------------------------------------------------------------------------

_IC_HEADER = ("window", "group", "weighting", "horizon", "pearson", "spearman", "n_buckets",
              "vs_benchmark_pearson_pct", "vs_benchmark_spearman_pct")
_AGG_HEADER = ("group", "weighting", "horizon", "statistic", "n_windows", "mean", "std", "t_stat",
               "share_positive")
_TF_HEADER = ("variant", "biased", "timeframe_min", "group", "weighting", "buckets_scored", "n_trades",
              "gross_return_pct", "net_return_pct", "mean_gross_bps_per_trade", "mean_net_bps_per_trade",
              "hit_rate", "sharpe_gross", "sharpe_net", "fee_bps")
_IO_HEADER = ("group", "horizon", "weighting", "in_sample_pearson", "oos_pearson_mean", "oos_pearson_std",
              "ratio_pearson", "in_sample_spearman", "oos_spearman_mean", "oos_spearman_std",
              "ratio_spearman", "in_sample_buckets", "oos_windows")
OUTPUT_FILES = ("ic.md", "ic.json", "ic_table.csv", "ic_windows.csv", "ic_aggregate.csv",
                "timeframes.csv", "insample_outsample_comparison.csv", "insample_vs_outsample_ic_size.png")


def _ic_rows(tables):
    for t in tables:
        for r in t.rows:
            yield (t.label, r.group, r.weighting, r.horizon, r.pearson, r.spearman, r.n_buckets,
                   r.vs_benchmark_pearson_pct, r.vs_benchmark_spearman_pct)


def _pct(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:+.0f}%"


def _vs_cell(v: float, bench, statistic: str) -> str:
    """A vs-benchmark percentage, or why there is none: the benchmark itself, or a benchmark IC
    not above its own standard error (a ratio against noise)."""
    if math.isfinite(v):
        return _pct(v)
    ic = getattr(bench, statistic)
    if bench is not None and math.isfinite(ic) and below_its_error(ic, bench.n_buckets):
        return f"n/a (|IC_all| {abs(ic):.3f} <= SE {ic_standard_error(ic, bench.n_buckets):.3f})"
    return "-"


def _ratio_cell(v: float, ic: float, n: int) -> str:
    if math.isfinite(v):
        return _num(v, 2)
    if math.isfinite(ic) and below_its_error(ic, n):
        return f"n/a (|IS| <= SE {ic_standard_error(ic, n):.3f})"
    return "-"


def _sharpe_cell(v: float, buckets: int) -> str:
    return f"{v:.2f} ({buckets:,})" if math.isfinite(v) else f"n/a ({buckets:,} buckets)"


def _num(v: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def _markdown(study: ICStudy) -> str:
    s = study.settings
    c = study.counts
    lines = [f"# Signal study: {study.tape}", "",
             f"Days {_span(study.days)} ({len(study.days)}), grouped by **{study.group_by}**, "
             f"buckets of {s.bucket_s:g} s aligned to the epoch on {s.time_key} time; "
             f"{c.get('trades_known_side', 0):,} trades of known side "
             f"({c.get('unknown_side', 0):,} of unknown side left out).", "",
             "Signal at bucket b's close = OFI of the trades in bucket b; target r_h = ln(mid_close[b+h] / "
             "mid_close[b]) (r_1 = FRNB). vs benchmark = (IC - IC_all) / |IC_all|, not given when "
             "|IC_all| is not above its standard error sqrt((1 - IC^2) / (buckets - 2)).", ""]
    lines += [f"## IC, all days pooled ({study.pooled.label}, Experiment 2)", ""]
    for w in WEIGHTINGS:
        for h in s.horizons:
            rows = [r for r in study.pooled.rows if r.weighting == w and r.horizon == h]
            bench = next((r for r in rows if r.group == ALL_TRADES), None)
            rows.sort(key=lambda r: -r.pearson if math.isfinite(r.pearson) else math.inf)
            lines += [f"**{w}-weighted OFI vs r_{h}**", "",
                      markdown_table(("group", "Pearson IC", "Spearman IC", "buckets", "vs benchmark (Pearson)",
                                      "vs benchmark (Spearman)"),
                                     [(r.group, _num(r.pearson), _num(r.spearman), r.n_buckets,
                                       "-" if r is bench else _vs_cell(r.vs_benchmark_pearson_pct, bench, "pearson"),
                                       "-" if r is bench else _vs_cell(r.vs_benchmark_spearman_pct, bench, "spearman"))
                                      for r in rows], align="lrrrrr")]
    if study.aggregate is not None:
        lines += [f"## IC across {len(study.windows)} daily windows", "",
                  "t = mean / (std / sqrt(n)); with ~288 five-minute buckets a day one day's Pearson IC "
                  "has a standard error near 0.06."
                  + (f" These days include the in-sample days {study.in_out.in_sample_label}; the "
                     "out-of-sample days alone are summarized in the in vs out of sample section."
                     if study.in_out is not None else ""), "",
                  markdown_table(("group", "weighting", "h", "statistic", "windows", "mean", "std", "t",
                                  "share > 0"),
                                 [(r.group, r.weighting, r.horizon, r.statistic, r.n_windows, _num(r.mean),
                                   _num(r.std), _num(r.t_stat, 2), _num(r.share_positive, 2))
                                  for r in study.aggregate.rows], align="lllllrrrr")]
    tf = study.timeframes
    rule = tf.rule
    tf_cols = ("variant", "min", "group", "weighting", "buckets", "trades", "gross %", "net %", "gross bps/trade",
               "net bps/trade", "hit rate", "Sharpe gross (buckets)", "Sharpe net (buckets)")

    def tf_rows(rows):
        return [(r.variant, f"{r.timeframe_min:g}", r.group, r.weighting, r.buckets_scored, r.n_trades,
                 _num(r.gross_return_pct, 2), _num(r.net_return_pct, 2), _num(r.mean_gross_bps_per_trade, 2),
                 _num(r.mean_net_bps_per_trade, 2), _num(r.hit_rate, 2) + (f" ({r.n_trades:,})" if r.n_trades else ""),
                 _sharpe_cell(r.sharpe_gross, r.buckets_scored), _sharpe_cell(r.sharpe_net, r.buckets_scored))
                for r in rows]

    lines += ["## Timeframes: OFI taker, signal at b's close, held over b+1 (Experiment 5)", "",
              f"Position sign(OFI_b) when |OFI_b| > the {rule.quantile:g} quantile of |OFI| over the last "
              f"{rule.window} earlier buckets (flat until {rule.min_history} exist); each trade is a round "
              f"trip paying {tf.fee_bps:g} bps per side; mid to mid (no spread); Sharpe annualized, with the "
              f"buckets scored behind it (n/a under {MIN_BUCKETS_ANNUALISED}).", "",
              markdown_table(tf_cols, tf_rows(tf.honest()), align="llllrrrrrrrrr"),
              f"## {BIASED}", "",
              "**BIASED diagnostic, not a result**: the same positions scored against the return of their "
              "own bucket (CONR), whose flow they summed - the simultaneity trap behind the research log's "
              "\"+369%\". Shown only so the gap to the honest rows above is visible.", "",
              markdown_table(tf_cols, tf_rows(tf.biased()), align="llllrrrrrrrrr")]
    if study.in_out is not None:
        io = study.in_out
        n_oos = len(io.oos_labels)
        lines += [f"## In sample ({io.in_sample_label}) vs out of sample ({n_oos} later "
                  f"day{'' if n_oos == 1 else 's'}, Experiment 9)", "",
                  markdown_table(("group", "h", "weighting", "IS Pearson", "OOS mean", "OOS std", "ratio",
                                  "IS Spearman", "OOS mean", "OOS std", "ratio", "IS buckets", "OOS days"),
                                 [(r.group, r.horizon, r.weighting, _num(r.in_sample_pearson), _num(r.oos_pearson_mean),
                                   _num(r.oos_pearson_std),
                                   _ratio_cell(r.ratio_pearson, r.in_sample_pearson, r.in_sample_buckets),
                                   _num(r.in_sample_spearman), _num(r.oos_spearman_mean), _num(r.oos_spearman_std),
                                   _ratio_cell(r.ratio_spearman, r.in_sample_spearman, r.in_sample_buckets),
                                   r.in_sample_buckets, r.oos_windows) for r in io.rows], align="lllrrrrrrrrrr"),
                  "ratio = OOS mean / IS IC; not given when the IS IC is not above its standard error.", ""]
        summary = []
        for g in study.signals.group_names:
            for w in WEIGHTINGS:
                io_rows = [r for r in io.rows if r.group == g and r.weighting == w]
                summary.append((g, w, _num(_nanmean([r.in_sample_pearson for r in io_rows])),
                                _num(_nanmean([r.oos_pearson_mean for r in io_rows]))))
        lines += ["Mean across horizons (the log's Experiment 9 summary):", "",
                  markdown_table(("group", "weighting", "IS Pearson", "OOS Pearson"), summary, align="llrr")]
    if study.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in study.notes] + [""]
    return "\n".join(lines)


def write_ic_outputs(study: ICStudy, out_dir: PathLike, *, overwrite: bool = False) -> dict:
    """Write the study's files into ``out_dir``; return ``{name: path}`` (the plot only if drawn).

    Every file is written atomically; an existing file is refused unless ``overwrite``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} exists and is not a directory")
    if not overwrite:
        clash = [n for n in OUTPUT_FILES if (out / n).exists()]
        if clash:
            raise ParameterError(f"output {out / clash[0]} exists (use --force to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    paths["ic_table.csv"] = write_csv(out / "ic_table.csv", _IC_HEADER, _ic_rows([study.pooled]),
                                      overwrite=overwrite, digits=8)
    paths["ic_windows.csv"] = write_csv(out / "ic_windows.csv", _IC_HEADER, _ic_rows(study.windows),
                                        overwrite=overwrite, digits=8)
    if study.aggregate is not None:
        paths["ic_aggregate.csv"] = write_csv(
            out / "ic_aggregate.csv", _AGG_HEADER,
            ([getattr(r, k) for k in _AGG_HEADER] for r in study.aggregate.rows), overwrite=overwrite, digits=8)
    paths["timeframes.csv"] = write_csv(out / "timeframes.csv", _TF_HEADER,
                                        ([getattr(r, k) for k in _TF_HEADER] for r in study.timeframes.rows),
                                        overwrite=overwrite, digits=6)
    if study.in_out is not None:
        paths["insample_outsample_comparison.csv"] = write_csv(
            out / "insample_outsample_comparison.csv", _IO_HEADER,
            ([getattr(r, k) for k in _IO_HEADER] for r in study.in_out.rows), overwrite=overwrite, digits=8)
        png = out / "insample_vs_outsample_ic_size.png"
        tmp = out / ".insample_vs_outsample_ic_size.tmp.png"
        try:
            drawn = plot_in_vs_out(study.in_out, tmp, weighting="size")
            if drawn:
                os.replace(tmp, png)
                paths[png.name] = png
        finally:
            tmp.unlink(missing_ok=True)
        if not drawn:
            study.notes.append("plot skipped: matplotlib is not installed (pip install clusterlob[plot])")
    paths["ic.json"] = write_json(out / "ic.json", study.to_dict(), overwrite=overwrite)
    paths["ic.md"] = write_markdown(out / "ic.md", _markdown(study), overwrite=overwrite)
    return paths


# -- command line -------------------------------------------------------------------------------
