"""Binance stream recordings: the compiled book against a dict twin, the line scanner against
json, hand-written fixtures (sync, gaps, bad input), and the real 5.7-minute BTCUSDT recording."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from clusterlob.convert.__main__ import main as convert_main
from clusterlob.errors import TapeError
from clusterlob.tape.readers import ReaderOptions, detect_reader
from clusterlob.tape.readers.binance import BinanceReader, DepthSync, L2Book, iter_messages
from clusterlob.tape.readers.binance_book import parse_levels
from clusterlob.tape import Book, Trades, read_tape
from clusterlob.tape.validate import FileReport

from conftest import ROOT, SHARED_DATA  # noqa: E402
from twins.binance import DictBook  # noqa: E402

FIXTURES = ROOT / "data" / "binance"
REAL = SHARED_DATA / "binance-futures" / "btcusdt_20240808.gz"


def read(path, fast: bool = True, on_apply=None, **options):
    """(trades, book, reader, report) of one recording."""
    report = FileReport(str(path), BinanceReader.format_name)
    reader = BinanceReader(path, ReaderOptions(**options), report)
    reader._fast = fast
    reader.on_depth_applied = on_apply
    parts = list(reader.batches())
    trades = Trades.concat([p for p in parts if isinstance(p, Trades)])
    book = Book.concat([p for p in parts if isinstance(p, Book)])
    return trades, book, reader, report


# -- the compiled book against a plain-Python twin -------------------------------------------

def test_book_hand_example():
    book = L2Book()
    book.reset([["100.0", "1"], ["99.5", "2"]], [["100.5", "3"]])
    book.apply([["99.5", "0"], ["99.8", "4"], ["98.0", "0"]], [["100.2", "1.5"]])
    top = book.top(3)
    np.testing.assert_array_equal(top[0], [100.0, 99.8, np.nan])
    np.testing.assert_array_equal(top[1], [1.0, 4.0, np.nan])
    np.testing.assert_array_equal(top[2], [100.2, 100.5, np.nan])
    np.testing.assert_array_equal(top[3], [1.5, 3.0, np.nan])
    assert book.best() == (100.0, 1.0, 100.2, 1.5)
    assert book.depth == (2, 2) and not book.crossed()
    book.apply([["100.3", "1"]], [])
    assert book.crossed()


@pytest.mark.parametrize("seed", range(6))
def test_book_matches_dict_twin(seed):
    rng = np.random.default_rng(seed)
    book, twin = L2Book(), DictBook()
    span = int(rng.integers(20, 3000))          # few levels (one block) to many (hundreds of blocks)
    for step in range(120):
        sides = []
        for _ in range(2):
            n = int(rng.integers(0, 90))
            prices = rng.integers(10_000, 10_000 + span, n) / 10
            qty = np.where(rng.random(n) < 0.35, 0, rng.integers(1, 5000, n) / 1000)
            sides.append([[f"{p:.2f}", f"{q:.3f}"] for p, q in zip(prices, qty)])
        reset = step == 0 or rng.random() < 0.03
        (book.reset if reset else book.apply)(*sides)
        twin.apply(*sides, reset=reset)
        np.testing.assert_array_equal(book.top(25), twin.top(25))
        assert book.depth == tuple(len(s) for s in twin.sides)


def test_book_prices_parse_exactly_like_float():
    rng = np.random.default_rng(11)
    texts = [f"{rng.integers(0, 10**9)}.{rng.integers(0, 10**d):0{d}d}" for d in rng.integers(1, 7, 500)]
    texts += ["5", "0.1", "61800.30", "1e3", "00012.50", "123456789012345678.5"]  # the last two need float()
    book = L2Book()
    book.reset([[t, "1"] for t in texts if float(t) > 0], [])
    expected = sorted({float(t) for t in texts if float(t) > 0}, reverse=True)
    np.testing.assert_array_equal(book.top(len(expected))[0], expected)


@pytest.mark.parametrize("bad", [[["1.0"]], [["abc", "1"]], [["1.0", "-1"]], [["0", "1"]], [["nan", "1"]], ["x"]])
def test_book_rejects_bad_levels_and_stays_unchanged(bad):
    book = L2Book()
    book.reset([["100", "1"]], [["101", "1"]])
    with pytest.raises(ValueError, match="level"):
        book.apply([["100", "5"]] + bad, [])
    assert book.best() == (100.0, 1.0, 101.0, 1.0)


# -- the sync rules -------------------------------------------------------------------------

def test_sync_rejects_a_stale_snapshot_and_waits_for_the_next():
    bad = []
    sync = DepthSync(lambda line, msg: bad.append(line))
    assert not sync.diff(200, 210, 199, *parse_levels([["10", "1"]], [["11", "1"]]), 1, 1, 1)
    assert not sync.snapshot(150, *parse_levels([["10", "1"]], [["11", "1"]]), 2, 2)  # older than U=200
    assert sync.snapshots_unconnected == 1 and not sync.synced
    assert sync.snapshot(205, *parse_levels([["10", "2"]], [["11", "2"]]), 3, 3)       # 200 <= 205 <= 210
    assert sync.synced and sync.last_u == 210 and sync.book.best() == (10.0, 1.0, 11.0, 1.0)
    assert sync.diff(211, 215, 210, *parse_levels([], [["11", "0"], ["12", "3"]]), 4, 4, 4)
    assert sync.book.best() == (10.0, 1.0, 12.0, 3.0) and sync.applied == 2 and not bad
    assert not sync.diff(220, 225, 219, *parse_levels([], []), 5, 5, 5)                # pu 219 != 215
    assert not sync.synced and sync.gap.last_u == 215 and sync.gap.next_pu == 219


def test_parse_levels_and_apply_levels_match_lists():
    levels, n_bids = parse_levels([["100.5", "1"], ["99", "0"]], [["101.25", "2.5"]])
    np.testing.assert_array_equal(levels, [[100.5, 99.0, 101.25], [1.0, 0.0, 2.5]])
    assert n_bids == 2
    a, b = L2Book(), L2Book()
    a.reset_levels(levels, n_bids)
    b.reset([["100.5", "1"], ["99", "0"]], [["101.25", "2.5"]])
    np.testing.assert_array_equal(a.top(3), b.top(3))
    with pytest.raises(ValueError, match="price > 0"):
        a.apply_levels(np.array([[0.0], [1.0]]), 1)


# -- fixtures ---------------------------------------------------------------------------------

def test_normal_sync_fixture_by_hand():
    trades, book, reader, report = read(FIXTURES / "normal_sync.txt")
    s = reader.summary
    assert s.messages["depthUpdate"] == 4 and s.messages["snapshot"] == 1 and s.messages["trade"] == 2
    assert s.diffs_applied == 3 and s.diffs_not_applied_before_sync == 1 and not s.gaps
    # the stale diff (u=105 < 110) is dropped; the one straddling 110 is applied when the REST
    # snapshot arrives: one row at the snapshot line's local time, with that diff's T
    np.testing.assert_array_equal(book.ts_local_us, [1723161255030000, 1723161255050000, 1723161255070000])
    np.testing.assert_array_equal(book.ts_exch_us, [1723161256020000, 1723161256050000, 1723161256070000])
    np.testing.assert_array_equal(book.bid_px[:, :3], [[100.0, 99.9, 99.8], [100.05, 100.0, 99.9],
                                                       [100.05, 100.0, 99.9]])
    np.testing.assert_array_equal(book.bid_sz[0, :3], [1.2, 2.0, 3.0])
    np.testing.assert_array_equal(book.ask_px[:, :2], [[100.2, 100.3], [100.2, 100.3], [100.3, np.nan]])
    assert book.levels == 25 and np.isnan(book.bid_px[:, 4:]).all() and np.isnan(book.bid_px[0, 3])
    np.testing.assert_array_equal(trades.ts_exch_us, [1723161256010000, 1723161256060000])
    np.testing.assert_array_equal(trades.ts_local_us, [1723161255010000, 1723161255060000])
    np.testing.assert_array_equal(trades.side, [1, -1])                 # m false: buy taker
    np.testing.assert_array_equal(trades.trade_id, [501, 502])
    np.testing.assert_array_equal(trades.price, [100.10, 100.05])
    assert reader.exchange == "binance-futures" and reader.symbol == "BTCUSDT"
    assert report.rows_read == 8 and report.book_kept == 3 and report.trades_kept == 2


def test_sequence_gaps_are_reported_and_resynced():
    trades, book, reader, report = read(FIXTURES / "sequence_gap.txt")
    gaps = reader.summary.gaps
    assert [(g.start_line, g.end_line, g.last_u, g.next_pu, g.diffs_not_applied) for g in gaps] == \
        [(4, 7, 115, 118, 1), (9, None, 130, 139, 1)]
    assert gaps[0].end_ts_local_us == 1723161255060000
    # rows: two before the gap, one at the re-sync (REST line 7), one after; none from the broken book
    np.testing.assert_array_equal(book.ts_local_us, [1723161255010000, 1723161255020000,
                                                     1723161255060000, 1723161255070000])
    np.testing.assert_array_equal(book.bid_px[2, :3], [100.0, 99.7, np.nan])   # line 6 removed 99.90
    assert report.flagged["sequence gaps in the depth stream"] == 2
    assert any("sequence gap 2" in k and "end of file" in k for k in report.flagged)
    assert len(trades) == 1


def test_depth_without_any_snapshot_is_an_error():
    with pytest.raises(TapeError, match="no REST depth snapshot.*cannot be built without one"):
        read(FIXTURES / "no_snapshot.txt")


def test_malformed_line_error_names_the_line_or_is_skipped():
    with pytest.raises(TapeError, match=r"line 3: malformed JSON"):
        read(FIXTURES / "malformed.txt")
    trades, book, reader, report = read(FIXTURES / "malformed.txt", skip_bad=True)
    assert reader.summary.messages["malformed"] == 2          # truncated JSON, bad time prefix
    assert report.dropped["malformed lines (skipped)"] == 2
    np.testing.assert_array_equal(trades.trade_id, [501, 504])
    assert len(book) == 1


def test_mixed_symbols_need_a_choice():
    with pytest.raises(TapeError, match=r"several symbols \(BTCUSDT, ETHUSDT\); choose one with --symbol"):
        read(FIXTURES / "mixed_symbols.txt")
    trades, book, reader, report = read(FIXTURES / "mixed_symbols.txt", symbol="btcusdt")
    np.testing.assert_array_equal(trades.trade_id, [501, 502])
    assert len(book) == 1 and reader.summary.messages["other_symbol"] == 3
    trades, book, reader, _ = read(FIXTURES / "mixed_symbols.txt", symbol="ETHUSDT")
    np.testing.assert_array_equal(trades.trade_id, [9001, 9002])
    assert len(book) == 0 and reader.symbol == "ETHUSDT"
    with pytest.raises(TapeError, match="no messages for symbol XRPUSDT"):
        read(FIXTURES / "mixed_symbols.txt", symbol="XRPUSDT")


def test_unknown_and_partial_depth_streams_are_counted_and_ignored():
    trades, book, reader, report = read(FIXTURES / "unknown_streams.txt")
    assert reader.summary.unknown_streams == {"subscription reply": 1, "btcusdt@depth20@100ms": 1,
                                              "btcusdt@kline_1m": 1}
    assert report.dropped["messages of unknown or unsupported streams (ignored)"] == 3
    # the mark price stream is read into the funding table (tests/test_readers_formats.py)
    assert reader.summary.messages["markPriceUpdate"] == 1
    assert len(trades) == 1 and len(book) == 1 and reader.summary.diffs_applied == 1


def test_non_market_trades_dropped_by_default_and_kept_on_request():
    trades, _, reader, report = read(FIXTURES / "non_market.txt")
    np.testing.assert_array_equal(trades.trade_id, [501, 503])
    assert reader.summary.non_market_trades == {"INSURANCE_FUND": 1, "ADL": 1}
    assert report.dropped["non-market trades (X = ADL)"] == 1
    trades, _, _, report = read(FIXTURES / "non_market.txt", keep_non_market=True)
    np.testing.assert_array_equal(trades.trade_id, [501, 502, 503, 504])
    np.testing.assert_array_equal(trades.side, [1, -1, -1, 1])
    assert report.flagged["non-market trades kept (X = INSURANCE_FUND)"] == 1


def test_bare_payloads_aggtrades_and_gzip(tmp_path):
    plain = FIXTURES / "bare_payloads.txt"
    packed = tmp_path / "bare.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        trades, book, reader, _ = read(path)
        np.testing.assert_array_equal(trades.trade_id, [7001, 7002])    # aggTrade ids from `a`
        np.testing.assert_array_equal(trades.side, [1, -1])
        np.testing.assert_array_equal(book.ts_local_us, [1723161255010000, 1723161255050000])
        np.testing.assert_array_equal(book.bid_sz[:, 0], [1.2, 0.6])
        assert reader.summary.messages["aggTrade"] == 2 and reader.summary.messages["bookTicker"] == 1


def test_trade_messages_win_over_aggtrades(tmp_path):
    lines = (FIXTURES / "bare_payloads.txt").read_text().splitlines()
    trade = (FIXTURES / "normal_sync.txt").read_text().splitlines()[1]
    path = tmp_path / "both.txt"
    path.write_text("\n".join(lines[:3] + [trade] + lines[3:]) + "\n")
    trades, _, _, report = read(path)
    np.testing.assert_array_equal(trades.trade_id, [501])
    assert report.dropped["aggTrade messages (the file also has trade messages, used instead)"] == 2


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(TapeError, match="cannot open"):
        list(iter_messages(tmp_path / "absent.gz"))


def test_truncated_gzip_is_an_error(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress((FIXTURES / "normal_sync.txt").read_bytes())[:-30])
    with pytest.raises(TapeError, match="gzip stream is truncated or corrupt"):
        read(path)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.txt")))
def test_scanner_matches_the_json_path_on_fixtures(name):
    options = {"symbol": "BTCUSDT"} if name == "mixed_symbols.txt" else {}
    options["skip_bad"] = True
    try:
        fast = read(FIXTURES / name, True, **options)
    except TapeError as exc:
        with pytest.raises(TapeError, match=str(exc).split(": ", 1)[1][:40]):
            read(FIXTURES / name, False, **options)
        return
    slow = read(FIXTURES / name, False, **options)
    _assert_same(fast, slow)


def _assert_same(a, b):
    for k, v in a[0].columns().items():
        np.testing.assert_array_equal(v, b[0].columns()[k])
    for k in ("ts_exch_us", "ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(a[1], k), getattr(b[1], k))
    assert a[2].summary.to_dict() == b[2].summary.to_dict()
    assert a[3].to_dict() == b[3].to_dict()


def test_detection_and_convert_end_to_end(tmp_path, capsys):
    assert detect_reader(FIXTURES / "normal_sync.txt") is BinanceReader
    tardis = ROOT / "data" / "tardis" / "trades_tiny.csv"
    if tardis.exists():
        assert detect_reader(tardis) is not BinanceReader
    out = tmp_path / "tape"
    assert convert_main([str(FIXTURES / "normal_sync.txt"), "--out", str(out), "--tick-size", "0.05"]) == 0
    tape = read_tape(out)
    assert len(tape.trades) == 2 and len(tape.book) == 3 and tape.book.levels == 25
    assert tape.instrument.exchange == "binance-futures" and tape.instrument.symbol == "BTCUSDT"
    assert convert_main([str(FIXTURES / "no_snapshot.txt"), "--out", str(tmp_path / "t2")]) == 2
    assert "cannot be built without one" in capsys.readouterr().err
    assert not (tmp_path / "t2").exists()


# -- the real recording -----------------------------------------------------------------------

needs_real = pytest.mark.skipif(not REAL.exists(), reason=f"real recording {REAL} is absent")


@pytest.fixture(scope="module")
def real():
    if not REAL.exists():
        pytest.skip(f"real recording {REAL} is absent")
    applied = []
    crossed = []

    def on_apply(u, book):
        applied.append((u,) + book.best())
        crossed.append(book.crossed())

    trades, book, reader, report = read(REAL, on_apply=on_apply)
    return trades, book, reader, report, applied, crossed


@pytest.fixture(scope="module")
def real_messages():
    """bookTicker values by update id, and trade fields by trade id, read with json."""
    if not REAL.exists():
        pytest.skip(f"real recording {REAL} is absent")
    tickers, trade_fields = {}, {}
    for m in iter_messages(REAL):
        d = m.data
        if d.get("e") == "bookTicker":
            tickers[d["u"]] = (float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]))
        elif d.get("e") == "trade":
            trade_fields[d["t"]] = (d["m"], d["T"] * 1000, m.ts_local_ns // 1000)
    return tickers, trade_fields


@needs_real
def test_real_counts(real):
    trades, book, reader, report, applied, _ = real
    assert reader.summary.messages == {"trade": 21313, "aggTrade": 0, "depthUpdate": 6551,
                                       "bookTicker": 66089, "snapshot": 1, "unknown": 0,
                                       "other_symbol": 0, "malformed": 0}
    assert reader.summary.diffs_applied == 6547 == len(applied)
    assert reader.summary.diffs_not_applied_before_sync == 4 and reader.summary.gaps == []
    # 2 buffered diffs applied at the REST snapshot give one row, then one per live diff
    assert len(book) == 6546 and report.book_kept == 6546 and not report.dropped
    assert len(trades) == 21313 and report.rows_read == 93954


@needs_real
def test_real_book_never_crossed_and_agrees_with_book_ticker(real, real_messages):
    trades, book, reader, report, applied, crossed = real
    tickers = real_messages[0]
    assert not any(crossed)
    assert (book.bid_px[:, 0] < book.ask_px[:, 0]).all()
    assert (np.diff(book.bid_px, axis=1) < 0).all() and (np.diff(book.ask_px, axis=1) > 0).all()
    shared = [(row[1:], tickers[row[0]]) for row in applied if row[0] in tickers]
    agree = sum(ours == theirs for ours, theirs in shared)
    assert len(shared) == 629
    assert agree / len(shared) == 1.0


@needs_real
def test_real_trade_fields_agree_with_the_messages(real, real_messages):
    trades, maker = real[0], real_messages[1]
    assert len(maker) == len(trades)
    m_flags = np.array([maker[t][0] for t in trades.trade_id])
    np.testing.assert_array_equal(trades.side, np.where(m_flags, -1, 1))
    np.testing.assert_array_equal(trades.ts_exch_us, [maker[t][1] for t in trades.trade_id])
    np.testing.assert_array_equal(trades.ts_local_us, [maker[t][2] for t in trades.trade_id])
    # the local clock runs about 1.2 s behind the exchange clock in this file
    lag_s = np.median(trades.ts_exch_us - trades.ts_local_us) / 1e6
    assert 1.0 < lag_s < 1.5


@needs_real
def test_real_scanner_matches_the_json_path(real):
    _assert_same(real[:4], read(REAL, False))


@needs_real
def test_real_convert(tmp_path):
    out = tmp_path / "tape"
    assert convert_main([str(REAL), "--out", str(out), "--json"]) == 0
    tape = read_tape(out)
    assert tape.instrument.tick_size == pytest.approx(0.1) and tape.instrument.lot_size == pytest.approx(0.001)
    assert tape.instrument.exchange == "binance-futures" and tape.instrument.symbol == "BTCUSDT"
    assert len(tape.trades) == 21313 and len(tape.book) == 6546


def test_scanner_hands_back_long_or_odd_depth_lines(monkeypatch, tmp_path):
    import clusterlob.tape.readers.binance as binance

    reference = read(FIXTURES / "sequence_gap.txt", False)
    monkeypatch.setattr(binance, "_MAX_SCANNED_LEVELS", 1)   # diffs of 2+ levels go to json
    _assert_same(read(FIXTURES / "sequence_gap.txt"), reference)
    lines = (FIXTURES / "normal_sync.txt").read_text().splitlines()
    lines[5] = lines[5].replace('"100.05","0.500"', '"0.00","0.500"')   # a price of 0
    path = tmp_path / "zero_price.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TapeError, match=r"line 6: .*price > 0"):
        read(path)


def test_a_snapshot_that_never_connects_costs_no_diffs():
    sync = DepthSync(lambda line, msg: None)
    sync.diff(200, 210, 199, *parse_levels([["10", "1"]], []), 1, 1, 1)
    sync.snapshot(10**9, *parse_levels([["99", "1"]], [["100", "1"]]), 2, 2)   # e.g. another symbol's
    sync.diff(211, 215, 210, *parse_levels([["10", "2"]], []), 3, 3, 3)
    assert not sync.synced and len(sync.buffer) == 2
    assert sync.snapshot(205, *parse_levels([["10", "5"]], [["11", "1"]]), 4, 4)  # connects at U=200
    assert sync.snapshots_unconnected == 1 and sync.applied == 2
    assert sync.book.best() == (10.0, 2.0, 11.0, 1.0) and sync.not_applied_before_sync == 0


def _random_recording(rng, path):
    """A seeded recording mixing the scanner's shapes with variants it must hand to json:
    spaced JSON, long or integer decimals, other speeds, non-market trades, spot-like shapes."""
    def decimal(value, places):
        if rng.random() < 0.05:
            return f"{value:.{places}f}".rstrip("0").rstrip(".") or "0"    # "100", "100.5"
        if rng.random() < 0.03:
            return f"{value:.13f}"                                        # > 15 digits: float()
        return f"{value:.{places}f}"

    def dump(obj):
        spaced = rng.random() < 0.1
        return json.dumps(obj, separators=(", ", ": ") if spaced else (",", ":"))

    lines, ts_ns, ts_ms, update_id, trade_id = [], 1723161255000000000, 1723161256000, 1000, 1
    price = 100.0
    mid_levels = [round(price + k / 10, 1) for k in range(-40, 41)]
    def snapshot(last_update_id):
        return {"lastUpdateId": last_update_id,
                "bids": [[decimal(p, 2), "1.000"] for p in mid_levels if p < price],
                "asks": [[decimal(p, 2), "1.000"] for p in mid_levels if p >= price + 0.1]}

    lines.append((ts_ns, snapshot(update_id + 3)))
    for _ in range(400):
        ts_ns += int(rng.integers(1, 5_000_000))
        ts_ms += int(rng.integers(0, 5))
        kind = rng.choice(["bookTicker", "trade", "depth", "snapshot"], p=[0.5, 0.28, 0.2, 0.02])
        if kind == "snapshot":                      # re-syncs the book after a gap
            lines.append((ts_ns, snapshot(update_id + 1)))
            continue
        if kind == "bookTicker":
            data = {"e": "bookTicker", "u": update_id, "s": "BTCUSDT", "b": decimal(price, 2), "B": "1.500",
                    "a": decimal(price + 0.1, 2), "A": "2.250", "T": ts_ms, "E": ts_ms + 1}
            stream = "btcusdt@bookTicker"
        elif kind == "trade":
            x = "MARKET" if rng.random() < 0.9 else str(rng.choice(["ADL", "INSURANCE_FUND"]))
            data = {"e": "trade", "E": ts_ms + 1, "T": ts_ms, "s": "BTCUSDT", "t": trade_id,
                    "p": decimal(price + rng.integers(-3, 4) / 10, 2),
                    "q": decimal(rng.integers(1, 5000) / 1000, 3), "X": x, "m": bool(rng.random() < 0.5)}
            trade_id += 1
            stream = "btcusdt@trade"
        else:
            first = update_id + 1
            update_id += int(rng.integers(1, 50))
            sides = []
            for _side in range(2):
                n = int(rng.integers(0, 12))
                sides.append([[decimal(p, 2), decimal(q, 3)] for p, q in zip(
                    np.round(price + rng.integers(-40, 41, n) / 10, 1),
                    np.where(rng.random(n) < 0.3, 0.0, rng.integers(1, 3000, n) / 1000))])
            # keep the book uncrossed: bids below the mid, asks above
            sides[0] = [lv for lv in sides[0] if float(lv[0]) < price]
            sides[1] = [lv for lv in sides[1] if float(lv[0]) > price]
            data = {"e": "depthUpdate", "E": ts_ms + 1, "T": ts_ms, "s": "BTCUSDT", "U": first,
                    "u": update_id, "pu": first - 1 if rng.random() > 0.02 else first - 7,
                    "b": sides[0], "a": sides[1]}
            stream = "btcusdt@depth" + str(rng.choice(["@0ms", "@100ms", ""]))
        lines.append((ts_ns, {"stream": stream, "data": data} if rng.random() > 0.05 else data))
    path.write_text("".join(f"{t} {dump(obj)}\n" for t, obj in lines))


@pytest.mark.parametrize("seed", range(8))
def test_scanner_matches_the_json_path_on_random_recordings(seed, tmp_path):
    path = tmp_path / "random.txt"
    _random_recording(np.random.default_rng(seed), path)
    fast, slow = read(path, True), read(path, False)
    _assert_same(fast, slow)
    assert len(fast[0]) > 0 and len(fast[1]) > 0
    scanned = fast[2]._scanner.lines
    assert 0 < scanned < fast[3].rows_read          # both paths were exercised
