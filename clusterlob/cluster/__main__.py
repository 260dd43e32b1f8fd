from __future__ import annotations
from ..report import to_jsonable
from ..errors import ClusterlobError
from ..features.settings import FeatureSettings
from .._cli import OneLineParser
from .._io import Progress, begin_output, check_output_dir, finish_output, output_overwrite
from ..errors import ParameterError
import argparse
from .._cli import error_exit
import json
import sys
import time
from ..tape.location import resolve_tape
from .fit import FitSettings
from .model import ClusterModel, fit_model
from .importance import FeatureImportance, feature_importance
from .centroids import FeatureSummary, OUTPUT_FILES, centroid_table, collect_features, write_cluster_outputs
from .diagnostics import bootstrap_fit, check_bootstrap, start_agreement

def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m clusterlob.cluster",
        description="Fit K-Means++ on a tape's trade features, align roles, write model and centroid report.")
    p.add_argument("tape_dir", metavar="TAPE_DIR", help="tape directory (python -m clusterlob.convert)")
    p.add_argument("--days", default=None, help="FROM:TO (inclusive, either end optional) or one day")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for model.json and centroids.*")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    g = p.add_argument_group("clustering")
    FitSettings.add_arguments(g)
    g.add_argument("--bootstrap", type=int, default=None, metavar="N",
                   help="refit N >= 2 times on resampled days and report each centroid's spread (default off)")
    f = p.add_argument_group("features")
    FeatureSettings.add_arguments(f, selection=True)
    return p


def _text_summary(model: ClusterModel, summary: FeatureSummary, paths: dict, seconds: float,
                  importance: FeatureImportance | None = None, agreement=None, bootstrap=None) -> str:
    per = summary.zero_std_by_feature()
    lines = [f"features: {summary.trades:,} trades, {summary.unknown_side_trades:,} unknown side, "
             f"{summary.warmup_rows:,} warm-up rows, {summary.zero_std_rows:,} zero-std rows"
             + (" (" + ", ".join(f"{n} {v:,}" for n, v in per.items()) + ")" if per else "")
             + f", {summary.rows_used:,} rows used",
             f"model: k={model.k}, inertia {model.inertia:.6g}, {model.n_iter} iterations, "
             f"{'converged' if model.converged else 'not converged'}, {seconds:.1f} s"]
    for r in centroid_table(model):
        lines.append(f"  cluster {r.cluster} {r.role:<13} {r.count:>12,} {100 * r.share:5.1f}%  "
                     + " ".join(f"{n}={v:+.2f}" for n, v in zip(model.feature_names, r.centroid_z)))
    if importance is not None:
        lines.append(f"separating features (share of between-cluster SS): "
                     f"{importance.summary(len(model.feature_names))}")
    if summary.diagnostics is not None:
        lines += [f"warning: {w}" for w in summary.diagnostics.warnings()]
    if agreement is not None:
        lines.append(f"stability: {agreement.summary()}")
    if bootstrap is not None:
        lines.append(f"stability: {bootstrap.summary()}")
    lines.append("wrote " + ", ".join(str(p) for p in paths.values()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    progress = Progress("cluster", quiet=args.quiet)
    try:
        settings = FeatureSettings.from_args(args)
        fit = FitSettings.from_args(args)
        if args.bootstrap is not None:
            check_bootstrap(args.bootstrap)
        tape = resolve_tape(args.tape_dir)          # a path or a URI: an unknown scheme fails here
        out_dir = check_output_dir(args.out, kind="cluster", force=args.force, inputs=[tape.local_path],
                                   files=OUTPUT_FILES, progress=progress)   # before the long work
        overwrite = output_overwrite(out_dir, "cluster", args.force)
        z, summary = collect_features(tape, settings, args.days, progress=progress)
        if summary.rows_used < fit.k:
            raise ParameterError(f"only {summary.rows_used} valid feature rows in {tape.where()} "
                                 f"(days {args.days or 'all'}), fewer than k={fit.k}")
        progress(f"fitting k={fit.k} on {summary.rows_used:,} rows")
        start = time.perf_counter()
        model, labels = fit_model(z, settings, fit,
                                  source={"tape": tape.where(), "days": list(summary.days)})
        seconds = time.perf_counter() - start
        importance = feature_importance(z, labels, model.k, feature_names=model.feature_names)
        del labels
        agreement = start_agreement(z, model, seed=fit.seed)
        boot = None
        if args.bootstrap is not None:
            progress(f"bootstrap: {args.bootstrap} refits on resampled days")
            boot = bootstrap_fit(z, summary.day_rows, model, args.bootstrap, seed=fit.seed, progress=progress)
        del z
        begin_output(out_dir, "cluster")
        paths = write_cluster_outputs(out_dir, model, summary, importance=importance,
                                      overwrite=overwrite, agreement=agreement, bootstrap=boot)
        finish_output(out_dir, "cluster", paths.values())
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        print(json.dumps(to_jsonable({"feature_summary": summary.to_dict(),
                          "model": {k: v for k, v in model.to_dict().items() if k != "source"},
                          "clusters": [r.to_dict() for r in centroid_table(model)],
                          "feature_importance": importance.to_dict(),
                          "feature_diagnostics": (summary.diagnostics.to_dict()
                                                  if summary.diagnostics is not None else None),
                          "start_agreement": agreement.to_dict() if agreement is not None else None,
                          "bootstrap": boot.to_dict() if boot is not None else None,
                          "fit_seconds": seconds,
                          "files": {k: str(v) for k, v in paths.items()}}), indent=2))
    else:
        print(_text_summary(model, summary, paths, seconds, importance, agreement, boot))
    return 0




if __name__ == "__main__":
    sys.exit(main())
