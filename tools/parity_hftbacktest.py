"""clusterlob's replay side by side with hftbacktest on a real Binance recording.

    PYTHONPATH=. python tools/parity_hftbacktest.py [../shared/data/binance-futures/btcusdt_20240808.gz]
        [--hftbt-python /work/venvs/hftbt/bin/python] [--latency-ms 10] [--max-lots 10]

One simple strategy in both engines: quote one lot (0.001 BTC) at the best bid and the best
ask, re-deciding every 100 ms (an order at the price the decision repeats is kept, with its
queue position), a position limit of --max-lots lots, constant 10 ms latencies (order entry,
cancel, response), the risk-averse queue model, a 2 bps maker fee.  hftbacktest runs in its
own environment (``python3 -m venv /work/venvs/hftbt && /work/venvs/hftbt/bin/pip install
hftbacktest``; it is not a dependency of clusterlob): this script calls that interpreter on
itself with ``--hftbacktest-side``, which writes the fills and figures as JSON.  Printed: fills,
volume, ending position, PnL side by side, the per-fill agreement (fills of one engine with a
fill of the other on the same side and price within --match-ms of exchange time), and the speed.

Speed, one definition for both engines: a *run* goes from the input already in memory (clusterlob:
the Tape read from the converted recording; hftbacktest: the event array its ``binancefutures``
converter made) to the final accounts, engine construction included (clusterlob: ``replay()``,
validation, kernel and result; hftbacktest: ``BacktestAsset`` + ``HashMapMarketDepthBacktest``
construction, the strategy loop, ``close()``).  *Warm*: one untimed warm-up run first (it
includes hftbacktest's numba compile of the strategy, about a second), then --repeat timed runs;
the median wall (and CPU) time is reported.  The events/s rows divide ONE common event count,
the market messages of the recording both engines read (trade + depthUpdate messages), by each
engine's median warm wall time; each engine's own event count (clusterlob: trades + book updates;
hftbacktest: one row per trade and per depth level changed) is printed too.
Every difference is explained in docs/replay.md ("Side by side with hftbacktest").
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECORDING = (Path(os.environ.get("CLUSTERLOB_SHARED_DATA") or ROOT.parent / "shared" / "data")
                     / "binance-futures" / "btcusdt_20240808.gz")
TICK, LOT = 0.1, 0.001


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", nargs="?", default=str(DEFAULT_RECORDING))
    ap.add_argument("--hftbt-python", default="/work/venvs/hftbt/bin/python",
                    help="a Python with hftbacktest installed")
    ap.add_argument("--latency-ms", type=float, default=10.0)
    ap.add_argument("--max-lots", type=int, default=10)
    ap.add_argument("--interval-ms", type=float, default=100.0)
    ap.add_argument("--maker-fee-bps", type=float, default=2.0)
    ap.add_argument("--match-ms", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=7, help="timed warm runs per engine (median)")
    ap.add_argument("--fill-size", choices=("whole", "partial"), default="whole",
                    help="clusterlob's StrategyConfig.fill_size (whole: no partial fills, as hftbacktest here)")
    ap.add_argument("--feed-latency", choices=("data", "none"), default="none",
                    help="clusterlob's StrategyConfig.feed_latency (data: the exchange's clock, as hftbacktest)")
    ap.add_argument("--hftbacktest-side", metavar="OUT.json", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# -- hftbacktest (runs in its own environment) -------------------------------------------------

def hftbacktest_side(args) -> dict:
    import numpy as np
    from numba import njit
    from hftbacktest import (BUY, FILLED, GTX, LIMIT, BacktestAsset, HashMapMarketDepthBacktest)
    from hftbacktest.data.utils import binancefutures

    @njit
    def strategy(hbt, lot, max_pos, interval, tick, fills):
        n = 0
        next_id = 1
        bid_id = 0
        ask_id = 0
        while hbt.elapse(interval) == 0:
            orders = hbt.orders(0)
            values = orders.values()
            while values.has_next():
                o = values.get()
                if o.status == FILLED and n < fills.shape[0]:
                    fills[n, 0] = o.exch_timestamp
                    fills[n, 1] = 1.0 if o.side == BUY else -1.0
                    fills[n, 2] = o.exec_price
                    fills[n, 3] = o.exec_qty
                    fills[n, 4] = o.local_timestamp
                    n += 1
            hbt.clear_inactive_orders(0)
            depth = hbt.depth(0)
            bb = depth.best_bid_tick
            ba = depth.best_ask_tick
            pos = hbt.position(0)
            orders = hbt.orders(0)
            # the bid: at the best bid while a fill keeps the position within the limit
            want_bid = pos + lot <= max_pos + 1e-12
            if bid_id != 0 and bid_id in orders:
                o = orders.get(bid_id)
                if (not want_bid or o.price_tick != bb) and o.cancellable:
                    hbt.cancel(0, bid_id, False)
                    bid_id = 0
            else:
                bid_id = 0
            if bid_id == 0 and want_bid:
                hbt.submit_buy_order(0, next_id, bb * tick, lot, GTX, LIMIT, False)
                bid_id = next_id
                next_id += 1
            want_ask = pos - lot >= -max_pos - 1e-12
            if ask_id != 0 and ask_id in orders:
                o = orders.get(ask_id)
                if (not want_ask or o.price_tick != ba) and o.cancellable:
                    hbt.cancel(0, ask_id, False)
                    ask_id = 0
            else:
                ask_id = 0
            if ask_id == 0 and want_ask:
                hbt.submit_sell_order(0, next_id, ba * tick, lot, GTX, LIMIT, False)
                ask_id = next_id
                next_id += 1
        return n

    t0 = time.perf_counter()
    data = binancefutures.convert(args.recording, buffer_size=20_000_000)
    convert_s = time.perf_counter() - t0
    latency_ns = int(args.latency_ms * 1e6)
    out: dict = {"runs": []}
    for run in range(1 + args.repeat):          # run 0: the warm-up (numba compiles the strategy)
        t0, c0 = time.perf_counter(), time.process_time()
        asset = (BacktestAsset().data([data]).linear_asset(1.0)
                 .constant_latency(latency_ns, latency_ns)
                 .risk_adverse_queue_model().no_partial_fill_exchange()
                 .trading_value_fee_model(args.maker_fee_bps * 1e-4, 5e-4)
                 .tick_size(TICK).lot_size(LOT).last_trades_capacity(0))
        hbt = HashMapMarketDepthBacktest([asset])
        fills = np.zeros((200_000, 5))
        t1 = time.perf_counter()
        n = strategy(hbt, LOT, args.max_lots * LOT, int(args.interval_ms * 1e6), TICK, fills)
        t2 = time.perf_counter()
        depth = hbt.depth(0)
        mid = 0.5 * (depth.best_bid + depth.best_ask)
        sv = hbt.state_values(0)
        position, balance, fee = float(sv.position), float(sv.balance), float(sv.fee)
        hbt.close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out["runs"].append({"seconds": wall, "cpu_seconds": cpu, "setup_seconds": t1 - t0,
                            "loop_seconds": t2 - t1})
    fills = fills[:n]
    out.update({
        "engine": "hftbacktest", "events": int(len(data)), "convert_seconds": convert_s,
        "fills": int(n), "volume": float(fills[:, 3].sum()), "position": position,
        "balance": balance, "fees": fee, "mid": float(mid),
        "pnl": float(balance + position * mid - fee),
        "fill_rows": fills.tolist(),
    })
    return out


# -- clusterlob ----------------------------------------------------------------------------------

def clusterlob_side(args) -> dict:
    import numpy as np
    from clusterlob.convert import convert
    from clusterlob.replay import StrategyConfig, replay
    from clusterlob.tape import read_tape

    with tempfile.TemporaryDirectory() as tmp:
        convert([args.recording], Path(tmp) / "tape")
        tape = read_tape(Path(tmp) / "tape")
    latency = int(args.latency_ms * 1000)
    config = StrategyConfig(
        skew_ticks=0.0, theta=0.0, min_half_ticks=0.5, half_spread_bps=0.0, hazard_k=0.0,
        quote_size=LOT, max_inventory=args.max_lots * LOT, maker_fee_bps=args.maker_fee_bps,
        requote_interval_us=int(args.interval_ms * 1000), order_latency_us=latency,
        cancel_latency_us=latency, response_latency_us=latency, fill_model="queue",
        queue_rule="risk_averse", quote_updates="changes", alpha_role="none", hazard_role="none",
        feed_latency=args.feed_latency, fill_size=args.fill_size)
    roles = np.full(len(tape.trades), -1, np.int8)
    runs = []
    for _ in range(1 + args.repeat):            # run 0: the warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        result = replay(tape, roles, config)
        runs.append({"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0})
    s, f = result.summary, result.fills
    # each fill's exchange time: the filling trade's, or the book update's for a book-through
    book_exch = tape.book.ts_exch_us
    j = np.searchsorted(tape.book.ts_local_us, f.ts_us, side="right") - 1
    exch = np.where(f.trade_index >= 0, tape.trades.ts_exch_us[np.maximum(f.trade_index, 0)],
                    book_exch[np.clip(j, 0, len(book_exch) - 1)])
    return {
        "engine": "clusterlob", "events": int(s.events), "fills": int(s.fills),
        "volume": float(s.volume), "position": float(s.ending_inventory), "fees": float(s.fees),
        "pnl": float(s.pnl_total), "fills_by_reason": {"queue": s.fills_queue, "touch": s.fills_touch,
                                                       "trade_through": s.fills_trade_through,
                                                       "book_through": s.fills_book_through},
        "runs": runs,
        "fill_rows": [[int(e) * 1000, float(sd), float(p), float(q)]
                      for e, sd, p, q in zip(exch, f.side, f.price, f.qty)],
    }


def market_messages(path) -> dict:
    """Trade and depthUpdate messages in a recording (the common event count of the speed rows)."""
    import gzip

    counts = {"trade": 0, "depthUpdate": 0}
    with (gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")) as fh:
        for line in fh:
            if b'"e":"trade"' in line:
                counts["trade"] += 1
            elif b'"e":"depthUpdate"' in line:
                counts["depthUpdate"] += 1
    return counts


def warm(side: dict) -> dict:
    """Median wall and CPU seconds of the timed runs (the first run, the warm-up, left out)."""
    import statistics

    timed = side["runs"][1:]
    return {key: statistics.median(r[key] for r in timed) for key in timed[0]} | {"n": len(timed)}


def agreement(ours, theirs, match_ns):
    """Fills of `ours` matched one to one with a fill of `theirs` on the same side and price
    within match_ns of exchange time (greedy, in time order)."""
    used = [False] * len(theirs)
    matched = 0
    j0 = 0
    theirs = sorted(theirs)
    for t, side, price, _ in sorted(ours):
        while j0 < len(theirs) and theirs[j0][0] < t - match_ns:
            j0 += 1
        j = j0
        while j < len(theirs) and theirs[j][0] <= t + match_ns:
            if not used[j] and theirs[j][1] == side and abs(theirs[j][2] - price) < TICK / 2:
                used[j] = True
                matched += 1
                break
            j += 1
    return matched


def main(argv=None) -> int:
    args = _args(argv)
    if args.hftbacktest_side:
        Path(args.hftbacktest_side).write_text(json.dumps(hftbacktest_side(args)))
        return 0
    if not Path(args.recording).exists():
        print(f"error: recording {args.recording} does not exist", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print(f"error: --repeat must be >= 1, got {args.repeat}", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; recording {args.recording}")
    ours = clusterlob_side(args)
    if not Path(args.hftbt_python).exists():
        print(f"hftbacktest side skipped: {args.hftbt_python} does not exist (python3 -m venv "
              f"/work/venvs/hftbt && /work/venvs/hftbt/bin/pip install hftbacktest)")
        print(json.dumps({k: v for k, v in ours.items() if k != "fill_rows"}, indent=1))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hftbacktest.json"
        cmd = [args.hftbt_python, __file__, args.recording, "--hftbacktest-side", str(out),
               "--latency-ms", str(args.latency_ms), "--max-lots", str(args.max_lots),
               "--interval-ms", str(args.interval_ms), "--maker-fee-bps", str(args.maker_fee_bps),
               "--repeat", str(args.repeat)]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
        if done.returncode != 0:
            print(f"error: the hftbacktest side failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        theirs = json.loads(out.read_text())
    match_ns = int(args.match_ms * 1e6)
    m = agreement(ours["fill_rows"], theirs["fill_rows"], match_ns)
    ours["lots"] = round(ours["volume"] / LOT)
    theirs["lots"] = round(theirs["volume"] / LOT)
    rows = [("fills (partial fills apart)", "{:,}", "fills"), ("lots filled", "{:,}", "lots"),
            ("volume (BTC)", "{:.3f}", "volume"),
            ("ending position (BTC)", "{:+.3f}", "position"), ("fees (USDT)", "{:.4f}", "fees"),
            ("PnL (USDT, marked to mid)", "{:+.4f}", "pnl")]
    print(f"strategy: 1 lot at the best bid / ask, every {args.interval_ms:g} ms, limit {args.max_lots} lots, "
          f"latency {args.latency_ms:g} ms, risk-averse queue, maker fee {args.maker_fee_bps:g} bps; "
          f"clusterlob feed_latency {args.feed_latency}, fill_size {args.fill_size}")
    print(f"{'':28}{'clusterlob':>16}{'hftbacktest':>16}{'ratio':>10}")
    for label, fmt, key in rows:
        a, b = ours[key], theirs[key]
        ratio = f"{a / b:.3f}" if b else "n/a"
        print(f"{label:28}{fmt.format(a):>16}{fmt.format(b):>16}{ratio:>10}")
    print(f"{'fills matched (side, price, +-' + format(args.match_ms, 'g') + ' ms)':28}"
          f"{m:>16,}{m:>16,}")
    print(f"{'  share of own fills':28}{m / max(ours['fills'], 1):>16.1%}{m / max(theirs['fills'], 1):>16.1%}")
    print(f"{'events (own count)':28}{ours['events']:>16,}{theirs['events']:>16,}")
    a, b = warm(ours), warm(theirs)
    print(f"speed, warm: median of {a['n']} timed runs after a warm-up run; a run = input in memory -> "
          f"final accounts, engine construction included")
    print(f"{'seconds per run (wall)':28}{a['seconds']:>16.4f}{b['seconds']:>16.4f}"
          f"{b['seconds'] / a['seconds']:>9.1f}x faster")
    print(f"{'seconds per run (CPU)':28}{a['cpu_seconds']:>16.4f}{b['cpu_seconds']:>16.4f}"
          f"{b['cpu_seconds'] / a['cpu_seconds']:>9.1f}x faster")
    print(f"{'  hftbacktest construction':28}{'':>16}{b['setup_seconds']:>16.4f}")
    print(f"{'  hftbacktest strategy loop':28}{'':>16}{b['loop_seconds']:>16.4f}")
    common = market_messages(args.recording)
    n = common["trade"] + common["depthUpdate"]
    label = f"common events: {common['trade']:,} trade + {common['depthUpdate']:,} depthUpdate messages = {n:,}"
    print(label)
    ra, rb = n / a["seconds"], n / b["seconds"]
    print(f"{'events/s (common, wall)':28}{ra / 1e6:>14.2f} M{rb / 1e6:>14.2f} M{ra / rb:>9.1f}x")
    ra, rb = ours["events"] / a["seconds"], theirs["events"] / b["seconds"]
    print(f"{'events/s (own count, wall)':28}{ra / 1e6:>14.2f} M{rb / 1e6:>14.2f} M{ra / rb:>9.1f}x")
    spread = [f"{min(r['seconds'] for r in x['runs'][1:]):.4f}-{max(r['seconds'] for r in x['runs'][1:]):.4f}"
              for x in (ours, theirs)]
    print(f"{'timed runs, wall min-max':28}{spread[0]:>16}{spread[1]:>16}")
    print(f"{'warm-up run (wall)':28}{ours['runs'][0]['seconds']:>16.4f}{theirs['runs'][0]['seconds']:>16.4f}")
    print(f"clusterlob fills by reason: {ours['fills_by_reason']}")
    print("(own counts: clusterlob one event per trade and per book update, hftbacktest one per trade "
          "and per depth level changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
