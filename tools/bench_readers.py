"""Throughput and peak memory of the row-book readers (Tardis ``incremental_book_L2``), one
file and many.

::

    python tools/bench_readers.py [--rows 1000000 4000000] [--files 4] [--work DIR]

1. Writes synthetic ``incremental_book_L2`` CSV files of the given sizes (a 1,000-level
   snapshot, then groups of 1..20 level updates within 200 ticks of a fixed mid, a third of
   them removals) under ``--work`` (default: a temporary folder, removed at the end).
2. Converts each with ``python -m clusterlob.convert`` in a child process and prints the
   wall time, rows per second and the child's peak RSS (``VmHWM``): peak memory should
   not grow with the file (it is bounded by the book and one CSV block).
3. Converts the largest file split into ``--files`` files (one stream, the book carried over)
   and prints the same figures.
4. Times the compiled kernel against the plain-Python twin (``tests/l2_rows_reference.py``)
   on the first 200,000 rows and prints the ratio.
5. With ``--recording FILE`` (a Binance recording, e.g. ../shared/data/binance-futures/
   btcusdt_20240808.gz), converts it whole and split into ``--files`` files (only the first
   holds the REST snapshot) and prints both, with whether the two tapes are identical.

The machine may be shared: the load average is printed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
T0 = 1714521600000000
TICK = 0.1
MID = 60000.05


def synthetic_rows(n: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    snap_levels = 1000
    n_upd = max(n - 2 * snap_levels, 0)
    sizes = rng.integers(1, 21, size=n_upd // 10 + 2)
    group_of = np.repeat(np.arange(sizes.size), sizes)[:n_upd]
    ask = rng.random(n_upd) < 0.5
    offset = np.minimum(rng.geometric(0.03, n_upd) - 1, 199)
    price = np.where(ask, MID + 0.05 + offset * TICK, MID - 0.05 - offset * TICK)
    amount = np.where(rng.random(n_upd) < 1 / 3, 0.0, np.round(rng.random(n_upd) * 5 + 0.001, 3))
    j = np.arange(snap_levels)
    s_price = np.concatenate([MID + 0.05 + j * TICK, MID - 0.05 - j * TICK])
    s_amount = np.round(rng.random(2 * snap_levels) * 5 + 0.001, 3)
    ts = np.concatenate([np.full(2 * snap_levels, T0), T0 + 1000 + group_of * 1000]).astype(np.int64)
    n_all = ts.size
    return pa.table({
        "exchange": pa.array(["binance-futures"] * n_all).dictionary_encode(),
        "symbol": pa.array(["BTCUSDT"] * n_all).dictionary_encode(),
        "timestamp": ts,
        "local_timestamp": ts + 500,
        "is_snapshot": np.concatenate([np.full(2 * snap_levels, "true"), np.full(n_upd, "false")]),
        "side": np.concatenate([np.repeat(["ask", "bid"], snap_levels), np.where(ask, "ask", "bid")]),
        "price": np.round(np.concatenate([s_price, price]), 2),
        "amount": np.concatenate([s_amount, amount]),
    })


def write_csv(table: pa.Table, path: Path) -> None:
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))


# The child reports VmHWM (its own address space's high-water mark), not ru_maxrss, which
# Linux carries over from the forked parent (here holding the generated table) across exec.
_CHILD = """
import sys, time
from clusterlob.convert.__main__ import main
t = time.perf_counter()
rc = main(sys.argv[1:] + ["--tick-size", "0.1", "--lot-size", "0.001"])
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(f"{time.perf_counter() - t} {hwm}")
sys.exit(rc)
"""


def convert_child(inputs, out: Path) -> tuple[float, float]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, *map(str, inputs), "--out", str(out), "--force"],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"convert failed: {proc.stderr.strip().splitlines()[-1]}")
    secs, rss_kb = proc.stdout.strip().splitlines()[-1].split()
    return float(secs), int(rss_kb) / 1024


def kernel_vs_reference(table: pa.Table, n: int = 200_000) -> tuple[float, float]:
    sys.path.insert(0, str(ROOT / "tests"))
    from l2_rows_reference import ReferenceL2
    from clusterlob.tape.readers.l2_rows import KIND, L2RowBook

    t = table.slice(0, n)
    group = t["local_timestamp"].to_numpy()
    kind = ((t["side"].to_numpy(zero_copy_only=False) == "ask") * KIND["ask"]
            + (t["is_snapshot"].to_numpy(zero_copy_only=False) == "true") * KIND["snapshot"]).astype(np.int8)
    price, amount = t["price"].to_numpy(), t["amount"].to_numpy()
    started = time.perf_counter()
    rb = L2RowBook()
    rb.apply(group, group, group, kind, price, amount, final=True)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    ref = ReferenceL2()
    for row in zip(group.tolist(), group.tolist(), group.tolist(), kind.tolist(), price.tolist(), amount.tolist()):
        ref.row(*row)
    ref.finish()
    slow = time.perf_counter() - started
    return fast, slow


def recording_split(path: Path, files: int, work: Path) -> None:
    import gzip

    with gzip.open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    parts = work / "recording_parts"
    parts.mkdir(exist_ok=True)
    step = -(-len(lines) // files)
    for k in range(files):
        (parts / f"part{k}.txt.gz").write_bytes(gzip.compress(b"".join(lines[k * step:(k + 1) * step]), 1))
    secs_one, rss_one = convert_child([path], work / "rec_one")
    secs_parts, rss_parts = convert_child([parts], work / "rec_parts")
    from clusterlob.tape import read_tape
    a, b = read_tape(work / "rec_one"), read_tape(work / "rec_parts")
    same = all(np.array_equal(getattr(a.book, n), getattr(b.book, n), equal_nan=True)
               for n in ("ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz")) and \
        np.array_equal(a.trades.trade_id, b.trades.trade_id)
    print(f"{path.name}: {len(lines):,} lines, one file {secs_one:.1f} s ({rss_one:.0f} MB), "
          f"{files} files {secs_parts:.1f} s ({rss_parts:.0f} MB); tapes identical: {same}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--work")
    parser.add_argument("--recording", help="a Binance recording to convert whole and split")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-readers-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"{'input':<34}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}")
        table = None
        for n in args.rows:
            table = synthetic_rows(n)
            path = work / f"incremental_{n}.csv"
            write_csv(table, path)
            secs, rss = convert_child([path], work / f"tape_{n}")
            print(f"{path.name:<34}{table.num_rows:>12,}{secs:>10.1f}{table.num_rows / secs:>12,.0f}{rss:>13.0f}",
                  flush=True)
        parts = work / "parts"
        parts.mkdir(exist_ok=True)
        step = -(-table.num_rows // args.files)
        for k in range(args.files):
            write_csv(table.slice(k * step, step), parts / f"part{k}.csv")
        secs, rss = convert_child([parts], work / "tape_parts")
        label = f"{args.files} files of the largest"
        print(f"{label:<34}{table.num_rows:>12,}{secs:>10.1f}{table.num_rows / secs:>12,.0f}{rss:>13.0f}")
        fast, slow = kernel_vs_reference(table)
        print(f"kernel vs plain-Python twin on {min(200_000, table.num_rows):,} rows: {fast:.3f} s vs {slow:.3f} s "
              f"({slow / fast:.0f}x)")
        if args.recording:
            recording_split(Path(args.recording), args.files, work)
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
