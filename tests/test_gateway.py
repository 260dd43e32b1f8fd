"""The gateway interface, the simulated gateway's latency and fill rules, the strategy loop
written against the interface, and the Binance message decoder."""
import json

import numpy as np
import pytest

from clusterlob.errors import ParameterError, TapeError
from clusterlob.features import FeatureSettings, build_features
from clusterlob.replay.gateway import BinanceDecoder, Fill, Gateway, SimulatedGateway, drive
from clusterlob.cluster.model import fit_model
from clusterlob.online import BookEvent, OnlineEngine, TradeEvent, replay_online, tape_events
from clusterlob.replay.strategy import StrategyConfig
from clusterlob.tape import read_tape

from conftest import DATA, shared_file
from test_online import _levels, _model

TICK = 0.1


def _engine_actions(config):
    """Two place actions (bid 999 ticks, ask 1002 ticks, 0.1 each) decided at t = 1000."""
    engine = OnlineEngine(_model([[0.0] * 6], [0], FeatureSettings(levels=1, window=2)), config,
                          tick_size=TICK)
    return engine, engine.on_book(1_000, _levels([100.0], [1], [100.1], [1], 1))


def test_simulated_gateway_is_a_gateway():
    assert isinstance(SimulatedGateway(TICK), Gateway)


def test_latency_then_fill_at_our_price_and_size_used_up():
    config = StrategyConfig(order_latency_us=500, response_latency_us=0, fill_model="cross")
    _, actions = _engine_actions(config)
    gw = SimulatedGateway(TICK, config)
    gw.submit(actions, 1_000)
    # before the latency has elapsed nothing rests, and a trade through the ask fills nothing
    gw.on_market(TradeEvent(1_499, 100.3, 1.0, 1))
    assert gw.poll(1_499) == [] and gw.in_flight == 2
    gw.on_market(TradeEvent(1_500, 100.3, 0.04, 1))
    assert gw.poll(1_500) == []                 # heard at the next event, as in the batch replay
    # the rest of the ask fills once, then it is used up
    gw.on_market(TradeEvent(1_600, 100.3, 1.0, 1))
    assert gw.poll(1_600) == [Fill(1_500, 2, -1, pytest.approx(100.2), 0.04, pytest.approx(0.06), 1_500)]
    gw.on_market(TradeEvent(1_700, 100.3, 1.0, 1))
    fills = gw.poll(1_700)
    assert len(fills) == 1 and fills[0].qty == pytest.approx(0.06) and fills[0].remaining == 0.0
    assert gw.resting()["ask"] is None and gw.resting()["bid"][0] == 1


def test_response_latency_delays_the_news():
    config = StrategyConfig(order_latency_us=500, response_latency_us=2_000, fill_model="cross")
    _, actions = _engine_actions(config)
    gw = SimulatedGateway(TICK, config)
    gw.submit(actions, 1_000)
    gw.on_market(TradeEvent(1_600, 100.3, 1.0, 1))
    assert gw.poll(3_599) == []
    (fill,) = gw.poll(3_600)
    assert (fill.ts_us, fill.received_us, fill.qty) == (1_600, 3_600, pytest.approx(0.1))


@pytest.mark.parametrize("mode, fills", [("cross", 0), ("touch", 1)])
def test_fill_mode_at_our_price(mode, fills):
    config = StrategyConfig(order_latency_us=1, fill_mode=mode)
    _, actions = _engine_actions(config)
    gw = SimulatedGateway(TICK, config)
    gw.submit(actions, 1_000)
    gw.on_market(TradeEvent(1_100, 99.9, 1.0, -1))       # a sell taker exactly at our bid
    got = [m for m in gw.poll(1_100 + config.response_latency_us) if isinstance(m, Fill)]
    assert len(got) == fills
    if fills:
        assert got[0].side == 1 and got[0].price == pytest.approx(99.9)


def test_post_only_on_arrival_and_cancel_acks():
    config = StrategyConfig(order_latency_us=10, cancel_latency_us=10, response_latency_us=0)
    engine, actions = _engine_actions(config)
    gw = SimulatedGateway(TICK, config)
    gw.submit(actions, 1_000)
    # the book moves up before the orders arrive: the ask (100.2) would cross the bid 100.2
    gw.on_market(BookEvent(1_005, _levels([100.2], [1], [100.3], [1], 1)))
    got = gw.poll(1_011)
    assert [(m.status, m.order_id, m.side, m.qty) for m in got] == [("rejected", 2, -1, pytest.approx(0.1))]
    assert "post-only" in got[0].reason
    # the next decision cancels the bid and places again: the cancel ack carries the size left
    again = engine.on_book(300_000, _levels([100.0], [1], [100.1], [1], 1))
    assert [a.kind for a in again] == ["cancel", "place", "cancel", "place"]
    gw.submit(again, 300_000)
    got = gw.poll(300_011)
    # (the exchange's book still has the bid at 100.2: the new ask is rejected again)
    assert [(m.status, m.order_id, m.qty) for m in got] == [("cancelled", 1, pytest.approx(0.1)),
                                                           ("rejected", 4, pytest.approx(0.1))]
    assert gw._exchange.n_unknown_cancels == 1       # the rejected ask had nothing to cancel


def test_drive_against_the_interface_equals_replay_online():
    tape = read_tape(DATA / "default_tape", "2024-05-01")
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    config = StrategyConfig(fill_model="touch")
    engine = OnlineEngine(model, config, tick_size=TICK)
    gateway = SimulatedGateway(TICK, config, levels=tape.book.levels)
    fills = [m for _, _, got in drive(engine, gateway, tape_events(tape)) for m in got if isinstance(m, Fill)]
    reference = replay_online(tape, model, config).result
    # every fill heard by the end, in order; the accounts at the exchange are the replay's
    assert 0 < len(fills) <= reference.summary.fills
    assert [f.price for f in fills] == reference.fills.price.tolist()[:len(fills)]
    assert [f.ts_us for f in fills] == reference.fills.ts_us.tolist()[:len(fills)]
    snap, summary = gateway._exchange.snapshot(), reference.summary
    assert (snap["spread_capture"], snap["inventory_drift"], snap["fees"], snap["inventory"]) == (
        summary.spread_capture, summary.inventory_drift, summary.fees, summary.ending_inventory)
    # the engine's own books hold what it heard: the position of the fills it heard
    assert engine.snapshot()["inventory"] == pytest.approx(sum(f.qty * f.side for f in fills), abs=1e-9)


# -- the decoder ---------------------------------------------------------------------------

def _depth(U, u, pu, bids, asks, T=1_723_075_200_000, s="BTCUSDT"):
    return {"e": "depthUpdate", "E": T, "T": T, "s": s, "U": U, "u": u, "pu": pu, "b": bids, "a": asks}


def _trade(price, qty, maker, X="MARKET", T=1_723_075_200_001):
    return {"e": "trade", "E": T, "T": T, "s": "BTCUSDT", "t": 7, "p": price, "q": qty, "X": X, "m": maker}


def test_decoder_builds_the_book_and_trades():
    dec = BinanceDecoder(levels=2)
    t0 = 1_723_075_200_000_000
    assert dec.decode(_depth(9, 11, 8, [["100.0", "1"]], [["100.2", "2"]]), t0) == []   # buffered
    snap = {"lastUpdateId": 10, "bids": [["100.0", "3"], ["99.9", "4"]], "asks": [["100.1", "5"]]}
    (book,) = dec.decode(snap, t0 + 5)
    assert isinstance(book, BookEvent) and book.ts_us == t0 + 5
    # the buffered diff (U 9 <= 10 <= u 11) applied on top of the snapshot
    np.testing.assert_array_equal(book.levels, [[100.0, 99.9], [1.0, 4.0], [100.1, 100.2], [5.0, 2.0]])
    (trade,) = dec.decode(_trade("100.1", "0.5", False), t0 + 6, "btcusdt@trade")
    assert trade == TradeEvent(t0 + 6, 100.1, 0.5, 1, 1_723_075_200_001_000)
    assert dec.decode(_trade("100.0", "0.5", True), t0 + 7)[0].side == -1
    assert dec.decode(_trade("100.0", "0.5", True, X="ADL"), t0 + 8) == []
    assert dec.decode(_depth(12, 13, 11, [["100.0", "0"]], []), t0 + 9)[0].levels[0, 0] == 99.9
    # a crossed book is dropped (as the tape's rules drop it), an unknown stream ignored
    assert dec.decode(_depth(14, 14, 13, [["100.3", "1"]], []), t0 + 10) == []
    assert dec.dropped == {"non-market trades (X = ADL)": 1, "crossed or locked books": 1}
    assert dec.decode({"e": "markPriceUpdate", "s": "BTCUSDT"}, t0 + 11) == []
    assert dec.ignored == {"e=markPriceUpdate": 1}


def test_decoder_lines_and_errors():
    dec = BinanceDecoder()
    line = "1723075200000000123 " + json.dumps({"stream": "btcusdt@trade", "data": _trade("1", "2", False)})
    (trade,) = dec.decode_line(line)
    assert trade.ts_us == 1_723_075_200_000_000
    with pytest.raises(TapeError, match="message 2"):
        dec.decode_line("1723075200000000123 {not json")
    with pytest.raises(TapeError, match="`p`"):
        dec.decode({"e": "trade", "s": "BTCUSDT", "q": "1", "m": True, "T": 1}, 1)
    with pytest.raises(ParameterError, match="levels"):
        BinanceDecoder(levels=0)
    other = BinanceDecoder(symbol="ETHUSDT")
    assert other.decode(_trade("1", "2", False), 1) == [] and other.ignored == {"other symbol": 1}


def test_recording_decoded_live_equals_the_converted_tape(tmp_path):
    from clusterlob.convert import convert

    path = shared_file("binance-futures", "btcusdt_20240808.gz")
    convert([path], tmp_path / "tape")
    tape = read_tape(tmp_path / "tape")
    events = list(BinanceDecoder(levels=25).events_from_file(path))
    trades = [e for e in events if isinstance(e, TradeEvent)]
    books = [e for e in events if isinstance(e, BookEvent)]
    assert len(trades) == len(tape.trades) and len(books) == len(tape.book)
    assert [e.ts_us for e in trades] == tape.trades.ts_local_us.tolist()
    assert [e.price for e in trades] == tape.trades.price.tolist()
    assert [e.side for e in trades] == tape.trades.side.tolist()
    levels = np.stack([e.levels for e in books])
    for row, name in enumerate(("bid_px", "bid_sz", "ask_px", "ask_sz")):
        assert np.array_equal(levels[:, row], getattr(tape.book, name), equal_nan=True), name
    assert [e.ts_exch_us for e in books] == tape.book.ts_exch_us.tolist()


def test_changes_mode_sends_only_what_changed():
    config = StrategyConfig(order_latency_us=10)
    engine = OnlineEngine(_model([[0.0] * 6], [0], FeatureSettings(levels=1, window=2)), config,
                          tick_size=TICK, quote_updates="changes")
    book = _levels([100.0], [1], [100.1], [1], 1)
    assert len(engine.on_book(1_000, book)) == 2
    assert engine.on_book(300_000, book) == ()                 # same quotes: nothing to send
    engine.on_fill(300_100, 1, 1, 99.9, 0.05, False)          # the bid is partly filled
    again = engine.on_book(600_000, book)
    assert [(a.kind, a.side, a.order_id) for a in again] == [("cancel", 1, 1), ("place", 1, 3)]
    moved = engine.on_book(900_000, _levels([100.2], [1], [100.3], [1], 1))
    assert [a.kind for a in moved] == ["cancel", "place", "cancel", "place"]


def test_changes_mode_on_the_default_tape():
    tape = read_tape(DATA / "default_tape", "2024-05-01")
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    replace = replay_online(tape, model, StrategyConfig())
    changes = replay_online(tape, model, StrategyConfig(), quote_updates="changes")
    sent = {name: run.acks["actions"] for name, run in (("replace", replace), ("changes", changes))}
    assert sent["changes"] < 0.85 * sent["replace"]         # 56,259 vs 69,567 actions
    assert changes.result.summary.quote_decisions == replace.result.summary.quote_decisions
    assert changes.result.summary.fills > 0
