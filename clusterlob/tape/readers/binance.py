"""Raw Binance stream recordings: trades, and the L2 book rebuilt from depth diffs.

Input
    One message a line, ``<local receive time, ns since the epoch> <JSON>``, gzip or plain
    text.  A message is a combined-stream wrapper ``{"stream": ..., "data": {...}}`` or a bare
    payload: ``trade``, ``aggTrade``, ``depthUpdate`` (any ``@depth`` / ``@depth@<n>ms`` diff
    stream), ``bookTicker``, ``markPriceUpdate`` (``@markPrice``), or a REST depth snapshot
    ``{"lastUpdateId", "bids", "asks"}``.  Partial-book streams (``@depth5/10/20``), other
    streams and subscription replies are counted and ignored.  Blank lines are skipped.

Trades
    ``ts_exch_us`` = ``T`` (ms) * 1000; ``ts_local_us`` = line prefix (ns) // 1000;
    ``trade_id`` = ``t`` (aggTrade: ``a``); ``side`` = -1 when ``m`` is true (the buyer was
    the maker, so the taker sold), else +1.  Only ``X`` == MARKET trades are kept by default;
    others (INSURANCE_FUND, ADL, ...) are counted and kept with ``keep_non_market``.  A trade
    without ``X`` (spot, and every aggTrade) counts as a market trade.  When a file holds
    both ``trade`` and ``aggTrade`` messages the ``trade`` messages are used and the
    aggTrades dropped (counted), unless aggTrades were already written (then an error).

Book snapshots (25 levels, NaN-padded)
    The book is rebuilt by :class:`~clusterlob.readers.binance_book.DepthSync`.  One row is
    emitted after every depth update applied while the book is in sync, with ``ts_exch_us`` =
    the update's ``T`` (transaction time; ``E`` when there is no ``T``) and ``ts_local_us`` =
    its line's receive time.  Buffered updates applied when a REST snapshot connects emit a
    single row, the book after the last of them, stamped with the receive time of the line
    that completed the sync (usually the REST snapshot line) and that update's ``T``: the
    book was not known earlier than that.  The REST snapshot alone emits nothing, nor does a
    book out of sync.  ``bookTicker`` messages are counted, not written.

Funding
    ``markPriceUpdate`` messages become rows of the tape's funding table
    (:class:`~clusterlob.tape.Funding`): ``ts_exch_us`` = ``E`` * 1000, ``funding_rate`` =
    ``r``, ``next_funding_us`` = ``T`` * 1000 (-1 when 0 or absent), ``mark_price`` = ``p``,
    ``index_price`` = ``i``.  An update without a finite ``r`` (delivery contracts send
    ``""``) is dropped and counted.

Errors and counts
    Malformed lines are an error naming the line number, or counted and skipped with
    ``skip_bad``.  Messages for several symbols are an error unless ``symbol`` picks one (a
    REST snapshot names no symbol: it is used only when it connects to the chosen symbol's
    updates).  Depth updates without any REST snapshot are an error: the book cannot be built
    without one.  Sequence gaps, updates not applied, non-market trades and ignored streams
    are counted in the file report; :attr:`BinanceReader.summary` holds every count.
    ``strict`` applies to the shared row rules (:func:`~clusterlob.validate.clean_trades`,
    :func:`~clusterlob.validate.clean_book`), as for every reader.

Speed
    ``bookTicker``, MARKET ``trade`` and ``@depth`` diff lines of the usual USD-M combined-
    stream shape are read by a compiled scanner (``_core.BinanceLineScanner``) that accepts
    only lines which are valid JSON of exactly that shape and parses numbers as ``float()``
    does; every other line goes through ``json.loads``.  Both paths give identical output
    (tested on the fixtures and the real recording).
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

import numpy as np

from ..._typing import PathLike
from ...errors import TapeError
from ... import _core
from ..types import MAX_LEVELS, Book, Funding, Trades
from ..validate import clean_book, clean_trades
from .base import Reader
from .binance_book import DepthSync, L2Book, SequenceGap

if TYPE_CHECKING:
    from .base import ReaderOptions
    from ..validate import FileReport

__all__ = ["BinanceReader", "BinanceSummary", "Message", "iter_messages", "L2Book", "DepthSync",
           "SequenceGap"]

_SNIFF = re.compile(rb'\s*\d{9,20} \{\s*"(?:stream|e|lastUpdateId|u|result|id)"\s*:')
DIFF_STREAM = re.compile(r"@depth(@\d+ms)?$")
_CHUNK_BYTES = 1 << 20
_MAX_TRADE_ROWS = 1 << 16
_MAX_BOOK_ROWS = 1 << 14
_MAX_GAP_FLAGS = 20
_MAX_SCANNED_LEVELS = 1 << 14      # longer diffs are read by json
_TRADE_INTS, _TRADE_FLOATS = _core.BINANCE_TRADE_INTS, _core.BINANCE_TRADE_FLOATS   # the scanner's layout
_DEPTH_HEADER = _core.BINANCE_DEPTH_HEADER
_SCAN_END, _SCAN_OTHER, _SCAN_DEPTH, _SCAN_FULL = (_core.BINANCE_SCAN_END, _core.BINANCE_SCAN_OTHER,
                                                   _core.BINANCE_SCAN_DEPTH, _core.BINANCE_SCAN_FULL)


class Message(NamedTuple):
    """One parsed line: 1-based line number, receive time (ns), stream name or None, payload."""

    line_no: int
    ts_local_ns: int
    stream: str | None
    data: dict


@dataclass
class BinanceSummary:
    """Counts of one recording (filled as it is read)."""

    messages: dict = field(default_factory=lambda: dict.fromkeys(
        ("trade", "aggTrade", "depthUpdate", "bookTicker", "snapshot", "unknown", "other_symbol",
         "malformed"), 0))
    diffs_applied: int = 0
    diffs_not_applied_before_sync: int = 0
    book_rows: int = 0
    snapshots_used: int = 0
    snapshots_unconnected: int = 0
    snapshots_ignored_in_sync: int = 0
    non_market_trades: dict = field(default_factory=dict)
    unknown_streams: dict = field(default_factory=dict)
    gaps: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}
        d["gaps"] = [g.to_dict() for g in self.gaps]
        return d


def _read_blocks(path, where: str) -> Iterator[bytes]:
    """The file as blocks of whole lines (the last may lack its newline), in bounded memory."""
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise TapeError(f"{where}: cannot open ({exc.strerror or exc})") from None
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            rest = b""
            while True:
                chunk = f.read(_CHUNK_BYTES)
                if not chunk:
                    break
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    rest += chunk
                    continue
                yield rest + chunk[:cut + 1]
                rest = chunk[cut + 1:]
            if rest:
                yield rest
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise TapeError(f"{where}: the gzip stream is truncated or corrupt ({exc})") from None


_I64_MAX = (1 << 63) - 1
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _int(d: dict, key: str, *, scale: int = 1) -> int:
    """``d[key]`` as an integer that fits int64 after multiplying by ``scale`` (a JSON integer,
    a whole float, or whole-number text); ValueError naming the field otherwise."""
    v = d[key]
    if type(v) is int:
        out = v
    elif type(v) is float and math.isfinite(v) and v == int(v):
        out = int(v)
    elif type(v) is str and v.strip().lstrip("+-").isdigit() and v.strip().isascii():
        out = int(v)
    else:
        raise ValueError(f"`{key}` must be an integer, got {v!r}"[:160])
    if not -_I64_MAX <= out * scale <= _I64_MAX:
        raise ValueError(f"`{key}` is out of range, got {v!r}"[:160])
    return out


def _ms_as_us(d: dict, key: str) -> int:
    """``d[key]``, a time in milliseconds, in microseconds: range-checked by :func:`_int` so
    the product fits int64."""
    return _int(d, key, scale=1000) * 1000


def _decimal(d: dict, key: str) -> float:
    """``d[key]`` as a float: a JSON number or plain decimal text (``"65000.10"``; not
    ``"1_00.10"``, ``"nan"`` or ``""``); ValueError naming the field otherwise."""
    v = d[key]
    if type(v) is str and _DECIMAL.match(v):
        return float(v)
    if type(v) in (int, float):
        return float(v)
    raise ValueError(f"`{key}` must be a decimal number, got {v!r}"[:160])


def parse_line(raw: bytes) -> tuple:
    """``(ts_local_ns, stream, data)`` of one line; ValueError with a short reason."""
    head, sep, body = raw.partition(b" ")
    try:
        if not head.isdigit():
            raise ValueError
        ts_ns = int(head)
    except ValueError:
        raise ValueError(f"the line does not start with a receive time in ns "
                         f"(got {head[:24].decode('utf-8', 'replace')!r})") from None
    if ts_ns > _I64_MAX:
        raise ValueError(f"the receive time {head[:32].decode('ascii', 'replace')} is out of range "
                         f"(ns since the epoch, int64)")
    try:
        msg = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"malformed JSON ({getattr(exc, 'msg', exc)} at column "
                         f"{getattr(exc, 'colno', '?')})") from None
    if type(msg) is not dict:
        raise ValueError(f"the JSON is a {type(msg).__name__}, not an object")
    if "stream" in msg and "data" in msg:
        if type(msg["data"]) is not dict:
            raise ValueError("`data` is not an object")
        return ts_ns, str(msg["stream"]), msg["data"]
    return ts_ns, None, msg


def iter_messages(path: PathLike) -> Iterator[Message]:
    """Every message of a recording, parsed with ``json`` (blank lines skipped).

    Raises TapeError naming the line of the first malformed one.
    """
    where = f"{BinanceReader.format_name} {path}"
    line_no = 0
    for block in _read_blocks(path, where):
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()
        for raw in lines:
            line_no += 1
            if not raw.strip():
                continue
            try:
                yield Message(line_no, *parse_line(raw))
            except ValueError as exc:
                raise TapeError(f"{where}: line {line_no}: {exc}") from None


class BinanceReader(Reader):
    """Recordings of Binance (USD-M futures or spot) public streams; see the module docstring.

    After ``batches()`` is exhausted, :attr:`summary` holds the counts and sequence gaps.
    Set :attr:`on_depth_applied` to a callable ``(u, book)`` to inspect the book after
    every applied depth update (used by the tests' bookTicker agreement check).
    """

    format_name = "binance stream recording"

    def __init__(self, path: PathLike, options: ReaderOptions, report: FileReport) -> None:
        super().__init__(path, options, report)
        self.summary = BinanceSummary()
        self.on_depth_applied = None
        self._want = options.symbol.upper() if options.symbol else None
        self._futures = False
        self._fast = True
        self.continues = False          # the stream goes on in a next file: leave the sync open
        self._trade_source: str | None = None     # "trade" or "aggTrade", set by batches()
        self._scanner: _core.BinanceLineScanner
        self._trade_ints: np.ndarray
        self._trade_floats: np.ndarray
        self._funding_rows: list[tuple]           # mark price rows not yet flushed, set by batches()

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _SNIFF.match(head) is not None

    # -- per-message helpers ----------------------------------------------------------
    def _bad(self, line_no: int, reason: str) -> None:
        if not self.options.skip_bad:
            raise TapeError(f"{self.where()}: line {line_no}: {reason}")
        self.summary.messages["malformed"] += 1
        self.report.drop("malformed lines (skipped)", 1, line_no - 1)

    def _symbol_ok(self, symbol: str, line_no: int) -> bool:
        if symbol == self.symbol:
            return True
        if self._want is not None:
            if symbol == self._want and self.symbol is None:
                self._set_symbol(symbol)
                return True
            self.summary.messages["other_symbol"] += 1
            self.report.drop(f"messages for other symbols than {self._want}", 1, line_no - 1)
            return False
        if self.symbol is None:
            self._set_symbol(symbol)
            return True
        raise TapeError(f"{self.where()}: line {line_no}: messages for several symbols "
                        f"({self.symbol}, {symbol}); choose one with --symbol")

    def _set_symbol(self, symbol: str) -> None:
        self.symbol = symbol
        if self._fast:
            self._scanner.symbol = symbol.encode()
            self._scanner.take_depth = True

    def _unknown(self, name: str, line_no: int) -> None:
        self.summary.messages["unknown"] += 1
        self.summary.unknown_streams[name] = self.summary.unknown_streams.get(name, 0) + 1
        self.report.drop("messages of unknown or unsupported streams (ignored)", 1, line_no - 1)

    def _trade(self, kind: str, d: dict, ts_local_us: int, line_no: int) -> None:
        self.summary.messages[kind] += 1
        if not self._symbol_ok(str(d["s"]), line_no):
            return
        if kind == "trade":
            trade_id, market = _int(d, "t"), d.get("X", "MARKET")
            if "X" in d:
                self._futures = True
            if self._trade_source != "trade":
                self._use_trade_messages(line_no)
        else:
            trade_id, market = _int(d, "a"), "MARKET"
            if self._trade_source == "trade":
                self.report.drop("aggTrade messages (the file also has trade messages, used instead)", 1)
                return
            self._trade_source = "aggTrade"
        maker = d["m"]
        if type(maker) is not bool:
            raise ValueError(f"`m` must be true or false, got {maker!r}")
        price, amount, ts_exch_us = _decimal(d, "p"), _decimal(d, "q"), _ms_as_us(d, "T")
        if type(market) is not str:
            raise ValueError(f"`X` must be text, got {market!r}"[:160])
        if market != "MARKET":
            counts = self.summary.non_market_trades
            counts[market] = counts.get(market, 0) + 1
            if not self.options.keep_non_market:
                self.report.drop(f"non-market trades (X = {market})", 1, line_no - 1)
                return
            self.report.flag(f"non-market trades kept (X = {market})", 1, line_no - 1)
        row = self._scanner.n_trades
        values = {"ts_exch_us": ts_exch_us, "ts_local_us": ts_local_us, "trade_id": trade_id,
                  "side": 1 - 2 * maker, "price": price, "amount": amount}
        self._trade_ints[row] = [values[c] for c in _TRADE_INTS]
        self._trade_floats[row] = [values[c] for c in _TRADE_FLOATS]
        self._scanner.n_trades = row + 1

    def _use_trade_messages(self, line_no: int) -> None:
        if self._trade_source == "aggTrade":
            if self._agg_written:
                raise TapeError(f"{self.where()}: line {line_no}: trade messages after aggTrade ones were "
                                f"written; a file must not hold both streams for one symbol")
            self.report.drop("aggTrade messages (the file also has trade messages, used instead)",
                             self._scanner.n_trades)
            self._scanner.n_trades = 0
        self._trade_source = "trade"
        self._scanner.take_trades = self._fast

    def _depth(self, stream, d: dict, ts_local_us: int, line_no: int) -> bool:
        if stream is not None and not DIFF_STREAM.search(stream):
            self._unknown(stream, line_no)   # a partial-book stream: top-N, not a diff
            return False
        self.summary.messages["depthUpdate"] += 1
        if not self._symbol_ok(str(d["s"]), line_no):
            return False
        prev_id = d.get("pu")
        if prev_id is not None:
            self._futures = True
            prev_id = _int(d, "pu")
        bids, asks = d["b"], d["a"]
        if type(bids) is not list or type(asks) is not list:
            raise ValueError("`b` and `a` must be lists of [price, qty]")
        levels, n_bids = _core.binance_parse_levels(bids, asks)
        ts_exch_us = _ms_as_us(d, "T" if "T" in d else "E")
        return self._sync.diff(_int(d, "U"), _int(d, "u"), prev_id, levels, n_bids, ts_exch_us,
                               ts_local_us, line_no)

    def _message(self, line_no: int, raw: bytes) -> int | None:
        """Handle one line by the general path; its receive time (us) when a book row is due."""
        try:
            ts_ns, stream, d = parse_line(raw)
            ts_local_us = ts_ns // 1000
            event = d.get("e")
            if event == "depthUpdate":
                return ts_local_us if self._depth(stream, d, ts_local_us, line_no) else None
            if event in ("trade", "aggTrade"):
                self._trade(event, d, ts_local_us, line_no)
            elif event == "markPriceUpdate":
                self._mark_price(d, ts_local_us, line_no)
            elif event == "bookTicker" or (event is None and "u" in d and "B" in d and "A" in d):
                self.summary.messages["bookTicker"] += 1
                if event is not None:
                    self._futures = True
                self._symbol_ok(str(d["s"]), line_no)
            elif event is None and "lastUpdateId" in d and "bids" in d and "asks" in d:
                self.summary.messages["snapshot"] += 1
                bids, asks = d["bids"], d["asks"]
                if type(bids) is not list or type(asks) is not list:
                    raise ValueError("`bids` and `asks` must be lists of [price, qty]")
                levels, n_bids = _core.binance_parse_levels(bids, asks)
                if self._sync.snapshot(_int(d, "lastUpdateId"), levels, n_bids, ts_local_us, line_no):
                    return ts_local_us
            else:
                name = stream or (f"e={event}" if event is not None else
                                  "subscription reply" if "result" in d else "no `e` field")
                self._unknown(name, line_no)
        except TapeError:
            raise
        except KeyError as exc:
            self._bad(line_no, f"message without field `{exc.args[0]}`")
        except (ValueError, TypeError, OverflowError) as exc:
            self._bad(line_no, str(exc))
        return None

    def _mark_price(self, d: dict, ts_local_us: int, line_no: int) -> None:
        """A ``@markPrice`` update: one row of the tape's funding table (funding rate ``r``,
        next funding time ``T``, mark ``p``, index ``i``; exchange time ``E``)."""
        counts = self.summary.messages
        counts["markPriceUpdate"] = counts.get("markPriceUpdate", 0) + 1
        if not self._symbol_ok(str(d["s"]), line_no):
            return
        self._futures = True
        rate = float(d["r"]) if d.get("r") not in (None, "") else float("nan")
        if not np.isfinite(rate):
            self.report.drop("mark price updates without a finite funding rate `r`", 1, line_no - 1)
            return
        self._funding_rows.append((_ms_as_us(d, "E"), ts_local_us, _ms_as_us(d, "T") if d.get("T") else -1,
                                   rate, float(d["p"]), float(d["i"]) if d.get("i") not in (None, "") else np.nan))

    def _flush_funding(self):
        """The mark price rows gathered so far as a Funding batch (None when there are none)."""
        rows, self._funding_rows = self._funding_rows, []
        if not rows:
            return None
        ints = np.array([r[:3] for r in rows], dtype=np.int64)
        floats = np.array([r[3:] for r in rows], dtype=np.float64)
        nan = np.full(len(rows), np.nan)
        self.report.flag("mark price updates kept (the tape's funding table)", len(rows))
        return Funding(ints[:, 0], ints[:, 1], floats[:, 0], ints[:, 2], nan, floats[:, 1], floats[:, 2],
                       nan.copy(), nan.copy())

    # -- output -------------------------------------------------------------------------
    def _new_book_rows(self) -> None:
        n = min(self.options.batch_rows, _MAX_BOOK_ROWS)
        self._book = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 4, MAX_LEVELS)))
        self._book_n = 0

    def _book_row(self, ts_local_us: int) -> bool:
        """Write the current book as one row; True when the buffer is full."""
        i = self._book_n
        rows = self._book
        assert self._sync.last_ts_exch_us is not None   # a book row follows an applied update
        rows[0][i] = self._sync.last_ts_exch_us
        rows[1][i] = ts_local_us
        self._sync.book.top_into(rows[2], i)
        self._book_n = i + 1
        return self._book_n == rows[0].shape[0]

    def _flush_book(self) -> Book | None:
        n = self._book_n
        if not n:
            return None
        rows = self._book
        self._new_book_rows()
        ts_exch_us, ts_local_us, levels = rows
        book = Book(ts_exch_us[:n], ts_local_us[:n], *(np.ascontiguousarray(levels[:n, k]) for k in range(4)))
        self.summary.book_rows += n
        out = clean_book(book, self.where(), self.report, self.summary.book_rows - n, self.options.strict)
        return out if len(out) else None

    def _flush_trades(self) -> Trades | None:
        n = self._scanner.n_trades
        if not n:
            return None
        ints, floats = self._trade_ints[:n], self._trade_floats[:n]
        i, f = _TRADE_INTS.index, _TRADE_FLOATS.index
        trades = Trades(ints[:, i("ts_exch_us")].copy(), ints[:, i("ts_local_us")].copy(),
                        floats[:, f("price")].copy(), floats[:, f("amount")].copy(),
                        ints[:, i("side")].astype(np.int8), ints[:, i("trade_id")].copy())
        self._scanner.set_output(self._trade_ints, self._trade_floats)
        if self._trade_source == "aggTrade":
            self._agg_written = True
        offset = self._trades_out
        self._trades_out += n
        out = clean_trades(trades, self.where(), self.report, offset, self.options.strict)
        return out if len(out) else None

    # -- main loop ----------------------------------------------------------------------
    def _new_sync(self) -> DepthSync:
        """The depth sync this file uses (a stream of many files hands one on)."""
        return DepthSync(self._bad, self.on_depth_applied)

    def batches(self) -> Iterator[Trades | Book]:
        self._sync = self._new_sync()
        self._trades_out = 0
        self._trade_source = None
        self._agg_written = False
        self._funding_rows = []
        self._new_book_rows()
        rows = min(self.options.batch_rows, _MAX_TRADE_ROWS)
        self._trade_ints = np.empty((rows, len(_TRADE_INTS)), np.int64)
        self._trade_floats = np.empty((rows, len(_TRADE_FLOATS)))
        scanner = self._scanner = _core.BinanceLineScanner()
        scanner.set_output(self._trade_ints, self._trade_floats)
        header, levels = np.zeros(len(_DEPTH_HEADER), np.int64), np.empty((2, _MAX_SCANNED_LEVELS))
        scanner.set_depth_output(header, levels)
        sync = self._sync
        slow_lines = rows_read = 0
        for block in _read_blocks(self.path, self.where()):
            pos = 0
            while True:
                # the scanner takes bookTicker, market-trade and depth lines of the usual
                # USD-M shape; every other line comes back and is read with json
                start, end, kind = scanner.scan(block, pos)
                if kind == _SCAN_END:
                    break
                if kind == _SCAN_FULL or scanner.n_trades >= rows:   # trade output full: flush, rescan
                    out: Trades | Book | None = self._flush_trades()
                    if out is not None:
                        yield out
                    pos = start
                    continue
                pos = end + 1
                if kind == _SCAN_DEPTH:
                    self.summary.messages["depthUpdate"] += 1
                    h = dict(zip(_DEPTH_HEADER, header.tolist()))
                    n_bids = h["n_bids"]
                    row_ts = h["ts_local_us"] if sync.diff(
                        h["U"], h["u"], h["pu"], levels[:, :n_bids + h["n_asks"]].copy(), n_bids,
                        h["T"] * 1000, h["ts_local_us"], scanner.lines + slow_lines) else None
                else:
                    slow_lines += 1
                    raw = block[start:end]
                    if not raw.strip():
                        continue
                    rows_read += 1
                    row_ts = self._message(scanner.lines + slow_lines, raw)
                    if len(self._funding_rows) >= _MAX_TRADE_ROWS:
                        yield self._flush_funding()
                if row_ts is not None and self._book_row(row_ts):
                    out = self._flush_book()
                    if out is not None:
                        yield out
        self.summary.messages["bookTicker"] += scanner.book_tickers
        self.summary.messages["trade"] += scanner.trades
        self.report.rows_read += rows_read + scanner.lines
        if scanner.lines:
            self._futures = True            # the scanner takes only USD-M shaped lines
        self._finish()
        for out in (self._flush_trades(), self._flush_book(), self._flush_funding()):
            if out is not None:
                yield out

    def _finish(self) -> None:
        sync, s, rep = self._sync, self.summary, self.report
        if not self.continues:
            sync.finish()
        s.diffs_applied = sync.applied
        s.diffs_not_applied_before_sync = sync.not_applied_before_sync
        s.snapshots_used = sync.snapshots_used
        s.snapshots_unconnected = sync.snapshots_unconnected
        s.snapshots_ignored_in_sync = sync.snapshots_ignored
        s.gaps = list(sync.gaps)
        if self._want is not None and self.symbol is None and s.messages["other_symbol"]:
            raise TapeError(f"{self.where()}: no messages for symbol {self._want} "
                            f"({s.messages['other_symbol']} messages for other symbols)")
        if sync.diffs_seen and not sync.ever_synced and not self.continues:
            if sync.snapshots_seen == 0:
                raise TapeError(f"{self.where()}: {sync.diffs_seen} depth updates but no REST depth snapshot "
                                f"line ({{\"lastUpdateId\", \"bids\", \"asks\"}}); the book cannot be built without one")
            raise TapeError(f"{self.where()}: none of the {sync.snapshots_seen} REST depth snapshots connects to "
                            f"the {sync.diffs_seen} depth updates (U <= lastUpdateId <= u never holds); "
                            f"the book cannot be built")
        if sync.snapshots_seen and not sync.diffs_seen:
            rep.flag("REST depth snapshots without depth updates (no book written)", sync.snapshots_seen)
        rep.flag("bookTicker messages (read, not written: the book comes from the depth stream)",
                 s.messages["bookTicker"])
        rep.flag("depth updates before the book was first in sync, not applied "
                 "(u < lastUpdateId of the REST snapshot)", s.diffs_not_applied_before_sync)
        rep.flag("REST depth snapshots that did not connect to the depth updates", s.snapshots_unconnected)
        rep.flag("REST depth snapshots received while in sync (ignored)", s.snapshots_ignored_in_sync)
        for k, gap in enumerate(s.gaps, 1):
            if k > _MAX_GAP_FLAGS:
                rep.flag("depth updates not applied in further sequence gaps",
                         sum(g.diffs_not_applied for g in s.gaps[_MAX_GAP_FLAGS:]))
                break
            end = "end of file" if gap.end_ts_local_us is None else _when(gap.end_ts_local_us)
            rep.flag(f"depth updates not applied in sequence gap {k} (book out of sync, no snapshots) "
                     f"from {_when(gap.start_ts_local_us)} (line {gap.start_line}) to {end}; "
                     f"after u={gap.last_u}, next pu={gap.next_pu}: {gap.reason}",
                     max(gap.diffs_not_applied, 1))
        rep.flag("sequence gaps in the depth stream", len(s.gaps))
        if self.symbol is not None:
            self.exchange = ("binance-delivery" if "_" in self.symbol else
                             "binance-futures" if self._futures else "binance")


def _when(ts_us: int) -> str:
    """A local timestamp (us) as an ISO time, for reports."""
    return dt.datetime.fromtimestamp(ts_us / 1e6, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
