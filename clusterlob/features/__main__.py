from __future__ import annotations
from ..errors import ClusterlobError
from .._cli import OneLineParser
from .._io import Progress
from ..tape.store import read_manifest
from ..tape.types import parse_days
from .._cli import error_exit
import json
import sys
from .build import iter_features, merge_counts
from .settings import FeatureSettings

# -- command line ----------------------------------------------------------------------------

def _summary_text(path, settings: FeatureSettings, per_day: list, total: dict) -> str:
    lines = [f"features of {path} ({len(per_day)} days), settings {settings.to_dict()}",
             f"  trades {total['trades']:,}: unknown side {total['unknown_side']:,}, "
             f"before the first snapshot {total['no_book_before']:,}, rows used {total['rows']:,}, "
             f"valid rows {total['valid_rows']:,}",
             f"  {'feature':<8} {'warm-up':>9} {'non-finite':>11} {'zero std':>10} {'clipped':>10}"]
    for name in tuple(settings.features) + ("total",):
        lines.append(f"  {name:<8} {total['warmup_rows'][name]:>9,} {total['nonfinite_raw'][name]:>11,} "
                     f"{total['zero_std_rows'][name]:>10,} {total['clipped'][name]:>10,}")
    lines.append("  (total: rows with any feature affected)")
    lines.extend(f"  {day}: {c['rows']:,} rows, {c['valid_rows']:,} valid" for day, c in per_day)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m clusterlob.features TAPE_DIR [--days FROM:TO] [--json]``: feature counts."""
    parser = OneLineParser(
        prog="python -m clusterlob.features",
        description="Compute the six trade features and their rolling z-scores day by day "
                    "(state carried across days) and print what was used, skipped and floored.")
    parser.add_argument("tape_dir", help="tape directory (manifest.json, trades/, book/)")
    parser.add_argument("--days", help="FROM:TO (inclusive, either end optional) or one day")
    FeatureSettings.add_arguments(parser, selection=True)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    args = parser.parse_args(argv)
    try:
        settings = FeatureSettings.from_args(args)
        chosen = parse_days(args.days, [d["date"] for d in read_manifest(args.tape_dir)["days"]])
        steps = Progress("features", total=len(chosen), unit="day", quiet=args.quiet)
        per_day = []
        for day, features in iter_features(args.tape_dir, settings, chosen):
            per_day.append((day, features.counts))
            steps.step(rows=features.counts["rows"], note=day)
        total = merge_counts(c for _, c in per_day)
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        print(json.dumps({"tape_dir": str(args.tape_dir), "feature_names": list(settings.features),
                          "settings": settings.to_dict(), "settings_key": settings.key(),
                          "counts": total, "days": [{"date": d, "counts": c} for d, c in per_day]},
                         indent=2))
    else:
        print(_summary_text(args.tape_dir, settings, per_day, total))
    return 0




if __name__ == "__main__":
    sys.exit(main())
