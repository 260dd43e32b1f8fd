"""Synthetic tapes calibrated to a real one: the marginals, not the mechanisms.

:func:`calibrate` estimates from a tape (at least one hour of trades, with a book):

* trade sizes (empirical quantiles) and the buy share;
* trade inter-arrival times per UTC hour of day (empirical quantiles; an hour the tape does
  not cover uses the pooled distribution);
* book snapshot inter-arrival times, the touch's moves per snapshot (in ticks) and the spread
  (in ticks, with how often it changes);
* the depth profile: per level, the size distribution of each side and the gap to the level
  above it in ticks, and how often each level changes between snapshots.

:func:`generate_calibrated_tape` draws days from those marginals: renewal processes for the
trade and snapshot clocks, a random walk of the touch with the measured step distribution, and
every level's size redrawn from its marginal at its measured change rate.  A trade takes the
consumed touch of the snapshot before it as its price.  Nothing links a trade to the book: no
agent types are planted, sizes do not react to depth, the book does not react to trades.  So the
marginals match and every dependence (clustering of trades, OFI -> return, imbalance -> side)
is absent: the calibrated tape is a null model for the research, not a replica of the market.
:func:`calibration_report` compares real and synthetic quantiles and gives the two-sample
Kolmogorov-Smirnov distance of each marginal.  See ``docs/synth.md``.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._typing import Days, PathLike, Say
from ..errors import ParameterError
from .store import read_manifest, read_tape
from .types import US_PER_DAY, Book, Instrument, Trades, day_start_us, parse_days
from .writer import TapeWriter

__all__ = ["MIN_CALIBRATION_US", "Calibration", "calibrate", "generate_calibrated_tape", "calibration_report",
           "REPORT_QUANTILES"]

MIN_CALIBRATION_US = 3_600 * 1_000_000      # at least one hour of trades
REPORT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_GRID = np.linspace(0.0, 1.0, 1001)           # quantile grid of the continuous marginals
_KEEP = 400_000                               # values kept per marginal (strided sample)
_US_PER_HOUR = 3_600 * 1_000_000
_LATENCY_US = 2_000
_MIN_HOUR_GAPS = 50                           # fewer gaps in an hour: use the pooled distribution


def _thin(values: np.ndarray, keep: int = _KEEP) -> np.ndarray:
    values = np.asarray(values)
    step = max(1, values.shape[0] // keep)
    return values[::step]


def _pmf(values) -> dict:
    v, c = np.unique(np.asarray(values), return_counts=True)
    return {"values": v.tolist(), "p": (c / c.sum()).tolist()}


def _draw_pmf(rng, pmf: dict, n: int) -> np.ndarray:
    return rng.choice(np.asarray(pmf["values"], dtype=np.float64), size=n, p=np.asarray(pmf["p"]))


def _draw_quantiles(rng, q, n: int) -> np.ndarray:
    return np.interp(rng.random(n), _GRID, np.asarray(q, dtype=np.float64))


@dataclass
class Calibration:
    """What :func:`calibrate` measured (JSON-able via :meth:`to_dict`)."""

    instrument: dict
    levels: int
    hours: float                       # hours of trades seen
    trades: int
    snapshots: int
    buy_share: float
    size_q: list                       # trade size quantiles on _GRID
    gap_q_by_hour: dict                # "h" -> quantiles of trade gaps (us) ending in hour h
    gap_q_pooled: list
    snapshot_gap_q: list
    touch_step: dict                   # pmf of the bid touch's move per snapshot, ticks
    spread: dict                       # pmf of the spread, ticks
    spread_change: float               # share of snapshot pairs whose spread changed
    level_size_q: list                 # [level][side 0 bid / 1 ask] -> quantiles
    level_gap: list                    # [level] pmf of the gap to the level above, ticks (level 0: {})
    level_change: list                 # [level] share of snapshot pairs whose size or price changed
    level_gap_change: list = field(default_factory=list)   # [level] share of pairs whose gap changed
    level_size_change: list = field(default_factory=list)  # [level] share of pairs at an unchanged price whose size changed
    touch_move: float = 0.0            # share of snapshot pairs whose best bid moved
    start_price: float = 60_000.0      # the real tape's first trade price (where the walk starts)
    samples: dict = field(default_factory=dict, repr=False)   # real samples for the report

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "samples"}
        return d


def calibrate(tape_dir: PathLike, days: Days = None, *, progress: Say | None = None) -> Calibration:
    """Estimate the marginals of a real tape (see the module doc).

    Raises a one-line :class:`ParameterError` when the tape has less than one hour of trades
    or no book.
    """
    manifest = read_manifest(tape_dir)
    chosen = parse_days(days, [d["date"] for d in manifest["days"]])
    inst = manifest["instrument"]
    tick = float(inst["tick_size"])
    sizes: list[np.ndarray] = []
    buys, known = 0, 0
    gaps_by_hour: dict[int, list[np.ndarray]] = {h: [] for h in range(24)}
    snap_gaps: list[np.ndarray] = []
    steps: list[np.ndarray] = []
    spreads: list[np.ndarray] = []
    spread_changes, n_pairs, moves = 0, 0, 0
    # per level, sized by the first day with a book (book_seen)
    book_seen = False
    level_sizes: list[list[list[np.ndarray]]] = []      # [level][side] -> samples
    level_gaps: list[list[np.ndarray]] = []
    level_changes, gap_changes = np.zeros(0), np.zeros(0)
    size_changes, same_price = np.zeros(0), np.zeros(0)
    span_us, n_trades, n_snap, levels = 0, 0, 0, 0
    start_price: float | None = None
    for day in chosen:
        tape = read_tape(tape_dir, [day])
        tr, bk = tape.trades, tape.book
        n_trades += len(tr)
        n_snap += len(bk)
        if start_price is None and len(tr):
            start_price = float(tr.price[0])
        if len(tr) >= 2:
            span_us += int(tr.ts_local_us[-1] - tr.ts_local_us[0])
            gaps = np.diff(tr.ts_local_us)
            hours = ((tr.ts_local_us[1:] % US_PER_DAY) // _US_PER_HOUR).astype(np.int64)
            for h in np.unique(hours):
                gaps_by_hour[int(h)].append(_thin(gaps[hours == h], _KEEP // 24))
        sizes.append(_thin(tr.amount))
        buys += int(np.count_nonzero(tr.side > 0))
        known += int(np.count_nonzero(tr.side != 0))
        if len(bk) >= 2:
            levels = bk.levels
            if not book_seen:
                book_seen = True
                level_sizes = [[[], []] for _ in range(levels)]
                level_gaps = [[] for _ in range(levels)]
                level_changes = np.zeros(levels)
                gap_changes = np.zeros(levels)
                size_changes = np.zeros(levels)
                same_price = np.zeros(levels)
            snap_gaps.append(_thin(np.diff(bk.ts_local_us)))
            bid0 = np.round(bk.bid_px[:, 0] / tick)
            ok = np.isfinite(bid0)
            steps.append(_thin(np.diff(bid0[ok])))
            moves += int(np.count_nonzero(np.diff(bk.bid_px[:, 0]) != 0))
            spread = np.round((bk.ask_px[:, 0] - bk.bid_px[:, 0]) / tick)
            spread = spread[np.isfinite(spread)]
            spreads.append(_thin(spread))
            spread_changes += int(np.count_nonzero(np.diff(spread) != 0))
            n_pairs += len(bk) - 1
            for lv in range(levels):
                for s, (px, sz) in enumerate(((bk.bid_px, bk.bid_sz), (bk.ask_px, bk.ask_sz))):
                    level_sizes[lv][s].append(_thin(sz[:, lv][np.isfinite(sz[:, lv])], _KEEP // 4))
                    price_same = np.diff(np.round(px[:, lv] / tick)) == 0
                    size_changed = np.diff(sz[:, lv]) != 0
                    level_changes[lv] += np.count_nonzero(size_changed | ~price_same) / 2
                    size_changes[lv] += np.count_nonzero(size_changed & price_same)
                    same_price[lv] += np.count_nonzero(price_same)
                if lv:
                    g = np.concatenate([np.round((bk.bid_px[:, lv - 1] - bk.bid_px[:, lv]) / tick),
                                        np.round((bk.ask_px[:, lv] - bk.ask_px[:, lv - 1]) / tick)])
                    level_gaps[lv].append(_thin(g[np.isfinite(g) & (g > 0)], _KEEP // 4))
                    gb = np.round((bk.bid_px[:, lv - 1] - bk.bid_px[:, lv]) / tick)
                    ga = np.round((bk.ask_px[:, lv] - bk.ask_px[:, lv - 1]) / tick)
                    gap_changes[lv] += (np.count_nonzero(np.diff(gb) != 0) + np.count_nonzero(np.diff(ga) != 0)) / 2
        if progress is not None:
            progress(f"calibrate: {day}: {len(tr):,} trades, {len(bk):,} snapshots")
        del tape
    if n_snap < 2 or not book_seen:
        raise ParameterError(f"--calibrate-from {tape_dir}: the tape has no book ({n_snap} snapshots); "
                             f"calibration needs trades and book snapshots")
    if span_us < MIN_CALIBRATION_US:
        raise ParameterError(f"--calibrate-from {tape_dir}: the tape holds {span_us / 6e7:.1f} minutes of trades; "
                             f"calibration needs at least one hour")
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0)   # noqa: E731
    all_gaps = cat([g for h in range(24) for g in gaps_by_hour[h]])
    size_all = cat(sizes)
    q = lambda v: np.quantile(v, _GRID).tolist()   # noqa: E731
    by_hour = {}
    for h in range(24):
        g = cat(gaps_by_hour[h])
        if g.shape[0] >= _MIN_HOUR_GAPS:
            by_hour[str(h)] = q(g)
    spread_all, step_all, snap_all = cat(spreads), cat(steps), cat(snap_gaps)
    lv_sizes = [[q(cat(level_sizes[lv][s])) if sum(map(len, level_sizes[lv][s])) else None for s in (0, 1)]
                for lv in range(levels)]
    lv_gaps: list[dict] = [{}] + [_pmf(cat(level_gaps[lv])) if sum(map(len, level_gaps[lv])) else {"values": [1.0], "p": [1.0]}
                      for lv in range(1, levels)]
    return Calibration(
        instrument=dict(inst), levels=int(levels), hours=span_us / _US_PER_HOUR, trades=n_trades,
        snapshots=n_snap, buy_share=buys / known if known else 0.5, size_q=q(size_all),
        gap_q_by_hour=by_hour, gap_q_pooled=q(all_gaps), snapshot_gap_q=q(snap_all),
        touch_step=_pmf(step_all), spread=_pmf(spread_all[spread_all > 0]),
        spread_change=spread_changes / max(1, n_pairs), level_size_q=lv_sizes, level_gap=lv_gaps,
        level_change=(level_changes / max(1, n_pairs)).tolist(), start_price=float(start_price or 60_000.0),
        level_gap_change=(gap_changes / max(1, n_pairs)).tolist(),
        level_size_change=(size_changes / np.maximum(1.0, same_price)).tolist(),
        touch_move=moves / max(1, n_pairs),
        samples={"trade_size": size_all, "trade_gap_us": all_gaps, "snapshot_gap_us": snap_all,
                 "touch_step_ticks": step_all, "spread_ticks": spread_all,
                 **{f"{side}_size_level_{lv + 1}": cat(level_sizes[lv][s])
                    for lv in sorted({0, min(4, levels - 1), levels - 1}) for s, side in enumerate(("bid", "ask"))}})


# -- generation ------------------------------------------------------------------------------

def _renewal(rng, quantiles, start_us: int, end_us: int) -> np.ndarray:
    """Event times in [start, end) with gaps drawn from ``quantiles`` (us, >= 1)."""
    mean = max(1.0, float(np.mean(quantiles)))
    out, t = [], float(start_us)
    while t < end_us:
        n = int(min(5_000_000, max(16, 1.2 * (end_us - t) / mean)))
        times = t + np.cumsum(np.maximum(0.0, _draw_quantiles(rng, quantiles, n)))
        out.append(times[times < end_us])
        t = max(float(times[-1]), t + 1.0)   # progress even if every gap drawn was 0
    return np.floor(np.concatenate(out)).astype(np.int64) if out else np.empty(0, np.int64)


def _carried(rng, draw, n: int, p_change: float, carry, forced=None):
    """n values that keep ``carry`` until a change (probability ``p_change`` per row, or a row of
    ``forced``) redraws them."""
    draws = draw(n)
    change = rng.random(n) < p_change
    if forced is not None:
        change |= forced
    idx = np.where(change, np.arange(n), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, draws[np.maximum(idx, 0)], carry)


@dataclass
class _BookState:
    bid_ticks: float
    spread: float
    sizes: np.ndarray       # (2, L)
    gaps: np.ndarray        # (L,) ticks to the level above (0 for the touch)
    ticks: np.ndarray          # (2, L) the last snapshot's level prices in ticks


_AGENT_SHARES = (0.35, 0.20, 0.45)     # directional, opportunistic, passive (as the planted model)


def _plant(rng, side, row, bid_sz, ask_sz):
    """Optional planted types: directional (0) takes the thinner side of the top-5 depth (buys when
    the asks are thinner), opportunistic (1) takes the thicker one, passive (2) keeps its random
    side.  Only the side depends on the book; sizes, times and prices keep their marginals."""
    top = min(5, bid_sz.shape[1])
    bid_depth, ask_depth = bid_sz[row, :top].sum(axis=1), ask_sz[row, :top].sum(axis=1)
    agent = rng.choice(np.array([0, 1, 2], dtype=np.int8), size=side.shape[0], p=_AGENT_SHARES)
    thin_buy = np.where(ask_depth < bid_depth, 1, -1).astype(np.int8)
    side = np.where(agent == 0, thin_buy, np.where(agent == 1, -thin_buy, side)).astype(np.int8)
    return side, agent


def _hour(rng, cal: Calibration, state: _BookState, start: int, levels: int, lot: float, tick: float,
          next_id: int, samples: dict, plant_agents: bool = False):
    end = start + _US_PER_HOUR
    hour = str((start % US_PER_DAY) // _US_PER_HOUR)
    snap_ts = _renewal(rng, cal.snapshot_gap_q, start, end)
    snap_ts = np.concatenate([[start], snap_ts[snap_ts > start]])
    m = snap_ts.shape[0]
    steps = _draw_pmf(rng, cal.touch_step, m)
    steps[0] = 0.0
    bid_ticks = state.bid_ticks + np.cumsum(steps)
    spread = _carried(rng, lambda n: _draw_pmf(rng, cal.spread, n), m, cal.spread_change, state.spread)
    ask_ticks = bid_ticks + spread
    bid_px, ask_px = np.empty((m, levels)), np.empty((m, levels))
    bid_sz, ask_sz = np.empty((m, levels)), np.empty((m, levels))
    offset_b, offset_a = np.zeros(m), np.zeros(m)
    for lv in range(levels):
        p = float(cal.level_size_change[lv]) if cal.level_size_change else float(cal.level_change[lv])
        if lv:
            p_gap = float(cal.level_gap_change[lv]) if cal.level_gap_change else p
            gap = _carried(rng, lambda n: _draw_pmf(rng, cal.level_gap[lv], n), m, p_gap, state.gaps[lv])
            offset_b += gap
            offset_a += gap
            state.gaps[lv] = gap[-1]
        level_ticks = (bid_ticks - offset_b, ask_ticks + offset_a)
        bid_px[:, lv] = level_ticks[0] * tick
        ask_px[:, lv] = level_ticks[1] * tick
        for s, out in enumerate((bid_sz, ask_sz)):
            q = cal.level_size_q[lv][s] or cal.level_size_q[0][s]
            # a level whose price moved is another queue: its size is redrawn
            moved = np.diff(level_ticks[s], prepend=state.ticks[s, lv]) != 0
            state.ticks[s, lv] = level_ticks[s][-1]
            v = _carried(rng, lambda n: _draw_quantiles(rng, q, n), m, p, state.sizes[s, lv], moved)
            out[:, lv] = np.maximum(lot, np.round(v / lot) * lot)
            state.sizes[s, lv] = v[-1]
    state.bid_ticks, state.spread = float(bid_ticks[-1]), float(spread[-1])
    changed = np.zeros(levels)
    for px, sz in ((bid_px, bid_sz), (ask_px, ask_sz)):
        changed += np.count_nonzero((np.diff(sz, axis=0) != 0) | (np.diff(px, axis=0) != 0), axis=0) / 2
    samples.setdefault("_level_changes", []).append(changed)
    samples.setdefault("_pairs", []).append(np.array([m - 1.0]))
    gap_q = cal.gap_q_by_hour.get(hour, cal.gap_q_pooled)
    ts = _renewal(rng, gap_q, start, end)
    n = ts.shape[0]
    side = np.where(rng.random(n) < cal.buy_share, 1, -1).astype(np.int8)
    amount = np.maximum(lot, np.round(_draw_quantiles(rng, cal.size_q, n) / lot) * lot)
    row = np.searchsorted(snap_ts, ts, side="left") - 1      # the snapshot strictly before
    row = np.maximum(row, 0)
    extra = {}
    if plant_agents:
        side, extra["agent"] = _plant(rng, side, row, bid_sz, ask_sz)
    price = np.where(side > 0, ask_px[row, 0], bid_px[row, 0])
    book = Book(snap_ts, snap_ts + _LATENCY_US, bid_px, bid_sz, ask_px, ask_sz)
    trades = Trades(ts, ts + _LATENCY_US, price, amount, side, np.arange(next_id, next_id + n, dtype=np.int64),
                    extra)
    for name, values in (("trade_size", amount), ("trade_gap_us", np.diff(ts)),
                         ("snapshot_gap_us", np.diff(snap_ts)), ("touch_step_ticks", steps[1:]),
                         ("spread_ticks", spread)):
        samples.setdefault(name, []).append(_thin(values, _KEEP // 24))
    for key in [k for k in cal.samples if k.endswith(tuple(f"level_{i}" for i in range(1, 26)))]:
        side_name, lv = key.split("_")[0], int(key.rsplit("_", 1)[1]) - 1
        sz = bid_sz if side_name == "bid" else ask_sz
        samples.setdefault(key, []).append(_thin(sz[:, lv], _KEEP // 24))
    return book, trades


def generate_calibrated_tape(out: PathLike, cal: Calibration, start: str, days: int, seed: int, *,
                             plant_agents: bool = False, progress: Say | None = None,
                             force: bool = False) -> dict:
    """Write ``days`` days drawn from ``cal`` to a new tape directory; returns the synthetic samples.

    Same arguments give the same tape (one generator per day seeded with ``(seed, day)``).
    ``plant_agents`` (off by default) adds the ``agent`` column of :func:`_plant`: directional
    35% / opportunistic 20% / passive 45%, whose *side* follows the top-5 depth imbalance; nothing
    else reacts, so there is no price impact and no return to predict.
    """
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days <= 0:
        raise ParameterError(f"`days` must be an integer >= 1, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"`seed` must be an integer >= 0, got {seed!r}")
    try:
        first = _dt.date.fromisoformat(start)
    except (TypeError, ValueError):
        raise ParameterError(f"`start` must be a day YYYY-MM-DD, got {start!r}") from None
    path = Path(out)
    if path.exists() and not force:
        raise ParameterError(f"`out` {path} already exists (use --force to replace it)")
    inst = cal.instrument
    instrument = Instrument(inst.get("exchange", ""), inst.get("symbol", ""), float(inst["tick_size"]),
                            float(inst["lot_size"]))
    tick, lot, levels = instrument.tick_size, instrument.lot_size, cal.levels
    rng0 = np.random.default_rng([seed, 10_007])
    state = _BookState(bid_ticks=round(cal.start_price / tick), spread=float(_draw_pmf(rng0, cal.spread, 1)[0]),
                       sizes=np.array([[float(np.median(cal.level_size_q[lv][s] or cal.level_size_q[0][s]))
                                        for lv in range(levels)] for s in (0, 1)]),
                       gaps=np.array([0.0] + [float(_draw_pmf(rng0, cal.level_gap[lv], 1)[0])
                                              for lv in range(1, levels)]),
                       ticks=np.full((2, levels), np.nan))
    samples: dict = {}
    next_id = 0
    with TapeWriter(path, instrument, force=bool(force)) as writer:
        for i in range(days):
            day = (first + _dt.timedelta(days=i)).isoformat()
            rng = np.random.default_rng([seed, i])
            n_day = 0
            for h in range(24):
                book, trades = _hour(rng, cal, state, day_start_us(day) + h * _US_PER_HOUR, levels, lot, tick,
                                     next_id, samples, plant_agents)
                writer.add_book(book)
                writer.add_trades(trades)
                next_id += len(trades)
                n_day += len(trades)
            if progress is not None:
                progress(f"synth: {day}: {n_day:,} trades (calibrated)")
        writer.close({"generator": "clusterlob.synth --calibrate-from", "seed": int(seed), "start": start,
                      "days": int(days), "plant_agents": bool(plant_agents), "calibration": cal.to_dict(),
                      **({"agent_codes": {"0": "directional", "1": "opportunistic", "2": "passive"}}
                         if plant_agents else {})})
    result = {k: np.concatenate(v) for k, v in samples.items() if not k.startswith("_")}
    result["_level_change"] = np.sum(samples["_level_changes"], axis=0) / max(1.0, float(np.sum(samples["_pairs"])))
    return result


# -- report ------------------------------------------------------------------------------------

def calibration_report(cal: Calibration, synthetic: dict) -> list:
    """Per marginal: sample sizes, real and synthetic quantiles, KS distance (max CDF gap)."""
    from scipy.stats import ks_2samp
    rows = []
    for name, real in cal.samples.items():
        syn = synthetic.get(name)
        real = np.asarray(real, dtype=np.float64)
        real = real[np.isfinite(real)]
        if syn is None or real.size == 0:
            continue
        syn = np.asarray(syn, dtype=np.float64)
        syn = syn[np.isfinite(syn)]
        if syn.size == 0:
            continue
        ks = ks_2samp(real, syn)
        rows.append({"marginal": name, "n_real": int(real.size), "n_synthetic": int(syn.size),
                     "real_quantiles": np.quantile(real, REPORT_QUANTILES).tolist(),
                     "synthetic_quantiles": np.quantile(syn, REPORT_QUANTILES).tolist(),
                     "ks_distance": float(ks.statistic)})
    return rows


def report_markdown(cal: Calibration, rows: list, source: str,
                    synthetic_level_change: np.ndarray | None = None) -> str:
    """The calibration report as Markdown (``synthetic_level_change``: the ``_level_change`` entry
    of :func:`generate_calibrated_tape`'s samples)."""
    from ..report import markdown_table
    qs = [f"p{round(100 * q)}" for q in REPORT_QUANTILES]
    table = []
    for r in rows:
        table.append([r["marginal"], "real", f"{r['n_real']:,}"] + [f"{v:.6g}" for v in r["real_quantiles"]]
                     + [f"{r['ks_distance']:.3f}"])
        table.append(["", "synthetic", f"{r['n_synthetic']:,}"] + [f"{v:.6g}" for v in r["synthetic_quantiles"]]
                     + [""])
    rates = ""
    if synthetic_level_change is not None:
        rates = ("Book changes per snapshot pair (share of pairs where the level's size or price changed), "
                 "real / synthetic: " + ", ".join(f"L{i + 1} {r:.3f} / {s:.3f}" for i, (r, s) in
                                                   enumerate(zip(cal.level_change, synthetic_level_change))) + ".")
    return "\n".join([
        "# Calibration report", "", rates, "",
        f"Calibrated from {source}: {cal.hours:.1f} hours of trades, {cal.trades:,} trades, {cal.snapshots:,} "
        f"snapshots, {cal.levels} levels; buy share {cal.buy_share:.3f}; hours of day with their own "
        f"inter-arrival distribution: {len(cal.gap_q_by_hour)} of 24 (the others use the pooled one).", "",
        "KS = two-sample Kolmogorov-Smirnov distance (largest gap between the two empirical CDFs; 0 = "
        "identical). Reproduced: these marginals. Not reproduced: any dependence between them "
        "(trade clustering, size vs depth, OFI vs returns, book imbalance vs side) - see docs/synth.md.", "",
        markdown_table(["marginal", "sample", "n"] + qs + ["KS"], table,
                       align=["l", "l", "r"] + ["r"] * len(qs) + ["r"])])
