"""Binance historical order book files (the futures ``T_DEPTH`` download), CSV or CSV.gz.

Columns ``symbol, timestamp, first_update_id, last_update_id, side, update_type, price,
qty, pu`` (``time`` is accepted for ``timestamp``; ms or us since the epoch, detected from
the values); ``side`` ``a`` (ask) or ``b`` (bid); ``update_type`` ``snap`` (a row of an
order book snapshot) or ``set`` (set the level to ``qty``; 0 removes it); ``pu`` the
``last_update_id`` of the previous update (empty or -1 where not given).

Rows with one ``last_update_id`` and ``update_type`` form one update (a *group*):

* a ``snap`` group replaces the book (consecutive ``snap`` rows with one id are one
  snapshot; a ``snap`` group with another id starts a new one);
* ``set`` groups with ``last_update_id`` < the latest snapshot's id are older than it:
  skipped and counted;
* the first ``set`` group applied after a snapshot must straddle it
  (``first_update_id`` <= snapshot id + 1 and ``last_update_id`` >= snapshot id), and each
  later one's ``pu`` must equal the previous update's ``last_update_id`` (Binance's
  procedure, as for live recordings); a group without ``pu`` is not checked (counted).
  A break is a counted *sequence gap*: the book is out of sync, nothing is written, until
  the next snapshot.

One 25-level book row is written after every update group while in sync, with
``ts_exch_us`` = ``ts_local_us`` = the group's ``timestamp`` (the file has no receive time;
flagged).  The book is the compiled L2 book (:mod:`.l2_rows`); the group checks are a
Python loop over groups (one per update, not per row).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from ..._typing import PathLike
from ...errors import TapeError
from ..types import Book
from ..validate import TS_MIN_US, FileReport, check_timestamps, require_columns
from .base import Reader, ReaderOptions, symbol_mask, text_codes
from .l2_rows import KIND, L2RowBook, check_level_values, clean_rows, report_counts
from .tardis import _TEXT_CODES, _header, _read_first_line
from .csv_blocks import csv_blocks

__all__ = ["BinanceDepthFileReader", "DepthChain", "DEPTH_FILE_COLUMNS"]

DEPTH_FILE_COLUMNS = ("symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type",
                      "price", "qty", "pu")
_MAX_GAP_FLAGS = 20


class DepthChain:
    """The update-id chain of one stream of depth-file rows (carried across files)."""

    def __init__(self):
        self.prev_id: int | None = None      # last_update_id of the last update taken
        self.prev_snap = False
        self.snap_id: int | None = None
        self.group: tuple | None = None      # (last_update_id, is_snap) of the open group
        self.group_flag = 0                  # the open group's flag (0 or SKIP)
        self.unchecked = 0
        self.gaps: list = []                 # (row, last id, pu or first id, reason)

    def mark(self, first_id: np.ndarray, last_id: np.ndarray, prev_id: np.ndarray, snap: np.ndarray,
             file_rows: np.ndarray) -> np.ndarray:
        """Per-row kind bits (NEW_BLOCK, SKIP, BREAK) from the id columns of one batch."""
        n = len(last_id)
        flags = np.zeros(n, np.int8)
        if n == 0:
            return flags
        start = np.ones(n, bool)
        start[1:] = (last_id[1:] != last_id[:-1]) | (snap[1:] != snap[:-1])
        if self.group == (int(last_id[0]), bool(snap[0])):
            start[0] = False                 # the group goes on from the previous batch
        starts = np.flatnonzero(start)
        ends = np.append(starts[1:], n)
        if starts.size == 0 or starts[0] > 0:   # rows continuing the open group
            flags[:starts[0] if starts.size else n] = self.group_flag
        skip, brk, new = KIND["skip"], KIND["break"], KIND["new_block"]
        for s, e in zip(starts.tolist(), ends.tolist()):
            f_id, l_id, p_id, is_snap = int(first_id[s]), int(last_id[s]), int(prev_id[s]), bool(snap[s])
            flag = 0
            if is_snap:
                if self.prev_snap and l_id != self.snap_id:
                    flags[s] |= new
                self.snap_id = self.prev_id = l_id
                self.prev_snap = True
            elif self.snap_id is not None and l_id < self.snap_id:
                flag = skip                  # older than the snapshot
            else:
                if self.prev_id is not None:
                    if self.prev_snap:
                        ok = f_id <= self.prev_id + 1 and l_id >= self.prev_id
                        reason = "the first update after the snapshot does not straddle it"
                    elif p_id >= 0:
                        ok = p_id == self.prev_id
                        reason = "pu differs from the previous update's last_update_id"
                    else:
                        ok = True
                        self.unchecked += 1
                    if not ok:
                        flags[s] |= brk
                        shown = f"pu={p_id}" if p_id >= 0 else f"first_update_id={f_id}"
                        self.gaps.append((int(file_rows[s]), self.prev_id, shown, reason))
                self.prev_id = l_id
                self.prev_snap = False
            if flag:
                flags[s:e] |= flag
            self.group, self.group_flag = (l_id, is_snap), flag
        return flags


class BinanceDepthFileReader(Reader):
    """Binance historical depth CSV (see the module docstring).

    ``row_book`` / ``chain``: the book and id chain to continue (files of one stream share
    them); ``last_file``: close the last group at the end of this file.
    """

    format_name = "binance historical depth csv"
    produces = frozenset({"book"})
    column_names = {"ts_exch_us": "timestamp", "ts_local_us": "timestamp"}

    def __init__(self, path: PathLike, options: ReaderOptions, report: FileReport, row_book: L2RowBook | None = None,
                 chain: DepthChain | None = None, last_file: bool = True) -> None:
        super().__init__(path, options, report)
        self.row_book = row_book or L2RowBook()
        self.chain = chain or DepthChain()
        self.last_file = last_file

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        cols = set(_header(head))
        return "update_type" in cols or "first_update_id" in cols

    def _codes(self, batch, name, allowed: dict, rows: np.ndarray) -> np.ndarray:
        codes, values = text_codes(batch.column(name))
        lookup = np.array([allowed.get(v.strip().lower(), -1) for v in values] or [-1], dtype=np.int8)
        out = lookup[codes]
        if (out < 0).any():
            i = int(np.argmax(out < 0))
            raise TapeError(f"{self.where(name)} has value {values[codes[i]]!r} at row {int(rows[i])} "
                            f"(expected {' or '.join(allowed)})")
        return out

    def batches(self) -> Iterator[Book]:
        cols = _header(_read_first_line(self))
        time_col = "timestamp" if "timestamp" in cols else "time"
        need = [time_col if c == "timestamp" else c for c in DEPTH_FILE_COLUMNS]
        require_columns(cols, need, self.where())
        types = {time_col: pa.int64(), "first_update_id": pa.int64(), "last_update_id": pa.int64(),
                 "pu": pa.int64(), "price": pa.float64(), "qty": pa.float64(), "side": _TEXT_CODES,
                 "update_type": _TEXT_CODES, "symbol": _TEXT_CODES}
        rb, chain, where = self.row_book, self.chain, self.where()
        before, gaps_before, unchecked_before = rb.counts.copy(), len(chain.gaps), chain.unchecked
        names = {"ts_exch_us": time_col, "ts_local_us": time_col}
        symbols: set[str] = set()
        rows_read, unit_ms = 0, None
        for batch in csv_blocks(self, need, types, cols):
            offset = rows_read
            rows_read += batch.num_rows
            self.report.rows_read += batch.num_rows
            keep = symbol_mask(batch.column("symbol"), self.options, where, symbols)
            if keep is not None:
                self.report.drop(f"other symbols than {self.options.symbol}", int((~keep).sum()))
                batch = batch.filter(pa.array(keep))
                rows = np.flatnonzero(keep) + offset
            else:
                rows = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
            if not batch.num_rows:
                continue
            if self.symbol is None:
                self.symbol = str(batch.column("symbol")[0].as_py())
                self.exchange = "binance-delivery" if "_" in self.symbol else "binance-futures"
            ints = {}
            for c in (time_col, "first_update_id", "last_update_id"):
                col = batch.column(c)
                if col.null_count:
                    raise TapeError(f"{self.where(c)}: {col.null_count} empty values (first at row "
                                    f"{offset + int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))})")
                ints[c] = col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            ts = ints[time_col]
            if unit_ms is None:
                unit_ms = bool(ts[0] < TS_MIN_US)
            if unit_ms:
                ts = ts * 1000
            check_timestamps(ts, where, time_col, offset)
            prev_id = batch.column("pu").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            snap = self._codes(batch, "update_type", {"snap": 1, "set": 0}, rows)
            ask = self._codes(batch, "side", {"a": 1, "b": 0}, rows)
            price = batch.column("price").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            qty = batch.column("qty").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            bad = check_level_values(price, qty, where, rows, "price", "qty", self.options.skip_bad, self.report)
            kind = (ask * KIND["ask"] + snap * KIND["snapshot"]).astype(np.int8)
            kind |= chain.mark(ints["first_update_id"], ints["last_update_id"], prev_id, snap.astype(bool), rows)
            if bad.any():
                kind[bad] |= KIND["break"] | KIND["skip"]
                price, qty = np.where(bad, 1.0, price), np.where(bad, 0.0, qty)
            out = rb.apply(ints["last_update_id"], ts, ts, kind, price, qty, rows)
            book = clean_rows(out, where, self.report, self.options.strict, names)
            if book is not None:
                yield book
        if rows_read == 0:
            raise TapeError(f"{where}: no data rows (empty input)")
        if self.last_file:
            book = clean_rows(rb.finish(), where, self.report, self.options.strict, names)
            if book is not None:
                yield book
            if not rb.ever_synced:
                raise TapeError(f"{where}: {rb.count('before_snapshot'):,} `set` rows but no `snap` rows; "
                                f"the book cannot be built without a snapshot")
        rep = self.report
        report_counts(rb, before, rep, "`set` rows")
        rep.flag("`set` rows older than the snapshot (last_update_id < its id; skipped)",
                 int(rb.counts[_stale()] - before[_stale()]))
        rep.flag("updates without `pu` (chain not checked)", chain.unchecked - unchecked_before)
        new_gaps = chain.gaps[gaps_before:]
        for k, (row, last, nxt, reason) in enumerate(new_gaps[:_MAX_GAP_FLAGS], 1):
            rep.flag(f"sequence gap {k} at row {row}: after last_update_id={last}, next {nxt}: {reason} "
                     f"(out of sync until the next snapshot)", 1, row)
        rep.flag("sequence gaps in the update chain", len(new_gaps))
        if self.symbol is not None:
            rep.flag(f"rows with no local receive time (ts_local_us = the exchange `{time_col}`)", rows_read)


def _stale() -> int:
    from ... import _core
    return _core.L2_COUNTS["stale"]
