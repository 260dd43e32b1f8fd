"""Bucketed OFI and mid returns: hand fixtures, a plain-Python twin, no look-ahead, real data."""
import gzip
import json
import math

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.ic import information_coefficient
from clusterlob.signals import (ROLE_GROUPS, BucketGrid, BucketAccumulator, bucket_signals,
                                close_to_close_returns, cluster_groups, covered_buckets,
                                forward_returns, mid_close, tape_signals)
from clusterlob.tape import Book, Instrument, Tape, Trades

from conftest import shared_file
from twins.signals import bucket_signals as twin_bucket_signals



# -- tiny fixture worked out by hand ---------------------------------------------------------

def test_hand_fixture():
    # buckets of 10 us: [0,10) [10,20) [20,30) [30,40)
    grid = BucketGrid(0, 10, 4)
    ts = np.array([0, 5, 10, 19, 20, 35, 40])          # 40 is past the grid
    side = np.array([1, -1, 1, 1, 0, -1, 1], np.int8)   # the trade at 20 has unknown side
    amount = np.array([1.0, 2, 3, 4, 5, 6, 7])
    labels = np.array([0, 1, 0, 2, 0, -1, 0], np.int8)  # -1: unassigned, only in "all"
    book_ts = np.array([-3, 9, 10, 25, 30])             # 10 is exactly bucket 0's end
    mids = np.array([100.0, 101, 102, 103, 104])
    s = bucket_signals(ts, side, amount, labels, book_ts, mids, grid)
    assert s.group_names == ("all", "directional", "opportunistic", "passive")
    np.testing.assert_array_equal(s.ofi_size, [[-1, 7, 0, -6], [1, 3, 0, 0], [-2, 0, 0, 0], [0, 4, 0, 0]])
    np.testing.assert_array_equal(s.ofi_count, [[0, 2, 0, -1], [1, 1, 0, 0], [-1, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(s.trades, [5, 2, 1, 1])
    assert (s.unknown_side, s.outside) == (1, 1)
    # mid_close: last snapshot strictly before the end: 9 (not 10) for bucket 0
    np.testing.assert_array_equal(s.mid_close, [101, 102, 103, 104])
    np.testing.assert_allclose(s.frnb(), [math.log(102 / 101), math.log(103 / 102), math.log(104 / 103), np.nan])
    np.testing.assert_allclose(s.conr(), [np.nan, math.log(102 / 101), math.log(103 / 102), math.log(104 / 103)])
    np.testing.assert_allclose(s.forward_returns(2), [math.log(103 / 101), math.log(104 / 102), np.nan, np.nan])


def test_mid_close_forward_fills_and_skips_nan():
    grid = BucketGrid(100, 10, 5)
    got = mid_close(np.array([112, 118, 131, 135]), np.array([1.0, 2.0, 3.0, np.nan]), grid)
    # bucket 0 none yet; bucket 1 -> 2.0 (118); bucket 2 none -> 2.0; bucket 3 -> 3.0 (NaN at 135 skipped)
    np.testing.assert_array_equal(got, [np.nan, 2.0, 2.0, 3.0, 3.0])


def test_equal_times_take_the_later_row():
    grid = BucketGrid(0, 10, 1)
    assert mid_close(np.array([5, 5, 5]), np.array([1.0, 2.0, 3.0]), grid)[0] == 3.0
    # unsorted input: the latest time wins, not the last row
    assert mid_close(np.array([7, 3]), np.array([1.0, 2.0]), grid)[0] == 1.0


def test_grid_is_epoch_aligned():
    g = BucketGrid.covering(1_000_000_123, 1_000_900_000, 300_000_000)
    assert g.start_us % 300_000_000 == 0 and g.start_us <= 1_000_000_123
    assert g.ends_us[-1] > 1_000_900_000
    g = BucketGrid.for_days(["2024-05-01", "2024-05-02"], 300_000_000)
    assert g.n_buckets == 576
    with pytest.raises(ParameterError, match="multiple of `bucket_us`"):
        BucketGrid(5, 10, 3)


def test_returns_helpers():
    mid = np.array([100.0, 110.0, np.nan, 121.0])
    np.testing.assert_allclose(forward_returns(mid, 1), [math.log(1.1), np.nan, np.nan, np.nan])
    np.testing.assert_allclose(forward_returns(mid, 3), [math.log(1.21), np.nan, np.nan, np.nan])
    np.testing.assert_allclose(close_to_close_returns(mid), [np.nan, math.log(1.1), np.nan, np.nan])
    with pytest.raises(ParameterError, match="`horizon` must be an integer >= 1, got 0"):
        forward_returns(mid, 0)


def test_validation_messages():
    grid = BucketGrid(0, 10, 2)
    acc = BucketAccumulator(grid)
    with pytest.raises(ParameterError, match=r"`side` must be \+1, -1 or 0, got 2 \(first at row 1\)"):
        acc.add_trades(np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0]), np.array([0, 0]))
    with pytest.raises(ParameterError, match="`labels` are needed"):
        acc.add_trades(np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(ParameterError, match="`amount` must be finite"):
        acc.add_trades(np.array([0]), np.array([1]), np.array([np.nan]), np.array([0]))
    with pytest.raises(ParameterError, match="int64 microseconds"):
        acc.add_trades(np.array([0.5]), np.array([1]), np.array([1.0]), np.array([0]))
    with pytest.raises(ParameterError, match="used twice"):
        BucketAccumulator(grid, [("a", 0), ("b", 0)])
    with pytest.raises(ParameterError, match="reserved"):
        BucketAccumulator(grid, [("all", 0)])
    assert cluster_groups(3) == (("cluster 0", 0), ("cluster 1", 1), ("cluster 2", 2))


# -- the plain-Python twin (tests/twins/signals.py) over seeded random cases ---------------------

@pytest.mark.parametrize("seed", range(12))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    width = int(rng.integers(5, 40))
    grid = BucketGrid(width * 40, width, int(rng.integers(1, 12)))
    lo, hi = grid.start_us - 2 * width, grid.start_us + (grid.n_buckets + 2) * width
    n = int(rng.integers(0, 80))
    ts = np.sort(rng.integers(lo, hi, n))
    side = rng.choice(np.array([-1, 0, 1], np.int8), n, p=[0.45, 0.1, 0.45])
    amount = rng.exponential(1.0, n).round(3)
    labels = rng.integers(-1, 4, n).astype(np.int8)
    m = int(rng.integers(0, 40))
    book_ts = rng.integers(lo, hi, m)          # unsorted, with ties
    if m:
        book_ts[rng.integers(0, m, m // 3)] = book_ts[0]
    mids = 100 + rng.normal(0, 1, m)
    mids[rng.random(m) < 0.1] = np.nan
    groups = ROLE_GROUPS if seed % 2 else cluster_groups(4)
    got = bucket_signals(ts, side, amount, labels, book_ts, mids, grid, groups)
    size, count, closes = twin_bucket_signals(ts, side, amount, labels, book_ts, mids, grid, groups)
    np.testing.assert_allclose(got.ofi_size, size, atol=1e-12)
    np.testing.assert_array_equal(got.ofi_count, count)
    np.testing.assert_array_equal(got.mid_close, closes)
    # batches in any split give the same result as one pass
    acc = BucketAccumulator(grid, groups)
    cut, bcut = n // 3, m // 2
    acc.add_trades(ts[:cut], side[:cut], amount[:cut], labels[:cut])
    acc.add_book(book_ts[:bcut], mids[:bcut])
    acc.add_trades(ts[cut:], side[cut:], amount[cut:], labels[cut:])
    acc.add_book(book_ts[bcut:], mids[bcut:])
    split = acc.finish()
    np.testing.assert_allclose(split.ofi_size, got.ofi_size, atol=1e-12)
    np.testing.assert_array_equal(split.mid_close, got.mid_close)


# -- tapes and no look-ahead ---------------------------------------------------------------------

def _tape(trade_ts, side, amount, book_ts, mids, days, *, exch_shift_us=0, agent=None):
    n, m = len(trade_ts), len(book_ts)
    trade_ts = np.asarray(trade_ts, np.int64)
    book_ts = np.asarray(book_ts, np.int64)
    extra = {} if agent is None else {"agent": np.asarray(agent, np.int8)}
    trades = Trades(trade_ts - exch_shift_us, trade_ts, np.full(n, 60000.0), np.asarray(amount, float),
                    np.asarray(side, np.int8), np.arange(n, dtype=np.int64), extra)
    half = np.full((m, 1), 0.05)
    mids = np.asarray(mids, float)[:, None]
    book = Book(book_ts - exch_shift_us, book_ts, mids - half, np.ones((m, 1)), mids + half, np.ones((m, 1)))
    return Tape(Instrument("binance-futures", "BTCUSDT", 0.1, 0.001), trades, book, list(days))


DAY0 = 1_714_521_600_000_000    # 2024-05-01 00:00 UTC
B = 300_000_000


def _predictive_tape(seed=0, n_buckets=288):
    """Each bucket's flow moves the mid over the *next* bucket: r_1[b] = 1e-4 * OFI[b] exactly."""
    rng = np.random.default_rng(seed)
    ofi = rng.normal(0, 1, n_buckets).round(3)
    ofi[ofi == 0] = 0.5
    trade_ts = DAY0 + np.arange(n_buckets) * B + B // 2
    closes = 60000 * np.exp(np.concatenate([[0.0], np.cumsum(1e-4 * ofi[:-1])]))
    # one snapshot exactly at each bucket's start (it is the previous bucket's end: not its close)
    # and the close snapshot 1 us before the end
    book_ts = np.concatenate([DAY0 + np.arange(n_buckets) * B, DAY0 + np.arange(n_buckets) * B + B - 1])
    book_mid = np.concatenate([closes * 1.01, closes])
    order = np.argsort(book_ts, kind="stable")
    return _tape(trade_ts, np.sign(ofi), np.abs(ofi), book_ts[order], book_mid[order], ["2024-05-01"]), ofi


def test_signal_scores_the_next_bucket_only():
    tape, ofi = _predictive_tape()
    s = tape_signals(tape, bucket_s=300, groups=())
    np.testing.assert_allclose(s.ofi_size[0], ofi)
    frnb = s.frnb()
    assert information_coefficient(s.ofi("all"), frnb).pearson == pytest.approx(1.0, abs=1e-9)
    # shifted one bucket back (same bucket: CONR) or one further (r from b+1 to b+2): no signal
    shifted_later = np.r_[frnb[1:], np.nan]
    assert abs(information_coefficient(s.ofi("all"), s.conr()).pearson) < 0.3
    assert abs(information_coefficient(s.ofi("all"), shifted_later).pearson) < 0.3


def test_time_key_changes_buckets():
    tape, _ = _predictive_tape(n_buckets=20)
    tape = _tape(tape.trades.ts_local_us, tape.trades.side, tape.trades.amount, tape.book.ts_local_us,
                 tape.book.mid(), tape.days, exch_shift_us=B // 2 + 1)
    local = tape_signals(tape, groups=())
    exch = tape_signals(tape, groups=(), time_key="ts_exch_us")
    assert local.ofi_size[0, 0] == tape.trades.side[0] * tape.trades.amount[0]
    # exchange time is earlier by more than half a bucket: the first trade lands in the day before
    assert exch.outside == 1 and exch.ofi_size[0, 0] == tape.trades.side[1] * tape.trades.amount[1]
    with pytest.raises(ParameterError, match="`time_key` must be one of"):
        tape_signals(tape, groups=(), time_key="ts")


def test_gap_days_are_not_covered():
    grid = BucketGrid.for_days(["2024-05-01", "2024-05-03"], 86_400_000_000)
    assert covered_buckets(grid, ["2024-05-01", "2024-05-03"]).tolist() == [True, False, True]
    tape = _tape([DAY0 + 5, DAY0 + 2 * 86_400_000_000 + 5], [1, -1], [1.0, 1.0],
                 [DAY0 + 1, DAY0 + 2 * 86_400_000_000 + 1], [100.0, 101.0], ["2024-05-01", "2024-05-03"])
    s = tape_signals(tape, bucket_s=86_400, groups=())
    assert s.covered.tolist() == [True, False, True]
    # the gap day has no close, so no return crosses it
    assert np.isnan(s.mid_close[1]) and np.isnan(s.frnb()[0]) and np.isnan(s.frnb()[1])
    assert [d for d, _ in s.day_windows()] == ["2024-05-01", "2024-05-03"]


def test_tape_layer_checks_labels():
    tape, _ = _predictive_tape(n_buckets=5)
    with pytest.raises(ParameterError, match=r"one code per trade \(5\)"):
        tape_signals(tape, np.zeros(3, np.int8))
    with pytest.raises(ParameterError, match="`bucket_s` must be a positive number"):
        tape_signals(tape, groups=(), bucket_s=0)


# -- real data -------------------------------------------------------------------------------------

def _read_real(path):
    trades, quotes = [], []
    with gzip.open(path, "rt") as f:
        for line in f:
            local_ns, _, payload = line.partition(" ")
            if '"e":"trade"' in payload[:120] and '"X":"MARKET"' in payload:
                d = json.loads(payload)["data"]
                trades.append((int(local_ns) // 1000, -1 if d["m"] else 1, float(d["q"])))
            elif '"e":"bookTicker"' in payload[:120]:
                d = json.loads(payload)["data"]
                quotes.append((int(local_ns) // 1000, 0.5 * (float(d["b"]) + float(d["a"]))))
    return np.array(trades), np.array(quotes)


def test_real_binance_sample():
    trades, quotes = _read_real(shared_file("binance-futures", "btcusdt_20240808.gz"))
    assert len(trades) > 20_000 and len(quotes) > 60_000
    ts = trades[:, 0].astype(np.int64)
    side = trades[:, 1].astype(np.int8)
    amount = trades[:, 2]
    grid = BucketGrid.covering(int(ts.min()), int(ts.max()), 10_000_000)   # 10 s buckets
    s = bucket_signals(ts, side, amount, None, quotes[:, 0].astype(np.int64), quotes[:, 1], grid, ())
    assert s.outside == 0 and s.unknown_side == 0 and s.trades[0] == len(ts)
    assert s.ofi_size[0].sum() == pytest.approx(float((side * amount).sum()), abs=1e-6)
    assert s.ofi_count[0].sum() == float(side.sum())
    # about 5.7 minutes of 10 s buckets, every bucket has a close mid near 61,800 USDT
    assert 30 <= grid.n_buckets <= 40
    assert np.all(np.isfinite(s.mid_close)) and np.all(np.abs(np.log(s.mid_close / 61_800)) < 0.05)
