"""Seeded corruption fuzz of every reader (issue 21, point 4), and one test per traceback class
the issue's fuzzer found (each fixed at its root).

``CLUSTERLOB_FUZZ_MUTANTS=N`` runs N mutants instead of 1,000 (``CLUSTERLOB_FUZZ_FIRST`` the first
seed); ``python tests/fuzz_mutants.py N`` does the same outside pytest and prints the counts.
"""
from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clusterlob.errors import ClusterlobError
from clusterlob.tape.convert import convert
from clusterlob.tape.store import read_tape
from conftest import DATA
from fuzz_mutants import SEEDS, mutant, run

N_MUTANTS = int(os.environ.get("CLUSTERLOB_FUZZ_MUTANTS", "1000"))
FIRST = int(os.environ.get("CLUSTERLOB_FUZZ_FIRST", "0"))


def test_fuzz_every_reader(tmp_path):
    """Every mutant converts with counts that add up, or is refused in one line."""
    res = run(N_MUTANTS, FIRST, tmp_path)
    assert not res["failures"], (f"{len(res['failures'])} of {N_MUTANTS} mutants failed "
                                 f"(rerun one: fuzz_mutants.mutant(seed)):\n" + "\n".join(res["failures"][:20]))
    counts = res["counts"]
    assert counts["converted"] > N_MUTANTS // 10 and counts["refused"] > N_MUTANTS // 10, counts


def test_mutants_are_a_function_of_their_seed():
    assert mutant(12345) == mutant(12345)
    kinds = {s.kind for s in SEEDS}
    assert kinds == {"csv", "parquet", "binance"}
    picked = {mutant(i)[0] for i in range(400)}
    assert picked == {s.name for s in SEEDS}            # every seed file is mutated


# -- the traceback classes, one by one ---------------------------------------------------

def _one_line(exc_info, *words):
    msg = str(exc_info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def _parquet(tmp_path, table, name="x.parquet"):
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def _trades_table(**override):
    t = pq.read_table(DATA / "parquet" / "trades_flat.parquet")
    for name, arr in override.items():
        t = t.set_column(t.column_names.index(name), name, arr)
    return t


@pytest.mark.parametrize("column, bad", [("price", "abc"), ("price", "1,5"), ("amount", ""), ("amount", "nan"),
                                         ("local_timestamp", "nan"), ("timestamp", "12x")])
def test_text_in_a_number_column_names_file_column_row_and_value(tmp_path, column, bad):
    t = _trades_table()
    values = [str(v) for v in t.column(column).to_pylist()]
    values[3] = bad
    path = _parquet(tmp_path, _trades_table(**{column: pa.array(values)}))
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, str(path), f"`{column}`", "row 3", repr(bad))


def test_price_with_underscores_is_refused(tmp_path):
    t = _trades_table()
    values = [str(v) for v in t.column("price").to_pylist()]
    values[0] = "1_00.10"
    with pytest.raises(ClusterlobError) as e:
        convert([_parquet(tmp_path, _trades_table(price=pa.array(values)))], tmp_path / "o")
    _one_line(e, "'1_00.10'", "row 0")
    line = (b'1723161255010000000 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256011,'
            b'"T":1723161256010,"s":"BTCUSDT","t":501,"p":"1_00.10","q":"0.250","X":"MARKET","m":false}}\n')
    path = tmp_path / "b.txt"
    path.write_bytes(line)
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o2")
    _one_line(e, "`p`", "1_00.10")


@pytest.mark.parametrize("unit, scale", [("s", 10 ** -6), ("ms", 10 ** -3), ("us", 1), ("ns", 1000)])
def test_typed_parquet_timestamps_are_read_in_their_unit(tmp_path, unit, scale):
    t = _trades_table()
    per_us = {"s": 10 ** 6, "ms": 1000, "us": 1, "ns": 1}[unit]
    expect = t.column("local_timestamp").to_numpy().astype(np.int64) // per_us * per_us
    typed = {c: pa.array((t.column(c).to_numpy().astype(np.int64) * scale).astype(np.int64), pa.timestamp(unit))
             for c in ("timestamp", "local_timestamp")}
    convert([_parquet(tmp_path, _trades_table(**typed))], tmp_path / "o")
    got = np.sort(read_tape(tmp_path / "o").trades.ts_local_us)
    np.testing.assert_array_equal(got, np.sort(expect))


@pytest.mark.parametrize("value", [b"18446744073709551616", b"1e25", b"1e400", b"-1e400", b'"1e400"'])
@pytest.mark.parametrize("field", ["t", "T"])
def test_binance_integers_out_of_int64_are_one_line(tmp_path, field, value):
    msg = {"e": "trade", "E": 1723161256011, "T": 1723161256010, "s": "BTCUSDT", "t": 501, "p": "100.10",
           "q": "0.250", "X": "MARKET", "m": False}
    body = json.dumps({"stream": "btcusdt@trade", "data": {**msg, field: "@"}}).replace('"@"', value.decode())
    path = tmp_path / "b.txt"
    path.write_text(f"1723161255010000000 {body}\n")
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, str(path), "line 1", f"`{field}`")


@pytest.mark.parametrize("field, value", [("T", "111111111111111111111111111111"), ("E", "1e25"),
                                          ("T", '"x"')])
def test_binance_mark_price_times_out_of_int64_are_one_line(tmp_path, field, value):
    # fuzz seed 206973 (python tests/fuzz_mutants.py 20000 200000) gave an OverflowError traceback
    lines = (DATA / "binance" / "unknown_streams.txt").read_text().splitlines()
    assert '"markPriceUpdate"' in lines[2]
    lines[2] = lines[2].replace('"T":1723161280000' if field == "T" else '"E":1723161256011', f'"{field}":{value}')
    path = tmp_path / "b.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, str(path), "line 3", f"`{field}`")
    result = convert([path], tmp_path / "o", skip_bad=True)          # counted with --skip-bad
    assert sum(result.report.files[0].dropped.values()) >= 1


def test_fuzz_seed_206973_is_no_longer_a_failure(tmp_path):
    from fuzz_mutants import outcome
    assert outcome(206973, tmp_path)[0] in ("converted", "refused")


def test_binance_receive_time_of_26_digits(tmp_path):
    good = (DATA / "binance" / "normal_sync.txt").read_bytes().splitlines()
    path = tmp_path / "b.txt"
    path.write_bytes(b"\n".join(good[:1] + [b"9" * 26 + good[1][19:]] + good[2:]) + b"\n")
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, "line 2", "out of range")
    result = convert([path], tmp_path / "o", skip_bad=True)          # counted with --skip-bad
    assert sum(result.report.files[0].dropped.values()) >= 1


@pytest.mark.parametrize("header", [" amount", "amount ", '"amount"'])
def test_csv_header_is_trimmed_and_unquoted(tmp_path, header):
    lines = (DATA / "tardis" / "trades_tiny.csv").read_text().splitlines()
    cols = lines[0].split(",")
    cols[cols.index("amount")] = header
    path = tmp_path / "t.csv"
    path.write_text("\n".join([",".join(cols)] + lines[1:]) + "\n")
    result = convert([path], tmp_path / "o")
    assert result.manifest["totals"]["trades"] == len(lines) - 1 - sum(result.report.files[0].dropped.values())


def test_fully_quoted_csv_header(tmp_path):
    lines = (DATA / "tardis" / "trades_tiny.csv").read_text().splitlines()
    path = tmp_path / "t.csv"
    path.write_text("\n".join([",".join(f'"{c}"' for c in lines[0].split(","))] + lines[1:]) + "\n")
    assert convert([path], tmp_path / "o").manifest["totals"]["trades"] > 0


def test_a_column_named_twice_is_refused(tmp_path):
    lines = (DATA / "tardis" / "trades_tiny.csv").read_text().splitlines()
    path = tmp_path / "t.csv"
    path.write_text("\n".join([lines[0].replace("amount", " price")] + lines[1:]) + "\n")
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, "`price` appears twice")


def test_book_missing_one_column_of_its_deepest_level_is_named(tmp_path):
    lines = (DATA / "tardis" / "book_snapshot_5_tiny.csv").read_text().splitlines()
    rows = [ln.split(",") for ln in lines]
    c = rows[0].index("asks[4].price")
    path = tmp_path / "b.csv"
    path.write_text("\n".join(",".join(r[:c] + r[c + 1:]) for r in rows) + "\n")
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, "`asks[4].price`", "missing")


def test_byte_flipped_parquet_column_name_is_one_line(tmp_path):
    data = bytearray((DATA / "parquet" / "trades_flat.parquet").read_bytes())
    i = bytes(data).find(b"local_timestamp")           # the name in the Parquet schema
    data[i + 1] = 0xFF
    path = tmp_path / "x.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, str(path))


def test_unknown_parquet_layout_lists_its_columns(tmp_path):
    path = _parquet(tmp_path, pa.table({"when": [1, 2], "px": [1.0, 2.0]}))
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, "unknown layout", "when, px")


def test_a_recording_of_rest_snapshots_only_names_the_file(tmp_path):
    snap = [ln for ln in (DATA / "binance" / "normal_sync.txt").read_text().splitlines() if "lastUpdateId" in ln]
    assert snap
    path = tmp_path / "rest_only.txt"
    path.write_text("\n".join(snap) + "\n")
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, "rest_only.txt")


def test_truncated_gzip_is_one_line_naming_the_file(tmp_path):
    data = gzip.compress((DATA / "tardis" / "trades_tiny.csv").read_bytes() * 50)
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ClusterlobError) as e:
        convert([path], tmp_path / "o")
    _one_line(e, str(path))
