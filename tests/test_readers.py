"""Readers of outside formats: hand-written fixtures, the real Tardis samples, and bad input."""

import numpy as np
import pytest

from clusterlob import TapeError, read_tape
from clusterlob.convert import convert
from clusterlob.convert.__main__ import main
from clusterlob.tape.readers import detect_reader
from clusterlob.tape.readers.base import IncrementGuess

from conftest import DATA, shared_file

TRADES_CSV = DATA / "tardis" / "trades_tiny.csv"
BOOK_CSV = DATA / "tardis" / "book_snapshot_5_tiny.csv"
PQ = DATA / "parquet"
POINTLINE = dict(price_increment=0.1, amount_increment=0.001)

# the fixture trades in local-time order (trade 5006 was received before 5005)
EXPECTED_IDS = [5001, 5002, 5003, 5004, 5006, 5005, 5006]
EXPECTED_SIDE = [1, -1, -1, 0, 1, 1, -1]
EXPECTED_PRICE = [60000.1, 60000.0, 59999.9, 60000.0, 60000.2, 60000.2, 60000.1]


def check_tiny_trades(tape):
    tr = tape.trades
    np.testing.assert_array_equal(tr.trade_id, EXPECTED_IDS)
    np.testing.assert_array_equal(tr.side, EXPECTED_SIDE)
    np.testing.assert_allclose(tr.price, EXPECTED_PRICE, rtol=0, atol=1e-9)
    assert tr.side.dtype == np.int8 and tr.ts_local_us.dtype == np.int64
    assert tr.ts_local_us[0] == 1714607999901500 and tr.ts_exch_us[0] == 1714607999900000
    assert tape.days == ["2024-05-01", "2024-05-02"]


def check_tiny_book(tape):
    bk = tape.book
    assert len(bk) == 4 and bk.levels >= 5
    np.testing.assert_allclose(bk.ask_px[0, :5], [60000.1, 60000.2, 60000.3, 60000.4, 60000.5], atol=1e-9)
    np.testing.assert_allclose(bk.bid_sz[0, :5], [2.5, 0.4, 1.0, 0.9, 2.2], atol=1e-9)
    assert np.isnan(bk.bid_px[1, 4]) and np.isnan(bk.bid_sz[1, 4])  # the missing fifth bid level
    assert bk.bid_px[1, 0] == pytest.approx(59999.8)


@pytest.mark.parametrize("trades_file", [TRADES_CSV, TRADES_CSV.with_suffix(".csv.gz"), PQ / "trades_flat.parquet",
                                         PQ / "pointline_trades.parquet"])
def test_every_trades_format_gives_the_same_tape(tmp_path, trades_file):
    res = convert([trades_file], tmp_path / "t", **POINTLINE)
    tape = read_tape(tmp_path / "t")
    check_tiny_trades(tape)
    assert tape.instrument.tick_size == pytest.approx(0.1) and tape.instrument.lot_size == pytest.approx(0.001)
    assert res.manifest["summary"]["duplicate_trade_ids"] == 1
    assert res.manifest["summary"]["out_of_order_trades_sorted"] == 1


@pytest.mark.parametrize("book_file", [BOOK_CSV, PQ / "book_flat.parquet", PQ / "pointline_book.parquet"])
def test_every_book_format_gives_the_same_tape(tmp_path, book_file):
    convert([book_file], tmp_path / "t", **POINTLINE)
    check_tiny_book(read_tape(tmp_path / "t"))


def test_trades_and_book_combine_into_one_tape(tmp_path):
    res = convert([TRADES_CSV, BOOK_CSV], tmp_path / "t", tick_size=0.1, lot_size=0.001)
    tape = read_tape(tmp_path / "t")
    assert [d["trades"] for d in res.manifest["days"]] == [3, 4]
    assert [d["book"] for d in res.manifest["days"]] == [2, 2]
    assert tape.instrument.symbol == "BTCUSDT" and tape.instrument.exchange == "binance-futures"
    assert res.report.total("flagged") == {"unknown aggressor side (kept; excluded from features and OFI)": 1}


def test_detection_is_by_content_not_name(tmp_path):
    renamed = tmp_path / "data.bin"
    renamed.write_bytes(TRADES_CSV.read_bytes())
    assert detect_reader(renamed).__name__ == "TardisTradesReader"
    assert detect_reader(PQ / "pointline_book.parquet").__name__ == "PointlineBookReader"
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(TapeError, match="unrecognised format .*'a,b,c'"):
        detect_reader(other)


def test_real_tardis_book_snapshot_25(tmp_path):
    path = shared_file("tardis", "binance-futures_book_snapshot_25_BTCUSDT.csv")
    res = convert([path], tmp_path / "t")
    tape = read_tape(tmp_path / "t")
    assert len(tape.book) == 10 and tape.book.levels == 25
    assert tape.instrument.symbol == "BTCUSDT"
    assert np.all(tape.book.bid_px[:, 0] < tape.book.ask_px[:, 0])
    assert np.all(np.diff(tape.book.ask_px, axis=1) > 0) and np.all(np.diff(tape.book.bid_px, axis=1) < 0)
    assert res.report.total("dropped") == {}
    assert tape.days == ["2020-09-01"]


def test_real_tardis_trades_with_text_ids(tmp_path):
    path = shared_file("tardis", "bitmex_trades_XBTUSD.csv")
    convert([path], tmp_path / "t", tick_size=0.5, lot_size=1)
    tape = read_tape(tmp_path / "t")
    assert len(tape.trades) == 10 and tape.trades.trade_id.dtype == object
    assert tape.trades.trade_id[0] == "ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf"
    assert np.all(tape.trades.side == -1) and tape.trades.amount[0] == 2152
    assert tape.instrument.exchange == "bitmex" and tape.instrument.tick_size == 0.5


def test_increment_guess():
    g = IncrementGuess()
    g.update(np.round(60000 + np.arange(30) * 0.5, 1))
    assert g.value == 0.5
    g.update(np.array([60000.1]))
    assert g.value == 0.1
    few = IncrementGuess()
    few.update(np.array([8531.5]))
    assert not few.reliable and few.value == 0.1


def test_convert_cli_prints_summary_and_json(tmp_path, capsys):
    assert main([str(TRADES_CSV), str(BOOK_CSV), "--out", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "2024-05-01" in out and "duplicate trade ids (kept): 1" in out
    assert main([str(TRADES_CSV), "--out", str(tmp_path / "j"), "--json"]) == 0
    import json
    doc = json.loads(capsys.readouterr().out)
    assert doc["manifest"]["totals"]["trades"] == 7
