"""Benchmark the sweep machinery: a grid of configs over one day of the benchmark tape.

Prints, for one run on this machine (report the load with it):

* the engine's own time per replay (``replay_arrays`` in this process, the day in memory);
* the sweep on 1 local worker process: wall time and the per-replay overhead above the
  engine's own time (target <= 10%; the worker's single day read is reported apart);
* on 2 local worker processes: wall time, throughput against 1 worker (target >= 1.7x), and
  how many times each worker read the day (target: once);
* on a 2-worker Dask ``LocalCluster`` (processes, loopback): wall time against the local
  processes (target within 25%).

::

    PYTHONPATH=$PWD python tools/bench_sweep.py \
        --tape /tmp/clusterlob-bench/tape-2024-05-01-7d-3950000tpd-seed7 --day 2024-05-02 \
        --configs 200 --work /tmp/sweep-bench [--cache DIR] [--no-dask]

The feature cache (days up to ``--day``) and the model (fit on the day before) are built
once into ``--work`` (or taken from ``--cache``) and are not part of the timings.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import numpy as np


def grid_doc(n: int) -> dict:
    """A grid of at least ``n`` configs (the first ``n`` are used)."""
    axes = {"skew_ticks": [5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0],
            "half_spread_bps": [0.25, 0.5, 1.0, 1.5, 2.0],
            "mapping": ["inverted", "traditional"],
            "theta": [1.0, 2.0, 4.0]}
    return {"strategy": axes}


def _same(a: list, b: list) -> bool:
    """Same summaries and hourly PnL, task by task (as JSON text, so NaN equals NaN)."""
    import json
    text = lambda recs: [json.dumps([r["key"], r["summary"], r["hourly_pnl"]], sort_keys=True)
                         for r in sorted(recs, key=lambda r: r["key"])]
    return text(a) == text(b)


def _warm() -> int:
    import clusterlob.sweep.tasks  # noqa: F401
    return os.getpid()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tape", default="/tmp/clusterlob-bench/tape-2024-05-01-7d-3950000tpd-seed7")
    ap.add_argument("--day", default="2024-05-02")
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--work", default="/tmp/sweep-bench")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--engine-samples", type=int, default=10)
    args = ap.parse_args(argv)

    from clusterlob._exec import LocalProcesses
    from clusterlob.replay.engine import replay_arrays
    from clusterlob.sweep.grid import make_grid
    from clusterlob.sweep.run import fit_models, prepare_cache, run_tasks
    from clusterlob.sweep.tasks import _DAYS, _ROLES, ReplayTask, _read_day, _roles
    from clusterlob.tape.store import read_manifest
    from clusterlob.features import FeatureSettings
    from clusterlob.cluster.fit import FitSettings

    work = Path(args.work)
    cache = Path(args.cache) if args.cache else work / "cache"
    tape = args.tape
    days = [d["date"] for d in read_manifest(tape)["days"]]
    prev = days[days.index(args.day) - 1]
    settings = FeatureSettings()
    say = lambda line: print(f"  {line}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    info = prepare_cache(tape, settings, cache, args.day, None, say)
    models = fit_models(tape, str(cache), settings, FitSettings(fit_sample=1_000_000), {f"fit-{args.day}": (prev,)},
                        work / "models", None, say)
    mfile, mkey = models[f"fit-{args.day}"]
    print(f"setup (cache, model; not timed below): {time.perf_counter() - t:.1f} s", flush=True)

    full = make_grid(grid_doc(args.configs))
    points = full.points[:args.configs]
    tasks = [ReplayTask(tape, str(cache), settings, args.day, info[args.day][0], mfile, mkey, "clusters", p.config)
             for p in points]
    print(f"{len(tasks)} configs over {args.day} of {tape}", flush=True)

    # the engine's own time, day and roles in memory
    (trades, book, instrument), _ = _read_day(tape, args.day)
    roles = _roles(tasks[0], trades[0].shape[0])
    print(f"day: {trades[0].shape[0]:,} trades, {book[0].shape[0]:,} book updates", flush=True)
    engine = []
    for task in tasks[:args.engine_samples]:
        t0 = time.perf_counter()
        replay_arrays(*trades, roles, book[0], book[1], book[2], tick_size=instrument.tick_size,
                      instrument=instrument, config=task.config,
                      book_bid_sz=book[3], book_ask_sz=book[4])
        engine.append(time.perf_counter() - t0)
    eng = float(np.median(engine))
    print(f"engine alone: median {eng:.3f} s per replay over {len(engine)} configs "
          f"(min {min(engine):.3f}, max {max(engine):.3f})", flush=True)
    del trades, book, roles
    _DAYS.clear()                   # forked workers must not inherit this process's day
    _ROLES.clear()

    def run(executor, name):
        t0 = time.perf_counter()
        records = run_tasks(tasks, executor, None)
        wall = time.perf_counter() - t0
        recs = list(records.values())
        reads = collections.Counter(r["timing"]["pid"] for r in recs if r["timing"]["day_read"])
        per_worker = collections.Counter(r["timing"]["pid"] for r in recs)
        engine_sum = sum(r["timing"]["engine_s"] for r in recs)
        cpu_sum = sum(r["timing"]["engine_cpu_s"] for r in recs)
        read_sum = sum(r["timing"]["read_s"] + r["timing"]["roles_s"] for r in recs if r["timing"]["day_read"])
        print(f"{name}: wall {wall:.1f} s, {len(recs) / wall:.2f} replays/s; engine time in the workers "
              f"{engine_sum:.1f} s wall, {cpu_sum:.1f} s CPU ({cpu_sum / len(recs):.3f} s CPU per replay: "
              f"{100 * cpu_sum / engine_sum:.0f} % of the engine's wall time on a core); day reads per worker {dict(reads)} (tasks per worker "
              f"{dict(per_worker)}); first read + roles {read_sum:.1f} s", flush=True)
        return wall, engine_sum, read_sum, recs

    with LocalProcesses(1) as pool:
        w1, e1, r1, recs1 = run(pool, "1 local worker")
    overhead = (w1 - r1) / e1 - 1.0
    in_worker = sum(r["timing"]["task_s"] - r["timing"]["engine_s"] for r in recs1) - r1
    print(f"per-replay overhead above the engine (1 worker, wall less the one day read): {100 * overhead:+.1f} % "
          f"({(w1 - r1 - e1) / len(tasks) * 1e3:.1f} ms per replay; of which in the worker "
          f"{in_worker / len(tasks) * 1e3:.1f} ms) [target <= 10 %]", flush=True)
    with LocalProcesses(2) as pool:
        w2, e2, r2, recs2 = run(pool, "2 local workers")
    print(f"2 workers vs 1: {w1 / w2:.2f}x throughput [target >= 1.7x]", flush=True)
    same = _same(recs1, recs2)
    print(f"results identical on 1 and 2 workers: {same}", flush=True)
    if not args.no_dask:
        from dask.distributed import Client, LocalCluster
        from clusterlob._exec import dask_executor
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc:
            t0 = time.perf_counter()
            with Client(lc.scheduler_address) as client:   # imports in the fresh workers: not timed
                client.run(_warm)
            print(f"Dask workers warmed up (imports) in {time.perf_counter() - t0:.1f} s", flush=True)
            with dask_executor(lc.scheduler_address) as ex:
                wd, ed, rd, recsd = run(ex, "2-worker Dask LocalCluster")
        print(f"Dask LocalCluster vs local processes (2 workers): wall {wd / w2:.2f}x "
              f"[target <= 1.25x]", flush=True)
        same = _same(recs2, recsd)
        print(f"results identical on Dask and local processes: {same}", flush=True)
    print(f"load average after the run: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
