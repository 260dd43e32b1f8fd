"""Rebuild the Parquet fixtures in data/parquet/ from the hand-written CSV fixtures in data/tardis/.

    python tools/make_fixtures.py

Flat Parquet files carry the CSV's columns unchanged; the pointline-style files carry the
same rows as integers (price increment 0.1, amount increment 0.001), sides as 0/1/2 and books
as list columns.  Deterministic: rerunning gives the same rows.
"""
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "data" / "tardis"
OUT = ROOT / "data" / "parquet"
PRICE_INC, AMOUNT_INC = 0.1, 0.001


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    trades = pacsv.read_csv(SRC / "trades_tiny.csv",
                            convert_options=pacsv.ConvertOptions(column_types={"id": pa.string()}))
    book = pacsv.read_csv(SRC / "book_snapshot_5_tiny.csv")
    pq.write_table(trades, OUT / "trades_flat.parquet")
    pq.write_table(book, OUT / "book_flat.parquet")

    side = {"buy": 0, "sell": 1, "unknown": 2}
    pl_trades = pa.table({
        "ts_local_us": trades["local_timestamp"],
        "ts_exch_us": trades["timestamp"],
        "price_int": pa.array(np.rint(trades["price"].to_numpy() / PRICE_INC).astype(np.int64)),
        "qty_int": pa.array(np.rint(trades["amount"].to_numpy() / AMOUNT_INC).astype(np.int64)),
        "side": pa.array([side[s] for s in trades["side"].to_pylist()], pa.int8()),
        "trade_id": pa.array([int(i) for i in trades["id"].to_pylist()], pa.int64()),
        "symbol": trades["symbol"],
    })
    pq.write_table(pl_trades, OUT / "pointline_trades.parquet")

    levels = 5
    cols = {}
    for side_name, key in (("bids", "bids"), ("asks", "asks")):
        for field, suffix, inc in (("price", "px", PRICE_INC), ("amount", "sz", AMOUNT_INC)):
            rows = []
            for r in range(book.num_rows):
                vals = [book[f"{side_name}[{i}].{field}"][r].as_py() for i in range(levels)]
                rows.append([int(round(v / inc)) for v in vals if v is not None])
            cols[f"{key}_{suffix}"] = pa.array(rows, pa.list_(pa.int64()))
    pl_book = pa.table({"ts_local_us": book["local_timestamp"], "ts_exch_us": book["timestamp"], **cols})
    pq.write_table(pl_book, OUT / "pointline_book.parquet")
    for f in sorted(OUT.iterdir()):
        print(f.relative_to(ROOT), f.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
