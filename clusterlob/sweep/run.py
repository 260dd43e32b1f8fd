"""Parameter sweeps: every config of a grid replayed over every chosen day, on any executor.

:func:`run_sweep` plans one :class:`~clusterlob.sweep.tasks.ReplayTask` per (model, day,
config), runs them on an executor (None: this process; a :class:`clusterlob._exec.LocalProcesses`;
a Dask ``client.get_executor()``) and returns a :class:`SweepResult` whose rows are in grid
order whatever order the tasks finished in, so the same grid gives identical results on any
executor and any number of workers (the replay is deterministic; the K-Means++ fits are seeded).

With an output folder every finished task is written at once, atomically, to
``OUT/tasks/<task key>.json``; a killed sweep run again skips the finished tasks.  The
clusters: model files, or a fit on the ``train_days`` days before each day (``[fit]``),
saved as ``OUT/models/fit-DAY.json`` (reused when its training days and settings match).
Trades get their roles from the walk-forward's daily feature cache (``OUT/cache`` by
default), which equals one pass over the tape, so the z-score windows carry across days.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._exec import executor_workers
from .._io import check_local_dir, write_text
from .._typing import Days, PathLike, Say
from ..cluster.fit import FitSettings
from ..cluster.model import fit_model, load_model, save_model
from ..errors import ParameterError, TapeError
from ..features.settings import FeatureSettings
from ..tape.location import TapeSource, resolve_tape
from ..tape.store import read_manifest
from ..tape.types import Instrument, parse_days
from ..walkforward.cache import build_cache, load_cached_day
from ..walkforward.windows import calendar_days
from .grid import Grid, load_grid, make_grid
from .tasks import SUMMARY_COLUMNS, ReplayTask, model_key, pooled_sharpe, run_replay_task

__all__ = ["SweepResult", "run_sweep", "run_tasks", "as_grid", "prepare_cache", "fit_day_model"]


def as_grid(grid: Grid | dict | PathLike) -> Grid:
    """A :class:`Grid` from a Grid, a dict (the TOML form) or a TOML file path."""
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, dict):
        return make_grid(grid)
    if isinstance(grid, (str, Path)):
        return load_grid(grid)
    raise ParameterError(f"`grid` must be a Grid, a dict or a TOML file path, got {type(grid).__name__}")


# -- the feature cache and the models ----------------------------------------------------------------

def prepare_cache(tape: PathLike, settings: FeatureSettings, cache_dir: PathLike, last_day: str,
                  executor: Executor | None, progress: Say | None) -> dict:
    """Build the feature cache up to ``last_day``; return ``{date: (cache key, valid rows)}``."""
    say = progress or (lambda line: None)

    def step(date, done, total):
        if date is not None:
            say(f"features {done}/{total} days ({date})")

    statuses = build_cache(tape, settings, cache_dir, executor=executor, progress=step, last_day=last_day)
    out = {}
    for s in statuses:
        if s.cached:
            day = load_cached_day(cache_dir, settings, s.date, z=False)
            out[s.date] = (s.key, int(day.counts.get("valid_rows", int(day.valid.sum()))))
    return out


def _fit_key(train_days, fit: FitSettings, settings: FeatureSettings, day_keys) -> str:
    import hashlib
    doc = {"train_days": list(train_days), "fit": fit.to_dict(), "features": settings.to_dict(),
           "day_keys": list(day_keys)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def fit_day_model(tape: str, cache_dir: str, settings: FeatureSettings, train_days: tuple, fit: FitSettings,
                  path: str, key: str) -> str:
    """Fit K-Means++ on the cached z-scores of ``train_days`` and save the model to ``path``
    (runs in a worker, like a window fit of the walk-forward).  Returns ``path``."""
    parts = []
    for d in train_days:
        day = load_cached_day(cache_dir, settings, d)
        assert day.z is not None            # loaded with z (the default)
        parts.append(np.compress(day.valid, day.z, axis=0))
    z = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if z.shape[0] < fit.k:
        raise TapeError(f"only {z.shape[0]} valid feature rows on {train_days[0]}..{train_days[-1]}: "
                        f"too few to fit {fit.k} clusters")
    model, _ = fit_model(z, settings, k=fit.k, n_init=fit.n_init, max_iter=fit.max_iter, tol=fit.tol,
                         seed=fit.seed, fit_sample=fit.fit_sample, margin=fit.margin,
                         source={"tape": str(tape), "days": list(train_days), "sweep_fit_key": key})
    save_model(model, path, overwrite=True)
    return path


def _model_is(path: Path, key: str) -> bool:
    if not path.is_file():
        return False
    try:
        return load_model(path).source.get("sweep_fit_key") == key
    except ParameterError:
        return False


def fit_models(tape: str, cache_dir: str, settings: FeatureSettings, fit: FitSettings, jobs: dict,
               models_dir: Path, executor: Executor | None, progress: Say | None) -> dict:
    """Fit one model per entry of ``jobs`` (``{name: training days}``) on the executor, reusing
    a model file of the same key; return ``{name: (path, model key)}``."""
    say = progress or (lambda line: None)
    keys = {}
    todo = []
    for name, train in jobs.items():
        path = models_dir / f"{name}.json"
        key = _fit_key(train, fit, settings, [_cache_key(cache_dir, settings, d) for d in train])
        keys[name] = (path, key)
        if not _model_is(path, key):
            todo.append(name)
    args = [(str(tape), str(cache_dir), settings, tuple(jobs[n]), fit, str(keys[n][0]), keys[n][1]) for n in todo]
    if executor is None:
        for n, a in zip(todo, args):
            fit_day_model(*a)
            say(f"fitted {n} on {a[3][0]}..{a[3][-1]}")
    else:
        futures = [executor.submit(fit_day_model, *a) for a in args]
        for n, a, f in zip(todo, args, futures):
            f.result()
            say(f"fitted {n} on {a[3][0]}..{a[3][-1]}")
    return {n: (str(p), model_key(p)) for n, (p, _) in keys.items()}


def _cache_key(cache_dir, settings, date) -> str:
    from ..walkforward.cache import cache_day_paths, read_cache_meta
    meta = read_cache_meta(cache_day_paths(Path(cache_dir), settings, date)[1]) or {}
    return str(meta.get("key"))


# -- running tasks --------------------------------------------------------------------------------

def _read_record(path: Path, key: str) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def run_tasks(tasks: list, executor: Executor | None, results_dir: Path | None, progress: Say | None = None,
              label: str = "replays") -> dict:
    """Run replay tasks (skipping those with a finished result file); return ``{key: record}``.

    At most a few tasks per worker are in flight, submitted in the given order (group tasks of
    one day together so a worker reads the day once).  Each finished record is written to
    ``results_dir/<key>.json`` at once, atomically.
    """
    say = progress or (lambda line: None)
    out: dict = {}
    todo = []
    seen = set()
    for t in tasks:
        key = t.key
        if key in seen:
            continue
        seen.add(key)
        if results_dir is not None:
            record = _read_record(results_dir / f"{key}.json", key)
            if record is not None:
                out[key] = record
                continue
        todo.append(t)
    if out:
        say(f"{label}: {len(out)} finished task(s) reused, {len(todo)} to run")
    start = time.perf_counter()
    every = max(1, len(todo) // 20)

    def finish(task, record, n):
        out[task.key] = record
        if results_dir is not None:
            write_text(results_dir / f"{task.key}.json", json.dumps(record), force=True)
        if n % every == 0 or n == len(todo):
            el = time.perf_counter() - start
            say(f"{label} {n}/{len(todo)}, {el:.1f} s elapsed" + (f", ETA {el / n * (len(todo) - n):.0f} s"
                                                                 if n < len(todo) else ""))

    if executor is None:
        for n, t in enumerate(todo, 1):
            finish(t, run_replay_task(t), n)
        return out
    window = 4 * executor_workers(executor)
    pending: dict = {}
    nxt = 0
    done = 0
    from concurrent.futures import FIRST_COMPLETED, wait
    while nxt < len(todo) or pending:
        while nxt < len(todo) and len(pending) < window:
            pending[executor.submit(run_replay_task, todo[nxt])] = todo[nxt]
            nxt += 1
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for f in finished:
            task = pending.pop(f)
            done += 1
            finish(task, f.result(), done)
    return out


# -- the sweep -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` found.

    Attributes
    ----------
    grid : Grid
    tape : str
    days : tuple of str
        Days swept (each with a model).
    models : tuple of dict
        ``{"name", "file", "key", "days"}`` per model used.
    rows : tuple of dict
        One row per (model, day, config) in grid order: ``model`` (the model file's index, or 0
        for ``[fit]``: one source, a model per day), ``model_name`` (file stem, or ``fit-DAY``), ``day``, ``config`` (the
        point's index), the swept values, every config field, every numeric summary field
        (``pnl_total`` and its split, ``sharpe_1min`` over ``minutes`` one-minute changes,
        ``fills``, ``volume``, ``largest_inventory``, ...).
    records : dict
        ``{(model, day, config): task record}`` (hourly PnL, pooled minute statistics).
    skipped : tuple of str
        Days skipped and why (no model could be fit, no trades).
    timing : dict
    currency : str
        The currency every PnL figure is in: the tape instrument's settlement currency (USDT
        for BTCUSDT; the coin for an inverse contract).
    """

    grid: Grid
    tape: str
    days: tuple
    models: tuple
    rows: tuple
    records: dict = field(repr=False, default_factory=dict)
    skipped: tuple = ()
    timing: dict = field(default_factory=dict)
    currency: str = ""

    def columns(self) -> dict:
        """The rows as columns (for Parquet)."""
        if not self.rows:
            return {}
        return {name: [r[name] for r in self.rows] for name in self.rows[0]}

    def by_config(self) -> list[dict]:
        """Per (model, config), over the swept days: PnL and its split summed, pooled Sharpe of
        the one-minute changes with their count, fills, volume, the largest inventory."""
        groups: dict = {}
        for (m, d, c), rec in self.records.items():
            g = groups.setdefault((m, c), {"model": m, "config": c, "days": 0, "pnl_total": 0.0,
                                           "spread_capture": 0.0, "inventory_drift": 0.0, "fees": 0.0,
                                           "fills": 0, "volume": 0.0, "largest_inventory": 0.0,
                                           "_n": 0, "_sum": 0.0, "_sq": 0.0})
            s = rec["summary"]
            g["days"] += 1
            for k in ("pnl_total", "spread_capture", "inventory_drift", "fees", "volume"):
                g[k] += s[k]
            g["fills"] += s["fills"]
            g["largest_inventory"] = max(g["largest_inventory"], s["largest_inventory"])
            mc = rec["minute_changes"]
            g["_n"] += mc["n"]
            g["_sum"] += mc["sum"]
            g["_sq"] += mc["sumsq"]
        out = []
        for key in sorted(groups):
            g = groups[key]
            g["sharpe_1min"] = pooled_sharpe(g.pop("_n"), g.pop("_sum"), g.pop("_sq"))
            g["minutes"] = sum(self.records[(key[0], d, key[1])]["minute_changes"]["n"]
                               for d in self.days if (key[0], d, key[1]) in self.records)
            g["label"] = self.grid.points[key[1]].label
            out.append(g)
        return out

    def to_dict(self) -> dict:
        return {"tape": self.tape, "currency": self.currency, "grid": self.grid.to_dict(), "days": list(self.days),
                "models": list(self.models), "tasks": len(self.rows), "skipped": list(self.skipped),
                "by_config": self.by_config(), "timing": dict(self.timing)}


def day_range(days: Days, available: list) -> list:
    """The chosen days of ``available`` (a day spec; None: all)."""
    if days is None:
        return list(available)
    return parse_days(days.split(",") if isinstance(days, str) and "," in days else days, available)


def row_of(grid: Grid, model: int, day: str, point: int, record: dict) -> dict:
    """One result row: ids, swept values, every config field, every numeric summary field."""
    p = grid.points[point]
    row = {"model": model, "day": day, "config": point, "label": p.label}
    row.update({f"cfg_{k}": v for k, v in p.config.to_dict().items()})
    row.update({k: record["summary"][k] for k in SUMMARY_COLUMNS})
    row["pnl_per_hour_min"] = float(min(record["hourly_pnl"]))
    return row


def run_sweep(tape: TapeSource, grid: Grid | dict | PathLike, days: Days = None, executor: Executor | None = None, *,
              out_dir: PathLike | None = None, cache_dir: PathLike | None = None,
              progress: Say | None = None) -> SweepResult:
    """Replay every config of ``grid`` over every day of ``days``.

    Parameters
    ----------
    tape : str or Path
        Tape directory: a local folder or a URI ``pyarrow.fs`` opens (``file:///abs/tape``,
        ``s3://bucket/tape``, ...).  The tasks carry this text and every worker reads the days
        it needs from there itself; the outputs and the feature cache stay local.
    grid : Grid, dict or path
        The grid (:mod:`clusterlob.sweep.grid`).
    days : str or list, optional
        Day spec (``FROM:TO``, one day, a list); default every day that has a model.
    executor : concurrent.futures.Executor, optional
        Runs the cache build, the fits and the replays; None runs them here.
    out_dir : str or Path, optional
        Folder of the per-task results (``tasks/``, resumable), the fitted models
        (``models/``) and by default the feature cache (``cache/``).  None: a temporary
        folder, removed at the end.
    cache_dir : str or Path, optional
        Feature cache folder (default ``out_dir/cache``); reusable across sweeps.
    progress : callable, optional
        Called with one line of text per step.

    Returns
    -------
    SweepResult
    """
    g = as_grid(grid)
    tape_text = resolve_tape(tape).task_text()
    check_local_dir(out_dir, "`out_dir`")
    check_local_dir(cache_dir, "`cache_dir`")
    t0 = time.perf_counter()
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="clusterlob-sweep-")
        out_dir = tmp
    try:
        return _sweep(tape_text, g, days, executor, Path(out_dir),
                      Path(cache_dir) if cache_dir is not None else Path(out_dir) / "cache",
                      progress, t0, keep_files=tmp is None)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _sweep(tape: str, g: Grid, days, executor, out_dir: Path, cache_dir: Path, progress, t0,
           keep_files: bool) -> SweepResult:
    say = progress or (lambda line: None)
    manifest = read_manifest(tape)
    available = [d["date"] for d in manifest["days"]]
    chosen = day_range(days, available)
    skipped = []
    trades = {d["date"]: int(d.get("trades", 0)) for d in manifest["days"]}
    empty = [d for d in chosen if trades[d] == 0]
    skipped += [f"{d}: no trades in the tape" for d in empty]
    spec = g.models
    # which model labels which day
    plan = []                                    # (model index, name, file or None, settings, days)
    if spec.files:
        for i, f in enumerate(spec.files):
            model = load_model(f)
            plan.append((i, Path(f).stem, f, model.settings, list(chosen)))
        settings_list = {m[3].key(): m[3] for m in plan}
        last = max(chosen)
        infos = {k: prepare_cache(tape, s, cache_dir, last, executor, say) for k, s in settings_list.items()}
        models = [{"name": name, "file": f, "key": model_key(f), "settings": s.key(), "days": ds, "group": i}
                  for i, name, f, s, ds in plan]
    else:
        fit = spec.fit
        assert fit is not None          # a ModelSpec without files has a fit (grid._models)
        settings = spec.features
        info = prepare_cache(tape, settings, cache_dir, max(chosen), executor, say)
        infos = {settings.key(): info}
        jobs = {}
        for d in chosen:
            if d in empty:
                continue
            cal = calendar_days(available[0], d)
            train = cal[-1 - spec.train_days:-1] if len(cal) > spec.train_days else []
            missing = [x for x in train if x not in info or info[x][1] < fit.k]
            if len(train) < spec.train_days:
                skipped.append(f"{d}: fewer than {spec.train_days} day(s) before it in the tape to fit on")
            elif missing:
                skipped.append(f"{d}: training day(s) {', '.join(missing)} missing or with too few valid "
                               f"feature rows")
            elif d not in info:
                skipped.append(f"{d}: not in the feature cache")
            else:
                jobs[f"fit-{d}"] = tuple(train)
        fitted = fit_models(tape, str(cache_dir), settings, fit, jobs, out_dir / "models", executor, say)
        models = [{"name": n, "file": fitted[n][0], "key": fitted[n][1], "settings": settings.key(),
                   "days": [n[4:]], "train_days": list(jobs[n]), "group": 0} for n in sorted(fitted)]
    # the tasks, day-major so a worker reads a day once for all its configs
    tasks, where, files = [], [], {}
    for m in models:
        settings = _settings_of(m, spec, g)
        info = infos[m["settings"]]
        for d in m["days"]:
            if d in empty:
                continue
            if d not in info:
                skipped.append(f"{d}: not in the feature cache")
                continue
            for p in g.points:
                t = ReplayTask(tape, str(cache_dir), settings, d, info[d][0], m["file"], m["key"], "clusters",
                               p.config)
                tasks.append(t)
                where.append((m["group"], d, p.index))
                files[(m["group"], d)] = m["name"]
    say(f"{len(tasks)} replay task(s): {len(g.points)} config(s) x {len(tasks) // max(1, len(g.points))} "
        f"model-day(s)")
    t1 = time.perf_counter()
    records = run_tasks(tasks, executor, out_dir / "tasks" if keep_files else None, say)
    t2 = time.perf_counter()
    by_where = {w: records[t.key] for w, t in zip(where, tasks)}
    rows = tuple({**row_of(g, m, d, c, by_where[(m, d, c)]), "model_name": files[(m, d)]} for (m, d, c) in where)
    swept = tuple(sorted({d for (_, d, _) in where}))
    return SweepResult(g, tape, swept, tuple(models), rows, by_where, tuple(skipped),
                       {"prepare_s": round(t1 - t0, 3), "replays_s": round(t2 - t1, 3),
                        "tasks": len(tasks)}, Instrument.from_dict(manifest["instrument"]).settlement_currency)


def _settings_of(model: dict, spec, g) -> FeatureSettings:
    if spec.files:
        return load_model(model["file"]).settings
    return spec.features

