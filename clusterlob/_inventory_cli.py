"""Reports and the command line of the synthetic inventory experiment (``clusterlob.inventory``).

:func:`to_markdown` and :func:`plot_equity` are re-exported by :mod:`clusterlob.inventory`;
``python -m clusterlob.inventory`` runs :func:`main`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ._cli import OneLineParser, error_exit
from .errors import ClusterlobError, ParameterError
from .inventory import (DEFAULT_THETAS, EXPERIMENT_CONFIG, SyntheticMarket, equity_by_step,
                        run_experiment, run_policies, synthetic_events)

__all__ = ["to_markdown", "plot_equity", "main"]


# -- reports ------------------------------------------------------------------------------

def _money(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+,.2f}"


def _describe(exp) -> list:
    m, c = exp.market, exp.config
    seeds = exp.seeds
    seed_text = f"{seeds[0]}..{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))) \
        else ", ".join(map(str, seeds))
    return [
        f"**Market** (synthetic, seeds {seed_text}): {m.n_events:,} steps of {m.step_us / 1e3:g} ms, "
        f"each a book update then one trade; tick {m.tick_size:g}, one-tick touch; regimes alternate "
        f"noise / trend (mean {m.mean_regime_events:,.0f} steps); the mid moves "
        f"N(0, {m.noise_vol_ticks:g}) ticks per step, plus {m.trend_drift_ticks:g} tick(s) per step in a "
        f"trend's direction; {m.alpha_share:.0%} of trades carry the {c.alpha_role} role "
        f"(feeding alpha){'' if m.signal else ' -- switched OFF: alpha is zero'}, and go with the trend "
        f"with probability {(1 + m.trend_lean) / 2:.0%} during one.",
        f"**Market maker** (the tape replay's engine and quote rule): skew {c.skew_ticks:g} ticks, "
        f"half-spread max({c.min_half_ticks:g} ticks, {c.half_spread_bps:g} bps), quote {c.quote_size:g}, "
        f"inventory limit {c.max_inventory:g}, maker fee {c.maker_fee_bps:g} bps, requote "
        f"{c.requote_interval_us / 1e3:g} ms, latency {c.order_latency_us / 1e3:g} ms, fill mode "
        f"{c.fill_mode}, signal half-life {c.half_life_s:g} s.  Fixed: theta as given; dynamic: "
        f"theta * (1 - |tanh(alpha)|).  Both policies replay the identical events of each seed "
        f"(common random numbers).",
    ]


def to_markdown(exp) -> str:
    """The experiment as a Markdown report (tables per theta and a summary)."""
    from .report import markdown_table

    lines = ["# Synthetic inventory experiment: fixed vs dynamic inventory aversion", ""]
    for text in _describe(exp):
        lines += [text, ""]
    header = ["policy", "PnL mean", "PnL std", "spread capture", "inventory drift", "fees",
              "fills", "largest abs inventory, mean", "largest abs inventory, max"]
    summary_rows = []
    for r in exp.results:
        d = r.difference
        lines += [f"## theta = {r.theta:g}", ""]
        rows = [[s.policy, s.pnl_mean, s.pnl_std, s.spread_capture_mean, s.inventory_drift_mean,
                 s.fees_mean, s.fills_mean, s.largest_inventory_mean, s.largest_inventory_max]
                for s in (r.fixed, r.dynamic)]
        lines.append(markdown_table(header, rows, digits=2, align=["l"] + ["r"] * 8))
        ahead = int(round(d.share_positive * d.seeds))
        lines += [f"Paired difference, dynamic - fixed, over {d.seeds} seeds: mean {_money(d.pnl_mean)} "
                  f"(std {d.pnl_std:,.2f}, t = {d.t_stat:.2f}, p = {d.p_value:.3g}); dynamic ahead on "
                  f"{ahead} of {d.seeds} seeds.  Of the mean difference, spread capture "
                  f"{_money(d.spread_capture_mean)}, inventory drift {_money(d.inventory_drift_mean)}, "
                  f"fees {_money(-d.fees_mean)}.  Relative to fixed: "
                  + (f"{d.relative_to_fixed:+.1%}." if math.isfinite(d.relative_to_fixed)
                     else "not defined (fixed's mean PnL is not positive)."), ""]
        summary_rows.append([f"{r.theta:g}", r.fixed.pnl_mean, r.dynamic.pnl_mean, d.pnl_mean, d.t_stat,
                             f"{d.p_value:.2g}" if math.isfinite(d.p_value) else "", f"{ahead}/{d.seeds}",
                             f"{d.relative_to_fixed:+.1%}" if math.isfinite(d.relative_to_fixed) else "n/a"])
    lines += ["## Summary", ""]
    lines.append(markdown_table(["theta", "fixed PnL", "dynamic PnL", "dynamic - fixed", "t", "p",
                                 "dynamic ahead", "relative"], summary_rows, digits=2,
                                align=["r"] * 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f_theta, d_theta, best = exp.best_vs_best()
    if len(exp.results) > 1:
        lines += [f"Each policy at its best theta in this grid (highest mean PnL on these seeds): fixed "
                  f"at theta {f_theta:g}, dynamic at theta {d_theta:g}; paired difference "
                  f"{_money(best.pnl_mean)} (t = {best.t_stat:.2f}, p = {best.p_value:.2g}, dynamic ahead "
                  f"on {int(round(best.share_positive * best.seeds))} of {best.seeds} seeds"
                  + (f", {best.relative_to_fixed:+.1%}" if math.isfinite(best.relative_to_fixed) else "")
                  + ").  A lower fixed theta is also less averse: beating fixed at the same theta "
                    "is not the whole story.", ""]
    lines += ["The research log reported +118% for dynamic over fixed, from one pair of runs on "
              "different price paths with quotes decided after the event that filled them and no "
              "inventory limit.  Above, each seed's two runs share one path and one event sequence, "
              "quotes are decided before the events they can fill, and no quote that would grow the "
              "position is placed at or beyond the inventory limit (quotes already resting or in flight "
              "can take it past by less than two quote sizes: see the largest inventory); the "
              "t-statistic is over the seed-by-seed differences.", "",
              f"Run time: {exp.seconds:.2f} s."]
    return "\n".join(lines) + "\n"


def plot_equity(events, results: dict, path, *, title: str | None = None,
                overwrite: bool = False) -> bool:
    """Plot one seed's two equity curves over its shaded regimes, into a PNG file.

    Parameters
    ----------
    events : SyntheticEvents
    results : dict
        ``{"fixed": ReplayResult, "dynamic": ReplayResult}`` from :func:`run_policies`.
    path : str or Path
        The PNG to write (atomically; an existing file is refused unless ``overwrite``).
    title : str, optional

    Returns
    -------
    bool
        False when matplotlib is not installed (nothing written; ``pip install clusterlob[plot]``).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"output file {path} exists (use --force / overwrite=True to replace it)")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    minutes = (events.book_ts_us - events.book_ts_us[0]) / 60e6
    fig, (ax, ax_mid) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[2, 1])
    edges = np.flatnonzero(np.diff(events.regime)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, events.regime.shape[0]]
    for a, b in zip(starts, ends):
        kind = int(events.regime[a])
        if kind:
            for axis in (ax, ax_mid):
                axis.axvspan(minutes[a], minutes[min(b, minutes.shape[0] - 1)], lw=0, alpha=0.15,
                             color="tab:green" if kind > 0 else "tab:red")
    for policy, style in (("fixed", "tab:blue"), ("dynamic", "tab:orange")):
        ax.plot(minutes, equity_by_step(events, results[policy]), color=style, lw=1.2,
                label=f"{policy} theta (PnL {results[policy].summary.pnl_total:,.2f})")
    ax.set_ylabel("equity (quote currency)")
    ax.legend(loc="upper left")
    ax.set_title(title or "fixed vs dynamic theta; shaded: up trend (green), down trend (red)")
    ax_mid.plot(minutes, events.mid, color="0.3", lw=0.8)
    ax_mid.set_ylabel("mid")
    ax_mid.set_xlabel("minutes")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


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
    ap.add_argument("--maker-fee-bps", type=float, default=EXPERIMENT_CONFIG.maker_fee_bps,
                    help="maker fee, bps of notional (default %(default)s; the replay's default is 2)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("--out", type=Path, help="write inventory.md, inventory.json and (with matplotlib) "
                                             "an equity plot into this folder")
    ap.add_argument("--plot-seed", type=int, help="seed of the plot (default: the first seed)")
    ap.add_argument("--plot-theta", type=float, help="theta of the plot (default: the first theta)")
    ap.add_argument("--force", action="store_true", help="replace existing output files")
    return ap


def _targets(args):
    """(inventory.md, inventory.json, plot path, plot seed, plot theta); refuses existing files."""
    seed = args.first_seed if args.plot_seed is None else args.plot_seed
    theta = args.theta[0] if args.plot_theta is None else args.plot_theta
    if seed < 0:
        raise ParameterError(f"`--plot-seed` must be >= 0, got {seed}")
    paths = [args.out / "inventory.md", args.out / "inventory.json",
             args.out / f"equity_seed{seed}_theta{theta:g}.png"]
    if args.out.exists() and not args.out.is_dir():
        raise ParameterError(f"`--out` {args.out} is a file, expected a folder")
    if not args.force:                # before any work, so nothing is half written
        for path in paths:
            if path.exists():
                raise ParameterError(f"output file {path} exists (use --force to replace it)")
    return (*paths, seed, theta)


def _outputs(args, exp, text: str, progress) -> None:
    from .report import write_json, write_markdown

    *targets, seed, theta = _targets(args)
    png = targets[2]
    write_markdown(targets[0], text, overwrite=args.force)
    write_json(targets[1], exp, overwrite=args.force)
    config = exp.config.replace(theta=theta)
    events = synthetic_events(exp.market, seed, config)
    if plot_equity(events, run_policies(events, exp.market.tick_size, config), png,
                   title=f"seed {seed}, theta {theta:g}: fixed vs dynamic; shaded: up (green) / down (red) "
                         f"trend", overwrite=args.force):
        progress(f"wrote {targets[0]}, {targets[1]}, {png}")
    else:
        progress(f"wrote {targets[0]}, {targets[1]}; equity plot skipped: matplotlib is not installed "
                 f"(pip install clusterlob[plot])")


def main(argv=None) -> int:
    """``python -m clusterlob.inventory``; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)

    def progress(line):
        print(line, file=sys.stderr, flush=True)

    try:
        if args.seeds < 1:
            raise ParameterError(f"`--seeds` must be >= 1, got {args.seeds}")
        if args.first_seed < 0:
            raise ParameterError(f"`--first-seed` must be >= 0, got {args.first_seed}")
        market = SyntheticMarket(n_events=args.events, trend_lean=args.lean, signal=not args.no_signal)
        config = EXPERIMENT_CONFIG.replace(maker_fee_bps=args.maker_fee_bps)
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
        from .report import to_jsonable
        print(json.dumps(to_jsonable(exp), indent=2, allow_nan=False))
    else:
        print(text, end="")
    return 0
