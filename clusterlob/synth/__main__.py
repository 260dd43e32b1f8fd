from __future__ import annotations
from ..errors import ClusterlobError
from .._cli import OneLineParser
from .._io import Progress
from .._cli import error_exit
import sys
from ..tape.types import MAX_LEVELS
from ..tape.synth import generate_tape
from ..errors import ParameterError


def _calibrated(args) -> int:
    """``--calibrate-from``: estimate, generate, compare; one-line errors."""
    from pathlib import Path
    from ..report import write_json, write_markdown
    from ..tape.calibrate import calibrate, calibration_report, generate_calibrated_tape, report_markdown

    def progress(line):
        print(line, file=sys.stderr, flush=True)

    try:
        if args.trades_per_day is not None:
            raise ParameterError("--trades-per-day does not apply with --calibrate-from "
                                 "(the trade clock is estimated from the tape)")
        out = Path(args.out)
        if out.exists() and not args.force:
            raise ParameterError(f"`out` {out} already exists (use --force to replace it)")
        cal = calibrate(args.calibrate_from, args.calibrate_days, progress=progress)
        synthetic = generate_calibrated_tape(out, cal, args.start, args.days, args.seed, progress=progress,
                                             force=args.force, plant_agents=args.plant_agents)
        rows = calibration_report(cal, synthetic)
        level_change = synthetic["_level_change"]
        write_json(out / "calibration.json", {"source": str(args.calibrate_from), "calibration": cal.to_dict(),
                                              "marginals": rows,
                                              "level_change": {"real": cal.level_change,
                                                               "synthetic": level_change.tolist()}},
                   overwrite=True)
        write_markdown(out / "calibration.md",
                       report_markdown(cal, rows, str(args.calibrate_from), level_change), overwrite=True)
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    worst = max(rows, key=lambda r: r["ks_distance"]) if rows else None
    print(f"synth: wrote {out} calibrated from {args.calibrate_from} ({cal.hours:.1f} h, {cal.trades:,} trades); "
          f"{len(rows)} marginals compared in {out / 'calibration.md'}"
          + (f", largest KS distance {worst['ks_distance']:.3f} ({worst['marginal']})" if worst else ""),
          file=sys.stderr)
    return 0

def main(argv: list[str] | None = None) -> int:
    """``python -m clusterlob.synth``: write a synthetic tape; one-line errors, progress on stderr."""
    parser = OneLineParser(prog="python -m clusterlob.synth", description="Write a synthetic BTCUSDT-futures tape with planted order-flow types.")
    parser.add_argument("--start", required=True, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, required=True, help="number of days (>= 1)")
    parser.add_argument("--trades-per-day", type=float, default=None,
                        help="mean trades per day over a week (planted-agent model; required without --calibrate-from)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="new tape directory")
    parser.add_argument("--snapshot-ms", type=int, default=100, help="book snapshot cadence (default 100)")
    parser.add_argument("--levels", type=int, default=MAX_LEVELS, help="book levels per side (default 25)")
    parser.add_argument("--force", action="store_true", help="replace the clusterlob tape at --out (never a folder clusterlob did not write)")
    parser.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    parser.add_argument("--calibrate-from", default=None, metavar="TAPE",
                        help="draw days from the marginals of this real tape (>= 1 hour, with a book) instead of "
                             "the planted-agent model; writes calibration.md/.json into --out")
    parser.add_argument("--plant-agents", action="store_true",
                        help="with --calibrate-from: add planted agent types whose side follows the book "
                             "imbalance (default off: marginals only)")
    parser.add_argument("--calibrate-days", default=None, metavar="FROM:TO",
                        help="days of --calibrate-from to estimate on (default all)")
    args = parser.parse_args(argv)
    if args.calibrate_from is not None:
        return _calibrated(args)
    if args.plant_agents:
        return error_exit(ParameterError("--plant-agents goes with --calibrate-from (the planted-agent "
                                         "model always plants its agents)"))
    if args.trades_per_day is None:
        return error_exit(ParameterError("--trades-per-day is required (or use --calibrate-from TAPE)"))

    steps = Progress("synth", total=args.days if args.days > 0 else None, unit="day", quiet=args.quiet)

    def progress(day, n, m):
        steps.step(rows=n, note=f"{day}: {n:,} trades, {m:,} snapshots")

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
