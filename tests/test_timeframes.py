"""Timeframe analysis: thresholds from the past only, the T+1 taker, and the labelled biased variant."""
import math

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.signals import BucketGrid, bucket_signals
from clusterlob.signals.timeframes import (BIASED, HONEST, ThresholdRule, rolling_threshold, taker_backtest,
                                   taker_positions, taker_returns, timeframe_analysis)


def _reference_threshold(a, usable, rule):
    out = np.full(a.shape[0], np.nan)
    for b in range(a.shape[0]):
        past = [a[i] for i in range(b) if usable[i]][-rule.window:]
        if len(past) >= rule.min_history:
            out[b] = np.quantile(past, rule.quantile)
    return out


def test_threshold_by_hand():
    a = np.array([1.0, 5, 2, 8, 3, 9, 0.5])
    usable = np.array([1, 1, 0, 1, 1, 1, 1], bool)      # bucket 2 is a gap: never history
    got = rolling_threshold(a, usable, ThresholdRule(quantile=0.5, window=3, min_history=2))
    np.testing.assert_array_equal(got, [np.nan, np.nan, 3, 3, 5, 5, 8])


@pytest.mark.parametrize("seed", range(15))
def test_threshold_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    a = np.abs(rng.normal(0, 1, n)).round(1)
    usable = rng.random(n) < 0.8
    window = int(rng.integers(1, 30))
    rule = ThresholdRule(quantile=float(rng.choice([0.0, 0.3, 0.5, 0.9, 1.0])), window=window,
                         min_history=int(rng.integers(1, window + 1)))
    np.testing.assert_allclose(rolling_threshold(a, usable, rule), _reference_threshold(a, usable, rule),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_future_buckets_never_change_earlier_positions(seed):
    rng = np.random.default_rng(seed)
    n = 200
    ofi = rng.normal(0, 1, n)
    usable = np.ones(n, bool)
    rule = ThresholdRule(quantile=0.6, window=40, min_history=5)
    thr = rolling_threshold(np.abs(ofi), usable, rule)
    pos = taker_positions(ofi, thr)
    cut = int(rng.integers(1, n))
    changed = ofi.copy()
    changed[cut:] = rng.normal(0, 100, n - cut)          # a wildly different future
    thr2 = rolling_threshold(np.abs(changed), usable, rule)
    pos2 = taker_positions(changed, thr2)
    np.testing.assert_array_equal(thr2[:cut + 1], thr[:cut + 1])   # bucket cut's own threshold too
    np.testing.assert_array_equal(pos2[:cut], pos[:cut])
    assert not np.array_equal(thr2, thr) or cut == n - 1


def test_flat_without_history():
    ofi = np.array([5.0, -5.0, 5.0, 0.1, 9.0])
    thr = rolling_threshold(np.abs(ofi), np.ones(5, bool), ThresholdRule(0.5, 10, 3))
    np.testing.assert_array_equal(taker_positions(ofi, thr), [0, 0, 0, 0, 1])


def test_taker_by_hand():
    ofi = np.array([2.0, -3.0, 0.5, 4.0, -1.0])
    thr = np.array([np.nan, 1.0, 1.0, 1.0, 1.0])       # bucket 0 has no history; bucket 2 too small
    r1 = np.array([0.01, -0.02, 0.03, -0.005, np.nan])   # bucket 4's next return is unknown
    res = taker_backtest(ofi, r1, thr, np.ones(5, bool), fee_bps=3.0, bucket_us=300_000_000,
                         timeframe_min=5, group="all", weighting="size")
    # trades: bucket 1 short earns +0.02, bucket 3 long earns -0.005
    assert (res.n_trades, res.buckets_scored) == (2, 4)
    assert res.gross_return_pct == pytest.approx(1.5)
    assert res.net_return_pct == pytest.approx(1.5 - 2 * 2 * 0.03)
    assert res.mean_gross_bps_per_trade == pytest.approx(75.0)
    assert res.mean_net_bps_per_trade == pytest.approx(69.0)
    assert res.hit_rate == 0.5
    assert math.isnan(res.sharpe_gross) and math.isnan(res.sharpe_net)     # 4 buckets: no annualised Sharpe
    # the same four buckets eight times over (32 scored): the Sharpe by hand
    many = taker_backtest(np.tile(ofi[:4], 8), np.tile(r1[:4], 8), np.tile(thr[:4], 8), np.ones(32, bool),
                          fee_bps=3.0, bucket_us=300_000_000)
    per_bucket = np.tile([0, 0.02, 0, -0.005], 8)
    assert many.buckets_scored == 32
    assert many.sharpe_gross == pytest.approx(per_bucket.mean() / per_bucket.std(ddof=1) * math.sqrt(365 * 288))
    assert res.variant == HONEST and not res.biased
    gross, net, position = taker_returns(ofi, r1, thr, np.ones(5, bool), fee_bps=3.0)
    np.testing.assert_array_equal(position, [0, -1, 0, 1, 0])
    np.testing.assert_allclose(gross, [0, 0.02, 0, -0.005, np.nan])
    np.testing.assert_allclose(net, [0, 0.0194, 0, -0.0056, np.nan])
    with pytest.raises(ParameterError, match="`fee_bps` must be a finite number >= 0, got -1"):
        taker_backtest(ofi, r1, thr, np.ones(5, bool), fee_bps=-1, bucket_us=1)


def _simultaneous_signals(seed=0, minutes=5, days=2):
    """Flow that moves the mid inside its own bucket and says nothing of the next one."""
    rng = np.random.default_rng(seed)
    bucket_us = minutes * 60_000_000
    grid = BucketGrid.for_days([f"2024-05-0{d + 1}" for d in range(days)], bucket_us)
    n = grid.n_buckets
    flow = rng.normal(0, 1, n)
    ts = grid.starts_us + bucket_us // 2
    log_close = np.log(60000) + np.cumsum(1e-3 * flow)          # conr[b] = 1e-3 * flow[b]
    return bucket_signals(ts, np.sign(flow).astype(np.int8), np.abs(flow), None,
                          grid.starts_us + bucket_us - 1, np.exp(log_close), grid, ())


def test_biased_variant_is_labelled_and_shows_the_trap():
    sig = _simultaneous_signals()
    table = timeframe_analysis({5: sig}, rule=ThresholdRule(0.5, 100, 10), weightings=("size",))
    honest = table.get(5, "all", "size", biased=False)
    biased = table.get(5, "all", "size", biased=True)
    assert biased.variant == BIASED and biased.biased and "BIASED" in biased.variant
    assert all(("BIASED" in r.variant) == r.biased for r in table.rows)
    # same positions: the simultaneous return makes every trade a winner, the next bucket does not
    assert biased.n_trades >= honest.n_trades > 200
    assert biased.hit_rate == 1.0 and biased.gross_return_pct > 20
    assert abs(honest.mean_gross_bps_per_trade) < 0.5 * biased.mean_gross_bps_per_trade
    assert "simultaneity" in table.to_dict()["note"]


def test_timeframes_rebucket_the_same_flow():
    rng = np.random.default_rng(3)
    day0 = 1_714_521_600_000_000
    n = 20_000
    ts = np.sort(day0 + rng.integers(0, 86_400_000_000, n))
    side = rng.choice(np.array([-1, 1], np.int8), n)
    amount = rng.exponential(1.0, n)
    book_ts = day0 + np.arange(0, 86_400_000_000, 1_000_000)
    mids = 60000 * np.exp(np.cumsum(rng.normal(0, 1e-5, book_ts.shape[0])))
    sig = {}
    for minutes in (5, 15, 30):
        grid = BucketGrid.for_days(["2024-05-01"], minutes * 60_000_000)
        sig[minutes] = bucket_signals(ts, side, amount, None, book_ts, mids, grid, ())
    assert sig[15].ofi_size[0] == pytest.approx(sig[5].ofi_size[0].reshape(-1, 3).sum(1))
    assert sig[30].mid_close == pytest.approx(sig[5].mid_close[5::6])
    table = timeframe_analysis(sig, fee_bps=3.0)
    assert len(table.rows) == 3 * 1 * 2 * 2
    r = table.get(30, "all", "count")
    assert r.buckets_scored == 47 and r.fee_bps == 3.0
    assert r.net_return_pct == pytest.approx(r.gross_return_pct - r.n_trades * 0.06)


def test_rule_validation():
    with pytest.raises(ParameterError, match=r"`quantile` must be a finite number in \[0, 1\], got 1.5"):
        ThresholdRule(quantile=1.5)
    with pytest.raises(ParameterError, match="`min_history` must be an integer in 1..window"):
        ThresholdRule(window=5, min_history=6)


def test_buckets_before_the_data_are_not_history():
    # a tape that starts at noon: the morning buckets are in the day but have no close mid
    rng = np.random.default_rng(5)
    grid = BucketGrid.for_days(["2024-05-01"], 300_000_000)
    late = grid.starts_us[144:]
    flow = rng.normal(0, 1, late.shape[0])
    sig = bucket_signals(late + 1, np.sign(flow).astype(np.int8), np.abs(flow), None, late + 2,
                         60000 * np.exp(np.cumsum(rng.normal(0, 1e-3, late.shape[0]))), grid, ())
    table = timeframe_analysis({5: sig}, rule=ThresholdRule(0.5, 288, 12), weightings=("size",))
    r = table.get(5, "all", "size")
    # flat for the first 12 buckets of data, then about half the buckets trade (median threshold)
    assert r.buckets_scored == 143
    assert 0.35 * 131 < r.n_trades < 0.65 * 131
