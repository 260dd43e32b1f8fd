"""New formats: Tardis incremental_book_L2, quotes/book_ticker, derivative_ticker (the funding
table), Binance historical depth files; the row-book kernel against its Python twin; the
instrument's contract fields.  Every fixture is hand-written and its book worked out below."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from clusterlob.errors import TapeError
from clusterlob.tape import Book, Funding, Instrument, read_funding, read_manifest, read_tape
from clusterlob.tape.convert import convert
from clusterlob.tape.readers import ReaderOptions, detect_reader
from clusterlob.tape.readers.binance import iter_messages
from clusterlob.tape.readers.binance_depth import BinanceDepthFileReader
from clusterlob.tape.readers.l2_rows import KIND, L2RowBook
from clusterlob.tape.readers.tardis_l2 import (TardisDerivativeTickerReader, TardisIncrementalReader,
                                               TardisQuotesReader)
from clusterlob.tape.validate import FileReport

from conftest import DATA, shared_file
from l2_rows_reference import ReferenceL2

L2 = DATA / "tardis_l2"
INCREMENTAL = L2 / "incremental_book_L2_tiny.csv"
QUOTES = L2 / "quotes_tiny.csv"
TICKER = L2 / "derivative_ticker_tiny.csv"
DEPTH = DATA / "binance_depth" / "depth_tiny.csv"
T0 = 1714521600000000          # 2024-05-01 00:00:00 UTC in us
NAN = np.nan


def read(cls, path, **options):
    report = FileReport(str(path), cls.format_name)
    reader = cls(path, ReaderOptions(**options), report)
    parts = list(reader.batches())
    return parts, reader, report


def levels(book: Book, row: int, n: int = 3):
    """(bids, asks) of one snapshot as [(price, size)] lists, best first."""
    out = []
    for px, sz in ((book.bid_px, book.bid_sz), (book.ask_px, book.ask_sz)):
        keep = np.isfinite(px[row, :n])
        out.append(list(zip(px[row, :n][keep].tolist(), sz[row, :n][keep].tolist())))
    return tuple(out)


# -- the kernel against its twin -----------------------------------------------------------------

def run_kernel(rows, cuts, levels_=25):
    group, ts_exch, ts_local, kind, price, amount = (np.array(c) for c in zip(*rows))
    rb = L2RowBook(levels_)
    parts = []
    bounds = [0, *cuts, len(rows)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        out = rb.apply(group[a:b], ts_exch[a:b], ts_local[a:b], kind[a:b].astype(np.int8), price[a:b],
                       amount[a:b], a)
        if out is not None:
            parts.append(out[0])
    out = rb.finish()
    if out is not None:
        parts.append(out[0])
    book = Book.concat(parts) if parts else Book.empty(levels_)
    return book, {name: rb.count(name) for name in ("applied", "before_snapshot", "in_gap", "snapshots",
                                                    "breaks", "stale")}


def run_reference(rows, levels_=25):
    ref = ReferenceL2(levels_)
    for r in rows:
        ref.row(*r)
    ref.finish()
    return ref.book_rows(), ref.counts


def assert_same(rows, cuts, levels_=25):
    book, counts = run_kernel(rows, cuts, levels_)
    (ts_exch, ts_local, top), ref_counts = run_reference(rows, levels_)
    assert counts == ref_counts
    np.testing.assert_array_equal(book.ts_exch_us, ts_exch)
    np.testing.assert_array_equal(book.ts_local_us, ts_local)
    for k, name in enumerate(("bid_px", "bid_sz", "ask_px", "ask_sz")):
        np.testing.assert_array_equal(getattr(book, name), top[:, k, :] if len(top) else top.reshape(0, levels_))


def random_rows(rng, n):
    rows, group = [], 0
    for i in range(n):
        if rng.random() < 0.4:
            group += 1
        kind = int(rng.random() < 0.5) * KIND["ask"]
        r = rng.random()
        if r < 0.08:
            kind |= KIND["snapshot"]
        elif r < 0.10:
            kind |= KIND["break"]
        elif r < 0.105:
            kind |= KIND["skip"]
        elif r < 0.11:
            kind |= KIND["skip"] | KIND["break"]
        elif r < 0.12:
            kind |= KIND["snapshot"] | KIND["new_block"]
        price = float(rng.integers(90, 110)) + (0.5 if kind & KIND["ask"] else 0.0)
        amount = float(rng.integers(0, 4))
        rows.append((group, T0 + 10 * group, T0 + 10 * group + 3, kind, price, amount))
    return rows


@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_reference_on_random_rows_in_any_batches(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, 400)
    cuts = sorted(set(rng.integers(1, len(rows), size=int(rng.integers(0, 12))).tolist()))
    assert_same(rows, cuts, levels_=int(rng.choice([1, 5, 25])))


def test_kernel_applied_in_small_chunks_matches_reference(monkeypatch):
    from clusterlob.tape.readers import l2_rows
    monkeypatch.setattr(l2_rows, "CHUNK_ROWS", 7)
    assert_same(random_rows(np.random.default_rng(11), 300), [50, 120])


def test_kernel_matches_reference_on_the_real_recording():
    """Rows made from the real Binance recording: its REST snapshot as a snapshot block,
    each diff as a group of update rows (the first 400 diffs after it)."""
    path = shared_file("binance-futures", "btcusdt_20240808.gz")
    rows, diffs = [], 0
    for msg in iter_messages(path):
        d = msg.data
        if "lastUpdateId" in d:
            sides, kind0, group = ((d["bids"], 0), (d["asks"], KIND["ask"])), KIND["snapshot"], msg.line_no
        elif d.get("e") == "depthUpdate" and rows:
            sides, kind0, group = ((d["b"], 0), (d["a"], KIND["ask"])), 0, msg.line_no
            diffs += 1
        else:
            continue
        ts = msg.ts_local_ns // 1000
        for levels_, side in sides:
            rows += [(group, ts, ts, kind0 | side, float(p), float(q)) for p, q in levels_]
        if diffs >= 400:
            break
    assert diffs == 400 and len(rows) > 2000
    assert_same(rows, [len(rows) // 3, len(rows) // 2])


# -- Tardis incremental_book_L2 ------------------------------------------------------------------

def test_incremental_fixture_gives_the_exact_book():
    parts, reader, report = read(TardisIncrementalReader, INCREMENTAL)
    book = Book.concat(parts)
    # row 0: an update before any snapshot (counted, not applied); rows 1-5: the snapshot
    # (99.0 with amount 0 is absent); rows 6-7: remove 100.0, ask 100.5 -> 1.0; row 8: bid
    # 100.6 crosses (written, dropped by validation); row 9: removes it; rows 10-11: a new
    # snapshot block replaces the book
    assert book.ts_local_us.tolist() == [T0 + 300000, T0 + 500000, T0 + 900000, T0 + 1100000]
    assert book.ts_exch_us.tolist() == [T0 + 200000, T0 + 400000, T0 + 800000, T0 + 1000000]
    assert levels(book, 0) == ([(100.0, 1.5), (99.5, 4.0)], [(100.5, 2.0), (101.0, 3.0)])
    assert levels(book, 1) == ([(99.5, 4.0)], [(100.5, 1.0), (101.0, 3.0)])
    assert levels(book, 2) == ([(99.5, 4.0)], [(100.5, 1.0), (101.0, 3.0)])
    assert levels(book, 3) == ([(98.0, 1.0)], [(98.5, 2.0)])
    assert book.levels == 25 and np.isnan(book.bid_px[:, 3:]).all()
    crossed = [r for r in report.dropped if "crossed" in r]
    assert len(crossed) == 1 and report.dropped[crossed[0]] == 1 and report.first_row[crossed[0]] == 8
    assert report.flagged["update rows before the first snapshot (not applied)"] == 1
    assert report.flagged["snapshot blocks (the book was replaced)"] == 2
    assert (reader.exchange, reader.symbol) == ("binance-futures", "BTCUSDT")


def test_strict_names_the_file_row_of_a_crossed_book(tmp_path):
    with pytest.raises(TapeError, match=r"the book after the group ending at row 8 has a crossed or locked book"):
        read(TardisIncrementalReader, INCREMENTAL, strict=True)
    lines = QUOTES.read_text().splitlines()          # an ETHUSDT row before the crossed one
    path = tmp_path / "quotes.csv"
    path.write_text("\n".join([lines[0], lines[1], lines[1].replace("BTCUSDT", "ETHUSDT"), *lines[2:]]) + "\n")
    with pytest.raises(TapeError, match=r"the book at row 2 has a crossed or locked book"):
        read(TardisQuotesReader, path, strict=True, symbol="BTCUSDT")


def test_incremental_is_detected_as_such_not_as_trades(tmp_path):
    assert detect_reader(INCREMENTAL) is TardisIncrementalReader
    misnamed = tmp_path / "trades.parquet"
    misnamed.write_bytes(INCREMENTAL.read_bytes())
    assert detect_reader(misnamed) is TardisIncrementalReader
    damaged = tmp_path / "damaged.csv"   # a column missing: the error names the detected format
    damaged.write_text(INCREMENTAL.read_text().replace(",amount\n", "\n", 1))
    with pytest.raises(TapeError, match=r"tardis incremental_book_L2 csv file .*missing column `amount`"):
        read(TardisIncrementalReader, damaged)


def bad_incremental(tmp_path, row: int, cell: str, value: str):
    lines = INCREMENTAL.read_text().splitlines()
    cols = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[cols.index(cell)] = value
    lines[row + 1] = ",".join(cells)
    path = tmp_path / f"bad_{cell}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("cell,value,shown", [("amount", "-1.0", "-1.0"), ("price", "nan", "nan"),
                                              ("amount", "inf", "inf")])
def test_incremental_bad_value_is_one_line_naming_the_row(tmp_path, cell, value, shown):
    path = bad_incremental(tmp_path, 7, cell, value)
    with pytest.raises(TapeError, match=rf"row 7: column `{cell}` must be .*got {shown}"):
        read(TardisIncrementalReader, path)


def test_incremental_bad_value_skipped_puts_the_book_out_of_sync_until_the_next_snapshot(tmp_path):
    path = bad_incremental(tmp_path, 7, "amount", "-1.0")
    parts, _, report = read(TardisIncrementalReader, path, skip_bad=True)
    book = Book.concat(parts)
    # the snapshot row, then nothing until the second snapshot block
    assert book.ts_local_us.tolist() == [T0 + 300000, T0 + 1100000]
    (reason, n), = [(r, n) for r, n in report.dropped.items() if "finite" in r]
    assert n == 1 and report.first_row[reason] == 7
    assert report.flagged["update rows while the book was out of sync, after a break, before the next "
                          "snapshot (not applied)"] == 2


def test_rows_are_file_rows_when_other_symbols_are_dropped(tmp_path):
    lines = INCREMENTAL.read_text().splitlines()
    eth = [line.replace("BTCUSDT", "ETHUSDT") for line in lines[1:4]]

    def write(name, body):
        path = tmp_path / name
        path.write_text("\n".join([lines[0], *eth, *body]) + "\n")
        return path

    _, _, report = read(TardisIncrementalReader, write("two.csv", lines[1:]), symbol="BTCUSDT")
    assert report.dropped["other symbols than BTCUSDT"] == 3
    (crossed,) = [r for r in report.dropped if "crossed" in r]
    assert report.first_row[crossed] == 8 + 3          # the crossing row, counted in the file
    bad = lines[8].rsplit(",", 1)[0] + ",-1"           # data row 7 of the fixture, row 10 here
    with pytest.raises(TapeError, match="row 10: column `amount`"):
        read(TardisIncrementalReader, write("bad.csv", [*lines[1:8], bad, *lines[9:]]), symbol="BTCUSDT")


def test_incremental_unknown_side_and_no_snapshot_are_errors(tmp_path):
    with pytest.raises(TapeError, match=r"column `side` has value 'buy' at row 3 \(expected bid or ask\)"):
        read(TardisIncrementalReader, bad_incremental(tmp_path, 3, "side", "buy"))
    only_updates = tmp_path / "updates.csv"
    only_updates.write_text("\n".join(INCREMENTAL.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(TapeError, match="1 update rows but no snapshot row"):
        read(TardisIncrementalReader, only_updates)


@pytest.mark.parametrize("gz", [False, True])
def test_incremental_read_in_tiny_blocks_gives_the_same_book(monkeypatch, tmp_path, gz):
    from clusterlob.tape.readers import csv_blocks
    path = INCREMENTAL
    if gz:
        path = tmp_path / "incremental.csv.gz"
        path.write_bytes(gzip.compress(INCREMENTAL.read_bytes()))
    whole = Book.concat(read(TardisIncrementalReader, INCREMENTAL)[0])
    monkeypatch.setattr(csv_blocks, "_BLOCK_BYTES", 50)      # lines split across reads
    parts, _, report = read(TardisIncrementalReader, path)
    assert len(parts) > 1 and report.rows_read == 12
    small = Book.concat(parts)
    for name in ("ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(small, name))


# -- Tardis quotes / book_ticker -----------------------------------------------------------------

def test_quotes_fixture_is_a_one_level_book_and_bid_over_ask_is_a_counted_drop():
    assert detect_reader(QUOTES) is TardisQuotesReader
    parts, _, report = read(TardisQuotesReader, QUOTES)
    book = Book.concat(parts)
    assert book.levels == 1
    assert book.ts_local_us.tolist() == [T0 + 100000, T0 + 500000]
    assert book.bid_px[:, 0].tolist() == [100.0, 100.5] and book.bid_sz[:, 0].tolist() == [1.5, 2.5]
    assert book.ask_px[:, 0].tolist() == [100.5, 101.0] and book.ask_sz[:, 0].tolist() == [2.0, 3.0]
    reason = "a crossed or locked book (best bid >= best ask)"
    assert report.dropped == {reason: 1} and report.first_row[reason] == 1


# -- Tardis derivative_ticker: the funding table ---------------------------------------------------

def test_derivative_ticker_fixture_gives_the_funding_rows_and_counts_the_bad_rate():
    assert detect_reader(TICKER) is TardisDerivativeTickerReader
    parts, _, report = read(TardisDerivativeTickerReader, TICKER)
    (f,) = parts
    assert isinstance(f, Funding) and len(f) == 2
    assert f.funding_rate.tolist() == [0.0001, -0.00005]
    assert f.next_funding_us.tolist() == [1714550400000000, 1714636800000000]
    assert f.mark_price.tolist() == [100.15, 100.35] and f.index_price.tolist() == [100.1, 100.3]
    assert np.isnan(f.predicted_funding_rate).all()
    reason = "derivative ticker rows without a finite `funding_rate`"
    assert report.dropped == {reason: 1} and report.first_row[reason] == 1
    with pytest.raises(TapeError, match=r"row 1 has a non-finite funding rate \(nan\)"):
        read(TardisDerivativeTickerReader, TICKER, strict=True)


def test_funding_is_a_day_partitioned_table_of_the_tape(tmp_path):
    out = tmp_path / "tape"
    convert([TICKER, DATA / "tardis" / "trades_tiny.csv"], out)
    manifest = read_manifest(out)
    assert manifest["funding"]["days"] == [{"date": "2024-05-01", "rows": 1}, {"date": "2024-05-02", "rows": 1}]
    assert (out / "funding" / "2024-05-01.parquet").is_file()
    assert read_funding(out).funding_rate.tolist() == [0.0001, -0.00005]
    assert read_funding(out, "2024-05-02").funding_rate.tolist() == [-0.00005]
    assert len(read_tape(out).trades) == 7          # the trades are untouched
    no_funding = tmp_path / "plain"
    convert([DATA / "tardis" / "trades_tiny.csv"], no_funding)
    with pytest.raises(TapeError, match="has no funding table"):
        read_funding(no_funding)


def test_binance_mark_price_updates_are_the_funding_table(tmp_path):
    path = DATA / "binance_funding" / "mark_price.txt"
    result = convert([path], tmp_path / "tape", tick_size=0.1, lot_size=0.001)
    f = read_funding(tmp_path / "tape")
    # the second update has r = "" (no funding rate): dropped and counted
    assert f.funding_rate.tolist() == [0.0001, -0.00005]
    assert f.ts_local_us.tolist() == [T0 + 1_000_000, T0 + 3_000_000]
    assert f.next_funding_us.tolist() == [1714550400000000] * 2
    assert f.mark_price.tolist() == [100.15, 100.35] and f.index_price.tolist() == [100.1, 100.3]
    (rep,) = result.report.files
    reason = "mark price updates without a finite funding rate `r`"
    assert rep.dropped == {reason: 1} and rep.first_row[reason] == 2
    assert len(read_tape(tmp_path / "tape").trades) == 2


# -- Binance historical depth files ----------------------------------------------------------------

def test_binance_depth_file_fixture_gives_the_exact_book():
    assert detect_reader(DEPTH) is BinanceDepthFileReader
    parts, reader, report = read(BinanceDepthFileReader, DEPTH)
    book = Book.concat(parts)
    ms = 1000
    # a set before any snap (not applied); the snapshot; a stale set (u 99 < 100, skipped);
    # 99..101 straddles the snapshot; 102..103 continues (pu 101); 106..107 has pu 105 != 103:
    # a gap, 108..109 not applied; the snapshot at 110 brings the book back
    assert book.ts_local_us.tolist() == [T0 + 100 * ms, T0 + 200 * ms, T0 + 300 * ms, T0 + 600 * ms]
    assert (book.ts_exch_us == book.ts_local_us).all()
    assert levels(book, 0) == ([(100.0, 10.0), (99.9, 20.0)], [(100.1, 5.0), (100.2, 7.0)])
    assert levels(book, 1) == ([(100.05, 3.0), (100.0, 10.0), (99.9, 20.0)], [(100.2, 7.0)])
    assert levels(book, 2) == ([(100.05, 3.0), (100.0, 10.0)], [(100.2, 7.0)])
    assert levels(book, 3) == ([(100.1, 2.0)], [(100.4, 6.0)])
    assert (reader.exchange, reader.symbol) == ("binance-delivery", "BTCUSD_PERP")
    flags = report.flagged
    assert flags["`set` rows before the first snapshot (not applied)"] == 1
    assert flags["`set` rows older than the snapshot (last_update_id < its id; skipped)"] == 1
    assert flags["sequence gaps in the update chain"] == 1
    (gap,) = [r for r in flags if r.startswith("sequence gap 1")]
    assert "row 9" in gap and "last_update_id=103" in gap and "pu=105" in gap
    assert report.first_row[gap] == 9


def test_binance_depth_file_accepts_time_column_in_us(tmp_path):
    text = DEPTH.read_text().replace("symbol,timestamp,", "symbol,time,", 1)
    lines = text.splitlines()
    body = [",".join(c if i != 1 else c + "000" for i, c in enumerate(line.split(","))) for line in lines[1:]]
    path = tmp_path / "depth_us.csv"
    path.write_text("\n".join([lines[0], *body]) + "\n")
    a = Book.concat(read(BinanceDepthFileReader, DEPTH)[0])
    b = Book.concat(read(BinanceDepthFileReader, path)[0])
    np.testing.assert_array_equal(a.ts_local_us, b.ts_local_us)
    np.testing.assert_array_equal(a.bid_px, b.bid_px)


# -- the instrument: contract size and inverse contracts -----------------------------------------

def test_instrument_contract_fields_round_trip_and_old_manifests_load():
    inst = Instrument("binance-delivery", "BTCUSD_PERP", 0.1, 1.0, 100.0, True)
    assert Instrument.from_dict(json.loads(json.dumps(inst.to_dict()))) == inst
    old = read_tape(DATA / "default_tape", trades=False, book=False).instrument
    assert old.contract_size is None and old.inverse is False
    assert "inverse" not in old.to_dict()          # a linear tape's manifest is as before


def test_inverse_instrument_needs_a_contract_size_and_notional_follows_the_contract():
    with pytest.raises(TapeError, match="is inverse .* no `contract_size`"):
        Instrument("binance-delivery", "BTCUSD_PERP", 0.1, 1.0, inverse=True)
    inverse = Instrument("binance-delivery", "BTCUSD_PERP", 0.1, 1.0, 100.0, True)
    linear = Instrument("binance-futures", "BTCUSDT", 0.1, 0.001)
    assert inverse.notional(50_000.0, 3.0) == 300.0                # 3 contracts x 100 USD
    assert inverse.settlement_value(50_000.0, 3.0) == pytest.approx(0.006)   # in BTC
    assert linear.notional(50_000.0, 0.002) == pytest.approx(100.0)
    np.testing.assert_allclose(linear.notional(np.array([1.0, 2.0]), np.array([3.0, 4.0])), [3.0, 8.0])


def test_convert_of_coin_m_needs_contract_size(tmp_path):
    with pytest.raises(TapeError, match="no `contract_size`"):
        convert([DEPTH], tmp_path / "a")
    result = convert([DEPTH], tmp_path / "b", contract_size=100.0)
    assert result.manifest["instrument"]["inverse"] is True
    assert result.manifest["instrument"]["contract_size"] == 100.0
    assert read_tape(tmp_path / "b").instrument.inverse
