"""Funding from a rate series on the online path: the simulated gateway pays it with the batch
replay's rule and reports each payment to the engine, so ``replay_online``, ``run_pipeline(...,
engine="online")`` and ``replay --online`` equal the batch replay bit for bit (fills, equity,
PnL split including funding); a hand-worked case; bad series are one-line errors."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clusterlob.errors import ParameterError, TapeError
from clusterlob.features import FeatureSettings
from clusterlob.online import OnlineEngine, replay_online, tape_events
from clusterlob.replay import StrategyConfig, replay, run_pipeline
from clusterlob.replay.gateway import FundingPayment, SimulatedGateway, drive
from clusterlob.replay.pipeline import DEFAULT_TAPE
from clusterlob.tape import Book, Instrument, Tape, Trades
from clusterlob.tape.types import FUNDING_COLUMNS

from test_online import TICK, _assert_same, _batch, _levels, _model, _random_tape

H = 3_600_000_000
DAY2 = 1_714_608_000_000_000        # 2024-05-02 00:00 UTC, us: the embedded tape's second day


# -- a case worked out by hand ----------------------------------------------------------------

def _hand_tape(offset_us=0):
    """Book 100.0 / 100.1 (mid 100.05) at 1 ms; a sell taker at 99.8 at 5 ms fills our 0.1 bid
    (99.9, placed at 1 ms, 100 us order latency): we are long 0.1 from then on.  Times + offset_us."""
    book_t = np.array([1_000, 20_000], np.int64) + offset_us
    bid = np.array([[100.0], [100.0]])
    ask = np.array([[100.1], [100.1]])
    sz = np.ones((2, 1))
    trade_t = np.array([5_000, 40_000], np.int64) + offset_us
    trades = Trades(trade_t, trade_t, np.array([99.8, 100.0]), np.array([1.0, 1.0]),
                    np.array([-1, 0], np.int8), np.arange(2, dtype=np.int64))
    return Tape(Instrument("test", "TEST", TICK, 0.001), trades, Book(book_t, book_t, bid, sz, ask, sz),
                ["1970-01-01"])


HAND_CONFIG = StrategyConfig(order_latency_us=100, cancel_latency_us=100, response_latency_us=0,
                             requote_interval_us=10_000_000, fill_model="cross", quote_size=0.1,
                             max_inventory=1.0)
# before the first event (not paid), two payments while long, one after the last event (not reached)
HAND_FUNDING = (np.array([500, 10_000, 30_000, 50_000], np.int64), np.array([0.5, 0.001, -0.002, 0.7]))


def test_hand_worked_funding_on_a_long_position():
    tape = _hand_tape()
    model = _model([[0.0] * 6], [0], FeatureSettings(levels=1, window=2))
    online = replay_online(tape, model, HAND_CONFIG, funding=HAND_FUNDING).result
    batch = replay(tape, np.full(2, -1, np.int8), HAND_CONFIG, funding=HAND_FUNDING)
    assert online.fills.qty.tolist() == [0.1] and online.fills.side.tolist() == [1]     # long 0.1
    # at 10 ms the long 0.1 pays 0.1 * mid 100.05 * 0.001 (paid with the 20 ms book update, the
    # first event at or after it); at 30 ms rate -0.002: it receives 0.1 * 100.05 * 0.002
    paid, received = 0.1 * 100.05 * 0.001, 0.1 * 100.05 * 0.002
    assert online.summary.funding == pytest.approx(paid - received, rel=1e-12)
    assert online.summary.funding == batch.summary.funding
    assert online.equity.funding.tolist() == batch.equity.funding.tolist()
    s = online.summary
    assert s.spread_capture + s.inventory_drift - s.fees - s.funding == pytest.approx(s.pnl_total, abs=1e-12)
    # the same through the Gateway loop: the engine hears each payment and books it
    engine = OnlineEngine(model, HAND_CONFIG, tick_size=TICK, trades_before_book="count")
    gateway = SimulatedGateway(TICK, HAND_CONFIG, levels=1, funding=HAND_FUNDING)
    heard = [m for _, _, received in drive(engine, gateway, tape_events(tape)) for m in received
             if isinstance(m, FundingPayment)]
    assert [(m.ts_us, m.rate, m.received_us) for m in heard] == [(10_000, 0.001, 20_000), (30_000, -0.002, 40_000)]
    assert heard[0].amount == pytest.approx(paid, rel=1e-12) and heard[1].amount == pytest.approx(-received, rel=1e-12)
    assert engine.snapshot()["funding"] == batch.summary.funding
    assert engine.cash == pytest.approx(gateway._exchange.snapshot()["cash"], rel=1e-12)


def test_a_series_replaces_the_constant_rate():
    """An empty series pays nothing even with a constant ``funding_rate`` set (as in the batch)."""
    tape = _hand_tape(offset_us=H - 15_000)         # an hourly funding time while long
    model = _model([[0.0] * 6], [0], FeatureSettings(levels=1, window=2))
    cfg = HAND_CONFIG.replace(funding_rate=0.01, funding_interval_h=1)
    empty = (np.zeros(0, np.int64), np.zeros(0))
    assert replay_online(tape, model, cfg).result.summary.funding == pytest.approx(0.1 * 100.05 * 0.01)
    assert replay(tape, np.full(2, -1, np.int8), cfg, funding=empty).summary.funding == 0.0
    assert replay_online(tape, model, cfg, funding=empty).result.summary.funding == 0.0
    assert replay_online(list_of(tape), model, cfg, tick_size=TICK, funding=empty).result.summary.funding == 0.0


def list_of(tape):
    return iter([tape])


# -- seeded random tapes and series -----------------------------------------------------------

def _random_series(rng, tape):
    """Funding times over (and a little beyond) the tape, some on event times, some repeated."""
    events = np.concatenate([tape.trades.ts_local_us, tape.book.ts_local_us])
    times = np.concatenate([rng.integers(int(events.min()) - 2_000_000, int(events.max()) + 2_000_000, 10),
                            rng.choice(events, 4), [int(events.min()), int(events.max())]])
    times = np.sort(np.concatenate([times, times[:2]])).astype(np.int64)
    return times, rng.normal(0.0, 0.002, times.shape[0])


@pytest.mark.parametrize("seed", range(8))
def test_random_tapes_and_series_equal_the_batch_pipeline(seed):
    rng = np.random.default_rng(100 + seed)
    tape = _random_tape(rng)
    settings = FeatureSettings(levels=int(rng.integers(1, 5)), window=int(rng.integers(2, 12)))
    model = _model(rng.normal(0, 1, (3, 6)), rng.permutation([0, 1, 2]).astype(np.int8), settings)
    config = StrategyConfig(requote_interval_us=int(rng.integers(1, 5)) * 100_000,
                            order_latency_us=int(rng.integers(1, 100_000)),
                            cancel_latency_us=int(rng.integers(1, 100_000)),
                            response_latency_us=int(rng.choice([0, 30_000, 300_000])),
                            fill_model=str(["cross", "touch", "queue"][seed % 3]),
                            quote_size=0.05, max_inventory=0.2, skew_ticks=float(rng.uniform(0, 5)),
                            half_spread_bps=0.05, half_life_s=1.0, signal_scale_trades=2.0,
                            funding_rate=float(rng.choice([0.0, 0.001])), funding_interval_h=1,
                            quote_updates=str(["replace", "changes"][(seed // 2) % 2]))
    funding = _random_series(rng, tape)
    # odd seeds: an inverse contract (funding paid in the coin, rate * position * size / mid)
    inst = (Instrument("binance-delivery", "BTCUSD_PERP", TICK, 1.0, contract_size=10.0, inverse=True)
            if seed % 2 else None)
    if inst is not None:
        tape = dataclasses.replace(tape, instrument=inst)
    feats, labels, _ = _batch(tape, model, config)
    batch = replay(tape, labels.role, config, funding=funding)
    online = replay_online(tape, model, config, record_features=True, funding=funding)
    assert batch.summary.funding != 0.0         # a position is carried across funding times
    _assert_same(tape, feats, labels, batch, online)
    if inst is not None:        # the coin amounts differ from the linear ones
        linear = replay(dataclasses.replace(tape, instrument=Instrument("t", "T", TICK, 1.0)), labels.role, config,
                        funding=funding)
        assert abs(batch.summary.funding) < abs(linear.summary.funding)
    # the engine itself hears every payment: its funding is the exchange's, to the bit
    engine = OnlineEngine(model, config, tick_size=TICK, trades_before_book="count", instrument=inst)
    gateway = SimulatedGateway(TICK, config, levels=tape.book.levels, funding=funding, instrument=inst)
    for _ in drive(engine, gateway, tape_events(tape)):
        pass
    assert engine.snapshot()["funding"] == batch.summary.funding


# -- a tape with a funding table: the pipeline and the command ------------------------------

@pytest.fixture(scope="module")
def funded_tape(tmp_path_factory):
    """The embedded tape with a funding table: a ticker row every hour of 2024-05-02 naming the
    next 8-hourly funding time, its rate changing each hour (the last row before each time is paid)."""
    out = tmp_path_factory.mktemp("funded") / "tape"
    shutil.copytree(DEFAULT_TAPE, out)
    published = DAY2 + np.arange(24, dtype=np.int64) * H + 60_000_000
    due = (published // (8 * H) + 1) * (8 * H)
    rate = 0.0005 * np.cos(np.arange(24))
    nan = np.full(24, np.nan)
    cols = dict(zip(FUNDING_COLUMNS, (published, published + 5, rate, due, nan, nan, nan, nan, nan)))
    (out / "funding").mkdir()
    pq.write_table(pa.table(cols), out / "funding" / "2024-05-02.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["funding"] = {"days": [{"date": "2024-05-02", "rows": 24}], "total": 24,
                           "columns": list(FUNDING_COLUMNS)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def test_tape_funding_table_online_equals_batch(funded_tape):
    from test_pipeline_stream import assert_same_result

    batch = run_pipeline(funded_tape)
    online = run_pipeline(funded_tape, engine="online")
    assert batch.result.summary.funding != 0.0
    assert batch.result.summary.funding != run_pipeline(funded_tape, funding=None).result.summary.funding
    assert_same_result(online.result, batch.result)


def test_cli_online_with_a_funding_table_prints_the_batch_summary(funded_tape):
    def run(*extra):
        proc = subprocess.run([sys.executable, "-m", "clusterlob.replay", "--quiet", "--tape", str(funded_tape),
                               *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    batch, online = run(), run("--online")
    assert "funding" in batch and online == batch
    assert run("--online", "--funding", "config") != online      # the table's rates were paid


# -- bad input: one line, naming the parameter and the value --------------------------------

@pytest.mark.parametrize("funding, error, message", [
    (([2, 1], [0.1, 0.1]), TapeError, r"`funding times` is not sorted by local time: row 1 \(1\) is earlier"),
    (([1, 2], [0.1, np.nan]), TapeError, r"`funding rates` has 1 non-finite values \(first at row 1\)"),
    (([1, 2], [0.1]), TapeError, r"`funding rates` has 1 rows, expected 2 \(one per funding time\)"),
    (([1.5, 2.0], [0.1, 0.1]), TapeError, r"`funding times` must be integers, got dtype float64"),
    ("tape", ParameterError, r"`funding` must be None or a pair \(times in us, rates\)"),
])
def test_bad_series_is_a_one_line_error(funding, error, message):
    tape = _hand_tape()
    model = _model([[0.0] * 6], [0], FeatureSettings(levels=1, window=2))
    for call in (lambda: replay_online(tape, model, HAND_CONFIG, funding=funding),
                 lambda: SimulatedGateway(TICK, HAND_CONFIG, funding=funding),
                 lambda: replay(tape, np.zeros(2, np.int8), HAND_CONFIG, funding=funding)):
        with pytest.raises(error, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    if funding != "tape":
        with pytest.raises(error, match=message):
            run_pipeline(None, funding=funding, engine="online")


def test_on_funding_bad_input_leaves_the_engine_unchanged():
    engine = OnlineEngine(_model([[0.0] * 6], [0], FeatureSettings(levels=1, window=2)), tick_size=TICK)
    engine.on_book(1_000, _levels([100.0], [1], [100.1], [1], 1))
    before = engine._state_bytes()
    with pytest.raises(ParameterError, match=r"funding `amount` must be a finite number, got nan"):
        engine.on_funding(2_000, float("nan"))
    with pytest.raises(ParameterError, match=r"`ts_us` must not go backwards: 500 < the last event's 1000"):
        engine.on_funding(500, 0.1)
    assert engine._state_bytes() == before
    engine.on_funding(2_000, 0.25)
    assert engine.snapshot()["funding"] == 0.25 and engine.cash == -0.25
