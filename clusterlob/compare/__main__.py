from __future__ import annotations
from ..report import to_jsonable
from ..errors import ClusterlobError
from .._cli import OneLineParser
from .._io import Progress, begin_output, check_output_dir, finish_output, output_overwrite
import argparse
from .._cli import error_exit
import json
import sys
from ..cluster.compare import DEFAULT_MIN_ROWS_PER_CLUSTER, MODEL_FILES, OUTPUT_FILES, compare_tapes, text_report, write_compare_outputs
from ..features.settings import FeatureSettings
from ..cluster.fit import FitSettings
from ..cluster.model import load_model

def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m clusterlob.compare",
        description="Compare two tapes: activity per day, cluster centroids and the features "
                    "that separate the clusters, side by side.")
    p.add_argument("tape_a", metavar="TAPE_A", help="first tape directory (python -m clusterlob.convert)")
    p.add_argument("tape_b", metavar="TAPE_B", help="second tape directory")
    p.add_argument("--days", default=None,
                   help="days of TAPE_A (and of TAPE_B unless --days-b): FROM:TO or one day")
    p.add_argument("--days-b", default=None, help="days of TAPE_B")
    p.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="folder for compare.md/.json and the CSV tables")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    p.add_argument("--model-a", default=None, metavar="MODEL",
                   help="label TAPE_A with this model.json, do not fit")
    p.add_argument("--model-b", default=None, metavar="MODEL",
                   help="label TAPE_B with this model.json, do not fit")
    g = p.add_argument_group("clustering (tapes without a model)")
    FitSettings.add_arguments(g)
    g.add_argument("--min-rows-per-cluster", type=int, default=DEFAULT_MIN_ROWS_PER_CLUSTER,
                   help="a tape needs this many valid feature rows per cluster "
                        f"(default {DEFAULT_MIN_ROWS_PER_CLUSTER})")
    FeatureSettings.add_arguments(
        p.add_argument_group("features (same for both tapes; default: a given model's, else these defaults)"),
        unset=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    progress = Progress("compare", quiet=args.quiet)

    try:
        names = list(OUTPUT_FILES) + [m for m, given in zip(MODEL_FILES, (args.model_a, args.model_b))
                                      if given is None]
        out_dir = check_output_dir(args.out, kind="compare", force=args.force, files=names, progress=progress,
                                   inputs=[args.tape_a, args.tape_b, args.model_a, args.model_b])
        overwrite = output_overwrite(out_dir, "compare", args.force)
        fit = FitSettings.from_args(args)
        models = [load_model(m) if m is not None else None for m in (args.model_a, args.model_b)]
        settings = FeatureSettings.from_args(args, base=next((m.settings for m in models if m is not None), None))
        for flag, m in zip(("--model-a", "--model-b"), models):
            if m is not None:
                m.check_settings(settings, where=f"{flag} {getattr(args, flag[2:].replace('-', '_'))}")
        comparison = compare_tapes(
            args.tape_a, args.tape_b, settings, days_a=args.days,
            days_b=args.days_b if args.days_b is not None else args.days,
            model_a=models[0], model_b=models[1], progress=progress, fit=fit,
            min_rows_per_cluster=args.min_rows_per_cluster)
        begin_output(out_dir, "compare")
        paths = write_compare_outputs(out_dir, comparison, overwrite=overwrite)
        finish_output(out_dir, "compare", paths.values())
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        doc = comparison.to_dict()
        doc["files"] = {k: str(v) for k, v in paths.items()}
        print(json.dumps(to_jsonable(doc), indent=2))
    else:
        print(text_report(comparison))
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0




if __name__ == "__main__":
    sys.exit(main())
