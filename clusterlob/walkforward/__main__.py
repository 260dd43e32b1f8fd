"""``python -m clusterlob.walkforward``: the rolling walk-forward from the command line.

::

    python -m clusterlob.walkforward TAPE_DIR --train-days 7 --test-days 1 --out OUT_DIR
        [--alignment rule|distance] [--workers N | --scheduler ADDRESS] [--json] [--force]
        [--k 3] [--n-init 1] [--seed 0] [--fit-sample N|all] [--max-iter 300] [--tol 1e-4] [--margin 0.25]
        [--bucket-s 300] [--horizons 1,2,5] [--fee-bps 3] [--quantile 0.5] [--min-day-rows 1]
        [--levels 5] [--window 100] [--z-clip 5] [--convention paper|aggressor]
        [--asof strict|at_or_before] [--time-key local|exchange]

Progress (days done of total, elapsed, estimated time left) goes to stderr; the summary
(or with ``--json`` the whole result) to stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .._cli import OneLineParser, error_exit
from .._exec import DEFAULT_CONNECT_TIMEOUT_S, open_executor
from .._io import Progress, check_output_dir, output_overwrite
from ..errors import ClusterlobError, ParameterError
from ..features.settings import FeatureSettings
from ..report import to_jsonable
from ..cluster.fit import FitSettings
from ..tape.location import local_tape_path
from ..signals.timeframes import ThresholdRule
from .run import OUTPUT_FILES, run_walkforward, write_outputs
from .windows import ALIGNMENTS, DEFAULT_FIT, WalkForwardSettings

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
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed scheduler (tcp://host:8786) instead of local processes; "
                        "every worker must see TAPE_DIR and OUT_DIR at the same paths")
    p.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT_S, metavar="S",
                   help=f"seconds to wait for the scheduler (default {DEFAULT_CONNECT_TIMEOUT_S:g})")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON on stdout")
    p.add_argument("--force", action="store_true", help="replace existing result files")
    p.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    g = p.add_argument_group("clustering and scoring")
    FitSettings.add_arguments(g, defaults=DEFAULT_FIT)
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
    fit = FitSettings.from_args(args)
    try:
        horizons = tuple(int(h) for h in args.horizons.split(","))
    except ValueError:
        raise ParameterError(f"`--horizons` must be comma-separated integers, got {args.horizons!r}") from None
    wf = WalkForwardSettings(train_days=args.train_days, test_days=args.test_days, step_days=args.step_days,
                             fit=fit, alignment=args.alignment, bucket_s=args.bucket_s,
                             horizons=horizons, threshold=ThresholdRule(quantile=args.quantile),
                             fee_bps=args.fee_bps, min_day_rows=args.min_day_rows)
    return settings, wf


class _Progress:
    """One stderr line per finished item (:class:`clusterlob._io.Progress`: done of total,
    elapsed, ETA), one counter per stage, each timed from the end of the stage before; days
    reused from the cache restart the ETA's clock (they took no time)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.stages: dict = {}
        self.last = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int, label) -> None:
        unit = "day" if stage == "features" else "window"
        counter = self.stages.get(stage)
        if counter is None or label is None:        # new stage, or instant cache reuse
            counter = self.stages[stage] = Progress(f"walkforward {stage}", total=total, unit=unit,
                                                    quiet=self.quiet)
            if label is not None:
                counter.start = self.last           # the stage began when the previous one ended
            counter.done = done - (0 if label is None else 1)
        self.last = time.perf_counter()
        if label is None:
            counter.say(f"{unit} {done:,} of {total:,} reused from the cache")
            return
        counter.step(note=str(label))


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
        lines.append(f"  OOS taker equity {g:<13} {100.0 * float(v[-1]) if v.size else 0.0:+.3f} % "
                     f"({v.size:,} buckets)")
    lines += [f"  note: {n}" for n in result.notes]
    lines.append(f"wrote {len(paths)} files into {paths[0].parent if paths else '-'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings, wf = _settings(args)
        if args.workers is not None and not 1 <= args.workers <= 256:
            raise ParameterError(f"`--workers` must be an integer in 1..256, got {args.workers}")
        say = lambda line: print(f"walkforward: {line}", file=sys.stderr, flush=True)  # noqa: E731
        out = check_output_dir(args.out, kind="walkforward", force=args.force, inputs=[local_tape_path(args.tape_dir)],
                               files=OUTPUT_FILES + ("models",), progress=say)
        overwrite = output_overwrite(out, "walkforward", args.force)   # a killed run's files: resumed
        progress = _Progress(args.quiet)
        with open_executor(args.workers, args.scheduler, timeout_s=args.connect_timeout) as pool:
            result = run_walkforward(args.tape_dir, out, settings, wf, executor=pool, progress=progress)
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
