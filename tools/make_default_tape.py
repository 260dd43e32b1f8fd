"""Rebuild the tiny synthetic tape committed in ``data/default_tape/``.

Two UTC weekdays (2024-05-01 and 02) of the synthetic BTCUSDT-futures market at about 14,000
trades a day, book snapshots every 12 s with 5 levels per side (the features' D; more levels or
a finer cadence do not fit the 2 MB budget: a trade takes about 26 bytes, a 5-level snapshot
about 68).  Tests and the embedded default run of ``python -m clusterlob.replay`` read it.

    python tools/make_default_tape.py [--out data/default_tape] [--force]

Same command, same files (byte-identical Parquet for the same pyarrow).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clusterlob.errors import ClusterlobError  # noqa: E402
from clusterlob.synth import generate_tape  # noqa: E402

# The recipe of the committed tape; change it here and rerun.
START = "2024-05-01"
DAYS = 2
TRADES_PER_DAY = 12_000        # weekly mean; weekdays get 7/6 of it, about 14,000
SEED = 7
SNAPSHOT_MS = 12_000
LEVELS = 5
MAX_BYTES = 2_000_000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "data" / "default_tape"))
    parser.add_argument("--force", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"error: {out} exists (use --force to rebuild it)", file=sys.stderr)
        return 2
    staging = out.with_name(f".{out.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = generate_tape(staging, START, DAYS, TRADES_PER_DAY, SEED,
                               snapshot_ms=SNAPSHOT_MS, levels=LEVELS)
    except ClusterlobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
    if size > MAX_BYTES:
        shutil.rmtree(staging)
        print(f"error: the tape would take {size:,} bytes, more than {MAX_BYTES:,}", file=sys.stderr)
        return 1
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    print(f"wrote {out}: {result.trades:,} trades over {len(result.days)} days, "
          f"{result.snapshots:,} snapshots x {LEVELS} levels, {size:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
