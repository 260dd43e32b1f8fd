"""Benchmark: bucketed OFI, close mids, IC tables and the timeframe analysis at the log's scale.

    PYTHONPATH=. python tools/bench_signals.py [--trades 27649725] [--days 7] [--seed 7]

Arrays are generated in memory (no tape on disk): trades with a role label each, and one mid
per 100 ms snapshot.  Prints one line per stage with its wall time and the peak memory.
"""
import argparse
import resource
import time

import numpy as np

from clusterlob.ic import ic_table, window_ic_tables, aggregate_ic
from clusterlob.signals import ROLE_GROUPS, BucketGrid, BucketAccumulator, covered_buckets
from clusterlob.signals.timeframes import timeframe_analysis

DAY0 = 1_714_521_600_000_000
US_DAY = 86_400_000_000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trades", type=int, default=27_649_725)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--snapshot-ms", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    days = [f"2024-05-{d + 1:02d}" for d in range(a.days)]
    t = time.perf_counter()
    ts = np.sort(DAY0 + rng.integers(0, a.days * US_DAY, a.trades))
    side = rng.choice(np.array([-1, 1], np.int8), a.trades)
    amount = rng.exponential(0.05, a.trades)
    labels = rng.integers(-1, 3, a.trades).astype(np.int8)
    book_ts = DAY0 + np.arange(0, a.days * US_DAY, a.snapshot_ms * 1000, dtype=np.int64)
    mid = 60000 * np.exp(np.cumsum(rng.normal(0, 2e-6, book_ts.shape[0])))
    print(f"generated {a.trades:,} trades and {book_ts.shape[0]:,} snapshots in {time.perf_counter() - t:.1f} s")

    per_day_t = np.searchsorted(ts, DAY0 + US_DAY * np.arange(a.days + 1))
    per_day_b = np.searchsorted(book_ts, DAY0 + US_DAY * np.arange(a.days + 1))
    signals = {}
    for minutes in (5, 15, 30):
        grid = BucketGrid.for_days(days, minutes * 60_000_000)
        acc = BucketAccumulator(grid, ROLE_GROUPS)
        t = time.perf_counter()
        for d in range(a.days):          # day by day, as the CLI feeds it
            s, e = per_day_t[d], per_day_t[d + 1]
            acc.add_trades(ts[s:e], side[s:e], amount[s:e], labels[s:e])
            s, e = per_day_b[d], per_day_b[d + 1]
            acc.add_book(book_ts[s:e], mid[s:e])
        signals[minutes] = acc.finish(covered_buckets(grid, days))
        print(f"{minutes:>2} min buckets: OFI of {a.trades:,} trades x 4 groups + close mids of "
              f"{book_ts.shape[0]:,} snapshots: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    pooled = ic_table(signals[5], (1, 2, 5))
    tables, _ = window_ic_tables(signals[5], None, (1, 2, 5))
    aggregate_ic(tables)
    print(f"IC tables (pooled + {len(tables)} days, 4 groups x 2 weightings x 3 horizons) and aggregate: "
          f"{time.perf_counter() - t:.3f} s; directional size IC h=1 {pooled.get('directional', 'size', 1).pearson:+.4f}")
    t = time.perf_counter()
    tf = timeframe_analysis(signals)
    print(f"timeframe analysis ({len(tf.rows)} runs): {time.perf_counter() - t:.3f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:,.0f} MB (the generated input arrays alone are "
          f"{(ts.nbytes + side.nbytes + amount.nbytes + labels.nbytes + book_ts.nbytes + mid.nbytes) / 2**20:,.0f} MB)")


if __name__ == "__main__":
    main()
