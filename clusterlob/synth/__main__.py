from __future__ import annotations
from ..errors import ClusterlobError
from .._cli import OneLineParser
from .._cli import error_exit
import sys
from ..tape.store import MAX_LEVELS
from ..tape.synth import generate_tape

def main(argv=None) -> int:
    """``python -m clusterlob.synth``: write a synthetic tape; one-line errors, progress on stderr."""
    parser = OneLineParser(prog="python -m clusterlob.synth", description="Write a synthetic BTCUSDT-futures tape with planted order-flow types.")
    parser.add_argument("--start", required=True, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, required=True, help="number of days (>= 1)")
    parser.add_argument("--trades-per-day", type=float, required=True, help="mean trades per day over a week")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="new tape directory")
    parser.add_argument("--snapshot-ms", type=int, default=100, help="book snapshot cadence (default 100)")
    parser.add_argument("--levels", type=int, default=MAX_LEVELS, help="book levels per side (default 25)")
    parser.add_argument("--force", action="store_true",
                        help="replace the clusterlob tape at --out (never a folder clusterlob did not write)")
    args = parser.parse_args(argv)

    def progress(day, n, m):
        print(f"synth: {day}: {n:,} trades, {m:,} snapshots", file=sys.stderr, flush=True)

    try:
        result = generate_tape(args.out, args.start, args.days, args.trades_per_day, args.seed,
                               snapshot_ms=args.snapshot_ms, levels=args.levels, progress=progress,
                               force=args.force,
                               notes=lambda line: print(f"synth: {line}", file=sys.stderr, flush=True))
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    print(f"synth: wrote {result.path}: {result.trades:,} trades, {result.snapshots:,} snapshots "
          f"({', '.join(f'{k} {v:,}' for k, v in result.trades_by_agent.items())})", file=sys.stderr)
    return 0




if __name__ == "__main__":
    sys.exit(main())
