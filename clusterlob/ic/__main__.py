from __future__ import annotations
from ..report import to_jsonable
from ..errors import ClusterlobError
from .._cli import OneLineParser
from .._io import Progress, begin_output, check_output_dir, finish_output, output_overwrite
from ..errors import ParameterError
import argparse
from .._cli import error_exit
import json
import math
import sys
import time
from ..signals.study import OUTPUT_FILES, GROUP_BY, ICSettings, _TIME_KEY_COLUMN, run_ic_study, write_ic_outputs
from ..signals.timeframes import ThresholdRule
from ..cluster.model import load_model
from ..tape.location import local_tape_path

def _int_list(text: str, what: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ParameterError(f"--{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ParameterError(f"--{what} must be integers >= 1, got {text!r}")
    return values


def _float_list(text: str, what: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ParameterError(f"--{what} must be comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0 or max(values) > 527_040:
        raise ParameterError(f"--{what} must be numbers > 0 and at most a year (527040 min), got {text!r}")
    return tuple(int(v) if v.is_integer() and v < 2 ** 53 else v for v in values)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m clusterlob.ic",
        description="Bucketed OFI per role/cluster vs future mid returns: IC tables (pooled and per day), "
                    "the taker timeframe analysis (with the BIASED simultaneous diagnostic beside it) and "
                    "in-sample vs out-of-sample ICs.")
    p.add_argument("tape_dir", help="tape directory (python -m clusterlob.convert or clusterlob.synth)")
    p.add_argument("--model", default=None, help="model JSON from python -m clusterlob.cluster")
    p.add_argument("--group-by", choices=GROUP_BY, default=None,
                   help="role (default with --model), cluster, or agent (the planted type column of a "
                        "synthetic tape; default without --model)")
    p.add_argument("--days", default=None, help="FROM:TO (inclusive, either end optional) or one day")
    p.add_argument("--in-sample", default=None,
                   help="in-sample days FROM:TO for in vs out of sample (default: the model's fit days)")
    p.add_argument("--bucket", type=float, default=300, help="IC bucket width in seconds (default 300)")
    p.add_argument("--horizons", default="1,2,5", help="return horizons in buckets (default 1,2,5)")
    p.add_argument("--timeframes", default="5,15,30", help="taker bucket widths in minutes (default 5,15,30)")
    p.add_argument("--fee-bps", type=float, default=3.0, help="taker fee per side, bps (default 3)")
    p.add_argument("--threshold-quantile", type=float, default=0.5,
                   help="trade when |OFI| exceeds this quantile of past |OFI| (default 0.5)")
    p.add_argument("--threshold-window", type=int, default=288, help="past buckets in the quantile (default 288)")
    p.add_argument("--threshold-min-history", type=int, default=12,
                   help="past buckets needed before trading (default 12)")
    p.add_argument("--time-key", choices=tuple(_TIME_KEY_COLUMN), default="local",
                   help="clock for the buckets (default local receive time)")
    p.add_argument("--book-levels", type=int, default=5,
                   help="D of the book order-flow imbalance rows (touch, D levels, and both without the "
                        "trades' part); 0 leaves them out (default 5)")
    p.add_argument("--out", required=True, help="output folder (created; existing files are refused)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--json", action="store_true", help="print the JSON summary to stdout")
    p.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m clusterlob.ic``; returns the exit status (0 ok, 2 user error)."""
    args = _parser().parse_args(argv)
    try:
        settings = ICSettings(
            bucket_s=(int(args.bucket) if float(args.bucket).is_integer() and abs(args.bucket) < 2 ** 53
                      else args.bucket),
            horizons=_int_list(args.horizons, "horizons"),
            timeframes_min=_float_list(args.timeframes, "timeframes"), fee_bps=args.fee_bps,
            threshold=ThresholdRule(args.threshold_quantile, args.threshold_window, args.threshold_min_history),
            time_key=args.time_key, book_levels=args.book_levels)
        progress = Progress("ic", quiet=args.quiet)
        out_dir = check_output_dir(args.out, kind="ic", force=args.force, files=OUTPUT_FILES, progress=progress,
                                   inputs=[local_tape_path(args.tape_dir), args.model])   # before the long work
        overwrite = output_overwrite(out_dir, "ic", args.force)
        model = None
        if args.model is not None:
            model = load_model(args.model)
        group_by = args.group_by or ("role" if model is not None else "agent")
        started = time.monotonic()
        study = run_ic_study(args.tape_dir, model=model, group_by=group_by, days=args.days,
                             in_sample=args.in_sample, settings=settings,
                             progress=progress)
        begin_output(out_dir, "ic")
        paths = write_ic_outputs(study, out_dir, overwrite=overwrite)
        finish_output(out_dir, "ic", paths.values())
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        print(json.dumps(to_jsonable({"outputs": {k: str(v) for k, v in paths.items()},
                                      "ic_pooled": study.pooled.to_dict(), "notes": study.notes}), indent=2))
    else:
        h1 = study.settings.horizons[0]
        best = max((r for r in study.pooled.rows if r.weighting == "size" and r.horizon == h1),
                   key=lambda r: r.pearson if math.isfinite(r.pearson) else -math.inf)
        print(f"{len(study.days)} days, {study.counts.get('trades_known_side', 0):,} trades; best size-weighted "
              f"IC at h={h1}: {best.group} {best.pearson:+.4f} (Spearman {best.spearman:+.4f}, "
              f"{best.n_buckets:,} buckets); "
              f"{time.monotonic() - started:.1f} s; wrote {', '.join(sorted(paths))} to {args.out}")
        book = [r for r in study.pooled.rows if r.weighting == "size" and r.horizon == h1
                and r.group.startswith("book OFI")]
        if book:
            print(f"book OFI IC at h={h1} (Pearson / Spearman, {book[0].n_buckets} buckets): "
                  + "; ".join(f"{r.group} {r.pearson:+.4f} / {r.spearman:+.4f}" for r in book))
    for note in study.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
