"""The main job streamed one day at a time equals the whole tape in one pass, bit for bit.

The reference below is the pipeline as it was before it streamed: read every day at once,
build the features over the whole span, fit on the training days' rows, label, replay the
chosen days with :func:`replay_arrays` in one call.
"""
import math
from dataclasses import asdict

import numpy as np
import pytest

from clusterlob.cluster.fit import FitSettings
from clusterlob.cluster.model import fit_model, label_trades
from clusterlob.errors import ParameterError, TapeError
from clusterlob.features.build import build_features
from clusterlob.features.settings import FeatureSettings
from clusterlob.replay import StrategyConfig, replay, replay_arrays, run_pipeline
from clusterlob.replay.results import MARK_INTERVAL_US
from clusterlob.replay.pipeline import DEFAULT_TAPE, split_days
from clusterlob.replay.stream import ReplayStream
from clusterlob.tape.store import read_manifest, read_tape
from clusterlob.tape.types import US_PER_DAY, Tape, day_start_us
from clusterlob.tape.synth import generate_tape

NEAR = StrategyConfig(quote_size=0.05, max_inventory=1.0, half_spread_bps=0.2)   # fills on synthetic tapes


def whole_tape_pipeline(tape_dir, train_days, replay_days, config, fit=FitSettings(), mappings=None,
                        mark_interval_us=MARK_INTERVAL_US):
    """The one-pass pipeline: the specification the streamed one must equal."""
    available = [d["date"] for d in read_manifest(tape_dir)["days"]]
    train, chosen = split_days(available, train_days, replay_days)
    data = read_tape(tape_dir, f"{min(train + chosen)}:{max(train + chosen)}")
    settings = FeatureSettings()
    feats = build_features(data, settings)
    trade_day = data.trades.ts_local_us[feats.trade_index] // US_PER_DAY
    rows = feats.valid & np.isin(trade_day, [day_start_us(d) // US_PER_DAY for d in train])
    model, _ = fit_model(feats.z[rows], settings, k=fit.k, n_init=fit.n_init, max_iter=fit.max_iter,
                         tol=fit.tol, seed=fit.seed, fit_sample=fit.fit_sample, margin=fit.margin,
                         source={"tape": str(tape_dir), "days": train})
    labels = label_trades(feats, model)
    day_index = [day_start_us(d) // US_PER_DAY for d in chosen]
    keep_t = np.isin(data.trades.ts_local_us // US_PER_DAY, day_index)
    keep_b = np.isin(data.book.ts_local_us // US_PER_DAY, day_index)
    tape = Tape(data.instrument, data.trades.take(keep_t), data.book.take(keep_b), chosen)
    configs = [config.with_mapping(m) for m in mappings] if mappings else [config]
    return model, {c.mapping: replay(tape, labels.role[keep_t], c, mark_interval_us=mark_interval_us)
                   for c in configs}


def assert_same_result(a, b):
    for name, x in a.fills.columns().items():
        np.testing.assert_array_equal(x, getattr(b.fills, name), err_msg=f"fills.{name}")
    for name, x in a.equity.columns().items():
        np.testing.assert_array_equal(x, getattr(b.equity, name), err_msg=f"equity.{name}")
    sa, sb = asdict(a.summary), asdict(b.summary)
    for key in sa:
        same = sa[key] == sb[key] or (isinstance(sa[key], float) and math.isnan(sa[key]) and math.isnan(sb[key]))
        assert same, (key, sa[key], sb[key])


@pytest.fixture(scope="module")
def week_tape(tmp_path_factory):
    """Four synthetic days, 1 s snapshots, 5 levels: small enough to test in a second."""
    out = tmp_path_factory.mktemp("stream") / "tape"
    generate_tape(out, "2024-05-01", 4, 12_000, 3, snapshot_ms=1000, levels=5)
    return out


def test_default_tape_equals_whole_tape():
    model, ref = whole_tape_pipeline(DEFAULT_TAPE, None, None, StrategyConfig())
    run = run_pipeline(None)
    np.testing.assert_array_equal(run.model.centers_z, model.centers_z)
    assert_same_result(run.result, ref["inverted"])


@pytest.mark.parametrize("train, replay_days", [
    (None, None),                           # fit day 1, replay days 2-4: the state carried on
    ("2024-05-01:2024-05-02", "2024-05-04"),  # a day of features only between fit and replay
    ("2024-05-02", "2024-05-01:2024-05-03"),  # in sample and future fit: the state kept at day 1
])
def test_multi_day_equals_whole_tape(week_tape, train, replay_days):
    model, ref = whole_tape_pipeline(week_tape, train, replay_days, NEAR, mappings=("inverted", "traditional"))
    run = run_pipeline(week_tape, train, replay_days, NEAR, mappings=("inverted", "traditional"))
    np.testing.assert_array_equal(run.model.centers_z, model.centers_z)
    for mapping in ref:
        assert_same_result(run.results[mapping], ref[mapping])
    assert run.result.summary.fills > 0        # the fill path ran
    assert sum(run.trade_roles.values()) == run.result.summary.trades


def test_feed_latency_from_data_streamed_equals_whole_tape(week_tape):
    """feed_latency 'data': the stream takes the whole replay's exchange - local offset."""
    cfg = NEAR.replace(feed_latency="data", fill_model="cross")
    model, ref = whole_tape_pipeline(week_tape, None, "2024-05-02:2024-05-03", cfg)
    run = run_pipeline(week_tape, None, "2024-05-02:2024-05-03", cfg)
    assert_same_result(run.result, ref["inverted"])
    assert run.result.summary.fills > 0


def test_online_equals_batch_with_other_mark_spacing(week_tape):
    """The online engine's marks come from the simulated gateway: mark_interval_us reaches it."""
    batch = run_pipeline(week_tape, None, "2024-05-02", NEAR, mark_interval_us=300_000_000)
    online = run_pipeline(week_tape, None, "2024-05-02", NEAR, engine="online", mark_interval_us=300_000_000)
    assert np.all(np.diff(online.result.equity.ts_us[1:-1]) == 300_000_000)
    assert_same_result(online.result, batch.result)


def test_online_equals_batch_with_funding_across_days(week_tape):
    cfg = NEAR.replace(funding_rate=0.0001, funding_interval_h=1)
    batch = run_pipeline(week_tape, None, "2024-05-02:2024-05-03", cfg)
    online = run_pipeline(week_tape, None, "2024-05-02:2024-05-03", cfg, engine="online")
    assert batch.result.summary.funding != 0
    assert_same_result(online.result, batch.result)


def test_online_streamed_equals_batch(week_tape):
    batch = run_pipeline(week_tape, None, "2024-05-02:2024-05-03", NEAR)
    online = run_pipeline(week_tape, None, "2024-05-02:2024-05-03", NEAR, engine="online")
    assert_same_result(online.result, batch.result)
    assert online.trade_roles == batch.trade_roles


@pytest.mark.parametrize("exchange", [
    {},                                                         # the default queue model
    {"fill_model": "cross", "funding_rate": 0.0001, "funding_interval_h": 1},   # funding across cuts
    {"fill_model": "touch", "quote_updates": "changes", "order_latency_us": 400_000,
     "response_latency_us": 250_000, "requote_interval_us": 100_000},   # orders in flight across cuts
])
def test_stream_matches_replay_arrays_over_any_split(exchange):
    rng = np.random.default_rng(5)
    n, nb, levels = 3_000, 1_500, 3
    ts = np.sort(rng.integers(0, 4 * 3_600_000_000, n))
    bts = np.sort(rng.integers(0, 4 * 3_600_000_000, nb))
    mid = 60_000 + np.cumsum(rng.normal(0, 0.5, nb)).round(1)
    steps = 0.1 * np.arange(levels)
    bid, ask = (mid - 0.05)[:, None] - steps, (mid + 0.05)[:, None] + steps
    bid_sz, ask_sz = (rng.exponential(0.3, (nb, levels)) + 0.001 for _ in range(2))
    price = np.interp(ts, bts, mid).round(1)
    amount = rng.exponential(0.05, n) + 0.001
    side = rng.choice(np.array([-1, 1, 0], np.int8), n, p=[0.48, 0.48, 0.04])
    roles = rng.integers(-1, 3, n).astype(np.int8)
    cfg = StrategyConfig(quote_size=0.05, max_inventory=0.5, half_spread_bps=0.1, min_half_ticks=0.5,
                         **exchange)
    interval = 1_000_000          # 1 s marks: more than one mark chunk (4,096) per part
    ref = replay_arrays(ts, price, amount, side, roles, bts, bid, ask, tick_size=0.1, config=cfg,
                        book_bid_sz=bid_sz, book_ask_sz=ask_sz, mark_interval_us=interval)
    assert ref.summary.fills > 10
    assert (ref.summary.funding != 0) == ("funding_rate" in exchange)
    for cuts in ([], [1_000_000_000], [1, 2, 7_200_000_000, 7_200_000_001], [3_000_000_000, 3_000_000_000]):
        stream = ReplayStream(cfg, 0.1, interval)
        edges = [-1] + list(cuts) + [1 << 62]
        for lo, hi in zip(edges[:-1], edges[1:]):
            t, b = (ts > lo) & (ts <= hi), (bts > lo) & (bts <= hi)
            stream.feed(ts[t], price[t], amount[t], side[t], roles[t], bts[b], bid[b], ask[b],
                        book_bid_sz=bid_sz[b], book_ask_sz=ask_sz[b])
        assert_same_result(stream.finish(), ref)


def test_stream_pays_funding_due_just_after_a_cut():
    """A funding time just after a cut, long before the next mark or decision: the new day's
    funding arrays wake the engine for it, as the one pass does."""
    rng = np.random.default_rng(7)
    n, nb = 4_000, 2_000
    span = 4 * 3_600_000_000
    ts, bts = np.sort(rng.integers(0, span, n)), np.sort(rng.integers(0, span, nb))
    mid = 60_000 + np.cumsum(rng.normal(0, 0.5, nb)).round(1)
    bid, ask = mid - 0.05, mid + 0.05
    price = np.interp(ts, bts, mid).round(1)
    amount = rng.exponential(0.05, n) + 0.001
    side = rng.choice(np.array([-1, 1], np.int8), n)
    roles = rng.integers(0, 3, n).astype(np.int8)
    cfg = StrategyConfig(quote_size=0.05, max_inventory=0.5, half_spread_bps=0.1, fill_model="cross",
                         funding_rate=0.001, funding_interval_h=1, requote_interval_us=900_000_000)
    interval = 420_000_000          # 7-minute marks: none falls on an hour
    ref = replay_arrays(ts, price, amount, side, roles, bts, bid, ask, tick_size=0.1, config=cfg,
                        mark_interval_us=interval)
    assert ref.summary.funding != 0
    for cut in (3_600_000_000 - 1, 7_200_000_000 - 1, 3_600_000_000, 7_199_999_000):
        stream = ReplayStream(cfg, 0.1, interval)
        for lo, hi in ((-1, cut), (cut, 1 << 62)):
            t, b = (ts > lo) & (ts <= hi), (bts > lo) & (bts <= hi)
            stream.feed(ts[t], price[t], amount[t], side[t], roles[t], bts[b], bid[b], ask[b])
        assert_same_result(stream.finish(), ref)


def test_stream_refuses_time_going_back():
    stream = ReplayStream(StrategyConfig(fill_model="cross"), 0.1)
    stream.feed([10, 20], [1.0, 1.0], [1.0, 1.0], [1, -1], [0, 0], [5], [0.9], [1.1])
    with pytest.raises(TapeError, match="goes back in time"):
        stream.feed([15], [1.0], [1.0], [1], [0], np.empty(0, np.int64), np.empty(0), np.empty(0))


def test_stream_queue_model_needs_sizes_and_feed_latency_an_offset():
    with pytest.raises(TapeError, match="fill_model 'queue' needs the book's displayed sizes"):
        ReplayStream(StrategyConfig(), 0.1).feed([10], [1.0], [1.0], [1], [0], [5], [0.9], [1.1])
    with pytest.raises(ParameterError, match="needs `exchange_offset_us`"):
        ReplayStream(StrategyConfig(feed_latency="data"), 0.1)


def test_empty_stream_equals_empty_replay():
    i8, f8 = np.empty(0, np.int64), np.empty(0)
    assert_same_result(ReplayStream(StrategyConfig(), 0.1).finish(),
                       replay_arrays(i8, f8, f8, i8, i8, i8, f8, f8, tick_size=0.1, book_bid_sz=f8,
                                     book_ask_sz=f8))


def test_mark_interval_and_its_errors(week_tape):
    run = run_pipeline(week_tape, None, "2024-05-02", NEAR, mark_interval_us=300_000_000)
    assert run.mark_interval_us == 300_000_000
    assert np.all(np.diff(run.result.equity.ts_us[1:-1]) == 300_000_000)
    with pytest.raises(ParameterError, match="mark_interval_us"):
        run_pipeline(week_tape, None, "2024-05-02", NEAR, mark_interval_us=0)
    with pytest.raises(ParameterError, match="--mark-interval 172800 s is longer than the replay"):
        run_pipeline(week_tape, None, "2024-05-02", NEAR, mark_interval_us=2 * US_PER_DAY)


# -- bad input: one line naming the parameter and the value --------------------------------------

def _cli(*args):
    import subprocess
    import sys
    from conftest import ROOT
    return subprocess.run([sys.executable, "-m", "clusterlob.replay", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args, words", [
    (["--replay-days", "2024-06-01:2024-06-03"], "--replay-days 2024-06-01:2024-06-03: days"),
    (["--mark-interval", "0"], "`--mark-interval` must be a finite number > 0, got 0.0"),
    (["--mark-interval", "-5"], "`--mark-interval` must be a finite number > 0, got -5.0"),
    (["--mark-interval", "200000"], "--mark-interval 200000 s is longer than the replay"),
])
def test_bad_input_is_one_line(args, words):
    proc = _cli(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert words in proc.stderr


def test_replay_days_without_data(week_tape, tmp_path):
    import json
    import shutil
    tape = tmp_path / "tape"
    shutil.copytree(week_tape, tape)
    manifest = json.loads((tape / "manifest.json").read_text())
    manifest["days"].append({"date": "2024-05-05", "trades": 0, "book": 0})      # a day listed, no rows
    (tape / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ParameterError, match="--replay-days 2024-05-05: no trades or book updates on 2024-05-05"):
        run_pipeline(tape, None, "2024-05-05")


def test_days_of_different_instruments(week_tape, tmp_path):
    import json
    import shutil
    tape = tmp_path / "tape"
    shutil.copytree(week_tape, tape)
    manifest = json.loads((tape / "manifest.json").read_text())
    other = dict(manifest["instrument"], symbol="ETHUSDT", tick_size=0.01)
    manifest["days"][2]["instrument"] = other
    (tape / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TapeError, match="day 2024-05-03 holds ETHUSDT \\(tick 0.01\\), the tape's instrument "
                                        "is BTCUSDT \\(tick 0.1\\)"):
        run_pipeline(tape)


def test_statistics_carry_their_sample_size():
    from clusterlob.replay.pipeline import _default_mark_interval
    from clusterlob.replay.summary import format_table
    run = run_pipeline(None, mark_interval_us=3_600_000_000)          # 24 hourly marks: too few to annualise
    s = run.result.summary
    assert s.minutes == 23 and math.isnan(s.sharpe_annualised) and math.isfinite(s.sharpe_1min)
    table = format_table(run)
    assert "n/a (23 marks)" in table and f"{s.sharpe_1min:+.3f} (23 marks)" in table
    assert f"({s.fills:,} of {s.trades:,})" in table and "equity marked every 60 minutes" in table
    assert "BTCUSDT, tick 0.1, synthetic)" in table
    # one-minute marks by default, one-second marks when the replay spans under 30 minutes
    assert run_pipeline(None).mark_interval_us == 60_000_000
    assert _default_mark_interval((0, 29 * 60_000_000)) == 1_000_000
    assert _default_mark_interval((0, 30 * 60_000_000)) == 60_000_000
