"""Benchmark the compiled tape replay against its plain-Python reference.

    PYTHONPATH=. python tools/bench_replay.py [--events 10000000] [--reference-events 200000]
    PYTHONPATH=. python tools/bench_replay.py --tape /tmp/clusterlob-bench/tape-...-seed7 --days 2024-05-02

Without --tape: builds a seeded synthetic event stream (trades and book-touch updates with
touch sizes around a random-walk mid, ~70% trades, at the research log's event density).
With --tape: the given days of a tape (every book level; roles from the synthetic tape's
``agent`` column when it has one, else random).  Times the engine loop under each fill model
(default queue / risk_averse first; best of --repeat runs; validation and output assembly
timed separately), then the reference (tests/twins/replay.py) on the first
--reference-events events, and prints the rates and their ratio.  The machine may be
shared: the load average is printed; rerun if the figures look noisy.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import numpy as np

from clusterlob import _core
from clusterlob.replay import replay_arrays
from clusterlob.replay.strategy import StrategyConfig

ROOT = Path(__file__).resolve().parents[1]


def load_reference():
    spec = importlib.util.spec_from_file_location("reference_replay", ROOT / "tests" / "twins" / "replay.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_events(n_events: int, seed: int = 0, tick: float = 0.1):
    """Trades and touch updates at the research log's density, prices on the tick grid.

    The log's tape had 27,649,725 trades in 7 days (45.7 trades/s); with ~20 book updates/s
    that is ~65 events/s: exponential gaps with a 15 ms mean, 70% of events trades.  Times
    are whole microseconds, so some events share a time (a trade then comes first).
    """
    rng = np.random.default_rng(seed)
    is_trade = rng.random(n_events) < 0.7
    ts = 1_714_521_600_000_000 + np.cumsum(rng.exponential(15_000, n_events).astype(np.int64))
    n_book = int((~is_trade).sum())
    mid_ticks = 600_000 + np.cumsum(rng.integers(-1, 2, n_book))
    book_ts = ts[~is_trade]
    bid = (mid_ticks - 1) * tick
    ask = (mid_ticks + 1) * tick
    trade_ts = ts[is_trade]
    # the touch each trade saw: the last book update at or before it
    j = np.searchsorted(book_ts, trade_ts, side="right") - 1
    ref = mid_ticks[np.clip(j, 0, n_book - 1)]
    side = np.where(rng.random(trade_ts.shape[0]) < 0.5, 1, -1).astype(np.int8)
    price = (ref + side * rng.geometric(0.04, trade_ts.shape[0])) * tick   # mostly near the touch, some sweeps
    amount = rng.choice([0.001, 0.01, 0.05, 0.2, 1.0], trade_ts.shape[0])
    roles = rng.integers(-1, 3, trade_ts.shape[0]).astype(np.int8)
    bid_sz = rng.exponential(1.0, n_book) + 0.001
    ask_sz = rng.exponential(1.0, n_book) + 0.001
    return (trade_ts, price, amount, side, roles, book_ts, bid[:, None], ask[:, None],
            bid_sz[:, None], ask_sz[:, None])


def tape_events(path, days):
    """The arrays of a tape's days (every level), roles from ``agent`` or random."""
    from clusterlob.tape import read_tape
    tape = read_tape(path, days)
    t, b = tape.trades, tape.book
    if "agent" in t.extra:
        roles = np.asarray(t.extra["agent"], np.int8)
    else:
        roles = np.random.default_rng(0).integers(-1, 3, len(t)).astype(np.int8)
    return (t.ts_local_us, t.price, t.amount, t.side, roles, b.ts_local_us,
            np.ascontiguousarray(b.bid_px), np.ascontiguousarray(b.ask_px),
            np.ascontiguousarray(b.bid_sz), np.ascontiguousarray(b.ask_sz)), tape.instrument.tick_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--tape", default=None, help="a tape directory instead of synthetic events")
    ap.add_argument("--days", default=None, help="days of --tape (default: all)")
    ap.add_argument("--reference-events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; build {_core.build_info()}")
    t0 = time.perf_counter()
    if args.tape:
        events, tick = tape_events(args.tape, args.days)
        base = StrategyConfig()                             # the defaults, as the main job runs them
    else:
        tick = 0.1
        events = synthetic_events(args.events, args.seed, tick)
        base = StrategyConfig(quote_size=0.05, max_inventory=5.0, half_spread_bps=0.2)   # ~1% of trades fill
    n_trades, n_book = events[0].shape[0], events[5].shape[0]
    n = n_trades + n_book
    print(f"events: {n:,} ({n_trades:,} trades, {n_book:,} book updates, {events[6].shape[1]} levels), "
          f"built in {time.perf_counter() - t0:.1f} s")
    configs = [("queue / risk_averse", base.replace(fill_model="queue", queue_rule="risk_averse")),
               ("queue / power 2", base.replace(fill_model="queue", queue_rule="power", queue_power=2.0)),
               ("cross", base.replace(fill_model="cross"))]
    for label, config in configs:
        loop_times, loop_cpu, total_times = [], [], []
        for _ in range(args.repeat):
            t_start = time.perf_counter()
            result = _replay(events, tick, config)
            total_times.append(time.perf_counter() - t_start)
        engine_args = _engine_inputs(events, tick, config)
        for _ in range(args.repeat):
            engine, arrays, buffers = engine_args()
            t_start, c_start = time.perf_counter(), time.process_time()
            nf, nm, finished = engine.run(*arrays, *buffers)
            loop_times.append(time.perf_counter() - t_start)
            loop_cpu.append(time.process_time() - c_start)
            assert finished
        s = result.summary
        print(f"{label:20s} engine loop {min(loop_times):.3f} s = {n / min(loop_times) / 1e6:.1f} M events/s "
              f"(wall, best of {args.repeat}), CPU {n / min(loop_cpu) / 1e6:.1f} M events/s; "
              f"replay_arrays() {n / min(total_times) / 1e6:.1f} M events/s; fills {s.fills:,} "
              f"(queue {s.fills_queue:,}, through {s.fills_trade_through:,}, book {s.fills_book_through:,}), "
              f"decisions {s.quote_decisions:,}, pnl {s.pnl_total:,.2f}")
        if label.startswith("queue / risk"):
            loop_rate = n / min(loop_times)
            cpu_rate = n / min(loop_cpu)

    config = configs[0][1]
    ref = load_reference()
    m = min(args.reference_events, n)
    cut = np.sort(np.concatenate([events[0], events[5]]))[m - 1]
    k_trades = int(np.searchsorted(events[0], cut, side="right"))
    k_book = int(np.searchsorted(events[5], cut, side="right"))
    sub = [a[:k_trades] for a in events[:5]] + [a[:k_book] for a in events[5:]]
    t_start, c_start = time.perf_counter(), time.process_time()
    out = ref.reference_replay(*sub[:8], tick, config, book_bid_sz=sub[8], book_ask_sz=sub[9])
    ref_time = time.perf_counter() - t_start
    ref_cpu = time.process_time() - c_start
    ref_rate = (k_trades + k_book) / ref_time
    check = _replay(sub, tick, config)
    same = check.fills.cash.tolist() == [row[8] for row in out["fills"]] and check.summary.ending_inventory == out["inventory"]
    print(f"reference (Python): {k_trades + k_book:,} events in {ref_time:.2f} s = "
          f"{ref_rate / 1e3:.0f} k events/s (wall); CPU time {ref_cpu:.2f} s = "
          f"{(k_trades + k_book) / ref_cpu / 1e3:.0f} k events/s; engine == reference on them: {same}")
    print(f"ratio engine loop / reference (queue / risk_averse): {loop_rate / ref_rate:,.0f}x (wall), "
          f"{cpu_rate / ((k_trades + k_book) / ref_cpu):,.0f}x (CPU time)")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: the machine is shared, "
              f"wall-clock figures are noisy (CPU-time figures less so)")
    return 0


def _replay(events, tick, config):
    return replay_arrays(*events[:8], tick_size=tick, config=config, book_bid_sz=events[8],
                         book_ask_sz=events[9])


def _engine_inputs(events, tick, config):
    """A factory of (fresh engine, inputs, output buffers big enough for one run)."""
    from clusterlob.replay.engine import new_engine
    from clusterlob.replay.results import MARK_INTERVAL_US

    def make():
        ts, bts = events[0], events[5]
        first_mark = (min(ts[0], bts[0]) // MARK_INTERVAL_US + 1) * MARK_INTERVAL_US
        n_marks = (max(ts[-1], bts[-1]) - first_mark) // MARK_INTERVAL_US + 1
        engine = new_engine(config, tick, int(first_mark))
        arrays = (*events[:6], events[6], events[8], events[7], events[9],
                  np.zeros(0, np.int64), np.zeros(0), *(np.zeros(0, np.int64),) * 5)
        buffers = (np.empty((ts.shape[0] + bts.shape[0] + 8, 2), np.int64),
                   np.empty((ts.shape[0] + bts.shape[0] + 8, 9)),
                   np.empty(n_marks, np.int64), np.empty((n_marks, 8)))
        return engine, arrays, buffers
    return make


if __name__ == "__main__":
    raise SystemExit(main())
