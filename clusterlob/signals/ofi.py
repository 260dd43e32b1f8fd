"""Bucketed order-flow imbalance (OFI) per group of trades, and mid-price returns per bucket.

The grid
--------
Time is cut into buckets of ``bucket_us`` microseconds aligned to the epoch: bucket ``b`` of a
:class:`BucketGrid` covers ``[start_us + b * bucket_us, start_us + (b + 1) * bucket_us)`` and
``start_us`` is a multiple of ``bucket_us``.  A trade or a book snapshot belongs to the bucket
its time falls in; one exactly at a bucket's end belongs to the next bucket.

Order-flow imbalance
--------------------
For every group (a role, a cluster, a planted agent type) and for all trades together::

    ofi_size[g, b]  = sum of side * amount   over the group's trades in bucket b
    ofi_count[g, b] = sum of side            over the same trades

``side`` is +1 for a buy taker, -1 for a sell taker.  Trades of unknown side (0) are left out
(and counted); a bucket without trades of a group has OFI 0.  The "all" group holds every trade
of known side whatever its label, so it is the benchmark the groups are compared with.

Returns
-------
``mid_close[b]`` is the mid of the last book snapshot strictly before bucket ``b`` ends (the last
one inside bucket ``b``, or the latest earlier one when bucket ``b`` has none; snapshots with a
non-finite mid are skipped).  For a horizon of ``h`` buckets::

    r_h[b]  = ln(mid_close[b + h] / mid_close[b])        (FRNB = r_1, the next bucket's return)
    conr[b] = ln(mid_close[b] / mid_close[b - 1])         (the return over bucket b itself)

Everything in ``ofi_*[:, b]`` is known at bucket ``b``'s close, and ``r_h[b]`` starts at that close:
a signal at bucket ``b`` is scored against ``r_1[b]``, never against ``conr[b]`` (the
simultaneity trap of the research log's Experiment 5, see ``docs/signals.md``).

Core functions take plain arrays (times int64 us, side int8, amount float64, labels int8) so they
can be used without a tape; the tape layers (:func:`tape_signals`, the IC study) pass amounts in
the instrument's flow units (``Instrument.flow_size``: contracts x contract size for an inverse
contract, the amount itself for a plain linear tape); :func:`tape_signals` is the thin layer over a :class:`~clusterlob.tape.Tape`
and :class:`BucketAccumulator` builds the same result day by day for tapes that do not fit in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .._typing import ArrayLike
from .. import _core
from .._io import check_int
from ..errors import ParameterError, TapeError
from .book_flow import book_flow_names
from ..cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE, ROLE_NAMES
from ..report import arrow_table
from ..tape.types import US_PER_DAY, Tape, day_of_us, day_start_us

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ALL_TRADES",
    "ROLE_GROUPS",
    "TIME_KEYS",
    "BucketGrid",
    "BucketSignals",
    "BucketAccumulator",
    "bucket_signals",
    "cluster_groups",
    "covered_buckets",
    "forward_returns",
    "close_to_close_returns",
    "mid_close",
    "tape_signals",
]

ALL_TRADES = "all"
ROLE_GROUPS = tuple(zip(ROLE_NAMES, (DIRECTIONAL, OPPORTUNISTIC, PASSIVE)))
TIME_KEYS = ("ts_local_us", "ts_exch_us")
US_PER_SECOND = 1_000_000


def cluster_groups(k: int) -> tuple:
    """Groups ``(("cluster 0", 0), ..., ("cluster k-1", k-1))`` for per-cluster OFI."""
    return tuple((f"cluster {c}", c) for c in range(check_int("k", k, 1, 127)))


def _check_groups(groups) -> tuple:
    out = []
    names = {ALL_TRADES}
    codes = set()
    for item in groups:
        try:
            name, code = item
        except (TypeError, ValueError):
            raise ParameterError(f"`groups` must hold (name, code) pairs, got {item!r}") from None
        if not isinstance(name, str) or not name:
            raise ParameterError(f"group name must be a non-empty string, got {name!r}")
        if name in names:
            raise ParameterError(f"group name {name!r} is used twice (or is the reserved {ALL_TRADES!r})")
        if not hasattr(code, "__index__") or isinstance(code, bool) or not -128 <= int(code) <= 127:
            raise ParameterError(f"group {name!r}: code must be an int8 value, got {code!r}")
        if int(code) in codes:
            raise ParameterError(f"group code {int(code)} is used twice")
        names.add(name)
        codes.add(int(code))
        out.append((name, int(code)))
    return tuple(out)


# -- the grid ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BucketGrid:
    """Epoch-aligned buckets: ``n_buckets`` buckets of ``bucket_us`` starting at ``start_us``."""

    start_us: int
    bucket_us: int
    n_buckets: int

    def __post_init__(self):
        check_int("bucket_us", self.bucket_us, 1)
        if self.start_us % self.bucket_us:
            raise ParameterError(f"`start_us` must be a multiple of `bucket_us` ({self.bucket_us}), "
                                 f"got {self.start_us}")
        if self.n_buckets < 0:
            raise ParameterError(f"`n_buckets` must be >= 0, got {self.n_buckets}")

    @classmethod
    def covering(cls, first_us: int, last_us: int, bucket_us: int) -> "BucketGrid":
        """The smallest aligned grid holding every time in ``[first_us, last_us]``."""
        check_int("bucket_us", bucket_us, 1)
        if last_us < first_us:
            raise ParameterError(f"`last_us` ({last_us}) is before `first_us` ({first_us})")
        start = (int(first_us) // bucket_us) * bucket_us
        return cls(start, int(bucket_us), int(last_us - start) // bucket_us + 1)

    @classmethod
    def for_days(cls, days: Sequence[str], bucket_us: int) -> "BucketGrid":
        """The aligned grid covering whole UTC days, from the first day's 00:00 to the last day's end."""
        if not days:
            raise ParameterError("`days` must name at least one day, got none")
        first = min(day_start_us(d) for d in days)
        last = max(day_start_us(d) for d in days) + US_PER_DAY - 1
        return cls.covering(first, last, bucket_us)

    @property
    def starts_us(self) -> np.ndarray:
        """(n_buckets,) int64 start time of every bucket."""
        return self.start_us + self.bucket_us * np.arange(self.n_buckets, dtype=np.int64)

    @property
    def ends_us(self) -> np.ndarray:
        """(n_buckets,) int64 end time (exclusive) of every bucket."""
        return self.starts_us + self.bucket_us

    def index(self, ts_us: np.ndarray) -> np.ndarray:
        """Bucket of every time (int64; may be < 0 or >= n_buckets for times outside the grid)."""
        return (np.asarray(ts_us, dtype=np.int64) - self.start_us) // self.bucket_us

    def to_dict(self) -> dict:
        return {"start_us": int(self.start_us), "bucket_us": int(self.bucket_us),
                "n_buckets": int(self.n_buckets)}


# -- results ----------------------------------------------------------------------------------

@dataclass
class BucketSignals:
    """OFI per group and mid returns on one bucket grid.

    Attributes
    ----------
    grid : BucketGrid
    group_names : tuple of str
        Row names of the OFI arrays; row 0 is ``"all"`` (every trade of known side).
    group_codes : tuple
        Label code of every row (None for ``"all"``).
    ofi_size, ofi_count : ndarray, shape (n_groups, n_buckets), float64
        Sum of side * amount and sum of side per group and bucket.
    trades : ndarray, shape (n_groups,), int64
        Trades of known side counted in each row.
    mid_close : ndarray, shape (n_buckets,), float64
        Mid of the last snapshot strictly before each bucket's end (NaN before the first one and
        in buckets not covered by the data).
    covered : ndarray, shape (n_buckets,), bool
        Buckets inside the data's days; others (gaps between days) are never used.
    unknown_side : int
        Trades left out because their side is unknown.
    outside : int
        Trades whose time lies outside the grid.
    """

    grid: BucketGrid
    group_names: tuple
    group_codes: tuple
    ofi_size: np.ndarray
    ofi_count: np.ndarray
    trades: np.ndarray
    mid_close: np.ndarray
    covered: np.ndarray
    unknown_side: int = 0
    outside: int = 0
    time_key: str = "ts_local_us"
    notes: list = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"BucketSignals({self.grid.n_buckets} buckets of {self.grid.bucket_us / 1e6:g} s, "
                f"groups={list(self.group_names)}, {int(self.trades[0])} trades)")

    def ofi(self, group: str, weighting: str = "size") -> np.ndarray:
        """(n_buckets,) OFI of one group; ``weighting`` is ``"size"`` or ``"count"``."""
        if group not in self.group_names:
            raise ParameterError(f"`group` must be one of {list(self.group_names)}, got {group!r}")
        if weighting == "size":
            return self.ofi_size[self.group_names.index(group)]
        if weighting == "count":
            return self.ofi_count[self.group_names.index(group)]
        raise ParameterError(f"`weighting` must be 'size' or 'count', got {weighting!r}")

    def forward_returns(self, horizon: int) -> np.ndarray:
        """(n_buckets,) ``r_h[b] = ln(mid_close[b+h] / mid_close[b])``; ``horizon=1`` is FRNB."""
        return forward_returns(self.mid_close, horizon)

    def frnb(self) -> np.ndarray:
        """Future return of the next bucket, ``r_1``."""
        return forward_returns(self.mid_close, 1)

    def conr(self) -> np.ndarray:
        """Return over the bucket itself, ``ln(mid_close[b] / mid_close[b-1])``."""
        return close_to_close_returns(self.mid_close)

    def day_windows(self) -> list:
        """``[(day, slice), ...]``: the covered buckets of every UTC day (by bucket start)."""
        day_index = self.grid.starts_us // US_PER_DAY
        out = []
        for d in np.unique(day_index[self.covered]):
            idx = np.flatnonzero((day_index == d) & self.covered)
            out.append((day_of_us(int(d) * US_PER_DAY), slice(int(idx[0]), int(idx[-1]) + 1)))
        return out

    def to_dict(self) -> dict:
        return {"grid": self.grid.to_dict(), "groups": list(self.group_names),
                "trades": {n: int(c) for n, c in zip(self.group_names, self.trades)},
                "unknown_side": int(self.unknown_side), "outside": int(self.outside),
                "covered_buckets": int(self.covered.sum()), "time_key": self.time_key,
                "notes": list(self.notes)}

    def to_arrow(self) -> pa.Table:
        """One row per bucket: ``bucket_start_us``, ``covered``, ``mid_close``, then
        ``ofi_size_<group>`` and ``ofi_count_<group>`` for every group (row order of the arrays)."""
        columns: dict[str, np.ndarray] = {"bucket_start_us": self.grid.starts_us,
                                          "covered": self.covered, "mid_close": self.mid_close}
        for i, name in enumerate(self.group_names):
            columns[f"ofi_size_{name}"] = self.ofi_size[i]
        for i, name in enumerate(self.group_names):
            columns[f"ofi_count_{name}"] = self.ofi_count[i]
        return arrow_table(columns, {"time_key": self.time_key})


# -- returns ----------------------------------------------------------------------------------

def forward_returns(mid_close: np.ndarray, horizon: int) -> np.ndarray:
    """Log return from bucket ``b``'s close to bucket ``b + horizon``'s close.

    Parameters
    ----------
    mid_close : ndarray, shape (n,)
        Close mid per bucket (NaN where unknown).
    horizon : int
        Buckets ahead, >= 1.

    Returns
    -------
    ndarray, shape (n,)
        ``ln(mid_close[b + h] / mid_close[b])``; NaN for the last ``h`` buckets and where a mid is NaN.
    """
    check_int("horizon", horizon, 1)
    mid = np.asarray(mid_close, dtype=np.float64)
    out = np.full(mid.shape[0], np.nan)
    if mid.shape[0] > horizon:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:-horizon] = np.log(mid[horizon:] / mid[:-horizon])
    return out


def close_to_close_returns(mid_close: np.ndarray) -> np.ndarray:
    """CONR: ``ln(mid_close[b] / mid_close[b - 1])``, NaN for bucket 0 (shape (n,))."""
    mid = np.asarray(mid_close, dtype=np.float64)
    out = np.full(mid.shape[0], np.nan)
    if mid.shape[0] > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1:] = np.log(mid[1:] / mid[:-1])
    return out


def mid_close(book_ts_us: np.ndarray, mid: np.ndarray, grid: BucketGrid) -> np.ndarray:
    """Mid of the last snapshot strictly before every bucket's end.

    Parameters
    ----------
    book_ts_us : ndarray, shape (m,), int64
        Snapshot times (any order; at equal times the later row counts as the later snapshot).
    mid : ndarray, shape (m,), float64
        Mid price of every snapshot; non-finite mids are skipped.
    grid : BucketGrid

    Returns
    -------
    ndarray, shape (grid.n_buckets,)
        NaN before the first usable snapshot.
    """
    acc = BucketAccumulator(grid, ())
    acc.add_book(book_ts_us, mid)
    return acc.finish().mid_close


# -- the accumulator ----------------------------------------------------------------------------

class BucketAccumulator:
    """Build :class:`BucketSignals` from trades and snapshots added in batches (for example by day).

    Parameters
    ----------
    grid : BucketGrid
    groups : sequence of (name, code)
        Groups of trades by label code (int8), e.g. :data:`ROLE_GROUPS` or :func:`cluster_groups`.
        The ``"all"`` group is always added first.
    time_key : {"ts_local_us", "ts_exch_us"}
        Which clock the caller's times are on (recorded in the result).
    book_levels : int
        D > 0 adds the four book-OFI rows of :func:`clusterlob.signals.book_flow.book_flow_names`
        after the groups (fed by :meth:`add_book_flow`); 0 (default) adds none.
    """

    def __init__(self, grid: BucketGrid, groups: Sequence[tuple[str, int | None]] = ROLE_GROUPS, *,
                 time_key: str = "ts_local_us", book_levels: int = 0) -> None:
        if not isinstance(grid, BucketGrid):
            raise ParameterError(f"`grid` must be a BucketGrid, got {type(grid).__name__}")
        self.grid = grid
        self.groups = _check_groups(groups)
        self.time_key = _check_time_key(time_key)
        if isinstance(book_levels, bool) or not isinstance(book_levels, (int, np.integer)) or book_levels < 0:
            raise ParameterError(f"`book_levels` must be an integer >= 0, got {book_levels!r}")
        self.book_levels = int(book_levels)
        self._book_row = 1 + len(self.groups)          # first book-OFI row
        n_rows = 1 + len(self.groups) + (4 if self.book_levels else 0)
        self._row_of_code = np.full(256, -1, dtype=np.int64)   # int8 code + 128 -> OFI row
        for row, (_, code) in enumerate(self.groups, start=1):
            self._row_of_code[code + 128] = row
        n = grid.n_buckets
        self._size = np.zeros((n_rows, n))
        self._count = np.zeros((n_rows, n))
        self._trades = np.zeros(n_rows, dtype=np.int64)
        self._unknown = 0
        self._outside = 0
        self._last_ts = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self._last_mid = np.full(n, np.nan)
        self._last_seq = np.full(n, -1, dtype=np.int64)
        self._seq = 0

    def add_trades(self, ts_us: np.ndarray, side: np.ndarray, amount: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Add trades: times (int64 us), side (+1/-1/0), amount (> 0) and label codes (int8).

        ``labels`` may be None when only the ``"all"`` group is wanted.
        """
        ts = np.asarray(ts_us)
        n_in = ts.shape[0]
        side = np.asarray(side)
        amount = np.asarray(amount, dtype=np.float64)
        if ts.ndim != 1 or side.shape != (n_in,) or amount.shape != (n_in,):
            raise ParameterError(f"trade arrays must be 1-d of one length, got shapes "
                                 f"{ts.shape}, {side.shape}, {amount.shape}")
        if not np.issubdtype(ts.dtype, np.integer):
            raise ParameterError(f"trade times must be int64 microseconds, got dtype {ts.dtype}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (n_in,) or not np.issubdtype(labels.dtype, np.integer):
                raise ParameterError(f"`labels` must be integer codes of shape ({n_in},), "
                                     f"got {labels.dtype} {labels.shape}")
            if n_in and (labels.min() < -128 or labels.max() > 127):
                raise ParameterError(f"`labels` must be int8 codes, got values in "
                                     f"[{labels.min()}, {labels.max()}]")
        elif self.groups:
            raise ParameterError(f"`labels` are needed for the groups {[g for g, _ in self.groups]}")
        if not np.issubdtype(side.dtype, np.integer):
            raise ParameterError(f"`side` must be integers (+1, -1, 0), got dtype {side.dtype}")
        bad_side = (side < -1) | (side > 1)
        if bad_side.any():
            raise ParameterError(f"`side` must be +1, -1 or 0, got {side[bad_side][0].item()!r} "
                                 f"(first at row {int(np.flatnonzero(bad_side)[0])})")
        bad_amount = ~(np.isfinite(amount) & (amount >= 0))
        if bad_amount.any():
            raise ParameterError(f"`amount` must be finite and >= 0, got {amount[bad_amount][0].item()!r} "
                                 f"(first at row {int(np.flatnonzero(bad_amount)[0])})")
        unknown, outside = _core.ofi_accumulate(
            np.ascontiguousarray(ts, dtype=np.int64), np.ascontiguousarray(side, dtype=np.int8),
            np.ascontiguousarray(amount),
            np.empty(0, np.int8) if labels is None else np.ascontiguousarray(labels, dtype=np.int8),
            self._row_of_code, self.grid, self._size, self._count, self._trades)
        self._unknown += unknown
        self._outside += outside

    def add_book_flow(self, ts_us: np.ndarray, e_touch: np.ndarray, e_depth: np.ndarray) -> None:
        """Add per-snapshot book OFI (:func:`~clusterlob.signals.book_flow.book_flow_events`):
        times (int64 us), level-1 and D-level values; snapshots outside the grid are left out."""
        if not self.book_levels:
            raise ParameterError("this accumulator has no book-OFI rows (make it with book_levels >= 1)")
        ts = np.asarray(ts_us)
        e_touch = np.asarray(e_touch, dtype=np.float64)
        e_depth = np.asarray(e_depth, dtype=np.float64)
        if ts.ndim != 1 or e_touch.shape != ts.shape or e_depth.shape != ts.shape:
            raise ParameterError(f"book-flow arrays must be 1-d of one length, got shapes "
                                 f"{ts.shape}, {e_touch.shape}, {e_depth.shape}")
        bucket = self.grid.index(ts)
        inside = (bucket >= 0) & (bucket < self.grid.n_buckets)
        bucket = bucket[inside]
        n = self.grid.n_buckets
        for row, e in ((self._book_row, e_touch[inside]), (self._book_row + 1, e_depth[inside])):
            self._size[row] += np.bincount(bucket, weights=e, minlength=n)
            self._count[row] += np.bincount(bucket, weights=np.sign(e), minlength=n)
            self._trades[row] += int(bucket.shape[0])

    def add_book(self, ts_us: np.ndarray, mid: np.ndarray) -> None:
        """Add book snapshots: times (int64 us) and mid prices (non-finite mids are skipped)."""
        ts = np.asarray(ts_us)
        mid = np.asarray(mid, dtype=np.float64)
        if ts.ndim != 1 or mid.shape != ts.shape:
            raise ParameterError(f"book arrays must be 1-d of one length, got shapes {ts.shape}, {mid.shape}")
        if not np.issubdtype(ts.dtype, np.integer):
            raise ParameterError(f"book times must be int64 microseconds, got dtype {ts.dtype}")
        seq = self._seq + np.arange(ts.shape[0], dtype=np.int64)
        self._seq += ts.shape[0]
        usable = np.isfinite(mid)
        ts, mid, seq = ts[usable].astype(np.int64, copy=False), mid[usable], seq[usable]
        n = self.grid.n_buckets
        # a snapshot before the grid is "strictly before the end" of bucket 0 as well
        bucket = np.maximum(self.grid.index(ts), 0)
        inside = bucket < n
        ts, mid, seq, bucket = ts[inside], mid[inside], seq[inside], bucket[inside]
        if not ts.shape[0]:
            return
        # the latest snapshot of every bucket: last of (bucket, ts, input order)
        if ts.shape[0] > 1 and np.all(ts[1:] >= ts[:-1]):
            order = np.arange(ts.shape[0])          # already in (time, input) order, as tapes are
        else:
            order = np.lexsort((seq, ts, bucket))
        last = order[np.r_[bucket[order][1:] != bucket[order][:-1], True]]
        b = bucket[last]
        newer = (ts[last] > self._last_ts[b]) | ((ts[last] == self._last_ts[b]) & (seq[last] > self._last_seq[b]))
        b, last = b[newer], last[newer]
        self._last_ts[b] = ts[last]
        self._last_mid[b] = mid[last]
        self._last_seq[b] = seq[last]

    def finish(self, covered: ArrayLike | None = None) -> BucketSignals:
        """The result; ``covered`` (bool per bucket, default all) marks buckets inside the data."""
        n = self.grid.n_buckets
        if covered is None:
            covered = np.ones(n, dtype=bool)
        covered = np.asarray(covered, dtype=bool)
        if covered.shape != (n,):
            raise ParameterError(f"`covered` must have shape ({n},), got {covered.shape}")
        have = np.isfinite(self._last_mid)
        # forward fill: the last snapshot before bucket b's end is the latest of buckets <= b
        src = np.where(have, np.arange(n), -1)
        np.maximum.accumulate(src, out=src)
        closes = np.where(src >= 0, self._last_mid[np.maximum(src, 0)], np.nan)
        closes[~covered] = np.nan
        size, count, trades = self._size.copy(), self._count.copy(), self._trades.copy()
        names = (ALL_TRADES,) + tuple(g for g, _ in self.groups)
        if self.book_levels:
            b = self._book_row
            # what the book did besides trades: book OFI minus the trade flow (adds - cancels)
            size[b + 2], size[b + 3] = size[b] - size[0], size[b + 1] - size[0]
            count[b + 2], count[b + 3] = count[b] - count[0], count[b + 1] - count[0]
            trades[b + 2], trades[b + 3] = trades[b], trades[b + 1]
            names += book_flow_names(self.book_levels)
        return BucketSignals(
            grid=self.grid,
            group_names=names,
            group_codes=(None,) + tuple(c for _, c in self.groups) + (None,) * (len(names) - 1 - len(self.groups)),
            ofi_size=size,
            ofi_count=count,
            trades=trades,
            mid_close=closes,
            covered=covered,
            unknown_side=self._unknown,
            outside=self._outside,
            time_key=self.time_key,
        )


def bucket_signals(trade_ts_us: np.ndarray, side: np.ndarray, amount: np.ndarray, labels: np.ndarray | None, book_ts_us: np.ndarray, mid: np.ndarray, grid: BucketGrid,
                   groups: Sequence[tuple[str, int | None]] = ROLE_GROUPS, *, covered: np.ndarray | None = None) -> BucketSignals:
    """OFI per group and close mids on ``grid``, from plain arrays.

    Parameters
    ----------
    trade_ts_us : ndarray, shape (n,), int64
    side : ndarray, shape (n,), int8
        +1 buy taker, -1 sell taker, 0 unknown (left out, counted).
    amount : ndarray, shape (n,), float64
    labels : ndarray, shape (n,), int8, or None
        Group code of every trade (a role, a cluster, an agent type); None when ``groups`` is empty.
    book_ts_us : ndarray, shape (m,), int64
    mid : ndarray, shape (m,), float64
    grid : BucketGrid
    groups : sequence of (name, code)
    covered : ndarray, shape (grid.n_buckets,), bool, optional

    Returns
    -------
    BucketSignals
    """
    acc = BucketAccumulator(grid, groups)
    acc.add_trades(trade_ts_us, side, amount, labels)
    acc.add_book(book_ts_us, mid)
    return acc.finish(covered)


def covered_buckets(grid: BucketGrid, days: Sequence[str]) -> np.ndarray:
    """(n_buckets,) bool: buckets that overlap one of ``days`` (UTC)."""
    day_index = {day_start_us(d) // US_PER_DAY for d in days}
    first_day = grid.starts_us // US_PER_DAY
    last_day = (grid.ends_us - 1) // US_PER_DAY
    return np.isin(first_day, list(day_index)) | np.isin(last_day, list(day_index))


def _check_time_key(time_key: str) -> str:
    if time_key not in TIME_KEYS:
        raise ParameterError(f"`time_key` must be one of {list(TIME_KEYS)}, got {time_key!r}")
    return time_key


def check_bucket_s(bucket_s: float) -> int:
    """``bucket_s`` seconds as whole microseconds, or a one-line error."""
    try:
        finite = np.isfinite(float(bucket_s)) and float(bucket_s) <= 366 * 86_400  # at most a year
    except (TypeError, ValueError, OverflowError):
        finite = False
    if isinstance(bucket_s, bool) or not (isinstance(bucket_s, (int, float, np.integer, np.floating)) and finite
            and bucket_s > 0 and float(bucket_s * US_PER_SECOND).is_integer()):
        raise ParameterError(f"`bucket_s` must be a positive number of seconds up to a year (whole microseconds), "
                             f"got {bucket_s!r}")
    return int(round(bucket_s * US_PER_SECOND))


def tape_signals(tape: Tape, labels: np.ndarray | None = None, *, bucket_s: float = 300, groups: Sequence[tuple[str, int | None]] = ROLE_GROUPS,
                 time_key: str = "ts_local_us") -> BucketSignals:
    """OFI per group and close mids of a :class:`Tape`, on the grid covering its days.

    Parameters
    ----------
    tape : Tape
    labels : ndarray, shape (n_trades,), int8, or None
        Group code of every trade (for example the roles from the model's ``label_trades``).
        None with ``groups=()`` gives the all-trades OFI only.
    bucket_s : float
        Bucket width in seconds (default 300).
    groups : sequence of (name, code)
    time_key : {"ts_local_us", "ts_exch_us"}
        Which clock puts trades and snapshots into buckets (default local receive time).

    Returns
    -------
    BucketSignals
        Buckets of days not in ``tape.days`` are not covered (their mids are NaN).  The size
        OFI is in the instrument's flow units (:meth:`~clusterlob.tape.types.Instrument.flow_size`:
        an inverse contract's quote-currency notional, a plain linear tape's amounts).
    """
    bucket_us = check_bucket_s(bucket_s)
    _check_time_key(time_key)
    if not isinstance(tape, Tape):
        raise ParameterError(f"`tape` must be a Tape, got {type(tape).__name__}")
    if not tape.days:
        raise TapeError("the tape has no days")
    if labels is not None and np.shape(labels) != (len(tape.trades),):
        raise ParameterError(f"`labels` must have one code per trade ({len(tape.trades)}), "
                             f"got shape {np.shape(labels)}")
    grid = BucketGrid.for_days(tape.days, bucket_us)
    acc = BucketAccumulator(grid, groups, time_key=time_key)
    acc.add_trades(getattr(tape.trades, time_key), tape.trades.side, tape.instrument.flow_size(tape.trades.amount),
                   labels)
    acc.add_book(getattr(tape.book, time_key), tape.book.mid())
    return acc.finish(covered_buckets(grid, tape.days))
