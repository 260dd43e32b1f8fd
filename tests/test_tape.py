"""The canonical tape in memory and on disk: exact round trips, day selection, atomic writes."""
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clusterlob import Book, Instrument, Tape, TapeError, TapeWriter, Trades, read_tape, write_tape
from clusterlob import _core
from clusterlob.errors import ClusterlobError
from clusterlob.tape import US_PER_DAY, day_of_us, parse_days
from twins.tape import count_backwards_steps as twin_count_backwards_steps

ROOT = Path(__file__).resolve().parents[1]

DAY0 = 1_714_521_600_000_000  # 2024-05-01 00:00 UTC
INST = Instrument("binance-futures", "BTCUSDT", 0.1, 0.001)


def random_tape(seed, n_trades=500, n_book=200, levels=7, days=3, string_ids=False, extra=False):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(DAY0, DAY0 + days * US_PER_DAY, n_trades))
    ids = rng.permutation(n_trades).astype(np.int64) + 10**12
    trades = Trades(ts - rng.integers(0, 5000, n_trades), ts,
                    np.round(60000 + rng.normal(0, 50, n_trades), 1),
                    np.round(rng.exponential(0.1, n_trades) + 0.001, 3),
                    rng.choice(np.array([-1, 0, 1], np.int8), n_trades),
                    ids.astype(str).astype(object) if string_ids else ids,
                    extra={"agent": rng.integers(0, 3, n_trades).astype(np.int8)} if extra else {})
    bts = np.sort(rng.integers(DAY0, DAY0 + days * US_PER_DAY, n_book))
    mid = 60000 + rng.normal(0, 50, n_book)
    bid = np.round(mid[:, None] - 0.05 - 0.1 * np.arange(levels), 1)
    ask = np.round(mid[:, None] + 0.05 + 0.1 * np.arange(levels), 1)
    bid[rng.random(n_book) < 0.1, -1] = np.nan
    bsz = np.where(np.isnan(bid), np.nan, rng.exponential(2, (n_book, levels)))
    book = Book(bts - 1000, bts, bid, bsz, ask, rng.exponential(2, (n_book, levels)))
    return Tape(INST, trades, book)


def assert_same(a: Tape, b: Tape):
    assert a.instrument == b.instrument
    for name, col in a.trades.columns().items():
        other = b.trades.columns()[name]
        assert col.dtype == other.dtype, name
        np.testing.assert_array_equal(col, other, err_msg=name)
    for name in ("ts_exch_us", "ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(a.book, name), getattr(b.book, name), err_msg=name)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("string_ids", [False, True])
def test_round_trip_is_exact(tmp_path, seed, string_ids):
    tape = random_tape(seed, string_ids=string_ids, extra=seed % 2 == 0)
    manifest = write_tape(tape, tmp_path / "t")
    back = read_tape(tmp_path / "t")
    assert_same(tape, back)
    assert back.days == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert manifest["totals"] == {"trades": 500, "book": 200}
    assert manifest["trade_id_type"] == ("string" if string_ids else "int64")
    assert manifest["book_levels"] == 7


def test_layout_is_one_file_per_day(tmp_path):
    write_tape(random_tape(1), tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t" / "trades").iterdir()) == [
        "2024-05-01.parquet", "2024-05-02.parquet", "2024-05-03.parquet"]
    day = pq.read_table(tmp_path / "t" / "book" / "2024-05-02.parquet")
    ts = day["ts_local_us"].to_numpy()
    assert ts.min() >= DAY0 + US_PER_DAY and ts.max() < DAY0 + 2 * US_PER_DAY
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["format"] == "clusterlob-tape" and manifest["version"] == 2
    # format 2: one column per book side and level, so a reader decodes only the levels it needs
    assert day.column_names == ["ts_exch_us", "ts_local_us"] + [
        f"{side}_{k}" for side in ("bid_px", "bid_sz", "ask_px", "ask_sz") for k in range(7)]
    assert sum(d["trades"] for d in manifest["days"]) == 500


def test_reading_a_range_does_not_open_other_days(tmp_path):
    tape = random_tape(2)
    write_tape(tape, tmp_path / "t")
    # make the other days unreadable: a range read must still work
    for day in ("2024-05-01", "2024-05-03"):
        (tmp_path / "t" / "trades" / f"{day}.parquet").write_bytes(b"garbage")
        (tmp_path / "t" / "book" / f"{day}.parquet").write_bytes(b"garbage")
    part = read_tape(tmp_path / "t", days="2024-05-02:2024-05-02")
    lo, hi = DAY0 + US_PER_DAY, DAY0 + 2 * US_PER_DAY
    in_day = (tape.trades.ts_local_us >= lo) & (tape.trades.ts_local_us < hi)
    np.testing.assert_array_equal(part.trades.price, tape.trades.price[in_day])
    with pytest.raises(TapeError, match="cannot read Parquet"):
        read_tape(tmp_path / "t")


def test_writer_sorts_stably_and_counts(tmp_path):
    # local times out of order across and within batches; equal times keep input order
    ts = DAY0 + np.array([50, 10, 10, 30, 20], np.int64)
    trades = Trades(ts, ts, np.arange(5.0) + 1, np.ones(5), np.ones(5, np.int8), np.array([1, 2, 3, 3, 4]))
    with TapeWriter(tmp_path / "t", INST) as w:
        w.add_trades(trades.take(slice(0, 3)))
        w.add_trades(trades.take(slice(3, 5)))
        manifest = w.close()
    back = read_tape(tmp_path / "t")
    np.testing.assert_array_equal(back.trades.ts_local_us - DAY0, [10, 10, 20, 30, 50])
    np.testing.assert_array_equal(back.trades.price, [2, 3, 5, 4, 1])  # stable: id 2 before id 3
    assert manifest["summary"]["out_of_order_trades_sorted"] == 2
    assert manifest["summary"]["duplicate_trade_ids"] == 1


def test_target_is_refused_unless_forced_and_untouched_on_error(tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(ClusterlobError, match="already has mine.txt .*--force"):
        write_tape(random_tape(0), out)
    with pytest.raises(ClusterlobError, match="not a clusterlob output"):   # --force never deletes a user's folder
        write_tape(random_tape(0), out, force=True)
    assert (out / "mine.txt").read_text() == "user data"
    tape = tmp_path / "tape"
    write_tape(random_tape(0), tape)
    with pytest.raises(RuntimeError):
        with TapeWriter(tape, INST, force=True) as w:
            w.add_trades(random_tape(0).trades)
            raise RuntimeError("killed half way")
    assert (tape / "manifest.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tape.")]  # staging folder cleaned
    write_tape(random_tape(1), tape, force=True)                              # a tape replaces a tape
    (tape / "trades" / "notes.txt").write_text("mine")
    with pytest.raises(ClusterlobError, match="notes.txt that clusterlob did not write"):
        write_tape(random_tape(0), tape, force=True)
    (tape / "trades" / "notes.txt").unlink()
    (tape / "notes.md").write_text("mine")
    with pytest.raises(ClusterlobError, match="notes.md that clusterlob did not write"):
        write_tape(random_tape(0), tape, force=True)
    assert (tape / "notes.md").exists() and (tape / "manifest.json").exists()


def test_book_depth_must_not_change(tmp_path):
    with TapeWriter(tmp_path / "t", INST) as w:
        w.add_book(random_tape(0, levels=5).book)
        with pytest.raises(TapeError, match="7 levels cannot join a tape of 5 levels"):
            w.add_book(random_tape(0, levels=7).book)
        w.abort()


def test_read_errors_name_the_problem(tmp_path):
    with pytest.raises(TapeError, match="does not exist"):
        read_tape(tmp_path / "nope")
    (tmp_path / "rec.gz").write_bytes(b"x")
    with pytest.raises(TapeError, match="is a file, not a tape directory .*clusterlob.convert"):
        read_tape(tmp_path / "rec.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TapeError, match="no manifest.json"):
        read_tape(tmp_path / "empty")
    write_tape(random_tape(0), tmp_path / "t")
    with pytest.raises(TapeError, match="days not in the tape: 2024-06-01"):
        read_tape(tmp_path / "t", days=["2024-06-01"])
    with pytest.raises(TapeError, match="YYYY-MM-DD"):
        read_tape(tmp_path / "t", days="May 1")


def test_parse_days_and_day_of_us():
    days = ["2024-05-01", "2024-05-02", "2024-05-04"]
    assert parse_days("2024-05-02:", days) == days[1:]
    assert parse_days(":2024-05-02", days) == days[:2]
    assert parse_days("2024-05-04", days) == ["2024-05-04"]
    assert day_of_us(DAY0 - 1) == "2024-04-30" and day_of_us(DAY0) == "2024-05-01"


def test_instrument_rejects_bad_increments():
    with pytest.raises(TapeError, match="`tick_size` must be a finite number > 0, got 0"):
        Instrument("x", "y", 0, 1)


def test_count_backwards_steps_matches_reference():
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 17, 1000):
        ts = rng.integers(0, 50, n).astype(np.int64)
        assert _core.count_backwards_steps(ts) == twin_count_backwards_steps(ts)


def test_build_info_reports_debug_flag():
    assert set(_core.build_info()) == {"debug"}


def test_reading_only_some_columns_and_levels(tmp_path):
    tape = random_tape(3, n_trades=3000, n_book=900, levels=7, extra=True)
    write_tape(tape, tmp_path / "t")
    # row groups of 256 rows: the levels are cut group by group
    for kind in ("trades", "book"):
        for f in (tmp_path / "t" / kind).iterdir():
            pq.write_table(pq.read_table(f), f, row_group_size=256)
    part = read_tape(tmp_path / "t", levels=3, columns=("price", "side", "agent"))
    assert part.book.levels == 3 and part.book.ts_exch_us is None
    for name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(part.book, name), getattr(tape.book, name)[:, :3])
    np.testing.assert_array_equal(part.book.ts_local_us, tape.book.ts_local_us)
    for name in ("ts_local_us", "price", "side"):           # ts_local_us is always read
        np.testing.assert_array_equal(getattr(part.trades, name), getattr(tape.trades, name))
    assert part.trades.amount is None and part.trades.trade_id is None and part.trades.ts_exch_us is None
    np.testing.assert_array_equal(part.trades.extra["agent"], tape.trades.extra["agent"])
    # an unread column stays None through take and concat
    half = part.trades.take(slice(0, 10))
    assert half.amount is None and len(Trades.concat([half, part.trades.take(slice(10, 20))])) == 20
    assert read_tape(tmp_path / "t", columns=()).trades.extra == {}
    assert read_tape(tmp_path / "t", columns=("ts_exch_us",)).book.ts_exch_us is not None
    with pytest.raises(TapeError, match=r"`levels` must be an integer in 1\.\.7 .*got 8"):
        read_tape(tmp_path / "t", levels=8)


def test_time_span_from_the_statistics(tmp_path):
    from clusterlob.tape.store import time_span
    tape = random_tape(4)
    write_tape(tape, tmp_path / "t")
    both = np.concatenate([tape.trades.ts_local_us, tape.book.ts_local_us])
    assert time_span(tmp_path / "t") == (both.min(), both.max())
    day2 = both[(both >= DAY0 + US_PER_DAY) & (both < DAY0 + 2 * US_PER_DAY)]
    assert time_span(tmp_path / "t", "2024-05-02") == (day2.min(), day2.max())


def test_format_1_list_columns_still_read_and_equal_format_2(tmp_path):
    # data/default_tape was written as format 1 (each book side one list column of its 5 levels)
    old = ROOT / "data" / "default_tape"
    assert json.loads((old / "manifest.json").read_text())["version"] == 1
    assert pq.read_schema(old / "book" / "2024-05-01.parquet").field("bid_px").type.list_size == 5
    tape = read_tape(old)
    write_tape(tape, tmp_path / "v2")
    for levels in (None, 1, 3, 5):
        a, b = read_tape(old, levels=levels), read_tape(tmp_path / "v2", levels=levels)
        for name in ("ts_exch_us", "ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
            assert np.array_equal(getattr(a.book, name), getattr(b.book, name), equal_nan=True), (levels, name)
        assert np.array_equal(a.trades.price, b.trades.price)
    assert read_tape(tmp_path / "v2", levels=5).book.bid_px.shape[1] == 5


def test_unknown_format_version_and_broken_level_columns_are_one_line(tmp_path):
    write_tape(random_tape(1), tmp_path / "t")
    mpath = tmp_path / "t" / "manifest.json"
    manifest = json.loads(mpath.read_text())
    mpath.write_text(json.dumps({**manifest, "version": 3}))
    with pytest.raises(TapeError, match="format version 3 is not supported .*reads versions 1, 2"):
        read_tape(tmp_path / "t")
    mpath.write_text(json.dumps(manifest))
    day = tmp_path / "t" / "book" / "2024-05-02.parquet"
    pq.write_table(pq.read_table(day).drop_columns(["ask_sz_3"]), day)
    with pytest.raises(TapeError, match=r"book level columns of ask_sz are not levels 0\.\.5"):
        read_tape(tmp_path / "t")
