"""Benchmark the synthetic inventory experiment: events x seeds x 2 policies.

    PYTHONPATH=. python tools/bench_inventory.py [--events 20000] [--seeds 20] [--repeat 3]

Times :func:`clusterlob.inventory.run_experiment` at one theta (the target: 20,000 events x
20 seeds x 2 policies in at most 2 s), best of ``--repeat`` runs, wall clock and CPU time,
and splits it into building the markets and replaying them.  Imports are done before the
timer.  The machine may be shared: the load average is printed, CPU time is the steadier
figure.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

from clusterlob import inventory
from clusterlob.inventory import SyntheticMarket, run_experiment, run_policies, synthetic_events


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--theta", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    market = SyntheticMarket(n_events=args.events)
    config = inventory.EXPERIMENT_CONFIG.replace(theta=args.theta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run_experiment(SyntheticMarket(n_events=200), config, seeds=2)          # warm-up: imports
    walls, cpus = [], []
    for _ in range(args.repeat):
        w, c = time.perf_counter(), time.process_time()
        exp = run_experiment(market, config, seeds=args.seeds)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    # the parts: building the markets, then the replays
    w = time.perf_counter()
    markets = [synthetic_events(market, s, config) for s in range(args.seeds)]
    build = time.perf_counter() - w
    w = time.perf_counter()
    for events in markets:
        run_policies(events, market.tick_size, config)
    replays = time.perf_counter() - w
    replayed = 2 * args.events * args.seeds * 2       # a book update and a trade per step, 2 policies
    r = exp.results[0]
    print(f"experiment: {args.events:,} events x {args.seeds} seeds x 2 policies (theta {args.theta:g})")
    print(f"run_experiment(): {min(walls):.3f} s wall (best of {args.repeat}), {min(cpus):.3f} s CPU; "
          f"target <= 2 s: {'met' if min(walls) <= 2.0 else 'NOT met'}")
    print(f"  building the markets: {build:.3f} s; replays: {replays:.3f} s = "
          f"{replayed / replays / 1e6:.1f} M replayed events/s ({replayed:,} events)")
    print(f"  dynamic - fixed: {r.difference.pnl_mean:+.2f} (t = {r.difference.t_stat:.2f}); "
          f"fills {r.fixed.fills_mean:,.0f} / {r.dynamic.fills_mean:,.0f} per seed")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores"
          + ("  (the machine is shared: wall-clock figures are noisy, CPU time less so)"
             if load > (os.cpu_count() or 1) else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
