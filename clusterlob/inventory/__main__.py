"""``python -m clusterlob.inventory``: the synthetic inventory experiment (the research log's
Experiment 6), fixed vs dynamic inventory aversion on seeded regime-switching markets.

The experiment lives in :mod:`clusterlob.replay.inventory`, its reports in
:mod:`clusterlob.replay.inventory_report`; this module parses the flags and prints.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


from .._cli import OneLineParser, error_exit
from .._io import begin_output, check_memory, check_output_dir, finish_output, output_overwrite
from ..errors import ClusterlobError, ParameterError
from ..replay.inventory import (DEFAULT_THETAS, EXPERIMENT_CONFIG, SyntheticMarket, run_experiment, run_policies, synthetic_events)
from ..replay.inventory_report import plot_equity, to_markdown
from ..replay.strategy import StrategyConfig

__all__ = ["main"]


# -- command line -------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    ap = OneLineParser(
        prog="python -m clusterlob.inventory",
        description="Synthetic inventory experiment (Experiment 6): the replay's market maker with "
                    "fixed vs dynamic theta on seeded regime-switching markets, common random numbers.")
    ap.add_argument("--events", type=int, default=SyntheticMarket.n_events,
                    help="trade events (steps) per seed (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=20, help="number of seeds (default %(default)s)")
    ap.add_argument("--first-seed", type=int, default=0, help="first seed (default %(default)s)")
    ap.add_argument("--theta", type=float, nargs="+", default=list(DEFAULT_THETAS),
                    help="inventory aversion(s), ticks per unit of inventory (default: %(default)s)")
    ap.add_argument("--lean", type=float, default=SyntheticMarket.trend_lean,
                    help="how much the alpha-role flow leans with a trend, 0..1 (default %(default)s; "
                         "0 is a placebo: the signal carries no information)")
    ap.add_argument("--no-signal", action="store_true",
                    help="no trade feeds alpha (alpha = 0): dynamic and fixed must coincide")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("--out", type=Path, help="write inventory.md, inventory.json and (with matplotlib) "
                                             "an equity plot into this folder")
    ap.add_argument("--plot-seed", type=int, help="seed of the plot (default: the first seed)")
    ap.add_argument("--plot-theta", type=float, help="theta of the plot (default: the first theta)")
    ap.add_argument("--force", action="store_true", help="replace existing output files")
    StrategyConfig.add_arguments(ap, defaults=EXPERIMENT_CONFIG, exclude=("theta", "inventory_mode"))
    return ap


# per step: its events, fills, marks and temporaries, about 2x what was measured (peak RSS of
# `inventory --seeds 1 --theta 0.5`: 89 MB at 20,000 events, 128 MB at 400,000: ~105 B a step)
_BYTES_PER_EVENT = 200


def _targets(args):
    """(inventory.md, inventory.json, plot path, plot seed, plot theta); refuses existing files."""
    seed = args.first_seed if args.plot_seed is None else args.plot_seed
    theta = args.theta[0] if args.plot_theta is None else args.plot_theta
    if seed < 0:
        raise ParameterError(f"`--plot-seed` must be >= 0, got {seed}")
    paths = [args.out / "inventory.md", args.out / "inventory.json",
             args.out / f"equity_seed{seed}_theta{theta:g}.png"]
    check_output_dir(args.out, kind="inventory", force=args.force, files=[p.name for p in paths])
    return (*paths, seed, theta)


def _outputs(args, exp, text: str, progress) -> None:
    from ..report import write_json, write_markdown

    *targets, seed, theta = _targets(args)
    png = targets[2]
    overwrite = output_overwrite(args.out, "inventory", args.force)
    begin_output(args.out, "inventory")
    write_markdown(targets[0], text, overwrite=overwrite)
    write_json(targets[1], exp, overwrite=overwrite)
    config = exp.config.replace(theta=theta)
    events = synthetic_events(exp.market, seed, config)
    if plot_equity(events, run_policies(events, exp.market.tick_size, config), png,
                   title=f"seed {seed}, theta {theta:g}: fixed vs dynamic; shaded: up (green) / down (red) "
                         f"trend", overwrite=overwrite):
        finish_output(args.out, "inventory", targets)
        progress(f"wrote {targets[0]}, {targets[1]}, {png}")
    else:
        finish_output(args.out, "inventory", targets[:2])
        progress(f"wrote {targets[0]}, {targets[1]}; equity plot skipped: matplotlib is not installed "
                 f"(pip install clusterlob[plot])")


def main(argv: list[str] | None = None) -> int:
    """``python -m clusterlob.inventory``; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)

    def progress(line):
        print(line, file=sys.stderr, flush=True)

    try:
        if not 1 <= args.seeds <= 1_000_000:
            raise ParameterError(f"`--seeds` must be in 1..1000000, got {args.seeds}")
        if args.first_seed < 0:
            raise ParameterError(f"`--first-seed` must be >= 0, got {args.first_seed}")
        # one seed's events (2 per step) and the replay's buffers are in memory at a time
        check_memory("inventory", float(args.events) * _BYTES_PER_EVENT + 200e6)
        market = SyntheticMarket(n_events=args.events, trend_lean=args.lean, signal=not args.no_signal)
        config = StrategyConfig.from_args(args, base=EXPERIMENT_CONFIG)
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        if args.out is not None:
            _targets(args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # a NaN t-statistic is shown as such
            exp = run_experiment(market, config, seeds, args.theta, progress)
        text = to_markdown(exp)
        if args.out is not None:
            _outputs(args, exp, text, progress)
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        from ..report import to_jsonable
        print(json.dumps(to_jsonable(exp), indent=2, allow_nan=False))
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
