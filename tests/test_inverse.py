"""Inverse (COIN-M) contracts downstream: the replay's accounts in the coin worked out by hand,
the depth features and the OFI in flow units, engine == twin and online == batch on random
inverse tapes, a plain linear tape unchanged, and the replay command naming the coin."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from clusterlob.online import replay_online
from conftest import DATA, ROOT
from test_features import hand_tape
from test_online import _assert_same, _batch, _model, _random_tape
from test_replay_engine import random_config, random_levels, random_tape
from twins.features import raw_features as twin_raw_features
from twins.replay import reference_replay

from clusterlob.cluster.roles import UNASSIGNED
from clusterlob.errors import ParameterError, TapeError
from clusterlob.features import FeatureSettings, build_features
from clusterlob.replay import MARK_INTERVAL_US, replay, replay_arrays
from clusterlob.replay.strategy import StrategyConfig
from clusterlob.signals.ofi import tape_signals
from clusterlob.signals.study import ICSettings, run_ic_study
from clusterlob.tape import Instrument, Tape, read_tape, write_tape

BTCUSD_PERP = Instrument("binance-delivery", "BTCUSD_PERP", 0.5, 1.0, contract_size=100.0, inverse=True)


def _with(tape: Tape, instrument: Instrument) -> Tape:
    return Tape(instrument, tape.trades, tape.book, tape.days)


# -- the settlement currency and the flow unit --------------------------------------------------

@pytest.mark.parametrize("symbol, inverse, currency", [
    ("BTCUSD_PERP", True, "BTC"), ("ETHUSD_240628", True, "ETH"), ("XBTUSD", True, "XBT"),
    ("BTC-PERPETUAL", True, "BTC"), ("PERP", True, "coin"),
    ("BTCUSDT", False, "USDT"), ("ETHBTC", False, "BTC"), ("BTCFDUSD", False, "FDUSD"),
    ("BTC-USDC", False, "USDC"), ("TEST", False, "quote")])
def test_settlement_currency_from_the_symbol(symbol, inverse, currency):
    inst = Instrument("x", symbol, 0.1, 1.0, 10.0 if inverse else None, inverse)
    assert inst.settlement_currency == currency


def test_flow_unit():
    plain = Instrument("binance-futures", "BTCUSDT", 0.1, 0.001)
    amounts = np.array([0.5, 2.0])
    assert plain.flow_unit == 1.0 and plain.flow_size(amounts) is amounts      # untouched
    assert BTCUSD_PERP.flow_unit == 100.0
    assert BTCUSD_PERP.flow_size(amounts).tolist() == [50.0, 200.0]           # USD notional
    assert Instrument("x", "Y", 0.1, 1.0, 0.001).flow_size(amounts).tolist() == [0.0005, 0.002]


# -- the replay in the coin, worked out by hand --------------------------------------------------
#
# BTCUSD_PERP-like: tick 0.5, one contract = 100 USD.  Quotes mid -/+ 1.0 (no skew, no widening),
# one contract each, fee 1 bps, requote every 100 us, latency 10 us order and cancel, 0 response,
# fill model cross; a funding payment of rate 0.001 at t=30.
#
#  t   event                   engine
#   0  book 99.5 / 100.5       mid 100; bid 99.0, ask 101.0 at the exchange at t=10
#  20  trade sell 98.5 x 2     we BUY 1 contract @ 99.0: cash += 100/99 coins ("inverse cash");
#                              capture 100 * (1/99 - 1/100); fee 1e-4 * 100/99
#  30  funding 0.001           long 1 contract at mid 100 pays 0.001 * 1 * 100/100 = 0.001 coin
#  40  book 100.5 / 101.5      mid 101: drift 1 * 100 * (1/100 - 1/101)
#  50  trade buy 101.5 x 1     we SELL 1 contract @ 101.0: cash -= 100/101; capture 0 (at mid 101);
#                              fee 1e-4 * 100/101
# PnL = the long's coin PnL 100 * (1/99 - 1/101) - fees - funding, flat at the end.
HAND_CONFIG = StrategyConfig(skew_ticks=0.0, theta=0.0, min_half_ticks=2.0, half_spread_bps=0.0,
                             quote_size=1.0, max_inventory=5.0, maker_fee_bps=1.0,
                             requote_interval_us=100, order_latency_us=10, cancel_latency_us=10,
                             response_latency_us=0, fill_model="cross")
HAND = {"trades": ([20, 50], [98.5, 101.5], [2.0, 1.0], [-1, 1]),
        "book": ([0, 40], [99.5, 100.5], [100.5, 101.5]), "funding": ([30], [0.001])}


def _hand(instrument):
    ts, price, amount, side = HAND["trades"]
    return replay_arrays(ts, price, amount, side, np.full(2, UNASSIGNED, np.int8), *HAND["book"],
                         tick_size=0.5, config=HAND_CONFIG, funding=HAND["funding"], instrument=instrument)


def test_hand_inverse_replay_in_the_coin():
    r = _hand(BTCUSD_PERP)
    f, s = r.fills, r.summary
    assert f.side.tolist() == [1, -1] and f.price.tolist() == [99.0, 101.0] and f.qty.tolist() == [1.0, 1.0]
    fees = [1e-4 * 100 / 99, 1e-4 * 100 / 101]
    assert f.fee == pytest.approx(fees, rel=1e-12)
    assert f.cash[0] == pytest.approx(100 / 99 - fees[0], rel=1e-12)       # buying contracts adds coins
    assert s.currency == "BTC"
    assert s.volume == 2.0                                                 # contracts
    assert s.notional == pytest.approx(100 / 99 + 100 / 101, rel=1e-12)    # coins
    assert s.spread_capture == pytest.approx(100 * (1 / 99 - 1 / 100), rel=1e-12)
    assert s.inventory_drift == pytest.approx(100 * (1 / 100 - 1 / 101), rel=1e-12)
    assert s.fees == pytest.approx(sum(fees), rel=1e-12)
    assert s.funding == pytest.approx(0.001, rel=1e-12)
    assert s.ending_inventory == 0.0
    coin_pnl = 100 * (1 / 99 - 1 / 101) - sum(fees) - 0.001
    assert s.pnl_total == pytest.approx(coin_pnl, rel=1e-12) and r.equity.equity[-1] == s.pnl_total
    assert s.spread_capture + s.inventory_drift - s.fees - s.funding == pytest.approx(s.pnl_total, abs=1e-15)
    # the same fills on a linear instrument are worth quote currency: 1 x (101 - 99), fees on 99 and 101
    lin = _hand(None).summary
    assert lin.currency == "quote" and lin.pnl_total == pytest.approx(2.0 - 1e-4 * 200 - 0.001 * 100)


def test_a_plain_linear_instrument_is_bit_identical_to_none():
    plain = Instrument("binance-futures", "BTCUSDT", 0.5, 0.001)
    a, b = _hand(None), _hand(plain)
    for name, column in a.fills.columns().items():
        assert np.array_equal(getattr(b.fills, name), column, equal_nan=True), name
    for name, column in a.equity.columns().items():
        assert np.array_equal(getattr(b.equity, name), column, equal_nan=True), name
    da, db = a.summary.to_dict(), b.summary.to_dict()
    assert da.pop("currency") == "quote" and db.pop("currency") == "USDT"
    assert json.dumps(da) == json.dumps(db)
    # a linear contract size scales the money (amounts x contract_size base units)
    c = _hand(Instrument("x", "BTCUSDT", 0.5, 1.0, contract_size=0.01)).summary
    assert c.pnl_total == pytest.approx(0.01 * a.summary.pnl_total, rel=1e-12)


def test_bad_instrument_is_one_line():
    with pytest.raises(ParameterError, match=r"`tick_size` must be the instrument's tick \(0.5 for BTCUSD_PERP\), got 0.1"):
        replay_arrays([1], [100.0], [1.0], [1], [0], [0], [99.5], [100.5], tick_size=0.1, instrument=BTCUSD_PERP)
    with pytest.raises(ParameterError, match="`instrument` must be a clusterlob Instrument or None, got dict"):
        replay_arrays([1], [100.0], [1.0], [1], [0], [0], [99.5], [100.5], tick_size=0.5,
                      instrument={"inverse": True})
    with pytest.raises(TapeError, match="no `contract_size`"):
        Instrument("binance-delivery", "BTCUSD_PERP", 0.1, 1.0, inverse=True)


@pytest.mark.parametrize("seed", range(60))
def test_engine_equals_twin_on_random_inverse_tapes(seed):
    rng = np.random.default_rng(1000 + seed)
    tick = float(rng.choice([0.1, 0.5, 0.01]))
    tape = random_tape(rng, int(rng.integers(0, 300)), int(rng.integers(0, 80)), tick)
    bid_px, bid_sz, ask_px, ask_sz = random_levels(rng, tape[6], tape[7], tick)
    tape = tape[:6] + (bid_px, ask_px)
    cfg = random_config(rng)
    size = float(rng.choice([1.0, 10.0, 100.0]))
    inst = Instrument("binance-delivery", "BTCUSD_PERP", tick, 1.0, contract_size=size, inverse=True)
    funding = []
    if rng.random() < 0.5 and tape[0].shape[0]:
        funding = [(int(t), float(r)) for t, r in zip(np.sort(rng.choice(tape[0], 3)), rng.normal(0, 1e-3, 3))]
    ref = reference_replay(*tape, tick, cfg, mark_interval_us=MARK_INTERVAL_US, book_bid_sz=bid_sz,
                           book_ask_sz=ask_sz, funding=funding, contract_size=size, inverse=True)
    r = replay_arrays(*tape, tick_size=tick, config=cfg, book_bid_sz=bid_sz, book_ask_sz=ask_sz,
                      funding=([f[0] for f in funding], [f[1] for f in funding]) if funding else None,
                      instrument=inst)
    fills = r.fills
    got = list(zip(*(getattr(fills, c).tolist() for c in
                     ("trade_index", "ts_us", "side", "price", "qty", "mid", "fee", "inventory", "cash"))))
    assert got == [tuple(row[:9]) for row in ref["fills"]]
    s = r.summary
    assert (s.ending_inventory, s.fees, s.spread_capture, s.inventory_drift, s.funding) == (
        ref["inventory"], ref["fees"], ref["spread_capture"], ref["inventory_drift"], ref["funding"])
    assert r.equity.equity[1:-1].tolist() == [m[1] for m in ref["marks"]]
    assert abs(s.spread_capture + s.inventory_drift - s.fees - s.funding - s.pnl_total) <= 1e-9 * (1.0 + s.notional)
    assert s.currency == "BTC"


@pytest.mark.parametrize("seed", range(6))
def test_online_equals_batch_on_random_inverse_tapes(seed):
    rng = np.random.default_rng(500 + seed)
    tape = _random_tape(rng)
    inst = Instrument("binance-delivery", "ETHUSD_PERP", tape.instrument.tick_size, 1.0,
                      contract_size=float(rng.choice([10.0, 100.0])), inverse=True)
    tape = _with(tape, inst)
    settings = FeatureSettings(levels=int(rng.integers(1, 5)), window=int(rng.integers(2, 12)))
    model = _model(rng.normal(0, 1, (3, 6)), rng.permutation([0, 1, 2]).astype(np.int8), settings)
    config = StrategyConfig(requote_interval_us=200_000, quote_size=0.05, max_inventory=0.2,
                            half_spread_bps=0.05, half_life_s=1.0, fill_model=str(["cross", "touch", "queue"][seed % 3]),
                            funding_rate=float(rng.choice([0.0, 0.001])), funding_interval_h=1)
    feats, labels, batch = _batch(tape, model, config)
    online = replay_online(tape, model, config, record_features=True)
    assert online.result.summary.fills > 0 and online.result.summary.currency == "ETH"
    _assert_same(tape, feats, labels, batch, online)


# -- features and OFI in flow units ------------------------------------------------------------

def test_depth_features_are_in_flow_units():
    plain = hand_tape()
    inverse = _with(plain, Instrument("x", "HANDUSD_PERP", 0.1, 1.0, contract_size=100.0, inverse=True))
    settings = FeatureSettings(levels=2)
    a, b = build_features(plain, settings), build_features(inverse, settings)
    assert np.array_equal(a.trade_index, b.trade_index)
    other = [0, 3, 4, 5]                   # v_rel (a ratio of amounts), spread, t_m, t_age
    assert np.array_equal(a.raw[:, other], b.raw[:, other], equal_nan=True)
    # sbs / obs: log1p of the depth in USD: T1 buys into asks 3 + 4 contracts = 700 USD
    assert b.raw[0, 1] == pytest.approx(math.log1p(700.0)) and b.raw[0, 2] == pytest.approx(math.log1p(300.0))
    np.testing.assert_allclose(b.raw[:, 1:3], np.log1p(100.0 * np.expm1(a.raw[:, 1:3])), rtol=1e-12)
    _, raw = twin_raw_features(inverse, settings)
    np.testing.assert_allclose(b.raw, raw, rtol=1e-12)


def test_ofi_is_in_flow_units():
    plain = read_tape(DATA / "default_tape", ["2024-05-01"])
    inverse = _with(plain, Instrument("x", "BTCUSD_PERP", plain.instrument.tick_size, 1.0, 100.0, True))
    a, b = tape_signals(plain, groups=()), tape_signals(inverse, groups=())
    assert np.abs(a.ofi_size).max() > 0
    np.testing.assert_allclose(b.ofi_size, 100.0 * a.ofi_size, rtol=1e-12, atol=1e-9)
    assert np.array_equal(a.ofi_count, b.ofi_count)


def test_ic_study_ofi_and_book_flow_in_flow_units(tmp_path):
    plain = read_tape(DATA / "default_tape", ["2024-05-01"])
    write_tape(_with(plain, Instrument("x", "BTCUSD_PERP", plain.instrument.tick_size, 1.0, 10.0, True)),
               tmp_path / "inv")
    settings = ICSettings(timeframes_min=(30,))
    a = run_ic_study(DATA / "default_tape", group_by="agent", days="2024-05-01", settings=settings).signals
    b = run_ic_study(tmp_path / "inv", group_by="agent", days="2024-05-01", settings=settings).signals
    assert a.group_names == b.group_names and any("book OFI" in g for g in a.group_names)
    assert np.abs(a.ofi_size).max() > 0
    np.testing.assert_allclose(b.ofi_size, 10.0 * a.ofi_size, rtol=1e-9, atol=1e-9)


# -- the command, on an inverse tape ---------------------------------------------------------------

def test_replay_command_on_an_inverse_tape_names_the_coin(tmp_path):
    plain = read_tape(DATA / "default_tape", ["2024-05-01", "2024-05-02"])
    inst = Instrument("binance-delivery", "BTCUSD_PERP", plain.instrument.tick_size, 1.0, 100.0, True)
    write_tape(_with(plain, inst), tmp_path / "tape")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "clusterlob.replay", "--tape", str(tmp_path / "tape"),
                           "--quiet", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "inverse: amounts in contracts of 100, money in BTC" in proc.stdout
    assert "PnL total (BTC)" in proc.stdout and "notional (BTC)" in proc.stdout
    import pyarrow.parquet as pq
    for name in ("fills.parquet", "equity.parquet"):
        assert pq.read_schema(out / name).metadata[b"currency"] == b"BTC"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["currency"] == "BTC" and summary["instrument"]["inverse"] is True
    s = summary["summary"]
    assert s["pnl_total"] == pytest.approx(s["spread_capture"] + s["inventory_drift"] - s["fees"] - s["funding"],
                                           abs=1e-12)
    assert pq.read_table(out / "equity.parquet").column("equity").to_pylist()[-1] == s["pnl_total"]


def test_replay_takes_the_tapes_instrument():
    plain = read_tape(DATA / "default_tape", ["2024-05-02"])
    roles = np.full(len(plain.trades), UNASSIGNED, np.int8)
    config = StrategyConfig(fill_model="touch")
    a = replay(plain, roles, config)
    b = replay(_with(plain, Instrument("x", "BTCUSD_PERP", plain.instrument.tick_size, 1.0, 100.0, True)),
               roles, config)
    assert a.summary.currency == "USDT" and b.summary.currency == "BTC"
    assert np.array_equal(a.fills.qty, b.fills.qty) and a.summary.fills > 0     # same fills,
    assert b.summary.notional == pytest.approx(float(np.sum(100.0 * b.fills.qty / b.fills.price)), rel=1e-9)


def test_tape_activity_counts_inverse_contracts_in_coins_and_quote(tmp_path):
    # clusterlob.compare's activity: base volume and quote notional by the instrument's rule
    from clusterlob.compare import tape_activity
    plain = read_tape(DATA / "default_tape", ["2024-05-01"])
    write_tape(_with(plain, Instrument("x", "BTCUSD_PERP", plain.instrument.tick_size, 1.0, 100.0, True)),
               tmp_path / "inv")
    a = tape_activity(DATA / "default_tape", "2024-05-01")
    b = tape_activity(tmp_path / "inv", "2024-05-01")
    t = plain.trades
    assert b.trades == a.trades > 0
    assert a.notional_quote == pytest.approx(float(np.dot(t.price, t.amount)), rel=1e-12)
    assert b.notional_quote == pytest.approx(100.0 * float(t.amount.sum()), rel=1e-12)
    assert b.volume_base == pytest.approx(float(np.sum(100.0 * t.amount / t.price)), rel=1e-12)
    assert b.volume_base != pytest.approx(a.volume_base, rel=1e-3)   # contracts are not coins
