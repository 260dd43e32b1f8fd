"""The daily feature cache: one Parquet file per day, exactly the single-pass features.

Layout (``CACHE_DIR`` is ``OUT_DIR/cache`` for the walk-forward CLI)::

    CACHE_DIR/<settings key>/2024-05-01.parquet     trade_index, z_<feature> x 6, valid
    CACHE_DIR/<settings key>/2024-05-01.mids.parquet ts_us, mid of every book snapshot
    CACHE_DIR/<settings key>/2024-05-01.flow.parquet ts_us, side, amount of every trade (in
                                                     flow units: Instrument.flow_size)
    CACHE_DIR/<settings key>/2024-05-01.json        day key, fingerprint, counts, RollingState

A day's *key* hashes the feature settings, the fingerprint of that day's input and the
previous day's key, so changing the settings, the day or any earlier day (whose rolling
state flows into this one) rebuilds it.  The fingerprint of a day is the size and
modification time (ns) of its trades and book Parquet files, the manifest's row counts
and the instrument: cheap to take on months of data (a content hash would read every
byte); the tape writer renames new files into place, so a rewritten day always gets a
new mtime.  A tape read from a URI (``s3://``, ``gs://``, ...) adds its location to the
fingerprint, so two URIs never share a cache entry, and, where the filesystem reports no
modification time, a hash of the file's last 64 KiB (the Parquet footer: row counts and column
statistics).  The cache itself is always a local folder, never beside a remote tape.  The JSON is written after the Parquet file, both atomically, so it marks a
finished day: a killed run leaves whole days behind and the next run reuses them (and
removes the temporary files a hard kill can leave).

Parallel build, exactly equal to one pass
-----------------------------------------
A day's features depend on the previous days through two things: the rolling z-score
windows, and the current book (the last snapshot, and the times of the last changes of
the mid and of each best price, for ``t_m`` / ``t_age``).  The build has three steps:

1. per day, in parallel on any executor: read the day and compute its raw features as if
   no earlier day existed (:func:`_raw_day`); keep what depends on the earlier book: the
   trades before the day's first snapshot, the rows whose ``t_m`` or ``t_age`` is still
   NaN because the day has not yet changed that price, the day's first snapshot and the
   book state at its end;
2. sequentially, cheap: chain the book from day to day (:func:`_chain_book`) and patch
   those rows with the compiled feature kernel or the kernel's own arithmetic;
3. sequentially: the rolling z-score kernel from the previous day's :class:`RollingState`.

``tests/test_walkforward.py`` checks that the result equals ``build_features`` over the
whole tape bit for bit on random tapes built to hit every patched case.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .._io import check_local_dir
from .._typing import PathLike
from .. import _core
from ..errors import ParameterError, TapeError
from ..features.build import RollingState, feature_kernel_params, raw_feature_rows, time_order, rolling_zscore
from ..features.settings import FEATURE_NAMES, FeatureSettings
from ..report import write_json
from ..tape.location import TapeLocation, TapeSource, resolve_tape
from ..tape.store import read_manifest, read_tape
from ..tape.types import Instrument

__all__ = ["CACHE_FORMAT", "DayStatus", "CachedDay", "day_fingerprint", "plan_cache",
           "build_cache", "load_cached_day", "iter_cached_valid_z", "load_cached_mids", "load_cached_flow", "atomic_path"]

CACHE_FORMAT = "clusterlob-feature-cache"
CACHE_VERSION = 4      # 4: sbs / obs and the flow amounts of a contract tape in flow units
Z_COLUMNS = tuple(f"z_{name}" for name in FEATURE_NAMES)
# the feature kernel's book_times layout (defined in _kernels/features.pxi)
_HAS, _MID, _BID, _ASK = (_core.BOOK_TIMES_HAS, _core.BOOK_TIMES_MID_CHANGE, _core.BOOK_TIMES_BID_CHANGE,
                          _core.BOOK_TIMES_ASK_CHANGE)
_NO_TIME = _core.BOOK_NO_TIME


# -- what to build -------------------------------------------------------------------------

@dataclass(frozen=True)
class DayStatus:
    """One tape day as the cache sees it.

    ``key`` chains the settings, this day's ``fingerprint`` and the previous day's key;
    ``cached`` says a finished cache file with this key exists.
    """

    date: str
    trades: int
    book: int
    fingerprint: str
    key: str
    cached: bool

    def to_dict(self) -> dict:
        return {"date": self.date, "trades": self.trades, "book": self.book,
                "fingerprint": self.fingerprint, "key": self.key, "cached": self.cached}


_TAIL_BYTES = 1 << 16


def _stat(loc: TapeLocation, info, *parts: str) -> str:
    """Size and modification time (ns) of a tape file; without a modification time (some
    object stores), a hash of the file's tail (the Parquet footer) stands in for it."""
    if info.mtime_ns is not None:
        return f"{info.size}:{info.mtime_ns}"
    try:
        with loc.filesystem.open_input_file(loc.file(*parts)) as fh:
            fh.seek(max(0, int(info.size) - _TAIL_BYTES))
            tail = fh.read()
    except (OSError, pa.ArrowException) as exc:
        raise TapeError(f"{loc.where(*parts)}: cannot read ({str(exc).splitlines()[0]})") from None
    return f"{info.size}:tail-{hashlib.sha256(tail).hexdigest()[:16]}"


def day_fingerprint(tape_dir: TapeSource, entry: dict, instrument: dict) -> str:
    """Fingerprint of one day's input (see the module doc); raises TapeError on a missing file.
    ``tape_dir`` is a local folder, a URI or a resolved location."""
    loc = resolve_tape(tape_dir)
    parts = [json.dumps(instrument, sort_keys=True), entry["date"]]
    if loc.identity():
        parts.append(f"at:{loc.identity()}")
    for kind in ("trades", "book"):
        rows = int(entry.get(kind, 0))
        name = f"{entry['date']}.parquet"
        info = loc.info(kind, name)
        if info.type == pafs.FileType.File:
            parts.append(f"{kind}:{rows}:{_stat(loc, info, kind, name)}")
        elif rows:
            raise TapeError(f"tape day {entry['date']}: {kind} file {loc.where(kind, name)} is missing "
                            f"(the manifest lists {rows} rows)")
        else:
            parts.append(f"{kind}:0:-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_day_paths(cache_dir: PathLike, settings: FeatureSettings, date: str) -> tuple[Path, Path]:
    """The Parquet file and the JSON metadata of one cached day."""
    folder = Path(cache_dir) / settings.key()
    return folder / f"{date}.parquet", folder / f"{date}.json"


def _mids_path(cache_dir: PathLike, settings: FeatureSettings, date: str) -> Path:
    return Path(cache_dir) / settings.key() / f"{date}.mids.parquet"


def _flow_path(cache_dir: PathLike, settings: FeatureSettings, date: str) -> Path:
    return Path(cache_dir) / settings.key() / f"{date}.flow.parquet"


def read_cache_meta(json_path: Path) -> dict | None:
    """A cached day's metadata, or None when the file is missing or unreadable."""
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == CACHE_FORMAT else None


def plan_cache(tape_dir: TapeSource, settings: FeatureSettings, cache_dir: PathLike) -> list[DayStatus]:
    """Every day of the tape with its chained key and whether its cache file is finished.

    Raises TapeError when a day file listed in the manifest is missing.
    """
    if not isinstance(settings, FeatureSettings):
        raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
    check_local_dir(cache_dir, "the feature cache folder")
    loc = resolve_tape(tape_dir)
    manifest = read_manifest(loc)
    prev = f"{CACHE_FORMAT}/{CACHE_VERSION}/{settings.key()}"
    out = []
    for entry in sorted(manifest["days"], key=lambda e: e["date"]):
        fp = day_fingerprint(loc, entry, manifest["instrument"])
        key = hashlib.sha256(f"{prev}|{fp}".encode()).hexdigest()[:24]
        parquet, meta_path = cache_day_paths(cache_dir, settings, entry["date"])
        meta = read_cache_meta(meta_path) if meta_path.is_file() else None
        cached = bool(meta and meta.get("key") == key and parquet.is_file()
                      and _mids_path(cache_dir, settings, entry["date"]).is_file()
                      and _flow_path(cache_dir, settings, entry["date"]).is_file())
        out.append(DayStatus(entry["date"], int(entry.get("trades", 0)), int(entry.get("book", 0)),
                             fp, key, cached))
        prev = key
    return out


# -- step 1: one day's raw features, independent of earlier days -----------------------------

@dataclass
class _RawDay:
    date: str
    n_trades: int
    unknown_side: int
    trade_index: np.ndarray          # (m,) rows with a snapshot of this day before them
    raw: np.ndarray                  # (m, 6) as if no earlier day existed
    pre_index: np.ndarray            # known-side trades before the day's first snapshot
    pre_ts: np.ndarray
    pre_side: np.ndarray
    pre_amount: np.ndarray
    nan_tm_rows: np.ndarray          # rows of raw with t_m NaN (no mid change yet today)
    nan_age_rows: np.ndarray         # rows of raw with t_age NaN
    row_ts: np.ndarray               # times of the union of those rows, by row
    row_side: np.ndarray
    first_snapshot: tuple | None     # (ts, bid_px0, ask_px0) of the day's first snapshot
    end_state: np.ndarray            # (6,) book state at the day's end, started empty
    end_times: np.ndarray            # (5,)
    book_ts: np.ndarray              # (n_book,) snapshot times (the settings' time key)
    book_mid: np.ndarray             # (n_book,) mid of every snapshot
    flow: tuple                      # (ts_us, side, amount in flow units) of every trade, for OFI


def _raw_day(tape_dir: str, date: str, settings: FeatureSettings) -> _RawDay:
    """Step 1 (runs in a worker): the day's raw features started from an empty book."""
    tape = read_tape(tape_dir, [date], levels=settings.levels, columns=settings.tape_columns())
    trade_index, raw, counts, end_state, end_times = raw_feature_rows(tape, settings, None)
    col = "ts_local_us" if settings.time_key == "local" else "ts_exch_us"
    trade_ts = getattr(tape.trades, col)
    side = tape.trades.side
    n_pre = counts["no_book_before"]
    if n_pre:
        order = time_order(np.ascontiguousarray(trade_ts, dtype=np.int64), "trades", settings.time_key)
        known = side != 0
        rows = np.flatnonzero(known) if order is None else order[known[order]]
        pre = rows[:n_pre].astype(np.int64)
    else:
        pre = np.empty(0, np.int64)
    nan_tm = np.flatnonzero(np.isnan(raw[:, 4]))
    nan_age = np.flatnonzero(np.isnan(raw[:, 5]))
    either = np.union1d(nan_tm, nan_age)
    first = None
    if len(tape.book):
        book_ts = np.ascontiguousarray(getattr(tape.book, col), dtype=np.int64)
        border = time_order(book_ts, "book snapshots", settings.time_key)
        b = 0 if border is None else int(border[0])
        first = (int(book_ts[b]), float(tape.book.bid_px[b, 0]), float(tape.book.ask_px[b, 0]))
    row_ts = np.zeros(raw.shape[0], np.int64)
    row_side = np.zeros(raw.shape[0], np.int8)
    row_ts[either] = trade_ts[trade_index[either]]
    row_side[either] = side[trade_index[either]]
    return _RawDay(date, len(tape.trades), counts["unknown_side"], trade_index, raw, pre,
                   np.ascontiguousarray(trade_ts[pre], dtype=np.int64),
                   np.ascontiguousarray(side[pre], dtype=np.int8),
                   np.ascontiguousarray(tape.trades.amount[pre], dtype=np.float64),
                   nan_tm, nan_age, row_ts[either], row_side[either], first, end_state, end_times,
                   np.ascontiguousarray(getattr(tape.book, col), dtype=np.int64), tape.book.mid(),
                   (np.ascontiguousarray(trade_ts, dtype=np.int64), side,
                    tape.instrument.flow_size(tape.trades.amount)))


# -- step 2: chain the book and patch ------------------------------------------------------

def _differs(a: float, b: float) -> bool:
    # the kernel's rule: a missing value (NaN) equals another missing value
    return not (a == b or (a != a and b != b))


def _first_change_times(start_state, start_times, first) -> tuple[int, int, int]:
    """Last change times of (mid, bid, ask) right after the day's first snapshot."""
    ts, b0, a0 = first
    mid_new, mid_old = 0.5 * (b0 + a0), 0.5 * (start_state[0] + start_state[1])
    mid_t, bid_t, ask_t = (ts if _differs(new, old) else int(start_times[idx])
                           for idx, new, old in ((_MID, mid_new, mid_old), (_BID, b0, start_state[0]),
                                                 (_ASK, a0, start_state[1])))
    return mid_t, bid_t, ask_t


def _chain_book(start_state, start_times, day: _RawDay):
    """Book state at the end of ``day`` given the state at its start (exact)."""
    if day.first_snapshot is None:
        return start_state.copy(), start_times.copy()
    state, times = day.end_state.copy(), day.end_times.copy()
    if start_times[_HAS]:
        carried = _first_change_times(start_state, start_times, day.first_snapshot)
        for idx, t in zip((_MID, _BID, _ASK), carried):
            if times[idx] == _NO_TIME:        # no change after the first snapshot today
                times[idx] = t
    return state, times


def _patch(day: _RawDay, settings: FeatureSettings, tick_size: float, flow_unit: float, start: RollingState):
    """(trade_index, raw, no_book_before) equal to computing the day from ``start``."""
    s_state, s_times = start.book_state, start.book_times
    raw, trade_index = day.raw, day.trade_index
    if not s_times[_HAS]:
        return trade_index, raw, int(day.pre_index.shape[0])
    if day.first_snapshot is not None and (day.nan_tm_rows.size or day.nan_age_rows.size):
        raw = raw.copy()
        t_mid, t_bid, t_ask = _first_change_times(s_state, s_times, day.first_snapshot)
        rows_all = np.union1d(day.nan_tm_rows, day.nan_age_rows)
        pos_tm = np.searchsorted(rows_all, day.nan_tm_rows)
        if t_mid != _NO_TIME:
            raw[day.nan_tm_rows, 4] = (day.row_ts[pos_tm] - t_mid) * 1e-6
        pos_age = np.searchsorted(rows_all, day.nan_age_rows)
        side = day.row_side[pos_age]
        t_change = np.where(side > 0, t_ask, t_bid)
        ok = t_change != _NO_TIME
        raw[day.nan_age_rows[ok], 5] = (day.row_ts[pos_age][ok] - t_change[ok]) * 1e-6
    n_pre = day.pre_index.shape[0]
    if n_pre:
        empty = np.empty((0, 1))
        pre_raw = np.empty((n_pre, len(FEATURE_NAMES)))
        _core.asof_trade_features(
            day.pre_ts, day.pre_side, day.pre_amount, np.arange(n_pre, dtype=np.int64),
            np.empty(0, np.int64), np.empty(0, np.int64), empty, empty, empty, empty,
            feature_kernel_params(settings, tick_size), s_state.copy(), s_times.copy(), pre_raw,
            flow_unit=flow_unit)
        raw = np.concatenate([pre_raw, raw])
        trade_index = np.concatenate([day.pre_index, trade_index])
    return trade_index, raw, 0


# -- the cache files ------------------------------------------------------------------------

@dataclass
class CachedDay:
    """One day's features from the cache.

    Attributes
    ----------
    date : str
    trade_index : (m,) int64
        Positions in that day's ``tape.trades`` (as :class:`clusterlob.features.Features`).
    z : (m, 6) float64 or None
        Rolling z-scores (None when not loaded).
    valid : (m,) bool
    counts : dict
        The feature counts of the day.
    state : RollingState or None
        The state after the day (None when not loaded).
    """

    date: str
    trade_index: np.ndarray
    z: np.ndarray | None
    valid: np.ndarray
    counts: dict
    state: RollingState | None = None

    def to_dict(self) -> dict:
        return {"date": self.date, "rows": int(self.trade_index.shape[0]), "counts": self.counts}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    For binary outputs written by other libraries (Parquet, PNG); text goes through
    :mod:`clusterlob.report`.  The file gets the user's usual mode (mkstemp makes 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_parquet_atomic(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        # no compression: z-scores do not compress, and decoding costs more than the bytes
        pq.write_table(table, tmp, compression="none", row_group_size=1 << 20)


def _write_day(cache_dir, settings: FeatureSettings, status: DayStatus, trade_index, z, valid,
               counts: dict, state: RollingState, book_ts, book_mid, flow) -> None:
    parquet, meta_path = cache_day_paths(cache_dir, settings, status.date)
    _write_parquet_atomic(_flow_path(cache_dir, settings, status.date),
                          pa.table({"ts_us": pa.array(flow[0]), "side": pa.array(flow[1]),
                                    "amount": pa.array(flow[2])}))
    _write_parquet_atomic(_mids_path(cache_dir, settings, status.date),
                          pa.table({"ts_us": pa.array(book_ts), "mid": pa.array(book_mid)}))
    cols = {"trade_index": pa.array(trade_index)}
    for j, name in enumerate(Z_COLUMNS):
        cols[name] = pa.array(np.ascontiguousarray(z[:, j]))
    cols["valid"] = pa.array(valid)
    _write_parquet_atomic(parquet, pa.table(cols))
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "date": status.date,
            "key": status.key, "fingerprint": status.fingerprint,
            "settings": settings.to_dict(), "rows": int(trade_index.shape[0]),
            "counts": counts, "state": state.to_dict()}
    write_json(meta_path, meta, overwrite=True)        # last: marks the day finished


def load_cached_day(cache_dir: PathLike, settings: FeatureSettings, date: str, *, z: bool = True,
                    state: bool = False) -> CachedDay:
    """Read one finished day from the cache (``z=False`` skips the z columns)."""
    parquet, meta_path = cache_day_paths(cache_dir, settings, date)
    meta = read_cache_meta(meta_path) if meta_path.is_file() else None
    if meta is None or not parquet.is_file():
        raise TapeError(f"feature cache has no finished day {date} under {parquet.parent}")
    try:
        table = pq.read_table(parquet, columns=["trade_index", "valid"] + (list(Z_COLUMNS) if z else []))
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"feature cache file {parquet}: cannot read ({str(exc).splitlines()[0]})") from None
    zz = None
    if z:
        # column by column into a (features, rows) block, then one transposing copy into the
        # (rows, features) matrix (writing each column into its strided place costs more)
        block = np.empty((len(Z_COLUMNS), table.num_rows))
        for j, name in enumerate(Z_COLUMNS):
            pos = 0
            for chunk in table[name].chunks:
                values = chunk.to_numpy(zero_copy_only=False)
                block[j, pos:pos + values.shape[0]] = values
                pos += values.shape[0]
        zz = np.ascontiguousarray(block.T)
        del block
    return CachedDay(date, _numpy(table["trade_index"]), zz, _numpy(table["valid"]),
                     meta["counts"], RollingState.from_dict(meta["state"]) if state else None)


def iter_cached_valid_z(cache_dir: PathLike, settings: FeatureSettings, date: str,
                        batch_rows: int = 1 << 18) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(trade_index, z) of the valid rows of one finished cache day, ``batch_rows`` rows at a
    time: labelling a day this way never holds the day's whole z matrix (a sweep worker labels
    each day it replays once)."""
    parquet, meta_path = cache_day_paths(cache_dir, settings, date)
    meta = read_cache_meta(meta_path) if meta_path.is_file() else None
    if meta is None or not parquet.is_file():
        raise TapeError(f"feature cache has no finished day {date} under {parquet.parent}")
    try:
        batches = pq.ParquetFile(parquet).iter_batches(batch_size=batch_rows,
                                                       columns=["trade_index", "valid", *Z_COLUMNS])
        for batch in batches:
            valid = batch.column("valid").to_numpy(zero_copy_only=False)
            index = batch.column("trade_index").to_numpy()
            block = np.empty((len(Z_COLUMNS), batch.num_rows))
            for j, name in enumerate(Z_COLUMNS):
                block[j] = batch.column(name).to_numpy()
            if valid.all():
                yield index, np.ascontiguousarray(block.T)
            else:
                yield index[valid], np.ascontiguousarray(block.T[valid])
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"feature cache file {parquet}: cannot read ({str(exc).splitlines()[0]})") from None


def _numpy(col: pa.ChunkedArray) -> np.ndarray:
    if col.num_chunks == 1:
        return col.chunk(0).to_numpy(zero_copy_only=False)
    return col.to_numpy()


def load_cached_mids(cache_dir: PathLike, settings: FeatureSettings, date: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_us, mid)`` of every book snapshot of a cached day (times in the settings' time key)."""
    path = _mids_path(cache_dir, settings, date)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"feature cache file {path}: cannot read ({str(exc).splitlines()[0]})") from None
    return table["ts_us"].to_numpy(), table["mid"].to_numpy()


def load_cached_flow(cache_dir: PathLike, settings: FeatureSettings, date: str) -> tuple[np.ndarray, ...]:
    """``(ts_us, side, amount)`` of every trade of a cached day, in the tape's row order.

    Times are in the settings' time key; ``side`` is int8 (+1, -1, 0 unknown).
    """
    path = _flow_path(cache_dir, settings, date)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TapeError(f"feature cache file {path}: cannot read ({str(exc).splitlines()[0]})") from None
    return tuple(_numpy(table[name]) for name in ("ts_us", "side", "amount"))


# -- the build ------------------------------------------------------------------------------

def _start_state(cache_dir, settings, statuses, i: int, built: dict) -> RollingState:
    if i == 0:
        return RollingState.new(settings)
    prev = statuses[i - 1].date
    if prev in built:
        return built[prev]
    meta_path = cache_day_paths(cache_dir, settings, prev)[1]
    meta = read_cache_meta(meta_path)
    if meta is None:                         # finished when planned, gone or damaged since
        raise TapeError(f"feature cache file {meta_path} (day {prev}) is missing or unreadable; "
                        f"run again to rebuild it")
    return RollingState.from_dict(meta["state"])


def build_cache(tape_dir: TapeSource, settings: FeatureSettings, cache_dir: PathLike, *, executor: Executor | None = None,
                progress: Callable[[str | None, int, int], None] | None = None,
                last_day: str | None = None) -> list[DayStatus]:
    """Bring the feature cache of every tape day up to date; return the days' status.

    Parameters
    ----------
    tape_dir : str or Path
        Tape directory (``python -m clusterlob.convert`` or ``clusterlob.synth``): a local folder
        or a URI (``file://``, ``s3://``, ...; :func:`clusterlob.tape.location.resolve_tape`).
        The workers get its text, never a filesystem object, and read it themselves.
    settings : FeatureSettings
    cache_dir : str or Path
        Cache folder (local); one sub-folder per settings key.
    executor : concurrent.futures.Executor, optional
        Runs step 1 (read + raw features) of the days to build; None runs it in this
        process.  Any executor works (a process pool, ``dask`` ``client.get_executor()``).
    progress : callable, optional
        ``progress(date, done, total)`` after every finished day (reused days included).
    last_day : str, optional
        Build only the days up to this one (their features do not depend on later days);
        later days keep ``cached=False``.

    Returns
    -------
    list of DayStatus
        Every day, ``cached=True`` after the build (up to ``last_day``).
    """
    statuses = plan_cache(tape_dir, settings, cache_dir)
    folder = Path(cache_dir) / settings.key()
    if folder.is_dir():                       # leftovers of a killed run (one run per cache)
        for leftover in folder.glob(".*.tmp-*"):
            leftover.unlink(missing_ok=True)
    manifest = read_manifest(tape_dir)
    instrument = Instrument.from_dict(manifest["instrument"])
    tick, flow_unit = float(instrument.tick_size), instrument.flow_unit
    todo = [i for i, s in enumerate(statuses) if not s.cached and (last_day is None or s.date <= last_day)]
    total = len([s for s in statuses if last_day is None or s.date <= last_day])
    done = total - len(todo)
    if progress is not None and done:
        progress(None, done, total)
    tape_dir = resolve_tape(tape_dir).task_text()        # tasks carry text, not a filesystem
    window = max(2, getattr(executor, "_max_workers", 2) + 1)   # results held at once
    pending: dict = {}
    built: dict = {}

    def submit(j):
        i = todo[j]
        if executor is None:
            pending[j] = _raw_day(tape_dir, statuses[i].date, settings)
        else:
            pending[j] = executor.submit(_raw_day, tape_dir, statuses[i].date, settings)

    for j in range(min(window, len(todo))):
        submit(j)
    for j, i in enumerate(todo):
        if j + window < len(todo):
            submit(j + window)
        item = pending.pop(j)
        day = item if executor is None else item.result()
        start = _start_state(cache_dir, settings, statuses, i, built)
        trade_index, raw, no_book = _patch(day, settings, tick, flow_unit, start)
        z, state, z_counts = rolling_zscore(raw, settings, start)
        state.book_state, state.book_times = _chain_book(start.book_state, start.book_times, day)
        valid = np.isfinite(z).all(axis=1)
        counts = {"trades": day.n_trades, "unknown_side": day.unknown_side,
                  "no_book_before": no_book, "rows": int(trade_index.shape[0]), **z_counts}
        _write_day(cache_dir, settings, statuses[i], trade_index, z, valid, counts, state,
                   day.book_ts, day.book_mid, day.flow)
        built.pop(statuses[i - 1].date if i else None, None)
        built[statuses[i].date] = state
        statuses[i] = DayStatus(**{**statuses[i].to_dict(), "cached": True})
        done += 1
        if progress is not None:
            progress(statuses[i].date, done, total)
        del day, raw, z
    return statuses
