"""Benchmark the walk-forward: 14 generated days at 3.95M trades a day, 7 windows of 7 + 1 days.

Targets (issue 7), on the project's 2-core machine: at most 8 minutes from an empty feature
cache, at most 90 s with a full cache.  Run::

    # generate the tape once (minutes; needs clusterlob.synth)
    python -m clusterlob.synth --start 2024-05-01 --days 14 --trades-per-day 3950000 --seed 7 --out /tmp/tape14
    PYTHONPATH=$PWD python tools/bench_walkforward.py /tmp/tape14 --out /tmp/wf14

or let the script generate it with ``--generate DAYS`` (``--trades-per-day``, ``--seed``).
It runs the walk-forward twice into ``OUT``: first with the cache emptied, then again with the
cache full (results replaced), and prints wall-clock seconds of each stage, the load average
before and after (the machine may be shared with other work: then the figures are noisy),
and each run's peak RSS of this process (the workers are separate processes).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from clusterlob.features import FeatureSettings
from clusterlob.tape import read_manifest
from clusterlob.walkforward import WalkForwardSettings, run_walkforward, write_outputs


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _run(tape, out, settings, wf, workers, label) -> float:
    load_before = _load()
    t0 = time.perf_counter()
    if workers == 1:
        result = run_walkforward(tape, out, settings, wf)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            result = run_walkforward(tape, out, settings, wf, executor=pool)
    write_outputs(result, out, overwrite=True)
    seconds = time.perf_counter() - t0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{label}: {seconds:.1f} s total (features {result.timing['cache_s']:.1f} s, "
          f"windows {result.timing['windows_s']:.1f} s, days built {result.timing['days_built']}, "
          f"reused {result.timing['days_reused']}); {len(result.fitted)} windows fitted; "
          f"load average before {load_before}, after {_load()}; main-process peak RSS {rss_gb:.1f} GB",
          flush=True)
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tape", help="tape directory (created with --generate when it does not exist)")
    p.add_argument("--out", required=True)
    p.add_argument("--generate", type=int, default=None, metavar="DAYS")
    p.add_argument("--trades-per-day", type=float, default=3.95e6)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--train-days", type=int, default=7)
    args = p.parse_args(argv)
    tape = Path(args.tape)
    if not tape.exists():
        if args.generate is None:
            print(f"error: {tape} does not exist (pass --generate DAYS)", file=sys.stderr)
            return 2
        from clusterlob.synth import generate_tape
        t0 = time.perf_counter()
        generate_tape(tape, "2024-05-01", args.generate, args.trades_per_day, args.seed)
        print(f"generated {tape} in {time.perf_counter() - t0:.1f} s", flush=True)
    manifest = read_manifest(tape)
    n_days, n_trades = len(manifest["days"]), manifest["totals"]["trades"]
    print(f"tape {tape}: {n_days} days, {n_trades:,} trades ({n_trades / n_days / 1e6:.2f}M a day), "
          f"{manifest['totals']['book']:,} snapshots; workers {args.workers}; CPUs {os.cpu_count()}", flush=True)
    settings = FeatureSettings()
    wf = WalkForwardSettings(train_days=args.train_days)
    cache = Path(args.out) / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    cold = _run(tape, args.out, settings, wf, args.workers, "empty cache")
    warm = _run(tape, args.out, settings, wf, args.workers, "full cache ")
    print(f"targets: empty cache <= 480 s: {'met' if cold <= 480 else 'MISSED'} ({cold:.1f} s); "
          f"full cache <= 90 s: {'met' if warm <= 90 else 'MISSED'} ({warm:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
