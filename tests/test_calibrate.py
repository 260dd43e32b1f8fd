"""Calibrated synthetic tapes: estimation, generation with the same marginals, the report, errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.tape import Book, Instrument, Tape, Trades, read_manifest, read_tape, write_tape
from clusterlob.tape.calibrate import calibrate, calibration_report, generate_calibrated_tape

DAY0 = 1_714_521_600_000_000          # 2024-05-01 00:00 UTC
US = 1_000_000


def _tape(path, hours=2.0, with_book=True, seed=0):
    """Trades at ~0.5 per second with lognormal sizes; 3-level snapshots every 2 s."""
    rng = np.random.default_rng(seed)
    span = int(hours * 3600 * US)
    n = int(hours * 3600 / 2)
    ts = np.sort(DAY0 + 9 * 3600 * US + rng.integers(0, span, n))
    amount = np.round(rng.lognormal(-2.0, 1.0, n), 3) + 0.001
    side = rng.choice(np.array([-1, 1], np.int8), n, p=[0.4, 0.6])
    trades = Trades(ts, ts + 1000, np.full(n, 60_000.0), amount, side, np.arange(n, dtype=np.int64))
    if with_book:
        bts = DAY0 + 9 * 3600 * US + np.arange(0, span, 2 * US)
        m = bts.shape[0]
        bid0 = 600_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], m))
        spread = rng.choice([1, 1, 1, 2], m)
        lv = np.arange(3)
        book = Book(bts, bts + 1000, (bid0[:, None] - lv) * 0.1, np.round(rng.exponential(2.0, (m, 3)), 3) + 0.001,
                    ((bid0 + spread)[:, None] + lv) * 0.1, np.round(rng.exponential(3.0, (m, 3)), 3) + 0.001)
    else:
        book = Book(np.empty(0, np.int64), np.empty(0, np.int64), *(np.empty((0, 3)),) * 4)
    write_tape(Tape(Instrument("binance-futures", "BTCUSDT", 0.1, 0.001), trades, book, ["2024-05-01"]), path)
    return path


@pytest.fixture(scope="module")
def real_like(tmp_path_factory):
    return _tape(tmp_path_factory.mktemp("cal") / "src")


def test_calibrate_measures_the_marginals(real_like):
    cal = calibrate(real_like)
    assert cal.levels == 3 and cal.trades == 3_600 and 1.99 < cal.hours < 2.01
    assert abs(cal.buy_share - 0.6) < 0.02
    assert set(cal.gap_q_by_hour) == {"9", "10"}           # hours 9 and 10 UTC covered
    assert cal.spread["values"] == [1.0, 2.0] and abs(cal.spread["p"][0] - 0.75) < 0.02
    assert cal.touch_step["values"] == [-1.0, 0.0, 1.0]
    assert all(0.99 < r <= 1.0 for r in cal.level_change)  # every size redrawn every snapshot
    assert cal.level_gap[1]["values"] == [1.0]             # contiguous levels
    assert json.loads(json.dumps(cal.to_dict()))["levels"] == 3


def test_generated_day_matches_the_marginals(real_like, tmp_path):
    cal = calibrate(real_like)
    synthetic = generate_calibrated_tape(tmp_path / "syn", cal, "2024-06-01", 1, seed=3)
    tape = read_tape(tmp_path / "syn")
    # hours 9 and 10 at ~0.5 trades/s, the other 22 hours at the pooled rate: ~0.5 trades/s all day
    assert 38_000 < len(tape.trades) < 48_000
    assert abs(np.mean(tape.trades.side > 0) - cal.buy_share) < 0.01
    assert tape.book.levels == 3 and np.all(tape.book.ask_px[:, 0] > tape.book.bid_px[:, 0])
    rows = {r["marginal"]: r for r in calibration_report(cal, synthetic)}
    assert {"trade_size", "trade_gap_us", "snapshot_gap_us", "spread_ticks", "touch_step_ticks",
            "bid_size_level_1", "ask_size_level_3"} <= set(rows)
    for name in ("trade_size", "trade_gap_us", "bid_size_level_1", "ask_size_level_3", "spread_ticks"):
        assert rows[name]["ks_distance"] < 0.04, (name, rows[name])
    np.testing.assert_allclose(rows["trade_size"]["synthetic_quantiles"][3], rows["trade_size"]["real_quantiles"][3],
                               rtol=0.05)
    # same seed, same tape
    generate_calibrated_tape(tmp_path / "again", cal, "2024-06-01", 1, seed=3)
    again = read_tape(tmp_path / "again")
    np.testing.assert_array_equal(again.trades.amount, tape.trades.amount)


def test_command_writes_the_report(real_like, tmp_path):
    out = tmp_path / "syn"
    proc = subprocess.run([sys.executable, "-m", "clusterlob.synth", "--start", "2024-06-01", "--days", "1",
                           "--seed", "1", "--out", str(out), "--calibrate-from", str(real_like)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "largest KS distance" in proc.stderr
    md = (out / "calibration.md").read_text()
    assert "| trade_size | real |" in md and "Not reproduced" in md
    doc = json.loads((out / "calibration.json").read_text())
    assert len(doc["level_change"]["synthetic"]) == 3
    assert read_manifest(out)["summary"]["generator"] == "clusterlob.synth --calibrate-from"


@pytest.mark.parametrize("kind, message", [
    ("short", "minutes of trades; calibration needs at least one hour"),
    ("no_book", "the tape has no book (0 snapshots)"),
])
def test_one_line_errors(tmp_path, kind, message):
    src = _tape(tmp_path / "src", hours=0.5) if kind == "short" else _tape(tmp_path / "src", with_book=False)
    proc = subprocess.run([sys.executable, "-m", "clusterlob.synth", "--start", "2024-06-01", "--days", "1",
                           "--seed", "1", "--out", str(tmp_path / "o"), "--calibrate-from", str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: --calibrate-from ") and message in err
    assert not (tmp_path / "o").exists()


def test_trades_per_day_rules(real_like, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "clusterlob.synth", "--start", "2024-06-01", "--days", "1",
                           "--seed", "1", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "error: --trades-per-day is required (or use --calibrate-from TAPE)"
    with pytest.raises(ParameterError, match="`days` must be an integer >= 1"):
        generate_calibrated_tape(tmp_path / "x", calibrate(real_like), "2024-06-01", 0, seed=1)


def test_planted_agents_are_optional(real_like, tmp_path):
    cal = calibrate(real_like)
    generate_calibrated_tape(tmp_path / "plain", cal, "2024-06-01", 1, seed=2)
    assert "agent" not in read_tape(tmp_path / "plain").trades.extra
    generate_calibrated_tape(tmp_path / "agents", cal, "2024-06-01", 1, seed=2, plant_agents=True)
    tape = read_tape(tmp_path / "agents")
    agent = np.asarray(tape.trades.extra["agent"])
    np.testing.assert_allclose(np.bincount(agent, minlength=3) / agent.size, [0.35, 0.20, 0.45], atol=0.01)
    # the directional side follows the top-of-book depth of the snapshot before the trade
    book, tr = tape.book, tape.trades
    row = np.searchsorted(book.ts_local_us, tr.ts_local_us, side="left") - 1
    ok = row >= 0
    thin_buy = np.where(book.ask_sz[row, :3].sum(1) < book.bid_sz[row, :3].sum(1), 1, -1)
    d, o = ok & (agent == 0), ok & (agent == 1)
    assert (tr.side[d] == thin_buy[d]).mean() == 1.0 and (tr.side[o] == -thin_buy[o]).mean() == 1.0
    assert read_manifest(tmp_path / "agents")["summary"]["plant_agents"] is True
