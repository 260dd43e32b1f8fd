"""The synthetic inventory experiment: fixed vs dynamic inventory aversion (Experiment 6).

The research log claims that relaxing the inventory aversion when the alpha signal is
confident, ``theta_eff = theta * (1 - |tanh(alpha)|)``, beats a fixed ``theta`` by 118% on a
synthetic regime-switching path.  Its version gave the two runs different price paths,
decided quotes after seeing the event that filled them and had no inventory limit
(research notes, defect 10).  This module redoes it properly:

* :func:`synthetic_events` builds one seeded market: a mid that alternates *noise* regimes
  (no drift) and *trend* regimes (drift up or down), and one trade per step whose flow
  carries the signal (in a trend, the trades of the alpha role lean in the trend's
  direction; every other trade is a coin flip).
* :func:`run_seed` replays the market maker over it twice, with ``inventory_mode="fixed"``
  and ``"dynamic"``, through the tape replay's own compiled engine
  (:func:`clusterlob.replay.replay_arrays`): same quote rule, fill rule, latency, post-only,
  inventory limit and fees as the tape replay; the two runs differ only in the
  :class:`~clusterlob.strategy.StrategyConfig` field ``inventory_mode``.  Both see the
  identical event arrays (common random numbers).
* :func:`run_experiment` does this for many seeds and thetas and reports each policy's PnL
  (mean, std, split into spread capture, inventory drift and fees), fills and largest
  inventory, and the paired difference dynamic - fixed with its t-statistic.

``python -m clusterlob.inventory`` is the command line (``--help``); ``docs/inventory.md``
describes the market and the output.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from .._io import check_int, check_number
from .._typing import Say
from ..errors import ParameterError
from .engine import replay_arrays
from .results import ReplayResult
from ..cluster.roles import PASSIVE, UNASSIGNED
from ..report import rows_to_arrow
from .strategy import StrategyConfig

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EXPERIMENT_CONFIG", "DEFAULT_THETAS", "SyntheticMarket", "SyntheticEvents", "SeedRun", "PolicyStats", "PairedDifference",
           "ThetaResult", "InventoryExperiment", "synthetic_events", "run_policies",
           "run_experiment", "equity_by_step"]

#: Time of the first synthetic event: 2024-05-01 00:00 UTC, in microseconds.
START_US = 1_714_521_600_000_000
POLICIES = ("fixed", "dynamic")

#: The market maker of the experiment: the project's defaults, scaled to the synthetic
#: market's one-tick touch (a 5-tick half-spread instead of 1 bps = 60 ticks, a 10-tick
#: largest skew) and without fees, so the comparison isolates inventory handling
#: (``maker_fee_bps`` puts them back).  Hazard plays no part: no trade feeds it.  The
#: synthetic market has a touch but no displayed sizes, so fills follow the research log's
#: ``cross`` rule, with signals in mean trade sizes as in the log and fills heard at once.
EXPERIMENT_CONFIG = StrategyConfig(skew_ticks=10.0, min_half_ticks=5.0, half_spread_bps=0.0,
                                   maker_fee_bps=0.0, fill_model="cross", signal_norm="trades",
                                   response_latency_us=0)
#: Inventory aversions compared by default (ticks of reservation shift per unit of inventory).
DEFAULT_THETAS = (1.0, 2.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True)
class SyntheticMarket:
    """Parameters of the synthetic market (one trade and one book update per step).

    Attributes
    ----------
    n_events : int
        Trade events (steps); each step is a book-touch update followed, half a step
        later, by one trade, so the replay sees ``2 * n_events`` events.
    step_us : int
        Time between steps, microseconds (even, >= 2).
    tick_size : float
        Price increment.  The touch is always one tick wide.
    start_mid : float
        Mid at the first step (a price; the bid is rounded onto the tick grid).
    mean_regime_events : float
        Mean regime length in steps; lengths are ``1 + geometric`` draws.  Regimes
        alternate noise, trend, noise, ... starting with noise; a trend goes up or down
        with equal probability.
    noise_vol_ticks : float
        Standard deviation of the mid's change per step, ticks (changes are rounded to
        whole ticks).
    trend_drift_ticks : float
        Mean change of the mid per step during a trend, ticks, in the trend's direction.
    alpha_share : float
        Share of trades in the role that feeds the alpha signal (0..1).
    trend_lean : float
        During a trend an alpha-role trade goes with the trend with probability
        ``(1 + trend_lean) / 2`` (0: no information, 1: always with the trend).  Other
        trades, and every trade in a noise regime, are buy or sell with probability 1/2.
    mean_amount : float
        Mean trade amount (lognormal, ``amount_dispersion`` log-sd, rounded to
        ``lot_size``, at least one lot).
    amount_dispersion : float
    lot_size : float
    mean_sweep_ticks : float
        A buy taker trades ``k`` ticks above the best ask (a sell below the best bid),
        ``k`` geometric on 0, 1, 2, ... with this mean.
    signal : bool
        False: no trade is given the alpha role, so the alpha signal is exactly zero
        (the same random draws are used, so the path and the flow are unchanged).
    """

    n_events: int = 20_000
    step_us: int = 100_000
    tick_size: float = 0.1
    start_mid: float = 60_000.0
    mean_regime_events: float = 1_000.0
    noise_vol_ticks: float = 3.0
    trend_drift_ticks: float = 0.5
    alpha_share: float = 0.3
    trend_lean: float = 0.5
    mean_amount: float = 0.05
    amount_dispersion: float = 1.0
    lot_size: float = 0.001
    mean_sweep_ticks: float = 2.0
    signal: bool = True

    def __post_init__(self):
        def check(name, ok, rule):
            value = getattr(self, name)
            check_number(name, value)       # a finite number; then the field's own rule
            if not ok(value):
                raise ParameterError(f"`{name}` must be {rule}, got {value!r}")

        check("n_events", lambda v: int(v) == v and v >= 1, "a whole number >= 1")
        check("step_us", lambda v: int(v) == v and v >= 2 and int(v) % 2 == 0, "an even whole number >= 2")
        for name in ("tick_size", "start_mid", "mean_amount", "lot_size"):
            check(name, lambda v: v > 0, "a finite number > 0")
        check("mean_regime_events", lambda v: v >= 1, "a finite number >= 1")
        for name in ("noise_vol_ticks", "trend_drift_ticks", "amount_dispersion", "mean_sweep_ticks"):
            check(name, lambda v: v >= 0, "a finite number >= 0")
        for name in ("alpha_share", "trend_lean"):
            check(name, lambda v: 0 <= v <= 1, "in [0, 1]")
        if not isinstance(self.signal, (bool, np.bool_)):
            raise ParameterError(f"`signal` must be True or False, got {self.signal!r}")
        object.__setattr__(self, "n_events", int(self.n_events))
        object.__setattr__(self, "step_us", int(self.step_us))

    def to_dict(self) -> dict:
        return asdict(self)


class SyntheticEvents(NamedTuple):
    """One seeded market, as the arrays :func:`clusterlob.replay.replay_arrays` takes.

    All arrays have ``n_events`` rows (one step each).  ``regime`` is 0 in a noise
    regime, +1 / -1 in an up / down trend; ``mid`` the mid after the step's book update.
    """

    trade_ts_us: np.ndarray
    trade_price: np.ndarray
    trade_amount: np.ndarray
    trade_side: np.ndarray
    roles: np.ndarray
    book_ts_us: np.ndarray
    book_bid: np.ndarray
    book_ask: np.ndarray
    regime: np.ndarray
    mid: np.ndarray

    def replay_inputs(self) -> tuple:
        """The first eight fields, in :func:`~clusterlob.replay.replay_arrays`'s order."""
        return tuple(self[:8])


def _regimes(rng: np.random.Generator, n: int, mean_length: float) -> np.ndarray:
    """Regime per step: 0 noise, +1 / -1 trend; alternating, starting with noise."""
    p = 1.0 / mean_length
    labels, filled, k = [], 0, 0
    while filled < n:
        m = max(4, int(2 * (n - filled) * p) + 4)
        lengths = rng.geometric(p, m)          # >= 1, mean 1 / p
        directions = rng.choice(np.array([-1, 1], np.int8), m)
        for length, direction in zip(lengths.tolist(), directions.tolist()):
            labels.append(np.full(length, direction if k % 2 else 0, np.int8))
            filled += length
            k += 1
            if filled >= n:
                break
    return np.concatenate(labels)[:n]


def synthetic_events(market: SyntheticMarket | None = None, seed: int = 0,
                     config: StrategyConfig | None = None) -> SyntheticEvents:
    """Build one seeded synthetic market (see :class:`SyntheticMarket`).

    Parameters
    ----------
    market : SyntheticMarket, optional
    seed : int or numpy.random.Generator
        Everything random comes from ``numpy.random.default_rng(seed)``.
    config : StrategyConfig, optional
        Only its role mapping is used: signal-carrying trades get ``config.alpha_role``'s
        code, the others a role that feeds neither signal (passive, or unassigned if
        passive feeds one), so the hazard signal stays zero.

    Returns
    -------
    SyntheticEvents
        Times in microseconds from 2024-05-01 UTC; prices on the tick grid.
    """
    market = SyntheticMarket() if market is None else market
    config = EXPERIMENT_CONFIG if config is None else config
    rng = np.random.default_rng(seed)
    n, tick = market.n_events, market.tick_size
    regime = _regimes(rng, n, market.mean_regime_events)
    # the mid: integer bid ticks, one-tick touch
    step = np.rint(rng.standard_normal(n) * market.noise_vol_ticks + regime * market.trend_drift_ticks)
    bid_ticks = int(round(market.start_mid / tick - 0.5)) + np.cumsum(step).astype(np.int64)
    # the flow: roles, sides (leaning with the trend for the alpha role), amounts, sweeps
    in_alpha_role = rng.random(n) < market.alpha_share
    lean = np.where(in_alpha_role, regime * (0.5 * market.trend_lean), 0.0)
    side = np.where(rng.random(n) < 0.5 + lean, 1, -1).astype(np.int8)
    sigma = market.amount_dispersion
    raw = np.exp(math.log(market.mean_amount) - 0.5 * sigma * sigma + sigma * rng.standard_normal(n))
    amount = np.maximum(np.rint(raw / market.lot_size), 1.0) * market.lot_size
    sweep = rng.geometric(1.0 / (1.0 + market.mean_sweep_ticks), n) - 1
    price_ticks = np.where(side > 0, bid_ticks + 1 + sweep, bid_ticks - sweep)
    quiet = PASSIVE if PASSIVE not in (config.alpha_code, config.hazard_code) else UNASSIGNED
    carrier = config.alpha_code if market.signal else quiet
    roles = np.where(in_alpha_role, carrier, quiet).astype(np.int8)
    book_ts = START_US + np.arange(n, dtype=np.int64) * market.step_us
    return SyntheticEvents(book_ts + market.step_us // 2, price_ticks * tick, amount, side, roles,
                           book_ts, bid_ticks * tick, (bid_ticks + 1) * tick, regime,
                           (bid_ticks + 0.5) * tick)


# -- one seed: the two policies on the same events --------------------------------------

def run_policies(events: SyntheticEvents, tick_size: float,
                 config: StrategyConfig | None = None) -> dict:
    """Replay the market maker over ``events`` with fixed and with dynamic theta.

    Both runs use the compiled tape replay (:func:`clusterlob.replay.replay_arrays`) on the
    very same arrays; their configs differ only in ``inventory_mode``.

    Parameters
    ----------
    events : SyntheticEvents
    tick_size : float
        The market's tick (``SyntheticMarket.tick_size``).
    config : StrategyConfig, optional
        The market maker (default :data:`EXPERIMENT_CONFIG`; its ``inventory_mode`` is ignored).

    Returns
    -------
    dict
        ``{"fixed": ReplayResult, "dynamic": ReplayResult}``.
    """
    config = EXPERIMENT_CONFIG if config is None else config
    if not isinstance(events, SyntheticEvents):
        raise ParameterError(f"`events` must be SyntheticEvents, got {type(events).__name__}")
    if not isinstance(config, StrategyConfig):
        raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
    inputs = events.replay_inputs()
    return {mode: replay_arrays(*inputs, tick_size=tick_size,
                                config=dataclasses.replace(config, inventory_mode=mode))
            for mode in POLICIES}


def equity_by_step(events: SyntheticEvents, result: ReplayResult) -> np.ndarray:
    """Account marked to mid at the end of every step (after its trade), shape (n_events,).

    Rebuilt from the fills (cash and inventory after each) and the mid path; the last
    value equals the run's ``pnl_total`` up to rounding.
    """
    steps = np.arange(events.mid.shape[0])
    # by time: a book-through fill (no trade index) belongs to the step of its book update
    k = np.searchsorted(result.fills.ts_us, events.trade_ts_us, side="right") - 1
    has = k >= 0
    cash = np.where(has, result.fills.cash[np.maximum(k, 0)], 0.0) if len(result.fills) else np.zeros(steps.shape)
    inventory = np.where(has, result.fills.inventory[np.maximum(k, 0)], 0.0) if len(result.fills) \
        else np.zeros(steps.shape)
    return cash + inventory * events.mid


# -- many seeds ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SeedRun:
    """One policy on one seed: the replay summary's money and counts (quote currency, base units)."""

    seed: int
    theta: float
    policy: str
    pnl_total: float
    spread_capture: float
    inventory_drift: float
    fees: float
    fills: int
    volume: float
    largest_inventory: float
    ending_inventory: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PolicyStats:
    """One policy over the seeds: mean and sample std (ddof 1) of PnL and its parts."""

    policy: str
    theta: float
    seeds: int
    pnl_mean: float
    pnl_std: float
    spread_capture_mean: float
    spread_capture_std: float
    inventory_drift_mean: float
    inventory_drift_std: float
    fees_mean: float
    fills_mean: float
    largest_inventory_mean: float
    largest_inventory_max: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """Dynamic minus fixed, seed by seed (same events): mean, std, t = mean / (std / sqrt(n)).

    ``p_value`` is two-sided (Student t, n - 1 degrees of freedom); ``share_positive``
    the share of seeds where dynamic earned more; ``relative_to_fixed`` is the log's
    measure, mean(dynamic) / mean(fixed) - 1 (NaN unless mean(fixed) > 0 and above its own
    standard error, std / sqrt(seeds)).  The ``*_mean``
    fields split the mean difference into spread capture, inventory drift and fees.
    """

    theta: float
    seeds: int
    pnl_mean: float
    pnl_std: float
    t_stat: float
    p_value: float
    share_positive: float
    relative_to_fixed: float
    spread_capture_mean: float
    inventory_drift_mean: float
    fees_mean: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ThetaResult:
    """Both policies and their paired difference at one theta, with every seed's runs."""

    theta: float
    fixed: PolicyStats
    dynamic: PolicyStats
    difference: PairedDifference
    runs: tuple

    def to_dict(self) -> dict:
        return {"theta": self.theta, "fixed": self.fixed.to_dict(), "dynamic": self.dynamic.to_dict(),
                "difference": self.difference.to_dict(), "runs": [r.to_dict() for r in self.runs]}


@dataclass(frozen=True)
class InventoryExperiment:
    """What :func:`run_experiment` returns: one :class:`ThetaResult` per theta."""

    market: SyntheticMarket
    config: StrategyConfig
    seeds: tuple
    results: tuple
    seconds: float

    def best_vs_best(self) -> tuple:
        """(fixed theta, dynamic theta, PairedDifference): each policy at its best theta.

        A lower fixed theta is also less averse, so beating fixed at the *same* theta is not
        the whole story; this compares each policy at the theta with its highest mean PnL in
        the grid (a choice made on these very seeds, so mildly optimistic for both), still
        paired seed by seed.  ``PairedDifference.theta`` is the dynamic policy's theta.
        """
        def best(policy):
            return max(self.results, key=lambda r: getattr(r, policy).pnl_mean)

        f, d = best("fixed"), best("dynamic")
        fixed = [x for x in f.runs if x.policy == "fixed"]
        dynamic = [x for x in d.runs if x.policy == "dynamic"]
        return f.theta, d.theta, _paired(d.theta, fixed, dynamic)

    def to_dict(self) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            f_theta, d_theta, diff = self.best_vs_best()
        return {"market": self.market.to_dict(), "config": self.config.to_dict(),
                "seeds": list(self.seeds), "results": [r.to_dict() for r in self.results],
                "best_vs_best": {"fixed_theta": f_theta, "dynamic_theta": d_theta,
                                 "difference": diff.to_dict()},
                "seconds": self.seconds}

    def to_arrow(self) -> pa.Table:
        """One row per (theta, policy): the fields of :class:`PolicyStats`."""
        rows = [getattr(r, policy) for r in self.results for policy in POLICIES]
        return rows_to_arrow(rows, [f.name for f in fields(PolicyStats)])

    def runs_to_arrow(self) -> pa.Table:
        """One row per (theta, policy, seed): the fields of :class:`SeedRun`."""
        return rows_to_arrow([run for r in self.results for run in r.runs], [f.name for f in fields(SeedRun)])


def _std(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.shape[0] >= 2 else math.nan


def _policy_stats(policy: str, theta: float, runs: list) -> PolicyStats:
    col = {name: np.array([getattr(r, name) for r in runs], dtype=float)
           for name in ("pnl_total", "spread_capture", "inventory_drift", "fees", "fills", "largest_inventory")}
    return PolicyStats(policy, theta, len(runs), float(col["pnl_total"].mean()), _std(col["pnl_total"]),
                       float(col["spread_capture"].mean()), _std(col["spread_capture"]),
                       float(col["inventory_drift"].mean()), _std(col["inventory_drift"]),
                       float(col["fees"].mean()), float(col["fills"].mean()),
                       float(col["largest_inventory"].mean()), float(col["largest_inventory"].max()))


def _paired(theta: float, fixed: list, dynamic: list) -> PairedDifference:
    def diff(name):
        return np.array([getattr(d, name) - getattr(f, name) for f, d in zip(fixed, dynamic)])

    d = diff("pnl_total")
    n = d.shape[0]
    mean, std = float(d.mean()), _std(d)
    if n >= 2 and std > 0:
        from scipy.special import stdtr      # Student t CDF; lighter to import than scipy.stats
        t_stat = mean / (std / math.sqrt(n))
        p_value = float(2.0 * stdtr(n - 1, -abs(t_stat)))
    else:
        warnings.warn(f"paired difference at theta {theta}: t-statistic undefined "
                      f"({n} seeds, std {std}); reported as NaN", RuntimeWarning, stacklevel=3)
        t_stat = p_value = math.nan
    fixed_pnl = np.array([f.pnl_total for f in fixed])
    fixed_mean = float(fixed_pnl.mean())
    # a ratio against a benchmark within its own standard error is noise, not a percentage
    fixed_se = _std(fixed_pnl) / math.sqrt(n) if n >= 2 else math.inf
    relative = (float(np.mean([x.pnl_total for x in dynamic])) / fixed_mean - 1.0
                if fixed_mean > 0 and fixed_mean > fixed_se else math.nan)
    return PairedDifference(theta, n, mean, std, t_stat, p_value, float((d > 0).mean()), relative,
                            float(diff("spread_capture").mean()), float(diff("inventory_drift").mean()),
                            float(diff("fees").mean()))


def _seed_run(seed: int, theta: float, policy: str, result: ReplayResult) -> SeedRun:
    s = result.summary
    return SeedRun(seed, theta, policy, s.pnl_total, s.spread_capture, s.inventory_drift, s.fees,
                   s.fills, s.volume, s.largest_inventory, s.ending_inventory)


def _check_experiment(market, config, seeds, thetas) -> tuple[tuple[int, ...], tuple[float, ...]]:
    if not isinstance(market, SyntheticMarket):
        raise ParameterError(f"`market` must be a SyntheticMarket, got {type(market).__name__}")
    if not isinstance(config, StrategyConfig):
        raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
    if hasattr(seeds, "__index__") and not isinstance(seeds, bool):
        seeds = tuple(range(check_int("seeds", seeds, 1)))
    else:
        try:
            seeds = tuple(int(s) for s in seeds)
        except (TypeError, ValueError):
            raise ParameterError(f"`seeds` must be a count or a list of whole numbers, got {seeds!r}") from None
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ParameterError(f"`seeds` must be distinct whole numbers >= 0, got {list(seeds)}")
    thetas = (config.theta,) if thetas is None else tuple(thetas)
    if not thetas:
        raise ParameterError("`thetas` must hold at least one value, got none")
    return seeds, tuple(check_number("theta", t, 0) for t in thetas)


def run_experiment(market: SyntheticMarket | None = None, config: StrategyConfig | None = None,
                   seeds: int | Sequence[int] = 20, thetas: Sequence[float] | None = None, progress: Say | None = None) -> InventoryExperiment:
    """Fixed vs dynamic theta over many seeds (and thetas), common random numbers.

    Parameters
    ----------
    market : SyntheticMarket, optional
    config : StrategyConfig, optional
        The market maker (default :data:`EXPERIMENT_CONFIG`); its ``theta`` is used unless
        ``thetas`` is given, and its ``inventory_mode`` is ignored (both are run).
    seeds : int or sequence of int
        A count (seeds 0 .. n-1) or the seeds themselves.  Seed ``s`` builds one market,
        used by both policies at every theta.
    thetas : sequence of float, optional
        Inventory aversions to compare at (ticks per unit of inventory, >= 0).
    progress : callable, optional
        Called with a one-line message after each seed (the CLI prints it to stderr).

    Returns
    -------
    InventoryExperiment
    """
    market = SyntheticMarket() if market is None else market
    config = EXPERIMENT_CONFIG if config is None else config
    seeds, thetas = _check_experiment(market, config, seeds, thetas)
    t0 = time.perf_counter()
    runs: dict[float, dict[str, list[SeedRun]]] = {theta: {policy: [] for policy in POLICIES}
                                                  for theta in thetas}
    for i, seed in enumerate(seeds):
        events = synthetic_events(market, seed, config)
        for theta in thetas:
            results = run_policies(events, market.tick_size, dataclasses.replace(config, theta=theta))
            for policy in POLICIES:
                runs[theta][policy].append(_seed_run(seed, theta, policy, results[policy]))
        if progress is not None:
            progress(f"seed {seed} done ({i + 1}/{len(seeds)}; {len(thetas)} theta(s) x 2 policies)")
    out = []
    for theta in thetas:
        fixed, dynamic = runs[theta]["fixed"], runs[theta]["dynamic"]
        out.append(ThetaResult(theta, _policy_stats("fixed", theta, fixed),
                               _policy_stats("dynamic", theta, dynamic), _paired(theta, fixed, dynamic),
                               tuple(fixed + dynamic)))
    return InventoryExperiment(market, config, seeds, tuple(out), time.perf_counter() - t0)
