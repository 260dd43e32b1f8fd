"""``python -m clusterlob.replay``: the main job, then its summary.

With no arguments: read the embedded default tape (``data/default_tape``), build the
features, fit K-Means++ on the first day, align the clusters to roles, label the later
days' trades with that model (out of sample) and replay the market maker over them;
print a summary table.  The work is :func:`clusterlob.replay.run_pipeline`; this module
parses the flags, prints and writes.  See ``docs/replay.md`` for every line of the output;
with ``--online`` the replayed days go event by event through the online engine
(``docs/online.md``): the same summary, the same numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .._cli import OneLineParser, error_exit
from .._io import Progress, begin_output, check_number, check_output_dir, check_output_name, finish_output, output_overwrite
from ..cluster.fit import FitSettings
from ..errors import ClusterlobError, ParameterError
from ..report import to_jsonable
from ..tape.location import local_tape_path
from .pipeline import DEFAULT_TAPE, run_pipeline
from .strategy import StrategyConfig
from .summary import OUTPUT_FILES, format_table, write_outputs

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m clusterlob.replay",
        description="Fit the clusters on the first part of a tape, then replay the market maker "
                    "on the rest, event by event (out of sample). With no arguments: the embedded "
                    "default tape.")
    p.add_argument("--tape", metavar="DIR", default=None,
                   help=f"tape directory (default: the embedded {DEFAULT_TAPE.parent.name}/{DEFAULT_TAPE.name})")
    p.add_argument("--model", metavar="MODEL.json", default=None,
                   help="use this fitted model (python -m clusterlob.cluster) instead of fitting one")
    p.add_argument("--train-days", metavar="SPEC", default=None,
                   help="days to fit the model on: FROM:TO, one day or a comma list (default: the first day)")
    p.add_argument("--replay-days", metavar="SPEC", default=None,
                   help="days to replay (default: every day after the training days; with --model, all days)")
    p.add_argument("--compare", action="store_true",
                   help="run the inverted and the traditional mapping on the same events, side by side")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write fills.parquet, equity.parquet, summary.json (and equity.png with matplotlib)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--online", action="store_true",
                   help="replay event by event through the online engine (clusterlob.replay.online) "
                        "and the simulated gateway; --tape may then be a raw Binance recording")
    p.add_argument("--tick-size", type=float, default=None, metavar="FLOAT",
                   help="price increment of a raw recording (--online with a recording file)")
    p.add_argument("--mark-interval", type=float, default=None, metavar="SECONDS",
                   help="spacing of the equity marks behind the Sharpe ratio and equity.parquet (default "
                        "60; 1 when the replay spans less than 30 minutes, and for a raw recording)")
    p.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    p.add_argument("--funding", choices=("tape", "config"), default="tape",
                   help="funding paid at the rates of the tape's funding table when it has one (tape, default), "
                        "or always the constant --funding-rate (config)")
    p.add_argument("--order-latency", metavar="FILE", default=None,
                   help="order latencies from a file of (req_ts_us, exch_ts_us, resp_ts_us) rows, CSV or "
                        "hftbacktest .npz, interpolated in time (instead of the constant latencies)")
    FitSettings.add_arguments(p.add_argument_group("clustering (when no --model is given)"))
    StrategyConfig.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    progress = Progress("replay", quiet=args.quiet)
    try:
        start = time.perf_counter()
        mark_interval_us = None
        if args.mark_interval is not None:
            seconds = check_number("--mark-interval", args.mark_interval, 0, lo_open=True)
            mark_interval_us = round(seconds * 1e6)
            if mark_interval_us < 1:
                raise ParameterError(f"`--mark-interval` must be at least 1 microsecond, got {args.mark_interval!r}")
        overwrite = {}
        if args.out is not None:            # refuse before the work, not after
            tape_local = local_tape_path(args.tape) if args.tape is not None else None   # resolves a URI
            check_output_name(args.out, inputs=[tape_local, args.model])
            for sub in (("inverted", "traditional") if args.compare else ("",)):
                folder = check_output_dir(Path(args.out) / sub, kind="replay", force=args.force,
                                          inputs=[tape_local, args.model], files=OUTPUT_FILES, progress=progress)
                overwrite[sub] = output_overwrite(folder, "replay", args.force)
        if args.model and args.train_days:
            raise ParameterError("--train-days cannot be used with --model (the model is already fit)")
        run = run_pipeline(args.tape, args.train_days, args.replay_days, StrategyConfig.from_args(args),
                           fit=FitSettings.from_args(args), model=args.model,
                           engine="online" if args.online else "batch",
                           mappings=("inverted", "traditional") if args.compare else None,
                           tick_size=args.tick_size, mark_interval_us=mark_interval_us,
                           funding="tape" if args.funding == "tape" else None, order_latency=args.order_latency,
                           progress=progress)
        written = []
        if args.out is not None:
            for mapping, result in run.results.items():
                name = mapping if args.compare else ""
                folder_out = Path(args.out) / name
                begin_output(folder_out, "replay")
                paths, notes = write_outputs(folder_out, run, result, overwrite[name])
                finish_output(folder_out, "replay", paths)
                written += paths
                for note in notes:
                    progress(note)
        seconds = time.perf_counter() - start
        if args.json:
            doc = {**run.to_dict(), "seconds": seconds, "written": [str(p) for p in written]}
            print(json.dumps(to_jsonable(doc), indent=2))
        else:
            print(format_table(run))
            if written:
                print("wrote " + ", ".join(str(p) for p in written))
            progress(f"done in {seconds:.1f} s")
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
