from __future__ import annotations
from ..report import to_jsonable
from ..errors import ClusterlobError
from .._cli import OneLineParser
from ..errors import ParameterError
from pathlib import Path
import argparse
import dataclasses
from .._cli import error_exit
import json
import sys
from ..cluster.compare import DEFAULT_MIN_ROWS_PER_CLUSTER, MODEL_FILES, OUTPUT_FILES, _existing, compare_tapes, text_report, write_compare_outputs
from ..features.build import FeatureSettings
from ..cluster.model import load_model

_FEATURE_FLAGS = (("levels", int, "book levels D (default 5)"),
                  ("window", int, "z-score window W in trades (default 100)"),
                  ("z_clip", float, "clip z to +-this (default 5)"),
                  ("convention", str, "paper (sbs = consumed side, default) or aggressor"),
                  ("asof", str, "strict (default) or at_or_before"),
                  ("time_key", str, "local (default) or exchange"))


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
    p.add_argument("--model-a", default=None, metavar="MODEL",
                   help="label TAPE_A with this model.json, do not fit")
    p.add_argument("--model-b", default=None, metavar="MODEL",
                   help="label TAPE_B with this model.json, do not fit")
    g = p.add_argument_group("clustering (tapes without a model)")
    g.add_argument("--k", type=int, default=3, help="clusters (default 3)")
    g.add_argument("--n-init", type=int, default=3, help="K-Means++ restarts (default 3)")
    g.add_argument("--seed", type=int, default=0, help="seed of all randomness (default 0)")
    g.add_argument("--fit-sample", type=int, default=None, metavar="N",
                   help="fit on N rows drawn with the seed")
    g.add_argument("--margin", type=float, default=0.25, help="role alignment margin in z (default 0.25)")
    g.add_argument("--min-rows-per-cluster", type=int, default=DEFAULT_MIN_ROWS_PER_CLUSTER,
                   help="a tape needs this many valid feature rows per cluster "
                        f"(default {DEFAULT_MIN_ROWS_PER_CLUSTER})")
    f = p.add_argument_group("features (same for both tapes; default: a given model's, else these defaults)")
    for name, kind, text in _FEATURE_FLAGS:
        f.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    return p


def _settings(args, models) -> FeatureSettings:
    given = {name: getattr(args, name) for name, _, _ in _FEATURE_FLAGS if getattr(args, name) is not None}
    base = next((m.settings for m in models if m is not None), FeatureSettings())
    return dataclasses.replace(base, **given)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    def progress(line):
        print(line, file=sys.stderr, flush=True)

    try:
        out_dir = Path(args.out)
        if not args.force:   # refuse before the long work, not after
            names = list(OUTPUT_FILES) + [m for m, given in zip(MODEL_FILES, (args.model_a, args.model_b))
                                          if given is None]
            if _existing(out_dir, names):
                raise ParameterError(f"output directory {out_dir} already has "
                                     f"{', '.join(_existing(out_dir, names))} (use --force to replace)")
        models = [load_model(m) if m is not None else None for m in (args.model_a, args.model_b)]
        settings = _settings(args, models)
        for flag, m in zip(("--model-a", "--model-b"), models):
            if m is not None:
                m.check_settings(settings, where=f"{flag} {getattr(args, flag[2:].replace('-', '_'))}")
        comparison = compare_tapes(
            args.tape_a, args.tape_b, settings, days_a=args.days,
            days_b=args.days_b if args.days_b is not None else args.days,
            model_a=models[0], model_b=models[1], progress=progress, k=args.k, n_init=args.n_init,
            seed=args.seed, fit_sample=args.fit_sample, margin=args.margin,
            min_rows_per_cluster=args.min_rows_per_cluster)
        paths = write_compare_outputs(out_dir, comparison, overwrite=args.force)
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
