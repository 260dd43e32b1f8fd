"""Small multi-day tapes for the walk-forward tests (written with clusterlob.tape.write_tape)."""
from __future__ import annotations

import numpy as np

from clusterlob.tape import US_PER_DAY, Book, Instrument, Tape, Trades, day_start_us, write_tape

INSTRUMENT = Instrument("test", "BTCUSDT", 0.1, 0.001)


def random_tape(seed: int, days: list[str], *, trades_per_day: int = 400, snaps_per_day: int = 150,
                levels: int = 5, change_prob: float = 0.3, no_book_days=(), no_trade_days=(),
                late_book_days=(), unknown_share: float = 0.05) -> Tape:
    """A tape whose book rarely changes (long runs without a mid change), with optional days
    without snapshots, without trades, or whose first snapshot comes after some trades."""
    rng = np.random.default_rng(seed)
    t_parts, b_parts = [], []
    bid = 600000                                  # ticks
    spread = 1
    for day in days:
        start = day_start_us(day)
        if day not in no_book_days:
            lo = start + (US_PER_DAY // 3 if day in late_book_days else 0)
            ts = np.sort(rng.integers(lo, start + US_PER_DAY, snaps_per_day))
            if snaps_per_day > 3:
                ts[1] = ts[0]                    # equal times keep their order
            steps = np.where(rng.random(snaps_per_day) < change_prob, rng.integers(-2, 3, snaps_per_day), 0)
            bids = bid + np.cumsum(steps)
            spreads = np.where(rng.random(snaps_per_day) < 0.1, 2, spread)
            bid = int(bids[-1])
            lv = np.arange(levels)
            bid_px = (bids[:, None] - lv[None, :]) * 0.1
            ask_px = (bids[:, None] + spreads[:, None] + lv[None, :]) * 0.1
            bid_sz = np.round(rng.lognormal(0, 1, (snaps_per_day, levels)), 3) + 0.001
            ask_sz = np.round(rng.lognormal(0, 1, (snaps_per_day, levels)), 3) + 0.001
            holes = rng.random((snaps_per_day, levels)) < 0.02
            holes[:, 0] = False
            bid_sz[holes] = np.nan
            bid_px[holes] = np.nan
            b_parts.append(Book(ts - 500, ts, bid_px, bid_sz, ask_px, ask_sz))
        if day not in no_trade_days:
            ts = np.sort(rng.integers(start, start + US_PER_DAY, trades_per_day))
            ts[rng.random(trades_per_day) < 0.05] += 0   # keep sorted
            side = rng.choice(np.array([1, -1], np.int8), trades_per_day)
            side[rng.random(trades_per_day) < unknown_share] = 0
            amount = np.round(rng.lognormal(-2, 1, trades_per_day), 3) + 0.001
            price = np.full(trades_per_day, bid * 0.1)
            ids = np.arange(trades_per_day, dtype=np.int64) + len(t_parts) * 10 ** 7
            t_parts.append(Trades(ts - 300, ts, price, amount, side, ids))
    trades = Trades.concat(t_parts) if t_parts else Trades.empty()
    book = Book.concat(b_parts) if b_parts else Book.empty(levels)
    return Tape(INSTRUMENT, trades, book, list(days))


def write_random_tape(path, seed: int, days: list[str], **kw) -> Tape:
    tape = random_tape(seed, days, **kw)
    write_tape(tape, path)
    return tape


def day_list(first: str, n: int) -> list[str]:
    from clusterlob.tape import day_of_us
    return [day_of_us(day_start_us(first) + i * US_PER_DAY) for i in range(n)]
