"""``python -m clusterlob.walkforward``: the rolling walk-forward from the command line.

::

    python -m clusterlob.walkforward TAPE_DIR --train-days 7 --test-days 1 --out OUT_DIR
        [--alignment rule|distance] [--workers N] [--json] [--force]
        [--k 3] [--n-init 1] [--seed 0] [--fit-sample N|all] [--margin 0.25]
        [--bucket-s 300] [--horizons 1,2,5] [--fee-bps 3] [--quantile 0.5] [--min-day-rows 1]
        [--levels 5] [--window 100] [--z-clip 5] [--convention paper|aggressor]
        [--asof strict|at_or_before] [--time-key local|exchange]

Progress (days done of total, elapsed, estimated time left) goes to stderr; the summary
(or with ``--json`` the whole result) to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .._cli import OneLineParser, error_exit
from .._io import check_output_dir, output_overwrite, process_pool
from ..errors import ClusterlobError, ParameterError
from ..features.build import FeatureSettings
from ..report import to_jsonable
from ..cluster.roles import DEFAULT_MARGIN
from ..signals.timeframes import ThresholdRule
from .run import OUTPUT_FILES, run_walkforward, write_outputs
from .windows import ALIGNMENTS, WalkForwardSettings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m clusterlob.walkforward",
        description="Rolling walk-forward: fit on T days, label and score the next day out of sample.")
    p.add_argument("tape_dir", metavar="TAPE_DIR", help="tape directory (python -m clusterlob.convert)")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="results folder (its cache/ is reused)")
    p.add_argument("--train-days", type=int, default=7, help="training days T (default 7)")
    p.add_argument("--test-days", type=int, default=1, help="test days after each training block (default 1)")
    p.add_argument("--step-days", type=int, default=None,
                   help="days between window starts (default: --test-days; smaller would overlap test days)")
    p.add_argument("--alignment", default="rule", choices=ALIGNMENTS,
                   help="roles by rule (default) or by distance to the first window's centres")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for feature days and window fits (default: CPUs; 1 = serial)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON on stdout")
    p.add_argument("--force", action="store_true", help="replace existing result files")
    g = p.add_argument_group("clustering and scoring")
    g.add_argument("--k", type=int, default=3, help="clusters (default 3)")
    g.add_argument("--n-init", type=int, default=1, help="K-Means++ restarts, best inertia kept (default 1)")
    g.add_argument("--seed", type=int, default=0, help="seed of all randomness (default 0)")
    g.add_argument("--fit-sample", default="1000000", metavar="N|all",
                   help="rows (seeded sample) the centres are fit on (default 1000000; all = every row)")
    g.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help=f"rule-alignment margin in z (default {DEFAULT_MARGIN:g})")
    g.add_argument("--bucket-s", type=float, default=300.0, help="OFI bucket width in seconds (default 300)")
    g.add_argument("--horizons", default="1", help="IC horizons in buckets, comma separated (default 1)")
    g.add_argument("--fee-bps", type=float, default=3.0, help="taker fee per side (default 3)")
    g.add_argument("--quantile", type=float, default=0.5,
                   help="taker threshold quantile of past |OFI| (default 0.5)")
    g.add_argument("--min-day-rows", type=int, default=1,
                   help="a day with fewer valid feature rows is empty: its windows are skipped (default 1)")
    f = p.add_argument_group("features")
    FeatureSettings.add_arguments(f)
    return p


def _settings(args) -> tuple[FeatureSettings, WalkForwardSettings]:
    settings = FeatureSettings.from_args(args)
    if args.fit_sample == "all":
        fit_sample = None
    else:
        try:
            fit_sample = int(args.fit_sample)
        except ValueError:
            raise ParameterError(f"`--fit-sample` must be an integer or 'all', got {args.fit_sample!r}") from None
    try:
        horizons = tuple(int(h) for h in args.horizons.split(","))
    except ValueError:
        raise ParameterError(f"`--horizons` must be comma-separated integers, got {args.horizons!r}") from None
    wf = WalkForwardSettings(train_days=args.train_days, test_days=args.test_days, step_days=args.step_days,
                             k=args.k, n_init=args.n_init, seed=args.seed, fit_sample=fit_sample,
                             margin=args.margin, alignment=args.alignment, bucket_s=args.bucket_s,
                             horizons=horizons, threshold=ThresholdRule(quantile=args.quantile),
                             fee_bps=args.fee_bps, min_day_rows=args.min_day_rows)
    return settings, wf


class _Progress:
    """One stderr line per finished item: done of total, elapsed, estimated time left."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.stage_start: dict = {}
        self.base: dict = {}

    def __call__(self, stage: str, done: int, total: int, label) -> None:
        now = time.perf_counter()
        if stage not in self.stage_start:          # a stage starts when the previous one ended
            self.stage_start[stage] = self.last
            self.base[stage] = 0
        if label is None:                          # days reused from the cache: instant
            self.base[stage] = done
            self.stage_start[stage] = now
        self.last = now
        rate_n = done - self.base[stage]
        elapsed = now - self.stage_start[stage]
        eta = f", ETA {elapsed / rate_n * (total - done):.0f} s" if rate_n > 0 else ""
        what = "reused from the cache" if label is None else label
        print(f"walkforward: {stage} {done}/{total} ({what}), elapsed {now - self.start:.1f} s{eta}",
              file=sys.stderr, flush=True)


def _text(result, paths) -> str:
    lines = [f"walk-forward: {len(result.fitted)} of {len(result.windows)} windows fitted "
             f"({result.walkforward.alignment} alignment); days built {result.timing['days_built']}, "
             f"reused {result.timing['days_reused']}"]
    if result.ic_aggregate is not None:
        for r in result.ic_aggregate.rows:
            if r.weighting == "size" and r.statistic == "pearson" and r.horizon == result.walkforward.horizons[0]:
                if r.n_windows == 0:
                    lines.append(f"  OOS IC {r.group:<13} n/a (unassigned or no IC in every window)")
                    continue
                std = "n/a" if r.std != r.std else f"{r.std:.4f}"
                t = "n/a" if r.t_stat != r.t_stat else f"{r.t_stat:+.2f}"
                lines.append(f"  OOS IC {r.group:<13} mean {r.mean:+.4f}  std {std}  t {t}  ({r.n_windows} windows)")
    for g, v in result.equity.items():
        lines.append(f"  OOS taker equity {g:<13} {100.0 * float(v[-1]) if v.size else 0.0:+.3f} %")
    lines += [f"  note: {n}" for n in result.notes]
    lines.append(f"wrote {len(paths)} files into {paths[0].parent if paths else '-'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings, wf = _settings(args)
        if args.workers is not None and not 1 <= args.workers <= 256:
            raise ParameterError(f"`--workers` must be an integer in 1..256, got {args.workers}")
        say = lambda line: print(f"walkforward: {line}", file=sys.stderr, flush=True)  # noqa: E731
        out = check_output_dir(args.out, kind="walkforward", force=args.force, inputs=[args.tape_dir],
                               files=OUTPUT_FILES + ("models",), progress=say)
        overwrite = output_overwrite(out, "walkforward", args.force)   # a killed run's files: resumed
        workers = args.workers or os.cpu_count() or 1
        progress = _Progress()
        if workers == 1:
            result = run_walkforward(args.tape_dir, out, settings, wf, progress=progress)
        else:
            with process_pool(workers) as pool:      # workers exit if this process is killed
                result = run_walkforward(args.tape_dir, out, settings, wf, executor=pool,
                                         progress=progress)
        paths = write_outputs(result, out, overwrite=overwrite)
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        print(json.dumps(to_jsonable(result.to_dict()), indent=2))
    else:
        print(_text(result, [p for p in paths if p.parent.name != "models"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
