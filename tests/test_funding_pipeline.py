"""Funding from a tape's funding table and order latencies from a file, through the main job."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.replay import StrategyConfig, run_pipeline
from clusterlob.replay.funding import funding_payments
from clusterlob.tape.types import Funding

from test_pipeline_stream import assert_same_result

T = 1_714_608_000_000_000          # 2024-05-02 00:00 UTC, us


def _funding(ts_exch, due, rate):
    n = len(ts_exch)
    nan = np.full(n, np.nan)
    return Funding(np.asarray(ts_exch, np.int64), np.asarray(ts_exch, np.int64) + 5, np.asarray(rate, float),
                   np.asarray(due, np.int64), nan, nan, nan, nan, nan)


def test_the_rate_paid_is_the_last_published_before_the_payment():
    h8 = 8 * 3_600_000_000
    f = _funding([T - 30, T - 20, T - 10, T + 5, T + 10, T + h8 + 1],
                 [T, T, T, T + h8, T + h8, T + h8],
                 [0.0001, 0.0002, 0.0003, -0.0001, -0.0002, 0.9])   # the last row is published too late
    times, rates = funding_payments(f)
    assert times.tolist() == [T, T + h8]
    assert rates.tolist() == [0.0003, -0.0002]


def test_rows_without_a_funding_time_pay_nothing():
    times, rates = funding_payments(_funding([T], [-1], [0.0001]))
    assert times.shape == (0,) and rates.shape == (0,)


def test_a_funding_series_reaches_the_streamed_replay():
    cfg = StrategyConfig()
    base = run_pipeline(None, config=cfg)
    assert base.result.summary.funding == 0.0
    payments = (np.array([T + 6 * 3_600_000_000, T + 14 * 3_600_000_000], np.int64), np.array([0.01, 0.01]))
    paid = run_pipeline(None, config=cfg, funding=payments)
    s = paid.result.summary
    if base.result.summary.largest_inventory > 0:
        assert s.funding != 0.0
    assert abs(s.spread_capture + s.inventory_drift - s.fees - s.funding - s.pnl_total) <= 1e-9 * (1 + s.notional)
    online = run_pipeline(None, config=cfg, funding=payments, engine="online").result
    assert_same_result(online, paid.result)         # the online engine pays the series too
    with pytest.raises(ParameterError, match="`funding` must be"):
        run_pipeline(None, config=cfg, funding="sometimes")


def test_order_latency_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "lat.csv"
    bad.write_text("req_ts_us,exch_ts_us,resp_ts_us\n2,1,3\n1,2,3\n")
    proc = subprocess.run([sys.executable, "-m", "clusterlob.replay", "--quiet", "--order-latency", str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and str(bad) in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "clusterlob.replay", "--quiet", "--funding", "config"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "PnL total" in proc.stdout
