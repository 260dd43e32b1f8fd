"""``python -m clusterlob.sweep``: parameter sweeps and walk-forward strategy selection.

::

    python -m clusterlob.sweep TAPE --grid grid.toml --days FROM:TO --out DIR
        [--workers N | --scheduler ADDRESS] [--cache DIR] [--heatmap X,Y] [--force] [--json]
    python -m clusterlob.sweep TAPE --grid grid.toml --select --out DIR
        [--train-days T] [--objective sharpe|pnl] [--min-fills N] [--blocks 16] ...

A killed run started again with the same arguments reuses every finished task (``DIR/tasks``).
Progress goes to stderr, the summary (or ``--json``) to stdout.
"""
from __future__ import annotations

import argparse
import json
import sys

from .._cli import OneLineParser, error_exit
from .._exec import DEFAULT_CONNECT_TIMEOUT_S, open_executor
from .._io import (
    Progress,
    check_int,
    check_local_dir,
    check_output_dir,
    mark_output_dir,
)
from ..errors import ClusterlobError
from ..report import to_jsonable
from ..tape.location import local_tape_path
from .report import SELECTION_FILES, SWEEP_FILES, write_selection, write_sweep
from .run import SweepResult, as_grid, run_sweep
from .select import SelectionResult, check_objective, run_selection

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m clusterlob.sweep",
                      description="Replay a grid of market-maker configs over tape days, or choose one "
                                  "on past days and trade it on the next (--select).")
    p.add_argument("tape", metavar="TAPE", help="tape directory: a local folder or a URI pyarrow.fs opens "
                                                 "(file:///abs/tape, s3://bucket/tape, gs://..., hdfs://...)")
    p.add_argument("--grid", required=True, metavar="GRID.toml", help="the grid (see docs/sweep.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder (tasks/ in it make a run resumable)")
    p.add_argument("--days", default=None, metavar="FROM:TO",
                   help="days to sweep (default: every day with a model); with --select the days used")
    p.add_argument("--select", action="store_true",
                   help="walk-forward strategy selection instead of a sweep")
    p.add_argument("--train-days", type=int, default=None,
                   help="--select: training days per window (default: the grid's [fit] train_days)")
    p.add_argument("--objective", default="sharpe", help="--select: sharpe (default) or pnl")
    p.add_argument("--min-fills", type=int, default=0,
                   help="--select: least fills over the training days for a config to be eligible (default 0)")
    p.add_argument("--blocks", type=int, default=16, help="--select: CSCV blocks S, even (default 16)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPUs; 1 = serial)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a Dask distributed scheduler (tcp://host:8786) instead of local processes; every "
                        "worker must see TAPE and DIR at the same paths")
    p.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT_S, metavar="S",
                   help=f"seconds to wait for the scheduler (default {DEFAULT_CONNECT_TIMEOUT_S:g})")
    p.add_argument("--cache", default=None, metavar="DIR", help="feature cache folder (default DIR/cache)")
    p.add_argument("--heatmap", default=None, metavar="X,Y", help="the two swept fields of the heat map")
    p.add_argument("--force", action="store_true", help="replace the result files of an earlier run")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _sweep_text(result, paths) -> str:
    rows = result.by_config()
    best = sorted(rows, key=lambda r: -(r["sharpe_1min"] if r["sharpe_1min"] == r["sharpe_1min"] else -1e300))[:5]
    lines = [f"sweep: {len(result.grid.points)} config(s) x {len(result.days)} day(s), {len(result.rows)} replays"]
    lines += [f"  skipped {s}" for s in result.skipped]
    lines.append("  best by pooled Sharpe (in sample over the swept days):")
    for r in best:
        lines.append(f"    #{r['config']:<4} {r['label']:<50} PnL {r['pnl_total']:>12,.2f}  Sharpe/min "
                     f"{r['sharpe_1min']:+.4f} ({r['minutes']} min)  fills {r['fills']}")
    lines.append(f"wrote {', '.join(p.name for p in paths)} into {paths[0].parent}")
    return "\n".join(lines)


def _select_text(result, paths) -> str:
    d = result.to_dict()
    lines = [f"selection: {d['counts']['selected']} of {d['counts']['windows']} window(s) traded "
             f"(objective {result.objective}, train {result.train_days} day(s))"]
    for w in result.windows:
        if w.status == "selected":
            lines.append(f"  {w.test_day}: chose #{w.chosen} {w.chosen_label}; OOS PnL {w.oos_pnl:,.2f}, "
                         f"rank {w.oos_rank}/{w.n_configs}")
        else:
            lines.append(f"  {w.test_day}: {w.status} ({w.reason})")
    lines.append("  OOS final PnL: " + ", ".join(f"{k} {v:,.2f}" for k, v in d["final_equity"].items()))
    lines.append(f"  chosen mapping: {d['chosen_mapping']}; PBO {d['pbo']['pbo']:.3f} "
                 f"({d['pbo']['n_splits']} CSCV splits)" if d['pbo']['pbo'] == d['pbo']['pbo']
                 else f"  chosen mapping: {d['chosen_mapping']}; PBO n/a ({d['pbo']['note']})")
    lines.append(f"wrote {', '.join(p.name for p in paths)} into {paths[0].parent}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        grid = as_grid(args.grid)
        kind, files = ("sweep-selection", SELECTION_FILES) if args.select else ("sweep", SWEEP_FILES)
        if args.select:
            check_objective(args.objective)
            check_int("--min-fills", args.min_fills, 0)
            if args.blocks < 2 or args.blocks % 2:
                raise ClusterlobError(f"`--blocks` must be an even integer >= 2, got {args.blocks}")
        heat = tuple(args.heatmap.split(",")) if args.heatmap else None
        if heat is not None:
            swept = [n for n, _ in grid.axes]
            bad = [h for h in heat if h not in swept]
            if len(heat) != 2 or bad:
                raise ClusterlobError(f"--heatmap must name two swept fields of {swept}, got {args.heatmap!r}")
        check_local_dir(args.cache, "`--cache`")
        check_output_dir(args.out, kind=kind, force=args.force, inputs=[local_tape_path(args.tape)], files=files)
        mark_output_dir(args.out, kind)
        progress = Progress("sweep", quiet=args.quiet)
        result: SweepResult | SelectionResult
        with open_executor(args.workers, args.scheduler, timeout_s=args.connect_timeout) as ex:
            if args.select:
                result = run_selection(args.tape, grid, train_days=args.train_days, days=args.days,
                                       objective=args.objective, min_fills=args.min_fills, n_blocks=args.blocks,
                                       executor=ex, out_dir=args.out, cache_dir=args.cache, progress=progress)
            else:
                result = run_sweep(args.tape, grid, args.days, ex, out_dir=args.out, cache_dir=args.cache,
                                   progress=progress)
        if isinstance(result, SelectionResult):      # args.select
            paths = write_selection(result, args.out, force=args.force)
        else:
            paths = write_sweep(result, args.out, force=args.force, heatmap_axes=heat)
    except (ClusterlobError, OSError) as exc:
        return error_exit(exc)
    if args.json:
        print(json.dumps(to_jsonable(result.to_dict()), indent=2))
    else:
        print(_select_text(result, paths) if isinstance(result, SelectionResult) else _sweep_text(result, paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
