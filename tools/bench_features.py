"""Benchmark: features of a synthetic in-memory tape (default 27.6 million trades).

Target (issue 5): features for 27.6 million trades in at most 20 s.

The tape is built with NumPy only: 25-level book snapshots about 10 per second and trades
about 45 per second (27.6 million trades over 7 days; 4.5 trades per snapshot by
default), a tick-grid random walk for the touch, exponential sizes with a few missing
levels, 10 % of the trades at the exact time of a snapshot and 2 % of unknown side.
Timed separately: ``compute_raw_features`` (as-of join and the six features) and
``rolling_zscore``; then ``build_features`` end to end (``--repeat`` times).  Each line
gives wall time and this process's CPU time (user + system): on a shared machine the
wall time also counts waiting for a core, and the system time is mostly first-touch
page faults of the freshly allocated outputs (about 2.8 GB at 27.6 M rows).  Peak RSS is
the process's high-water mark (it includes the tape itself, reported first).

    python tools/bench_features.py [--trades N] [--trades-per-snapshot R] [--levels D]
                                   [--window W] [--repeat K]

To see the cost without page faults, keep freed memory in the process so that repeated
calls reuse it: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 python ...
--repeat 3`` (glibc only).
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time

import numpy as np

from clusterlob.features import FeatureSettings, build_features, compute_raw_features, rolling_zscore
from clusterlob.tape import Book, Instrument, Tape, Trades, day_start_us

US = 1_000_000


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


class Timer:
    """Wall time and this process's CPU time (user, system) of a block."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), os.times()
        return self

    def __exit__(self, *exc):
        cpu = os.times()
        self.wall = time.perf_counter() - self._wall
        self.user = cpu.user - self._cpu.user
        self.system = cpu.system - self._cpu.system
        return False

    def __str__(self):
        return f"{self.wall:6.2f} s wall (cpu {self.user:5.2f} s user + {self.system:5.2f} s system)"


def synthetic_tape(n_trades: int, trades_per_snapshot: float, seed: int = 0) -> Tape:
    """A seeded tape of n_trades trades and 25-level snapshots, built with NumPy only."""
    rng = np.random.default_rng(seed)
    n_book = max(2, int(n_trades / trades_per_snapshot))
    levels = 25
    t0 = day_start_us("2024-05-01")
    span_us = int(n_trades / 45.6 * US)                       # ~45.6 trades per second
    t_book = np.sort(rng.integers(t0, t0 + span_us, n_book))
    n_ties = n_trades // 10
    t_trade = np.concatenate([rng.integers(t0, t0 + span_us, n_trades - n_ties),
                              t_book[rng.integers(0, n_book, n_ties)]])
    t_trade.sort()
    bid_ticks = 600_000 + np.cumsum(rng.integers(-1, 2, n_book) * (rng.random(n_book) < 0.4))
    ask_ticks = bid_ticks + 1 + (rng.random(n_book) < 0.05)
    lv = np.arange(levels)
    bid_px = (bid_ticks[:, None] - lv) * 0.1
    ask_px = (ask_ticks[:, None] + lv) * 0.1
    bid_sz = rng.exponential(2.0, (n_book, levels))
    ask_sz = rng.exponential(2.0, (n_book, levels))
    missing = rng.random(n_book) < 0.01                     # a thin book now and then
    bid_sz[missing, 20:] = np.nan
    ask_sz[missing, 20:] = np.nan
    book = Book(t_book - 1000, t_book, bid_px, bid_sz, ask_px, ask_sz)
    side = rng.choice(np.array([-1, 0, 1], dtype=np.int8), n_trades, p=[0.49, 0.02, 0.49])
    trades = Trades(t_trade - 1000, t_trade, np.full(n_trades, 60000.0),
                    rng.exponential(0.05, n_trades), side, np.arange(n_trades, dtype=np.int64))
    return Tape(Instrument("synthetic", "BTCUSDT", 0.1, 0.001), trades, book, [])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=27_600_000)
    parser.add_argument("--trades-per-snapshot", type=float, default=4.5)
    parser.add_argument("--levels", type=int, default=5, help="D (default 5)")
    parser.add_argument("--window", type=int, default=100, help="W (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="time build_features this many times (default 1; 0 skips it)")
    args = parser.parse_args(argv)

    with Timer() as t:
        tape = synthetic_tape(args.trades, args.trades_per_snapshot, args.seed)
    print(f"tape: {len(tape.trades):,} trades, {len(tape.book):,} snapshots x 25 levels, "
          f"built in {t.wall:.1f} s; peak RSS so far {peak_rss_gb():.2f} GB", flush=True)
    settings = FeatureSettings(levels=args.levels, window=args.window)
    print(f"settings: {settings.to_dict()}; load average before: {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores", flush=True)

    with Timer() as t_raw:
        trade_index, raw, raw_counts = compute_raw_features(tape, settings)
    with Timer() as t_z:
        z, _, z_counts = rolling_zscore(raw, settings)
    rows = raw.shape[0]
    print(f"compute_raw_features: {t_raw}  {rows / t_raw.wall / 1e6:5.1f} M rows/s  "
          f"({raw_counts['unknown_side']:,} unknown side, {raw_counts['no_book_before']:,} before the book)")
    print(f"rolling_zscore:       {t_z}  {rows / t_z.wall / 1e6:5.1f} M rows/s  "
          f"({z_counts['valid_rows']:,} valid rows)")
    print(f"features total:       {t_raw.wall + t_z.wall:6.2f} s wall for {len(tape.trades):,} trades "
          f"(target <= 20 s for 27.6 M); peak RSS {peak_rss_gb():.2f} GB", flush=True)
    del trade_index, raw, z
    gc.collect()
    for _ in range(args.repeat):
        with Timer() as t_all:
            f = build_features(tape, settings)
        print(f"build_features:       {t_all}  {len(f) / t_all.wall / 1e6:5.1f} M rows/s; "
              f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
        del f
        gc.collect()
    print(f"load average after: {os.getloadavg()[0]:.2f} (the machine is shared; high load means noisy wall times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
