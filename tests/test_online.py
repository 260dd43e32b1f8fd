"""The online engine: hand-checked events, bit-for-bit equality with the batch pipeline
(features, labels, quotes, fills, PnL) on seeded random tapes, the embedded tape and the real
Binance recording, the plain event-by-event twin (tests/twins/online.py) for the features,
z-scores and labels, bad input leaving the state unchanged, and ``replay --online``."""
import math

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.features import FeatureSettings, RollingState, build_features
from clusterlob.cluster.model import ClusterModel, fit_model, label_trades
from clusterlob.online import BookEvent, OnlineEngine, TradeEvent, replay_online, tape_events
from clusterlob.replay import replay
from clusterlob.replay.engine import exchange_times
from clusterlob.replay.latency import OrderLatency
from clusterlob.replay.strategy import StrategyConfig
from clusterlob.tape import Book, Instrument, Tape, Trades, read_tape

from conftest import DATA, shared_file
from twins.replay import reference_replay
from twins.online import online_twin

TICK = 0.1


def _model(centers, roles, settings):
    centers = np.asarray(centers, float)
    k = centers.shape[0]
    return ClusterModel(centers_z=centers, settings=settings, roles=np.asarray(roles, np.int8),
                        directional_score=np.zeros(k), opportunistic_score=np.zeros(k), margin=0.25,
                        counts=np.zeros(k, np.int64), inertia=0.0, n_iter=0, converged=True, seed=0)


def _levels(bids, bid_sizes, asks, ask_sizes, depth=3):
    out = np.full((4, depth), np.nan)
    for row, values in enumerate((bids, bid_sizes, asks, ask_sizes)):
        out[row, :len(values)] = values
    return out


# -- a few events checked by hand -------------------------------------------------------------

def test_hand_checked_features_and_first_quotes():
    settings = FeatureSettings(levels=2, window=2)
    engine = OnlineEngine(_model([[0.0] * 6], [0], settings), StrategyConfig(), tick_size=TICK)
    actions = engine.on_book(1_000, _levels([100.0, 99.9], [1, 2], [100.1, 100.2], [3, 4], 2))
    # mid 100.05, no signal, no inventory: half-spread max(1 tick, 1 bps * 100.05) = 0.1,
    # bid floor(999.5) = 999 ticks, ask ceil(1001.5) = 1002 ticks
    assert [(a.kind, a.side, a.order_id, a.price_ticks, a.size) for a in actions] == [
        ("place", 1, 1, 999, 0.1), ("place", -1, 2, 1002, 0.1)]
    assert actions[0].price == pytest.approx(99.9) and actions[1].price == pytest.approx(100.2)
    assert engine.on_trade(2_000, 100.1, 0.5, 1) is None        # requote clock: 200 ms
    last = engine.last_trade()
    np.testing.assert_allclose(last["raw"][:4], [0.5 / 4, math.log(8), math.log(4), 1.0])
    assert np.isnan(last["raw"][4:]).all()     # no mid change, no ask change seen yet
    assert not last["valid"] and last["cluster"] == -1
    engine.on_book(3_000, _levels([100.0, 99.9], [1, 2], [100.2, 100.3], [3, 4], 2))
    engine.on_trade(3_500, 100.0, 1.0, -1)
    raw = engine.last_trade()["raw"]
    # a sell taker consumes the bids: sbs = log1p(1 + 2), obs = log1p(3 + 4)
    np.testing.assert_allclose(raw[:5], [1.0 / 4, math.log(4), math.log(8), 2.0, 0.0005])
    assert np.isnan(raw[5])                    # the best bid never changed
    # a trade at the same instant as a book update sees the book strictly before it
    engine.on_book(4_000, _levels([100.1, 100.0], [5, 2], [100.2, 100.3], [3, 4], 2))
    engine.on_trade(4_000, 100.1, 1.0, -1)
    raw = engine.last_trade()["raw"]
    assert raw[0] == pytest.approx(1.0 / 4) and raw[3] == pytest.approx(2.0)
    engine.on_trade(4_001, 100.1, 1.0, -1)
    assert engine.last_trade()["raw"][3] == pytest.approx(1.0)   # now the new book


def test_fill_booking_matches_the_replay_accounts():
    settings = FeatureSettings(levels=1, window=2)
    engine = OnlineEngine(_model([[0.0] * 6], [0], settings), StrategyConfig(maker_fee_bps=2.0),
                          tick_size=TICK)
    engine.on_book(1_000, _levels([100.0], [1], [100.2], [1], 1))
    fee = engine.on_fill(1_500, -1, 2, 100.3, 0.1, True)     # we sold 0.1 at 100.3, mid 100.1
    snap = engine.snapshot()
    assert fee == pytest.approx(0.1 * 100.3 * 2e-4)
    assert snap["inventory"] == pytest.approx(-0.1)
    assert snap["spread_capture"] == pytest.approx(0.1 * 0.2)
    assert snap["cash"] == pytest.approx(0.1 * 100.3 - fee)
    engine.on_book(2_000, _levels([100.2], [1], [100.4], [1], 1))
    assert engine.snapshot()["inventory_drift"] == pytest.approx(-0.1 * 0.2)
    assert engine.live_order_ids() == (1, 0)                 # the filled ask is done


# -- the batch pipeline as the reference ------------------------------------------------------

def _random_tape(rng, n_trades=400, n_book=80, depth=4):
    t_book = np.sort(rng.integers(0, 60_000_000, n_book))
    t_trade = np.sort(np.concatenate([rng.integers(0, 60_000_000, n_trades - 20),
                                      rng.choice(t_book, 20)]))           # some at equal times
    mid_ticks = 1_000 + np.cumsum(rng.integers(-2, 3, n_book))          # prices near 100
    spread = rng.integers(1, 4, n_book)
    bid0 = (mid_ticks - spread // 2 - spread % 2)
    ask0 = bid0 + spread
    steps = np.arange(depth)
    bid_px = (bid0[:, None] - steps) * TICK
    ask_px = (ask0[:, None] + steps) * TICK
    bid_sz = rng.exponential(2.0, (n_book, depth)) + 0.001
    ask_sz = rng.exponential(2.0, (n_book, depth)) + 0.001
    missing = rng.random((n_book, depth)) < 0.1
    missing[:, 0] = False
    missing = np.maximum.accumulate(missing, axis=1)          # missing levels only at the back
    for a in (bid_px, ask_px, bid_sz, ask_sz):
        a[missing] = np.nan
    # trades near the touch of the last book (or anywhere before the first)
    j = np.clip(np.searchsorted(t_book, t_trade, side="right") - 1, 0, None)
    side = rng.choice(np.array([-1, 1, 1, -1, 0], np.int8), n_trades)
    px_ticks = np.where(side >= 0, ask0[j], bid0[j]) + rng.integers(-2, 3, n_trades) * side
    trades = Trades(t_trade + 5, t_trade, px_ticks * TICK, rng.exponential(0.3, n_trades) + 0.001,
                    side, np.arange(n_trades, dtype=np.int64))
    book = Book(t_book + 5, t_book, bid_px, bid_sz, ask_px, ask_sz)
    return Tape(Instrument("test", "TEST", TICK, 0.001), trades, book, ["1970-01-01"])


def _batch(tape, model, config, state=None):
    feats = build_features(tape, model.settings, state)
    labels = label_trades(feats, model)
    return feats, labels, replay(tape, labels.role, config)


def _assert_same(tape, feats, labels, batch, online):
    n = len(tape.trades)
    raw = np.full((n, 6), np.nan)
    z = np.full((n, 6), np.nan)
    raw[feats.trade_index] = feats.raw
    z[feats.trade_index] = feats.z
    assert np.array_equal(online.raw, raw, equal_nan=True)
    assert np.array_equal(online.z, z, equal_nan=True)
    assert np.array_equal(online.cluster, labels.cluster)
    assert np.array_equal(online.role, labels.role)
    for name, column in batch.fills.columns().items():
        assert np.array_equal(getattr(online.result.fills, name), column,
                              equal_nan=column.dtype.kind == "f"), name
    for name, column in batch.equity.columns().items():
        assert np.array_equal(getattr(online.result.equity, name), column, equal_nan=True), name
    a, b = batch.summary.to_dict(), online.result.summary.to_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), key
    for name in ("ring", "n_seen", "run_length", "shift", "mean_shifted", "m2", "book_state", "book_times"):
        assert np.array_equal(getattr(online.state, name), getattr(feats.state, name), equal_nan=True), name


@pytest.mark.parametrize("seed", range(12))
def test_random_tapes_equal_the_batch_pipeline(seed):
    rng = np.random.default_rng(seed)
    tape = _random_tape(rng)
    settings = FeatureSettings(levels=int(rng.integers(1, 5)), window=int(rng.integers(2, 12)),
                               z_clip=float(rng.choice([2.0, 5.0, np.inf])),
                               convention=str(rng.choice(["paper", "aggressor"])))
    model = _model(rng.normal(0, 1, (3, 6)), rng.permutation([0, 1, 2]).astype(np.int8), settings)
    config = StrategyConfig(requote_interval_us=int(rng.integers(1, 5)) * 100_000,
                            order_latency_us=int(rng.integers(1, 100_000)),
                            cancel_latency_us=int(rng.integers(1, 100_000)),
                            response_latency_us=int(rng.choice([0, 1, 30_000, 300_000])),
                            fill_model=str(["cross", "touch", "queue"][seed % 3]),
                            queue_rule=str(["risk_averse", "power", "log"][(seed // 3) % 3]),
                            quote_size=0.05, max_inventory=0.2, skew_ticks=float(rng.uniform(0, 5)),
                            half_spread_bps=0.05, half_life_s=1.0, signal_scale_trades=2.0,
                            signal_norm=str(rng.choice(["flow", "trades"])),
                            funding_rate=float(rng.choice([0.0, 0.001])), funding_interval_h=1,
                            quote_updates=str(["replace", "changes"][(seed // 2) % 2]),
                            fill_size=str(["partial", "whole"][(seed // 4) % 2]))
    feats, labels, batch = _batch(tape, model, config)
    online = replay_online(tape, model, config, record_features=True)
    assert online.result.summary.fills > 0      # fills, post-only and the inventory limit all occur
    _assert_same(tape, feats, labels, batch, online)
    # and the plain-Python twin of the replay rules, fed the engine's own labels
    b = tape.book
    ref = reference_replay(tape.trades.ts_local_us, tape.trades.price, tape.trades.amount,
                           tape.trades.side, online.role, b.ts_local_us, b.bid_px, b.ask_px, TICK, config,
                           book_bid_sz=b.bid_sz, book_ask_sz=b.ask_sz)
    fills = online.result.fills
    got = list(zip(*(getattr(fills, c).tolist() for c in
                     ("trade_index", "ts_us", "side", "price", "qty", "mid", "fee", "inventory", "cash"))))
    assert got == [tuple(r[:9]) for r in ref["fills"]]


# -- the plain twin as the reference: features, z-scores, labels -----------------------------

def _assert_twin(tape, model, online):
    raw, z, cluster, role = online_twin(tape, model)
    assert np.array_equal(np.isnan(online.raw), np.isnan(raw))
    np.testing.assert_allclose(online.raw, raw, rtol=1e-12, atol=0)
    assert np.array_equal(np.isnan(online.z), np.isnan(z))
    np.testing.assert_allclose(online.z, z, rtol=0, atol=1e-9)
    assert np.array_equal(online.cluster, cluster)
    assert np.array_equal(online.role, role)
    return int((cluster >= 0).sum())


def _random_case(seed, asof="strict"):
    rng = np.random.default_rng(100 + seed)
    tape = _random_tape(rng)
    settings = FeatureSettings(levels=int(rng.integers(1, 5)), window=int(rng.integers(2, 12)),
                               z_clip=float(rng.choice([1.0, 5.0, np.inf])),
                               convention=str(rng.choice(["paper", "aggressor"])), asof=asof)
    model = _model(rng.normal(0, 1, (3, 6)), rng.permutation([0, 1, 2]).astype(np.int8), settings)
    return tape, model


@pytest.mark.parametrize("seed", range(8))
def test_random_tapes_equal_the_plain_twin(seed):
    tape, model = _random_case(seed)
    online = replay_online(tape, model, StrategyConfig(), record_features=True)
    assert _assert_twin(tape, model, online) > 50


def test_at_or_before_is_refused_online():
    """The plain twin showed that with asof='at_or_before' the online engine, fed a trade before a
    book update of the same microsecond, computed the strict features (16 of 400 trades of this
    tape differed from the twin and the batch pipeline): such a model is refused in one line."""
    tape, model = _random_case(3, asof="at_or_before")
    with pytest.raises(ParameterError, match="`asof` 'strict' only"):
        replay_online(tape, model, StrategyConfig(), record_features=True)


def test_default_tape_day_equals_the_plain_twin():
    tape = read_tape(DATA / "default_tape", "2024-05-01")
    settings = FeatureSettings(window=50)
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    online = replay_online(tape, model, StrategyConfig(), record_features=True)
    assert _assert_twin(tape, model, online) > 1000


def test_book_update_before_a_trade_at_the_same_instant():
    """Arrival order inside one microsecond does not change a trade's features (strict as-of)."""
    rng = np.random.default_rng(7)
    tape = _random_tape(rng)
    settings = FeatureSettings(levels=3, window=5)
    model = _model(rng.normal(0, 1, (3, 6)), [0, 1, 2], settings)
    trade_first = OnlineEngine(model, tick_size=TICK, trades_before_book="count")
    book_first = OnlineEngine(model, tick_size=TICK, trades_before_book="count")
    events = list(tape_events(tape))
    # move every book update ahead of the trades that share its timestamp
    swapped = sorted(range(len(events)), key=lambda i: (events[i].ts_us, not isinstance(events[i], BookEvent), i))
    rows = {}
    for engine, order in ((trade_first, range(len(events))), (book_first, swapped)):
        out = []
        for i in order:
            engine.on_event(events[i])
            if isinstance(events[i], TradeEvent):
                out.append((events[i].ts_us, events[i].price, engine.features()[0].tobytes()))
        rows[id(engine)] = sorted(out)
    assert sum(isinstance(events[i], BookEvent) for i in swapped[:50]) > 0
    assert rows[id(trade_first)] == rows[id(book_first)]


def test_default_tape_equals_the_batch_pipeline():
    tape = read_tape(DATA / "default_tape")
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    config = StrategyConfig()
    labels = label_trades(feats, model)
    batch = replay(tape, labels.role, config)
    online = replay_online(tape, model, config, record_features=True)
    assert batch.summary.fills > 0 and batch.summary.quote_decisions > 1000
    _assert_same(tape, feats, labels, batch, online)


def test_warm_start_from_the_batch_state_equals_one_pass():
    tape = read_tape(DATA / "default_tape")
    settings = FeatureSettings()
    day1 = read_tape(DATA / "default_tape", "2024-05-01")
    feats1 = build_features(day1, settings)
    model, _ = fit_model(feats1.z[feats1.valid], settings, k=3, seed=1)
    day2 = read_tape(DATA / "default_tape", "2024-05-02")
    state = feats1.state
    whole = build_features(tape, settings)
    online = replay_online(day2, model, StrategyConfig(), state=state, record_features=True)
    n1 = len(day1.trades)
    rows = whole.trade_index >= n1
    z = np.full((len(day2.trades), 6), np.nan)
    z[whole.trade_index[rows] - n1] = whole.z[rows]
    assert np.array_equal(online.z, z, equal_nan=True)
    labels = label_trades(whole, model)
    assert np.array_equal(online.role, labels.role[n1:])
    # the engine's own state round-trips through JSON and continues identically
    again = RollingState.from_dict(online.state.to_dict())
    assert np.array_equal(again.ring, whole.state.ring)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(path of the real Binance recording, the tape convert makes of it); skips when absent."""
    from clusterlob.convert import convert

    path = shared_file("binance-futures", "btcusdt_20240808.gz")
    out = tmp_path_factory.mktemp("recording") / "tape"
    convert([path], out)
    return path, out


def test_real_recording_online_equals_the_batch_pipeline(recording):
    path, tape_dir = recording
    tape = read_tape(tape_dir)
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    config = StrategyConfig(fill_mode="touch")
    labels = label_trades(feats, model)
    batch = replay(tape, labels.role, config)
    assert batch.summary.fills > 0
    # the tape through the online engine, and the raw recording decoded as if live
    for source in (tape, path):
        online = replay_online(source, model, config, tick_size=tape.instrument.tick_size,
                               record_features=True)
        _assert_same(tape, feats, labels, batch, online)


def test_real_recording_online_equals_the_plain_twin(recording):
    _, tape_dir = recording
    tape = read_tape(tape_dir)
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    online = replay_online(tape, model, StrategyConfig(fill_mode="touch"), record_features=True)
    assert _assert_twin(tape, model, online) > 1000


# -- bad input leaves the engine unchanged ----------------------------------------------------

def _busy_engine():
    tape = read_tape(DATA / "default_tape", "2024-05-01")
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    engine = OnlineEngine(model, tick_size=TICK)
    for event in list(tape_events(tape))[:3000]:
        engine.on_event(event)
    return engine


@pytest.mark.parametrize("call, message", [
    (lambda e, t: e.on_trade(t - 1, 60_000.0, 0.1, 1), "backwards"),
    (lambda e, t: e.on_book(t - 1, _levels([60_000.0], [1], [60_000.1], [1], 5)), "backwards"),
    (lambda e, t: e.on_trade(t + 1, float("nan"), 0.1, 1), "price"),
    (lambda e, t: e.on_trade(t + 1, 60_000.0, float("inf"), 1), "amount"),
    (lambda e, t: e.on_trade(t + 1, 60_000.0, 0.1, 2), "side"),
    (lambda e, t: e.on_book(t + 1, _levels([float("nan")], [1], [60_000.1], [1], 5)), "finite"),
    (lambda e, t: e.on_book(t + 1, _levels([60_000.2], [1], [60_000.1], [1], 5)), "crossed"),
    (lambda e, t: e.on_book(t + 1, _levels([60_000.0], [1], [60_000.1], [1], 2)), "shape"),
    (lambda e, t: e.on_book(t + 1, _levels([60_000.0] * 2, [1, -1], [60_000.1], [1], 5)), "size"),
    (lambda e, t: e.on_fill(t + 1, 1, 1, float("nan"), 0.1, False), "price"),
    (lambda e, t: e.on_fill(t - 1, 1, 1, 60_000.0, 0.1, False), "backwards"),
])
def test_bad_input_raises_and_leaves_the_state_unchanged(call, message):
    engine = _busy_engine()
    t = engine.last_ts_us
    before = engine._state_bytes()
    with pytest.raises(ParameterError, match=message):
        call(engine, t)
    assert engine._state_bytes() == before
    engine.on_trade(t + 1, 60_000.0, 0.1, 1)      # and it carries on
    assert engine._state_bytes() != before


def test_trade_before_any_book():
    settings = FeatureSettings(levels=1, window=2)
    engine = OnlineEngine(_model([[0.0] * 6], [0], settings), tick_size=TICK)
    before = engine._state_bytes()
    with pytest.raises(ParameterError, match="before any book"):
        engine.on_trade(1_000, 100.0, 0.1, 1)
    assert engine._state_bytes() == before
    counting = OnlineEngine(_model([[0.0] * 6], [0], settings), tick_size=TICK, trades_before_book="count")
    assert counting.on_trade(1_000, 100.0, 0.1, 1) is None
    assert counting.trades_before_book == 1 and counting.last_role == -1


def test_constructor_validation():
    settings = FeatureSettings(levels=1, window=2)
    model = _model([[0.0] * 6], [0], settings)
    with pytest.raises(ParameterError, match="tick_size"):
        OnlineEngine(model, tick_size=0)
    with pytest.raises(ParameterError, match="time_key"):
        OnlineEngine(_model([[0.0] * 6], [0], FeatureSettings(time_key="exchange")), tick_size=TICK)
    with pytest.raises(ParameterError, match="state"):
        OnlineEngine(model, tick_size=TICK, state=RollingState.new(FeatureSettings()))
    with pytest.raises(ParameterError, match="trades_before_book"):
        OnlineEngine(model, tick_size=TICK, trades_before_book="skip")


# -- python -m clusterlob.replay --online ---------------------------------------------------

def test_cli_online_prints_the_batch_summary(capsys):
    from clusterlob.replay import __main__ as _replay_cli

    assert _replay_cli.main(["--compare"]) == 0
    batch = capsys.readouterr().out
    assert _replay_cli.main(["--online", "--compare"]) == 0
    online = capsys.readouterr().out
    assert "PnL total" in online and online == batch


def test_cli_online_raw_recording(recording, tmp_path, capsys):
    from clusterlob.replay import __main__ as _replay_cli
    from clusterlob.cluster.model import save_model

    path, tape_dir = recording
    feats = build_features(read_tape(tape_dir), FeatureSettings())
    model, _ = fit_model(feats.z[feats.valid], FeatureSettings(), k=3, seed=0)
    save_model(model, tmp_path / "model.json")
    common = ["--model", str(tmp_path / "model.json"), "--fill-mode", "touch"]
    assert _replay_cli.main(["--tape", str(tape_dir), *common]) == 0
    batch = capsys.readouterr().out
    assert _replay_cli.main(["--online", "--tape", str(path), "--tick-size", "0.1", *common]) == 0
    online = capsys.readouterr().out
    assert online.splitlines()[1:] == batch.splitlines()[1:]        # all but the source line
    assert _replay_cli.main(["--online", "--tape", str(path), *common]) == 2
    assert "--tick-size" in capsys.readouterr().err


# -- latencies from data: the batch replay's rules online -------------------------------------

def _with_feed_latency(rng, tape):
    """The tape with exchange times a random feed latency before the local ones (some after)."""
    t, b = tape.trades, tape.book
    trades = Trades(t.ts_local_us - rng.integers(-2_000, 50_000, len(t)), t.ts_local_us, t.price,
                    t.amount, t.side, t.trade_id)
    book = Book(b.ts_local_us - rng.integers(-2_000, 50_000, len(b)), b.ts_local_us, b.bid_px, b.bid_sz,
                b.ask_px, b.ask_sz)
    return Tape(tape.instrument, trades, book, tape.days)


def _latency_table(rng, tape, rows=8):
    """A random order-latency table covering the tape's events (entry up to 80 ms, response 60 ms)."""
    t_all = np.concatenate([tape.trades.ts_local_us, tape.book.ts_local_us])
    req = np.sort(rng.integers(t_all.min() - 10, t_all.max() + 10, rows))
    req[0], req[-1] = t_all.min() - 10, t_all.max() + 10
    exch = req + rng.integers(1, 80_000, rows)
    return OrderLatency.from_times(req, exch, exch + rng.integers(0, 60_000, rows), source="lat.csv")


@pytest.mark.parametrize("seed", range(18))
def test_latencies_from_data_online_equal_the_batch_pipeline(seed):
    """feed_latency 'data' and an order-latency table (each alone and both), under every fill
    model: the online engine with the simulated gateway equals the batch replay bit for bit, and
    the plain-Python twin of the replay rules."""
    rng = np.random.default_rng(500 + seed)
    tape = _with_feed_latency(rng, _random_tape(rng))
    settings = FeatureSettings(levels=int(rng.integers(1, 5)), window=int(rng.integers(2, 12)))
    model = _model(rng.normal(0, 1, (3, 6)), rng.permutation([0, 1, 2]).astype(np.int8), settings)
    feed, table = [(True, False), (False, True), (True, True)][seed % 3]
    config = StrategyConfig(requote_interval_us=int(rng.integers(1, 5)) * 50_000,
                            order_latency_us=int(rng.integers(1, 100_000)),
                            cancel_latency_us=int(rng.integers(1, 100_000)),
                            response_latency_us=int(rng.choice([0, 1, 30_000])),
                            fill_model=str(["cross", "touch", "queue"][(seed // 3) % 3]),
                            queue_rule=str(["risk_averse", "power"][(seed // 9) % 2]),
                            quote_size=0.05, max_inventory=0.2, skew_ticks=float(rng.uniform(0, 5)),
                            half_spread_bps=0.05, half_life_s=1.0,
                            quote_updates=str(["replace", "changes"][seed % 2]),
                            fill_size=str(["partial", "whole"][(seed // 2) % 2]),
                            feed_latency="data" if feed else "none")
    latency = _latency_table(rng, tape) if table else None
    feats = build_features(tape, model.settings)
    labels = label_trades(feats, model)
    batch = replay(tape, labels.role, config, order_latency=latency)
    online = replay_online(tape, model, config, record_features=True, order_latency=latency)
    assert online.result.summary.fills > 0
    _assert_same(tape, feats, labels, batch, online)
    # the latencies from data change the run (else this test would not test them)
    plain = replay(tape, labels.role, config.replace(feed_latency="none"))
    assert plain.summary.to_dict() != batch.summary.to_dict()
    # the plain-Python twin of the replay rules, fed the engine's own labels
    t, b = tape.trades, tape.book
    x_trade, x_book = exchange_times(config, t.ts_local_us, b.ts_local_us, t.ts_exch_us, b.ts_exch_us)
    ref = reference_replay(t.ts_local_us, t.price, t.amount, t.side, online.role, b.ts_local_us, b.bid_px,
                           b.ask_px, TICK, config, book_bid_sz=b.bid_sz, book_ask_sz=b.ask_sz,
                           order_latency=latency, trade_exch=x_trade if feed else None,
                           book_exch=x_book if feed else None)
    fills = online.result.fills
    got = list(zip(*(getattr(fills, c).tolist() for c in
                     ("trade_index", "ts_us", "side", "price", "qty", "mid", "fee", "inventory", "cash"))))
    assert got == [tuple(r[:9]) for r in ref["fills"]]


def test_real_recording_latencies_from_data_online_equal_the_batch_pipeline(recording):
    """The real BTCUSDT recording (its local clock 1.2 s behind the exchange's), feed latency from
    its two clocks and an order-latency table, the default queue model: the tape and the raw
    recording through the online engine equal the batch replay."""
    path, tape_dir = recording
    tape = read_tape(tape_dir)
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, seed=0)
    latency = _latency_table(np.random.default_rng(3), tape, rows=40)
    config = StrategyConfig(feed_latency="data", requote_interval_us=100_000, half_spread_bps=0.1)
    labels = label_trades(feats, model)
    batch = replay(tape, labels.role, config, order_latency=latency)
    assert batch.summary.fills > 0
    assert batch.summary.to_dict() != replay(tape, labels.role, config.replace(feed_latency="none")).summary.to_dict()
    for source in (tape, path):
        online = replay_online(source, model, config, tick_size=tape.instrument.tick_size,
                               record_features=True, order_latency=latency)
        _assert_same(tape, feats, labels, batch, online)


def _feed_engine(**kwargs):
    settings = FeatureSettings(levels=1, window=2)
    return OnlineEngine(_model([[0.0] * 6], [0], settings), StrategyConfig(feed_latency="data"),
                        tick_size=TICK, **kwargs)


def test_latencies_from_data_bad_input_is_one_line_and_leaves_the_state_unchanged():
    with pytest.raises(ParameterError, match="feed_latency 'data' online needs `exchange_offset_us`"):
        _feed_engine()
    with pytest.raises(ParameterError, match="`exchange_offset_us` must be an integer"):
        _feed_engine(exchange_offset_us=1.5)
    with pytest.raises(ParameterError, match="`order_latency` must be an OrderLatency"):
        _feed_engine(exchange_offset_us=0, order_latency="lat.csv")
    latency = OrderLatency.from_times([0, 1_000_000], [100, 1_000_100], [200, 1_000_200], source="lat.csv")
    engine = _feed_engine(exchange_offset_us=500, order_latency=latency)
    book = _levels([100.0], [1], [100.2], [1], 1)
    actions = engine.on_book(1_000, book, 1_200)            # exchange 1,200 - 500 = 700 <= 1,000
    assert [a.kind for a in actions] == ["place", "place"]
    before = engine._state_bytes()
    for call, message in [
            (lambda: engine.on_trade(2_000, 100.1, 0.1, 1), "needs its exchange time"),
            (lambda: engine.on_book(2_000, book, 2_501), r"2001 us, after it \(a negative feed latency\)"),
            (lambda: engine.on_trade(1_000_001, 100.1, 0.1, 1, 9_000),
             "lat.csv covers requests from 0 to 1000000 us, but an event arrived at 1000001 us")]:
        with pytest.raises(ParameterError, match=message):
            call()
        assert engine._state_bytes() == before
    # the next decision waits until the exchange's clock has passed the orders' arrival
    # (sent at 1,000 with the table's 100 us: at 1,100), and for their responses (1,200)
    assert engine.on_book(300_000, book, 1_550) is None          # the exchange's clock at 1,050: in flight
    assert engine.on_book(300_001, book, 1_600) is not None      # at 1,100: they have arrived


def test_cli_online_order_latency_file_equals_batch(tmp_path):
    """`python -m clusterlob.replay --online --order-latency FILE` (a subprocess, as a user runs it)
    prints the batch replay's summary with the same file; a bad file is one line in online mode."""
    import subprocess
    import sys

    tape = read_tape(DATA / "default_tape", "2024-05-02")
    t_all = np.concatenate([tape.trades.ts_local_us, tape.book.ts_local_us])
    req = np.linspace(t_all.min() - 1, t_all.max() + 1, 50).astype(np.int64)
    exch = req + np.random.default_rng(0).integers(1_000, 40_000, 50)
    lat = tmp_path / "lat.csv"
    lat.write_text("req_ts_us,exch_ts_us,resp_ts_us\n" + "".join(
        f"{r},{x},{x + 5_000 + (x - r) // 2}\n" for r, x in zip(req, exch)))
    common = [sys.executable, "-m", "clusterlob.replay", "--quiet", "--order-latency", str(lat)]
    runs = [subprocess.run(common + extra, capture_output=True, text=True, timeout=600, check=False)
            for extra in ([], ["--online"], ["--online", "--feed-latency", "data"], ["--feed-latency", "data"])]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
    assert "PnL total" in runs[1].stdout and runs[1].stdout == runs[0].stdout
    assert runs[2].stdout == runs[3].stdout
    plain = subprocess.run(common[:4], capture_output=True, text=True, timeout=600, check=False)
    assert plain.stdout != runs[0].stdout         # the file's latencies are used
    lat.write_text("req_ts_us,exch_ts_us,resp_ts_us\n1,2,3\n")
    proc = subprocess.run(common + ["--online"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and str(lat) in proc.stderr
    assert "covers requests from 1 to 1 us" in proc.stderr
