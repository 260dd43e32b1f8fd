"""Writing a tape directory: :class:`TapeWriter` (day by day, atomically) and :func:`write_tape`.

The layout it writes is described in :mod:`clusterlob.tape` and ``docs/tape.md``.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._io import MARKER_FILE, check_output_dir, clean_staging, replace_dir, staging_dir
from .._typing import PathLike, Say
from ..errors import TapeError
from .types import _BOOK_SIDES, _TRADE_CORE, FORMAT_NAME, FORMAT_VERSION, FUNDING_COLUMNS, US_PER_DAY, Book, Funding, Instrument, Tape, Trades, day_of_us, level_column

__all__ = ["TapeWriter", "write_tape"]

# trades: LZ4 (fast to decode); the book's level columns: zstd with dictionaries (prices repeat
# level to level; it keeps a format-2 book about as small as format 1's list columns)
_COMPRESSION = {"trades": "lz4", "book": "zstd", "funding": "lz4"}


# -- Arrow conversion ----------------------------------------------------------------------

def _trades_to_table(trades: Trades) -> pa.Table:
    cols = {}
    for name, arr in trades.columns().items():
        if arr.dtype == object:
            cols[name] = pa.array(arr, type=pa.string())
        else:
            cols[name] = pa.array(arr)
    return pa.table(cols)


def _book_to_table(book: Book) -> pa.Table:
    """One column per side and level (format 2: ``bid_px_0`` ... ``ask_sz_{L-1}``), so that a
    reader decodes only the levels it asks for."""
    cols = {"ts_exch_us": pa.array(book.ts_exch_us), "ts_local_us": pa.array(book.ts_local_us)}
    for name in _BOOK_SIDES:
        side = np.asarray(getattr(book, name), dtype=np.float64)
        for k in range(side.shape[1]):
            cols[level_column(name, k)] = pa.array(np.ascontiguousarray(side[:, k]))
    return pa.table(cols)


def _funding_to_table(funding: Funding) -> pa.Table:
    return pa.table({name: pa.array(arr) for name, arr in funding.columns().items()})


# -- writing -------------------------------------------------------------------------------

class TapeWriter:
    """Write a tape directory day by day, atomically.

    Rows can arrive in any number of batches, in any order of days; each batch is split by
    the UTC day of its local time and appended to that day's staging file.  ``close()``
    then, per day, sorts stably by local time if needed (counting rows that were out of
    order), counts duplicate trade ids, writes the final files and the manifest, and
    renames the temporary folder to ``path``.  Until then nothing exists at ``path``; an
    exception (or leaving a ``with`` block by one) removes the temporary folder.

    Parameters
    ----------
    path : str or Path
        Target directory.  Must not exist, or be empty, unless ``force=True``, and then only
        a clusterlob tape holding nothing but a tape's files is replaced, after the new one is
        complete (:func:`clusterlob._io.check_output_dir`).  The staging folder beside it is
        ``.NAME.clusterlob-staging-PID-*``; one a killed run left is removed by the next run.
    instrument : Instrument
    force : bool
    inputs : paths of the input files (the target may not be or hold their folder)
    progress : callable, optional, told about staging folders removed
    """

    def __init__(self, path: PathLike, instrument: Instrument, *, force: bool = False,
                 inputs: Iterable[PathLike] = (), progress: Say | None = None) -> None:
        self.path = check_output_dir(path, kind="tape", force=force, inputs=inputs, allowed=_tape_entry)
        _check_tape_files(self.path)
        self.instrument = instrument
        self.force = force
        for parent in self.path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise TapeError(f"output {self.path}: {parent} is not a directory")
                break
        clean_staging(self.path, progress)
        self._tmp = staging_dir(self.path)
        (self._tmp / "_stage").mkdir()
        self._writers: dict = {}       # (kind, day) -> ParquetWriter
        self._last_ts: dict = {}       # (kind, day) -> last local time appended
        self._unsorted: dict = {}      # (kind, day) -> rows found behind their predecessor
        self._rows: dict = {}          # (kind, day) -> rows
        self._schemas: dict = {}       # kind -> schema
        self._levels: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list = []
        self._input_last: dict = {}    # kind -> last local time in input order
        self._input_backwards = {"trades": 0, "book": 0, "funding": 0}
        self._closed = False

    # context manager: clean up on error
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()
        return False

    def abort(self) -> None:
        """Drop everything written so far (the target is left untouched)."""
        try:
            self._drain()
        except Exception:  # noqa: BLE001 - the write that failed is being thrown away
            pass
        for w in self._writers.values():
            try:
                w.close()
            except Exception:  # noqa: BLE001 - best effort during cleanup
                pass
        self._writers.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._closed = True

    def add_trades(self, trades: Trades) -> None:
        """Append trades (any days, any order)."""
        if len(trades):
            self._add("trades", _trades_to_table(trades), trades.ts_local_us)

    def add_book(self, book: Book) -> None:
        """Append book snapshots (any days, any order); every batch must have the same depth."""
        if not len(book):
            return
        if self._levels is None:
            self._levels = book.levels
        elif book.levels != self._levels:
            raise TapeError(f"book snapshots with {book.levels} levels cannot join a tape of "
                            f"{self._levels} levels")
        self._add("book", _book_to_table(book), book.ts_local_us)

    def add_funding(self, funding: Funding) -> None:
        """Append derivative ticker rows (any days, any order): the tape's funding table."""
        if len(funding):
            self._add("funding", _funding_to_table(funding), funding.ts_local_us)

    def _add(self, kind: str, table: pa.Table, ts_local_us: np.ndarray) -> None:
        from .. import _core
        schema = self._schemas.setdefault(kind, table.schema)
        if not table.schema.equals(schema):
            raise TapeError(f"{kind} batch has schema {table.schema.names} "
                            f"({[str(t) for t in table.schema.types]}), expected "
                            f"{schema.names} ({[str(t) for t in schema.types]})")
        ts_all = np.ascontiguousarray(ts_local_us, dtype=np.int64)
        back = _core.count_backwards_steps(ts_all)
        if kind in self._input_last and ts_all[0] < self._input_last[kind]:
            back += 1
        self._input_backwards[kind] += back
        self._input_last[kind] = int(ts_all[-1])
        day_index = ts_all // US_PER_DAY
        lo, hi = int(day_index.min()), int(day_index.max())
        for d in range(lo, hi + 1):
            if lo == hi:
                part, ts = table, ts_local_us
            else:
                mask = day_index == d
                if not mask.any():
                    continue
                part, ts = table.filter(pa.array(mask)), ts_local_us[mask]
            day = day_of_us(d * US_PER_DAY)
            key = (kind, day)
            ts = np.ascontiguousarray(ts, dtype=np.int64)
            unsorted = _core.count_backwards_steps(ts)
            if key in self._last_ts and ts[0] < self._last_ts[key]:
                unsorted += 1
            self._last_ts[key] = max(int(ts.max()), self._last_ts.get(key, ts[-1]))
            self._unsorted[key] = self._unsorted.get(key, 0) + unsorted
            self._rows[key] = self._rows.get(key, 0) + len(ts)
            if key not in self._writers:
                self._writers[key] = pq.ParquetWriter(self._tmp / "_stage" / f"{kind}-{day}.parquet",
                                                      schema, compression=_COMPRESSION.get(kind, "lz4"),
                                                      use_dictionary=kind == "book")
            self._write_behind(self._writers[key], part)

    def _write_behind(self, writer: pq.ParquetWriter, table: pa.Table) -> None:
        # Parquet encoding runs in one background thread (pyarrow releases the GIL), so the
        # caller can parse the next batch meanwhile; at most two writes are in flight.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tape-writer")
        self._pending.append(self._pool.submit(writer.write_table, table, row_group_size=1 << 20))
        while len(self._pending) > 2:
            self._pending.pop(0).result()

    def _drain(self) -> None:
        while self._pending:
            self._pending.pop(0).result()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _final_file(self, kind: str, day: str) -> Path:
        """Move a day's staging file to its final place, sorted stably by local time if needed."""
        stage = self._tmp / "_stage" / f"{kind}-{day}.parquet"
        final = self._tmp / kind / f"{day}.parquet"
        if self._unsorted[(kind, day)]:
            table = pq.read_table(stage)
            order = np.argsort(table["ts_local_us"].to_numpy(), kind="stable")
            pq.write_table(table.take(pa.array(order)), final, compression=_COMPRESSION.get(kind, "lz4"),
                           row_group_size=1 << 20)
            stage.unlink()
        else:
            os.replace(stage, final)
        return final

    def close(self, summary: dict | None = None) -> dict:
        """Finish every day, write ``manifest.json`` and move the tape into place.

        ``summary`` (for example reader counts) is stored in the manifest next to the
        writer's own counts.  Returns the manifest.
        """
        if self._closed:
            raise TapeError("tape writer is already closed")
        try:
            manifest = self._finish(summary or {})
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return manifest

    def _finish(self, summary: dict) -> dict:
        self._drain()
        for w in self._writers.values():
            w.close()
        days = sorted({day for kind, day in self._rows if kind != "funding"})
        if not days:
            raise TapeError("nothing to write: the input has no trades and no book snapshots")
        (self._tmp / "trades").mkdir()
        (self._tmp / "book").mkdir()
        entries = []
        duplicate_ids = 0
        string_ids = False
        for day in days:
            entry = {"date": day, "trades": 0, "book": 0}
            for kind in ("trades", "book"):
                key = (kind, day)
                if key not in self._rows:
                    continue
                final = self._final_file(kind, day)
                if kind == "trades":
                    ids = pq.read_table(final, columns=["trade_id"])["trade_id"]
                    string_ids |= pa.types.is_string(ids.type)
                    duplicate_ids += _duplicates(ids)
                entry[kind] = self._rows[key]
            entries.append(entry)
        funding_days = sorted(day for kind, day in self._rows if kind == "funding")
        if funding_days:
            (self._tmp / "funding").mkdir()
            for day in funding_days:
                self._final_file("funding", day)
        (self._tmp / "_stage").rmdir()
        own = {"out_of_order_trades_sorted": self._input_backwards["trades"],
               "out_of_order_book_sorted": self._input_backwards["book"],
               "duplicate_trade_ids": duplicate_ids}
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "instrument": self.instrument.to_dict(),
            "time_key": "ts_local_us",
            "book_levels": self._levels,
            "trade_id_type": "string" if string_ids else "int64",
            "trade_extra_columns": [n for n in self._schemas.get("trades", pa.schema([])).names
                                    if n not in _TRADE_CORE],
            "days": entries,
            "totals": {"trades": sum(e["trades"] for e in entries), "book": sum(e["book"] for e in entries)},
            "summary": {**summary, **own},
            **({"funding": {"days": [{"date": d, "rows": self._rows[("funding", d)]} for d in funding_days],
                            "total": sum(self._rows[("funding", d)] for d in funding_days),
                            "columns": list(FUNDING_COLUMNS)}} if funding_days else {}),
            "created_by": _created_by(),
        }
        (self._tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _move_into_place(self._tmp, self.path, self.force)
        return manifest


def _duplicates(ids: pa.ChunkedArray) -> int:
    """Number of ids equal to an earlier id (exchange ids usually increase: then no hashing)."""
    if pa.types.is_integer(ids.type):
        values = ids.to_numpy()
        if values.size < 2 or bool((values[1:] > values[:-1]).all()):
            return 0
    return len(ids) - len(ids.unique())


def _created_by() -> str:
    from .. import __version__
    return f"clusterlob {__version__}"


def _tape_entry(name: str) -> bool:
    """The top-level names of a tape directory (what ``--force`` may delete)."""
    return name in ("manifest.json", "trades", "book", MARKER_FILE)


def _check_tape_files(path: Path) -> None:
    """Inside an existing tape, ``trades/`` and ``book/`` hold only clusterlob's Parquet files:
    anything else is a user's, and ``--force`` will not delete it."""
    for kind in ("trades", "book"):
        folder = path / kind
        if folder.is_dir():
            foreign = [p.name for p in folder.iterdir() if not (p.suffix == ".parquet" and p.is_file())]
            if foreign:
                raise TapeError(f"--force would delete {folder}, which also holds {', '.join(sorted(foreign)[:4])} "
                                f"that clusterlob did not write: nothing was touched; move them or choose "
                                f"another folder")


def _move_into_place(tmp: Path, target: Path, force: bool) -> None:
    check_output_dir(target, kind="tape", force=force, allowed=_tape_entry)   # again: the target may have changed
    _check_tape_files(target)
    replace_dir(tmp, target)


def write_tape(tape: Tape, path: PathLike, *, force: bool = False, summary: dict | None = None) -> dict:
    """Write an in-memory :class:`Tape` as a tape directory (atomically); return the manifest."""
    with TapeWriter(path, tape.instrument, force=force) as writer:
        writer.add_trades(tape.trades)
        writer.add_book(tape.book)
        return writer.close(summary)


