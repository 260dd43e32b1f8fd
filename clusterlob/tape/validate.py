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
from typing import Sequence

import numpy as np

from .._typing import PathLike
from ..errors import TapeError
from .types import Book, Trades

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
        out = [f"{self.path} ({self.format}): {self.rows_read:,} rows read, "
               f"{self.trades_kept:,} trades and {self.book_kept:,} book snapshots kept"]
        for kind, counts in (("dropped", self.dropped), ("flagged", self.flagged)):
            for reason, n in counts.items():
                where = f" (first at row {self.first_row[reason]})" if reason in self.first_row else ""
                out.append(f"  {kind}: {n:,} rows, {reason}{where}")
        return out


@dataclass
class ValidationReport:
    """Counts over every input of one conversion."""

    files: list = field(default_factory=list)
    strict: bool = False

    def new_file(self, path: PathLike, fmt: str) -> FileReport:
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


def require_columns(found: Sequence[str], required: Sequence[str], where: str) -> None:
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


class _Rules:
    """Applies row rules to one batch: drops and counts, or (strict) raises for the earliest row."""

    def __init__(self, n: int, where: str, rep: FileReport, row_offset: int, strict: bool):
        self.keep = np.ones(n, dtype=bool)
        self.where, self.rep, self.row_offset, self.strict = where, rep, row_offset, strict
        self.violations: list = []

    def rule(self, bad: np.ndarray, reason: str, shown) -> None:
        bad = bad & self.keep          # count each row once, under its first broken rule
        n = int(bad.sum())
        if not n:
            return
        first = int(np.argmax(bad))
        if self.strict:
            self.violations.append((first, n, reason, shown(first)))
        else:
            self.rep.drop(reason, n, self.row_offset + first)
        self.keep &= ~bad

    def finish(self) -> np.ndarray:
        if self.violations:
            first, n, reason, shown = min(self.violations)
            raise TapeError(f"{self.where}: row {self.row_offset + first} has {reason} ({shown}); "
                            f"{n} such rows in this batch (--strict)")
        return self.keep


def clean_trades(trades: Trades, where: str, rep: FileReport, row_offset: int = 0,
                 strict: bool = False, names: dict | None = None) -> Trades:
    """Check a batch of trades; return it without the rows that break a rule (counted in ``rep``).

    ``names`` maps canonical column names to the source file's, for messages.
    """
    names = names or {}
    check_timestamps(trades.ts_exch_us, where, names.get("ts_exch_us", "ts_exch_us"), row_offset)
    check_timestamps(trades.ts_local_us, where, names.get("ts_local_us", "ts_local_us"), row_offset)
    rules = _Rules(len(trades), where, rep, row_offset, strict)
    for column in ("price", "amount"):
        values = getattr(trades, column)
        shown = f"`{names.get(column, column)}`"
        rules.rule(~np.isfinite(values), f"non-finite {shown}", lambda i, v=values: f"value {float(v[i])!r}")
        with np.errstate(invalid="ignore"):
            rules.rule(values <= 0, f"{shown} <= 0", lambda i, v=values: f"value {float(v[i])!r}")
    keep = rules.finish()
    rep.flag("unknown aggressor side (kept; excluded from features and OFI)", int((trades.side == 0).sum()))
    out = trades if keep.all() else trades.take(keep)
    rep.trades_kept += len(out)
    return out


def clean_book(book: Book, where: str, rep: FileReport, row_offset: int = 0,
               strict: bool = False, names: dict | None = None) -> Book:
    """Check a batch of book snapshots; return it without the rows that break a rule."""
    names = names or {}
    check_timestamps(book.ts_exch_us, where, names.get("ts_exch_us", "ts_exch_us"), row_offset)
    check_timestamps(book.ts_local_us, where, names.get("ts_local_us", "ts_local_us"), row_offset)
    bid_px, ask_px, bid_sz, ask_sz = book.bid_px, book.ask_px, book.bid_sz, book.ask_sz
    rules = _Rules(len(book), where, rep, row_offset, strict)

    def touch(i):
        return f"best bid {float(bid_px[i, 0])!r}, best ask {float(ask_px[i, 0])!r}"

    with np.errstate(invalid="ignore"):
        rules.rule(~(np.isfinite(bid_px[:, 0]) & np.isfinite(ask_px[:, 0])), "an empty side (no best bid or ask)", touch)
        rules.rule(bid_px[:, 0] >= ask_px[:, 0], "a crossed or locked book (best bid >= best ask)", touch)
        present_a = np.isfinite(ask_px)
        present_b = np.isfinite(bid_px)
        # a missing level may only follow the last present one
        gap = (~present_a[:, :-1] & present_a[:, 1:]).any(1) | (~present_b[:, :-1] & present_b[:, 1:]).any(1)
        rules.rule(gap, "a missing level between present levels", lambda i: "empty price before a present level")
        rules.rule(((np.diff(ask_px, axis=1) <= 0) & present_a[:, 1:]).any(1), "asks not strictly ascending",
                   lambda i: f"asks {[float(x) for x in ask_px[i][np.isfinite(ask_px[i])][:6]]}")
        rules.rule(((np.diff(bid_px, axis=1) >= 0) & present_b[:, 1:]).any(1), "bids not strictly descending",
                   lambda i: f"bids {[float(x) for x in bid_px[i][np.isfinite(bid_px[i])][:6]]}")
        rules.rule(((present_a & ~(ask_sz > 0)) | (present_b & ~(bid_sz > 0))).any(1),
                   "a level size that is not a finite number > 0", lambda i: "size <= 0 or empty at a present level")
        rules.rule((present_b & (bid_px <= 0)).any(1), "a price <= 0", touch)
    keep = rules.finish()
    out = book if keep.all() else book.take(keep)
    rep.book_kept += len(out)
    return out
