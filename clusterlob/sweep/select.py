"""Walk-forward strategy selection: choose on past days, trade the next day.

For each window (``train_days`` days, then the next day; windows as in
:func:`clusterlob.walkforward.plan_windows`, so a gap or an empty day skips a window with the
reason):

1. **fit** K-Means++ on the training days' cached z-scores (the grid's ``[fit]`` settings,
   seeded), as the walk-forward does;
2. **replay every config** of the grid on each training day, trades labelled by that model;
3. **select** one config by the objective over the training days: ``sharpe`` (default; the
   one-minute equity changes of all training days pooled) or ``pnl`` (total), among the configs
   with at least ``min_fills`` fills on the training days; ties go to the first in grid order;
4. **trade** only the selected config on the test day, beside three benchmarks that involve no
   selection: (a) ``default``: the base config (StrategyConfig defaults plus the grid's fixed
   values) on the same clusters; (b) ``all_trades_ofi``: the same maker whose alpha is fed by
   every trade's flow (no clustering, no hazard); (c) ``symmetric``: the same maker with no signal.

Every config is also replayed on the test day, *only* for the diagnostics: the selected
config's out-of-sample rank among all configs, and the probability of backtest overfitting
(:func:`clusterlob.sweep.pbo.cscv_pbo`) over the hourly PnL of every config on every test day.
These results never feed a selection.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import check_int, check_local_dir
from .._typing import Days, PathLike, Say
from ..errors import ParameterError
from ..replay.strategy import StrategyConfig
from ..tape.location import TapeSource, resolve_tape
from ..tape.store import read_manifest
from ..tape.types import Instrument
from ..walkforward.windows import WalkForwardSettings, plan_windows
from .grid import Grid
from .pbo import PBOResult, cscv_pbo
from .run import day_range, as_grid, fit_models, prepare_cache, run_tasks
from .tasks import ReplayTask, pooled_sharpe

__all__ = ["OBJECTIVES", "BENCHMARKS", "WindowChoice", "SelectionResult", "run_selection", "benchmark_configs"]

OBJECTIVES = ("sharpe", "pnl")
#: The benchmarks: name -> (signal source, role changes to the base config).
BENCHMARKS = {
    "default": ("clusters", {}),
    "all_trades_ofi": ("all_trades", {"alpha_role": "directional", "hazard_role": "none"}),
    "symmetric": ("none", {"alpha_role": "none", "hazard_role": "none"}),
}


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ParameterError(f"`objective` must be one of {list(OBJECTIVES)}, got {objective!r}")
    return objective


def benchmark_configs(base: StrategyConfig) -> dict:
    """``{name: (signal, config)}`` of the three benchmarks built on ``base``."""
    return {name: (signal, base.replace(**changes)) for name, (signal, changes) in BENCHMARKS.items()}


@dataclass(frozen=True)
class WindowChoice:
    """One window: what was chosen on the training days and what it did on the test day.

    ``status`` is ``selected``, ``skipped`` (gap, empty day, fit failed: ``reason``) or
    ``no_eligible`` (no config met ``min_fills`` or had a finite objective: nothing traded).
    ``is_*`` are over the training days, ``oos_*`` on the test day; ``oos_rank`` is the
    selected config's rank by the objective among all configs on the test day (1 = best, of
    ``n_configs``).  ``benchmarks`` holds ``{name: {pnl, sharpe, fills, minutes}}``.
    """

    index: int
    train_days: tuple
    test_day: str
    status: str
    reason: str | None = None
    model_file: str | None = None
    chosen: int | None = None
    chosen_label: str = ""
    chosen_mapping: str = ""
    is_value: float = math.nan
    is_pnl: float = math.nan
    is_sharpe: float = math.nan
    is_fills: int = 0
    is_minutes: int = 0
    oos_pnl: float = 0.0
    oos_sharpe: float = math.nan
    oos_fills: int = 0
    oos_minutes: int = 0
    oos_rank: int | None = None
    n_configs: int = 0
    oos_best_label: str = ""
    benchmarks: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SelectionResult:
    """What :func:`run_selection` found.

    Attributes
    ----------
    windows : tuple of WindowChoice
    equity : dict
        ``ts_us``, ``window`` and one cumulated out-of-sample equity column per strategy
        (``selected``, ``default``, ``all_trades_ofi``, ``symmetric``), test days concatenated.
    pbo : PBOResult
        CSCV over the hourly PnL of every config on every test day.
    notes : tuple of str
    currency : str
        The currency every PnL figure is in (the tape instrument's settlement currency).
    """

    tape: str
    grid: Grid
    objective: str
    min_fills: int
    train_days: int
    windows: tuple
    equity: dict
    pbo: PBOResult
    notes: tuple = ()
    mapping_pairs: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    currency: str = ""

    @property
    def selected(self) -> tuple:
        return tuple(w for w in self.windows if w.status == "selected")

    def mapping_counts(self) -> dict:
        """How many windows chose each role mapping (``inverted``, ``traditional``, ``custom``)."""
        return dict(Counter(w.chosen_mapping for w in self.selected))

    def final_equity(self) -> dict:
        return {k: (float(v[-1]) if len(v) else 0.0) for k, v in self.equity.items()
                if k not in ("ts_us", "window")}

    def to_dict(self) -> dict:
        sel = self.selected
        return {"tape": self.tape, "currency": self.currency, "grid": self.grid.to_dict(), "objective": self.objective,
                "min_fills": self.min_fills, "train_days": self.train_days,
                "windows": [w.to_dict() for w in self.windows],
                "counts": {"windows": len(self.windows), "selected": len(sel),
                           "skipped": sum(w.status == "skipped" for w in self.windows),
                           "no_eligible": sum(w.status == "no_eligible" for w in self.windows)},
                "chosen_mapping": self.mapping_counts(),
                "chosen_config": dict(Counter(w.chosen_label for w in sel)),
                "final_equity": self.final_equity(),
                "is_vs_oos": {"is_sharpe_mean": _mean([w.is_sharpe for w in sel]),
                              "oos_sharpe_mean": _mean([w.oos_sharpe for w in sel]),
                              "is_pnl_per_day_mean": _mean([w.is_pnl / max(1, len(w.train_days)) for w in sel]),
                              "oos_pnl_mean": _mean([w.oos_pnl for w in sel]),
                              "oos_rank_mean": _mean([w.oos_rank for w in sel if w.oos_rank is not None]),
                              "n_configs": len(self.grid.points)},
                "mapping_pairs": dict(self.mapping_pairs),
                "pbo": self.pbo.to_dict(), "notes": list(self.notes), "timing": dict(self.timing)}


def _mapping_pairs(g, test_pnls: list) -> dict:
    """Diagnostic: on every test day, configs equal but for their role mapping, compared by PnL.

    ``{"pairs": n, "wins": {mapping: n}, "ties": n, "pnl": {mapping: total}}``; empty when the
    grid does not sweep ``mapping``."""
    if "mapping" not in dict(g.axes):
        return {}
    groups: dict = {}
    for p in g.points:
        rest = tuple((n, v) for n, _, v in p.coords if n != "mapping")
        groups.setdefault(rest, []).append((p.values()["mapping"], p.index))
    wins: Counter[str] = Counter()
    pnl: Counter[str] = Counter()
    ties, pairs = 0, 0
    for day in test_pnls:
        for members in groups.values():
            if len(members) < 2:
                continue
            pairs += 1
            values = {m: day[i] for m, i in members}
            for m, v in values.items():
                pnl[m] += v
            best = max(values.values())
            top = [m for m, v in values.items() if v == best]
            if len(top) > 1:
                ties += 1
            else:
                wins[top[0]] += 1
    return {"pairs": pairs, "wins": dict(wins), "ties": ties, "pnl": {k: float(v) for k, v in pnl.items()}}


def _mean(values) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def _sharpe(record: dict) -> float:
    mc = record["minute_changes"]
    return pooled_sharpe(mc["n"], mc["sum"], mc["sumsq"])


def _value(objective: str, pnl: float, sharpe: float) -> float:
    v = sharpe if objective == "sharpe" else pnl
    return v if math.isfinite(v) else -math.inf


def run_selection(tape: TapeSource, grid: Grid | dict | PathLike, *, train_days: int | None = None, days: Days = None,
                  objective: str = "sharpe", min_fills: int = 0, n_blocks: int = 16, executor: Executor | None = None,
                  out_dir: PathLike | None = None, cache_dir: PathLike | None = None,
                  progress: Say | None = None) -> SelectionResult:
    """Walk-forward strategy selection (see the module doc).

    Parameters
    ----------
    tape : str or Path
        A local folder or a URI, as for :func:`clusterlob.sweep.run_sweep`.
    grid : Grid, dict or path
        Needs ``[fit]`` (the clusters are refit every window), not model files.
    train_days : int, optional
        Training days per window (default: the grid's ``[fit] train_days``).
    days : str or list, optional
        Tape days to use (``FROM:TO``); default all.
    objective : {"sharpe", "pnl"}
    min_fills : int
        Least fills over the training days for a config to be eligible.
    n_blocks : int
        CSCV blocks ``S`` (even).
    executor, out_dir, cache_dir, progress
        As :func:`clusterlob.sweep.run_sweep` (``out_dir`` keeps ``tasks/``, ``models/``,
        ``cache/``; a rerun reuses finished tasks).

    Returns
    -------
    SelectionResult
    """
    check_objective(objective)
    check_int("min_fills", min_fills, 0)
    g = as_grid(grid)
    tape_text = resolve_tape(tape).task_text()
    check_local_dir(out_dir, "`out_dir`")
    check_local_dir(cache_dir, "`cache_dir`")
    spec = g.models
    if spec.files:
        raise ParameterError("strategy selection refits the clusters in every window: give the grid a [fit] "
                             "table, not model files")
    T = spec.train_days if train_days is None else check_int("train_days", train_days, 1)
    say = progress or (lambda line: None)
    import shutil
    import tempfile
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="clusterlob-select-")
        out_dir = tmp
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    try:
        return _select(tape_text, g, T, days, objective, int(min_fills), n_blocks, executor, out_dir, cache_dir,
                       say, keep=tmp is None)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _select(tape, g, T, days, objective, min_fills, n_blocks, executor, out_dir, cache_dir, say, keep):
    t0 = time.perf_counter()
    spec = g.models
    settings = spec.features
    manifest = read_manifest(tape)
    available = [d["date"] for d in manifest["days"]]
    currency = Instrument.from_dict(manifest["instrument"]).settlement_currency
    chosen_days = day_range(days, available)
    info = prepare_cache(tape, settings, cache_dir, max(chosen_days), executor, say)
    valid_rows = {d: info[d][1] for d in chosen_days if d in info}
    wf = WalkForwardSettings(train_days=T, test_days=1, fit=spec.fit, min_day_rows=max(1, spec.fit.k))
    plans = plan_windows(valid_rows, wf)
    notes = []
    if not plans:
        raise ParameterError(f"no window: the chosen days span {len(valid_rows)} day(s) "
                             f"({chosen_days[0]}..{chosen_days[-1]}), a window needs {T} + 1")
    runnable = [p for p in plans if p.skip_reason is None]
    for p in plans:
        if p.skip_reason:
            notes.append(f"window {p.index} (test {p.test_days[0]}) skipped: {p.skip_reason}")
    jobs = {f"window-{p.index:03d}": tuple(p.train_days) for p in runnable}
    models = fit_models(tape, str(cache_dir), settings, spec.fit, jobs, out_dir / "models", executor, say)
    base = StrategyConfig.from_dict(dict(g.fixed), source=f"{g.source} fixed values")
    bench = benchmark_configs(base)
    results_dir = out_dir / "tasks" if keep else None

    def task(p, day, signal, config, equity=False):
        name = f"window-{p.index:03d}"
        mfile, mkey = models[name]
        return ReplayTask(tape, str(cache_dir), settings, day, info[day][0], mfile if signal == "clusters" else None,
                          mkey if signal == "clusters" else "", signal, config, equity)

    phase1 = []
    for p in runnable:
        for d in p.train_days + p.test_days:
            phase1 += [task(p, d, "clusters", pt.config) for pt in g.points]
        phase1 += [task(p, p.test_days[0], sig, cfg, True) for sig, cfg in bench.values()]
    say(f"{len(runnable)} window(s) of {T} training day(s): {len(phase1)} replay task(s)")
    t1 = time.perf_counter()
    records = run_tasks(phase1, executor, results_dir, say, label="replays")

    choices: dict[int, tuple | None] = {}
    phase2 = []
    for p in runnable:
        agg = []
        for pt in g.points:
            recs = [records[task(p, d, "clusters", pt.config).key] for d in p.train_days]
            n = sum(r["minute_changes"]["n"] for r in recs)
            sharpe = pooled_sharpe(n, sum(r["minute_changes"]["sum"] for r in recs),
                                   sum(r["minute_changes"]["sumsq"] for r in recs))
            pnl = float(sum(r["summary"]["pnl_total"] for r in recs))
            fills = int(sum(r["summary"]["fills"] for r in recs))
            agg.append((pt.index, _value(objective, pnl, sharpe), pnl, sharpe, fills, n))
        eligible = [a for a in agg if a[4] >= min_fills and a[1] > -math.inf]
        if eligible:
            best = max(eligible, key=lambda a: (a[1], -a[0]))
            choices[p.index] = best
            phase2.append(task(p, p.test_days[0], "clusters", g.points[best[0]].config, True))
        else:
            choices[p.index] = None
    records.update(run_tasks(phase2, executor, results_dir, say, label="selected replays"))
    t2 = time.perf_counter()

    windows, eq_parts, hourly, test_pnls = [], [], [], []
    offsets = {k: 0.0 for k in ("selected",) + tuple(bench)}
    for p in plans:
        if p.skip_reason is not None:
            windows.append(WindowChoice(p.index, tuple(p.train_days), p.test_days[0], "skipped", p.skip_reason))
            continue
        test = p.test_days[0]
        test_recs = [records[task(p, test, "clusters", pt.config).key] for pt in g.points]
        hourly.append(np.array([r["hourly_pnl"] for r in test_recs]).T)           # (24, N)
        test_pnls.append([r["summary"]["pnl_total"] for r in test_recs])
        test_values = np.array([_value(objective, r["summary"]["pnl_total"], _sharpe(r)) for r in test_recs])
        b_recs = {name: records[task(p, test, sig, cfg, True).key] for name, (sig, cfg) in bench.items()}
        benchmarks = {name: {"pnl": r["summary"]["pnl_total"], "sharpe": _sharpe(r),
                             "fills": r["summary"]["fills"], "minutes": r["summary"]["minutes"]}
                      for name, r in b_recs.items()}
        ts = np.asarray(b_recs["default"]["equity"]["ts_us"], dtype=np.int64)
        cols = {name: np.asarray(r["equity"]["equity"]) for name, r in b_recs.items()}
        best_oos = int(np.argmax(test_values))
        common = dict(model_file=models[f"window-{p.index:03d}"][0], n_configs=len(g.points),
                      oos_best_label=g.points[best_oos].label, benchmarks=benchmarks)
        pick = choices[p.index]
        if pick is None:
            cols["selected"] = np.zeros(ts.shape[0])
            windows.append(WindowChoice(p.index, tuple(p.train_days), test, "no_eligible",
                                        f"no config with >= {min_fills} training fills and a finite {objective}",
                                        **common))
            notes.append(f"window {p.index} (test {test}): no eligible config, nothing traded")
        else:
            idx, value, pnl, sharpe, fills, n = pick
            rec = records[task(p, test, "clusters", g.points[idx].config, True).key]
            cols["selected"] = np.asarray(rec["equity"]["equity"])
            rank = int(1 + np.sum(test_values > test_values[idx]))
            s = rec["summary"]
            windows.append(WindowChoice(p.index, tuple(p.train_days), test, "selected", None,
                                        chosen=idx, chosen_label=g.points[idx].label,
                                        chosen_mapping=g.points[idx].config.mapping, is_value=value,
                                        is_pnl=pnl, is_sharpe=sharpe, is_fills=fills, is_minutes=n,
                                        oos_pnl=s["pnl_total"], oos_sharpe=_sharpe(rec), oos_fills=s["fills"],
                                        oos_minutes=s["minutes"], oos_rank=rank, **common))
        part = {"ts_us": ts, "window": np.full(ts.shape[0], p.index)}
        for k in offsets:
            part[k] = cols[k] + offsets[k]
            offsets[k] = float(part[k][-1])
        eq_parts.append(part)
    keys = ("ts_us", "window", "selected") + tuple(bench)
    equity = {k: (np.concatenate([e[k] for e in eq_parts]) if eq_parts else np.empty(0)) for k in keys}
    matrix = np.vstack(hourly) if hourly else np.empty((0, len(g.points)))
    pbo = cscv_pbo(matrix, n_blocks) if matrix.shape[0] else cscv_pbo(np.zeros((0, len(g.points))), n_blocks)
    return SelectionResult(tape, g, objective, min_fills, T, tuple(windows), equity, pbo, tuple(notes),
                           _mapping_pairs(g, test_pnls),
                           {"prepare_s": round(t1 - t0, 3), "replays_s": round(t2 - t1, 3),
                            "tasks": len(phase1) + len(phase2)}, currency)
