"""Convert outside market data into a tape directory: ``python -m clusterlob.convert``.

::

    python -m clusterlob.convert INPUT... --out TAPE_DIR [--symbol S] [--tick-size X]
        [--lot-size X] [--price-increment X] [--amount-increment X] [--strict] [--force] [--json]

Every input's format is detected from its content; trades and book inputs combine into one
tape (one instrument).  The tape is written into a temporary folder beside TAPE_DIR and
renamed into place when complete; a non-empty TAPE_DIR is refused unless ``--force``.
The tick and lot sizes are inferred from the prices and amounts when not given (the manifest
says which).  The summary lists rows per day and every dropped or flagged count.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .._typing import PathLike
from ..errors import ParameterError, TapeError
from .readers import ReaderOptions, detect_reader
from .readers.base import IncrementGuess
from .store import Book, Instrument
from .writer import TapeWriter
from .validate import ValidationReport

__all__ = ["ConvertResult", "convert"]


@dataclass
class ConvertResult:
    """What a conversion wrote: the manifest and the validation report."""

    path: Path
    manifest: dict
    report: ValidationReport

    def to_dict(self) -> dict:
        return {"path": str(self.path), "manifest": self.manifest, "validation": self.report.to_dict()}

    def lines(self) -> list[str]:
        inst = self.manifest["instrument"]
        src = self.manifest["summary"].get("increments", {})
        out = [f"wrote {self.path}: {inst['exchange']}:{inst['symbol']}, tick {inst['tick_size']:g} "
               f"({src.get('tick_size', 'given')}), lot {inst['lot_size']:g} ({src.get('lot_size', 'given')}), "
               f"{self.manifest['book_levels'] or 0} book levels",
               f"{'day':<12}{'trades':>12}{'book':>12}"]
        for d in self.manifest["days"]:
            out.append(f"{d['date']:<12}{d['trades']:>12,}{d['book']:>12,}")
        tot = self.manifest["totals"]
        out.append(f"{'total':<12}{tot['trades']:>12,}{tot['book']:>12,}")
        for f in self.report.files:
            out.extend(f.lines())
        s = self.manifest["summary"]
        out.append(f"out-of-order rows stably sorted: {s['out_of_order_trades_sorted']:,} trades, "
                   f"{s['out_of_order_book_sorted']:,} book; duplicate trade ids (kept): {s['duplicate_trade_ids']:,}")
        return out


def convert(inputs: Sequence, out: PathLike, *, symbol: str | None = None, exchange: str | None = None,
            tick_size: float | None = None, lot_size: float | None = None,
            price_increment: float | None = None, amount_increment: float | None = None,
            strict: bool = False, skip_bad: bool = False, keep_non_market: bool = False,
            force: bool = False, progress: Callable[[str], None] | None = None) -> ConvertResult:
    """Read every input, validate, and write one tape directory at ``out`` (atomically).

    Parameters
    ----------
    inputs : sequence of paths
        Trades and book files in any supported format (see :mod:`clusterlob.readers`).
    out : path
        Target tape directory.
    symbol : pick one symbol from inputs that hold several.
    exchange : override the exchange name (needed when no input names it).
    tick_size, lot_size : instrument increments; inferred from the data when None.
    price_increment, amount_increment : value of one integer unit in pointline inputs.
    strict : any dropped row is an error instead of a count.
    force : replace a non-empty ``out``.
    progress : called with a short line after each input (the CLI prints it to stderr).
    """
    if not inputs:
        raise TapeError("no input files given")
    for name, value in (("tick_size", tick_size), ("lot_size", lot_size)):
        if value is not None and not value > 0:
            raise TapeError(f"`{name}` must be > 0, got {value!r}")
    options = ReaderOptions(symbol=symbol, price_increment=price_increment,
                            amount_increment=amount_increment, skip_bad=skip_bad,
                            keep_non_market=keep_non_market, strict=strict)
    report = ValidationReport(strict=strict)
    tick_guess, lot_guess = IncrementGuess(), IncrementGuess()
    names: dict = {"exchange": set(), "symbol": set()}
    readers = [(Path(p), detect_reader(p)) for p in inputs]
    placeholder = Instrument(exchange or "?", symbol or "?", 1.0, 1.0)
    with TapeWriter(out, placeholder, force=force) as writer:
        for path, cls in readers:
            started = time.perf_counter()
            rep = report.new_file(path, cls.format_name)
            reader = cls(path, options, rep)
            for batch in reader.batches():
                if isinstance(batch, Book):
                    writer.add_book(batch)
                    if tick_size is None:
                        tick_guess.update(batch.bid_px.ravel())
                        tick_guess.update(batch.ask_px.ravel())
                    if lot_size is None:
                        lot_guess.update(batch.bid_sz.ravel())
                        lot_guess.update(batch.ask_sz.ravel())
                else:
                    writer.add_trades(batch)
                    if tick_size is None:
                        tick_guess.update(batch.price)
                    if lot_size is None:
                        lot_guess.update(batch.amount)
            for key in names:
                value = getattr(reader, key)
                if value is not None:
                    names[key].add(value)
            if progress:
                secs = time.perf_counter() - started
                progress(f"{path.name}: {rep.rows_read:,} rows in {secs:.1f}s "
                         f"({rep.rows_read / max(secs, 1e-9):,.0f} rows/s)")
        for key in names:
            if len(names[key]) > 1:
                raise TapeError(f"inputs disagree on the {key}: {', '.join(sorted(names[key]))}; "
                                f"convert each into its own tape" + (" or pick one with --symbol" if key == "symbol" else ""))
        increments = {}
        if tick_size is None:
            tick_size = tick_guess.value
            increments["tick_size"] = (f"inferred from {tick_guess.count:,} distinct prices"
                                       + ("" if tick_guess.reliable else ": too few, a lower bound; pass --tick-size"))
        if lot_size is None:
            lot_size = lot_guess.value
            increments["lot_size"] = (f"inferred from {lot_guess.count:,} distinct amounts"
                                      + ("" if lot_guess.reliable else ": too few, a lower bound; pass --lot-size"))
        if tick_size is None or lot_size is None:
            other = sum(n for reason, n in report.total("dropped").items() if reason.startswith("other symbols"))
            if options.symbol and other:
                raise ParameterError(f"`--symbol` {options.symbol} matches no row of the inputs "
                                     f"({other:,} rows of other symbols dropped)")
            raise TapeError("no valid prices or amounts in the inputs: nothing to convert")
        writer.instrument = Instrument(exchange or next(iter(names["exchange"]), "unknown"),
                                       next(iter(names["symbol"]), symbol or "unknown"),
                                       float(tick_size), float(lot_size))
        manifest = writer.close({"validation": report.to_dict(), "increments": increments,
                                 "inputs": [str(p) for p, _ in readers]})
    return ConvertResult(Path(out), manifest, report)
