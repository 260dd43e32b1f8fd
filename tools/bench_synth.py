"""Benchmark the synthetic tape generator at the research log's scale.

Generates the 7-day, 3.95M-trades-per-day tape (about 27.6M trades, 100 ms snapshots, 25
levels) into a temporary folder under /tmp, then prints wall time, peak RSS and output size.
``--days N`` runs a shorter span and prints a clearly labelled 7-day extrapolation.

    python tools/bench_synth.py [--days 7] [--trades-per-day 3950000] [--keep]

Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of this process (the generator
runs in it).  The machine may be shared: the load average before and after is printed so
noisy figures can be recognised.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clusterlob.synth import generate_tape  # noqa: E402


def planted_truth(path) -> dict:
    """corr(OFI[b], ln(mid_close[b+1] / mid_close[b])) per agent and for all trades, read day by day."""
    import numpy as np

    from clusterlob.tape import iter_days

    bucket_us = 300_000_000
    mids, ofis = [], {name: [] for name in ("directional", "opportunistic", "passive", "all")}
    for tape in iter_days(path):
        day0 = tape.trades.ts_local_us[0] // 86_400_000_000 * 86_400_000_000
        ends = day0 + (np.arange(288) + 1) * bucket_us
        mids.append(tape.book.mid()[np.searchsorted(tape.book.ts_local_us, ends, side="left") - 1])
        b = (tape.trades.ts_local_us - day0) // bucket_us
        signed = tape.trades.side * tape.trades.amount
        agent = tape.trades.extra["agent"]
        for code, name in enumerate(("directional", "opportunistic", "passive", "all")):
            m = agent == code if code < 3 else slice(None)
            ofis[name].append(np.bincount(b[m], weights=signed[m], minlength=288))
        del tape
    mid = np.concatenate(mids)
    r = np.log(mid[1:] / mid[:-1])
    out = {name: float(np.corrcoef(np.concatenate(v)[:-1], r)[0, 1]) for name, v in ofis.items()}
    out["buckets"] = int(r.shape[0])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2024-05-01")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--trades-per-day", type=float, default=3_950_000)
    parser.add_argument("--snapshot-ms", type=int, default=100)
    parser.add_argument("--levels", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the tape (path is printed)")
    parser.add_argument("--truth", action="store_true",
                        help="afterwards, measure the planted truth (bucket OFI vs next return) day by day")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clusterlob-bench-synth-", dir="/tmp"))
    out = work / "tape"
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    day_times = []

    def progress(day, n, m):
        day_times.append(time.perf_counter() - t0)
        print(f"  {day}: {n:,} trades, {m:,} snapshots, t = {day_times[-1]:.1f} s", file=sys.stderr, flush=True)

    try:
        result = generate_tape(out, args.start, args.days, args.trades_per_day, args.seed,
                               snapshot_ms=args.snapshot_ms, levels=args.levels, progress=progress)
        wall = time.perf_counter() - t0
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2   # ru_maxrss is KiB on Linux
        size_gb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e9
        truth = planted_truth(out) if args.truth else None
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"synth benchmark: {args.days} days from {args.start}, {args.trades_per_day:,.0f} trades/day (weekly mean), "
          f"{args.snapshot_ms} ms snapshots x {args.levels} levels, seed {args.seed}")
    print(f"  trades written     {result.trades:,}")
    print(f"  snapshots written  {result.snapshots:,}")
    print(f"  wall time          {wall:.1f} s   (limit 300 s)")
    print(f"  peak RSS           {peak_gb:.2f} GB  (limit 6 GB)")
    print(f"  output size        {size_gb:.2f} GB" + (f" at {out}" if args.keep else " (deleted)"))
    print(f"  load average       {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} CPUs)")
    if truth is not None:
        print("  planted truth, corr(5-min OFI[b], r[b+1]) over " + f"{truth.pop('buckets')} buckets: "
              + ", ".join(f"{k} {v:+.3f}" for k, v in truth.items()))
    if args.days != 7:
        per_day = wall / args.days
        print(f"  EXTRAPOLATED to 7 days (not measured): about {7 * per_day:.0f} s at {per_day:.1f} s/day; "
              f"peak RSS does not grow with days (generation is day by day)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
