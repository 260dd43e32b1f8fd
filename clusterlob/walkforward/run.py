"""The whole walk-forward: cache, windows, aggregation, and the files it writes.

Files in ``OUT_DIR`` (all written atomically; an existing one is never replaced unless
``overwrite=True``; the ``cache/`` folder is reused across runs):

==========================  ==================================================================
``summary.md``              what ran, skipped windows, OOS IC per role, equity, stability
``summary.json``            everything below in one document (the CLI's ``--json`` output)
``windows.json``            per window: dates, centres, roles and scores, ICs, taker results
``ic_windows.csv``          one row per window, group, weighting, horizon (Pearson, Spearman)
``ic_aggregate.csv``        OOS IC mean, std, t and share positive per role (and all trades)
``equity.csv``              per test bucket: net log return and cumulated equity per group
``stability.csv``           label stability of consecutive windows, rule and distance roles
``models/window_NNN.json``  the fitted model of every window (``clusterlob.model`` JSON)
``rolling_pnl.png``         concatenated OOS equity per role (needs matplotlib, else a note)
==========================  ==================================================================
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .._io import begin_output, check_local_dir, finish_output
from ..errors import ParameterError, TapeError
from .._typing import PathLike
from ..features.settings import FeatureSettings
from ..cluster.model import save_model
from ..report import arrow_table, markdown_table, to_jsonable, write_csv, write_json, write_markdown
from ..cluster.roles import ROLE_NAMES
from ..signals.ic import ICAggregate, ICRow
from ..signals.ofi import ALL_TRADES
from ..tape.location import TapeSource, resolve_tape
from .cache import atomic_path, build_cache, plan_cache
from .windows import (StabilityRow, WalkForwardSettings, WindowResult, aggregate, fit_windows, plan_windows,
                      score_windows, stability_rows)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["OUTPUT_FILES", "WalkForwardResult", "run_walkforward", "write_outputs", "check_outputs_free"]

OUTPUT_FILES = ("summary.md", "summary.json", "windows.json", "ic_windows.csv", "ic_aggregate.csv",
                "equity.csv", "stability.csv", "rolling_pnl.png")
GROUPS = (ALL_TRADES,) + ROLE_NAMES


@dataclass(frozen=True)
class WalkForwardResult:
    """Result of :func:`run_walkforward`.

    Attributes
    ----------
    settings : FeatureSettings
    walkforward : WalkForwardSettings
    days : tuple of dict
        Every tape day: date, trades, valid rows, cache key and whether it was reused.
    windows : tuple of WindowResult
    ic_aggregate : ICAggregate or None
        OOS IC mean, std, t and share positive per group, weighting, horizon, statistic.
    equity_times_us : ndarray, shape (n,)
        Start of every scored test bucket, all windows in order.
    equity : dict
        ``{group: (n,) cumulated net log return}`` (the concatenated OOS equity).
    stability : tuple of StabilityRow
    notes : tuple of str
        Gaps, empty days, skipped windows, unassigned roles.
    timing : dict
        Seconds spent in the cache build and the window fits.
    """

    settings: FeatureSettings
    walkforward: WalkForwardSettings
    days: tuple
    windows: tuple[WindowResult, ...]
    ic_aggregate: ICAggregate | None
    equity_times_us: np.ndarray
    equity: dict[str, np.ndarray]
    stability: tuple[StabilityRow, ...]
    notes: tuple
    timing: dict = field(default_factory=dict)

    @property
    def fitted(self) -> tuple:
        return tuple(w for w in self.windows if w.status == "fitted")

    def to_dict(self) -> dict:
        return {"feature_settings": self.settings.to_dict(), "feature_settings_key": self.settings.key(),
                "walkforward": self.walkforward.to_dict(), "days": list(self.days),
                "windows": [w.to_dict() for w in self.windows],
                "ic_aggregate": None if self.ic_aggregate is None else self.ic_aggregate.to_dict(),
                "final_equity_pct": {g: (100.0 * float(v[-1]) if v.size else 0.0)
                                     for g, v in self.equity.items()},
                "stability": [s.to_dict() for s in self.stability],
                "notes": list(self.notes), "timing": dict(self.timing)}

    def ic_to_arrow(self) -> pa.Table:
        """Out-of-sample IC of every fitted window (the rows of ``ic_windows.csv``): ``window``,
        ``test_days``, then the fields of :class:`~clusterlob.signals.ic.ICRow`."""
        names = [f.name for f in fields(ICRow)]
        rows = [(w.plan.index, w.ic.label, r) for w in self.fitted if w.ic is not None for r in w.ic.rows]
        columns: dict[str, list] = {"window": [i for i, _, _ in rows], "test_days": [t for _, t, _ in rows]}
        columns.update({name: [getattr(r, name) for _, _, r in rows] for name in names})
        return arrow_table(columns)

    def equity_to_arrow(self) -> pa.Table:
        """The concatenated out-of-sample equity: ``bucket_start_us`` and ``equity_<group>``
        (cumulated net log return) per group."""
        columns = {"bucket_start_us": self.equity_times_us}
        columns.update({f"equity_{g}": v for g, v in self.equity.items()})
        return arrow_table(columns)

    def stability_to_arrow(self) -> pa.Table:
        """Label stability of consecutive windows (the rows of ``stability.csv``)."""
        s = self.stability
        return arrow_table({"window_a": [r.window_a for r in s], "window_b": [r.window_b for r in s],
                            "date": [r.date for r in s],
                            "share_agree_rule": [r.rule.share_agree for r in s],
                            "share_agree_distance": [r.distance.share_agree for r in s],
                            "trades_compared": [r.rule.n_compared for r in s],
                            "adjusted_rand": [r.adjusted_rand for r in s]})


def check_outputs_free(out_dir: PathLike, overwrite: bool = False) -> None:
    """Raise ParameterError naming the first result file that exists (unless ``overwrite``)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"output {out_dir} is a file, expected a directory")
    if overwrite:
        return
    for name in OUTPUT_FILES + ("models",):
        if (out_dir / name).exists():
            raise ParameterError(f"output {out_dir / name} exists (use --force / overwrite=True to replace "
                                 f"the results; the cache/ folder is always reused)")


def _day_notes(statuses, valid_rows: dict, wf: WalkForwardSettings) -> list[str]:
    from .windows import calendar_days
    notes: list[str] = []
    if not statuses:
        return notes
    present = {s.date for s in statuses}
    gaps = [d for d in calendar_days(statuses[0].date, statuses[-1].date) if d not in present]
    if gaps:
        notes.append(f"gap: {len(gaps)} calendar day(s) not in the tape ({', '.join(gaps)}); windows "
                     f"containing them are skipped; the rolling z-score state carries across the gap "
                     f"as in one pass over the tape")
    for s in statuses:
        if s.trades == 0:
            notes.append(f"empty day {s.date}: no trades")
        elif valid_rows[s.date] < wf.min_day_rows:
            notes.append(f"empty day {s.date}: {valid_rows[s.date]} valid feature rows "
                         f"(< min_day_rows {wf.min_day_rows})")
    return notes


def _check_long_enough(tape_dir, dates: list, wf: WalkForwardSettings) -> None:
    """One line, before any work, when the tape's calendar span cannot hold a single window."""
    from .windows import calendar_days
    span = len(calendar_days(dates[0], dates[-1])) if dates else 0
    need = wf.train_days + wf.test_days
    if span < need:
        where = f" ({dates[0]} .. {dates[-1]})" if dates else ""
        raise ParameterError(f"tape {tape_dir} is too short for a walk-forward window: it spans {span} "
                             f"day(s){where}, a window needs `train_days` + `test_days` = "
                             f"{wf.train_days} + {wf.test_days} = {need}")


def run_walkforward(tape_dir: TapeSource, out_dir: PathLike, settings: FeatureSettings = FeatureSettings(),
                    wf: WalkForwardSettings = WalkForwardSettings(), *, executor: Executor | None = None,
                    progress: Callable[[str, int, int, str | None], None] | None = None) -> WalkForwardResult:
    """Rolling walk-forward over a tape directory (Experiments 3 and 4).

    Parameters
    ----------
    tape_dir : str or Path
        Tape directory (one Parquet file per day and kind, ``manifest.json``): a local folder or
        a URI ``pyarrow.fs`` opens (``file://``, ``s3://``, ...); the outputs stay local.
    out_dir : str or Path
        Output folder; its ``cache/`` sub-folder holds the daily feature cache (reused).
    settings : FeatureSettings
    wf : WalkForwardSettings
    executor : concurrent.futures.Executor, optional
        Runs the per-day feature builds and the per-window fits (a process pool, a dask
        ``client.get_executor()``); None runs everything in this process.
    progress : callable, optional
        ``progress(stage, done, total, label)`` with stage ``"features"`` or ``"windows"``.

    Returns
    -------
    WalkForwardResult
        Nothing is written besides the cache; see :func:`write_outputs`.
    """
    if not isinstance(settings, FeatureSettings):
        raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
    if not isinstance(wf, WalkForwardSettings):
        raise ParameterError(f"`wf` must be a WalkForwardSettings, got {type(wf).__name__}")
    if executor is not None and not isinstance(executor, Executor) and not hasattr(executor, "submit"):
        raise ParameterError(f"`executor` must be a concurrent.futures.Executor, got {type(executor).__name__}")
    tape_dir = resolve_tape(tape_dir).task_text()       # what the tasks carry (text, not a filesystem)
    check_local_dir(out_dir, "`out_dir`")
    cache_dir = Path(out_dir) / "cache"
    planned = plan_cache(tape_dir, settings, cache_dir)
    _check_long_enough(tape_dir, [s.date for s in planned], wf)
    reused = {s.date for s in planned if s.cached}
    t0 = time.perf_counter()
    statuses = build_cache(tape_dir, settings, cache_dir, executor=executor,
                           progress=None if progress is None else
                           (lambda date, done, total: progress("features", done, total, date)))
    t_cache = time.perf_counter() - t0
    from .cache import cache_day_paths, read_cache_meta
    metas = {s.date: read_cache_meta(cache_day_paths(cache_dir, settings, s.date)[1]) for s in statuses}
    unreadable = [d for d, m in metas.items() if m is None]
    if unreadable:                           # built a moment ago: removed or damaged since
        raise TapeError(f"feature cache file of day {unreadable[0]} in {cache_dir} is missing or "
                        f"unreadable ({len(unreadable)} day(s)); run again to rebuild it")
    valid_rows = {d: int(m["counts"].get("valid_rows", 0)) for d, m in metas.items() if m is not None}
    notes = _day_notes(statuses, valid_rows, wf)
    plans = plan_windows(valid_rows, wf)
    if not plans:
        notes.append(f"no window: the tape spans {len(valid_rows)} day(s), a window needs "
                     f"{wf.train_days} + {wf.test_days}")
    t1 = time.perf_counter()
    fits = fit_windows(tape_dir, cache_dir, settings, wf, plans, executor=executor,
                       progress=None if progress is None else
                       (lambda plan, done, total: progress("windows", done, total, ",".join(plan.test_days))))
    t_fit = time.perf_counter() - t1
    results = score_windows(plans, fits, wf)
    stability = stability_rows(results, fits)
    del fits
    for r in results:
        if r.status == "skipped":
            notes.append(f"window {r.plan.index} (test {','.join(r.plan.test_days)}) skipped: {r.reason}")
        for role in r.unassigned:
            notes.append(f"window {r.plan.index} (test {','.join(r.plan.test_days)}): role {role} "
                         f"unassigned, its signal is flat")
    fitted = [r for r in results if r.status == "fitted"]
    times = np.concatenate([r.pnl_times_us for r in fitted]) if fitted else np.empty(0, np.int64)
    equity = {g: np.cumsum(np.concatenate([r.pnl[g] for r in fitted])) if fitted else np.empty(0)
              for g in GROUPS}
    days = tuple({"date": s.date, "trades": s.trades, "valid_rows": valid_rows[s.date], "key": s.key,
                  "reused_from_cache": s.date in reused} for s in statuses)
    return WalkForwardResult(settings, wf, days, tuple(results), aggregate(results), times, equity,
                             tuple(stability), tuple(notes),
                             {"cache_s": round(t_cache, 3), "windows_s": round(t_fit, 3),
                              "days_built": len(statuses) - len(reused), "days_reused": len(reused)})


# -- files ----------------------------------------------------------------------------------

def _fmt(x, digits=3) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _markdown(result: WalkForwardResult, plot_note: str) -> str:
    wf = result.walkforward
    fitted = result.fitted
    lines = [f"# Walk-forward: train {wf.train_days} day(s), test {wf.test_days}, step {wf.step_days}", "",
             f"Alignment: **{wf.alignment}** (both are reported in stability). k = {wf.fit.k}, seed {wf.fit.seed}, "
             f"fit sample {wf.fit.fit_sample}, margin {wf.fit.margin}; buckets {wf.bucket_s:g} s; taker fee "
             f"{wf.fee_bps:g} bps per side, threshold q{wf.threshold.quantile:g} of past |OFI| "
             f"(window {wf.threshold.window}, min history {wf.threshold.min_history}).",
             f"Features: {result.settings.to_dict()} (key {result.settings.key()}).", "",
             f"Days: {len(result.days)} ({sum(d['reused_from_cache'] for d in result.days)} reused from the "
             f"cache). Windows: {len(result.windows)}, fitted {len(fitted)}, "
             f"skipped {len(result.windows) - len(fitted)}.", ""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    lines += ["## Windows", ""]
    rows = []
    for w in result.windows:
        head = [w.plan.index, w.plan.train_days[0] + ".." + w.plan.train_days[-1], ",".join(w.plan.test_days)]
        if w.status != "fitted":
            rows.append(head + ["skipped"] + [""] * 7 + [w.reason])
            continue
        ic_rows = [r for r in (w.ic.rows if w.ic is not None else ())
                   if r.weighting == "size" and r.horizon == wf.horizons[0]]
        ic = {r.group: r.pearson for r in ic_rows}
        buckets = max((r.n_buckets for r in ic_rows), default=0)
        pnl = {t.group: t.net_return_pct for t in w.taker}
        rows.append(head + ["/".join(w.to_dict()["roles"])] + [buckets] + [ic.get(g, math.nan) for g in ROLE_NAMES]
                    + [pnl.get(g, math.nan) for g in ROLE_NAMES] + [", ".join(w.unassigned)])
    short = [g[:3] for g in ROLE_NAMES]
    lines.append(markdown_table(["window", "train", "test", "cluster roles", "IC buckets"]
                                + [f"IC {g}" for g in short] + [f"net % {g}" for g in short] + ["unassigned"],
                                rows, digits=3, align=["l"] * 4 + ["r"] * 7 + ["l"]))
    lines.append(f"IC: Pearson of the role's size-weighted OFI with r_{wf.horizons[0]} over the test "
                 f"buckets (IC buckets of them; one day's IC over 288 buckets has a standard error near "
                 f"0.06); net %: the honest taker (next-bucket return, fees) on the test day.")
    lines += ["", "## Out-of-sample IC across windows (size weighting)", ""]
    if result.ic_aggregate is not None:
        rows = [[r.group, r.horizon, r.statistic, r.n_windows, r.mean, r.std, r.t_stat, r.share_positive]
                for r in result.ic_aggregate.rows if r.weighting == "size"]
        lines.append(markdown_table(["group", "horizon", "statistic", "windows", "mean", "std", "t",
                                     "share > 0"], rows, digits=3, align=["l"] + ["r"] * 7))
    else:
        lines.append("No fitted window, no IC.")
    lines += ["", "## Concatenated out-of-sample taker equity (net log return, %)", ""]
    lines.append(markdown_table(["group", "final equity %", "buckets"],
                                [[g, 100.0 * float(v[-1]) if v.size else 0.0, int(v.size)]
                                 for g, v in result.equity.items()], digits=3, align=["l", "r", "r"]))
    lines += ["", plot_note, "", "## Label stability of consecutive windows", "",
              "Share of the later window's first test-day trades that both fits give the same role.", ""]
    if result.stability:
        lines.append(markdown_table(["windows", "day", "rule", "distance", "adjusted Rand"],
                                    [[f"{s.window_a}->{s.window_b}", s.date, s.rule.share_agree,
                                      s.distance.share_agree, s.adjusted_rand] for s in result.stability],
                                    digits=3, align=["l", "l", "r", "r", "r"]))
    else:
        lines.append("Fewer than two consecutive fitted windows.")
    lines += ["", f"Timing: {result.timing}", ""]
    return "\n".join(lines)


def _plot(result: WalkForwardResult, path: Path, overwrite: bool) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "rolling_pnl.png not drawn: matplotlib is not installed (pip install 'clusterlob[plot]')."
    if path.exists() and not overwrite:
        raise ParameterError(f"output file {path} exists (use --force / overwrite=True to replace it)")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = (result.equity_times_us - (result.equity_times_us[0] if result.equity_times_us.size else 0)) / 86_400e6
    for g, v in result.equity.items():
        ax.plot(x, 100.0 * v, label=g, lw=1.4 if g != ALL_TRADES else 1.0, ls="-" if g != ALL_TRADES else "--")
    for w in result.fitted:
        ax.axvline((w.pnl_times_us[0] - result.equity_times_us[0]) / 86_400e6 if w.pnl_times_us.size else 0,
                   color="0.85", lw=0.6, zorder=0)
    ax.set_xlabel("days since the first test bucket")
    ax.set_ylabel("cumulated net log return, %")
    ax.set_title("Out-of-sample taker equity per role (walk-forward, concatenated test days)")
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return "![rolling_pnl](rolling_pnl.png)"


def write_outputs(result: WalkForwardResult, out_dir: PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write the result files listed in the module doc into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    check_outputs_free(out_dir, overwrite)
    begin_output(out_dir, "walkforward")      # a kill before finish_output leaves it resumable
    written = []
    for w in result.fitted:
        written.append(save_model(w.model, out_dir / "models" / f"window_{w.plan.index:03d}.json",
                                  overwrite=overwrite))
    doc = to_jsonable(result.to_dict())
    written.append(write_json(out_dir / "windows.json", doc["windows"], overwrite=overwrite))
    ic_rows = []
    for w in result.fitted:
        if w.ic is not None:
            ic_rows += [[w.plan.index, w.ic.label, r.group, r.weighting, r.horizon, r.pearson, r.spearman,
                         r.n_buckets] for r in w.ic.rows]
    written.append(write_csv(out_dir / "ic_windows.csv", ["window", "test_days", "group", "weighting",
                                                          "horizon", "pearson", "spearman", "buckets"],
                             ic_rows, overwrite=overwrite))
    agg = result.ic_aggregate.rows if result.ic_aggregate is not None else ()
    written.append(write_csv(out_dir / "ic_aggregate.csv", ["group", "weighting", "horizon", "statistic",
                                                            "windows", "mean", "std", "t", "share_positive"],
                             [[r.group, r.weighting, r.horizon, r.statistic, r.n_windows, r.mean, r.std,
                               r.t_stat, r.share_positive] for r in agg], overwrite=overwrite))
    pnl = {g: np.concatenate([w.pnl[g] for w in result.fitted]) if result.fitted else np.empty(0)
           for g in GROUPS}
    window_of = np.concatenate([np.full(w.pnl_times_us.shape[0], w.plan.index) for w in result.fitted]) \
        if result.fitted else np.empty(0, np.int64)
    header = ["window", "bucket_start_us"] + [f"net_{g}" for g in GROUPS] + [f"equity_{g}" for g in GROUPS]
    rows = ([int(window_of[i]), int(result.equity_times_us[i])] + [pnl[g][i] for g in GROUPS]
            + [result.equity[g][i] for g in GROUPS] for i in range(result.equity_times_us.shape[0]))
    written.append(write_csv(out_dir / "equity.csv", header, rows, overwrite=overwrite, digits=9))
    written.append(write_csv(out_dir / "stability.csv",
                             ["window_a", "window_b", "date", "share_agree_rule", "share_agree_distance",
                              "trades_compared", "adjusted_rand"],
                             [[s.window_a, s.window_b, s.date, s.rule.share_agree, s.distance.share_agree,
                               s.rule.n_compared, s.adjusted_rand] for s in result.stability],
                             overwrite=overwrite))
    plot_note = _plot(result, out_dir / "rolling_pnl.png", overwrite)
    if plot_note.startswith("!"):
        written.append(out_dir / "rolling_pnl.png")
    written.append(write_json(out_dir / "summary.json", {**doc, "plot": plot_note}, overwrite=overwrite))
    written.append(write_markdown(out_dir / "summary.md", _markdown(result, plot_note), overwrite=overwrite))
    finish_output(out_dir, "walkforward", written)
    return written
