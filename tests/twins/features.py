"""Plain NumPy twins of the feature kernels (``_kernels/features.pxi``, ``rolling.pxi``): the
definitions of ``docs/features.md`` written as obviously as possible, whole-array, the
specification the tests compare the compiled kernels (and the online engine) with.
"""
import numpy as np

def spread_ticks(x):
    """Reference: a spread within 1e-6 of a whole number of ticks is that whole number."""
    r = np.round(x)
    return np.where(np.abs(x - r) < 1e-6, r, x)


def _differs(a, b):
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def raw_features(tape, settings):
    """The definitions written plainly with searchsorted (trades and book in time order)."""
    col = "ts_local_us" if settings.time_key == "local" else "ts_exch_us"
    t_tr, t_bk = getattr(tape.trades, col), getattr(tape.book, col)
    tr_order = np.argsort(t_tr, kind="stable")
    bk_order = np.argsort(t_bk, kind="stable")
    t_bk = t_bk[bk_order]
    bid_px, ask_px = tape.book.bid_px[bk_order], tape.book.ask_px[bk_order]
    bid_sz, ask_sz = tape.book.bid_sz[bk_order], tape.book.ask_sz[bk_order]
    rows = tr_order[tape.trades.side[tr_order] != 0]
    t = t_tr[rows]
    j = np.searchsorted(t_bk, t, side="left" if settings.asof == "strict" else "right") - 1
    rows, t, j = rows[j >= 0], t[j >= 0], j[j >= 0]

    def last_change(x):
        idx = np.arange(len(x))
        changed = np.zeros(len(x), bool)
        changed[1:] = _differs(x[1:], x[:-1])
        last = np.maximum.accumulate(np.where(changed, idx, -1))[j]
        return np.where(last >= 0, (t - t_bk[np.maximum(last, 0)]) * 1e-6, np.nan)

    D = settings.levels
    depth_bid = np.nansum(bid_sz[:, :D], axis=1)[j]
    depth_ask = np.nansum(ask_sz[:, :D], axis=1)[j]
    buy = tape.trades.side[rows] > 0
    consumed, other = np.where(buy, depth_ask, depth_bid), np.where(buy, depth_bid, depth_ask)
    if settings.convention == "aggressor":
        consumed, other = other, consumed
    raw = np.column_stack([
        tape.trades.amount[rows] / (bid_sz[j, 0] + ask_sz[j, 0]),
        np.log1p(tape.instrument.flow_size(consumed)), np.log1p(tape.instrument.flow_size(other)),
        spread_ticks((ask_px[j, 0] - bid_px[j, 0]) / tape.instrument.tick_size),
        last_change(0.5 * (bid_px[:, 0] + ask_px[:, 0])),
        np.where(buy, last_change(ask_px[:, 0]), last_change(bid_px[:, 0])),
    ])
    return rows, raw


def rolling_zscore(raw, window, z_clip):
    """The rule, written plainly: per column, windows over the finite values only.

    Returns z (m, F) and per-column counts (warm-up, non-finite, zero std, clipped).
    Window statistics are taken in extended precision (np.longdouble) so that the
    reference is more accurate than the kernel it checks: in float64, a plain two-pass
    mean of values near 60000 is itself off by ~1e-12, which is ~1e-9 in z when the
    window's spread is small.
    """
    raw = np.asarray(raw, dtype=np.float64)
    m, n_cols = raw.shape
    z = np.full((m, n_cols), np.nan)
    counts = np.zeros((n_cols, 4), dtype=np.int64)
    for f in range(n_cols):
        finite = np.isfinite(raw[:, f])
        counts[f, 1] = m - finite.sum()
        pos = np.flatnonzero(finite)
        values = raw[pos, f]
        counts[f, 0] = min(len(values), window - 1)
        if len(values) < window:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(values.astype(np.longdouble), window)
        mean = windows.mean(axis=1)
        std = windows.std(axis=1, ddof=1)
        x = values[window - 1:].astype(np.longdouble)
        zero = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
        zz = np.where(zero, 0.0, (x - mean) / np.where(zero, 1.0, std)).astype(np.float64)
        counts[f, 2] = zero.sum()
        counts[f, 3] = (np.abs(zz) > z_clip).sum()
        z[pos[window - 1:], f] = np.clip(zz, -z_clip, z_clip)
    return z, counts
