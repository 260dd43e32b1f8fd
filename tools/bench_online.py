"""Time the online path per event, from Python (issue 10, point 5: <= 2 us per event).

Events are taken from a tape (default: the embedded data/default_tape) and turned into
plain Python tuples first, as a live stack would hold them after its own decoding; then
three loops are timed (best of ``--repeat``):

* ``engine``: OnlineEngine.on_trade / on_book per event (features, z-scores, labels,
  accumulator, quote decisions and their order actions);
* ``engine + simulated gateway``: the same with the SimulatedGateway matching our orders
  and its fills booked into the engine (the replay_online loop);
* ``decoder`` (with ``--recording FILE``): BinanceDecoder per message, JSON included.

Prints wall and CPU time per event and the machine's load average (the machine is shared).

    PYTHONPATH=. python tools/bench_online.py [--tape DIR] [--recording FILE.gz] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _events(tape, levels: int):
    from clusterlob.replay.events import merged_order

    tr, bk = tape.trades, tape.book
    lv = np.ascontiguousarray(np.stack([bk.bid_px, bk.bid_sz, bk.ask_px, bk.ask_sz], axis=1)[:, :, :levels])
    trades = list(zip(tr.ts_local_us.tolist(), tr.price.tolist(), tr.amount.tolist(), tr.side.tolist()))
    books = list(zip(bk.ts_local_us.tolist(), [lv[i] for i in range(len(bk))]))
    return [(0, *trades[i]) if k == 0 else (1, *books[i])
            for k, i in merged_order(tr.ts_local_us, bk.ts_local_us)]


def events_levels(events) -> int:
    """Book levels of the first book event (the simulated exchange keeps as many)."""
    return next((ev[2].shape[1] for ev in events if ev[0] == 1), 1)


def _engine_only(model, tick, events):
    from clusterlob.online import OnlineEngine

    engine = OnlineEngine(model, tick_size=tick, trades_before_book="count")
    on_trade, on_book = engine.on_trade, engine.on_book
    w0, c0 = time.perf_counter(), time.process_time()
    for ev in events:
        if ev[0] == 0:
            on_trade(ev[1], ev[2], ev[3], ev[4])
        else:
            on_book(ev[1], ev[2])
    return time.perf_counter() - w0, time.process_time() - c0, engine.snapshot()


def _with_gateway(model, tick, events):
    from clusterlob.replay.gateway import SimulatedGateway, deliver, gateway_message
    from clusterlob.online import OnlineEngine

    engine = OnlineEngine(model, tick_size=tick, trades_before_book="count")
    sim = SimulatedGateway(tick, engine.config, levels=events_levels(events))._exchange
    on_trade, on_book = engine.on_trade, engine.on_book
    sim_trade, sim_book, submit = sim.on_trade, sim.on_book, sim.submit
    w0, c0 = time.perf_counter(), time.process_time()
    for ev in events:                   # the replay_online loop (clusterlob.replay.online_replay._run)
        t = ev[1]
        if ev[0] == 0:
            if sim_trade(t, ev[2], ev[3], ev[4]):
                deliver(engine, [gateway_message(e) for e in sim.take_events()])
            actions = on_trade(t, ev[2], ev[3], ev[4])
        else:
            if sim_book(t, ev[2]):
                deliver(engine, [gateway_message(e) for e in sim.take_events()])
            actions = on_book(t, ev[2])
        if actions is not None:
            submit(actions, t)
    return time.perf_counter() - w0, time.process_time() - c0, engine.snapshot()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tape", default=str(ROOT / "data" / "default_tape"))
    p.add_argument("--recording", default=None, help="also time the Binance decoder on this file")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from clusterlob.features import FeatureSettings, build_features
    from clusterlob.cluster.model import fit_model
    from clusterlob.tape import read_tape

    tape = read_tape(args.tape)
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    events = _events(tape, settings.levels)
    n = len(events)
    print(f"tape {args.tape}: {n:,} events ({len(tape.trades):,} trades, {len(tape.book):,} book updates)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores, shared)")
    for name, fn in (("engine", _engine_only), ("engine + simulated gateway", _with_gateway)):
        runs = [fn(model, tape.instrument.tick_size, events) for _ in range(args.repeat)]
        wall = min(r[0] for r in runs)
        cpu = min(r[1] for r in runs)
        snap = runs[0][2]
        print(f"{name:28} {wall / n * 1e6:6.3f} us/event wall, {cpu / n * 1e6:6.3f} us/event CPU "
              f"(best of {args.repeat}; {snap['quote_decisions']:,} decisions, {snap['fills']:,} fills)")
    if args.recording:
        from clusterlob.replay.gateway import BinanceDecoder
        from clusterlob.tape.readers.binance import iter_messages

        msgs = list(iter_messages(args.recording))
        best = None
        for _ in range(args.repeat):
            dec = BinanceDecoder(levels=settings.levels)
            w0 = time.perf_counter()
            out = 0
            for m in msgs:
                out += len(dec.decode(m.data, m.ts_local_ns // 1000, m.stream))
            w = time.perf_counter() - w0
            best = w if best is None else min(best, w)
        print(f"{'decoder (parsed messages)':28} {best / len(msgs) * 1e6:6.3f} us/message wall "
              f"({len(msgs):,} messages -> {out:,} events)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
