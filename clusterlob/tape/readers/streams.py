"""Many input files as streams: expanding folders and globs, ordering, and carrying a book
over file boundaries.

A recorder writes one file a day (or an hour); only the first may start with a REST depth
snapshot.  The files of one format form one *stream*: they are ordered by their first
receive time (read from the first line or data row), and a reader that rebuilds a book
hands its book and sync state on to the next file:

* Binance stream recordings share one :class:`StreamSync` (a
  :class:`~clusterlob.readers.binance_book.DepthSync`): the book carries over when the next
  file's first depth update continues the chain (``pu`` == the previous ``u``; spot:
  ``U`` == previous ``u`` + 1); otherwise that is a sequence gap, reported with both file
  names, until the next REST snapshot.  Per-file counts stay per file.
* Tardis ``incremental_book_L2`` and Binance historical depth files share one
  :class:`~clusterlob.readers.l2_rows.L2RowBook` (and the depth files' id chain).
* Other formats (trades, book snapshots, quotes) need no state: each file is read alone.

Files of different symbols are an error unless ``--symbol`` picks one; two formats that would
both write the tape's book (or both its trades) are an error too: a tape holds one stream
of each.
"""
from __future__ import annotations

import csv
import glob
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..._typing import PathLike
from ...errors import TapeError
from ..validate import TS_MIN_US, FileReport, ValidationReport
from .base import Reader, ReaderOptions, read_head
from .binance import BinanceReader
from .binance_book import DepthSync
from .binance_depth import BinanceDepthFileReader, DepthChain
from .l2_rows import L2RowBook
from .tardis_l2 import TardisIncrementalReader

__all__ = ["expand_inputs", "peek", "plan_streams", "open_readers", "Stream", "StreamSync",
           "BinanceStreamReader", "produces"]

_GLOB = re.compile(r"[*?\[]")
_SYMBOL = re.compile(rb'"s"\s*:\s*"([^"]+)"')


def expand_inputs(inputs: Iterable[PathLike]) -> list[Path]:
    """Paths from the command line: a folder stands for the files in it (hidden files
    skipped), a pattern with ``*``, ``?`` or ``[`` that names no file is expanded as a glob.
    Each file once, in the order given."""
    out: list = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not files:
                raise TapeError(f"input folder {p} holds no files")
            out.extend(files)
        elif not p.exists() and _GLOB.search(str(item)):
            files = sorted(Path(f) for f in glob.glob(str(item)) if Path(f).is_file())
            if not files:
                raise TapeError(f"input pattern {item!r} matches no file")
            out.extend(files)
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        key = p.resolve() if p.exists() else p
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


_PRODUCES = {"BinanceReader": {"trades", "book", "funding"}, "TardisTradesReader": {"trades"},
             "TardisBookReader": {"book"}, "FlatTradesParquetReader": {"trades"},
             "FlatBookParquetReader": {"book"}, "PointlineTradesReader": {"trades"},
             "PointlineBookReader": {"book"}}


def produces(cls) -> frozenset:
    """What a reader class writes into the tape: ``trades``, ``book``, ``funding``."""
    return frozenset(getattr(cls, "produces", None) or _PRODUCES.get(cls.__name__) or ())


def peek(path: Path, cls) -> tuple:
    """``(first receive time in us or None, symbol or None)`` from a file's first bytes."""
    try:
        head = read_head(path)
    except TapeError:
        return None, None
    if cls is BinanceReader or issubclass(cls, BinanceReader):
        first = head.lstrip().split(b" ", 1)[0]
        match = _SYMBOL.search(head)
        try:
            ts = int(first) // 1000
        except ValueError:
            ts = None
        return ts, (match.group(1).decode("utf-8", "replace").upper() if match else None)
    if head[:4] == b"PAR1":
        return None, None
    try:
        rows = csv.reader(io.StringIO(head.decode("utf-8", "replace").lstrip("\ufeff")))
        header = [c.strip() for c in next(rows)]
        first_row = next(rows, None)
    except (csv.Error, StopIteration):
        return None, None
    if not first_row:
        return None, None
    cells = dict(zip(header, (c.strip() for c in first_row)))
    ts = None
    for col in ("local_timestamp", "timestamp", "time"):
        try:
            ts = int(cells[col])
            break
        except (KeyError, ValueError):
            continue
    if ts is not None and ts < TS_MIN_US:
        ts *= 1000                                   # milliseconds (Binance depth files)
    return ts, (cells.get("symbol") or None)


@dataclass
class Stream:
    """The files of one format, in reading order."""

    cls: type[Reader]
    paths: list

    @property
    def name(self) -> str:
        return self.cls.format_name


def plan_streams(readers: Iterable[tuple[Path, type[Reader]]], symbol: str | None = None) -> list:
    """Group ``(path, reader class)`` pairs into streams, each ordered by first receive time
    (then name); raise for files of several symbols (without ``symbol``) or for two formats
    that would both write the tape's book or trades."""
    peeked = {path: peek(path, cls) for path, cls in readers}
    if symbol is None:
        by_symbol: dict = {}
        for path, (_, sym) in peeked.items():
            if sym is not None:
                by_symbol.setdefault(sym.upper(), []).append(path.name)
        if len(by_symbol) > 1:
            shown = "; ".join(f"{s}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"
                              for s, names in sorted(by_symbol.items()))
            raise TapeError(f"inputs disagree on the symbol: {', '.join(sorted(by_symbol))} ({shown}); choose "
                            f"one with --symbol or convert each into its own tape")
    groups: dict = {}
    for path, cls in readers:
        groups.setdefault(cls, []).append(path)
    for kind in ("book", "trades", "funding"):
        owners = [cls for cls in groups if kind in produces(cls)]
        if kind == "trades":   # a recording may hold only depth: trades-only formats conflict
            owners = [cls for cls in owners if produces(cls) == {"trades"}] or owners[:1]
        if len(owners) > 1:
            shown = "; ".join(f"{c.format_name} ({', '.join(p.name for p in groups[c][:2])}"
                              f"{', ...' if len(groups[c]) > 2 else ''})" for c in owners)
            raise TapeError(f"the inputs mix {kind} streams of different formats: {shown}; a tape holds one "
                            f"{kind} stream, convert them into separate tapes")
    far = float("inf")
    return [Stream(cls, sorted(paths, key=lambda p: (peeked[p][0] if peeked[p][0] is not None else far,
                                                      p.name)))
            for cls, paths in groups.items()]


class StreamSync(DepthSync):
    """A :class:`DepthSync` handed from file to file, counting per file (see
    :meth:`start_file`) and naming the files in the gaps it reports."""

    _COUNTERS = ("applied", "diffs_seen", "not_applied_before_sync", "snapshots_seen", "snapshots_used",
                 "snapshots_unconnected", "snapshots_ignored")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file: str | None = None
        self.prev_file: str | None = None
        self.totals = dict.fromkeys(self._COUNTERS, 0)

    def start_file(self, name: str) -> None:
        """Begin the next file: counts (and the gap list) restart at zero for its report."""
        for k in self._COUNTERS:
            self.totals[k] += getattr(self, k)
            setattr(self, k, 0)
        self.gaps = []
        self.prev_file, self.file = self.file, name

    def total(self, name: str) -> int:
        return self.totals[name] + getattr(self, name)

    def _break(self, diff, reason: str) -> None:
        if self.diffs_seen == 1 and self.prev_file is not None:
            prev = f"pu={diff[2]}" if diff[2] is not None else f"U={diff[0]}"
            reason = (f"{reason}, across the file boundary: {self.prev_file} ends at u={self.last_u}, "
                      f"{self.file} starts with {prev}")
        elif self.prev_file is not None or self.file is not None:
            reason = f"{reason} (in {self.file})"
        super()._break(diff, reason)


class BinanceStreamReader(BinanceReader):
    """One file of a many-file Binance recording: uses the stream's :class:`StreamSync`."""

    def __init__(self, path: PathLike, options: ReaderOptions, report: FileReport, sync: StreamSync, files: list,
                 continues: bool) -> None:
        super().__init__(path, options, report)
        self.stream_sync = sync
        self.stream_files = files
        self.continues = continues

    def _new_sync(self):
        sync = self.stream_sync
        sync.on_bad = self._bad
        sync.on_apply = self.on_depth_applied
        sync.start_file(self.path.name)
        return sync

    def _finish(self) -> None:
        sync = self.stream_sync         # (self._sync, see _new_sync)
        if not self.continues and sync.total("diffs_seen") and not sync.ever_synced:
            files = self.stream_files
            raise TapeError(f"{self.format_name} of {len(files)} files ({files[0].name} .. {files[-1].name}): "
                            f"{sync.total('diffs_seen'):,} depth updates, {sync.total('snapshots_seen')} REST "
                            f"depth snapshots, none connecting (U <= lastUpdateId <= u never holds, or no "
                            f"snapshot line); the book cannot be built")
        super()._finish()


def open_readers(stream: Stream, options: ReaderOptions,
                 report: ValidationReport) -> Iterator[tuple[Path, Reader]]:
    """Yield ``(path, reader)`` for every file of a stream, in order, sharing state between
    them where the format rebuilds a book.  ``report`` is the ValidationReport (one
    FileReport per file)."""
    paths, cls = stream.paths, stream.cls
    last = len(paths) - 1
    if cls is BinanceReader and len(paths) > 1:
        sync = StreamSync(None)
        for k, path in enumerate(paths):
            yield path, BinanceStreamReader(path, options, report.new_file(path, cls.format_name), sync,
                                            paths, continues=k < last)
    elif cls is TardisIncrementalReader:
        book = L2RowBook()
        for k, path in enumerate(paths):
            yield path, cls(path, options, report.new_file(path, cls.format_name), row_book=book,
                            last_file=k == last)
    elif cls is BinanceDepthFileReader:
        book, chain = L2RowBook(), DepthChain()
        for k, path in enumerate(paths):
            yield path, cls(path, options, report.new_file(path, cls.format_name), row_book=book, chain=chain,
                            last_file=k == last)
    else:
        for path in paths:
            yield path, cls(path, options, report.new_file(path, cls.format_name))
