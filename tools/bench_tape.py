"""Benchmark the tape layer: reading a canonical tape, and converting Tardis trades CSV.gz.

    python tools/bench_tape.py [--trades 20000000] [--book 2000000] [--csv-rows 5000000] [--work DIR]

Prints rows/s for reading trades and 25-level book snapshots from a tape directory
(targets: >= 20 million trade rows/s, >= 1 million snapshot rows/s) and for
`clusterlob.convert` on a generated Tardis trades CSV.gz (target >= 1 million rows/s), with
the peak resident memory of a separate conversion process.  Inputs are generated with a fixed
seed under --work (default: a temporary folder, removed afterwards).
"""
import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clusterlob import Book, Instrument, Tape, Trades, read_tape, write_tape  # noqa: E402

DAY0 = 1_714_521_600_000_000
US_PER_DAY = 86_400_000_000


def make_tape(n_trades: int, n_book: int, days: int, seed: int = 7) -> Tape:
    rng = np.random.default_rng(seed)
    ts = DAY0 + np.sort(rng.integers(0, days * US_PER_DAY, n_trades))
    trades = Trades(ts - 1500, ts, np.round(60000 + np.cumsum(rng.normal(0, 0.05, n_trades)), 1),
                    np.round(rng.pareto(1.5, n_trades) * 0.01 + 0.001, 3),
                    rng.choice(np.array([-1, 1], np.int8), n_trades), np.arange(n_trades, dtype=np.int64))
    del ts
    bts = DAY0 + np.sort(rng.integers(0, days * US_PER_DAY, n_book))
    mid = 60000 + np.cumsum(rng.normal(0, 0.05, n_book))
    lv = np.arange(25) * 0.1
    bid = np.round(mid[:, None] - 0.05 - lv, 1)
    book = Book(bts - 1500, bts, bid, np.round(rng.exponential(2, (n_book, 25)), 3),
                bid + 0.1 + 2 * lv, np.round(rng.exponential(2, (n_book, 25)), 3))
    return Tape(Instrument("binance-futures", "BTCUSDT", 0.1, 0.001), trades, book)


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def write_csv_gz(path: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    with gzip.open(path, "wt", compresslevel=6) as f:
        f.write("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
        t = DAY0
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ts = t + np.cumsum(rng.integers(0, 20000, m))
            t = int(ts[-1])
            price = np.round(60000 + np.cumsum(rng.normal(0, 0.05, m)), 1)
            amount = np.round(rng.pareto(1.5, m) * 0.01 + 0.001, 3)
            side = np.where(rng.random(m) < 0.5, "buy", "sell")
            ids = np.arange(start, start + m)
            lines = [f"binance-futures,BTCUSDT,{a},{a + 1500},{i},{s},{p:.1f},{q:.3f}\n"
                     for a, i, s, p, q in zip(ts.tolist(), ids.tolist(), side.tolist(), price.tolist(), amount.tolist())]
            f.write("".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=20_000_000)
    ap.add_argument("--book", type=int, default=2_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--csv-rows", type=int, default=5_000_000)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_tape_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        tape_dir = work / "tape"
        if not tape_dir.exists():
            print(f"generating {args.trades:,} trades and {args.book:,} snapshots ...", file=sys.stderr)
            write_tape(make_tape(args.trades, args.book, args.days), tape_dir)
        t_trades = best_of(lambda: read_tape(tape_dir, book=False))
        t_book = best_of(lambda: read_tape(tape_dir, trades=False))
        print(f"read tape, trades : {args.trades:>12,} rows in {t_trades:6.2f} s = {args.trades / t_trades / 1e6:6.1f} M rows/s (target >= 20)")
        print(f"read tape, book   : {args.book:>12,} rows in {t_book:6.2f} s = {args.book / t_book / 1e6:6.2f} M rows/s (target >= 1), 25 levels")

        csv = work / "trades.csv.gz"
        if not csv.exists():
            print(f"generating {args.csv_rows:,}-row Tardis trades CSV.gz ...", file=sys.stderr)
            write_csv_gz(csv, args.csv_rows)
        out = work / "converted"
        shutil.rmtree(out, ignore_errors=True)
        code = ("import time; from clusterlob.convert import convert; t=time.perf_counter(); "
                f"convert([{str(csv)!r}], {str(out)!r}, tick_size=0.1, lot_size=0.001); "
                "print(time.perf_counter()-t, [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            return 1
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent at fork, and
        # the parent holds the generated tape
        secs, rss_kb = res.stdout.split()
        secs = float(secs)
        print(f"convert CSV.gz    : {args.csv_rows:>12,} rows in {secs:6.2f} s = {args.csv_rows / secs / 1e6:6.2f} M rows/s "
              f"(target >= 1); file {csv.stat().st_size / 1e6:.0f} MB; peak RSS {int(rss_kb) / 1024:.0f} MB")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
