"""Validation rules that every reader applies to canonical batches, and the counts they report.

A rule either raises :class:`~clusterlob.errors.TapeError` with one line naming the file, the
column and the offending value (the file as a whole is wrong: missing columns, unparseable
numbers, timestamps in the wrong unit), or drops the offending rows and counts them in a
:class:`ValidationReport` (a row is wrong: a NaN price, a crossed book).  ``strict=True``
turns every drop into an error.  Rows are never dropped without a count.

Rules for trades: price and amount finite and > 0; timestamps plausible (2009..2100 in
microseconds; values that look like milliseconds or nanoseconds are an error saying so).
Rules for book snapshots: the touch present on both sides; bid_px[0] < ask_px[0] (crossed or
locked books are dropped); asks strictly ascending and bids strictly descending over the
levels present, with missing levels (NaN) only after the last present one; sizes finite and
> 0 where a price is present.  Out-of-order rows and duplicate trade ids are counted by the
tape writer, which sorts stably.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import TapeError
from .tape import Book, Trades

__all__ = ["ValidationReport", "FileReport", "clean_trades", "clean_book", "check_timestamps",
           "require_columns", "TS_MIN_US", "TS_MAX_US"]

TS_MIN_US = 1_230_768_000_000_000   # 2009-01-01
TS_MAX_US = 4_102_444_800_000_000   # 2100-01-01


@dataclass
class FileReport:
    """Counts for one input file."""

    path: str
    format: str
    rows_read: int = 0
    trades_kept: int = 0
    book_kept: int = 0
    dropped: dict = field(default_factory=dict)    # reason -> rows
    flagged: dict = field(default_factory=dict)    # reason -> rows (kept, but worth knowing)
    first_row: dict = field(default_factory=dict)  # reason -> first offending row (0-based data row)

    def drop(self, reason: str, count: int, first_row: int | None = None) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)
            if first_row is not None:
                self.first_row.setdefault(reason, int(first_row))

    def flag(self, reason: str, count: int, first_row: int | None = None) -> None:
        if count:
            self.flagged[reason] = self.flagged.get(reason, 0) + int(count)
            if first_row is not None:
                self.first_row.setdefault(reason, int(first_row))

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "rows_read": self.rows_read,
                "trades_kept": self.trades_kept, "book_kept": self.book_kept,
                "dropped": dict(self.dropped), "flagged": dict(self.flagged),
                "first_row": dict(self.first_row)}

    def lines(self) -> list[str]:
        out = [f"{self.path} ({self.format}): {self.rows_read} rows read, "
               f"{self.trades_kept} trades and {self.book_kept} book snapshots kept"]
        for kind, counts in (("dropped", self.dropped), ("flagged", self.flagged)):
            for reason, n in counts.items():
                where = f" (first at row {self.first_row[reason]})" if reason in self.first_row else ""
                out.append(f"  {kind}: {n} rows, {reason}{where}")
        return out


@dataclass
class ValidationReport:
    """Counts over every input of one conversion."""

    files: list = field(default_factory=list)
    strict: bool = False

    def new_file(self, path, fmt: str) -> FileReport:
        rep = FileReport(str(path), fmt)
        self.files.append(rep)
        return rep

    def total(self, kind: str) -> dict:
        out: dict = {}
        for f in self.files:
            for reason, n in getattr(f, kind).items():
                out[reason] = out.get(reason, 0) + n
        return out

    def to_dict(self) -> dict:
        return {"files": [f.to_dict() for f in self.files],
                "dropped": self.total("dropped"), "flagged": self.total("flagged")}


def require_columns(found, required, where: str) -> None:
    """Raise naming the missing columns and listing the ones found."""
    missing = [c for c in required if c not in found]
    if missing:
        shown = ", ".join(list(found)[:12]) + (", ..." if len(found) > 12 else "")
        raise TapeError(f"{where}: missing column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(f'`{c}`' for c in missing)} (found: {shown})")


def check_timestamps(ts_us: np.ndarray, where: str, column: str, row_offset: int = 0) -> None:
    """Raise if a timestamp is outside 2009..2100 in microseconds, guessing the unit used."""
    if ts_us.size == 0:
        return
    bad = (ts_us < TS_MIN_US) | (ts_us >= TS_MAX_US)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    value = int(ts_us[i])
    hint = ""
    if TS_MIN_US // 1000 <= value < TS_MAX_US // 1000:
        hint = "; it looks like milliseconds, the tape needs microseconds"
    elif TS_MIN_US * 1000 <= value < TS_MAX_US * 1000:
        hint = "; it looks like nanoseconds, the tape needs microseconds"
    raise TapeError(f"{where}: column `{column}` has an implausible timestamp {value} at row "
                    f"{row_offset + i} (expected microseconds since the epoch, 2009..2100){hint}")


def _drop_or_raise(rep: FileReport, strict: bool, bad: np.ndarray, reason: str, where: str,
                   row_offset: int, shown) -> None:
    n = int(bad.sum())
    if not n:
        return
    first = int(np.argmax(bad))
    if strict:
        raise TapeError(f"{where}: {n} rows with {reason} (first at row {row_offset + first}: {shown(first)})")
    rep.drop(reason, n, row_offset + first)


def clean_trades(trades: Trades, where: str, rep: FileReport, row_offset: int = 0,
                 strict: bool = False) -> Trades:
    """Check a batch of trades; return it without the rows that break a rule (counted in ``rep``)."""
    check_timestamps(trades.ts_local_us, where, "ts_local_us", row_offset)
    check_timestamps(trades.ts_exch_us, where, "ts_exch_us", row_offset)
    keep = np.ones(len(trades), dtype=bool)
    for column in ("price", "amount"):
        values = getattr(trades, column)
        bad = ~np.isfinite(values)
        _drop_or_raise(rep, strict, bad, f"non-finite `{column}`", where, row_offset,
                       lambda i, v=values: f"{v[i]!r}")
        keep &= ~bad
        bad = np.isfinite(values) & (values <= 0)
        _drop_or_raise(rep, strict, bad, f"`{column}` <= 0", where, row_offset,
                       lambda i, v=values: f"{v[i]!r}")
        keep &= ~bad
    unknown = int((trades.side == 0).sum())
    rep.flag("unknown aggressor side (kept; excluded from features and OFI)", unknown)
    out = trades if keep.all() else trades.take(keep)
    rep.trades_kept += len(out)
    return out


def clean_book(book: Book, where: str, rep: FileReport, row_offset: int = 0,
               strict: bool = False) -> Book:
    """Check a batch of book snapshots; return it without the rows that break a rule."""
    check_timestamps(book.ts_local_us, where, "ts_local_us", row_offset)
    check_timestamps(book.ts_exch_us, where, "ts_exch_us", row_offset)
    bid_px, ask_px, bid_sz, ask_sz = book.bid_px, book.ask_px, book.bid_sz, book.ask_sz
    keep = np.ones(len(book), dtype=bool)

    def rule(bad, reason, shown):
        nonlocal keep
        bad = bad & keep          # count each row once, under its first broken rule
        _drop_or_raise(rep, strict, bad, reason, where, row_offset, shown)
        keep &= ~bad

    with np.errstate(invalid="ignore"):
        rule(~(np.isfinite(bid_px[:, 0]) & np.isfinite(ask_px[:, 0])), "an empty side (no best bid or ask)",
             lambda i: f"bid {bid_px[i, 0]!r}, ask {ask_px[i, 0]!r}")
        rule(bid_px[:, 0] >= ask_px[:, 0], "a crossed or locked book (best bid >= best ask)",
             lambda i: f"bid {bid_px[i, 0]!r} >= ask {ask_px[i, 0]!r}")
        present_a = np.isfinite(ask_px)
        present_b = np.isfinite(bid_px)
        # a missing level may only follow the last present one
        gap = (~present_a[:, :-1] & present_a[:, 1:]).any(1) | (~present_b[:, :-1] & present_b[:, 1:]).any(1)
        rule(gap, "a missing level between present levels", lambda i: "NaN price before a present level")
        asc = (np.diff(ask_px, axis=1) <= 0) & present_a[:, 1:]
        rule(asc.any(1), "asks not strictly ascending",
             lambda i: f"asks {ask_px[i][np.isfinite(ask_px[i])][:6].tolist()}")
        desc = (np.diff(bid_px, axis=1) >= 0) & present_b[:, 1:]
        rule(desc.any(1), "bids not strictly descending",
             lambda i: f"bids {bid_px[i][np.isfinite(bid_px[i])][:6].tolist()}")
        bad_size = ((present_a & ~(ask_sz > 0)) | (present_b & ~(bid_sz > 0))).any(1)
        rule(bad_size, "a level size that is not a finite number > 0",
             lambda i: "size <= 0 or NaN at a present level")
        nonpos = (present_b & (bid_px <= 0)).any(1)
        rule(nonpos, "a price <= 0", lambda i: f"bid {bid_px[i, 0]!r}")
    out = book if keep.all() else book.take(keep)
    rep.book_kept += len(out)
    return out
