"""Small hand-made tapes and z matrices for the clustering tests (no synthetic generator needed)."""
import numpy as np

from clusterlob.tape import Book, Instrument, Tape, Trades, US_PER_DAY

INSTRUMENT = Instrument("binance-futures", "BTCUSDT", 0.1, 0.001)

# Centroids of the log's Experiment 1 (z_v_rel, z_sbs, z_obs, z_spread, z_t_m, z_t_age)
LOG_CENTERS = np.array([[0.0, 0.00, -0.12, 0.0, 1.66, 0.0],    # passive
                        [0.0, 1.35, -1.25, 0.0, -0.60, 0.0],   # opportunistic
                        [0.0, -0.75, 0.81, 0.0, -0.89, 0.0]])  # directional


def z_blobs(n_per, centers, spread, seed):
    """Gaussian blobs around ``centers`` (rows) and their true labels."""
    rng = np.random.default_rng(seed)
    centers = np.asarray(centers, dtype=float)
    labels = np.repeat(np.arange(centers.shape[0]), n_per)
    X = centers[labels] + spread * rng.standard_normal((labels.size, centers.shape[1]))
    return X, labels


def make_tape(n_snapshots=600, trades_per_snapshot=3, seed=0, day="2024-05-01", unknown_share=0.05,
              levels=5, start_offset_us=0):
    """A random but well-formed tape: snapshots every 100 ms, trades between them.

    Trades sit 1..99 ms after a snapshot, strictly before the next one; about
    ``unknown_share`` of them have side 0.  Two days are made by calling twice with a
    later ``day`` and concatenating.
    """
    rng = np.random.default_rng(seed)
    y, m, d = (int(p) for p in day.split("-"))
    import datetime as dt
    t0 = (dt.date(y, m, d) - dt.date(1970, 1, 1)).days * US_PER_DAY + start_offset_us
    snap_ts = t0 + np.arange(n_snapshots, dtype=np.int64) * 100_000
    mid = 60_000.0 + np.round(np.cumsum(rng.normal(0, 0.3, n_snapshots)), 1)
    spread_ticks = np.where(rng.random(n_snapshots) < 0.1, 2, 1)
    bid0 = np.round(mid - 0.05, 1)
    ask0 = np.round(bid0 + 0.1 * spread_ticks, 1)
    steps = 0.1 * np.arange(levels)
    bid_px = bid0[:, None] - steps
    ask_px = ask0[:, None] + steps
    bid_sz = np.round(rng.lognormal(0, 1, (n_snapshots, levels)), 3) + 0.001
    ask_sz = np.round(rng.lognormal(0, 1, (n_snapshots, levels)), 3) + 0.001
    book = Book(snap_ts - 1000, snap_ts, bid_px, bid_sz, ask_px, ask_sz)
    k = np.repeat(np.arange(n_snapshots), trades_per_snapshot)
    offsets = np.sort(rng.integers(1_000, 99_000, size=k.size).reshape(n_snapshots, -1), axis=1).ravel()
    ts = snap_ts[k] + offsets
    side = np.where(rng.random(k.size) < 0.5, 1, -1).astype(np.int8)
    side[rng.random(k.size) < unknown_share] = 0
    price = np.where(side >= 0, ask0[k], bid0[k])
    amount = np.round(rng.lognormal(-3, 1, k.size), 3) + 0.001
    trades = Trades(ts - 1000, ts, price, amount, side, np.arange(k.size, dtype=np.int64) + 10 ** 6 * (d + 100 * m))
    return Tape(INSTRUMENT, trades, book, [day])
