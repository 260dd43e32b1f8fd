"""Does the default strategy quote at this tape's flow rate?  Decision shares per signal norm.

    PYTHONPATH=. python tools/bench_quoting.py TAPE --fit-day 2024-05-01 --replay-day 2024-05-02
    PYTHONPATH=. python tools/bench_quoting.py TAPE --half      # fit on the first half (a short recording's tape)

Fits the clusters (default FeatureSettings, k = 3, seed 0) on the fit day (or the first half of
the trades), labels the replayed trades, and replays them with the default StrategyConfig under
``signal_norm = "flow"`` (the default) and ``"trades"`` (the research log's form), printing what
a quiet run's summary explains it with: the share of decisions quoted, held by the inventory
limit, widened by the hazard, the mean quoted half-spread in ticks, the share of time quoted,
and the fills by reason (#17: a strategy that quotes at any flow rate).
"""
from __future__ import annotations

import argparse
import time

from clusterlob.cluster.model import fit_model, label_trades
from clusterlob.features import FeatureSettings, build_features
from clusterlob.replay import StrategyConfig, replay
from clusterlob.tape import read_tape


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tape")
    ap.add_argument("--fit-day")
    ap.add_argument("--replay-day")
    ap.add_argument("--half", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    settings = FeatureSettings()
    if args.half:
        tape = read_tape(args.tape)
        feats = build_features(tape, settings)
        ts = tape.trades.ts_local_us
        half = ts[len(ts) // 2]
        model, _ = fit_model(feats.z[feats.valid & (ts[feats.trade_index] < half)], settings, seed=0)
    else:
        fit = build_features(read_tape(args.tape, args.fit_day), settings)
        model, _ = fit_model(fit.z[fit.valid], settings, seed=0)
        tape = read_tape(args.tape, args.replay_day)
        feats = build_features(tape, settings, state=fit.state)
    roles = label_trades(feats, model).role
    print(f"{len(tape.trades):,} trades, {len(tape.book):,} book updates; prepared in {time.perf_counter() - t0:.1f} s")
    for norm in ("flow", "trades"):
        s = replay(tape, roles, StrategyConfig(signal_norm=norm)).summary
        print(f"signal_norm {norm:6s}: decisions {s.quote_decisions:,}, quoted bid/ask {s.bid_quoted_share:.1%}/"
              f"{s.ask_quoted_share:.1%}, held by the limit {s.bid_limited_share:.1%}/{s.ask_limited_share:.1%}, "
              f"widened {s.widened_share:.1%}, mean half-spread {s.mean_half_spread_ticks:,.1f} ticks, "
              f"time quoted {s.bid_time_quoted:.1%}/{s.ask_time_quoted:.1%}; fills {s.fills:,} (queue "
              f"{s.fills_queue:,}, trade-through {s.fills_trade_through:,}, book-through {s.fills_book_through:,}), "
              f"PnL {s.pnl_total:+,.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
