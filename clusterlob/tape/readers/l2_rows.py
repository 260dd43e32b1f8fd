"""An L2 book rebuilt from one row per level update, shared by the row formats.

Tardis ``incremental_book_L2`` and Binance historical depth files give one price level a
row; :class:`L2RowBook` applies batches of such rows to one
:class:`~clusterlob.readers.binance_book.L2Book` with the compiled kernel
``_core.l2_apply_rows`` and returns a 25-level :class:`~clusterlob.tape.Book` row per
finished group of rows (one exchange message).  A reader decides what each row is (bid or
ask, snapshot or update, a break in the update chain) and validates prices and amounts
first; the book object carries over from one file to the next when files form one stream.

Rules (the kernel's docstring is the reference): a snapshot row after a non-snapshot row
(or flagged as a new block) clears the book and brings it in sync; amount 0 removes a
level; rows are applied only while in sync, others are counted (before the first snapshot,
or in a gap after a break); a group's snapshot row is written only when the book is in sync
at its end, and never in the middle of a snapshot block.
"""
from __future__ import annotations

import numpy as np

from ... import _core
from ..._typing import ArrayLike
from ...errors import TapeError
from ..types import MAX_LEVELS, Book
from ..validate import FileReport, clean_book
from .binance_book import L2Book

__all__ = ["L2RowBook", "KIND", "check_level_values"]

KIND = _core.L2_KIND          # bits of the per-row ``kind`` code
_STATE = _core.L2_STATE
_COUNTS = _core.L2_COUNTS
CHUNK_ROWS = 1 << 14          # rows per kernel call (output buffers: CHUNK_ROWS x 800 bytes)


class L2RowBook:
    """One book and the kernel state of a stream of level rows (possibly many files)."""

    def __init__(self, levels: int = MAX_LEVELS):
        self.levels = levels
        self.book = L2Book()
        self.state = np.zeros(_STATE["size"], np.int64)
        self.counts = np.zeros(_COUNTS["size"], np.int64)

    @property
    def synced(self) -> bool:
        return bool(self.state[_STATE["synced"]])

    @property
    def ever_synced(self) -> bool:
        return bool(self.state[_STATE["ever"]])

    def count(self, name: str) -> int:
        return int(self.counts[_COUNTS[name]])

    def apply(self, group: ArrayLike, ts_exch_us: ArrayLike, ts_local_us: ArrayLike, kind: ArrayLike,
              price: ArrayLike, amount: ArrayLike, file_rows: np.ndarray | int = 0,
              final: bool = False) -> tuple[Book, np.ndarray] | None:
        """Apply one batch; ``(Book, file_rows)`` of the groups it finished, or None.

        ``file_rows``: each input row's row in its file (an array), or the first one's (an
        int, the rest following).  The returned ``file_rows`` hold, for each book row, the file
        row of its group's last row.  The
        batch is applied in chunks of at most ``CHUNK_ROWS`` rows, so the output buffers stay
        small (a group can write one row per input row).
        """
        as_i8 = lambda a: np.ascontiguousarray(a, dtype=np.int64)   # noqa: E731
        as_f8 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        group, ts_exch_us, ts_local_us = as_i8(group), as_i8(ts_exch_us), as_i8(ts_local_us)
        kind, price, amount = np.ascontiguousarray(kind, dtype=np.int8), as_f8(price), as_f8(amount)
        n = len(group)
        if np.ndim(file_rows) == 0:
            file_rows = np.arange(int(file_rows), int(file_rows) + n, dtype=np.int64)
        file_rows = as_i8(file_rows)
        parts = []
        for a in range(0, max(n, 1), CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, n)
            m = b - a
            out_exch = np.empty(m + 1, np.int64)
            out_local = np.empty(m + 1, np.int64)
            out_row = np.empty(m + 1, np.int64)
            out_levels = np.empty((m + 1, 4, self.levels))
            k = _core.l2_apply_rows(self.book, group[a:b], ts_exch_us[a:b], ts_local_us[a:b], kind[a:b],
                                    price[a:b], amount[a:b], file_rows[a:b], self.state, self.counts,
                                    out_exch, out_local, out_row, out_levels, final and b == n)
            if k:
                parts.append((Book(out_exch[:k].copy(), out_local[:k].copy(),
                                   *(out_levels[:k, j].copy() for j in range(4))), out_row[:k].copy()))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return Book.concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def finish(self) -> tuple[Book, np.ndarray] | None:
        """Close the pending group at the end of the stream; as :meth:`apply`."""
        e8, ei = np.empty(0), np.empty(0, np.int64)
        return self.apply(ei, ei, ei, np.empty(0, np.int8), e8, e8, 0, final=True)


def clean_rows(out: tuple[Book, np.ndarray] | None, where: str, rep: FileReport, strict: bool, names: dict,
               what: str = " after a group of rows (the group's last row given)") -> Book | None:
    """Validate ``(book, file_rows)`` as written by :meth:`L2RowBook.apply` (crossed books and
    the rest counted as for every reader), reporting the file row of each rule's first
    offender."""
    if out is None:
        return None
    book, file_rows = out
    scratch = FileReport(rep.path, rep.format)
    kept = clean_book(book, where, scratch, 0, False, names)
    if strict and scratch.dropped:       # name the file row, not the book row
        reason = min(scratch.dropped, key=lambda r: scratch.first_row.get(r, 0))
        row = int(file_rows[scratch.first_row.get(reason, 0)])
        at = f"after the group ending at row {row}" if what else f"at row {row}"
        raise TapeError(f"{where}: the book {at} has {reason}; "
                        f"{sum(scratch.dropped.values())} such book rows in this batch (--strict)")
    rep.book_kept += scratch.book_kept
    for reason, n in scratch.dropped.items():
        rep.drop(f"book snapshots with {reason}{what}", n,
                 int(file_rows[scratch.first_row[reason]]) if reason in scratch.first_row else None)
    return kept if len(kept) else None


def check_level_values(price: np.ndarray, amount: np.ndarray, where: str, file_rows: np.ndarray,
                       price_col: str, amount_col: str, skip_bad: bool, rep: FileReport) -> np.ndarray:
    """Rows whose price is not a finite number > 0 or whose amount is not a finite number
    >= 0: an error naming the first (column, file row, value), or with ``skip_bad`` a boolean
    mask of them (counted; the caller marks them as breaks)."""
    with np.errstate(invalid="ignore"):
        bad_price = ~(np.isfinite(price) & (price > 0))
        bad_amount = ~(np.isfinite(amount) & (amount >= 0))
    bad = bad_price | bad_amount
    if not bad.any():
        return bad
    i = int(np.argmax(bad))
    column, value, rule = ((price_col, price[i], "a finite number > 0") if bad_price[i]
                           else (amount_col, amount[i], "a finite number >= 0"))
    if not skip_bad:
        raise TapeError(f"{where}: row {int(file_rows[i])}: column `{column}` must be {rule}, got {float(value)!r} "
                        f"({int(bad.sum())} such rows in this batch; --skip-bad skips them and marks the "
                        f"book out of sync until the next snapshot)")
    rep.drop("rows with a price that is not a finite number > 0 or an amount that is not a finite "
             "number >= 0 (skipped; the book is out of sync from there until the next snapshot)",
             int(bad.sum()), int(file_rows[i]))
    return bad


def report_counts(book: L2RowBook, before: np.ndarray, rep: FileReport, what: str = "update rows") -> None:
    """Flag what the kernel counted while reading one file (``before``: counts at its start)."""
    diff = {name: int(book.counts[i] - before[i]) for name, i in _COUNTS.items() if name != "size"}
    rep.flag(f"{what} before the first snapshot (not applied)", diff["before_snapshot"])
    rep.flag(f"{what} while the book was out of sync, after a break, before the next snapshot "
             f"(not applied)", diff["in_gap"])
    rep.flag("snapshot blocks (the book was replaced)", diff["snapshots"])
