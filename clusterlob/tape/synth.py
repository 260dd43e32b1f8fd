"""Synthetic BTCUSDT-futures tapes with planted order-flow types.

:func:`generate_tape` (and ``python -m clusterlob.synth``) writes a canonical tape directory
through :class:`clusterlob.tape.TapeWriter`, day by day.  Trades carry one extra int8 column,
``agent``, the planted type of every trade, coded as in :mod:`clusterlob.roles`:
``0`` directional, ``1`` opportunistic, ``2`` passive.  Features ignore it; tests use it as truth.
docs/synth.md describes the model with all its numbers; in short:

* **Activity.**  ``trades_per_day`` is the weekly mean: weekdays get 7/6 of it, Saturdays and
  Sundays 7/12 (half a weekday), so 2024-05-01..07 at 3.95M/day gives about 27.65M trades.  Intraday
  seasonality (peak near 14:30 UTC, trough near 04:00), a regime factor and 2-s clustering noise
  shape the intensity; each agent's daily count is its share (35/20/45 %), Poisson per interval.
* **Regimes** calm / trending / volatile (semi-Markov, mean spells 5 / 2.5 / 1 h) set volatility,
  drift (trending: +-2 %/day), episode rates and spread widening.  **Quiet spells** (gamma, mean
  0.6 s, shape 8; active spells exponential, mean 1.4 s; at least 3 and 10 snapshot intervals)
  freeze the touch and nearly stop directional (0.05x) and opportunistic (0.1x) flow; passive
  flow grows as the cube of the spell's age, so it trades long after the last mid change.  The
  spells are short so that a 100-trade feature window mixes them at every rate.
* **Book**: ``levels`` (<= 25) contiguous 0.1-USDT levels a side, sizes in whole 0.001-BTC lots.
  Spread one tick except when a persistent noise crosses a regime threshold.  The top 5 levels
  are redrawn every snapshot around a thick-touch profile and lean with the imbalance state
  ``u = x + pi + omega`` (``exp(+a u)`` on bids, ``exp(-a u)`` on asks): ``x`` fast noise (2 s),
  ``pi`` *pressure episodes* (liquidation-like, minutes long, one side), ``omega`` *wall episodes*
  (a thick wall on one side).  Deeper levels refresh every 2 s on average (1 % 10x walls).
* **Agents** see ``v``, the top-5 log-depth imbalance (bid minus ask) of the snapshot their
  interval starts with.  Directional (0) trades with it - buys when asks (consumed) are thin and
  bids thick - much more during pressure episodes, with larger, Pareto-tailed sizes; its impact
  is 30 % immediate and 70 % spread over the next minutes (continuation).  Opportunistic (1)
  trades against it, into the thick side, more during episodes and walls; its impact reverts
  past its start within minutes.  Passive (2) trades are small, random in side, want a
  balanced book (``|v|`` within about 0.4) and come late in quiet spells (at 100 ms snapshots
  98 % of them more than 0.3 s after the last mid change); their impact decays within
  seconds.  Impact coefficients are set for 3.95M trades/day and scaled by reference/actual rate.
* **Consistency.**  A trade in ``(t_k, t_k+1)`` walks the consumed side of snapshot ``k`` and prints
  at the deepest level it reaches (amount capped at the visible depth); its impact shows from
  snapshot ``k+1``.  ``ts_local_us = ts_exch_us + 2000 us + jitter``: ``[0, 500) us`` for trades
  (non-decreasing), 500 us for snapshots; trades sit >= 501 us after their snapshot, so in local
  time each trade falls strictly between the snapshot it traded against and the next one.

Planted truth, for 5-minute bucket OFI ``sum(side * amount)`` and the next bucket's log mid
return: directional ``corr > 0`` and above that of all trades; opportunistic ``corr < 0``;
passive about 0.  Same arguments give byte-identical Parquet files (one
``numpy.random.Generator`` per day, seeded with ``(seed, day number)``).
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.signal import lfilter

from .._io import check_int, check_memory, check_number
from .._typing import PathLike, Say
from ..errors import ParameterError
from ..cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE
from .types import MAX_LEVELS, US_PER_DAY, Book, Instrument, Trades, day_start_us
from .writer import TapeWriter

__all__ = ["SynthParams", "SynthResult", "generate_tape", "INSTRUMENT", "AGENT_NAMES",
           "REFERENCE_TRADES_PER_DAY", "LATENCY_BASE_US", "LATENCY_JITTER_US"]

INSTRUMENT = Instrument("binance-futures", "BTCUSDT", 0.1, 0.001)
AGENT_NAMES = {DIRECTIONAL: "directional", OPPORTUNISTIC: "opportunistic", PASSIVE: "passive"}
REFERENCE_TRADES_PER_DAY = 3_950_000
LATENCY_BASE_US = 2_000
LATENCY_JITTER_US = 500
_TICKS_PER_USDT = 10          # 1 / tick size, exact
_LOTS_PER_BTC = 1000          # 1 / lot size, exact
_TOP = 5                      # levels carrying the imbalance state (the features' D = 5)
_CHUNK_STEPS = 36_000        # book and trades are built and written this many snapshots at a time
_CALM, _TRENDING, _VOLATILE = 0, 1, 2


@dataclass(frozen=True)
class SynthParams:
    """Knobs of the synthetic market; the defaults are the documented model.

    Rates are per hour, durations in seconds, volatilities and drifts per day (log units),
    impact coefficients in basis points per BTC of flow at the reference rate.
    """

    start_price: float = 60_000.0
    share_directional: float = 0.35
    share_opportunistic: float = 0.20
    share_passive: float = 0.45
    size_median_btc: tuple = (0.03, 0.08, 0.004)     # directional, opportunistic, passive
    regime_mean_hours: tuple = (5.0, 2.5, 1.0)
    regime_activity: tuple = (0.8, 1.0, 1.6)
    regime_vol: tuple = (0.7, 1.0, 2.0)
    regime_episodes_per_hour: tuple = (1.0, 3.0, 8.0)
    regime_walls_per_hour: tuple = (1.5, 2.0, 3.0)
    regime_spread_threshold: tuple = (2.9, 2.6, 2.1)
    vol_per_day: float = 0.018
    trend_per_day: float = 0.02
    quiet_mean_s: float = 0.6
    quiet_shape: float = 8.0                         # gamma shape of quiet spell durations
    active_mean_s: float = 1.4
    episode_median_s: float = 100.0
    episode_strength: float = 1.2
    imbalance_tau_s: float = 2.0
    depth_imbalance: float = 0.5
    beta_directional: float = 1.3
    beta_opportunistic: float = 1.3
    burst_gain: float = 2.5
    burst_gain_opportunistic: float = 2.5
    opportunistic_pressure_blind: float = 0.2
    impact_directional_bps: float = 0.004
    impact_directional_now: float = 0.3
    impact_directional_tau_s: float = 150.0
    impact_opportunistic_bps: float = 0.006
    reversion_opportunistic: float = 1.0
    impact_opportunistic_tau_s: float = 150.0
    impact_passive_bps: float = 0.002
    quiet_activity: tuple = (0.05, 0.1, 3.0)         # intensity factor in quiet spells, per agent
    passive_active: float = 0.03                     # passive intensity factor in active spells
    passive_wait_s: float = 0.3                      # quiet-spell passive factor: quiet_activity[2]
    passive_wait_power: float = 3.0                  #   * (age / passive_wait_s) ** passive_wait_power
    passive_balance: float = 0.4                     # passive flow wants |v| within about this

    def __post_init__(self):
        positive = {"start_price", "regime_mean_hours", "quiet_mean_s", "active_mean_s", "episode_median_s",
                    "imbalance_tau_s", "depth_imbalance", "size_median_btc", "impact_directional_tau_s",
                    "impact_opportunistic_tau_s", "passive_wait_s", "quiet_shape", "passive_balance"}
        for name, value in asdict(self).items():
            values = value if isinstance(value, tuple) else (value,)
            if isinstance(value, tuple) and len(value) != 3:
                raise ParameterError(f"`{name}` must have 3 entries, got {value!r}")
            for v in values:
                check_number(name, v, 0, lo_open=name in positive)
        if self.share_directional + self.share_opportunistic + self.share_passive <= 0:
            raise ParameterError("agent shares must not all be 0")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate_tape` wrote: folder, days and row counts."""

    path: str
    days: list
    trades: int
    snapshots: int
    trades_by_agent: dict

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _State:
    """Everything that carries from one day (or hour) to the next."""

    log_price: float
    regime: int = _CALM
    regime_left_s: float = 0.0
    trend: int = 1
    quiet: int = 0
    quiet_left_s: float = 0.0
    episodes: list = field(default_factory=list)   # (start_us, end_us, signed strength, kind)
    ar: dict = field(default_factory=dict)         # last value of every AR(1) / EMA filter
    pending_impact: float = 0.0                    # impact of the previous step's flow
    deep_last: np.ndarray | None = None            # deep level log sizes of the last snapshot
    last_trade_local_us: int = 0
    last_quiet: bool = False
    quiet_steps: int = 0                           # intervals the quiet spell has lasted so far
    last_touch: tuple = (0, 0)                     # (bid, ask) ticks of the last snapshot
    next_trade_id: int = 4_800_000_000


def _ar1(noise, tau_steps, state, key, unit=True):
    """AR(1) with time constant ``tau_steps`` along axis 0, continuing from ``state[key]``."""
    phi = math.exp(-1.0 / max(tau_steps, 1e-9))
    gain = math.sqrt(1.0 - phi * phi) if unit else 1.0 - phi
    prev = state.get(key)
    if prev is None:
        prev = noise[0] * 0.0 if unit else np.zeros_like(noise[0])
    zi = np.asarray(phi * prev, dtype=np.float64)[None, ...]
    y, _ = lfilter([gain], [1.0, -phi], noise, axis=0, zi=zi)
    state[key] = y[-1].copy() if y.ndim > 1 else float(y[-1])
    return y


def _spells(rng, now_state, left_s, total_s, mean_s, next_state, shape=(1.0, 1.0, 1.0)):
    """Semi-Markov spells covering ``total_s`` seconds: list of (start_s, end_s, state).

    A spell in state ``s`` lasts a gamma time of mean ``mean_s[s]`` and shape ``shape[s]``
    (shape 1: exponential).
    """
    out, t, s = [], 0.0, now_state

    def draw(s):
        return mean_s[s] / shape[s] * rng.gamma(shape[s]) if shape[s] != 1.0 else rng.exponential(mean_s[s])

    if left_s <= 0:
        left_s = draw(s)
    while True:
        end = t + left_s
        out.append((t, min(end, total_s), s))
        if end >= total_s:
            return out, s, end - total_s
        t, s = end, next_state(s)
        left_s = draw(s)


def _fill(spells, n, dt_s, dtype=np.int8):
    out = np.empty(n, dtype=dtype)
    for start, end, s in spells:
        out[int(round(start / dt_s)):int(round(end / dt_s))] = s
    return out


def _season(n, dt_s):
    hours = (np.arange(n) + 0.5) * dt_s / 3600.0
    s = (1.0 + 0.55 * np.exp(-((hours - 14.5) / 2.5) ** 2) + 0.25 * np.exp(-((hours - 8.0) / 2.0) ** 2)
         - 0.3 * np.exp(-((hours - 4.0) / 3.0) ** 2))
    return s / s.mean()


def _amounts(rng, agent, burst, medians):
    """Trade sizes in lots: lognormal bodies; directional larger in bursts, with a Pareto tail.

    ``burst`` is a callable giving the burst strength at given trade indices.
    """
    n = agent.shape[0]
    sigma = np.where(agent == PASSIVE, np.float32(0.8), np.float32(1.1))
    amount = np.asarray(medians)[agent] * np.exp(sigma * rng.standard_normal(n, dtype=np.float32))
    d = np.flatnonzero(agent == DIRECTIONAL)
    amount[d] = amount[d] * (1.0 + 0.5 * burst(d)) + 0.02 * rng.pareto(1.5, d.shape[0])
    return np.maximum(np.round(amount.astype(np.float64) * _LOTS_PER_BTC), 1.0)   # in lots


def _simulate_day(writer, state, params, rng, day_start, n_steps, dt_us, levels, day_target, rate_scale):
    """Generate one UTC day and hand it to ``writer`` a chunk at a time.

    Returns (trades per agent name, trades in the day).  ``state`` carries to the next day.
    """
    p = params
    dt_s = dt_us / 1e6
    steps_per_s = 1.0 / dt_s
    st = state.ar
    # -- regimes and quiet spells --------------------------------------------------------
    mean_regime_s = [h * 3600.0 for h in p.regime_mean_hours]
    spells, state.regime, state.regime_left_s = _spells(
        rng, state.regime, state.regime_left_s, 86400.0, mean_regime_s,
        lambda s: int(rng.choice([r for r in (0, 1, 2) if r != s])))
    regime = _fill(spells, n_steps, dt_s)
    trend = np.empty(n_steps)
    for start, end, s in spells:
        if s == _TRENDING and start > 0:
            state.trend = int(rng.choice([-1, 1]))
        trend[int(round(start / dt_s)):int(round(end / dt_s))] = state.trend if s == _TRENDING else 0
    qspells, state.quiet, state.quiet_left_s = _spells(
        rng, state.quiet, state.quiet_left_s, 86400.0,
        [max(p.active_mean_s, 10 * dt_s), max(p.quiet_mean_s, 3 * dt_s)], lambda s: 1 - s,
        shape=(1.0, p.quiet_shape))
    quiet = _fill(qspells, n_steps, dt_s).astype(bool)
    # the interval each quiet spell began with (-1: continuing from yesterday; -2: not quiet)
    steps = np.arange(n_steps)
    anchor = np.where(quiet & ~np.r_[state.last_quiet, quiet[:-1]], steps, -1)
    anchor = np.where(quiet, np.maximum.accumulate(anchor), -2)
    held = anchor == -1
    quiet_age_s = (np.where(anchor >= 0, steps - anchor, steps + state.quiet_steps) + 0.5) * dt_s
    state.quiet_steps = int(quiet_age_s[-1] / dt_s + 0.5) if quiet[-1] else 0
    activity = _season(n_steps, dt_s) * np.asarray(p.regime_activity)[regime]
    # -- episodes, carried across midnight: pressure (liquidation-like bursts) and walls -----
    day_end = day_start + n_steps * dt_us
    for kind, rates in (("pressure", p.regime_episodes_per_hour), ("wall", p.regime_walls_per_hour)):
        rates = np.asarray(rates)
        n_cand = rng.poisson(rates.max() * 24.0)
        t_cand = np.sort(rng.uniform(0.0, 86400.0, n_cand))
        keep = rng.uniform(size=n_cand) < rates[regime[(t_cand / dt_s).astype(np.int64)]] / rates.max()
        for t in t_cand[keep]:
            k = int(t / dt_s)
            trending = kind == "pressure" and trend[k] != 0 and rng.uniform() < 0.8
            episode_side = int(trend[k]) if trending else int(rng.choice([-1, 1]))
            dur = float(np.clip(p.episode_median_s * math.exp(0.8 * rng.standard_normal()), 10.0, 900.0))
            strength = p.episode_strength * math.exp(0.35 * rng.standard_normal())
            start = day_start + int(t * 1e6)
            state.episodes.append((start, start + int(dur * 1e6), episode_side * strength, kind))
    paths = {}
    for kind in ("pressure", "wall"):
        signed = np.zeros(n_steps + 1)
        unsigned = np.zeros(n_steps + 1)
        for start, end, s, k in state.episodes:
            i0 = max(0, (start - day_start) // dt_us)
            i1 = min(n_steps, (end - day_start) // dt_us)
            if k == kind and i1 > i0:
                signed[i0] += s
                signed[i1] -= s
                unsigned[i0] += abs(s)
                unsigned[i1] -= abs(s)
        paths[kind] = _ar1(np.cumsum(signed[:-1]), 4.0 * steps_per_s, st, kind, unit=False)
        paths[kind + "_burst"] = _ar1(np.cumsum(unsigned[:-1]), 4.0 * steps_per_s, st, kind + "_burst",
                                      unit=False) / p.episode_strength
        del signed, unsigned
    state.episodes = [e for e in state.episodes if e[1] > day_end]
    pressure, burst = paths["pressure"], paths["pressure_burst"]
    wall, wall_burst = paths["wall"], paths["wall_burst"]
    del paths
    # -- imbalance state and the visible top-5 depth ----------------------------------------
    fast = _ar1(rng.standard_normal(n_steps), p.imbalance_tau_s * steps_per_s, st, "fast")
    u = fast + pressure + wall
    top_median = np.array([4.0, 1.6, 1.3, 1.2, 1.1])[:min(levels, _TOP)]
    ntop = top_median.shape[0]
    top_noise = _ar1(rng.standard_normal((n_steps, 2 * ntop)), 1.0 * steps_per_s, st, "top")
    log_top = np.tile(np.log(top_median), 2)[None, :] + 0.6 * top_noise
    log_top[:, :ntop] += p.depth_imbalance * u[:, None]
    log_top[:, ntop:] -= p.depth_imbalance * u[:, None]
    top_lots = np.maximum(np.round(np.exp(log_top) * _LOTS_PER_BTC), 1.0)
    del log_top, top_noise
    visible = (np.log(top_lots[:, :ntop].sum(1)) - np.log(top_lots[:, ntop:].sum(1))) / (2 * p.depth_imbalance)
    # -- agent intensities and trade counts per interval ------------------------------------
    cluster = np.exp(0.5 * _ar1(rng.standard_normal(n_steps), 2.0 * steps_per_s, st, "cluster"))
    base = activity * cluster
    qa = p.quiet_activity
    quiet_d = np.where(quiet, qa[DIRECTIONAL], 1.0)       # informed flow trades while the price moves
    quiet_o = np.where(quiet, qa[OPPORTUNISTIC], 1.0)
    # passive takers wait for the mid to stand still: their intensity grows as a power of the age
    quiet_p = np.where(quiet, qa[PASSIVE] * (quiet_age_s / p.passive_wait_s) ** p.passive_wait_power,
                       p.passive_active)
    del quiet_age_s
    lam = {}
    eager = 1.0 + 0.5 * np.abs(visible)          # takers come out when the book leans
    for s in (1, -1):
        # side choice is logistic in the imbalance they see: with it (a), against it (b)
        with_lean = 1 + np.exp(np.clip(-2 * p.beta_directional * s * (visible - wall), -30, 30))
        against_lean = 1 + np.exp(np.clip(2 * p.beta_opportunistic * s
                                          * (visible - p.opportunistic_pressure_blind * pressure), -30, 30))
        lam[DIRECTIONAL, s] = base * eager * (1 + p.burst_gain * burst) * quiet_d / with_lean
        lam[OPPORTUNISTIC, s] = (base * eager * (1 + p.burst_gain_opportunistic * (burst + wall_burst))
                                 * quiet_o / against_lean)
        lam[PASSIVE, s] = base * np.exp(-0.5 * (visible / p.passive_balance) ** 2) * quiet_p
    del with_lean, against_lean, eager, quiet_d, quiet_o, quiet_p
    shares = {DIRECTIONAL: p.share_directional, OPPORTUNISTIC: p.share_opportunistic, PASSIVE: p.share_passive}
    total_share = sum(shares.values())
    counts = {}
    for a in shares:
        norm = day_target * shares[a] / total_share / (lam[a, 1].sum() + lam[a, -1].sum())
        for s in (1, -1):
            counts[a, s] = rng.poisson(lam[a, s] * norm)
    del lam
    # -- trades: step, agent, side, exchange time, size --------------------------------------
    step = np.concatenate([np.repeat(np.arange(n_steps, dtype=np.int64), c) for c in counts.values()])
    agent = np.concatenate([np.full(c.sum(), a, np.int8) for (a, _), c in counts.items()])
    side = np.concatenate([np.full(c.sum(), s, np.int8) for (_, s), c in counts.items()])
    del counts
    margin = LATENCY_JITTER_US + 1
    t0 = day_start + step * dt_us
    width = np.minimum(dt_us, day_end - LATENCY_BASE_US - LATENCY_JITTER_US - t0) - margin
    ts_exch = t0 + margin + (rng.uniform(size=step.shape[0]) * width).astype(np.int64)
    order = np.argsort(ts_exch, kind="stable")
    step, agent, side, ts_exch = step[order], agent[order], side[order], ts_exch[order]
    del order, t0, width
    lots = _amounts(rng, agent, lambda i: np.minimum(burst[step[i]], 3.0), p.size_median_btc)
    # -- latent price: diffusion, trend, impact of the previous step's flow ----------------
    vol = (p.vol_per_day * math.sqrt(dt_s / 86400.0) * np.asarray(p.regime_vol)[regime]
           * np.sqrt(_season(n_steps, dt_s)) * np.where(quiet, 0.15, 1.15))
    increments = vol * rng.standard_normal(n_steps) + trend * p.trend_per_day * dt_s / 86400.0
    flow = {a: np.bincount(step[agent == a], weights=(side * lots)[agent == a] / _LOTS_PER_BTC,
                           minlength=n_steps) * (REFERENCE_TRADES_PER_DAY / rate_scale) * 1e-4
            for a in shares}
    delayed_d = _ar1(flow[DIRECTIONAL], p.impact_directional_tau_s * steps_per_s, st, "imp_d", unit=False)
    delayed_o = _ar1(flow[OPPORTUNISTIC], p.impact_opportunistic_tau_s * steps_per_s, st, "imp_o", unit=False)
    delayed_p = _ar1(flow[PASSIVE], 3.0 * steps_per_s, st, "imp_p", unit=False)
    impact = (p.impact_directional_bps * (p.impact_directional_now * flow[DIRECTIONAL]
                                          + (1 - p.impact_directional_now) * delayed_d)
              + p.impact_opportunistic_bps * (flow[OPPORTUNISTIC] - (1 + p.reversion_opportunistic) * delayed_o)
              + p.impact_passive_bps * (flow[PASSIVE] - delayed_p))
    del delayed_d, delayed_o, delayed_p
    increments[0] += state.pending_impact
    increments[1:] += impact[:-1]
    state.pending_impact = float(impact[-1])
    log_price = state.log_price + np.cumsum(increments)
    state.log_price = float(log_price[-1])
    del increments, impact, flow, vol
    # -- spread and touch (integer ticks) -------------------------------------------------------
    widen = _ar1(rng.standard_normal(n_steps), 0.5 * steps_per_s, st, "spread")
    excess = widen - np.asarray(p.regime_spread_threshold)[regime]
    spread = np.where(excess > 0, 1 + np.minimum(np.floor(excess * 4.0) + 1, 8), 1).astype(np.int64)
    bid_ticks = np.floor(np.exp(log_price) * _TICKS_PER_USDT - spread / 2.0 + 0.5).astype(np.int64)
    ask_ticks = bid_ticks + spread
    # nobody moves the touch during a quiet spell: hold it where the spell began
    source = np.maximum(anchor, 0)
    bid_ticks = np.where(anchor >= 0, bid_ticks[source], np.where(held, state.last_touch[0], bid_ticks))
    ask_ticks = np.where(anchor >= 0, ask_ticks[source], np.where(held, state.last_touch[1], ask_ticks))
    state.last_quiet = bool(quiet[-1])
    state.last_touch = (int(bid_ticks[-1]), int(ask_ticks[-1]))
    del anchor, held, source, steps
    del widen, excess, spread, log_price
    # -- a chunk at a time: deep levels, trade prices, local times, write --------------------
    chunk = min(n_steps, _CHUNK_STEPS)
    bounds = np.searchsorted(step, np.arange(0, n_steps + chunk, chunk))
    for c, k0 in enumerate(range(0, n_steps, chunk)):
        k1 = min(n_steps, k0 + chunk)
        sizes = _book_sizes(rng, state, top_lots[k0:k1], levels, dt_s)     # (m, 2L) lots, bids then asks
        ladder = np.arange(levels)
        bid_px = (bid_ticks[k0:k1, None] - ladder) / _TICKS_PER_USDT
        ask_px = (ask_ticks[k0:k1, None] + ladder) / _TICKS_PER_USDT
        ts_book = day_start + np.arange(k0, k1, dtype=np.int64) * dt_us
        writer.add_book(Book(ts_book, ts_book + LATENCY_BASE_US + LATENCY_JITTER_US, bid_px,
                             sizes[:, :levels] / _LOTS_PER_BTC, ask_px, sizes[:, levels:] / _LOTS_PER_BTC))
        i0, i1 = bounds[c], bounds[c + 1]
        if i1 == i0:
            continue
        rows = step[i0:i1] - k0
        buy = side[i0:i1] > 0
        m = k1 - k0
        depth = np.concatenate([sizes[:, :levels], sizes[:, levels:]])     # bid rows, then ask rows
        walked, lot_amount = _walk(depth, rows + m * buy, lots[i0:i1])
        price_ticks = np.where(buy, ask_ticks[step[i0:i1]] + walked, bid_ticks[step[i0:i1]] - walked)
        ex = ts_exch[i0:i1]
        local = ex + LATENCY_BASE_US + (rng.uniform(size=i1 - i0) * LATENCY_JITTER_US).astype(np.int64)
        local = np.maximum.accumulate(np.maximum(local, state.last_trade_local_us))
        state.last_trade_local_us = int(local[-1])
        ids = state.next_trade_id + np.arange(i1 - i0, dtype=np.int64)
        state.next_trade_id += i1 - i0
        writer.add_trades(Trades(ex, local, price_ticks / _TICKS_PER_USDT, lot_amount / _LOTS_PER_BTC,
                                 side[i0:i1], ids, extra={"agent": agent[i0:i1]}))
    return {AGENT_NAMES[a]: int((agent == a).sum()) for a in shares}, int(step.shape[0])


def _book_sizes(rng, state, top_lots, levels, dt_s):
    """Sizes in lots for one chunk, (m, 2 * levels): bids 0..L-1 then asks 0..L-1."""
    m = top_lots.shape[0]
    ntop = min(levels, _TOP)
    deep = levels - ntop
    out = np.empty((m, 2 * levels))
    out[:, :ntop] = top_lots[:, :ntop]
    out[:, levels:levels + ntop] = top_lots[:, ntop:]
    if deep == 0:
        return out
    # deeper levels keep their size until refreshed (every 2 s on average); only refreshed
    # cells draw a new lognormal size (1 % of them a 10x wall), the rest carry forward
    cols = 2 * deep
    draw = rng.random((m, cols), dtype=np.float32)
    p_refresh = 1.0 - math.exp(-dt_s / 2.0)
    refresh = draw < p_refresh
    if state.deep_last is None:
        refresh[0] = True
    row, col = np.nonzero(refresh)
    median = np.tile(0.9 + 0.04 * np.arange(deep), 2)[col]
    wall = np.where(draw[row, col] < 0.01 * p_refresh, 10.0, 1.0)
    fresh = np.empty((m, cols))
    fresh[row, col] = np.maximum(np.round(median * wall * np.exp(0.9 * rng.standard_normal(row.shape[0]))
                                          * _LOTS_PER_BTC), 1.0)
    idx = np.where(refresh, np.arange(m, dtype=np.int32)[:, None], np.int32(-1))
    np.maximum.accumulate(idx, axis=0, out=idx)
    deep_lots = np.where(idx >= 0, fresh[np.maximum(idx, 0), np.arange(cols)[None, :]],
                         state.deep_last if state.deep_last is not None else 0.0)
    state.deep_last = deep_lots[-1].copy()
    out[:, ntop:levels] = deep_lots[:, :deep]
    out[:, levels + ntop:] = deep_lots[:, deep:]
    return out


def _walk(depth_lots, row, lots):
    """Deepest level each taker reaches on its consumed side, and its amount (capped at depth).

    ``depth_lots`` (m, L) sizes of the consumed sides, one row per (snapshot, side);
    ``row`` (n,) the row each taker consumes; ``lots`` (n,) taker sizes.
    Returns (level index (n,) int64, filled lots (n,)).  Most takers stop at the touch, so
    the loop over levels only carries the few that walk further.
    """
    cum = np.cumsum(depth_lots, axis=1)
    filled = np.minimum(lots, cum[row, -1])
    level = np.zeros(row.shape[0], dtype=np.int64)
    walking = np.flatnonzero(filled > cum[row, 0])
    for j in range(1, depth_lots.shape[1]):
        if walking.size == 0:
            break
        level[walking] = j
        walking = walking[filled[walking] > cum[row[walking], j]]
    return level, filled


def _day_target(trades_per_day: float, day: _dt.date) -> float:
    return trades_per_day * (7.0 / 12.0 if day.weekday() >= 5 else 7.0 / 6.0)


# Peak memory of one day, about 3x what was measured (peak RSS of `synth --days 1`: +34 MB for
# 1.05 M more trades, +128 MB for 778 k more snapshots of 25 levels), plus 0.5 GB to start with.
_BYTES_PER_TRADE = 100
_BYTES_PER_LEVEL = 20       # per snapshot and level
_BASE_BYTES = 500e6


def generate_tape(out: PathLike, start: str, days: int, trades_per_day: float, seed: int, *,
                  snapshot_ms: int = 100, levels: int = MAX_LEVELS, params: SynthParams | None = None,
                  progress: Callable[[str, int, int], object] | None = None, force: bool = False,
                  notes: Say | None = None) -> SynthResult:
    """Generate a synthetic BTCUSDT-futures tape directory with planted agent types.

    Parameters
    ----------
    out : str or Path
        New tape directory; must not exist unless ``force`` (then an existing tape directory
        is replaced only after the new one is complete).
    start : str
        First UTC day, ``YYYY-MM-DD``.
    days : int
        Number of consecutive UTC days, >= 1.
    trades_per_day : float
        Expected trades per day averaged over a week (weekdays 7/6 of it, weekend days 7/12).
    seed : int
        Seed of the random numbers; same arguments give byte-identical Parquet files.
    snapshot_ms : int
        Book snapshot cadence in milliseconds (10..60000, dividing a day evenly).
    levels : int
        Book levels per side, 1..25.
    params : SynthParams, optional
        Model knobs (defaults are the documented model).
    progress : callable, optional
        Called after each day as ``progress(day, trades, snapshots)``.
    force : bool
        Replace an existing clusterlob tape directory at ``out``.
    notes : callable, optional
        Called with a line about a staging folder a killed run left (removed or in use).

    Returns
    -------
    SynthResult
    """
    path = Path(out)
    days = check_int("days", days, 1)
    check_number("trades_per_day", trades_per_day, 0, lo_open=True)
    seed = check_int("seed", seed, 0)
    snapshot_ms = check_int("snapshot_ms", snapshot_ms, 10, 60_000)
    if 86_400_000 % snapshot_ms:
        raise ParameterError(f"`snapshot_ms` must be an integer in 10..60000 dividing a day, got {snapshot_ms!r}")
    levels = check_int("levels", levels, 1, MAX_LEVELS)
    try:
        first = _dt.date.fromisoformat(start)
    except (TypeError, ValueError):
        raise ParameterError(f"`start` must be a day YYYY-MM-DD, got {start!r}") from None
    if days > (_dt.date(2099, 12, 31) - first).days + 1:     # tape times are 2009..2100
        raise ParameterError(f"`days` must end the tape by 2099-12-31, got {days} days from {start}")
    dt_us = snapshot_ms * 1000
    n_steps = US_PER_DAY // dt_us
    # one day is in memory at a time: its trades' columns and temporaries, and its snapshots
    check_memory("synth", _day_target(trades_per_day, _dt.date(2024, 5, 4)) * _BYTES_PER_TRADE
                 + n_steps * levels * _BYTES_PER_LEVEL + _BASE_BYTES)
    params = params or SynthParams()
    if not isinstance(params, SynthParams):
        raise ParameterError(f"`params` must be a SynthParams, got {type(params).__name__}")
    state = _State(log_price=math.log(params.start_price))
    totals = {name: 0 for name in AGENT_NAMES.values()}
    written, snapshots = [], 0
    with TapeWriter(path, INSTRUMENT, force=bool(force), progress=notes) as writer:
        for i in range(days):
            day = first + _dt.timedelta(days=i)
            rng = np.random.default_rng([seed, i])
            by_agent, n = _simulate_day(writer, state, params, rng, day_start_us(day.isoformat()), n_steps,
                                        dt_us, levels, _day_target(trades_per_day, day), trades_per_day)
            for k, v in by_agent.items():
                totals[k] += v
            written.append(day.isoformat())
            snapshots += n_steps
            if progress is not None:
                progress(day.isoformat(), n, n_steps)
        writer.close({"generator": "clusterlob.synth", "seed": int(seed), "start": start, "days": int(days),
                      "trades_per_day": float(trades_per_day), "snapshot_ms": int(snapshot_ms),
                      "levels": int(levels), "agent_codes": {str(k): v for k, v in AGENT_NAMES.items()},
                      "trades_by_agent": totals, "params": params.to_dict()})
    return SynthResult(str(path), written, sum(totals.values()), snapshots, totals)
