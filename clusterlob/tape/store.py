"""The canonical tape: trades and book snapshots of one instrument, in memory and on disk.

In memory
---------
:class:`Tape` holds an :class:`Instrument`, :class:`Trades` and a :class:`Book`, all plain
NumPy arrays, sorted stably by local receive time (the time a trader saw the event).

* Times are int64 microseconds since the epoch, UTC; every row keeps the exchange time
  (``ts_exch_us``) and the local receive time (``ts_local_us``).
* ``Trades.side`` is int8: +1 buy taker, -1 sell taker, 0 unknown.
* ``Book`` levels are ``(n, L)`` float64 arrays, level 0 the touch, ``L <= 25``; a missing
  level is NaN.

On disk (a *tape directory*)
----------------------------
::

    TAPE_DIR/
      manifest.json                 format, version, instrument, days, row counts, summary
      trades/2024-05-01.parquet     one file per UTC day of ts_local_us
      book/2024-05-01.parquet
      funding/2024-05-01.parquet    optional: derivative ticker rows (funding rate, mark, index)

Trades files have columns ``ts_exch_us`` (int64), ``ts_local_us`` (int64), ``price``,
``amount`` (float64), ``side`` (int8), ``trade_id`` (int64, or string when the source
ids are not all integers) and any extra columns (for example ``agent`` in synthetic tapes).
Book files have ``ts_exch_us``, ``ts_local_us`` and ``bid_px``, ``bid_sz``, ``ask_px``,
``ask_sz`` as fixed-size lists of L float64 (NaN for a missing level).  Rows are
partitioned by the UTC day of the local time, so concatenating the day files in date
order gives the whole tape in order.  Files are LZ4-compressed Parquet.

A tape directory is written by :class:`~clusterlob.tape.writer.TapeWriter` (in
:mod:`clusterlob.tape_writer`, re-exported here) into a temporary folder beside the target
and renamed into place when complete, so a reader never sees half a tape.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Iterable, Iterator, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from .._typing import Days
from ..errors import TapeError
from .location import TapeLocation, TapeSource, resolve_tape

from .types import (Book, FORMAT_NAME, FORMAT_VERSION, FUNDING_COLUMNS, Funding, Instrument, MAX_LEVELS, Tape, Trades, US_PER_DAY, _BOOK_SIDES, _TRADE_CORE, _columns, day_of_us, day_start_us, parse_days, parse_level_column, READ_VERSIONS)

__all__ = [
    "Instrument",
    "Trades",
    "Book",
    "Tape",
    "Funding",
    "FUNDING_COLUMNS",
    "read_tape",
    "read_funding",
    "read_manifest",
    "resolve_tape",
    "TapeLocation",
    "iter_days",
    "time_span",
    "day_of_us",
    "day_start_us",
    "parse_days",
    "US_PER_DAY",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

class _Filler:
    """Preallocated output columns filled day by day: one copy from Arrow, no concatenation."""

    def __init__(self, total: int, levels: int | None = None):
        self.total = total
        self.levels = levels        # book levels kept (None: all)
        self.pos = 0
        self.out: dict = {}

    def add(self, table: pa.Table, path) -> None:
        n = table.num_rows
        if self.pos + n > self.total:
            raise TapeError(f"{path}: {n} rows, more than the manifest counts for the days read "
                            f"({self.total}); the tape directory was changed after it was written")
        levels: dict = {}           # format 2: side -> {level: column name}
        for name in table.column_names:
            parsed = parse_level_column(name)
            if parsed is not None:
                levels.setdefault(parsed[0], {})[parsed[1]] = name
        for side, by_level in levels.items():
            width = len(by_level)
            if sorted(by_level) != list(range(width)):
                raise TapeError(f"{path}: book level columns of {side} are not levels 0..{width - 1}: "
                                f"{sorted(by_level)}")
            if side not in self.out:
                self.out[side] = np.empty((self.total, width), dtype=np.float64)
            dest = self.out[side]
            if dest.shape[1] != width:
                raise TapeError(f"{path}: {width} levels of {side}, earlier days of the tape have {dest.shape[1]}")
            # level by level into a (levels, rows) block, then one transposing copy: writing
            # each level straight into its strided column of `dest` costs ~5x more
            block = np.empty((width, n), dtype=np.float64)
            for k, name in by_level.items():
                block[k] = table[name].to_numpy()
            dest[self.pos:self.pos + n] = block.T
        for name in table.column_names:
            if parse_level_column(name) is not None:
                continue
            col = table[name]
            if name not in self.out:
                self.out[name] = self._allocate(col.type)
            dest = self.out[name]
            if pa.types.is_fixed_size_list(col.type):
                width = col.type.list_size
                at = self.pos
                for chunk in col.chunks:
                    values = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
                    dest[at:at + values.shape[0]] = values[:, :dest.shape[1]]
                    at += values.shape[0]
            elif dest.dtype == object:
                dest[self.pos:self.pos + n] = col.to_pylist()
            else:
                at = self.pos
                for chunk in col.chunks:
                    values = chunk.to_numpy(zero_copy_only=False)
                    dest[at:at + values.shape[0]] = values
                    at += values.shape[0]
        self.pos += n

    def _allocate(self, typ: pa.DataType) -> np.ndarray:
        if pa.types.is_fixed_size_list(typ):
            width = typ.list_size if self.levels is None else min(self.levels, typ.list_size)
            return np.empty((self.total, width), dtype=typ.value_type.to_pandas_dtype())
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            return np.empty(self.total, dtype=object)
        return np.empty(self.total, dtype=typ.to_pandas_dtype())

    def columns(self, need, kind: str, path) -> dict:
        if self.pos != self.total:
            raise TapeError(f"{path}: the {kind} files hold {self.pos} rows, the manifest counts "
                            f"{self.total}; the tape directory was changed after it was written")
        missing = [c for c in need if c not in self.out]
        if missing:
            raise TapeError(f"{kind} files in {path}: missing columns {missing}, found {sorted(self.out)}")
        return self.out


# -- reading -------------------------------------------------------------------------------

def read_manifest(path: TapeSource, *, filesystem: pafs.FileSystem | None = None) -> dict:
    """Read and check a tape directory's ``manifest.json``.

    ``path`` is a local folder or a URI (``file://``, ``s3://``, ...; see
    :func:`~clusterlob.tape.location.resolve_tape`), or a path inside ``filesystem``.
    """
    loc = resolve_tape(path, filesystem)
    where, mpath = loc.where(), loc.where("manifest.json")
    kind = loc.info().type
    if kind == pafs.FileType.File:
        raise TapeError(f"{where} is a file, not a tape directory (convert it with `python -m clusterlob.convert`)")
    if kind != pafs.FileType.Directory:
        raise TapeError(f"tape directory {where} does not exist")
    if not loc.is_file("manifest.json"):
        raise TapeError(f"{where} is not a tape directory: no manifest.json (write one with `python -m clusterlob.convert`)")
    try:
        manifest = json.loads(loc.read_bytes("manifest.json").decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TapeError(f"{mpath}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT_NAME:
        raise TapeError(f"{mpath}: `format` must be {FORMAT_NAME!r}, got {manifest.get('format')!r}")
    if manifest.get("version") not in READ_VERSIONS:
        raise TapeError(f"{mpath}: format version {manifest.get('version')!r} is not supported "
                        f"(this clusterlob reads versions {', '.join(map(str, READ_VERSIONS))})")
    _check_manifest(manifest, mpath)
    return manifest


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_manifest(m: dict, mpath: str) -> None:
    """Every field a reader uses, checked for type and range (a hand-edited manifest gets one
    line naming the field and the value, never a KeyError later)."""
    def fail(field: str, rule: str, value: object) -> NoReturn:
        raise TapeError(f"{mpath}: `{field}` must be {rule}, got {_short(value)}")

    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 63

    def positive(v) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return False
        try:
            return math.isfinite(float(v)) and v > 0
        except OverflowError:
            return False

    inst = m.get("instrument")
    if not isinstance(inst, dict):
        fail("instrument", "an object", inst)
    for key in ("exchange", "symbol"):
        if not isinstance(inst.get(key), str):
            fail(f"instrument.{key}", "text", inst.get(key))
    for key in ("tick_size", "lot_size"):
        if not positive(inst.get(key)):
            fail(f"instrument.{key}", "a finite number > 0", inst.get(key))
    days = m.get("days")
    if not isinstance(days, list):
        fail("days", "a list of {date, trades, book}", days)
    previous = ""
    for i, day in enumerate(days):
        if not isinstance(day, dict):
            fail(f"days[{i}]", "an object {date, trades, book}", day)
        date = day.get("date")
        try:
            ok = isinstance(date, str) and _dt.date.fromisoformat(date).isoformat() == date
        except ValueError:
            ok = False
        if not ok or not isinstance(date, str):      # (ok implies text)
            fail(f"days[{i}].date", "a day YYYY-MM-DD", date)
        if date <= previous:
            fail(f"days[{i}].date", f"after the previous day {previous}", date)
        previous = date
        for key in ("trades", "book"):
            if not count(day.get(key)):
                fail(f"days[{i}].{key}", "a row count (an integer >= 0)", day.get(key, "nothing"))
    levels = m.get("book_levels")
    if levels is not None and not (count(levels) and 1 <= levels <= MAX_LEVELS):
        fail("book_levels", f"null or an integer in 1..{MAX_LEVELS}", levels)
    if m.get("trade_id_type", "int64") not in ("int64", "string"):
        fail("trade_id_type", "'int64' or 'string'", m.get("trade_id_type"))
    extra = m.get("trade_extra_columns", [])
    if not (isinstance(extra, list) and all(isinstance(c, str) for c in extra)):
        fail("trade_extra_columns", "a list of column names", extra)
    if m.get("time_key", "ts_local_us") != "ts_local_us":
        fail("time_key", "'ts_local_us'", m.get("time_key"))
    for key in ("totals", "summary"):
        if key in m and not isinstance(m[key], dict):
            fail(key, "an object", m[key])


def read_tape(path: TapeSource, days: Days = None, *, trades: bool = True, book: bool = True,
              levels: int | None = None, columns: Iterable[str] | None = None,
              filesystem: pafs.FileSystem | None = None) -> Tape:
    """Read a tape directory, or only some of its days, columns and book levels.

    Parameters
    ----------
    path : str or Path
        Tape directory written by :class:`TapeWriter` (``python -m clusterlob.convert``): a local
        folder, or a URI ``pyarrow.fs.FileSystem.from_uri`` accepts (``file:///abs/tape``,
        ``s3://bucket/tape``, ``gs://...``, ``hdfs://...``).
    days : None, str or sequence of str
        None for all days; ``"FROM:TO"`` (inclusive, either end optional); one day; or a
        list of days.  Files of other days are not opened.
    trades, book : bool
        Set one to False to skip reading that half.
    levels : int, optional
        Keep only the first ``levels`` book levels (default: all).  The files are decoded one
        row group at a time, so the full depth is never held in memory.
    columns : collection of str, optional
        Trade columns to read (default: all, extras included).  ``ts_local_us`` is always read;
        a core column left out is None in the result (``Trades.trade_id is None``), an extra
        left out is absent.  The book's ``ts_exch_us`` is read only when listed here too.
    filesystem : pyarrow.fs.FileSystem, optional
        Read ``path`` (a path, not a URI) inside this filesystem: any pyarrow filesystem, e.g.
        a ``SubTreeFileSystem`` or a ``PyFileSystem`` with your own handler.

    Returns
    -------
    Tape
        Arrays concatenated over the chosen days, in local-time order.
    """
    loc = resolve_tape(path, filesystem)
    manifest = read_manifest(loc)
    instrument = Instrument.from_dict(manifest["instrument"])
    available = [d["date"] for d in manifest["days"]]
    chosen = parse_days(days, available)
    depth = int(manifest.get("book_levels") or MAX_LEVELS)
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= depth:
            raise TapeError(f"`levels` must be an integer in 1..{depth} (the depth of tape {loc.where()}), got {levels!r}")
        depth = int(levels)
    wanted = None if columns is None else set(columns) | {"ts_local_us"}
    counts = {d["date"]: d for d in manifest["days"]}
    out_trades = Trades.empty(manifest.get("trade_id_type") == "string")
    out_book = Book.empty(depth)
    if trades:
        need = _TRADE_CORE if wanted is None else tuple(c for c in _TRADE_CORE if c in wanted)
        cols = _read_days(loc, "trades", chosen, counts, need, wanted, None)
        if cols is not None:
            out_trades = Trades._of([cols.pop(n, None) for n in _TRADE_CORE], extra=cols)
        elif wanted is not None:
            out_trades = out_trades.take(slice(0, 0))
            for name in _TRADE_CORE:
                if name not in wanted:
                    setattr(out_trades, name, None)
    if book:
        times = ("ts_local_us",) if wanted is not None and "ts_exch_us" not in wanted else ("ts_exch_us", "ts_local_us")
        need = times + _BOOK_SIDES
        cols = _read_days(loc, "book", chosen, counts, need, set(need), depth)
        if cols is not None:
            out_book = Book(*_columns(cols, ("ts_exch_us", "ts_local_us") + _BOOK_SIDES))
        elif "ts_exch_us" not in times:
            setattr(out_book, "ts_exch_us", None)      # not read (the field is typed for a column read)
    return Tape(instrument, out_trades, out_book, chosen)


def _read_days(loc: TapeLocation, kind: str, chosen, counts: dict, need, wanted, levels) -> dict | None:
    """Columns of one half of the tape (``kind`` trades or book) over the chosen days: only the
    ``wanted`` columns (None: all) and the first ``levels`` book levels (None: all)."""
    fill = _Filler(sum(counts[d][kind] for d in chosen), levels)
    for day in chosen:
        if counts[day][kind]:
            name = f"{day}.parquet"
            for table in _read_parquet(loc, kind, name, wanted, levels):
                fill.add(table, loc.where(kind, name))
    return dict(fill.columns(need, kind, loc.where())) if fill.total else None


def _read_parquet(loc: TapeLocation, kind: str, name: str, wanted=None, levels: int | None = None):
    """The row groups of one day file, one Arrow table each: only the ``wanted`` columns (None:
    all) and, where the book keeps a column per level (format 2), only the first ``levels`` levels
    (None: all), so the other levels are never decoded."""
    f = loc.where(kind, name)
    if loc.info(kind, name).type == pafs.FileType.NotFound:
        raise TapeError(f"{f}: missing, though the manifest lists rows for that day")
    try:
        pf = loc.parquet(kind, name)
        names = pf.schema_arrow.names
        cols = [c for c in names if _keep(c, wanted, levels)]
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i, columns=cols)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"{f}: cannot read Parquet ({str(exc).splitlines()[0]})") from None


def _keep(name: str, wanted, levels: int | None) -> bool:
    parsed = parse_level_column(name)
    if parsed is None:
        return wanted is None or name in wanted
    return (wanted is None or parsed[0] in wanted) and (levels is None or parsed[1] < levels)


def time_span(path: TapeSource, days: Days = None, *,
              filesystem: pafs.FileSystem | None = None) -> tuple[int, int] | None:
    """(first, last) local time (us) of the events of the chosen days of a tape directory, from
    the Parquet files' statistics (the ``ts_local_us`` column is read only where a file has
    none); None when the days hold no events."""
    loc = resolve_tape(path, filesystem)
    manifest = read_manifest(loc)
    counts = {d["date"]: d for d in manifest["days"]}
    lo = hi = None
    for day in parse_days(days, list(counts)):
        for kind in ("trades", "book"):
            if not counts[day][kind]:
                continue
            name = f"{day}.parquet"
            f = loc.where(kind, name)
            try:
                pf = loc.parquet(kind, name)
                meta = pf.metadata
                col = meta.schema.names.index("ts_local_us")
                stats = [meta.row_group(i).column(col).statistics for i in range(meta.num_row_groups)]
                if all(s is not None and s.has_min_max for s in stats):
                    pairs = [(s.min, s.max) for s in stats]
                else:
                    ts = pf.read(columns=["ts_local_us"])["ts_local_us"].to_numpy()
                    pairs = [(int(ts.min()), int(ts.max()))] if ts.size else []
            except (pa.ArrowInvalid, OSError, ValueError) as exc:
                raise TapeError(f"{f}: cannot read Parquet ({str(exc).splitlines()[0]})") from None
            for a, b in pairs:
                lo = int(a) if lo is None else min(lo, int(a))
                hi = int(b) if hi is None else max(hi, int(b))
    return None if lo is None or hi is None else (lo, hi)


def iter_days(path: TapeSource, days: Days = None, *, levels: int | None = None,
              columns: Iterable[str] | None = None, filesystem: pafs.FileSystem | None = None) -> Iterator[Tape]:
    """Yield one :class:`Tape` per chosen day, so a long tape can be processed day by day
    (``levels``, ``columns`` and ``filesystem`` as for :func:`read_tape`)."""
    loc = resolve_tape(path, filesystem)
    manifest = read_manifest(loc)
    for day in parse_days(days, [d["date"] for d in manifest["days"]]):
        yield read_tape(loc, [day], levels=levels, columns=columns)



def read_funding(path: TapeSource, days: Days = None, *, filesystem: pafs.FileSystem | None = None) -> Funding:
    """The funding table of a tape directory (``funding/DAY.parquet``), over the chosen days.

    ``days`` as in :func:`read_tape` (days of the tape without funding rows give none).  A
    tape written without a ``derivative_ticker`` input has no funding table: an error saying
    so.  Rows are in local-time order.  ``path`` and ``filesystem`` as for :func:`read_tape`.
    """
    loc = resolve_tape(path, filesystem)
    manifest = read_manifest(loc)
    table = manifest.get("funding")
    if not table:
        raise TapeError(f"tape {loc.where()} has no funding table (convert a Tardis derivative_ticker file "
                        f"with the trades to add one)")
    counts = {d["date"]: d["rows"] for d in table["days"]}
    available = sorted(set(counts) | {d["date"] for d in manifest["days"]})
    chosen = [d for d in parse_days(days, available) if counts.get(d)]
    fill = _Filler(sum(counts[d] for d in chosen))
    for day in chosen:
        name = f"{day}.parquet"
        for table in _read_parquet(loc, "funding", name):
            fill.add(table, loc.where("funding", name))
    if not fill.total:
        return Funding.empty()
    cols = fill.columns(FUNDING_COLUMNS, "funding", loc.where())
    return Funding(*(cols[n] for n in FUNDING_COLUMNS))
