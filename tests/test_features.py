"""Trade features: a hand-worked tape, a NumPy reference twin, day-by-day equality, real data."""
import json
import math

import numpy as np
import pytest

from clusterlob.errors import ParameterError, TapeError
from clusterlob.features import (FEATURE_NAMES, FeatureSettings, Features, RollingState,
                                 build_features, compute_raw_features, rolling_zscore)
from clusterlob.tape import (Book, Instrument, Tape, Trades, day_start_us, read_manifest,
                             read_tape, write_tape)

from conftest import shared_file
from twins.features import raw_features as twin_raw_features

NAN = np.nan
US = 1_000_000


# -- the hand-worked tape ---------------------------------------------------------------------
#
# tick 0.1, two levels.  Snapshots (time in s):
#   S0 t=1  bid 100.0 x1, 99.9 x2     ask 100.1 x3, 100.2 x4      mid 100.05
#   S1 t=2  bid 100.0 x1.5, 99.9 x2   ask 100.2 x2, (missing)     mid 100.10 (mid, ask change)
#   S2 t=3  bid 100.1 x0.5, 100.0 x1  ask 100.2 x1, 100.3 x1      mid 100.15 (mid, bid change)
#   S3 t=5  bid 100.1 x2, 100.0 x2    ask 100.2 x2, 100.3 x2      no price change
# Trades:
#   T0 t=0.5 buy 1    before any snapshot      -> excluded (no_book_before)
#   T1 t=1.5 buy 2    sees S0
#   T2 t=2   sell 1   strict: S0; at-or-before: S1 (same time)
#   T3 t=2.5 unknown  -> excluded (unknown_side)
#   T4 t=4   buy 0.5  sees S2
#   T5 t=5   sell 4   strict: S2; at-or-before: S3


def hand_tape():
    ts_book = np.array([1, 2, 3, 5], dtype=np.int64) * US
    book = Book(ts_book, ts_book.copy(),
                np.array([[100.0, 99.9], [100.0, 99.9], [100.1, 100.0], [100.1, 100.0]]),
                np.array([[1, 2], [1.5, 2], [0.5, 1], [2, 2]], dtype=float),
                np.array([[100.1, 100.2], [100.2, 100.3], [100.2, 100.3], [100.2, 100.3]]),
                np.array([[3, 4], [2, NAN], [1, 1], [2, 2]], dtype=float))
    ts = np.array([0.5, 1.5, 2, 2.5, 4, 5]) * US
    ts = ts.astype(np.int64)
    trades = Trades(ts, ts.copy(), np.full(6, 100.0), np.array([1, 2, 1, 1, 0.5, 4]),
                    np.array([1, 1, -1, 0, 1, -1], dtype=np.int8), np.arange(6, dtype=np.int64))
    return Tape(Instrument("test", "HAND", 0.1, 0.001), trades, book, [])


L = math.log
HAND_STRICT = np.array([
    # v_rel      sbs     obs     spread  t_m  t_age
    [2 / 4,      L(8),   L(4),   1.0,    NAN, NAN],   # T1 buy on S0: asks 3+4, bids 1+2
    [1 / 4,      L(4),   L(8),   1.0,    NAN, NAN],   # T2 sell on S0: consumed = bids
    [0.5 / 1.5,  L(3),   L(2.5), 1.0,    1.0, 2.0],   # T4 buy on S2: mid moved at 3, ask at 2
    [4 / 1.5,    L(2.5), L(3),   1.0,    2.0, 2.0],   # T5 sell on S2: bid moved at 3
])
HAND_AT_OR_BEFORE = HAND_STRICT.copy()
HAND_AT_OR_BEFORE[1] = [1 / 3.5, L(4.5), L(3), 2.0, 0.0, NAN]   # T2 on S1: missing ask level = 0
HAND_AT_OR_BEFORE[3] = [4 / 4, L(5), L(5), 1.0, 2.0, 2.0]        # T5 on S3: no change at 5


def test_hand_tape_strict():
    trade_index, raw, counts = compute_raw_features(hand_tape(), FeatureSettings(levels=2))
    assert trade_index.tolist() == [1, 2, 4, 5]
    assert trade_index.dtype == np.int64
    np.testing.assert_allclose(raw, HAND_STRICT, rtol=1e-12, atol=0)
    assert counts == {"trades": 6, "unknown_side": 1, "no_book_before": 1, "rows": 4}


def test_hand_tape_at_or_before():
    _, raw, _ = compute_raw_features(hand_tape(), FeatureSettings(levels=2, asof="at_or_before"))
    np.testing.assert_allclose(raw, HAND_AT_OR_BEFORE, rtol=1e-12, atol=0)


def test_hand_tape_one_level_and_aggressor_convention():
    _, raw1, _ = compute_raw_features(hand_tape(), FeatureSettings(levels=1))
    np.testing.assert_allclose(raw1[:, 1:3], [[L(4), L(2)], [L(2), L(4)],
                                              [L(2), L(1.5)], [L(1.5), L(2)]], rtol=1e-12)
    _, paper, _ = compute_raw_features(hand_tape(), FeatureSettings(levels=2))
    _, aggr, _ = compute_raw_features(hand_tape(), FeatureSettings(levels=2, convention="aggressor"))
    np.testing.assert_array_equal(aggr[:, [0, 3, 4, 5]], paper[:, [0, 3, 4, 5]])
    np.testing.assert_array_equal(aggr[:, 1], paper[:, 2])
    np.testing.assert_array_equal(aggr[:, 2], paper[:, 1])


def test_hand_tape_build_features_window_two():
    f = build_features(hand_tape(), FeatureSettings(levels=2, window=2))
    assert isinstance(f, Features) and len(f) == 4
    # v_rel 0.5, 0.25, 1/3, 8/3: with W=2 every full window gives z = +-1/sqrt(2)
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(f.z[:, 0], [NAN, -s, s, s])
    # t_m is NaN for T1 and T2: its window starts at T4, so T5 is its first z
    np.testing.assert_allclose(f.z[:, 4], [NAN, NAN, NAN, s])
    np.testing.assert_array_equal(f.z[:, 3], [NAN, 0, 0, 0])        # spread constant
    assert f.valid.tolist() == [False, False, False, True]
    assert f.counts["nonfinite_raw"]["t_m"] == 2 and f.counts["nonfinite_raw"]["total"] == 2
    assert f.counts["zero_std_rows"]["spread"] == 3
    assert f.counts["valid_rows"] == 1 and f.counts["unknown_side"] == 1
    d = json.loads(json.dumps(f.to_dict()))
    assert d["feature_names"] == list(FEATURE_NAMES) and d["counts"]["rows"] == 4


def random_tape(seed, n_trades=3000, n_book=1000, levels=5, days=3):
    """A seeded multi-day tape with ties between trades and snapshots, missing levels,
    unknown sides, a missing touch now and then, and exchange times that are out of order."""
    rng = np.random.default_rng(seed)
    t0 = day_start_us("2024-05-01") + 20 * 3600 * US
    span = (days - 1) * 86_400 * US
    t_book = np.sort(rng.integers(t0, t0 + span, n_book))
    t_trade = np.sort(np.concatenate([t0 - np.arange(1, 6) * US,               # before any book
                                      rng.integers(t0, t0 + span, n_trades - n_trades // 10 - 5),
                                      rng.choice(t_book, n_trades // 10)]))       # ties
    bid_ticks = 600_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], n_book))
    ask_ticks = bid_ticks + rng.choice([1, 1, 1, 2], n_book)
    lv = np.arange(levels)
    bid_px = (bid_ticks[:, None] - lv) * 0.1
    ask_px = (ask_ticks[:, None] + lv) * 0.1
    bid_sz = rng.exponential(2.0, (n_book, levels))
    ask_sz = rng.exponential(2.0, (n_book, levels))
    for a in (bid_px, bid_sz, ask_px, ask_sz):
        a[rng.random((n_book, levels)) < 0.05] = np.nan     # missing levels
    touchless = rng.random(n_book) < 0.01
    bid_sz[touchless, 0] = np.nan
    book = Book(t_book + rng.integers(-3000, 3000, n_book), t_book, bid_px, bid_sz, ask_px, ask_sz)
    side = rng.choice(np.array([-1, 0, 1], dtype=np.int8), n_trades, p=[0.45, 0.1, 0.45])
    trades = Trades(t_trade - rng.integers(0, 5000, n_trades), t_trade,
                    np.full(n_trades, 60000.0), rng.exponential(0.5, n_trades), side,
                    np.arange(n_trades, dtype=np.int64))
    return Tape(Instrument("test", "RAND", 0.1, 0.001), trades, book, [])


@pytest.mark.parametrize("levels", [1, 3, 5])
@pytest.mark.parametrize("asof", ["strict", "at_or_before"])
@pytest.mark.parametrize("time_key", ["local", "exchange"])
def test_raw_features_match_reference(levels, asof, time_key):
    for seed in range(3):
        tape = random_tape([seed, levels])
        for convention in ("paper", "aggressor"):
            settings = FeatureSettings(levels=levels, asof=asof, time_key=time_key, convention=convention)
            trade_index, raw, counts = compute_raw_features(tape, settings)
            rows_ref, raw_ref = twin_raw_features(tape, settings)
            np.testing.assert_array_equal(trade_index, rows_ref)
            np.testing.assert_allclose(raw, raw_ref, rtol=1e-12, atol=0)
            np.testing.assert_array_equal(np.isnan(raw), np.isnan(raw_ref))
            assert counts["unknown_side"] == np.count_nonzero(tape.trades.side == 0)
            assert counts["rows"] + counts["no_book_before"] + counts["unknown_side"] == counts["trades"]
            assert counts["no_book_before"] > 0           # the tape starts with trades


def test_strict_never_sees_a_snapshot_at_the_trade_time():
    tape = random_tape(11)
    settings = FeatureSettings(asof="strict")
    trade_index, raw, _ = compute_raw_features(tape, settings)
    # t_m is measured from a snapshot the trade saw; strict => never 0 seconds
    assert np.nanmin(raw[:, 4]) > 0
    _, raw_aob, _ = compute_raw_features(tape, FeatureSettings(asof="at_or_before"))
    assert np.nanmin(raw_aob[:, 4]) == 0                    # the ties are seen


# -- day by day equals one pass --------------------------------------------------------------

def test_day_by_day_equals_one_pass(tmp_path):
    tape = random_tape(5, n_trades=6000, n_book=2000, days=3)
    write_tape(tape, tmp_path / "tape")
    days = [d["date"] for d in read_manifest(tmp_path / "tape")["days"]]
    assert len(days) == 3
    settings = FeatureSettings(window=50)
    whole = build_features(read_tape(tmp_path / "tape"), settings)

    state, parts, offset = None, [], 0
    for day in days:
        day_tape = read_tape(tmp_path / "tape", [day])
        f = build_features(day_tape, settings, state)
        # through JSON, as a daily cache would store it
        state = RollingState.from_dict(json.loads(json.dumps(f.state.to_dict())))
        parts.append((f.trade_index + offset, f.raw, f.z, f.valid, f.counts))
        offset += len(day_tape.trades)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole.trade_index)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole.raw)
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), whole.z)
    np.testing.assert_array_equal(np.concatenate([p[3] for p in parts]), whole.valid)
    for key in ("rows", "valid_rows", "unknown_side", "no_book_before"):
        assert sum(p[4][key] for p in parts) == whole.counts[key]
    assert state.to_dict() == whole.state.to_dict()
    # warm-up happens once, at the start of the tape, not at every midnight
    assert [p[4]["warmup_rows"]["sbs"] for p in parts] == [49, 0, 0]
    # without the state each day restarts: a different (wrong) answer
    fresh = build_features(read_tape(tmp_path / "tape", [days[1]]), settings)
    assert fresh.counts["warmup_rows"]["sbs"] == 49
    assert fresh.counts["valid_rows"] < parts[1][4]["valid_rows"]


# -- settings and errors ------------------------------------------------------------------------

def test_settings_round_trip_and_key():
    s = FeatureSettings(levels=10, window=200, z_clip=math.inf, convention="aggressor")
    d = json.loads(json.dumps(s.to_dict()))
    assert FeatureSettings.from_dict(d) == s
    assert FeatureSettings.from_dict({}) == FeatureSettings()
    assert s.key() != FeatureSettings().key()
    assert FeatureSettings().key() == FeatureSettings.from_dict(FeatureSettings().to_dict()).key()
    assert len(FeatureSettings().key()) == 16


@pytest.mark.parametrize("kwargs, message", [
    ({"levels": 0}, "`levels` must be an integer in 1..25, got 0"),
    ({"levels": 26}, "`levels` must be an integer in 1..25, got 26"),
    ({"window": 1}, "`window` must be an integer >= 2, got 1"),
    ({"window": 2.5}, "`window` must be an integer >= 2, got 2.5"),
    ({"z_clip": 0}, "`z_clip` must be a number > 0, got 0"),
    ({"convention": "same"}, "`convention` must be one of paper, aggressor, got 'same'"),
    ({"asof": "before"}, "`asof` must be one of strict, at_or_before, got 'before'"),
    ({"time_key": "utc"}, "`time_key` must be one of local, exchange, got 'utc'"),
])
def test_settings_validation(kwargs, message):
    with pytest.raises(ParameterError) as err:
        FeatureSettings(**kwargs)
    assert str(err.value) == message


def test_input_errors():
    tape = hand_tape()
    with pytest.raises(ParameterError, match=r"`levels` must be <= the tape's book depth \(2\), got 5"):
        compute_raw_features(tape)
    with pytest.raises(ParameterError, match="unknown keys"):
        FeatureSettings.from_dict({"level": 3})
    _, state, _ = rolling_zscore(np.zeros((3, 6)), FeatureSettings(levels=2))
    with pytest.raises(ParameterError, match="other feature settings"):
        build_features(tape, FeatureSettings(levels=1), state)
    shuffled = Tape(tape.instrument, tape.trades.take(np.array([1, 0, 2, 3, 4, 5])), tape.book, [])
    with pytest.raises(TapeError, match="trades are not sorted by ts_local_us"):
        compute_raw_features(shuffled, FeatureSettings(levels=2))
    with pytest.raises(ParameterError, match="rolling state: `format`"):
        RollingState.from_dict({"window": 3})
    broken = state.to_dict()
    broken["ring"] = broken["ring"][:5]
    with pytest.raises(ParameterError, match=r"rolling state: `ring` must be \(6, 100\) numbers"):
        RollingState.from_dict(broken)


# -- real data ------------------------------------------------------------------------------------

def test_real_binance_recording(tmp_path):
    from clusterlob.convert import convert

    path = shared_file("binance-futures", "btcusdt_20240808.gz")
    convert([path], tmp_path / "tape")          # the project's reader: 25 levels from depth diffs
    tape = read_tape(tmp_path / "tape")
    assert len(tape.trades) == 21_313 and tape.book.levels == 25
    for settings in (FeatureSettings(), FeatureSettings(levels=25, asof="at_or_before"),
                     FeatureSettings(time_key="exchange")):
        f = build_features(tape, settings)
        rows_ref, raw_ref = twin_raw_features(tape, settings)
        np.testing.assert_array_equal(f.trade_index, rows_ref)
        np.testing.assert_allclose(f.raw, raw_ref, rtol=1e-12)
        assert f.counts["unknown_side"] == 0
        assert f.counts["valid_rows"] > 0.95 * f.counts["rows"]
        assert np.isfinite(f.z[f.valid]).all() and np.abs(f.z[f.valid]).max() <= 5.0
    spread = f.raw[:, 3]
    assert np.nanmin(spread) > 0.99                          # the rebuilt book never crosses
    assert np.mean(np.abs(spread - 1) < 1e-6) > 0.75         # mostly one tick
    # strict: no trade is measured against a snapshot from its own instant
    assert np.nanmin(build_features(tape).raw[:, 4]) > 0


# -- command line -----------------------------------------------------------------------------

def test_cli_json_summary_matches_one_pass(tmp_path, capsys):
    from clusterlob.features.__main__ import main

    tape = random_tape(9, n_trades=4000, n_book=1500, days=3)
    write_tape(tape, tmp_path / "tape")
    assert main([str(tmp_path / "tape"), "--window", "30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    whole = build_features(read_tape(tmp_path / "tape"), FeatureSettings(window=30))
    assert out["counts"] == whole.counts
    assert out["settings"]["window"] == 30 and len(out["days"]) == 3
    assert main([str(tmp_path / "tape"), "--days", "2024-05-02:"]) == 0
    text = capsys.readouterr().out
    assert "2024-05-02" in text and "2024-05-01" not in text


def test_cli_errors_are_one_line(tmp_path, capsys):
    from clusterlob.features.__main__ import main

    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tape directory") and err.count("\n") == 1
    write_tape(random_tape(1, n_trades=200, n_book=100, days=2), tmp_path / "tape")
    assert main([str(tmp_path / "tape"), "--window", "1"]) == 2
    assert capsys.readouterr().err == "error: `window` must be an integer >= 2, got 1\n"


def test_spread_on_the_tick_grid_is_a_whole_number_of_ticks():
    # 60000.1 - 60000.0 is 0.10000000000218279 in floats: without snapping the spread feature
    # would be 1.0000000000218 on one snapshot and 0.99999999998 on another, and z-scores
    # would standardise that noise into a fake feature
    from clusterlob import Book, Instrument, Tape, Trades
    from clusterlob.features import FeatureSettings, compute_raw_features
    bids = np.array([60000.0, 61234.5, 59999.9])
    asks = bids + np.array([0.1, 0.1, 0.25])
    n = bids.size
    ts = np.arange(n, dtype=np.int64) * 1000 + 1_714_521_600_000_000
    book = Book(ts, ts, bids[:, None], np.ones((n, 1)), asks[:, None], np.ones((n, 1)))
    tts = ts + 500
    trades = Trades(tts, tts, asks, np.full(n, 0.5), np.ones(n, np.int8), np.arange(n, dtype=np.int64))
    tape = Tape(Instrument("x", "y", 0.1, 0.001), trades, book)
    _, raw, _ = compute_raw_features(tape, FeatureSettings(levels=1))
    spread = raw[:, 3]
    assert spread[0] == 1.0 and spread[1] == 1.0
    assert abs(spread[2] - 2.5) < 1e-9


def test_kernel_layout_and_params_are_defined_once():
    from clusterlob import _core
    from clusterlob.features.build import feature_kernel_params
    from clusterlob.walkforward import cache
    state, times = _core.new_book_state()
    assert state.shape == (_core.BOOK_STATE_SIZE,) and np.isnan(state).all()
    assert times[_core.BOOK_TIMES_HAS] == 0 and times[_core.BOOK_TIMES_MID_CHANGE] == _core.BOOK_NO_TIME
    assert (cache._HAS, cache._MID, cache._BID, cache._ASK) == (
        _core.BOOK_TIMES_HAS, _core.BOOK_TIMES_MID_CHANGE, _core.BOOK_TIMES_BID_CHANGE, _core.BOOK_TIMES_ASK_CHANGE)
    assert RollingState.new(FeatureSettings()).book_times.tolist() == times.tolist()
    params = feature_kernel_params(FeatureSettings(levels=3, asof="at_or_before", convention="aggressor"), 0.1)
    assert params == {"levels": 3, "strict": False, "tick_size": 0.1, "aggressor": True}
    one = np.zeros(1, np.int64)
    with pytest.raises((TypeError, ValueError)):      # a struct field missing is refused, not defaulted
        _core.asof_trade_features(one, np.ones(1, np.int8), np.ones(1), one, one, one, *[np.ones((1, 3))] * 4,
                                  {"levels": 3, "strict": True, "tick_size": 0.1}, state, times, np.empty((1, 6)))
