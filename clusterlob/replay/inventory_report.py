"""Reports of the synthetic inventory experiment: a Markdown summary and an equity picture.

:func:`to_markdown` and :func:`plot_equity` are re-exported by :mod:`clusterlob.inventory`
(and :mod:`clusterlob.replay`); ``python -m clusterlob.inventory`` prints and writes them.
"""
from __future__ import annotations
import warnings

import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import PathLike
from ..errors import ParameterError
from .inventory import equity_by_step

if TYPE_CHECKING:
    from .inventory import InventoryExperiment

__all__ = ["to_markdown", "plot_equity"]


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
        f"{c.fill_model}, signal half-life {c.half_life_s:g} s.  Fixed: theta as given; dynamic: "
        f"theta * (1 - |tanh(alpha)|).  Both policies replay the identical events of each seed "
        f"(common random numbers).",
    ]


def to_markdown(exp: InventoryExperiment) -> str:
    """The experiment as a Markdown report (tables per theta and a summary)."""
    from ..report import markdown_table

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
                     else "not defined (fixed's mean PnL is not positive, or not above its "
                          "standard error over the seeds)."), ""]
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
              "quotes are decided before the events they can fill, and each quote's size is clipped so "
              "that no fill can take the position past the inventory limit (every order that may still "
              "fill counts: see the largest inventory); the t-statistic is over the seed-by-seed "
              "differences.", "",
              f"Run time: {exp.seconds:.2f} s."]
    return "\n".join(lines) + "\n"


def plot_equity(events: Any, results: dict, path: PathLike, *, title: str | None = None,
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
