"""Every bad-input case of the tape layer: a one-line error naming file, column and value, or a count."""
import gzip

import pytest

from clusterlob import TapeError, read_tape
from clusterlob.convert import convert
from clusterlob.convert.__main__ import main
from clusterlob.tape.readers.tardis import book_columns

from conftest import DATA

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
T0 = 1714607999900000


def trades_file(tmp_path, rows, name="t.csv", header=HEADER):
    path = tmp_path / name
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def row(i, price="60000.1", amount="0.01", side="buy", symbol="BTCUSDT", ts=None):
    ts = T0 + 1000 * i if ts is None else ts
    return f"binance-futures,{symbol},{ts},{ts + 500},{100 + i},{side},{price},{amount}"


def book_file(tmp_path, books, levels=2):
    """books: list of (bids [(px, sz)...], asks [(px, sz)...])."""
    lines = [",".join(book_columns(levels))]
    for k, (bids, asks) in enumerate(books):
        cells = ["binance-futures", "BTCUSDT", str(T0 + 1000 * k), str(T0 + 1000 * k + 500)]
        for i in range(levels):
            for px_sz in (asks[i] if i < len(asks) else None, bids[i] if i < len(bids) else None):
                cells += [str(px_sz[0]), str(px_sz[1])] if px_sz else ["", ""]
        lines.append(",".join(cells))
    path = tmp_path / "b.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_missing_columns_are_listed(tmp_path):
    path = trades_file(tmp_path, ["binance-futures,BTCUSDT,1,2,3,buy,60000"],
                       header="exchange,symbol,timestamp,local_timestamp,id,side,price\n")
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    msg = one_line(e)
    assert "t.csv" in msg and "missing column `amount`" in msg and "found: exchange, symbol" in msg


def test_non_numeric_price_names_column_row_and_value(tmp_path):
    path = trades_file(tmp_path, [row(0), row(1, price="abc")])
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    msg = one_line(e)
    assert "t.csv" in msg and "column `price`" in msg and "'abc' at row 1" in msg


@pytest.mark.parametrize("bad, reason", [("nan", "non-finite `price`"), ("inf", "non-finite `price`"),
                                         ("-5", "`price` <= 0")])
def test_bad_prices_are_dropped_and_counted_or_fail_when_strict(tmp_path, bad, reason):
    path = trades_file(tmp_path, [row(0), row(1, price=bad), row(2)])
    res = convert([path], tmp_path / "out")
    assert res.report.total("dropped") == {reason: 1}
    assert res.report.files[0].first_row[reason] == 1
    assert len(read_tape(tmp_path / "out").trades) == 2
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "strict", strict=True)
    assert reason in one_line(e) and "row 1" in one_line(e)


@pytest.mark.parametrize("amount", ["0", "-0.5"])
def test_non_positive_amount_is_dropped_and_counted(tmp_path, amount):
    path = trades_file(tmp_path, [row(0), row(1, amount=amount)])
    res = convert([path], tmp_path / "out")
    assert res.report.total("dropped") == {"`amount` <= 0": 1}


def test_timestamps_in_milliseconds_are_explained(tmp_path):
    path = trades_file(tmp_path, [row(0, ts=1714607999900)])
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    msg = one_line(e)
    assert "implausible timestamp 1714607999900 at row 0" in msg and "milliseconds" in msg and "`timestamp`" in msg


def test_unknown_side_value_is_an_error(tmp_path):
    path = trades_file(tmp_path, [row(0, side="BUY"), row(1, side="short")])
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    assert "`side`" in one_line(e) and "'short'" in one_line(e) and "row 1" in one_line(e)


def test_crossed_locked_and_misordered_books_are_dropped_and_counted(tmp_path):
    good = ([(100.0, 1), (99.9, 1)], [(100.1, 1), (100.2, 1)])
    crossed = ([(100.2, 1), (100.1, 1)], [(100.1, 1), (100.3, 1)])
    locked = ([(100.1, 1), (100.0, 1)], [(100.1, 1), (100.2, 1)])
    asks_down = ([(100.0, 1), (99.9, 1)], [(100.1, 1), (100.05, 1)])
    bids_up = ([(100.0, 1), (100.05, 1)], [(100.1, 1), (100.2, 1)])
    zero_size = ([(100.0, 0), (99.9, 1)], [(100.1, 1), (100.2, 1)])
    empty_side = ([], [(100.1, 1), (100.2, 1)])
    path = book_file(tmp_path, [good, crossed, locked, asks_down, bids_up, zero_size, empty_side, good])
    res = convert([path], tmp_path / "out", tick_size=0.05, lot_size=1)
    assert res.report.total("dropped") == {
        "a crossed or locked book (best bid >= best ask)": 2,
        "asks not strictly ascending": 1,
        "bids not strictly descending": 1,
        "a level size that is not a finite number > 0": 1,
        "an empty side (no best bid or ask)": 1,
    }
    assert len(read_tape(tmp_path / "out").book) == 2
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "strict", strict=True, tick_size=0.05, lot_size=1)
    assert "crossed or locked" in one_line(e) and "row 1" in one_line(e)


@pytest.mark.parametrize("content", ["", HEADER])
def test_empty_input(tmp_path, content):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    assert "t.csv" in one_line(e) and "empty" in one_line(e)
    assert not (tmp_path / "out").exists()


def test_truncated_gzip_says_so(tmp_path):
    rows = [row(i) for i in range(20000)]
    data = gzip.compress((HEADER + "\n".join(rows) + "\n").encode())
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    msg = one_line(e)
    assert "t.csv.gz" in msg and "truncated" in msg
    assert not (tmp_path / "out").exists()


def test_several_symbols_need_a_choice(tmp_path):
    path = trades_file(tmp_path, [row(0), row(1, symbol="ETHUSDT"), row(2)])
    with pytest.raises(TapeError) as e:
        convert([path], tmp_path / "out")
    msg = one_line(e)
    assert "several symbols" in msg and "BTCUSDT, ETHUSDT" in msg and "--symbol" in msg
    res = convert([path], tmp_path / "out", symbol="BTCUSDT")
    assert res.report.total("dropped") == {"other symbols than BTCUSDT": 1}
    assert len(read_tape(tmp_path / "out").trades) == 2


def test_inputs_of_different_symbols_are_refused(tmp_path):
    a = trades_file(tmp_path, [row(0)], name="a.csv")
    b = trades_file(tmp_path, [row(1, symbol="ETHUSDT")], name="b.csv")
    with pytest.raises(TapeError, match="inputs disagree on the symbol: BTCUSDT, ETHUSDT"):
        convert([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pointline_needs_increments(tmp_path):
    with pytest.raises(TapeError, match="--price-increment"):
        convert([DATA / "parquet" / "pointline_trades.parquet"], tmp_path / "out")


def test_cli_user_errors_are_one_line_and_non_zero(tmp_path, capsys):
    assert main([str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: input") and "missing.csv does not exist" in err and "\n" not in err
    out = tmp_path / "o2"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main([str(DATA / "tardis" / "trades_tiny.csv"), "--out", str(out)]) == 2
    assert "already has keep.txt" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main([str(DATA / "tardis" / "trades_tiny.csv"), "--out", str(out), "--force"]) == 2
    assert "not a clusterlob output" in capsys.readouterr().err and (out / "keep.txt").exists()


def test_file_report_lines_group_thousands():
    """The conversion report writes counts like its day table: 93,954, not 93954."""
    from clusterlob.tape.validate import FileReport
    rep = FileReport("x.gz", "binance stream recording")
    rep.rows_read, rep.trades_kept, rep.book_kept = 93_954, 21_313, 6_546
    rep.flagged["bookTicker messages"] = 66_089
    assert rep.lines() == ["x.gz (binance stream recording): 93,954 rows read, 21,313 trades and "
                           "6,546 book snapshots kept", "  flagged: 66,089 rows, bookTicker messages"]


def test_symbol_matching_nothing_names_the_flag(tmp_path, capsys):
    """--symbol that no row has: say so (it used to read 'no valid prices or amounts')."""
    assert main([str(DATA / "tardis" / "trades_tiny.csv"), "--out", str(tmp_path / "t"), "--symbol", "FOO"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "error: `--symbol` FOO matches no row of the inputs (7 rows of other symbols dropped)"
    assert not (tmp_path / "t").exists()
