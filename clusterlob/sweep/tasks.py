"""One replay task, as a worker runs it: a tape day, its clusters, one strategy config.

A :class:`ReplayTask` carries paths and small parameter objects only (the tape's path or URI,
the feature cache folder, a model file, the config), never arrays, so it travels cheaply to
a local process or a Dask worker.  The worker keeps the last days it read and the roles it
computed in a per-process cache (:data:`_DAYS`, :data:`_ROLES`), so the configs of one day
read the day once per worker.

The task's *key* hashes everything its result depends on: the cache key of the day (which
chains the feature settings and the fingerprints of the day and every earlier day), the
model (its centres and roles), the signal source and the config.  A finished task's result
is a file named by that key; a resumed sweep skips it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cluster.kmeans import assign_clusters
from ..cluster.model import load_model
from ..cluster.roles import DIRECTIONAL, UNASSIGNED
from ..errors import ParameterError, TapeError
from ..features.settings import FeatureSettings
from ..replay.engine import replay_arrays
from ..replay.results import ReplaySummary
from ..replay.strategy import StrategyConfig
from ..tape.location import resolve_tape
from ..tape.store import read_manifest, read_tape
from ..tape.types import Instrument, day_start_us
from ..walkforward.cache import cache_day_paths, iter_cached_valid_z, read_cache_meta

__all__ = ["SIGNALS", "ReplayTask", "run_replay_task", "worker_stats", "SUMMARY_COLUMNS"]

#: Where the replay's signals come from: the cluster roles of a model, every trade's flow
#: feeding the alpha (no clustering), or nothing (a symmetric maker).
SIGNALS = ("clusters", "all_trades", "none")
#: The numeric fields of the replay summary that become result columns.
SUMMARY_COLUMNS = tuple(name for name, typ in ReplaySummary.__annotations__.items() if typ in ("int", "float"))
_KEEP_DAYS = 2               # days held per worker
_KEEP_ROLES = 8              # role arrays held per worker
_HOUR_US = 3_600_000_000
#: Test hook: when set to a path, the first task to create that file kills its own worker
#: (SIGKILL), so the tests can check that a worker's death costs a retry, not the sweep.
DIE_ONCE_ENV = "CLUSTERLOB_SWEEP_TEST_DIE_ONCE"


@dataclass(frozen=True)
class ReplayTask:
    """One replay: ``config`` over ``day`` of ``tape``, trades labelled as ``signal`` says.

    Attributes
    ----------
    tape : str
        Tape directory: a local path or a URI (``file://``, ``s3://``, ...), resolved by the
        worker (a task never carries a filesystem object).
    cache_dir : str
        Feature cache folder (``clusterlob.walkforward`` layout) holding ``day``.
    settings : FeatureSettings
        Feature settings of the cache (the model's).
    day : str
    day_key : str
        Cache key of the day (checked against the cache file: a rebuilt cache is an error).
    model : str or None
        Model file (``signal="clusters"``).
    model_key : str
        Hash of the model's centres and roles ('' without a model).
    signal : {"clusters", "all_trades", "none"}
    config : StrategyConfig
    equity : bool
        Return the one-minute equity series too.
    """

    tape: str
    cache_dir: str
    settings: FeatureSettings
    day: str
    day_key: str
    model: str | None
    model_key: str
    signal: str
    config: StrategyConfig
    equity: bool = False

    @property
    def key(self) -> str:
        doc = {"day": self.day, "day_key": self.day_key, "model": self.model_key, "signal": self.signal,
               "config": self.config.to_dict(), "equity": self.equity}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:24]


def model_key(path: str | Path) -> str:
    """Hash of a model file's centres, roles and feature settings."""
    model = load_model(path)
    doc = {"centers": model.centers_z.tolist(), "roles": [int(r) for r in model.roles],
           "settings": model.settings.to_dict()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


# -- the per-process cache ---------------------------------------------------------------------

# one day's replay input: (trade ts_local_us, price, amount, side), (book ts_local_us, bid, ask), instrument
_Day = tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, ...], Instrument]
_DAYS: OrderedDict[tuple[str, str], _Day] = OrderedDict()
_ROLES: OrderedDict = OrderedDict()
_MODELS: dict = {}
_STATS = {"day_reads": 0, "role_builds": 0, "tasks": 0}


def worker_stats() -> dict:
    """This process's counters: days read, role arrays built, tasks run (for the benchmark)."""
    return {"pid": os.getpid(), **_STATS}


def _remember(store: OrderedDict, key, value, keep: int):
    store[key] = value
    store.move_to_end(key)
    while len(store) > keep:
        store.popitem(last=False)
    return value


def _read_day(tape: str, day: str) -> tuple[_Day, bool]:
    """The arrays the replay needs for one day (trades, and the book's levels: prices and
    displayed sizes, which the queue model reads), and the instrument (tick and contract)."""
    key = (tape, day)
    if key in _DAYS:
        _DAYS.move_to_end(key)
        return _DAYS[key], False
    loc = resolve_tape(tape)                  # once: a URI's filesystem is opened once per day read
    if day not in [d["date"] for d in read_manifest(loc)["days"]]:
        raise TapeError(f"tape {tape} has no day {day}")
    data = read_tape(loc, [day], columns=("ts_local_us", "price", "amount", "side"))
    t, b = data.trades, data.book
    trades = (t.ts_local_us, t.price, t.amount, t.side)
    book = (b.ts_local_us, b.bid_px, b.ask_px, b.bid_sz, b.ask_sz)
    _STATS["day_reads"] += 1
    return _remember(_DAYS, key, (trades, book, data.instrument), _KEEP_DAYS), True


def _load_model(path: str):
    if path not in _MODELS:
        _MODELS[path] = load_model(path)
    return _MODELS[path]


def _roles(task: ReplayTask, n_trades: int) -> np.ndarray:
    key = (task.tape, task.cache_dir, task.day, task.day_key, task.signal, task.model_key)
    if key in _ROLES:
        _ROLES.move_to_end(key)
        return _ROLES[key]
    if task.signal == "none":
        roles = np.full(n_trades, UNASSIGNED, np.int8)
    elif task.signal == "all_trades":
        roles = np.full(n_trades, DIRECTIONAL, np.int8)     # unknown-side trades feed nothing anyway
    else:
        if task.model is None:
            raise ParameterError(f"replay task of {task.day}: signal \"clusters\" needs a model file")
        meta_path = cache_day_paths(Path(task.cache_dir), task.settings, task.day)[1]
        meta = read_cache_meta(meta_path) if meta_path.is_file() else None
        if meta is None or meta.get("key") != task.day_key:
            raise TapeError(f"feature cache day {task.day} under {meta_path.parent} changed or vanished "
                            f"since the sweep was planned; run the sweep again")
        model = _load_model(task.model)
        if int(meta["counts"]["trades"]) != n_trades:
            raise TapeError(f"feature cache day {task.day} has {meta['counts']['trades']} trades, the tape "
                            f"{n_trades}; the tape changed since the cache was built")
        roles = np.full(n_trades, UNASSIGNED, np.int8)
        for rows, z in iter_cached_valid_z(task.cache_dir, task.settings, task.day):
            if rows.size:       # a batch at a time: the day's whole z matrix is never held
                roles[rows] = model.roles[assign_clusters(z, model.centers_z)[0]]
    _STATS["role_builds"] += 1
    return _remember(_ROLES, key, roles, _KEEP_ROLES)


def _die_once_for_tests() -> None:
    marker = os.environ.get(DIE_ONCE_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


# -- the task ---------------------------------------------------------------------------------

def _hourly_pnl(day: str, ts_us: np.ndarray, equity: np.ndarray) -> list:
    """PnL per UTC hour of the day: the equity changes between marks (and the final partial
    minute), summed by the hour of the later mark; the 24 values sum to the day's PnL."""
    changes = np.diff(equity)
    hours = np.clip((ts_us[1:] - day_start_us(day)) // _HOUR_US, 0, 23)
    return np.bincount(hours, weights=changes, minlength=24).tolist()


def run_replay_task(task: ReplayTask) -> dict:
    """Run one task (in a worker); return its result record (plain data, JSON-able)."""
    t0 = time.perf_counter()
    _die_once_for_tests()
    (trades, book, instrument), read = _read_day(task.tape, task.day)
    t1 = time.perf_counter()
    roles = _roles(task, trades[0].shape[0])
    t2, c2 = time.perf_counter(), time.process_time()
    ts, price, amount, side = trades
    book_ts, bid_px, ask_px, bid_sz, ask_sz = book
    result = replay_arrays(ts, price, amount, side, roles, book_ts, bid_px, ask_px,
                           tick_size=instrument.tick_size, instrument=instrument, config=task.config, book_bid_sz=bid_sz, book_ask_sz=ask_sz)
    t3, c3 = time.perf_counter(), time.process_time()
    summary = result.summary
    eq = result.equity
    minute = np.diff(eq.equity[:-1])         # the Sharpe's one-minute changes (summary.minutes of them)
    record: dict[str, Any] = {
        "key": task.key, "day": task.day, "signal": task.signal, "model_key": task.model_key,
        "config": task.config.to_dict(),
        "summary": {name: getattr(summary, name) for name in SUMMARY_COLUMNS},
        "minute_changes": {"n": int(minute.shape[0]), "sum": float(minute.sum()),
                           "sumsq": float(np.dot(minute, minute))},
        "hourly_pnl": _hourly_pnl(task.day, eq.ts_us, eq.equity),
        "timing": {"read_s": t1 - t0, "roles_s": t2 - t1, "engine_s": t3 - t2, "engine_cpu_s": c3 - c2, "day_read": read,
                   "pid": os.getpid()},
    }
    if task.equity:
        record["equity"] = {"ts_us": eq.ts_us.tolist(), "equity": eq.equity.tolist()}
    _STATS["tasks"] += 1
    record["timing"]["task_s"] = time.perf_counter() - t0
    return record


def pooled_sharpe(n: int, total: float, sumsq: float) -> float:
    """Sharpe (mean / sample std) of one-minute changes pooled from their count, sum and sum of
    squares (several days of one config).  NaN with fewer than two changes; 0 for a flat equity
    (a config that never traded: neither good nor bad, where the replay summary says NaN)."""
    if n < 2:
        return math.nan
    mean = total / n
    var = (sumsq - n * mean * mean) / (n - 1)
    if var > 1e-18 * max(1.0, sumsq / n):
        return mean / math.sqrt(var)
    return 0.0 if abs(mean) <= 1e-12 else math.copysign(math.inf, mean)
