"""Recordings that span many files: folders and globs, ordering by first receive time, the
book carried over file boundaries (Binance futures and spot, Tardis incremental), gaps
between files naming both, mixed symbols or streams refused, and the command as a user
runs it."""
from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from clusterlob.errors import TapeError
from clusterlob.tape import read_tape
from clusterlob.tape.convert import convert
from clusterlob.tape.readers.streams import expand_inputs, peek, plan_streams
from clusterlob.tape.readers import detect_reader

from conftest import DATA, ROOT, shared_file

STREAM = DATA / "binance_stream"
STREAM_GAP = DATA / "binance_stream_gap"
SPOT = DATA / "binance_spot"
INCREMENTAL = DATA / "tardis_l2" / "incremental_book_L2_tiny.csv"


def top(book, row):
    out = []
    for px, sz in ((book.bid_px, book.bid_sz), (book.ask_px, book.ask_sz)):
        keep = np.isfinite(px[row])
        out.append(list(zip(px[row][keep].tolist(), sz[row][keep].tolist())))
    return tuple(out)


def flags_of(result, name):
    (f,) = [f for f in result.report.files if f.path.endswith(name)]
    return f


def test_a_binance_recording_rotated_at_midnight_is_one_stream(tmp_path):
    day1, day2 = sorted(STREAM.iterdir())
    # given in reverse order: they are read by first receive time
    result = convert([day2, day1], tmp_path / "tape", tick_size=0.01, lot_size=0.001)
    tape = read_tape(tmp_path / "tape")
    assert [d["date"] for d in result.manifest["days"]] == ["2024-05-01", "2024-05-02"]
    assert [(d["trades"], d["book"]) for d in result.manifest["days"]] == [(1, 2), (1, 2)]
    book = tape.book
    assert top(book, 0) == ([(100.0, 1.2), (99.9, 2.0)], [(100.1, 1.5), (100.2, 2.5)])
    assert top(book, 1) == ([(100.05, 0.5), (100.0, 1.2), (99.9, 2.0)], [(100.1, 1.5), (100.2, 2.5)])
    # the first update of the second file continues the first file's book (pu 115 == u 115)
    assert top(book, 2) == ([(100.05, 0.5), (100.0, 1.2), (99.9, 2.0)], [(100.1, 1.5)])
    assert top(book, 3) == ([(100.05, 0.5), (100.0, 1.2)], [(100.1, 1.5)])
    assert tape.trades.trade_id.tolist() == [501, 502]
    second = flags_of(result, day2.name)
    assert second.book_kept == 2 and not any("gap" in r for r in second.flagged)
    assert result.manifest["summary"]["streams"] == [
        {"format": "binance stream recording", "files": [str(day1), str(day2)]}]


def test_a_break_between_files_is_a_gap_naming_both_files(tmp_path):
    result = convert([STREAM_GAP], tmp_path / "tape", tick_size=0.01, lot_size=0.001)
    day1, day2 = sorted(STREAM_GAP.iterdir())
    second = flags_of(result, day2.name)
    (gap,) = [r for r in second.flagged if r.startswith("depth updates not applied in sequence gap")]
    assert f"{day1.name} ends at u=115" in gap and f"{day2.name} starts with pu=117" in gap
    assert second.flagged[gap] == 2 and second.flagged["sequence gaps in the depth stream"] == 1
    assert second.book_kept == 0                       # out of sync to the end: nothing written
    assert [d["book"] for d in result.manifest["days"]] == [2, 0]


def test_spot_diffs_carry_over_files_with_u_plus_one(tmp_path):
    result = convert([SPOT], tmp_path / "tape", tick_size=0.01, lot_size=0.1)
    book = read_tape(tmp_path / "tape").book
    assert result.manifest["instrument"]["exchange"] == "binance"
    # the diff with u 200 <= lastUpdateId is dropped; 201..203 connects (U <= 201 <= u)
    assert top(book, 0) == ([(100.0, 1.5), (99.99, 2.0)], [(100.01, 1.5), (100.02, 3.0)])
    # the next file's 204..206 continues (U == 203 + 1)
    assert top(book, 1) == ([(100.0, 1.5), (99.99, 2.0)], [(100.02, 3.0)])
    assert len(book) == 2


def split_lines(path, out_dir, cut: int, gz: bool):
    lines = (gzip.open(path, "rb") if gz else open(path, "rb")).read().splitlines(keepends=True)
    out_dir.mkdir()
    parts = []
    for k, chunk in enumerate((lines[:cut], lines[cut:])):
        p = out_dir / f"part{k}.txt{'.gz' if gz else ''}"
        p.write_bytes(gzip.compress(b"".join(chunk), compresslevel=1) if gz else b"".join(chunk))
        parts.append(p)
    return parts


def assert_same_tape(a, b):
    ta, tb = read_tape(a), read_tape(b)
    for name in ("ts_exch_us", "ts_local_us", "price", "amount", "side", "trade_id"):
        np.testing.assert_array_equal(getattr(ta.trades, name), getattr(tb.trades, name))
    for name in ("ts_exch_us", "ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(ta.book, name), getattr(tb.book, name))


def test_the_real_recording_split_in_two_files_converts_exactly_as_one(tmp_path):
    real = shared_file("binance-futures", "btcusdt_20240808.gz")
    head = tmp_path / "head.txt.gz"            # the first 30,000 lines (2 of the 5.7 minutes)
    with gzip.open(real, "rb") as f:
        head.write_bytes(gzip.compress(b"".join(f.readline() for _ in range(30_000)), compresslevel=1))
    parts = split_lines(head, tmp_path / "parts", 15_000, gz=True)   # the second file has no snapshot
    convert([head], tmp_path / "one")
    result = convert([str(tmp_path / "parts" / "*.gz")], tmp_path / "two")
    assert_same_tape(tmp_path / "one", tmp_path / "two")
    assert [f.path for f in result.report.files] == [str(p) for p in parts]
    assert [f.book_kept > 500 for f in result.report.files] == [True, True]
    assert not any("gap" in r for f in result.report.files for r in f.flagged)


def test_tardis_incremental_files_share_one_book(tmp_path):
    parts = split_lines(INCREMENTAL, tmp_path / "parts", 8, gz=False)
    header = INCREMENTAL.read_text().splitlines(keepends=True)[0]
    parts[1].write_text(header + parts[1].read_text())
    convert([INCREMENTAL], tmp_path / "one", tick_size=0.1, lot_size=0.1)
    result = convert([tmp_path / "parts"], tmp_path / "two", tick_size=0.1, lot_size=0.1)
    assert_same_tape(tmp_path / "one", tmp_path / "two")
    assert [f.book_kept for f in result.report.files] == [1, 3]


def test_expand_inputs_and_first_receive_time(tmp_path):
    day1, day2 = sorted(STREAM.iterdir())
    assert expand_inputs([STREAM]) == [day1, day2]
    assert expand_inputs([str(STREAM / "*05-02*"), day2]) == [day2]
    with pytest.raises(TapeError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.gz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TapeError, match="holds no files"):
        expand_inputs([tmp_path / "empty"])
    assert peek(day2, detect_reader(day2)) == (1714608000100000, "BTCUSDT")
    assert peek(INCREMENTAL, detect_reader(INCREMENTAL)) == (1714521600100000, "BTCUSDT")


def test_mixed_symbols_or_mixed_book_streams_are_one_line_errors(tmp_path):
    eth = tmp_path / "eth.txt"
    eth.write_text((STREAM / "btcusdt_2024-05-02.txt").read_text().replace("BTCUSDT", "ETHUSDT"))
    readers = [(p, detect_reader(p)) for p in [STREAM / "btcusdt_2024-05-01.txt", eth]]
    with pytest.raises(TapeError, match=r"disagree on the symbol: BTCUSDT, ETHUSDT \(BTCUSDT: "
                                        r"btcusdt_2024-05-01.txt; ETHUSDT: eth.txt\); choose one with --symbol"):
        plan_streams(readers)
    assert len(plan_streams(readers, symbol="BTCUSDT")) == 1
    quotes = DATA / "tardis_l2" / "quotes_tiny.csv"
    with pytest.raises(TapeError, match="mix book streams of different formats: tardis incremental_book_L2"):
        convert([INCREMENTAL, quotes], tmp_path / "tape")
    assert not (tmp_path / "tape").exists()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "clusterlob.convert", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_convert_command_on_a_folder_and_on_mixed_symbols(tmp_path):
    proc = run_cli(STREAM, "--out", tmp_path / "tape", "--tick-size", "0.01", "--lot-size", "0.001")
    assert proc.returncode == 0, proc.stderr
    assert "binance stream recording: 2 files read as one stream" in proc.stderr
    assert "[1/2] btcusdt_2024-05-01.txt" in proc.stderr and "[2/2] btcusdt_2024-05-02.txt" in proc.stderr
    assert "2024-05-02" in proc.stdout
    eth = tmp_path / "eth.txt"
    eth.write_text((STREAM / "btcusdt_2024-05-02.txt").read_text().replace("BTCUSDT", "ETHUSDT"))
    proc = run_cli(STREAM / "btcusdt_2024-05-01.txt", eth, "--out", tmp_path / "mixed")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: inputs disagree on the symbol")
    proc = run_cli(DATA / "binance_depth" / "depth_tiny.csv", "--out", tmp_path / "coin")
    assert proc.returncode == 2 and "--contract-size" in proc.stderr and "Traceback" not in proc.stderr


def test_a_coin_m_recording_is_inverse_and_needs_a_contract_size(tmp_path):
    coin = tmp_path / "coin"
    coin.mkdir()
    for f in STREAM.iterdir():
        (coin / f.name).write_text(f.read_text().replace("BTCUSDT", "BTCUSD_PERP"))
    with pytest.raises(TapeError, match=r"BTCUSD_PERP is inverse .*\(--contract-size"):
        convert([coin], tmp_path / "a", tick_size=0.01, lot_size=0.001)
    result = convert([coin], tmp_path / "b", tick_size=0.01, lot_size=0.001, contract_size=100.0)
    inst = read_tape(tmp_path / "b").instrument
    assert (inst.exchange, inst.inverse, inst.contract_size) == ("binance-delivery", True, 100.0)
    assert "inverse contract of 100" in result.lines()[0]
