"""Tapes for the importance and compare tests: a planted-feature tape and tapes of known size."""
import numpy as np

from clusterlob.tape import Book, Instrument, Tape, Trades, day_start_us

PLANTED = Instrument("test-venue", "PLANTED", 0.1, 0.001)


def planted_tape(n_snapshots=3000, seed=0, day="2024-05-01", levels=5, big_share=0.5):
    """A tape whose trades form two groups that differ only in ``v_rel``.

    One trade 20 ms after each snapshot (snapshots every 100 ms).  Half the trades take
    80 % of the touch, half 5 % (times a +-3 % jitter): ``v_rel`` is bimodal.  Everything
    else is either constant (spread one tick; the touch moves every snapshot, so ``t_m``
    and ``t_age`` are always 0.08 s and their z is 0) or unimodal noise unrelated to the
    group (book sizes lognormal, so ``sbs`` / ``obs``).  Returns the tape and the planted
    group of every trade (True: large).
    """
    rng = np.random.default_rng(seed)
    snap_ts = day_start_us(day) + np.arange(n_snapshots, dtype=np.int64) * 100_000
    bid0 = 60_000.0 + 0.1 * (np.arange(n_snapshots) % 2)
    ask0 = bid0 + 0.1
    steps = 0.1 * np.arange(levels)

    def sizes():
        return np.round(rng.lognormal(0, 0.5, (n_snapshots, levels)), 3) + 0.001

    book = Book(snap_ts - 1000, snap_ts, bid0[:, None] - steps, sizes(), ask0[:, None] + steps, sizes())
    snap = np.arange(n_snapshots)
    ts = snap_ts + 20_000
    side = np.where(rng.random(n_snapshots) < 0.5, 1, -1).astype(np.int8)
    big = rng.random(n_snapshots) < big_share
    touch = book.bid_sz[snap, 0] + book.ask_sz[snap, 0]
    amount = np.round(touch * np.where(big, 0.8, 0.05) * rng.uniform(0.97, 1.03, n_snapshots), 3) + 0.001
    price = np.where(side > 0, ask0, bid0)
    trades = Trades(ts - 1000, ts, price, amount, side, np.arange(n_snapshots, dtype=np.int64))
    return Tape(PLANTED, trades, book, [day]), big
